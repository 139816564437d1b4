/* orders-pipeline dashboard: what to draw, and when (charts.js draws it).
 *
 * Live (served by the consumer at /): reads api/reports/NAME, api/currencies and api/stats every
 * REFRESH_MS, with the options of the page's URL (?currency=, ?as_is=, ?grain=, ?limit=,
 * ?since=, ?until=). The controls rewrite the URL (so a reload or a shared link keeps the
 * choice) and redraw at once.
 * Snapshot (`orders-consumer report --html`): the same charts from the JSON embedded in
 * <script id="orders-data">, in the options it was made with (which the page names); no refresh.
 *
 * <body> gets data-ready once every card has been drawn from good data, and data-options the
 * options of that drawing ("currency=EUR&as_is=0&grain=day"): the browser tests read both.
 */
(function () {
  "use strict";

  var draw = window.OrdersCharts;
  var REFRESH_MS = 5000;
  var THROUGHPUT_POINTS = 60; // five minutes at one sample per refresh
  var DEFAULT_LIMIT = "10";
  var DEFAULTS = { currency: "USD", as_is: "0", grain: "day" };
  var CONTROLS = { currency: "currency", as_is: "as-is", grain: "grain" }; // option: element id
  var AS_IS_TEXT = { "0": "as was, when ordered", "1": "as is, today" };
  var REPORTS = {
    "top-users": { key: "user_id", value: "total_sales", money: true, keyTitle: "user", color: "#2f6fb0" },
    "top-products": { key: "sku", value: "units_sold", money: false, keyTitle: "product", color: "#2e8b57" },
    "top-countries": { key: "country", value: "total_sales", money: true, keyTitle: "country (ISO code)", color: "#8e5ea2", options: ["as_is"] },
    "sales-by-channel": { key: "source", value: "total_sales", money: true, keyTitle: "channel (metadata.source)", color: "#c2610c", unlimited: true }
  };
  var REPORT_NAMES = ["sales-over-time", "unconverted-sales"].concat(Object.keys(REPORTS));
  var throughput = [];
  var generation = 0; // a newer refresh makes the answers of an older one stale
  var timer = null;

  function utcTime(date) { return date.toISOString().slice(11, 19); }
  function setText(id, text) { document.getElementById(id).textContent = text; }
  function optionsKey(o) { return "currency=" + o.currency + "&as_is=" + o.as_is + "&grain=" + o.grain; }

  /* The options the page's URL asks for, defaults filled in. */
  function chosen() {
    var page = new URLSearchParams(window.location.search);
    var asIs = (page.get("as_is") || "").toLowerCase();
    return {
      currency: page.get("currency") || DEFAULTS.currency,
      as_is: asIs === "1" || asIs === "true" ? "1" : "0",
      grain: page.get("grain") || DEFAULTS.grain
    };
  }

  /* The reporting currency in every caption and explanation that names it. */
  function nameCurrency(currency) {
    document.querySelectorAll(".money-unit").forEach(function (e) { e.textContent = "(" + currency + ")"; });
    document.querySelectorAll(".money-code").forEach(function (e) { e.textContent = currency; });
  }

  function drawReport(name, rows, currency) {
    var spec = REPORTS[name];
    draw.bars(name, {
      horizontal: true,
      keys: rows.map(function (r) { return r[spec.key]; }),
      labels: rows.map(function (r) {
        var key = r[spec.key] === null ? "(none)" : String(r[spec.key]);
        return name === "top-products" && r.name ? key + " \u00b7 " + r.name : key;
      }),
      values: rows.map(function (r) { return r[spec.value]; }),
      format: spec.money ? draw.money : draw.count,
      keyTitle: spec.keyTitle,
      valueTitle: spec.money ? "total sales (" + currency + ")" : "units sold",
      color: spec.color
    });
  }

  function drawRejects(byReason) {
    var reasons = Object.keys(byReason).sort(function (a, b) {
      return byReason[b] - byReason[a] || (a < b ? -1 : a > b ? 1 : 0);
    });
    draw.bars("rejects", { horizontal: true, keys: reasons, labels: reasons, values: reasons.map(function (r) { return byReason[r]; }),
      format: draw.count, keyTitle: "reason code", valueTitle: "records", color: "#b42318" });
  }

  function byPartition(id, values, valueTitle, format, color) {
    var partitions = Object.keys(values).sort(function (a, b) { return Number(a) - Number(b); });
    draw.bars(id, { horizontal: false, keys: partitions, labels: partitions, values: partitions.map(function (p) { return values[p]; }),
      format: format, keyTitle: "partition", valueTitle: valueTitle, color: color });
  }

  function drawThroughput(rate, now) {
    throughput.push({ t: now, v: rate });
    if (throughput.length > THROUGHPUT_POINTS) { throughput.shift(); }
    draw.line("throughput", {
      keys: throughput.map(function (p) { return p.t.toISOString(); }),
      labels: throughput.map(function (p) { return utcTime(p.t); }),
      values: throughput.map(function (p) { return p.v; }),
      format: draw.rate, keyTitle: "time (UTC)", valueTitle: "records per second (last 60 s)", color: "#2f6fb0"
    });
  }

  function drawTotals(records) {
    setText("tile-loaded", draw.count(records.loaded));
    setText("tile-duplicate", draw.count(records.duplicate));
    setText("tile-rejected", draw.count(records.rejected));
  }

  function drawStats(stats, now) {
    drawTotals(stats.records);
    setText("tile-rate", draw.rate(stats.records_per_second));
    setText("tile-batches", draw.count(stats.batches));
    setText("tile-commit", stats.last_commit_timestamp ? utcTime(new Date(stats.last_commit_timestamp * 1000)) + " UTC" : "none yet");
    drawThroughput(stats.records_per_second, now);
    byPartition("lag", stats.lag, "records behind the partition end", draw.count, "#52606d");
    byPartition("lag-seconds", stats.lag_seconds || {}, "seconds behind", draw.seconds, "#3e7c7d");
    drawRejects(stats.rejected_by_reason);
  }

  /* One report's card, from its rows (a live answer or the snapshot's embedded ones). */
  function drawOne(name, rows, options) {
    if (name === "sales-over-time") {
      draw.overTime(rows, options.currency, options.grain);
    } else if (name === "unconverted-sales") {
      draw.unconverted(rows);
    } else {
      drawReport(name, rows, options.currency);
    }
  }

  function status(text, error) {
    var line = document.getElementById("status");
    line.textContent = text;
    line.classList.toggle("error", Boolean(error));
  }

  /* The API's query for one report: the page's window and limit, and the options it takes. */
  function query(name, options) {
    var page = new URLSearchParams(window.location.search);
    var spec = REPORTS[name] || { unlimited: true, options: name === "sales-over-time" ? ["grain"] : [] };
    var out = new URLSearchParams();
    if (!spec.unlimited) { out.set("limit", page.get("limit") || DEFAULT_LIMIT); }
    ["since", "until"].forEach(function (k) { if (page.get(k)) { out.set(k, page.get(k)); } });
    if (name !== "top-products") { out.set("currency", options.currency); }
    (spec.options || []).forEach(function (k) { out.set(k, options[k]); });
    return out.toString();
  }

  function getJson(path) {
    return window.fetch(path, { cache: "no-store" }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) { throw new Error(body && body.error ? body.error : "HTTP " + response.status); }
        return body;
      });
    });
  }

  /* The currencies to offer: the API's (USD and those with rates), and the one chosen. */
  function offerCurrencies(codes, current) {
    var select = document.getElementById("currency");
    var wanted = codes.indexOf(current) < 0 ? codes.concat([current]).sort() : codes;
    var have = Array.prototype.map.call(select.options, function (o) { return o.value; });
    if (have.join() !== wanted.join()) {
      select.textContent = "";
      wanted.forEach(function (code) { select.appendChild(new Option(code, code)); });
    }
    select.value = current;
  }

  /* The controls and captions say what the page draws (the URL's options). */
  function showChoice(options) {
    var offered = Array.prototype.map.call(document.getElementById("currency").options, function (o) { return o.value; });
    nameCurrency(options.currency);
    offerCurrencies(offered, options.currency);
    document.getElementById("as-is").value = options.as_is;
    document.getElementById("grain").value = options.grain;
  }

  function refresh() {
    var mine = ++generation;
    var current = function () { return mine === generation; };
    var options = chosen();
    var now = new Date();
    window.clearTimeout(timer);
    showChoice(options);
    var reports = Promise.all(REPORT_NAMES.map(function (name) {
      var suffix = query(name, options);
      return getJson("api/reports/" + name + (suffix ? "?" + suffix : "")).then(function (rows) {
        if (current()) { drawOne(name, rows, options); }
      }, function (error) { if (current()) { draw.failed(name, error); } throw error; });
    }));
    var currencies = getJson("api/currencies").then(function (codes) {
      if (current()) { offerCurrencies(codes, options.currency); }
    });
    var stats = getJson("api/stats").then(function (s) {
      if (current()) { drawStats(s, now); }
    }, function (error) { if (current()) { draw.failed("rejects", error); } throw error; });
    Promise.all([reports, currencies, stats]).then(function () {
      if (!current()) { return; }
      status("live \u00b7 refreshed every " + REFRESH_MS / 1000 + " s \u00b7 last update " + utcTime(now) + " UTC");
      document.body.setAttribute("data-options", optionsKey(options));
      document.body.setAttribute("data-ready", "true");
    }, function (error) {
      if (current()) { status("cannot read the consumer (" + error.message + "); last try " + utcTime(now) + " UTC", true); }
    }).then(function () {
      if (current()) { timer = window.setTimeout(refresh, REFRESH_MS); }
    });
  }

  /* A control changed: the choice goes into the URL (replacing this history entry), and the
   * page redraws at once in it. */
  function choose(option, value) {
    var page = new URLSearchParams(window.location.search);
    page.set(option, value);
    window.history.replaceState(null, "", window.location.pathname + "?" + page.toString());
    document.body.removeAttribute("data-ready");
    status("loading " + optionsKey(chosen()).replace(/&/g, ", ") + "\u2026");
    refresh();
  }

  function listen() {
    Object.keys(CONTROLS).forEach(function (option) {
      document.getElementById(CONTROLS[option]).addEventListener("change", function (event) {
        choose(option, event.target.value);
      });
    });
  }

  function snapshot(data) {
    var made = data.options || { currency: DEFAULTS.currency, as_is: false, grain: DEFAULTS.grain };
    var options = { currency: made.currency, as_is: made.as_is ? "1" : "0", grain: made.grain };
    document.body.classList.add("snapshot");
    setText("label-loaded", "orders in the warehouse");
    nameCurrency(options.currency);
    setText("grain-text", "by " + options.grain);
    setText("as-is-text", "country " + AS_IS_TEXT[options.as_is]);
    REPORT_NAMES.forEach(function (name) { drawOne(name, data.reports[name], options); });
    drawTotals(data.totals);
    drawRejects(data.rejected_by_reason);
    var window_ = data.window.since || data.window.until
      ? " \u00b7 orders created from " + (data.window.since || "the start") + " until " + (data.window.until || "now")
      : "";
    status("snapshot of " + data.warehouse + " taken " + data.generated_at + window_);
    setText("options", "money in " + options.currency + " \u00b7 top countries: the country " + AS_IS_TEXT[options.as_is] +
      " \u00b7 sales over time by " + options.grain + " \u00b7 made with: report --html --currency " + options.currency +
      (options.as_is === "1" ? " --as-is" : "") + " --grain " + options.grain);
    document.body.setAttribute("data-options", optionsKey(options));
    document.body.setAttribute("data-ready", "true");
  }

  function start() {
    if (!window.Chart || !draw) { status("the chart library did not load", true); return; }
    window.Chart.defaults.font.family = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif";
    window.Chart.defaults.color = "#52606d";
    var data = JSON.parse(document.getElementById("orders-data").textContent);
    if (data) {
      snapshot(data);
    } else {
      setText("label-loaded", "loaded since start");
      listen();
      refresh();
    }
  }

  start();
}());
