/* The live order page (customer, rider, operators): snapshot first, then pushes over the order
   socket — status, location, ETA (with the path still ahead when the rider moved on) and chat.
   - The rider marker glides between fixes; the path ahead is trimmed as the marker moves.
   - A dropped socket reconnects with backoff and re-reads the snapshot, so no status is lost.
   - A blocked socket (it never opens, FALLBACK_AFTER times in a row) falls back to polling the
     snapshot over HTTP until a socket opens again; the final status always arrives.
   - Milestones (each status, the rider nearly there, a chat message) show in the page and, when
     the customer allowed it, as browser notifications. */
(function () {
  "use strict";
  var script = document.getElementById("order-live");
  var state = JSON.parse(document.getElementById("snapshot").textContent);
  var META = JSON.parse(document.getElementById("status-meta").textContent);
  var stringsEl = document.getElementById("live-strings");
  var T = stringsEl ? JSON.parse(stringsEl.textContent) : { risk: {}, roles: {}, chatFrom: {}, quick: {} };
  var mapEl = document.getElementById("map");
  var campus = window.CampusMap.create(mapEl);
  var map = campus.map;
  var riderMarker = null, routeLine = null, glide = null, lastFixAt = 0;
  var FINAL = { delivered: 1, completed: 1, cancelled: 1, expired: 1 };
  var ON_THE_WAY = { picked_up: 1, relay_accepted: 1, delivering: 1 };
  var NEARBY_M = 150, POLL_MS = 4000, POLL_SLOW_MS = 15000, FALLBACK_AFTER = 2;
  var nearbyTold = false;

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
  function fill(template, values) {
    return String(template || "").replace(/%\((\w+)\)s/g, function (_, k) { return values[k] == null ? "" : values[k]; });
  }
  function formatTime(iso, seconds) {
    var d = new Date(iso);
    var opts = { hour: "2-digit", minute: "2-digit" };
    if (seconds) { opts.second = "2-digit"; }
    return isNaN(d) ? "" : d.toLocaleTimeString([], opts);
  }

  // --- status -----------------------------------------------------------------------------------
  function renderTimeline() {
    var ol = document.getElementById("timeline");
    ol.innerHTML = "";
    state.timeline.forEach(function (e) {
      var li = document.createElement("li");
      li.style.setProperty("--c", e.color);
      li.dataset.status = e.status;
      var icon = document.createElement("span"); icon.className = "icon"; icon.textContent = e.icon;
      // Labels come from this page's status table, in the viewer's language (a pushed event was
      // rendered in the language of whoever caused it).
      var label = document.createElement("span"); label.className = "label";
      label.textContent = (META[e.status] || e).label;
      if (e.note) {
        var note = document.createElement("small"); note.className = "note"; note.textContent = e.note;
        label.append(document.createElement("br"), note);
      }
      var time = document.createElement("time"); time.dateTime = e.at; time.textContent = formatTime(e.at, true);
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

  // --- ETA --------------------------------------------------------------------------------------
  function renderEta() {
    var box = document.getElementById("eta");
    if (!box) { return; }
    var e = FINAL[state.status] ? null : state.eta;
    box.hidden = !!FINAL[state.status] || (!e && !state.promised_at);
    box.dataset.risk = (e && e.risk) || "";
    box.querySelector(".eta-main").hidden = !e;
    setText("eta-at", e ? formatTime(e.at) : "");
    setText("eta-range", e ? fill(T.between, { a: formatTime(e.low), b: formatTime(e.high) }) : "");
    var facts = [];
    if (e && e.waiting_for === "merchant") { facts.push(T.waitingMerchant); }
    if (e && e.stops_before) { facts.push(fill(T.stopsBefore, { n: e.stops_before })); }
    if (e && e.remaining_m) { facts.push(fill(T.remaining, { m: e.remaining_m })); }
    setText("eta-facts", facts.join(" · "));
    var promise = document.getElementById("eta-promise");
    if (promise) {
      promise.textContent = state.promised_at ? fill(T.promised, { t: formatTime(state.promised_at) }) : "";
      if (e && e.risk && state.promised_at) {
        var risk = document.createElement("span");
        risk.className = "risk " + e.risk; risk.textContent = T.risk[e.risk] || e.risk;
        promise.append(" · ", risk);
      }
    }
    if (e && ON_THE_WAY[state.status] && e.remaining_m <= NEARBY_M && !nearbyTold) {
      nearbyTold = true;
      if (state.viewer === "customer") { notify(T.nearby, T.nearbyBody, "nearby"); }
    }
  }

  // --- the path ahead ---------------------------------------------------------------------------
  function drawRoute(latlngs) {
    if (routeLine) { map.removeLayer(routeLine); routeLine = null; }
    if (latlngs && latlngs.length > 1) {
      routeLine = L.polyline(latlngs, { color: "#ff7a00", weight: 5, opacity: 0.8, dashArray: "8 6" }).addTo(map);
    }
    mapEl.dataset.routePoints = latlngs ? latlngs.length : 0;
  }
  function renderRoute() { drawRoute(state.route); }

  // Cut the path where the rider is: drop what lies behind the nearest point on it.
  function trimRoute(at) {
    var route = state.route;
    if (!route || route.length < 2 || !map._loaded) { return; }
    var p = map.latLngToLayerPoint(at), best = Infinity, cut = null;
    for (var i = 0; i < route.length - 1; i++) {
      var a = map.latLngToLayerPoint(route[i]), b = map.latLngToLayerPoint(route[i + 1]);
      var q = L.LineUtil.closestPointOnSegment(p, a, b), d = p.distanceTo(q);
      if (d < best) { best = d; cut = i; }
    }
    // Far off the path (a detour): keep it whole until the server sends the new one.
    if (cut === null || best > 60) { return; }
    drawRoute([[at.lat, at.lng]].concat(route.slice(cut + 1)));
  }

  // --- the rider marker -------------------------------------------------------------------------
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
      trimRoute(target);
      return;
    }
    if (!animate) { riderMarker.setLatLng(target); trimRoute(target); return; }
    // Glide from where the marker is to the new fix instead of jumping, over about the time
    // between fixes (so it keeps moving until the next one), within bounds.
    var now = performance.now();
    var duration = lastFixAt ? Math.max(300, Math.min(3000, now - lastFixAt)) : 900;
    lastFixAt = now;
    var from = riderMarker.getLatLng(), start = now;
    function step(t0) {
      var t = Math.min(1, (t0 - start) / duration);
      var at = L.latLng(from.lat + (target.lat - from.lat) * t, from.lng + (target.lng - from.lng) * t);
      riderMarker.setLatLng(t < 1 ? at : target);
      if (t < 1) { glide = requestAnimationFrame(step); } else { glide = null; trimRoute(target); }
    }
    glide = requestAnimationFrame(step);
  }

  // --- notifications ----------------------------------------------------------------------------
  var toasts = document.getElementById("toasts");
  function notify(title, body, tag) {
    if (toasts) {
      var item = document.createElement("div");
      item.className = "toast"; item.dataset.tag = tag || "";
      var strong = document.createElement("strong"); strong.textContent = title;
      item.append(strong);
      if (body) { var p = document.createElement("div"); p.className = "small"; p.textContent = body; item.append(p); }
      toasts.append(item);
      setTimeout(function () { item.remove(); }, 6000);
    }
    if (!("Notification" in window) || Notification.permission !== "granted" || !document.hidden) { return; }
    var options = { body: body || "", tag: (tag || "order") + ":" + state.number };
    try {
      new Notification(title, options);
    } catch (err) {  // Android Chrome: only through a service worker
      if (navigator.serviceWorker) {
        navigator.serviceWorker.getRegistration().then(function (reg) { if (reg) { reg.showNotification(title, options); } });
      }
    }
  }
  (function offerNotifications() {
    var bar = document.getElementById("notify-bar"), button = document.getElementById("notify-button");
    if (!bar || !("Notification" in window) || Notification.permission !== "default" || state.viewer !== "customer" || FINAL[state.status]) { return; }
    bar.hidden = false;
    button.addEventListener("click", function () {
      Notification.requestPermission().then(function (answer) {
        bar.hidden = true;
        if (answer === "granted") { notify(T.notifyOn, "", "notify"); }
      });
    });
  })();

  // --- chat -------------------------------------------------------------------------------------
  var chatBox = document.getElementById("chat");
  var chatSeen = {};
  function chatText(m) { return m.quick ? (T.quick[m.quick] || m.text) : m.text; }
  function chatAppend(m) {
    if (!chatBox || chatSeen[m.id]) { return false; }
    chatSeen[m.id] = true;
    var role = chatBox.dataset.role;
    var li = document.createElement("li");
    li.className = "msg " + (role && m.role === role ? "mine" : "theirs");
    li.dataset.id = m.id; li.dataset.role = m.role;
    var who = document.createElement("span"); who.className = "who"; who.textContent = m.name + " · " + (T.roles[m.role] || m.role);
    var text = document.createElement("span"); text.className = "text"; text.textContent = chatText(m);
    var time = document.createElement("time"); time.dateTime = m.at; time.textContent = formatTime(m.at);
    li.append(who, text, time);
    var log = document.getElementById("chat-log");
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
    return true;
  }
  function renderChat(chat) {
    if (!chatBox || !chat) { return; }
    chat.messages.forEach(chatAppend);
    chatBox.dataset.open = chat.open ? "1" : "0";
    document.getElementById("chat-form").hidden = !chat.open;
    var closed = document.getElementById("chat-closed");
    closed.hidden = !!chat.open; closed.textContent = chat.reason || "";
  }
  if (chatBox) {
    Array.prototype.forEach.call(document.querySelectorAll("#chat-log li"), function (li) { chatSeen[li.dataset.id] = true; });
    var chatForm = document.getElementById("chat-form");
    var sendChat = function (data) {
      var token = chatForm.querySelector("[name=csrfmiddlewaretoken]").value;
      return fetch(chatBox.dataset.api, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": token, "Accept": "application/json" },
        body: JSON.stringify(data)
      }).then(function (resp) {
        return resp.json().then(function (body) {
          if (!resp.ok) { notify(body.detail || resp.statusText, "", "chat-error"); return; }
          chatAppend(body);
        });
      }).catch(function () { chatForm.submit(); });  // no script path: the form posts itself
    };
    chatForm.addEventListener("click", function (ev) {
      var chip = ev.target.closest("button[name=quick]");
      if (!chip) { return; }
      ev.preventDefault();
      sendChat({ quick: chip.value });
    });
    chatForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var input = chatForm.querySelector("input[name=body]");
      var body = input.value.trim();
      if (!body) { return; }
      sendChat({ body: body }).then(function () { input.value = ""; });
    });
  }

  // --- messages ---------------------------------------------------------------------------------
  function render() {
    renderBanner(); renderTimeline(); renderRoute(); moveRider(state.position, false); renderEta();
    renderChat(state.chat);
  }

  function milestone(status) {
    var meta = META[status];
    if (meta && state.viewer === "customer") { notify(meta.icon + " " + meta.label, meta.hint, "status"); }
  }

  function onMessage(msg) {
    if (msg.type === "snapshot") {
      var before = state.status;
      state = msg; render();
      if (msg.status !== before) { milestone(msg.status); }
    } else if (msg.type === "status") {
      var changed = msg.status !== state.status;
      state.status = msg.status;
      if (msg.rider) { state.rider = msg.rider; }
      var seen = state.timeline.some(function (e) { return e.at === msg.event.at && e.status === msg.event.status; });
      if (!seen) { state.timeline.push(msg.event); }
      renderBanner(); renderTimeline();
      if (changed) { milestone(msg.status); }
      if (FINAL[msg.status]) {
        state.position = null; moveRider(null); state.route = []; renderRoute(); state.eta = null; renderEta();
      }
      // Everything else that follows from a status (the path, the ETA, the chat) comes with it.
      send({ type: "resync" });
    } else if (msg.type === "location") {
      if (FINAL[state.status]) { return; }
      if (state.position && msg.recorded_at <= state.position.recorded_at) { return; }
      state.position = msg; moveRider(msg, true);
    } else if (msg.type === "eta") {
      if (FINAL[state.status]) { return; }
      state.eta = msg.eta; renderEta();
      if (msg.route) { state.route = msg.route; renderRoute(); if (riderMarker) { trimRoute(riderMarker.getLatLng()); } }
    } else if (msg.type === "chat") {
      if (chatAppend(msg.message) && chatBox && msg.message.role !== chatBox.dataset.role) {
        notify(T.chatFrom[msg.message.role] || "💬", chatText(msg.message), "chat");
      }
    }
  }

  // --- the socket, and polling when it is blocked ------------------------------------------------
  var socket = null, attempts = 0, neverOpened = 0, pollTimer = null, mode = "socket";
  var conn = document.getElementById("conn");
  function send(obj) { if (socket && socket.readyState === 1) { socket.send(JSON.stringify(obj)); } }

  function poll() {
    pollTimer = null;
    fetch(script.dataset.snapshotUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (resp) { return resp.ok ? resp.json() : null; })
      .then(function (snap) { if (snap && mode === "polling") { onMessage(snap); } })
      .catch(function () { /* try again at the next tick */ })
      .then(schedulePoll);
  }
  function schedulePoll() {
    if (mode !== "polling" || pollTimer) { return; }
    var over = FINAL[state.status];
    if (over && !(state.chat && state.chat.open)) { return; }  // nothing more will change
    pollTimer = setTimeout(poll, over ? POLL_SLOW_MS : POLL_MS);
  }
  function startPolling() {
    if (mode === "polling") { return; }
    mode = "polling"; conn.className = "conn polling"; conn.title = T.polling || conn.title;
    poll();
  }
  function stopPolling() {
    mode = "socket";
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
  }

  function connect() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var opened = false;
    try {
      socket = new WebSocket(proto + location.host + script.dataset.wsPath);
    } catch (err) {  // refused outright (a policy, an old proxy): behave as a failed attempt
      socket = null;
      closed();
      return;
    }
    socket.onopen = function () {
      opened = true; attempts = 0; neverOpened = 0;
      stopPolling();
      conn.className = "conn live";
    };
    socket.onmessage = function (e) { onMessage(JSON.parse(e.data)); };
    socket.onclose = function () { if (!opened) { neverOpened += 1; } closed(); };
    function closed() {
      if (!socket) { neverOpened += 1; }
      if (mode !== "polling") { conn.className = "conn down"; }
      if (neverOpened >= FALLBACK_AFTER) { startPolling(); }
      if (FINAL[state.status] && state.status !== "delivered") { return; }
      attempts += 1;
      var delay = Math.min(15000, 500 * Math.pow(2, attempts)) * (0.75 + Math.random() * 0.5);
      setTimeout(connect, mode === "polling" ? Math.max(delay, 10000) : delay);
    }
  }
  window.orderLive = {
    state: function () { return state; },
    socket: function () { return socket; },
    mode: function () { return mode; },
    // Where the marker is drawn now (mid-glide too), or null: for tests and debugging.
    markerLatLng: function () { return riderMarker ? riderMarker.getLatLng() : null; },
    routeLatLngs: function () { return routeLine ? routeLine.getLatLngs() : []; }
  };
  connect();
})();
