/* Map of the spaces taking part in a campaign (Leaflet, served locally). The list of
   spaces in the table below the map holds the same information without the map. */
(function () {
  "use strict";
  // Where this script was served from: the outlines are beside it, under /static/map/.
  var here = (document.currentScript && document.currentScript.src) || window.location.href;
  function mapData(name) { return new URL("../map/" + name, here).href; }

  // The prefecture outlines this site ships (booking/static/map/README.txt), drawn always,
  // in a pane beneath the tiles: loaded tiles cover them, and wherever a tile cannot load
  // (no network, a tile server down) Japan shows through instead of an empty grey.
  function addOutlines(map) {
    var pane = map.createPane("outlines");
    pane.style.zIndex = 150;  // Leaflet's tile pane is 200
    pane.style.pointerEvents = "none";
    map.attributionControl.addAttribution('<a lang="en" href="' + mapData("README.txt") +
      '">japanmap (Apache-2.0)</a>');
    if (!window.fetch) { return; }
    fetch(mapData("japan-prefectures.geojson"))
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        L.geoJSON(data, { pane: "outlines", interactive: false,
          style: { color: "#7d8a96", weight: 1, fillColor: "#f6f3ec", fillOpacity: 1 } }).addTo(map);
      })
      .catch(function () { /* the map works without its base layer */ });
  }

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
  addOutlines(map);
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
