/* Tessera's small page helpers (no inline script anywhere: CSP forbids it).
   - [data-select-all]: a header checkbox that ticks every row checkbox of its table.
   - [data-confirm]: asks before a destructive form is submitted. */
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.matches && box.matches("[data-select-all]")) {
      var table = box.closest("table");
      table.querySelectorAll("input[type=checkbox][name=selected]").forEach(function (row) {
        row.checked = box.checked;
      });
    }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  }, true);
})();
