/* The order page's money block (#order-money) follows the live status: when the order's status
   changes (order_live.js keeps it in window.orderLive), the block is re-read from the server, so
   "confirm receipt" appears on delivery and refunds show on cancellation without a reload. */
(function () {
  "use strict";
  var box = document.getElementById("order-money");
  if (!box || !window.fetch) { return; }
  var shown = box.dataset.status, busy = false;

  function refresh() {
    busy = true;
    fetch(box.dataset.fragmentUrl, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var holder = document.createElement("div");
        holder.innerHTML = html.trim();
        var fresh = holder.querySelector("#order-money");
        if (fresh) { box.replaceWith(fresh); box = fresh; shown = fresh.dataset.status; }
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }

  setInterval(function () {
    var live = window.orderLive && window.orderLive.state();
    if (!busy && live && live.status && live.status !== shown) { refresh(); }
  }, 1000);
})();
