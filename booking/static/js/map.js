// Map of the search results: an extra on top of the result list, which works without it.
// Leaflet is served by this site (xstatic-leaflet), tiles from the configured URL.
(function () {
  "use strict";

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
    window.mapOutlines(map);
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
