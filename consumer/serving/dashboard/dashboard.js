/* orders-pipeline dashboard.
 *
 * Live (served by the consumer at /): reads api/reports/NAME and api/stats every REFRESH_MS.
 * Snapshot (`orders-consumer report --html`): the same charts from the JSON embedded in
 * <script id="orders-data">, no refresh.
 *
 * Every chart card gets data-rendered = JSON {keys, labels, values, texts} of what it drew
 * (texts: the figures written at the bars' ends), and <body> gets data-ready once every chart
 * has been drawn from good data: the browser tests read both.
 */
(function () {
  "use strict";

  var REFRESH_MS = 5000;
  var THROUGHPUT_POINTS = 60; // five minutes at one sample per refresh
  var DEFAULT_LIMIT = "10";
  var REPORTS = {
    "top-users": { key: "user_id", value: "total_sales", money: true, keyTitle: "user", color: "#2f6fb0" },
    "top-products": { key: "sku", value: "units_sold", money: false, keyTitle: "product", color: "#2e8b57" },
    "top-countries": { key: "country", value: "total_sales", money: true, keyTitle: "country (ISO code)", color: "#8e5ea2" },
    "sales-by-channel": { key: "source", value: "total_sales", money: true, keyTitle: "channel (metadata.source)", color: "#c2610c", unlimited: true }
  };
  var MONEY = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  var COUNT = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  var RATE = new Intl.NumberFormat("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  var COMPACT = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
  var charts = {};
  var throughput = [];

  function money(v) { return MONEY.format(v); }
  function count(v) { return COUNT.format(v); }
  function tick(v, max) {
    if (max >= 100000) { return COMPACT.format(v); } // 1.5M: ticks stay short and level
    return Number.isInteger(v) ? COUNT.format(v) : MONEY.format(v);
  }
  function clip(text) { return text.length > 34 ? text.slice(0, 33) + "\u2026" : text; }
  function utcTime(date) { return date.toISOString().slice(11, 19); }
  function card(id) { return document.getElementById("chart-" + id); }

  /* Draws each bar's value at its end, so the figures can be read without hovering. */
  var valueLabels = {
    id: "valueLabels",
    afterDatasetsDraw: function (chart, args, options) {
      if (!options || !options.format) { return; }
      var ctx = chart.ctx;
      var horizontal = chart.options.indexAxis === "y";
      ctx.save();
      ctx.font = "12px system-ui, sans-serif";
      ctx.fillStyle = "#1f2933";
      ctx.textAlign = horizontal ? "left" : "center";
      ctx.textBaseline = horizontal ? "middle" : "bottom";
      chart.getDatasetMeta(0).data.forEach(function (bar, i) {
        var text = options.format(chart.data.datasets[0].data[i]);
        if (horizontal) { ctx.fillText(text, bar.x + 6, bar.y); } else { ctx.fillText(text, bar.x, bar.y - 4); }
      });
      ctx.restore();
    }
  };

  function barOptions(horizontal, keyTitle, valueTitle, format) {
    var valueAxis = {
      beginAtZero: true,
      grace: "20%",
      title: { display: true, text: valueTitle },
      ticks: { precision: format === count ? 0 : undefined, callback: function (v) { return tick(v, this.max); } }
    };
    var keyAxis = {
      title: { display: true, text: keyTitle },
      grid: { display: false },
      ticks: { autoSkip: false, callback: function (v) { return clip(String(this.getLabelForValue(v))); } }
    };
    return {
      indexAxis: horizontal ? "y" : "x",
      layout: { padding: { right: horizontal ? 72 : 8 } }, // room for the figure at a bar's end
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      plugins: {
        legend: { display: false },
        valueLabels: { format: format },
        tooltip: { callbacks: { label: function (c) { return format(horizontal ? c.parsed.x : c.parsed.y); } } }
      },
      scales: horizontal ? { x: valueAxis, y: keyAxis } : { x: keyAxis, y: valueAxis }
    };
  }

  /* Creates the chart on first use, then updates it in place. */
  function draw(id, type, options, color, drawn) {
    var box = card(id);
    box.setAttribute("data-rendered", JSON.stringify(drawn));
    box.querySelector(".note").textContent = drawn.values.length ? "" : "no data yet";
    box.querySelector(".note").classList.remove("error");
    var data = {
      labels: drawn.labels,
      datasets: [{ data: drawn.values, backgroundColor: color, borderColor: color, pointRadius: 2, cubicInterpolationMode: "monotone" }]
    };
    if (charts[id]) {
      charts[id].data = data;
      charts[id].update("none");
    } else {
      charts[id] = new window.Chart(box.querySelector("canvas"), { type: type, data: data, options: options, plugins: [valueLabels] });
    }
  }

  function drawReport(name, rows) {
    var spec = REPORTS[name];
    var keys = rows.map(function (r) { return r[spec.key]; });
    var labels = rows.map(function (r) {
      var key = r[spec.key] === null ? "(none)" : String(r[spec.key]);
      return name === "top-products" && r.name ? key + " \u00b7 " + r.name : key;
    });
    var values = rows.map(function (r) { return r[spec.value]; });
    var format = spec.money ? money : count;
    var valueTitle = spec.money ? "total sales (quantity \u00d7 unit price)" : "units sold";
    draw(name, "bar", barOptions(true, spec.keyTitle, valueTitle, format), spec.color,
      { keys: keys, labels: labels, values: values, texts: values.map(format) });
  }

  function drawRejects(byReason) {
    var reasons = Object.keys(byReason).sort(function (a, b) {
      return byReason[b] - byReason[a] || (a < b ? -1 : a > b ? 1 : 0);
    });
    var values = reasons.map(function (r) { return byReason[r]; });
    draw("rejects", "bar", barOptions(true, "reason code", "records", count), "#b42318",
      { keys: reasons, labels: reasons, values: values, texts: values.map(count) });
  }

  function drawLag(lag) {
    var partitions = Object.keys(lag).sort(function (a, b) { return Number(a) - Number(b); });
    draw("lag", "bar", barOptions(false, "partition", "records behind the partition end", count), "#52606d",
      { keys: partitions, labels: partitions, values: partitions.map(function (p) { return lag[p]; }) });
  }

  function drawThroughput(rate, now) {
    throughput.push({ t: now, v: rate });
    if (throughput.length > THROUGHPUT_POINTS) { throughput.shift(); }
    var options = barOptions(false, "time (UTC)", "records per second (last 60 s)", function (v) { return RATE.format(v); });
    options.plugins.valueLabels = {};
    options.scales.x.ticks = { maxTicksLimit: 8 };
    draw("throughput", "line", options, "#2f6fb0", {
      keys: throughput.map(function (p) { return p.t.toISOString(); }),
      labels: throughput.map(function (p) { return utcTime(p.t); }),
      values: throughput.map(function (p) { return p.v; })
    });
  }

  function setText(id, text) { document.getElementById(id).textContent = text; }

  function drawTotals(records) {
    setText("tile-loaded", count(records.loaded));
    setText("tile-duplicate", count(records.duplicate));
    setText("tile-rejected", count(records.rejected));
  }

  function drawStats(stats, now) {
    drawTotals(stats.records);
    setText("tile-rate", RATE.format(stats.records_per_second));
    setText("tile-batches", count(stats.batches));
    setText("tile-commit", stats.last_commit_timestamp ? utcTime(new Date(stats.last_commit_timestamp * 1000)) + " UTC" : "none yet");
    drawThroughput(stats.records_per_second, now);
    drawLag(stats.lag);
    drawRejects(stats.rejected_by_reason);
  }

  function status(text, error) {
    var line = document.getElementById("status");
    line.textContent = text;
    line.classList.toggle("error", Boolean(error));
  }

  function fail(id, error) {
    var note = card(id).querySelector(".note");
    note.textContent = "not available: " + error.message;
    note.classList.add("error");
    throw error;
  }

  function query(name) {
    var page = new URLSearchParams(window.location.search);
    var out = new URLSearchParams();
    if (!REPORTS[name].unlimited) { out.set("limit", page.get("limit") || DEFAULT_LIMIT); }
    ["since", "until"].forEach(function (k) { if (page.get(k)) { out.set(k, page.get(k)); } });
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

  function refresh() {
    var now = new Date();
    var jobs = Object.keys(REPORTS).map(function (name) {
      var suffix = query(name);
      return getJson("api/reports/" + name + (suffix ? "?" + suffix : ""))
        .then(function (rows) { drawReport(name, rows); }, function (e) { fail(name, e); });
    });
    jobs.push(getJson("api/stats").then(function (s) { drawStats(s, now); }, function (e) { fail("rejects", e); }));
    Promise.all(jobs).then(function () {
      status("live \u00b7 refreshed every " + REFRESH_MS / 1000 + " s \u00b7 last update " + utcTime(now) + " UTC");
      document.body.setAttribute("data-ready", "true");
    }, function (error) {
      status("cannot read the consumer (" + error.message + "); last try " + utcTime(now) + " UTC", true);
    }).then(function () { window.setTimeout(refresh, REFRESH_MS); });
  }

  function snapshot(data) {
    document.body.classList.add("snapshot");
    setText("label-loaded", "orders in the warehouse");
    Object.keys(REPORTS).forEach(function (name) { drawReport(name, data.reports[name]); });
    drawTotals(data.totals);
    drawRejects(data.rejected_by_reason);
    var window_ = data.window.since || data.window.until
      ? " \u00b7 orders created from " + (data.window.since || "the start") + " until " + (data.window.until || "now")
      : "";
    status("snapshot of " + data.warehouse + " taken " + data.generated_at + window_);
    document.body.setAttribute("data-ready", "true");
  }

  function start() {
    if (!window.Chart) { status("the chart library did not load", true); return; }
    window.Chart.defaults.font.family = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif";
    window.Chart.defaults.color = "#52606d";
    var data = JSON.parse(document.getElementById("orders-data").textContent);
    if (data) { snapshot(data); } else { setText("label-loaded", "loaded since start"); refresh(); }
  }

  start();
}());
