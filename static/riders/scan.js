/* Scan an order QR with the phone camera (riders/qr_reader.js reads it: BarcodeDetector where
   the browser has it, the vendored jsQR otherwise). A photo works too (no camera permission, or
   plain http where getUserMedia is not offered). The scanned text goes to POST /api/rider/scan/,
   which accepts an open order or confirms the pickup of the rider's own order. */
(function () {
  "use strict";
  var script = document.getElementById("scan-js");
  var d = script.dataset;
  var busy = false;
  var scan = window.QrReader.attach({
    jsqrUrl: d.jsqr,
    messages: d,
    onText: function (text, fromCamera) {
      if (!(fromCamera && busy)) { found(text); }
      return true;
    }
  });
  var say = scan.say;
  function csrf() { var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/); return m ? decodeURIComponent(m[1]) : ""; }

  function found(text) {
    scan.stopCamera();
    if (navigator.vibrate) { navigator.vibrate(120); }
    return submit(text);
  }

  function submit(text) {
    busy = true;
    say(d.msgSending);
    return fetch(d.api, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify({ code: text })
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        busy = false;
        if (r.ok) {
          document.body.dataset.scanResult = body.action;
          say("✅ " + (body.order ? body.order.status_label : ""));
          setTimeout(function () { location.href = d.board; }, 900);
          return body;
        }
        document.body.dataset.scanResult = "error";
        say(body.detail || r.statusText, true);
        return body;
      });
    }, function () { busy = false; say(d.msgNetwork, true); });
  }

  // Open the camera at once when the rider already allowed it (no extra tap on every scan).
  if (navigator.permissions && navigator.permissions.query) {
    navigator.permissions.query({ name: "camera" }).then(function (p) {
      if (p.state === "granted") { scan.startCamera(); }
    }).catch(function () {});
  }

  window.riderScan = { decodeImageUrl: scan.fromImageUrl, submit: submit, startCamera: scan.startCamera };
})();
