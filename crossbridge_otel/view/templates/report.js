"use strict";
// Filter, errors-only and expand/collapse for the traces; the page works without it (plain <details>).
(function () {
  var traces = Array.prototype.slice.call(document.querySelectorAll("details.trace"));
  var filter = document.getElementById("filter");
  var onlyErrors = document.getElementById("only-errors");
  var shown = document.getElementById("shown");

  function apply() {
    var needle = filter.value.trim().toLowerCase();
    var count = 0;
    traces.forEach(function (trace) {
      var match = (!onlyErrors.checked || trace.dataset.errors !== "0") &&
        (needle === "" || trace.textContent.toLowerCase().indexOf(needle) !== -1);
      trace.classList.toggle("hidden", !match);
      if (match) { count += 1; }
    });
    shown.textContent = count + " of " + traces.length + " traces shown";
  }

  function setOpen(open) {
    traces.forEach(function (trace) {
      if (!trace.classList.contains("hidden")) { trace.open = open; }
    });
  }

  filter.addEventListener("input", apply);
  onlyErrors.addEventListener("change", apply);
  document.getElementById("expand").addEventListener("click", function () { setOpen(true); });
  document.getElementById("collapse").addEventListener("click", function () { setOpen(false); });
  // A link to a trace (#t-<id>) from the tables opens it.
  function openTarget() {
    var target = location.hash ? document.getElementById(location.hash.slice(1)) : null;
    if (target && target.tagName === "DETAILS") { target.open = true; }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
  apply();
})();
