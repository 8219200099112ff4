/* Map of the spaces taking part in a campaign (Leaflet, served locally). The list of
   spaces in the table below the map holds the same information without the map. */
(function () {
  "use strict";

  // Without tiles the street-level view of a single space shows nothing but one
  // prefecture's colour: when the first tiles fail before any has loaded, step back to a
  // regional view, where the outlines around the marker are recognisable. (Several
  // spaces are shown by their bounds, which is regional enough, and widening it would
  // pile their markers on one another.)
  function widenWithoutTiles(map, tiles) {
    var loaded = false, widened = false;
    tiles.on("tileload", function () { loaded = true; });
    tiles.on("tileerror", function () {
      if (!loaded && !widened && map.getZoom() > 8) { widened = true; map.setZoom(8, { animate: false }); }
    });
  }

  var el = document.getElementById("campaign-map");
  if (!el || typeof L === "undefined") { return; }
  var markers = JSON.parse(el.getAttribute("data-markers") || "[]");
  if (!markers.length) { return; }
  var map = L.map(el, { scrollWheelZoom: false, fadeAnimation: false });
  // Leaflet's own controls speak the page's language (titles from base.html's <body>).
  map.zoomControl.remove();
  L.control.zoom({ zoomInTitle: document.body.dataset.zoomIn || "+", zoomOutTitle: document.body.dataset.zoomOut || "-" }).addTo(map);
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  map.on("popupopen", function (e) {
    var close = e.popup.getElement().querySelector(".leaflet-popup-close-button");
    if (close) { close.setAttribute("aria-label", document.body.dataset.closePopup || "×"); }
  });
  window.mapOutlines(map);
  var tiles = el.getAttribute("data-tiles");
  if (tiles) {
    var layer = L.tileLayer(tiles, { maxZoom: 18, attribution: el.getAttribute("data-attribution") || "" }).addTo(map);
    if (markers.length === 1) { widenWithoutTiles(map, layer); }
  }
  var bounds = [];
  markers.forEach(function (m) {
    var link = document.createElement("a");
    link.href = m.url;
    link.textContent = m.name;
    L.marker([m.lat, m.lon], { title: m.name, alt: m.name }).addTo(map).bindPopup(link);
    bounds.push([m.lat, m.lon]);
  });
  if (bounds.length === 1) { map.setView(bounds[0], 13); } else { map.fitBounds(bounds, { padding: [30, 30] }); }
})();
