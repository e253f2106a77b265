// Copy buttons without inline handlers (the CSP forbids them): <button data-copy="selector"> copies that text.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button) { return; }
    var source = document.querySelector(button.getAttribute("data-copy"));
    var status = button.parentElement.querySelector(".copy-status");
    var say = function (text) { if (status) { status.textContent = text; } };
    if (!source) { return; }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.textContent).then(function () { say("Copied."); },
        function () { say("Select the key and copy it."); });
    } else {
      var range = document.createRange();
      range.selectNodeContents(source);
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      say(document.execCommand && document.execCommand("copy") ? "Copied." : "Select the key and copy it.");
    }
  });
})();
