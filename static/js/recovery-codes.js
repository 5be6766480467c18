/* The recovery codes page (templates/auth/recovery_codes.html): a Print button, shown only when
   JavaScript runs (the browser's own Print works regardless; the print stylesheet hides the
   page chrome either way). */
(function () {
  "use strict";
  function start() {
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
