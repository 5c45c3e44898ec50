// The merchant's live inbox. The socket says that something changed; the page then fetches the
// ticket list fragment again (so a reconnect never misses an order). A new order rings (Web Audio,
// once the staff turned the sound on: browsers allow sound only after a tap) and flashes the tab
// title until someone looks at the page.
(function () {
  var inbox = document.getElementById("inbox");
  if (!inbox) { return; }
  var fragmentUrl = inbox.dataset.fragmentUrl;
  var wsPath = inbox.dataset.wsPath;
  var conn = document.getElementById("conn");
  var connLabel = document.getElementById("conn-label");
  var toggle = document.getElementById("sound-toggle");
  var baseTitle = document.title;
  var state = { rings: 0, flashing: false, soundOn: false, refreshes: 0, connected: false };
  var audio = null;
  var flashTimer = null;
  var attempts = 0;
  var inflight = null;
  var again = false;

  function knownNew() {
    var cols = document.getElementById("inbox-cols");
    return cols ? (cols.dataset.newNumbers || "").split(" ").filter(Boolean) : [];
  }

  function beep() {
    if (!state.soundOn || !audio) { return; }
    var now = audio.currentTime;
    [0, 0.25].forEach(function (offset, i) {
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = i ? 1175 : 880;
      gain.gain.setValueAtTime(0.0001, now + offset);
      gain.gain.exponentialRampToValueAtTime(0.4, now + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.22);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + offset);
      osc.stop(now + offset + 0.24);
    });
  }

  function flashTitle(count) {
    stopFlash();
    state.flashing = true;
    var on = false;
    var text = "(" + count + ") " + inbox.dataset.newTitle;
    document.title = text;
    flashTimer = setInterval(function () {
      on = !on;
      document.title = on ? "🔔 " + text : text;
    }, 800);
  }

  function stopFlash() {
    if (flashTimer) { clearInterval(flashTimer); flashTimer = null; }
    state.flashing = false;
    document.title = baseTitle;
  }

  function ring(numbers) {
    state.rings += 1;
    beep();
    flashTitle(knownNew().length || 1);
    numbers.forEach(function (n) {
      var el = document.getElementById("ticket-" + n);
      if (el) { el.classList.add("fresh"); }
    });
  }

  function refresh(ringFor) {
    if (inflight) { again = true; return inflight; }
    var before = knownNew();
    inflight = fetch(fragmentUrl, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        inbox.innerHTML = html;
        state.refreshes += 1;
        var fresh = knownNew().filter(function (n) { return before.indexOf(n) < 0; });
        if (fresh.length || ringFor) { ring(fresh); }
      })
      .catch(function () {})
      .then(function () {
        inflight = null;
        if (again) { again = false; refresh(false); }
      });
    return inflight;
  }

  function setConn(live) {
    state.connected = live;
    if (conn) { conn.className = "conn " + (live ? "live" : "down"); }
    if (connLabel) { connLabel.textContent = live ? inbox.dataset.live : inbox.dataset.down; }
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + wsPath);
    socket.onopen = function () { attempts = 0; setConn(true); };
    socket.onmessage = function (e) {
      var msg = {};
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      if (msg.type === "hello") { refresh(false); }
      if (msg.type === "ticket") { refresh(msg.event === "new"); }
    };
    socket.onclose = function (e) {
      setConn(false);
      if (e.code === 4403) { return; }
      attempts += 1;
      setTimeout(connect, Math.min(30000, 1000 * Math.pow(2, attempts)));
    };
  }

  if (toggle) {
    state.soundOn = false;
    toggle.addEventListener("click", function () {
      if (!audio) {
        var Ctx = window.AudioContext || window.webkitAudioContext;
        if (Ctx) { audio = new Ctx(); }
      }
      state.soundOn = !state.soundOn;
      toggle.textContent = state.soundOn ? inbox.dataset.soundOn : inbox.dataset.soundOff;
      toggle.setAttribute("aria-pressed", state.soundOn ? "true" : "false");
      if (state.soundOn) { beep(); }
    });
  }
  ["focus", "click", "keydown"].forEach(function (ev) {
    window.addEventListener(ev, function () { if (document.hasFocus()) { stopFlash(); } });
  });
  // If the socket is blocked (a proxy), the list still refreshes now and then.
  setInterval(function () { if (!state.connected) { refresh(false); } }, 30000);

  window.merchantInbox = {
    state: function () { return state; },
    refresh: refresh,
    newNumbers: knownNew
  };
  connect();
})();
