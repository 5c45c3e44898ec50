/* Countdown on dispatch offers: every element with data-expires-at shows the seconds left.
   Works across board refreshes (the board fragment is swapped in by rider.js): it looks the
   elements up on every tick. An offer at zero is greyed out; the next board refresh drops it.
   (Decline's data-confirm is handled by rider.js like every confirm on the board.) */
(function () {
  "use strict";
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-expires-at]").forEach(function (el) {
      var left = Math.max(0, Math.round((Date.parse(el.dataset.expiresAt) - now) / 1000));
      var seconds = el.querySelector(".seconds");
      if (seconds) { seconds.textContent = String(left); }
      var card = el.closest(".dispatch-offer");
      if (card && left === 0) {
        card.classList.add("expired");
        card.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      }
    });
  }
  tick();
  setInterval(tick, 1000);
})();
