// The merchant track on a takeout order's page: every push on the order's socket (the merchant's
// steps are on the order's timeline) and every reconnect fetch the track fragment again.
(function () {
  var me = document.currentScript;
  var path = me && me.getAttribute("data-ws-path");
  var box = document.getElementById("merchant-track");
  if (!path || !box) { return; }
  var url = box.getAttribute("data-url");
  var attempts = 0;
  var pending = null;

  function refresh() {
    if (pending) { return; }
    pending = fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("#merchant-track");
        var current = document.getElementById("merchant-track");
        if (fresh && current) { current.replaceWith(fresh); }
      })
      .catch(function () {})
      .then(function () { pending = null; });
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + path);
    socket.onopen = function () { attempts = 0; };
    socket.onmessage = function (e) {
      var msg = {};
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      if (msg.type === "status" || msg.type === "snapshot") { refresh(); }
    };
    socket.onclose = function (e) {
      if (e.code === 4403) { return; }
      attempts += 1;
      setTimeout(connect, Math.min(30000, 1000 * Math.pow(2, attempts)));
    };
  }
  connect();
})();
