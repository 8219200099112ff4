/* The prefecture outlines this site ships (booking/static/map/README.txt), for every map
   of the site: window.mapOutlines(map) draws them always, in a pane beneath the tiles, so
   that loaded tiles cover them and wherever a tile cannot load (no network, a tile server
   down) Japan shows through instead of an empty grey. Load it before the map's script. */
(function () {
  "use strict";
  // Where this script was served from: the outlines are beside it, under /static/map/.
  var here = (document.currentScript && document.currentScript.src) || window.location.href;
  function mapData(name) { return new URL("../map/" + name, here).href; }

  window.mapOutlines = function (map) {
    var L = window.L;
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
  };
}());
