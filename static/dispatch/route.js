/* The rider's planned path on the campus map (drawn from the campus's own data, no tiles). */
(function () {
  "use strict";
  var el = document.getElementById("map");
  var data = document.getElementById("route-path");
  if (!el || !data || !window.CampusMap) { return; }
  var path = JSON.parse(data.textContent).map(function (p) { return [p[1], p[0]]; });
  var campus = window.CampusMap.create(el);
  campus.ready.then(function (map) {
    if (path.length > 1) {
      var line = L.polyline(path, { color: "#1e88e5", weight: 5, opacity: 0.85 }).addTo(map);
      map.fitBounds(line.getBounds(), { padding: [20, 20] });
    }
  });
})();
