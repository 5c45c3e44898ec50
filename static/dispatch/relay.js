/* The hand-over page at a transfer station (templates/dispatch/relay.html).
   - Scan the other rider's QR with the camera (BarcodeDetector where the browser has it, the
     vendored jsQR otherwise, as on the rider's scan page) or from a photo; the code read from it
     fills the form, which is then sent like a typed code.
   - While waiting for the other rider, poll the relay's state and reload the page when it
     changes (unless the rider is typing a code). */
(function () {
  "use strict";
  var script = document.getElementById("relay-js");
  if (!script) { return; }
  var d = script.dataset;
  var POLL_MS = 4000, FRAME_MS = 150, MAX_SIDE = 1024;

  // --- the other rider's code from their QR -------------------------------------------------
  var form = document.getElementById("relay-form");
  var input = form ? form.querySelector("input[name=code]") : null;
  var scanner = document.getElementById("scanner");
  var video = document.getElementById("scan-video");
  var canvas = document.getElementById("scan-canvas");
  var statusEl = document.getElementById("scan-status");
  var startBtn = document.getElementById("scan-start");
  var fileInput = document.getElementById("scan-file");
  var stream = null, detector = null, jsqr = null, done = false;

  function say(text, isError) {
    if (!statusEl) { return; }
    statusEl.textContent = text || "";
    statusEl.classList.toggle("errors", !!isError);
  }

  // The QR holds the hand-over page's address with ?code=; a bare six-digit code works too.
  function codeOf(text) {
    var m = /[?&]code=(\d{6})(?:\D|$)/.exec(text || "") || /^\s*(\d{6})\s*$/.exec(text || "");
    return m ? m[1] : null;
  }

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

  function decodeWithJsQR(source, width, height) {
    return loadJsQR().then(function (decode) {
      var ctx = canvas.getContext("2d", { willReadFrequently: true });
      var scale = Math.min(1, MAX_SIDE / Math.max(width, height));
      var w = Math.max(1, Math.round(width * scale)), h = Math.max(1, Math.round(height * scale));
      canvas.width = w; canvas.height = h;
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, w, h);
      ctx.drawImage(source, 0, 0, w, h);
      var code = decode(ctx.getImageData(0, 0, w, h).data, w, h, { inversionAttempts: "attemptBoth" });
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
    if (scanner) { scanner.hidden = true; }
    if (startBtn) { startBtn.hidden = false; }
  }

  // A code read from a QR is sent at once; anything else keeps the camera looking.
  function found(text) {
    var code = codeOf(text);
    if (!code) { say(d.msgNotCode, true); return false; }
    done = true;
    stopCamera();
    if (navigator.vibrate) { navigator.vibrate(120); }
    input.value = code;
    say(d.msgFound);
    form.requestSubmit ? form.requestSubmit() : form.submit();
    return true;
  }

  function scanFrame() {
    if (!stream || done) { return; }
    if (video.readyState < 2 || !video.videoWidth) { setTimeout(scanFrame, FRAME_MS); return; }
    decode(video, video.videoWidth, video.videoHeight).then(function (text) {
      if (!(text && found(text))) { setTimeout(scanFrame, FRAME_MS); }
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
        scanner.hidden = false;
        startBtn.hidden = true;
        say(d.msgLooking);
        return video.play().catch(function () {}).then(function () { scanFrame(); return true; });
      }, function () { say(d.msgCamera, true); return false; });
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

  if (form && input) {
    startBtn.addEventListener("click", function () { startCamera(); });
    fileInput.addEventListener("change", function () {
      var file = fileInput.files && fileInput.files[0];
      if (!file) { return; }
      var url = URL.createObjectURL(file);
      say(d.msgLooking);
      decodeImageUrl(url).then(function (text) {
        URL.revokeObjectURL(url);
        fileInput.value = "";
        if (!text) { say(d.msgNone, true); } else { found(text); }
      }, function () { URL.revokeObjectURL(url); say(d.msgNone, true); });
    });
    // A pasted address (or a QR read by another app) is reduced to its code before sending.
    form.addEventListener("submit", function () {
      var code = codeOf(input.value);
      if (code) { input.value = code; }
      stopCamera();
    });
  }

  // --- waiting for the other rider ----------------------------------------------------------
  function typing() { return !!(input && (input.value || document.activeElement === input) && !done); }

  function poll() {
    if (document.visibilityState !== "visible" || done) { return; }
    fetch(d.stateUrl, { credentials: "same-origin", headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (body && body.state !== d.state && !typing() && !stream) { location.reload(); }
      }, function () {});
  }
  setInterval(poll, POLL_MS);

  window.relayHandoff = { codeOf: codeOf, decodeImageUrl: decodeImageUrl, found: found };
})();
