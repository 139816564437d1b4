/* orders-pipeline dashboard: how each card is drawn (with the vendored Chart.js), shared by the
 * live page and the `report --html` snapshot (dashboard.js decides what to draw).
 *
 * Every card records what it drew in data-rendered, JSON {keys, labels, values, texts, axes, ...}:
 * texts are the figures written on the page, and axes the title of each axis as Chart.js holds
 * it after drawing (read back from the chart, not from what was asked). The browser tests read it.
 */
(function () {
  "use strict";

  var MONEY = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  var COUNT = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  var ONE_DECIMAL = new Intl.NumberFormat("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  var COMPACT = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
  var GRAIN_TITLES = {
    hour: "hour (UTC)",
    day: "day (UTC)",
    week: "week, from its Monday (UTC)",
    month: "month (UTC)"
  };
  var charts = {};

  function money(v) { return MONEY.format(v); }
  function count(v) { return COUNT.format(v); }
  function rate(v) { return ONE_DECIMAL.format(v); }
  function seconds(v) { return (v < 100 ? ONE_DECIMAL.format(v) : COUNT.format(v)) + " s"; }
  function tick(v, max) {
    if (max >= 100000) { return COMPACT.format(v); } // 1.5M: ticks stay short and level
    return Number.isInteger(v) ? COUNT.format(v) : MONEY.format(v);
  }
  function clip(text) { return text.length > 34 ? text.slice(0, 33) + "\u2026" : text; }
  function card(id) { return document.getElementById("chart-" + id); }

  /* A sum of two-decimal amounts in whole cents, so a long series adds up exactly. */
  function sumMoney(values) {
    return values.reduce(function (cents, v) { return cents + Math.round(v * 100); }, 0) / 100;
  }

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
      // At most 7 level ticks: "45,000" ten times over does not fit a half-width card.
      ticks: { precision: format === count ? 0 : undefined, maxTicksLimit: 7, maxRotation: 0, callback: function (v) { return tick(v, this.max); } }
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

  function axesOf(chart) {
    var axes = {};
    Object.keys(chart.scales).forEach(function (id) {
      var title = chart.scales[id].options.title;
      axes[id] = title && title.display ? title.text : null;
    });
    return axes;
  }

  function setNote(box, text, error) {
    var note = box.querySelector(".note");
    note.textContent = text;
    note.classList.toggle("error", Boolean(error));
  }

  /* Creates the chart on first use, then updates its data and options in place (an axis title
   * follows the reporting currency and the grain). */
  function draw(id, type, data, options, drawn) {
    var box = card(id);
    if (charts[id]) {
      charts[id].data = data;
      charts[id].options = options;
      charts[id].update("none");
    } else {
      charts[id] = new window.Chart(box.querySelector("canvas"), { type: type, data: data, options: options, plugins: [valueLabels] });
    }
    drawn.axes = axesOf(charts[id]);
    box.setAttribute("data-rendered", JSON.stringify(drawn));
    setNote(box, drawn.values.length ? drawn.note || "" : "no data yet", false);
  }

  function series(values, color) {
    return [{ data: values, backgroundColor: color, borderColor: color, pointRadius: 2, cubicInterpolationMode: "monotone" }];
  }

  /* A bar chart of one series: spec {keys, labels, values, format, keyTitle, valueTitle, color,
   * horizontal, type}. */
  function bars(id, spec) {
    var options = barOptions(spec.horizontal, spec.keyTitle, spec.valueTitle, spec.format);
    draw(id, "bar", { labels: spec.labels, datasets: series(spec.values, spec.color) }, options,
      { keys: spec.keys, labels: spec.labels, values: spec.values, texts: spec.values.map(spec.format) });
  }

  /* A line over time (records per second): no figure at each point. */
  function line(id, spec) {
    var options = barOptions(false, spec.keyTitle, spec.valueTitle, spec.format);
    options.plugins.valueLabels = {};
    options.scales.x.ticks = { maxTicksLimit: 8 };
    draw(id, "line", { labels: spec.labels, datasets: series(spec.values, spec.color) }, options,
      { keys: spec.keys, labels: spec.labels, values: spec.values });
  }

  function periodLabel(period, grain) {
    if (grain === "hour") { return period.slice(0, 10) + " " + period.slice(11, 16); }
    return grain === "month" ? period.slice(0, 7) : period;
  }

  /* sales-over-time rows: total sales as bars on the left axis (in the reporting currency),
   * orders as a line on the right one; every period the API lists, empty ones included. */
  function overTime(rows, currency, grain) {
    var keys = rows.map(function (r) { return r.period; });
    var labels = keys.map(function (p) { return periodLabel(p, grain); });
    var totals = rows.map(function (r) { return r.total_sales; });
    var orders = rows.map(function (r) { return r.orders; });
    var units = rows.map(function (r) { return r.units; });
    var salesTitle = "total sales (" + currency + ")";
    var many = rows.length > 60;
    var data = {
      labels: labels,
      datasets: [
        { type: "bar", label: salesTitle, data: totals, yAxisID: "y", order: 2, backgroundColor: "#7fa7d4", borderColor: "#2f6fb0", borderWidth: many ? 0 : 1 },
        { type: "line", label: "orders", data: orders, yAxisID: "y1", order: 1, borderColor: "#c2610c", backgroundColor: "#c2610c", borderWidth: 2, pointRadius: many ? 0 : 2, cubicInterpolationMode: "monotone" }
      ]
    };
    var options = {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      plugins: {
        legend: { display: true, position: "top", align: "end", labels: { boxWidth: 14 } },
        tooltip: { callbacks: { label: function (c) {
          return c.dataset.label + ": " + (c.datasetIndex === 0 ? money(c.parsed.y) : count(c.parsed.y));
        } } }
      },
      scales: {
        x: { title: { display: true, text: GRAIN_TITLES[grain] || grain }, grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 12 } },
        y: { position: "left", beginAtZero: true, grace: "5%", title: { display: true, text: salesTitle }, ticks: { callback: function (v) { return tick(v, this.max); } } },
        y1: { position: "right", beginAtZero: true, grace: "5%", title: { display: true, text: "orders" }, grid: { drawOnChartArea: false }, ticks: { precision: 0 } }
      }
    };
    var unit = grain + (rows.length === 1 ? "" : "s");
    var note = rows.length ? count(rows.length) + " " + unit + " from " + labels[0] + " to " + labels[labels.length - 1] + ": " +
      count(sumMoney(orders)) + " orders, " + count(sumMoney(units)) + " units, " + money(sumMoney(totals)) + " " + currency + " of converted sales" : "";
    draw("sales-over-time", "bar", data, options,
      { keys: keys, labels: labels, values: totals, orders: orders, units: units, texts: [], note: note });
  }

  /* unconverted-sales rows, as a table (totals in several currencies are never drawn on one
   * axis); the card is hidden when nothing is unconverted. */
  function unconverted(rows) {
    var box = card("unconverted-sales");
    var body = box.querySelector("tbody");
    var keys = rows.map(function (r) { return r.currency; });
    var texts = rows.map(function (r) { return money(r.total); });
    body.textContent = "";
    rows.forEach(function (r, i) {
      var tr = document.createElement("tr");
      [r.currency === null ? "(no currency)" : r.currency, count(r.lines), texts[i] + (r.currency ? " " + r.currency : "")]
        .forEach(function (text) {
          var td = document.createElement("td");
          td.textContent = text;
          tr.appendChild(td);
        });
      body.appendChild(tr);
    });
    box.hidden = rows.length === 0;
    setNote(box, "", false);
    box.setAttribute("data-rendered", JSON.stringify({
      keys: keys, labels: keys, values: rows.map(function (r) { return r.total; }),
      lines: rows.map(function (r) { return r.lines; }), texts: texts
    }));
  }

  /* A card that could not be drawn says why (the unconverted card shows itself to say it). */
  function failed(id, error) {
    var box = card(id);
    box.hidden = false;
    setNote(box, "not available: " + error.message, true);
  }

  window.OrdersCharts = {
    money: money,
    count: count,
    rate: rate,
    seconds: seconds,
    bars: bars,
    line: line,
    overTime: overTime,
    unconverted: unconverted,
    failed: failed
  };
}());
