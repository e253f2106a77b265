// Run Billing: the Finalize box is offered only for a month that has ended (the server refuses the open month).
(function () {
  var period = document.getElementById("billing-period");
  var finalize = document.getElementById("billing-finalize");
  if (!period || !finalize) { return; }
  var open = period.getAttribute("max");
  function update() {
    var closed = period.value !== "" && period.value < open;
    finalize.disabled = !closed;
    if (!closed) { finalize.checked = false; }
    finalize.parentElement.title = closed ? "" : "Only a month that has ended can be finalized";
  }
  period.addEventListener("input", update);
  period.addEventListener("change", update);
  update();
})();
