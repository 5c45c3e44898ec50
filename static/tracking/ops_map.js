/* The operators' live map: every online rider (colour by pool, size by load, grey when the last fix
   is old) and every active order (status colours), clustered, filtered, with details and the
   rider's current route on click. First draw from GET stateUrl, then /ws/ops/ pushes: positions
   in batches (at most one per second), statuses and at-risk alerts as they happen. A full
   refresh every refreshMs drops riders who went offline. */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("ops-config").textContent);
  var META = JSON.parse(document.getElementById("status-meta").textContent);
  var S = cfg.strings;
  var POOL_COLOURS = { male: "#1e88e5", female: "#d81b60", undisclosed: "#6d4c41" };
  var STALE_COLOUR = "#9e9e9e";
  var FINAL = { delivered: 1, completed: 1, cancelled: 1, expired: 1 };
  var mapEl = document.getElementById("ops-map");
  var campus = window.CampusMap.create(mapEl);
  var map = campus.map;
  // Clustering needs the map's zoom range; without tiles the campus map sets none.
  map.options.maxZoom = map.options.maxZoom || 20;
  var riderLayer = L.markerClusterGroup({ maxClusterRadius: 40, showCoverageOnHover: false });
  var orderLayer = L.markerClusterGroup({ maxClusterRadius: 30, showCoverageOnHover: false });
  var routeLayer = L.layerGroup();
  riderLayer.addTo(map); orderLayer.addTo(map); routeLayer.addTo(map);

  var riders = {}, orders = {}, staleAfter = 120, selected = null;
  var filters = { pools: {}, statuses: {}, merchant: "" };

  function esc(text) {
    var d = document.createElement("div"); d.textContent = text == null ? "" : String(text); return d.innerHTML;
  }
  function ageSeconds(iso) { return iso ? (Date.now() - Date.parse(iso)) / 1000 : Infinity; }
  function fmtTime(iso) {
    var d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  // --- riders ---------------------------------------------------------------------------------
  function riderLook(r) {
    var stale = !r.position || ageSeconds(r.position.recorded_at) > staleAfter;
    var size = Math.min(40, 14 + 6 * (r.load || 0));
    return { stale: stale, size: size, colour: stale ? STALE_COLOUR : (POOL_COLOURS[r.pool] || POOL_COLOURS.undisclosed) };
  }
  function riderIcon(r) {
    var look = riderLook(r);
    return L.divIcon({
      className: "ops-rider" + (look.stale ? " stale" : ""),
      html: '<span style="background:' + look.colour + ';width:' + look.size + "px;height:" + look.size +
        'px">' + (r.load || "") + "</span>",
      iconSize: [look.size, look.size], iconAnchor: [look.size / 2, look.size / 2]
    });
  }
  function riderVisible(r) { return !!r.position && filters.pools[r.pool] !== false; }
  function drawRider(r) {
    if (!r.position) { if (r.marker) { riderLayer.removeLayer(r.marker); r.marker = null; } return; }
    var at = [r.position.lat, r.position.lng];
    if (!r.marker) {
      r.marker = L.marker(at, { icon: riderIcon(r), title: r.name });
      r.marker.on("click", function () { selectRider(r.id); });
      r.drawnIcon = riderLook(r);
    } else {
      r.marker.setLatLng(at);
      var look = riderLook(r);
      if (!r.drawnIcon || look.stale !== r.drawnIcon.stale || look.size !== r.drawnIcon.size) {
        r.marker.setIcon(riderIcon(r)); r.drawnIcon = look;
      }
    }
    var shown = riderLayer.hasLayer(r.marker);
    if (riderVisible(r) && !shown) { riderLayer.addLayer(r.marker); }
    if (!riderVisible(r) && shown) { riderLayer.removeLayer(r.marker); }
  }

  // --- orders ---------------------------------------------------------------------------------
  function orderPlace(o) {
    var at = (o.status === "open" || o.status === "accepted") ? o.pickup : o.dropoff;
    return [at.lat, at.lng];
  }
  function orderIcon(o) {
    var m = META[o.status] || {};
    return L.divIcon({
      className: "ops-order" + (o.atRisk ? " at-risk" : ""),
      html: '<span style="--c:' + (m.color || "#999") + '">' + (m.icon || "•") + "</span>",
      iconSize: [26, 26], iconAnchor: [13, 13]
    });
  }
  function orderVisible(o) {
    if (filters.statuses[o.status] === false) { return false; }
    if (filters.merchant && (!o.merchant || String(o.merchant.id) !== filters.merchant)) { return false; }
    return true;
  }
  function drawOrder(o) {
    if (!o.marker) {
      o.marker = L.marker(orderPlace(o), { icon: orderIcon(o), title: o.number });
      o.marker.on("click", function () { selectOrder(o.number); });
    } else {
      o.marker.setLatLng(orderPlace(o)); o.marker.setIcon(orderIcon(o));
    }
    var shown = orderLayer.hasLayer(o.marker);
    if (orderVisible(o) && !shown) { orderLayer.addLayer(o.marker); }
    if (!orderVisible(o) && shown) { orderLayer.removeLayer(o.marker); }
  }
  function dropOrder(number) {
    var o = orders[number];
    if (!o) { return; }
    if (o.marker) { orderLayer.removeLayer(o.marker); }
    delete orders[number];
  }

  // --- details and routes ---------------------------------------------------------------------
  var details = document.getElementById("details");
  function showDetails(html) { details.innerHTML = html; details.hidden = false; }

  function selectRider(id) {
    var r = riders[id];
    if (!r) { return; }
    selected = { rider: id };
    var look = riderLook(r);
    showDetails(
      "<h2>🛵 " + esc(r.name) + "</h2>" +
      '<p class="small"><span class="pool-dot" style="background:' + look.colour + '"></span> ' + esc(r.pool) +
      " · " + esc(S.load) + ": " + esc(r.load) + (r.capacity ? "/" + esc(r.capacity) : "") +
      " · ★ " + esc(r.credit) + "</p>" +
      '<p class="small muted">' + (r.position ? fmtTime(r.position.recorded_at) : "—") +
      (look.stale ? " · " + esc(S.stale) : "") + "</p>" +
      '<h3>' + esc(S.route) + '</h3><ol class="small" id="route-stops"><li class="muted">…</li></ol>'
    );
    routeLayer.clearLayers();
    fetch(cfg.routeUrl.replace("/0/", "/" + id + "/"), { credentials: "same-origin" })
      .then(function (resp) { return resp.json(); })
      .then(function (route) {
        if (!selected || selected.rider !== id) { return; }
        routeLayer.clearLayers();
        if (route.path && route.path.length > 1) {
          L.polyline(route.path, { color: look.colour, weight: 4, opacity: 0.8, dashArray: "6 6" }).addTo(routeLayer);
        }
        var ol = document.getElementById("route-stops");
        ol.innerHTML = "";
        (route.stops || []).forEach(function (stop, i) {
          var li = document.createElement("li");
          li.textContent = (stop.kind === "pickup" ? "📍 " : "🏠 ") + stop.place.name + " · " + stop.number +
            (stop.eta ? " · " + fmtTime(stop.eta) : "");
          ol.appendChild(li);
          L.marker([stop.place.lat, stop.place.lng], {
            icon: L.divIcon({ className: "ops-stop", html: String(i + 1), iconSize: [20, 20], iconAnchor: [10, 10] })
          }).addTo(routeLayer);
        });
        if (!ol.children.length) { ol.innerHTML = '<li class="muted">' + esc(S.noRoute) + "</li>"; }
      })
      .catch(function () { /* the details stay without a route */ });
  }

  function selectOrder(number) {
    var o = orders[number];
    if (!o) { return; }
    selected = { order: number };
    var m = META[o.status] || {};
    routeLayer.clearLayers();
    L.polyline([[o.pickup.lat, o.pickup.lng], [o.dropoff.lat, o.dropoff.lng]], { color: m.color || "#999", weight: 3 }).addTo(routeLayer);
    showDetails(
      '<h2><span class="status-pill" style="--c:' + (m.color || "#999") + '">' + esc(m.icon) + " " + esc(m.label) + "</span> " +
      esc(o.kind_label) + "</h2>" +
      '<p class="small">' + esc(o.number) + (o.atRisk ? ' · <span class="tag">' + esc(S.atRisk) + "</span>" : "") + "</p>" +
      "<p>📍 " + esc(o.pickup.name) + " → 🏠 " + esc(o.dropoff.name) + "</p>" +
      '<p class="small muted">' + (o.rider_name ? "🛵 " + esc(o.rider_name) + " · " : "") +
      (o.promised_at ? "⏰ " + fmtTime(o.promised_at) : "") + (o.merchant ? " · " + esc(o.merchant.name) : "") + "</p>" +
      '<p><a class="button" href="' + cfg.orderUrl.replace("NUMBER", o.number) + '">' + esc(S.open) + "</a></p>"
    );
  }

  // --- state: first draw and refreshes --------------------------------------------------------
  function applyState(data) {
    staleAfter = data.stale_after_s || staleAfter;
    var seenRiders = {}, seenOrders = {};
    data.riders.forEach(function (r) {
      seenRiders[r.id] = 1;
      var have = riders[r.id];
      if (have) {
        // A fix pushed after this state was read must not be replaced by the older one.
        if (have.position && r.position && have.position.recorded_at > r.position.recorded_at) { r.position = have.position; }
        r.marker = have.marker; r.drawnIcon = have.drawnIcon;
      }
      riders[r.id] = r; drawRider(r);
    });
    Object.keys(riders).forEach(function (id) {
      if (!seenRiders[id]) { if (riders[id].marker) { riderLayer.removeLayer(riders[id].marker); } delete riders[id]; }
    });
    data.orders.forEach(function (o) {
      seenOrders[o.number] = 1;
      var have = orders[o.number];
      if (have) { o.marker = have.marker; o.atRisk = have.atRisk; }
      orders[o.number] = o; drawOrder(o);
    });
    Object.keys(orders).forEach(function (n) { if (!seenOrders[n]) { dropOrder(n); } });
    fillMerchants(data);
    counts();
  }
  function fillMerchants(data) {
    if (!data.has_merchants) { return; }
    var box = document.getElementById("merchant-filter"), select = box.querySelector("select"), known = {};
    box.hidden = false;
    Array.prototype.forEach.call(select.options, function (opt) { known[opt.value] = 1; });
    data.orders.forEach(function (o) {
      if (o.merchant && !known[o.merchant.id]) {
        known[o.merchant.id] = 1;
        var opt = document.createElement("option"); opt.value = o.merchant.id; opt.textContent = o.merchant.name;
        select.appendChild(opt);
      }
    });
  }
  function counts() {
    document.getElementById("rider-count").textContent = Object.keys(riders).length;
    document.getElementById("order-count").textContent = Object.keys(orders).length;
  }
  var refreshTimer = null;
  function refresh() {
    refreshTimer = null;
    return fetch(cfg.stateUrl, { credentials: "same-origin" })
      .then(function (resp) { return resp.json(); })
      .then(applyState)
      .catch(function () { /* next refresh */ });
  }
  function refreshSoon(ms) { if (!refreshTimer) { refreshTimer = setTimeout(refresh, ms); } }

  // --- filters --------------------------------------------------------------------------------
  var form = document.getElementById("filters");
  function readFilters() {
    Array.prototype.forEach.call(form.querySelectorAll("input[name=pool]"), function (el) { filters.pools[el.value] = el.checked; });
    Array.prototype.forEach.call(form.querySelectorAll("input[name=status]"), function (el) { filters.statuses[el.value] = el.checked; });
    filters.merchant = form.querySelector("select[name=merchant]").value;
    Object.keys(riders).forEach(function (id) { drawRider(riders[id]); });
    Object.keys(orders).forEach(function (n) { drawOrder(orders[n]); });
  }
  form.addEventListener("change", readFilters);
  readFilters();

  // --- pushes ---------------------------------------------------------------------------------
  function onMessage(msg) {
    if (msg.type === "positions") {
      msg.positions.forEach(function (p) {
        var r = riders[p.rider];
        if (!r) { refreshSoon(2000); return; }  // a rider who came online since the last read
        if (r.position && p.recorded_at <= r.position.recorded_at) { return; }
        r.position = p; drawRider(r);
      });
    } else if (msg.type === "status") {
      var o = orders[msg.number];
      if (FINAL[msg.status] || msg.status === "pending") { dropOrder(msg.number); }
      else if (o) { o.status = msg.status; drawOrder(o); }
      else { refreshSoon(2000); }
      refreshSoon(5000);  // riders' loads follow
      counts();
      if (selected && selected.order === msg.number && orders[msg.number]) { selectOrder(msg.number); }
    } else if (msg.type === "at_risk") {
      var risky = orders[msg.number];
      if (risky) { risky.atRisk = true; drawOrder(risky); }
      var li = document.createElement("li");
      li.className = "card small";
      li.textContent = "⚠️ " + msg.number + " · " + S.atRisk + (msg.reason ? ": " + msg.reason : "");
      document.getElementById("alerts").prepend(li);
    }
  }

  var socket = null, attempts = 0, conn = document.getElementById("conn");
  function connect() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(proto + location.host + cfg.wsPath);
    socket.onopen = function () { attempts = 0; conn.className = "conn live"; refresh(); };
    socket.onmessage = function (e) { onMessage(JSON.parse(e.data)); };
    socket.onclose = function () {
      conn.className = "conn down";
      attempts += 1;
      setTimeout(connect, Math.min(30000, 1000 * Math.pow(2, attempts)) * (0.75 + Math.random() * 0.5));
    };
  }

  // Stale riders turn grey without waiting for a push.
  setInterval(function () { Object.keys(riders).forEach(function (id) { drawRider(riders[id]); }); }, 10000);
  setInterval(refresh, cfg.refreshMs);
  campus.ready.then(refresh);
  connect();

  window.opsMap = {
    riders: function () { return riders; },
    orders: function () { return orders; },
    // How a rider is drawn now, for tests: null when not on the map.
    riderLook: function (id) {
      var r = riders[id];
      if (!r || !r.marker) { return null; }
      var look = riderLook(r), at = r.marker.getLatLng();
      return { lat: at.lat, lng: at.lng, stale: look.stale, colour: look.colour, size: look.size, shown: riderLayer.hasLayer(r.marker) };
    },
    socket: function () { return socket; }
  };
})();
