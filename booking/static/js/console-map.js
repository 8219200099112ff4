// The operator's map: click or drag the marker to correct a space's coordinates.
// The latitude/longitude fields stay the source of truth; without JavaScript or tiles
// the operator simply types them.
(function () {
  "use strict";

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
  window.mapOutlines(map);
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
