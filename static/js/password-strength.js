/* Password strength meter for every <input data-strength> (templates/auth/_password_fields.html).
   Without JavaScript the rules stay plain text and the meter stays hidden; the server checks the
   rules either way. The meter only advises: length and variety score up, obvious patterns down. */
(function () {
  "use strict";
  var LABELS = ["Too weak", "Weak", "Fair", "Good", "Strong"];
  var COMMON = /(password|passwort|qwerty|azerty|letmein|welcome|admin|tessera|123456|abcdef)/i;
  var RULES = {
    length: function (v) { return v.length >= 8; },
    upper: function (v) { return /[A-Z]/.test(v); },
    lower: function (v) { return /[a-z]/.test(v); },
    digit: function (v) { return /\d/.test(v); }
  };

  function score(value) {
    if (!value) { return 0; }
    var kinds = [/[a-z]/, /[A-Z]/, /\d/, /[^A-Za-z0-9]/].filter(function (re) { return re.test(value); }).length;
    var points = 0;
    if (value.length >= 8) { points += 1; }
    if (value.length >= 12) { points += 1; }
    if (value.length >= 16) { points += 1; }
    if (kinds >= 3) { points += 1; }
    if (kinds === 4) { points += 1; }
    var allRules = Object.keys(RULES).every(function (name) { return RULES[name](value); });
    if (!allRules || COMMON.test(value) || new Set(value).size < 5) {
      points = Math.min(points, 1);
    }
    return Math.min(4, points);
  }

  function attach(input) {
    var meterBox = document.getElementById(input.id + "-strength");
    var rules = document.getElementById(input.id + "-rules");
    var meter = meterBox && meterBox.querySelector("meter");
    var label = meterBox && meterBox.querySelector(".strength-label");
    if (meterBox) { meterBox.hidden = false; }
    function update() {
      var value = input.value || "";
      var s = score(value);
      if (meter) { meter.value = s; }
      if (label) { label.textContent = value ? LABELS[s] : ""; }
      if (rules) {
        rules.querySelectorAll("[data-rule]").forEach(function (item) {
          var check = RULES[item.getAttribute("data-rule")];
          item.classList.toggle("met", Boolean(check && check(value)));
        });
      }
    }
    input.addEventListener("input", update);
    update();
  }

  function start() {
    document.querySelectorAll("input[data-strength]").forEach(function (input) {
      if (!input.dataset.strengthReady) {
        input.dataset.strengthReady = "1";
        attach(input);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
  // Forms swapped in by HTMX get their meter too.
  document.addEventListener("htmx:load", start);
})();
