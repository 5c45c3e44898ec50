/* Draws the campus from its own data (buildings, paths, stations): no tile server needed. */
(function () {
  "use strict";
  var KIND_COLOURS = {
    dorm: "#90caf9", canteen: "#ffcc80", parcel_station: "#a5d6a7", teaching: "#ce93d8",
    library: "#b39ddb", gate: "#bcaaa4", shop: "#f48fb1", other: "#cfd8dc"
  };

  function emojiIcon(text, cls) {
    return L.divIcon({ className: cls, html: text, iconSize: [28, 28], iconAnchor: [14, 14] });
  }

  function create(el) {
    var map = L.map(el, { zoomControl: true, attributionControl: false });
    if (el.dataset.tileUrl) { L.tileLayer(el.dataset.tileUrl, { maxZoom: 20 }).addTo(map); }
    var ready = fetch(el.dataset.mapUrl, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var layer = L.geoJSON(data, {
          filter: function (f) { return f.properties.feature !== "transfer_station"; },
          style: function (f) {
            if (f.properties.feature === "path") {
              return { color: f.properties.kind === "road" ? "#9e9e9e" : "#bdbdbd", weight: f.properties.kind === "road" ? 4 : 2 };
            }
            return { color: "#607d8b", weight: 1, fillColor: KIND_COLOURS[f.properties.kind] || "#ddd", fillOpacity: 0.8 };
          },
          onEachFeature: function (f, l) { if (f.properties.name) { l.bindTooltip(f.properties.name); } }
        }).addTo(map);
        data.features.forEach(function (f) {
          if (f.properties.feature === "transfer_station") {
            var c = f.geometry.coordinates;
            L.marker([c[1], c[0]], { icon: emojiIcon("🔁", "place-marker") }).bindTooltip(f.properties.name).addTo(map);
          }
        });
        var b = data.campus && data.campus.bounds;
        if (b) { map.fitBounds([[b[1], b[0]], [b[3], b[2]]]); } else { map.fitBounds(layer.getBounds()); }
        return map;
      });
    return { map: map, ready: ready, emojiIcon: emojiIcon };
  }

  window.CampusMap = { create: create, emojiIcon: emojiIcon };
})();
