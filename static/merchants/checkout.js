// Checkout: changing where, when or the coupon asks the server for the new price (the page
// reloads itself through the "Update the price" button, which carries no order).
(function () {
  var form = document.getElementById("checkout-form");
  if (!form) { return; }
  ["id_address", "id_dropoff_building", "id_deliver_by", "id_coupon"].forEach(function (id) {
    var el = document.getElementById(id);
    if (el) {
      el.addEventListener("change", function () { document.getElementById("preview-button").click(); });
    }
  });
})();
