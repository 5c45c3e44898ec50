/* The hand-over page at a transfer station (templates/dispatch/relay.html).
   - Scan the other rider's QR with the camera or from a photo (riders/qr_reader.js reads it, as
     on the rider's scan page); the code read from it fills the form, which is then sent like a
     typed code.
   - While waiting for the other rider, poll the relay's state and reload the page when it
     changes (unless the rider is typing a code). */
(function () {
  "use strict";
  var script = document.getElementById("relay-js");
  if (!script) { return; }
  var d = script.dataset;
  var POLL_MS = 4000;

  // --- the other rider's code from their QR -------------------------------------------------
  var form = document.getElementById("relay-form");
  var input = form ? form.querySelector("input[name=code]") : null;
  var done = false;
  var scan = window.QrReader.attach({
    jsqrUrl: d.jsqr,
    messages: d,
    view: document.getElementById("scanner"),
    onText: function (text, fromCamera) { return (fromCamera && done) || found(text); }
  });
  var say = scan.say;

  // The QR holds the hand-over page's address with ?code=; a bare six-digit code works too.
  function codeOf(text) {
    var m = /[?&]code=(\d{6})(?:\D|$)/.exec(text || "") || /^\s*(\d{6})\s*$/.exec(text || "");
    return m ? m[1] : null;
  }

  // A code read from a QR is sent at once; anything else keeps the camera looking.
  function found(text) {
    var code = codeOf(text);
    if (!code) { say(d.msgNotCode, true); return false; }
    done = true;
    scan.stopCamera();
    if (navigator.vibrate) { navigator.vibrate(120); }
    input.value = code;
    say(d.msgFound);
    form.requestSubmit ? form.requestSubmit() : form.submit();
    return true;
  }

  if (form && input) {
    // A pasted address (or a QR read by another app) is reduced to its code before sending.
    form.addEventListener("submit", function () {
      var code = codeOf(input.value);
      if (code) { input.value = code; }
      scan.stopCamera();
    });
  }

  // --- waiting for the other rider ----------------------------------------------------------
  function typing() { return !!(input && (input.value || document.activeElement === input) && !done); }

  function poll() {
    if (document.visibilityState !== "visible" || done) { return; }
    fetch(d.stateUrl, { credentials: "same-origin", headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (body && body.state !== d.state && !typing() && !scan.active()) { location.reload(); }
      }, function () {});
  }
  setInterval(poll, POLL_MS);

  window.relayHandoff = { codeOf: codeOf, decodeImageUrl: scan.fromImageUrl, found: found };
})();
