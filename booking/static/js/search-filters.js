// The search filters sit in a <details> ("絞り込み"): on a phone they stay folded so that
// the results come first (a tap opens them, no script needed); on a wide screen this opens
// them beside the results (1000 px and wider, where results.css makes them a column);
// in between they fold as on a phone. Nothing else depends on it.
(function () {
  "use strict";
  var filters = document.querySelector("details.filters");
  if (!filters || !window.matchMedia) { return; }
  var wide = window.matchMedia("(min-width: 1000px)");
  function follow() { filters.open = wide.matches; }
  follow();
  if (wide.addEventListener) { wide.addEventListener("change", follow); }
}());
