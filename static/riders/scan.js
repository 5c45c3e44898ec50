/* Scan an order QR with the phone camera: BarcodeDetector where the browser has it, the vendored
   jsQR otherwise (loaded only then). A photo works too (no camera permission, or plain http where
   getUserMedia is not offered). The scanned text goes to POST /api/rider/scan/, which accepts an
   open order or confirms the pickup of the rider's own order. */
(function () {
  "use strict";
  var script = document.getElementById("scan-js");
  var d = script.dataset;
  var video = document.getElementById("scan-video");
  var canvas = document.getElementById("scan-canvas");
  var ctx = canvas.getContext("2d", { willReadFrequently: true });
  var statusEl = document.getElementById("scan-status");
  var startBtn = document.getElementById("scan-start");
  var fileInput = document.getElementById("scan-file");
  var MAX_SIDE = 1024, FRAME_MS = 150;
  var stream = null, busy = false, detector = null, jsqr = null;

  function say(text, isError) {
    statusEl.textContent = text || "";
    statusEl.classList.toggle("errors", !!isError);
  }
  function csrf() { var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/); return m ? decodeURIComponent(m[1]) : ""; }

  var detectorReady = ("BarcodeDetector" in window && window.BarcodeDetector.getSupportedFormats)
    ? window.BarcodeDetector.getSupportedFormats().then(function (formats) {
      if (formats.indexOf("qr_code") !== -1) { detector = new window.BarcodeDetector({ formats: ["qr_code"] }); }
    }).catch(function () {})
    : Promise.resolve();

  function loadJsQR() {
    if (window.jsQR) { return Promise.resolve(window.jsQR); }
    if (!jsqr) {
      jsqr = new Promise(function (resolve, reject) {
        var s = document.createElement("script");
        s.src = d.jsqr;
        s.onload = function () { resolve(window.jsQR); };
        s.onerror = reject;
        document.head.appendChild(s);
      });
    }
    return jsqr;
  }

  // Draw any image source onto the canvas (scaled down) and read a QR from its pixels.
  function decodeWithJsQR(source, width, height) {
    return loadJsQR().then(function (decode) {
      var scale = Math.min(1, MAX_SIDE / Math.max(width, height));
      var w = Math.max(1, Math.round(width * scale)), h = Math.max(1, Math.round(height * scale));
      canvas.width = w; canvas.height = h;
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, w, h);  // transparent SVG/PNG backgrounds read as white, not black
      ctx.drawImage(source, 0, 0, w, h);
      var pixels = ctx.getImageData(0, 0, w, h);
      var code = decode(pixels.data, w, h, { inversionAttempts: "attemptBoth" });
      return code ? code.data : null;
    });
  }

  function decode(source, width, height) {
    return detectorReady.then(function () {
      if (!detector) { return decodeWithJsQR(source, width, height); }
      return detector.detect(source).then(function (codes) {
        return codes.length ? codes[0].rawValue : null;
      }, function () { return decodeWithJsQR(source, width, height); });
    });
  }

  function stopCamera() {
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    video.hidden = true;
    startBtn.hidden = false;
  }

  function scanFrame() {
    if (!stream || busy) { return; }
    if (video.readyState < 2 || !video.videoWidth) { setTimeout(scanFrame, FRAME_MS); return; }
    decode(video, video.videoWidth, video.videoHeight).then(function (text) {
      if (text) { found(text); } else { setTimeout(scanFrame, FRAME_MS); }
    }, function () { setTimeout(scanFrame, FRAME_MS); });
  }

  function startCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say(d.msgCamera, true);
      return Promise.resolve(false);
    }
    return navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: "environment" } }, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        video.hidden = false;
        startBtn.hidden = true;
        say(d.msgLooking);
        return video.play().catch(function () {}).then(function () { scanFrame(); return true; });
      }, function () { say(d.msgCamera, true); return false; });
  }

  function found(text) {
    stopCamera();
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

  function decodeImageUrl(url) {
    return new Promise(function (resolve, reject) {
      var img = new Image();
      img.onload = function () {
        decode(img, img.naturalWidth || 512, img.naturalHeight || 512).then(resolve, reject);
      };
      img.onerror = reject;
      img.src = url;
    });
  }

  startBtn.addEventListener("click", function () { startCamera(); });
  fileInput.addEventListener("change", function () {
    var file = fileInput.files && fileInput.files[0];
    if (!file) { return; }
    var url = URL.createObjectURL(file);
    say(d.msgLooking);
    decodeImageUrl(url).then(function (text) {
      URL.revokeObjectURL(url);
      fileInput.value = "";
      if (text) { found(text); } else { say(d.msgNone, true); }
    }, function () { URL.revokeObjectURL(url); say(d.msgNone, true); });
  });

  // Open the camera at once when the rider already allowed it (no extra tap on every scan).
  if (navigator.permissions && navigator.permissions.query) {
    navigator.permissions.query({ name: "camera" }).then(function (p) {
      if (p.state === "granted") { startCamera(); }
    }).catch(function () {});
  }

  window.riderScan = { decodeImageUrl: decodeImageUrl, submit: submit, startCamera: startCamera };
})();
