// The operator's map: click or drag the marker to correct a space's coordinates.
// The latitude/longitude fields stay the source of truth; without JavaScript or tiles
// the operator simply types them.
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

  var box = document.getElementById("space-map");
  if (!box || typeof L === "undefined") { return; }
  var latInput = document.getElementById("lat");
  var lonInput = document.getElementById("lon");
  var lat = parseFloat(box.dataset.lat);
  var lon = parseFloat(box.dataset.lon);
  var known = !isNaN(lat) && !isNaN(lon);
  var centre = known ? [lat, lon] : [36.2, 138.25];  // Japan when nothing is known yet
  var map = L.map(box, { keyboard: true, fadeAnimation: false }).setView(centre, known ? 16 : 5);
  // Leaflet's own controls speak the page's language (titles from base.html's <body>).
  map.zoomControl.remove();
  L.control.zoom({ zoomInTitle: document.body.dataset.zoomIn || "+", zoomOutTitle: document.body.dataset.zoomOut || "-" }).addTo(map);
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  addOutlines(map);
  L.tileLayer(box.dataset.tiles, {
    attribution: box.dataset.attribution, maxZoom: 18
  }).addTo(map);
  var marker = L.marker(centre, { draggable: true, keyboard: true, title: box.getAttribute("aria-label") });
  if (known) { marker.addTo(map); }

  function put(latlng) {
    latInput.value = latlng.lat.toFixed(6);
    lonInput.value = latlng.lng.toFixed(6);
  }
  marker.on("dragend", function () { put(marker.getLatLng()); });
  map.on("click", function (event) {
    marker.setLatLng(event.latlng);
    if (!map.hasLayer(marker)) { marker.addTo(map); }
    put(event.latlng);
  });
  function fromInputs() {
    var a = parseFloat(latInput.value), b = parseFloat(lonInput.value);
    if (!isNaN(a) && !isNaN(b)) {
      marker.setLatLng([a, b]);
      if (!map.hasLayer(marker)) { marker.addTo(map); }
      map.panTo([a, b]);
    }
  }
  latInput.addEventListener("change", fromInputs);
  lonInput.addEventListener("change", fromInputs);
}());
