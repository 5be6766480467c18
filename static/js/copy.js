/* Copy buttons (templates/downloads/): a [data-copy="#id"] button copies the text of that
   element (or the value of that input) to the clipboard. The buttons start hidden and show
   only when JavaScript and the clipboard are there; without them the text is selectable. */
(function () {
  "use strict";
  function copy(button) {
    var target = document.querySelector(button.getAttribute("data-copy"));
    if (!target) {
      return;
    }
    var text = "value" in target && target.tagName === "INPUT" ? target.value : target.textContent;
    navigator.clipboard.writeText(text.trim()).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = label; }, 1500);
    });
  }
  function start() {
    if (!navigator.clipboard) {
      return;
    }
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      if (button.dataset.copyReady) {
        return;
      }
      button.dataset.copyReady = "1";
      button.hidden = false;
      button.addEventListener("click", function () { copy(button); });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
