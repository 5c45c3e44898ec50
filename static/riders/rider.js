/* The rider board: live location while online, new-order alerts, a board that refreshes itself.

   Location (only while online):
   - watchPosition; a fix is kept when it is MIN_INTERVAL_MS after the last kept one and at least
     MIN_DISTANCE_M away from it, or HEARTBEAT_MS after it wherever it is. Each fix carries the
     phone's own timestamp and accuracy.
   - every kept fix goes into a queue in localStorage first, then out in order: over /ws/rider/ while
     the socket is open (each answered by an "ack" or an "error" frame), or by HTTP POST once the
     socket failed to open FALLBACK_AFTER times in a row (WebSockets blocked by a campus proxy).
     A fix taken without network waits in the queue, survives a reload, and leaves when the network
     returns. The server keeps late fixes for the track; "stale_location" answers are expected.
   - the socket reconnects by itself: exponential backoff with jitter, at once when the phone says
     it is back online; an unanswered fix for ACK_TIMEOUT_MS means a dead socket.
   - Wake Lock keeps the screen on while online, where the browser has it.

   Board: a light poll of the board fragment (and at once on a pushed "status"/"board"/"offer"
   message); a new open order or task beeps (WebAudio) and vibrates. */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("rider-config").textContent);
  var S = cfg.strings || {};
  var MIN_INTERVAL_MS = 3000, MIN_DISTANCE_M = 5, HEARTBEAT_MS = 30000;
  var BACKOFF_BASE_MS = 1000, BACKOFF_MAX_MS = 30000, FALLBACK_AFTER = 3;
  var ACK_TIMEOUT_MS = 10000, WINDOW = 50, QUEUE_MAX = 5000, BOARD_POLL_MS = 10000;
  var QUEUE_KEY = "rider.fixes." + cfg.userId, SEQ_KEY = "rider.seq." + cfg.userId;

  var stateEl = document.getElementById("rider-state");
  var gpsEl = document.getElementById("gps-state");
  var netEl = document.getElementById("net-state");
  var boardEl = document.getElementById("board");

  function setGps(text) { if (gpsEl && text) { gpsEl.textContent = text; } }
  function csrf() { var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/); return m ? decodeURIComponent(m[1]) : ""; }
  function metres(a, b) {
    var r = 6371000, p = Math.PI / 180;
    var dLat = (b.lat - a.lat) * p, dLng = (b.lng - a.lng) * p;
    var h = Math.pow(Math.sin(dLat / 2), 2) +
      Math.cos(a.lat * p) * Math.cos(b.lat * p) * Math.pow(Math.sin(dLng / 2), 2);
    return 2 * r * Math.asin(Math.sqrt(h));
  }

  // --- the queue of fixes, kept on the device ------------------------------------------------
  function loadQueue() {
    try {
      var q = JSON.parse(localStorage.getItem(QUEUE_KEY) || "[]");
      return Array.isArray(q) ? q : [];
    } catch (e) { return []; }
  }
  var queue = loadQueue();
  var inflight = 0;  // the first `inflight` fixes went out on the current socket, unanswered yet

  function saveQueue() {
    try { localStorage.setItem(QUEUE_KEY, JSON.stringify(queue)); } catch (e) { /* full: memory only */ }
    showNet();
  }

  // Each fix carries a sequence number the server echoes in its answer.
  var seq = parseInt(localStorage.getItem(SEQ_KEY) || "0", 10) || 0;
  function nextSeq() {
    seq += 1;
    try { localStorage.setItem(SEQ_KEY, String(seq)); } catch (e) { /* memory only */ }
    return seq;
  }

  function enqueue(fix) {
    fix.seq = nextSeq();
    queue.push(fix);
    if (queue.length > QUEUE_MAX) { queue.splice(inflight, queue.length - QUEUE_MAX); }
    saveQueue();
    flush();
  }

  // An answer settles the fix it names, by its seq or else its timestamp (and, answers coming
  // in order, every fix sent before it); an answer naming nothing settles the oldest.
  function settle(msg) {
    if (!inflight) { return; }
    var hasSeq = msg.seq !== undefined && msg.seq !== null;
    var t = Date.parse(msg.recorded_at || msg.ref || "");
    var n = hasSeq || !isNaN(t) ? 0 : 1;
    for (var i = 0; i < inflight && !n; i++) {
      if (hasSeq ? queue[i].seq === msg.seq : Date.parse(queue[i].recorded_at) === t) { n = i + 1; }
    }
    if (!n) { return; }  // an answer to a fix already settled (sent twice across a reconnect)
    queue.splice(0, n);
    inflight -= n;
    saveQueue();
    armAckTimer();
    flush();
  }

  // --- the socket ----------------------------------------------------------------------------
  var socket = null, socketOpen = false, attempts = 0, failures = 0, mode = "ws";
  var reconnectTimer = null, ackTimer = null, stopped = false;

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (stopped || socket) { return; }
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var ws, opened = false;
    try { ws = new WebSocket(proto + location.host + cfg.wsPath); } catch (e) { onSocketGone(false); return; }
    socket = ws;
    ws.onopen = function () {
      if (socket !== ws) { return; }
      opened = true; socketOpen = true; attempts = 0; failures = 0; mode = "ws"; inflight = 0;
      showNet();
      flush();
    };
    ws.onmessage = function (e) {
      if (socket !== ws) { return; }
      var msg;
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      onMessage(msg);
    };
    ws.onclose = function (e) {
      if (socket !== ws) { return; }
      if (e.code === 4403) { socket = null; socketOpen = false; stop(); return; }
      dropSocket();
      onSocketGone(opened);
    };
  }

  function dropSocket() {
    var ws = socket;
    socket = null; socketOpen = false; inflight = 0;
    clearTimeout(ackTimer);
    ackTimer = null;
    if (ws) { try { ws.close(); } catch (e) { /* already closed */ } }
  }

  function onSocketGone(hadOpened) {
    if (!hadOpened && navigator.onLine !== false) {
      failures += 1;
      if (failures >= FALLBACK_AFTER) { mode = "http"; }
    }
    showNet();
    scheduleReconnect();
    flush();
  }

  function scheduleReconnect() {
    if (stopped || reconnectTimer) { return; }
    if (navigator.onLine === false) { return; }  // the "online" event reconnects
    attempts += 1;
    var cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, attempts - 1));
    var delay = cap / 2 + Math.random() * cap / 2;  // jitter: riders don't all come back at once
    reconnectTimer = setTimeout(connect, delay);
  }

  function armAckTimer() {
    clearTimeout(ackTimer);
    ackTimer = null;
    if (inflight && socketOpen) {
      ackTimer = setTimeout(function () { dropSocket(); onSocketGone(true); }, ACK_TIMEOUT_MS);
    }
  }

  function onMessage(msg) {
    if (msg.type === "ack") {
      settle(msg);
    } else if (msg.type === "error") {
      if (msg.code === "forbidden") { settle(msg); stop(msg.message); return; }
      if (msg.code !== "stale_location" && msg.message) { setGps(msg.message); }
      settle(msg);
    } else if (msg.type === "status" || msg.type === "board" || msg.type === "offer") {
      refreshBoard();
    }
  }

  // --- sending -------------------------------------------------------------------------------
  var posting = false, httpTimer = null, httpAttempts = 0;

  function flush() {
    if (!queue.length || stopped || posting) { return; }
    if (socketOpen) {
      while (inflight < queue.length && inflight < WINDOW) {
        socket.send(JSON.stringify(queue[inflight]));
        inflight += 1;
      }
      if (!ackTimer) { armAckTimer(); }
      return;
    }
    if (mode === "http" && navigator.onLine !== false) { postNext(); }
  }

  function postNext() {
    if (posting || !queue.length || socketOpen || stopped) { return; }
    posting = true;
    var fix = queue[0];
    fetch(cfg.locationUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify(fix)
    }).then(function (r) {
      posting = false;
      if (r.ok || r.status === 400 || r.status === 409) {
        httpAttempts = 0;
        if (queue[0] === fix) { queue.shift(); saveQueue(); }
        flush();
        return;
      }
      if (r.status === 401 || r.status === 403) {
        if (queue[0] === fix) { queue.shift(); saveQueue(); }
        r.json().then(function (body) { stop(body && body.detail); }, function () { stop(); });
        return;
      }
      retryHttp();
    }, function () { posting = false; retryHttp(); });
  }

  function retryHttp() {
    clearTimeout(httpTimer);
    httpAttempts += 1;
    var cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, httpAttempts - 1));
    httpTimer = setTimeout(flush, cap / 2 + Math.random() * cap / 2);
  }

  function showNet() {
    if (stateEl) {
      stateEl.dataset.mode = mode;
      stateEl.dataset.queued = String(queue.length);
      stateEl.dataset.connected = socketOpen ? "1" : "0";
    }
    if (!netEl) { return; }
    var text = "";
    if (queue.length && (navigator.onLine === false || !socketOpen || queue.length >= 3)) {
      text = (S.queued || "%(n)s").replace("%(n)s", queue.length);
    }
    if (mode === "http") { text = (S.http || "") + (text ? " · " + text : ""); }
    netEl.textContent = text;
    netEl.hidden = !text;
  }

  // --- location ------------------------------------------------------------------------------
  var watchId = null, lastKept = null, heartbeat = null;

  function onPosition(p) {
    var at = p.timestamp || Date.now();
    var fix = {
      type: "location",
      lat: p.coords.latitude,
      lng: p.coords.longitude,
      accuracy: p.coords.accuracy,
      recorded_at: new Date(at).toISOString()
    };
    if (lastKept) {
      var dt = at - lastKept.t;
      if (dt < MIN_INTERVAL_MS) { return; }
      if (dt < HEARTBEAT_MS && metres(lastKept, fix) < MIN_DISTANCE_M) { return; }
    }
    lastKept = { t: at, lat: fix.lat, lng: fix.lng };
    setGps(S.sharing);
    enqueue(fix);
  }

  function onGpsError(err) { setGps(err.code === 1 ? S.noGps : err.message); }

  function startGps() {
    if (!("geolocation" in navigator)) { setGps(S.noGps); return; }
    var options = { enableHighAccuracy: true, maximumAge: 0, timeout: 30000 };
    watchId = navigator.geolocation.watchPosition(onPosition, onGpsError, options);
    // watchPosition is silent while the phone stands still: ask now and then.
    heartbeat = setInterval(function () {
      if (!lastKept || Date.now() - lastKept.t >= HEARTBEAT_MS) {
        navigator.geolocation.getCurrentPosition(onPosition, onGpsError, options);
      }
    }, HEARTBEAT_MS / 3);
  }

  function stop(message) {
    stopped = true;
    if (watchId !== null) { navigator.geolocation.clearWatch(watchId); watchId = null; }
    clearInterval(heartbeat);
    clearTimeout(reconnectTimer);
    clearTimeout(httpTimer);
    dropSocket();
    releaseWakeLock();
    setGps(message);
    // The server says we may not share (offline, suspended): show the page as it now stands.
    setTimeout(function () { location.reload(); }, 2000);
  }

  // --- wake lock -----------------------------------------------------------------------------
  var wakeLock = null;
  function keepAwake() {
    if (stopped || !("wakeLock" in navigator) || document.visibilityState !== "visible" || wakeLock) { return; }
    navigator.wakeLock.request("screen").then(function (lock) {
      wakeLock = lock;
      lock.addEventListener("release", function () { wakeLock = null; });
    }).catch(function () { /* refused (battery saver): nothing to do */ });
  }
  function releaseWakeLock() { if (wakeLock) { wakeLock.release().catch(function () {}); wakeLock = null; } }

  // --- alerts --------------------------------------------------------------------------------
  var audio = null, alerts = 0, baseTitle = document.title;
  function unlockAudio() {
    var AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) { return; }
    if (!audio) { try { audio = new AC(); } catch (e) { return; } }
    if (audio.state === "suspended") { audio.resume().catch(function () {}); }
  }
  document.addEventListener("pointerdown", unlockAudio, { passive: true });
  document.addEventListener("keydown", unlockAudio);

  function beep() {
    unlockAudio();
    if (!audio) { return; }
    var t = audio.currentTime;
    [0, 0.22, 0.44].forEach(function (offset, i) {
      var osc = audio.createOscillator(), gain = audio.createGain();
      osc.type = "square";
      osc.frequency.value = i === 2 ? 1320 : 880;
      gain.gain.setValueAtTime(0.0001, t + offset);
      gain.gain.exponentialRampToValueAtTime(0.3, t + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + offset + 0.18);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start(t + offset);
      osc.stop(t + offset + 0.2);
    });
  }

  function alertNew(count) {
    alerts += count;
    beep();
    if (navigator.vibrate) { navigator.vibrate([250, 120, 250, 120, 400]); }
    document.title = "🔔 " + (S.newOrder || "") + " · " + baseTitle;
    if (boardEl) { boardEl.classList.add("flash"); setTimeout(function () { boardEl.classList.remove("flash"); }, 1500); }
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { document.title = baseTitle; }
  });

  // --- the board -----------------------------------------------------------------------------
  function boardKeys() {
    if (!boardEl) { return []; }
    var keys = [];
    boardEl.querySelectorAll(".order-card[data-number]").forEach(function (el) { keys.push(el.dataset.number); });
    return keys;
  }
  var known = boardKeys(), lastHtml = null, boardBusy = false;

  function refreshBoard() {
    if (!boardEl || boardBusy) { return; }
    boardBusy = true;
    fetch(cfg.boardUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" }, cache: "no-store" })
      .then(function (r) {
        if (!r.ok || r.redirected) { throw new Error("board " + r.status); }
        return r.text();
      }).then(function (html) {
        boardBusy = false;
        if (html === lastHtml) { return; }
        lastHtml = html;
        boardEl.innerHTML = html;
        var keys = boardKeys();
        var fresh = keys.filter(function (k) { return known.indexOf(k) === -1; });
        known = keys;
        if (fresh.length) { alertNew(fresh.length); }
      }).catch(function () { boardBusy = false; });
  }
  setInterval(function () { if (document.visibilityState === "visible") { refreshBoard(); } }, BOARD_POLL_MS);

  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) { e.preventDefault(); }
  });

  // --- start ---------------------------------------------------------------------------------
  window.addEventListener("online", function () {
    attempts = 0; httpAttempts = 0;
    if (!stopped && cfg.online) { connect(); flush(); }
    refreshBoard();
  });
  // The phone says the network is gone: fixes stay in the queue (not sent into a dead socket);
  // the "online" event reconnects at once.
  window.addEventListener("offline", function () {
    if (socket) { dropSocket(); }
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    showNet();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState !== "visible") { return; }
    refreshBoard();
    if (cfg.online && !stopped) { keepAwake(); if (!socket) { connect(); } flush(); }
  });

  window.riderApp = {
    queue: function () { return queue.slice(); },
    mode: function () { return mode; },
    connected: function () { return socketOpen; },
    alerts: function () { return alerts; },
    refreshBoard: refreshBoard,
    beep: beep
  };

  if (cfg.online) {
    connect();
    startGps();
    keepAwake();
    showNet();
  } else if (queue.length) {
    // Offline now: fixes left from an earlier shift can no longer be sent (never tracked offline).
    queue = [];
    saveQueue();
  }
})();
