/* A finished order's recorded track, replayed for a dispute: the whole path, the pickup and the
   drop-off, and a marker that plays the fixes in time order (or follows the slider). */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("replay-data").textContent);
  var el = document.getElementById("replay-map");
  var campus = window.CampusMap.create(el);
  var map = campus.map;
  var pts = data.points, latlngs = pts.map(function (p) { return [p.lat, p.lng]; });
  var seek = document.getElementById("replay-seek"), out = document.getElementById("replay-time");
  var play = document.getElementById("replay-play");
  var marker = null, timer = null;

  function fmt(iso) {
    var d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleString([], { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }
  function show(i) {
    var p = pts[i];
    if (!p) { return; }
    if (!marker) {
      marker = L.marker([p.lat, p.lng], { icon: campus.emojiIcon("🛵", "rider-marker"), zIndexOffset: 1000 }).addTo(map);
    } else { marker.setLatLng([p.lat, p.lng]); }
    seek.value = i;
    out.textContent = fmt(p.at) + (p.accuracy ? " · ±" + Math.round(p.accuracy) + " m" : "") + (p.archived ? " · ⌁" : "");
  }
  function stop() { if (timer) { clearInterval(timer); timer = null; play.textContent = "▶"; } }

  campus.ready.then(function () {
    L.marker([data.pickup.lat, data.pickup.lng], { icon: campus.emojiIcon("📍", "place-marker") }).bindTooltip(data.pickup.name).addTo(map);
    L.marker([data.dropoff.lat, data.dropoff.lng], { icon: campus.emojiIcon("🏠", "place-marker") }).bindTooltip(data.dropoff.name).addTo(map);
    var line = L.polyline(latlngs, { color: "#5e35b1", weight: 4, opacity: 0.8 }).addTo(map);
    map.fitBounds(line.getBounds().pad(0.25), { maxZoom: 18 });
    show(0);
  });
  seek.addEventListener("input", function () { stop(); show(parseInt(seek.value, 10)); });
  play.addEventListener("click", function () {
    if (timer) { stop(); return; }
    var i = parseInt(seek.value, 10);
    if (i >= pts.length - 1) { i = 0; }
    play.textContent = "❚❚";
    timer = setInterval(function () {
      show(i); i += 1;
      if (i >= pts.length) { stop(); }
    }, 250);
  });
  window.trackReplay = { points: function () { return pts; } };
})();
