/* The rider page while online: stream GPS fixes over /ws/rider/ (HTTP POST when the socket is down),
   throttled by time and distance, with the phone's own timestamp. */
(function () {
  "use strict";
  var postUrl = document.currentScript.dataset.postUrl;
  var MIN_INTERVAL_MS = 3000, MIN_DISTANCE_M = 5;
  var last = null, socket = null, queue = [];
  var stateEl = document.getElementById("gps-state");

  function csrf() { var m = document.cookie.match(/csrftoken=([^;]+)/); return m ? m[1] : ""; }
  function metres(a, b) {
    var r = 6371000, p = Math.PI / 180;
    var dLat = (b.lat - a.lat) * p, dLng = (b.lng - a.lng) * p;
    var h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * p) * Math.cos(b.lat * p) * Math.sin(dLng / 2) ** 2;
    return 2 * r * Math.asin(Math.sqrt(h));
  }

  function connect() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(proto + location.host + "/ws/rider/");
    socket.onopen = flush;
    socket.onmessage = function (e) {
      var msg = JSON.parse(e.data);
      if (msg.type === "error" && stateEl) { stateEl.textContent = msg.message; }
      if (msg.type === "status") { setTimeout(function () { location.reload(); }, 500); }
    };
    socket.onclose = function () { socket = null; setTimeout(connect, 3000); };
  }

  function flush() {
    while (queue.length) {
      var fix = queue[0];
      if (socket && socket.readyState === 1) { socket.send(JSON.stringify(fix)); queue.shift(); continue; }
      fetch(postUrl, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
        body: JSON.stringify(fix)
      }).catch(function () {});
      queue.shift();
    }
  }

  function onFix(p) {
    var fix = { type: "location", lat: p.coords.latitude, lng: p.coords.longitude,
                accuracy: p.coords.accuracy, recorded_at: new Date(p.timestamp).toISOString() };
    if (last && p.timestamp - last.t < MIN_INTERVAL_MS && metres(last, fix) < MIN_DISTANCE_M) { return; }
    last = { t: p.timestamp, lat: fix.lat, lng: fix.lng };
    queue.push(fix);
    flush();
  }

  if ("geolocation" in navigator) {
    navigator.geolocation.watchPosition(onFix, function (err) {
      if (stateEl) { stateEl.textContent = err.message; }
    }, { enableHighAccuracy: true, maximumAge: 2000, timeout: 20000 });
  }
  connect();
})();
