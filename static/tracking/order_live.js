/* The customer's live order page: snapshot first, then status and location deltas.
   Reconnects with backoff and re-reads the snapshot, so a dropped socket never loses a status. */
(function () {
  "use strict";
  var script = document.getElementById("order-live");
  var state = JSON.parse(document.getElementById("snapshot").textContent);
  var META = JSON.parse(document.getElementById("status-meta").textContent);
  var mapEl = document.getElementById("map");
  var campus = window.CampusMap.create(mapEl);
  var map = campus.map;
  var riderMarker = null, routeLine = null, glide = null;
  var FINAL = { delivered: 1, completed: 1, cancelled: 1, expired: 1 };

  campus.ready.then(function () {
    L.marker([state.pickup.lat, state.pickup.lng], { icon: campus.emojiIcon("📍", "place-marker") })
      .bindTooltip(state.pickup.name).addTo(map);
    L.marker([state.dropoff.lat, state.dropoff.lng], { icon: campus.emojiIcon("🏠", "place-marker") })
      .bindTooltip(state.dropoff.name).addTo(map);
    // On a phone the whole campus leaves the order a few pixels wide: show this order's places.
    var points = [[state.pickup.lat, state.pickup.lng], [state.dropoff.lat, state.dropoff.lng]]
      .concat(state.route || []);
    if (state.position) { points.push([state.position.lat, state.position.lng]); }
    map.fitBounds(L.latLngBounds(points).pad(0.25), { maxZoom: 17 });
    render();
  });

  function setText(id, text) { var el = document.getElementById(id); if (el) { el.textContent = text; } }

  function formatTime(iso) {
    var d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function renderTimeline() {
    var ol = document.getElementById("timeline");
    ol.innerHTML = "";
    state.timeline.forEach(function (e) {
      var li = document.createElement("li");
      li.style.setProperty("--c", e.color);
      li.dataset.status = e.status;
      var icon = document.createElement("span"); icon.className = "icon"; icon.textContent = e.icon;
      var label = document.createElement("span"); label.className = "label"; label.textContent = e.label;
      var time = document.createElement("time"); time.dateTime = e.at; time.textContent = formatTime(e.at);
      li.append(icon, label, time);
      ol.appendChild(li);
    });
  }

  function renderBanner() {
    var meta = META[state.status] || state;
    document.getElementById("banner").style.setProperty("--c", meta.color);
    setText("banner-icon", meta.icon);
    setText("banner-label", meta.label);
    setText("banner-hint", meta.hint);
    if (state.rider) { setText("rider-name", state.rider.name); }
    document.getElementById("rider-card").hidden = !state.rider;
    // No order can be cancelled once it is over; the server refuses it anyway.
    var cancel = document.getElementById("cancel-form");
    if (cancel && FINAL[state.status]) { cancel.hidden = true; }
    document.body.dataset.status = state.status;
  }

  function renderRoute() {
    if (routeLine) { map.removeLayer(routeLine); routeLine = null; }
    if (state.route && state.route.length > 1) {
      routeLine = L.polyline(state.route, { color: "#ff7a00", weight: 5, opacity: 0.8, dashArray: "8 6" }).addTo(map);
    }
  }

  function moveRider(pos, animate) {
    // A glide still running would move (or, once removed, crash on) the marker after this call.
    if (glide) { cancelAnimationFrame(glide); glide = null; }
    if (!pos) {
      if (riderMarker) { map.removeLayer(riderMarker); riderMarker = null; }
      // The map must not keep telling where the rider was once they are no longer shown.
      delete mapEl.dataset.riderLat; delete mapEl.dataset.riderLng;
      return;
    }
    var target = L.latLng(pos.lat, pos.lng);
    mapEl.dataset.riderLat = pos.lat; mapEl.dataset.riderLng = pos.lng;
    // Keep the rider in view (before the campus has loaded there is no view yet).
    if (map._loaded && !map.getBounds().contains(target)) { map.panInside(target, { padding: [40, 40] }); }
    if (!riderMarker) {
      riderMarker = L.marker(target, { icon: campus.emojiIcon("🛵", "rider-marker"), zIndexOffset: 1000 }).addTo(map);
      riderMarker.getElement && riderMarker.getElement() && (riderMarker.getElement().id = "rider-marker");
      return;
    }
    if (!animate) { riderMarker.setLatLng(target); return; }
    // Glide from where the marker is to the new fix instead of jumping.
    var from = riderMarker.getLatLng(), start = performance.now(), duration = 900;
    function step(now) {
      var t = Math.min(1, (now - start) / duration);
      riderMarker.setLatLng([from.lat + (target.lat - from.lat) * t, from.lng + (target.lng - from.lng) * t]);
      if (t < 1) { glide = requestAnimationFrame(step); }
    }
    glide = requestAnimationFrame(step);
  }

  function render() {
    renderBanner(); renderTimeline(); renderRoute(); moveRider(state.position, false);
  }

  function onMessage(msg) {
    if (msg.type === "snapshot") {
      state = msg; render();
    } else if (msg.type === "status") {
      state.status = msg.status;
      if (msg.rider) { state.rider = msg.rider; }
      var seen = state.timeline.some(function (e) { return e.at === msg.event.at && e.status === msg.event.status; });
      if (!seen) { state.timeline.push(msg.event); }
      renderBanner(); renderTimeline();
      if (FINAL[msg.status]) { state.position = null; moveRider(null); state.route = []; renderRoute(); }
      else { send({ type: "resync" }); }
    } else if (msg.type === "location") {
      if (FINAL[state.status]) { return; }
      if (state.position && msg.recorded_at <= state.position.recorded_at) { return; }
      state.position = msg; moveRider(msg, true);
    }
  }

  var socket = null, attempts = 0;
  function send(obj) { if (socket && socket.readyState === 1) { socket.send(JSON.stringify(obj)); } }
  function connect() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(proto + location.host + script.dataset.wsPath);
    var conn = document.getElementById("conn");
    socket.onopen = function () { attempts = 0; conn.className = "conn live"; };
    socket.onmessage = function (e) { onMessage(JSON.parse(e.data)); };
    socket.onclose = function () {
      conn.className = "conn down";
      if (FINAL[state.status] && state.status !== "delivered") { return; }
      attempts += 1;
      var delay = Math.min(15000, 500 * Math.pow(2, attempts)) * (0.75 + Math.random() * 0.5);
      setTimeout(connect, delay);
    };
  }
  window.orderLive = {
    state: function () { return state; },
    socket: function () { return socket; },
    // Where the marker is drawn now (mid-glide too), or null: for tests and debugging.
    markerLatLng: function () { return riderMarker ? riderMarker.getLatLng() : null; }
  };
  connect();
})();
