/* Groups and roles forms: show only the parts that apply to the chosen kind or type.
   An element with data-show-when="NAME=v1,v2" inside a form[data-toggle-form] is shown while
   the form's control NAME has one of those values (a checkbox counts as "y" when ticked).
   Without JavaScript every part stays visible and the server ignores what does not apply. */
(function () {
  "use strict";
  function valueOf(form, name) {
    var control = form.elements[name];
    if (!control) { return ""; }
    if (control.type === "checkbox") { return control.checked ? "y" : ""; }
    return control.value;
  }
  function refresh(form) {
    form.querySelectorAll("[data-show-when]").forEach(function (part) {
      var rule = part.getAttribute("data-show-when").split("=");
      var wanted = (rule[1] || "").split(",");
      part.hidden = wanted.indexOf(valueOf(form, rule[0])) === -1;
    });
  }
  function init() {
    document.querySelectorAll("form[data-toggle-form]").forEach(function (form) {
      refresh(form);
      form.addEventListener("change", function () { refresh(form); });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
