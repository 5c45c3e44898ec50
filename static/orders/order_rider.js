/* The rider's check-in at a queue place: one position fix, sent with the form. */
(function () {
  "use strict";
  var form = document.getElementById("check-in-form");
  if (!form || !navigator.geolocation) { return; }
  var hint = document.getElementById("check-in-hint");
  form.addEventListener("submit", function (e) {
    if (form.elements.lat.value) { return; }
    e.preventDefault();
    hint.textContent = "…";
    navigator.geolocation.getCurrentPosition(function (pos) {
      form.elements.lat.value = pos.coords.latitude;
      form.elements.lng.value = pos.coords.longitude;
      form.elements.accuracy.value = Math.round(pos.coords.accuracy || 0);
      form.submit();
    }, function (err) {
      hint.textContent = err.message || "Location unavailable";
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 });
  });
})();
