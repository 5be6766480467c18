/* The shell's small comforts; everything works without it.
   - Remembers whether the sidebar is collapsed (a cookie the server reads back as
     body.nav-collapsed), on wide screens only: on phones the menu always starts as an icon rail.
   - Closes the profile menu on a click outside it or on Escape. */
(function () {
  "use strict";
  var WIDE = window.matchMedia("(min-width: 761px)");

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.id !== "nav-toggle" || !WIDE.matches) {
      return;
    }
    // The checkbox flips whatever the page was rendered with.
    var collapsed = document.body.classList.contains("nav-collapsed") !== box.checked;
    document.cookie = "tessera_nav=" + (collapsed ? "collapsed" : "open") +
      "; path=/; max-age=31536000; SameSite=Lax";
  });

  function closeMenus(except) {
    document.querySelectorAll("details.profile-menu[open]").forEach(function (menu) {
      if (menu !== except) {
        menu.removeAttribute("open");
      }
    });
  }
  document.addEventListener("click", function (event) {
    closeMenus(event.target.closest ? event.target.closest("details.profile-menu") : null);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      closeMenus(null);
    }
  });
})();
