/* 督办监督: draws the dashboard's ECharts from /api/supervision/dashboard.
 *
 * The numbers are already on the page as tables (server-rendered); the charts
 * are drawn from the JSON API the tables were built from, so both always agree.
 * When every chart is drawn, <body data-charts-ready="N"> says how many.
 * Texts come from the data (category names …) and are set by ECharts as
 * canvas text, never as HTML.
 */
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root || typeof echarts === "undefined") return;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var charts = [];

  function flash(text, kind) {
    var box = document.getElementById("flash");
    if (!box || !text) return;
    var div = document.createElement("div");
    div.className = "flash " + kind;
    var p = document.createElement("p");
    p.textContent = text;
    div.appendChild(p);
    box.replaceChildren(div);
  }

  function make(el, option) {
    var chart = echarts.init(el, null, { renderer: "canvas" });
    chart.setOption(Object.assign({ animation: false, tooltip: { trigger: "axis" } }, option));
    charts.push(chart);
    el.dataset.drawn = "1";
  }

  /* series named for people (data-labels: code -> name, e.g. webchat -> 网页);
     series of one name are added up, as in the table beside the chart */
  function named(v, labels) {
    if (!labels) return v.series;
    var byName = {}, order = [];
    v.series.forEach(function (s) {
      var name = labels[s.name] || s.name;
      if (!byName[name]) { byName[name] = { name: name, counts: s.counts.map(function () { return 0; }), total: 0 }; order.push(byName[name]); }
      s.counts.forEach(function (n, i) { byName[name].counts[i] += n; });
      byName[name].total += s.total;
    });
    return order.sort(function (a, b) { return b.total - a.total; });
  }

  function volume(el, v) {
    var labels = null;
    try { labels = el.dataset.labels ? JSON.parse(el.dataset.labels) : null; } catch (err) { labels = null; }
    var top = named(v, labels).slice(0, 8);
    make(el, {
      legend: { type: "scroll", top: 0 },
      grid: { left: 40, right: 16, top: 36, bottom: 28 },
      xAxis: { type: "category", data: v.days.map(function (d) { return d.slice(5); }) },
      yAxis: { type: "value", minInterval: 1 },
      series: top.map(function (s) {
        return { name: s.name, type: "line", stack: "total", areaStyle: {}, symbol: "none", data: s.counts };
      }),
    });
  }

  function bars(el, rows, label, unit, max) {
    make(el, {
      title: { text: label, textStyle: { fontSize: 14 } },
      grid: { left: 150, right: 40, top: 36, bottom: 20 },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      xAxis: { type: "value", max: max },
      yAxis: { type: "category", inverse: true, data: rows.map(function (r) { return r.name; }) },
      series: [{ type: "bar", data: rows.map(function (r) { return r.value; }),
                 label: { show: true, position: "right", formatter: "{c}" + unit } }],
    });
  }

  function draw(d) {
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      var kind = el.dataset.chart;
      if (kind === "volume") volume(el, d.volume[el.dataset.dimension]);
      if (kind === "sla") bars(el, d.departments.filter(function (r) { return r.sla_compliance !== null; })
        .map(function (r) { return { name: r.department, value: r.sla_compliance }; }), "按时答复率", "%", 100);
      if (kind === "satisfaction") bars(el, d.departments.filter(function (r) { return r.mean_rating !== null; })
        .map(function (r) { return { name: r.department, value: r.mean_rating }; }), "平均满意度（1–5）", "", 5);
      if (kind === "hotspots") bars(el, d.hotspots.map(function (h) { return { name: h.label, value: h.heat }; }),
        "热度", "", null);
    });
    document.body.dataset.chartsReady = String(charts.length);
  }

  fetch(root.dataset.api, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (r) { return r.json(); })
    .then(draw)
    .catch(function () { document.body.dataset.chartsReady = "error"; });

  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });

  root.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-ack]");
    if (!button) return;
    button.disabled = true;
    fetch(button.dataset.ack, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
      body: "{}",
    }).then(function (r) {
      if (r.ok) {
        var row = button.closest("tr");
        row.classList.remove("unread");
        button.replaceWith(document.createTextNode(root.dataset.msgAck));
      } else {
        button.disabled = false;
        r.json().then(function (j) { flash(j.message, "error"); }, function () {});
      }
    }, function () {
      button.disabled = false;
      flash(document.body.dataset.msgNetwork, "error");
    });
  });
})();
