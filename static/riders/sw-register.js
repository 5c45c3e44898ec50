/* Register the rider app's service worker (scope /rider/) and tell it who is signed in, so that a
   page cached for one rider is never shown to another. */
(function () {
  "use strict";
  var script = document.getElementById("sw-register");
  if (!script || !("serviceWorker" in navigator)) { return; }
  var user = script.dataset.user || "";
  navigator.serviceWorker.register(script.dataset.sw, { scope: script.dataset.scope }).then(function (reg) {
    var worker = reg.active || reg.waiting || reg.installing;
    if (worker) { worker.postMessage({ type: "user", id: user }); }
    navigator.serviceWorker.ready.then(function (ready) {
      if (ready.active) { ready.active.postMessage({ type: "user", id: user }); }
    });
  }).catch(function () { /* no service worker (plain http on a LAN IP): the app still works online */ });
})();
