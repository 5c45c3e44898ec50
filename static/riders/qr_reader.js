/* Read a QR with the phone camera or from a photo: BarcodeDetector where the browser has it, the
   vendored jsQR otherwise (loaded only then, from the jsqrUrl given: no CDN). Shared by the
   rider's scan page (riders/scan.js) and the hand-over page (dispatch/relay.js).

   The scanner markup of both pages (#scan-video, #scan-canvas, #scan-status, #scan-start,
   #scan-file), wired in one call; each page keeps what it does with the text read:
     var scan = window.QrReader.attach({
       jsqrUrl: "...", messages: script.dataset,  // msgCamera, msgNone, msgLooking
       view: el,                                  // shown while the camera runs (default the video)
       onText: function (text, fromCamera) { ...; return true; }  // false: the camera looks on
     });
     scan.say(text, isError); scan.startCamera(); scan.stopCamera(); scan.active();
     scan.fromImageUrl(url)

   Below it, the reader alone:
     var reader = window.QrReader.create({ jsqrUrl: "...", canvas: canvasEl });
     reader.fromImageFile(file), reader.fromImageUrl(url)
                                 -> Promise of the text, or null when there is no QR
     reader.startCamera(video, onText, onStart)
                                 -> Promise of true once the camera runs, false when there is
                                    none or it was refused; each QR read goes to onText(text),
                                    which returns true when it took it (the loop stops), false
                                    to keep looking; onStart() runs as soon as the stream is there
     reader.stop(), reader.active() */
(function () {
  "use strict";
  var MAX_SIDE = 1024, FRAME_MS = 150;

  // One detector for the page, whoever asks first.
  var detector = null, detectorReady = null, jsqr = null;

  function whenDetector() {
    if (!detectorReady) {
      detectorReady = ("BarcodeDetector" in window && window.BarcodeDetector.getSupportedFormats)
        ? window.BarcodeDetector.getSupportedFormats().then(function (formats) {
          if (formats.indexOf("qr_code") !== -1) { detector = new window.BarcodeDetector({ formats: ["qr_code"] }); }
        }).catch(function () {})
        : Promise.resolve();
    }
    return detectorReady;
  }

  function loadJsQR(url) {
    if (window.jsQR) { return Promise.resolve(window.jsQR); }
    if (!jsqr) {
      jsqr = new Promise(function (resolve, reject) {
        var s = document.createElement("script");
        s.src = url;
        s.onload = function () { resolve(window.jsQR); };
        s.onerror = reject;
        document.head.appendChild(s);
      });
    }
    return jsqr;
  }

  function create(opts) {
    var canvas = opts.canvas;
    var ctx = null, stream = null, video = null;
    whenDetector();  // asked at once, as the page opens

    // Draw any image source onto the canvas (scaled down) and read a QR from its pixels.
    function decodeWithJsQR(source, width, height) {
      return loadJsQR(opts.jsqrUrl).then(function (decode) {
        if (!ctx) { ctx = canvas.getContext("2d", { willReadFrequently: true }); }
        var scale = Math.min(1, MAX_SIDE / Math.max(width, height));
        var w = Math.max(1, Math.round(width * scale)), h = Math.max(1, Math.round(height * scale));
        canvas.width = w; canvas.height = h;
        ctx.fillStyle = "#fff";
        ctx.fillRect(0, 0, w, h);  // transparent SVG/PNG backgrounds read as white, not black
        ctx.drawImage(source, 0, 0, w, h);
        var code = decode(ctx.getImageData(0, 0, w, h).data, w, h, { inversionAttempts: "attemptBoth" });
        return code ? code.data : null;
      });
    }

    function decode(source, width, height) {
      return whenDetector().then(function () {
        if (!detector) { return decodeWithJsQR(source, width, height); }
        return detector.detect(source).then(function (codes) {
          return codes.length ? codes[0].rawValue : null;
        }, function () { return decodeWithJsQR(source, width, height); });
      });
    }

    function fromImageUrl(url) {
      return new Promise(function (resolve, reject) {
        var img = new Image();
        img.onload = function () {
          decode(img, img.naturalWidth || 512, img.naturalHeight || 512).then(resolve, reject);
        };
        img.onerror = reject;
        img.src = url;
      });
    }

    function fromImageFile(file) {
      var url = URL.createObjectURL(file);
      return fromImageUrl(url).then(function (text) {
        URL.revokeObjectURL(url);
        return text;
      }, function (e) { URL.revokeObjectURL(url); throw e; });
    }

    function stop() {
      if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    }

    function startCamera(videoEl, onText, onStart) {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { return Promise.resolve(false); }
      return navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: "environment" } }, audio: false })
        .then(function (s) {
          var mine = s;
          stream = s;
          video = videoEl;
          video.srcObject = s;
          if (onStart) { onStart(); }
          // The loop ends with its stream: stop(), or another startCamera.
          var frame = function () {
            if (stream !== mine) { return; }
            if (video.readyState < 2 || !video.videoWidth) { setTimeout(frame, FRAME_MS); return; }
            decode(video, video.videoWidth, video.videoHeight).then(function (text) {
              if (stream !== mine) { return; }
              if (!(text && onText(text))) { setTimeout(frame, FRAME_MS); }
            }, function () { setTimeout(frame, FRAME_MS); });
          };
          return video.play().catch(function () {}).then(function () { frame(); return true; });
        }, function () { return false; });
    }

    return {
      decode: decode,
      fromImageUrl: fromImageUrl,
      fromImageFile: fromImageFile,
      startCamera: startCamera,
      stop: stop,
      active: function () { return !!stream; }
    };
  }

  function attach(opts) {
    var video = document.getElementById("scan-video");
    var statusEl = document.getElementById("scan-status");
    var startBtn = document.getElementById("scan-start");
    var fileInput = document.getElementById("scan-file");
    var view = opts.view || video;
    var msg = opts.messages;
    var reader = create({ jsqrUrl: opts.jsqrUrl, canvas: document.getElementById("scan-canvas") });

    function say(text, isError) {
      if (!statusEl) { return; }
      statusEl.textContent = text || "";
      statusEl.classList.toggle("errors", !!isError);
    }

    function stopCamera() {
      reader.stop();
      if (view) { view.hidden = true; }
      if (startBtn) { startBtn.hidden = false; }
    }

    function startCamera() {
      return reader.startCamera(video, function (text) {
        return opts.onText(text, true);
      }, function () {
        view.hidden = false;
        startBtn.hidden = true;
        say(msg.msgLooking);
      }).then(function (ok) {
        if (!ok) { say(msg.msgCamera, true); }
        return ok;
      });
    }

    if (startBtn) { startBtn.addEventListener("click", function () { startCamera(); }); }
    if (fileInput) {
      fileInput.addEventListener("change", function () {
        var file = fileInput.files && fileInput.files[0];
        if (!file) { return; }
        say(msg.msgLooking);
        reader.fromImageFile(file).then(function (text) {
          fileInput.value = "";
          if (text) { opts.onText(text, false); } else { say(msg.msgNone, true); }
        }, function () { say(msg.msgNone, true); });
      });
    }

    return {
      say: say,
      startCamera: startCamera,
      stopCamera: stopCamera,
      active: reader.active,
      fromImageUrl: reader.fromImageUrl
    };
  }

  window.QrReader = { create: create, attach: attach };
})();
