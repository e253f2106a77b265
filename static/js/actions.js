// Runs a grid's bulk action from its menu item (data-model-action) through Flask-Admin's modelActions.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var item = event.target.closest ? event.target.closest("[data-model-action]") : null;
    if (!item) { return; }
    event.preventDefault();
    if (window.modelActions) { window.modelActions.execute(item.getAttribute("data-model-action")); }
  });
})();
