// Map of the search results: an extra on top of the result list, which works without it.
// Leaflet is served by this site (xstatic-leaflet), tiles from the configured URL.
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

  var box = document.getElementById("map");
  if (!box) { return; }
  var items = Array.prototype.slice.call(document.querySelectorAll(".results > li[data-lat]"))
    .filter(function (li) { return li.dataset.lat !== "" && li.dataset.lon !== ""; });
  if (!items.length) { return; }

  function draw() {
    var L = window.L;
    if (!L) { return; }
    box.hidden = false;
    // No fade: a popup fading in has too little contrast to read (and moves for nothing).
    var map = L.map(box, { scrollWheelZoom: false, fadeAnimation: false });
    // Leaflet's own controls speak the page's language (titles from base.html's <body>).
    map.zoomControl.remove();
    L.control.zoom({ zoomInTitle: document.body.dataset.zoomIn || "+", zoomOutTitle: document.body.dataset.zoomOut || "-" }).addTo(map);
    map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
    map.on("popupopen", function (e) {
      var close = e.popup.getElement().querySelector(".leaflet-popup-close-button");
      if (close) { close.setAttribute("aria-label", document.body.dataset.closePopup || "×"); }
    });
    addOutlines(map);
    L.tileLayer(box.dataset.tiles, {
      maxZoom: 18,
      attribution: box.dataset.attribution || ""
    }).addTo(map);
    var points = [];
    if (box.dataset.lat) {
      var centre = [parseFloat(box.dataset.lat), parseFloat(box.dataset.lon)];
      L.circleMarker(centre, { radius: 5, color: "#555", fillOpacity: 0.6 }).addTo(map);
      points.push(centre);
    }
    items.forEach(function (li, index) {
      var at = [parseFloat(li.dataset.lat), parseFloat(li.dataset.lon)];
      points.push(at);
      var link = document.createElement("a");
      link.href = li.dataset.url;
      link.textContent = (index + 1) + ". " + li.dataset.name;
      L.circleMarker(at, { radius: 8, color: "#0b5cad", fillOpacity: 0.8 })
        .bindPopup(link)
        .bindTooltip(String(index + 1), { permanent: false })
        .addTo(map);
    });
    map.fitBounds(L.latLngBounds(points).pad(0.15), { maxZoom: 15 });
  }

  var script = document.createElement("script");
  script.src = box.dataset.leaflet;
  script.onload = draw;
  document.head.appendChild(script);
}());
