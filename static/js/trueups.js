// True-ups: the header checkbox selects every bucket that can still be applied.
document.addEventListener("change", function (event) {
  if (event.target.matches && event.target.matches("input.trueup-all")) {
    document.querySelectorAll("table.true-ups input[name=bucket_id]").forEach(function (box) {
      box.checked = event.target.checked;
    });
  }
});
