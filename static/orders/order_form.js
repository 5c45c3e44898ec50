/* The errand form's live price: as fields change, ask POST /api/orders/quote/ for the breakdown,
   show it line by line and keep its quote_id in the form, so that placing the order gets exactly
   the price shown (the server honours a quote for a few minutes, and it is refreshed before then).
   Money is integer fen here too: yuan typed by people is converted by string, never by float. */
(function () {
  "use strict";
  var form = document.getElementById("order-form");
  if (!form) { return; }
  var body = document.getElementById("quote-body");
  var quoteInput = document.getElementById("id_quote_id");
  var kind = form.dataset.kind;
  var addresses = JSON.parse((document.getElementById("saved-addresses") || {}).textContent || "{}");
  var timer = null, inflight = null, refresh = null, seq = 0, submitting = false;

  function field(name) { return form.elements.namedItem(name); }
  function value(name) { var el = field(name); return el ? el.value : ""; }

  function yuanToFen(text) {
    var m = /^\s*(\d{1,7})(?:\.(\d{1,2}))?\s*$/.exec(text || "");
    if (!m) { return null; }
    return parseInt(m[1], 10) * 100 + parseInt((m[2] || "0").padEnd(2, "0"), 10);
  }
  function fenToYuan(fen) {
    var sign = fen < 0 ? "-" : "", abs = Math.abs(fen);
    return sign + Math.floor(abs / 100) + "." + String(abs % 100).padStart(2, "0");
  }

  function payload() {
    var data = {
      kind: kind,
      pickup_building: value("pickup_building"),
      // A queue happens at one place: its form has no drop-off.
      dropoff_building: field("dropoff_building") ? value("dropoff_building") : value("pickup_building"),
      urgent: !!(field("urgent") && field("urgent").checked),
      tip_fen: parseInt(value("tip_fen") || "0", 10) || 0,
      details: {}
    };
    if (value("deliver_by")) { data.deliver_by = value("deliver_by"); }
    var details = document.getElementById("details");
    details.querySelectorAll("input, select, textarea").forEach(function (el) {
      var name = el.name;
      if (!name || ["description", "photo", "photo-clear"].indexOf(name) >= 0) { return; }
      if (el.type === "checkbox") { data.details[name] = el.checked; return; }
      if (el.dataset.unit === "yuan") {
        var fen = yuanToFen(el.value);
        if (fen !== null) { data.details[name] = fen; }
        return;
      }
      if (el.value !== "") { data.details[name] = el.value; }
    });
    return data;
  }

  function csrf() { return (form.querySelector("[name=csrfmiddlewaretoken]") || {}).value || ""; }

  function show(quote) {
    var rows = quote.lines.map(function (line) {
      return '<tr data-code="' + line.code + '"><td></td><td class="amount">¥' +
        fenToYuan(line.amount_fen) + "</td></tr>";
    }).join("");
    body.innerHTML = '<table class="quote-lines">' + rows +
      '<tr class="total"><td></td><td class="amount" id="quote-total">¥' +
      fenToYuan(quote.total_fen) + "</td></tr></table>" +
      '<p class="muted small" id="quote-note"></p>';
    var cells = body.querySelectorAll("tr td:first-child");
    quote.lines.forEach(function (line, i) { cells[i].textContent = line.label; });
    cells[cells.length - 1].textContent = body.dataset.totalLabel || "Total";
    var expires = new Date(quote.expires_at);
    body.querySelector("#quote-note").textContent = (body.dataset.minutesLabel || "About %s min.")
      .replace("%s", quote.estimated_minutes) + " " +
      (body.dataset.heldLabel || "Price held until %s.").replace(
        "%s", expires.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
    quoteInput.value = quote.quote_id;
    form.dataset.quoteTotal = quote.total_fen;
    // Ask again shortly before it expires, so the quote in hand is always honoured.
    clearTimeout(refresh);
    refresh = setTimeout(requote, Math.max(5000, expires - Date.now() - 20000));
  }

  function showProblems(errors) {
    var messages = [];
    Object.keys(errors || {}).forEach(function (key) {
      var v = errors[key];
      if (key === "details" && v && typeof v === "object" && !Array.isArray(v)) {
        Object.keys(v).forEach(function (k) { messages.push([].concat(v[k]).join(" ")); });
      } else { messages.push([].concat(v).join(" ")); }
    });
    body.innerHTML = '<p class="muted" id="quote-note"></p>';
    body.querySelector("#quote-note").textContent = messages.join(" ") ||
      (body.dataset.emptyLabel || "Fill in the errand to see the price.");
  }

  // What the price needs before it is worth asking (the server checks everything again).
  var NEEDS = {
    parcel: ["size_class"],
    buy: ["budget_cap_fen"],
    document: [],
    queue: ["start_at", "duration_minutes"],
    custom: ["offered_price_fen"]
  };

  function missing(data) {
    if (!data.pickup_building || !data.dropoff_building) { return true; }
    return (NEEDS[kind] || []).some(function (name) {
      return data.details[name] === undefined || data.details[name] === "";
    });
  }

  function requote() {
    clearTimeout(timer);
    timer = null;
    var mine = ++seq;
    var data = payload();
    if (missing(data)) {
      quoteInput.value = "";
      showProblems({});
      inflight = null;
      return Promise.resolve();
    }
    quoteInput.value = "";
    delete form.dataset.quoteTotal;
    form.classList.add("quoting");
    inflight = fetch(form.dataset.quoteUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify(data)
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        if (mine !== seq) { return; }  // a newer request is on its way
        if (resp.ok) { show(data); } else { showProblems(data); }
      });
    }).catch(function () {
      if (mine === seq) { showProblems({}); }
    }).then(function () {
      if (mine === seq) { inflight = null; form.classList.remove("quoting"); }
    });
    return inflight;
  }

  function schedule() {
    clearTimeout(timer);
    quoteInput.value = "";
    timer = setTimeout(requote, 300);
  }

  var kindSelect = field("kind");
  if (kindSelect) {
    kindSelect.addEventListener("change", function () {
      if (kindSelect.value !== kind) {
        window.location.search = "?kind=" + encodeURIComponent(kindSelect.value);
      }
    });
  }
  var address = field("address");
  if (address) {
    address.addEventListener("change", function () {
      var chosen = addresses[address.value];
      if (chosen) {
        field("dropoff_building").value = String(chosen.building);
        field("dropoff_detail").value = chosen.detail;
      }
    });
  }
  form.addEventListener("input", function (e) { if (e.target.type !== "file") { schedule(); } });
  form.addEventListener("change", function (e) { if (e.target.type !== "file") { schedule(); } });

  // Placing the order waits for the price being fetched, so the order carries the price shown.
  form.addEventListener("submit", function (e) {
    if (submitting) { return; }
    if (timer || inflight) {
      e.preventDefault();
      submitting = true;
      (timer ? requote() : inflight).then(function () { form.submit(); });
    }
  });

  if (value("pickup_building")) { requote(); }
})();
