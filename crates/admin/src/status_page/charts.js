// The status page's charts: /api/history (the front door's own metrics,
// sampled every few seconds) drawn with the vendored uPlot. Served at
// /static/charts.js; docs/status-page.md says what each chart shows.
"use strict";

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const CHART_W = 460;
const CHART_H = 170;
const charts = {};

function fmt(digits) {
  return (u, v) => (v === null || v === undefined ? "-" : v.toFixed(digits));
}

// Each chart: which series it draws from a history document. `series`
// gives [{label, stroke, scale, values}]; `axes` the y axes by scale, each
// from 0 to at least `floor` (an idle chart is a flat line at 0).
const CHART_DEFS = [
  {
    id: "chart-search",
    axes: [{ scale: "qps", label: "q/s", floor: 1 }, { scale: "ms", label: "p99 ms", side: 1, floor: 0.1 }],
    series: (h) => [
      { label: "search q/s", stroke: PALETTE[0], scale: "qps", values: h.search_qps, digits: 1 },
      { label: "search p99 (ms)", stroke: PALETTE[1], scale: "ms", values: h.search_p99_ms, digits: 2 },
    ],
  },
  {
    id: "chart-insert",
    axes: [{ scale: "qps", label: "calls/s", floor: 1 }],
    series: (h) => [
      { label: "insert calls/s", stroke: PALETTE[2], scale: "qps", values: h.insert_qps, digits: 1 },
    ],
  },
  {
    id: "chart-freshness",
    axes: [{ scale: "ms", label: "ms", floor: 1 }],
    series: (h) => [
      { label: "insert→visible p99 (ms)", stroke: PALETTE[4], scale: "ms", values: h.visible_p99_ms, digits: 1 },
    ],
    note: (h) => h.freshness_here ? "" :
      "n/a here: no insert→visible histogram in this process yet (a cluster proxy has none: see each querynode's /metrics)",
  },
  {
    id: "chart-lag",
    axes: [{ scale: "ms", label: "ms", floor: 10 }],
    series: (h) => h.aliases.map((a, i) => (
      { label: a.alias + " lag (ms)", stroke: PALETTE[(3 + i) % PALETTE.length], scale: "ms", values: a.standby_lag_ms, digits: 0 })),
    note: (h) => h.aliases.length ? "" : "no mirrored aliases",
  },
  {
    id: "chart-divergence",
    axes: [{ scale: "rows", label: "rows", floor: 1 }],
    series: (h) => h.aliases.map((a, i) => (
      { label: a.alias + " divergent rows", stroke: PALETTE[(3 + i) % PALETTE.length], scale: "rows", values: a.divergent_rows, digits: 0 })),
    note: (h) => h.aliases.length ? "" : "no mirrored aliases",
  },
  {
    id: "chart-failed",
    axes: [{ scale: "qps", label: "calls/s", floor: 1 }],
    series: (h) => h.failed.length
      ? h.failed.map((f, i) => (
        { label: f.service + " code " + f.code + " /s", stroke: PALETTE[(1 + i) % PALETTE.length], scale: "qps", values: f.per_s, digits: 2 }))
      : [{ label: "failed /s (none)", stroke: PALETTE[1], scale: "qps", values: h.t_ms.map(() => 0), digits: 2 }],
  },
];

function makeChart(def, series, plot) {
  const scales = { x: { time: true } };
  for (const a of def.axes) {
    scales[a.scale] = { auto: true, range: (u, min, max) => [0, Math.max((max || 0) * 1.1, a.floor)] };
  }
  const axes = [{}];
  for (const a of def.axes) axes.push({ scale: a.scale, label: a.label, side: a.side === 1 ? 1 : 3, size: 50 });
  const opts = {
    width: CHART_W,
    height: CHART_H,
    cursor: { drag: { x: false, y: false } },
    scales,
    axes,
    series: [{ label: "time (local)" }].concat(series.map((s) => ({
      label: s.label, stroke: s.stroke, width: 2, scale: s.scale, value: fmt(s.digits), spanGaps: false,
    }))),
  };
  return new uPlot(opts, [[]].concat(series.map(() => [])), plot);
}

// Draws one history document (a chart is rebuilt when its series change).
function renderCharts(h) {
  if (typeof uPlot === "undefined") {
    document.getElementById("charts-error").textContent = "the charting library did not load";
    return;
  }
  const xs = h.t_ms.map((t) => t / 1000);
  for (const def of CHART_DEFS) {
    const fig = document.getElementById(def.id);
    const series = def.series(h);
    const key = series.map((s) => s.label + s.stroke).join("|");
    let c = charts[def.id];
    if (!c || c.key !== key) {
      if (c) c.plot.destroy();
      c = charts[def.id] = { key, plot: makeChart(def, series, fig.querySelector(".plot")) };
    }
    c.plot.setData([xs].concat(series.map((s) => s.values)));
    // For tests and for a glance: points in the window, and points where a
    // series is above 0.
    fig.dataset.points = String(xs.length);
    fig.dataset.nonzero = String(xs.filter((_, i) => series.some((s) => (s.values[i] || 0) > 0)).length);
    fig.querySelector(".note").textContent = def.note ? def.note(h) : "";
  }
  const every = h.interval_ms >= 1000 ? (h.interval_ms / 1000) + " s" : h.interval_ms + " ms";
  document.getElementById("charts-window").textContent =
    "last " + Math.round(h.window_ms / 60000) + " min, one point every " + every;
}

async function refreshCharts() {
  try {
    const r = await fetch("/api/history", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    renderCharts(await r.json());
    document.getElementById("charts-error").textContent = "";
  } catch (e) {
    document.getElementById("charts-error").textContent = "cannot load the charts' data: " + e.message;
  }
}
