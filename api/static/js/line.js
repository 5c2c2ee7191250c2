// Press / line view: OEE per shift with the six-loss breakdown, and each asset's state timeline.

import { PLOT_CONFIG, PLOT_LAYOUT, api, esc, html, pct, plotTime } from "./api.js";

const LOSSES = [
  ["fully_productive_s", "fully productive", "#15803d"],
  ["equipment_failure_s", "equipment failure", "#b91c1c"],
  ["setup_adjustments_s", "setup & adjustments", "#f97316"],
  ["minor_stops_s", "minor stops", "#eab308"],
  ["reduced_speed_s", "reduced speed", "#a3a3a3"],
  ["process_defects_s", "process defects", "#7c3aed"],
  ["startup_rejects_s", "start-up rejects", "#db2777"],
];
const STATE_COLOURS = {
  running: "#15803d", idle: "#9ca3af", setup: "#f97316", breakdown: "#b91c1c", starved: "#eab308",
  blocked: "#a16207", planned_stop: "#60a5fa", heating: "#ef4444", soaking: "#f59e0b", cooling: "#3b82f6", fault: "#7f1d1d",
};

export async function render(el, p) {
  const line = `${p.e}/${p.s}/${p.l}`;
  el.innerHTML = html`<h1>Line ${line}</h1>
    <div class="kpis" id="kpis"></div>
    <div class="card"><h2>OEE per shift (last 24 h), with the six big losses (hours of planned busy time)</h2>
      <div id="oee" class="chart" style="height:380px"></div></div>
    <div class="card"><h2>State timeline (last 24 h)</h2><div id="states" class="chart"></div></div>`;
  // The server's clock, not the browser's: the demo runs on a simulated clock.
  const now = (await api("health")).now_ns;
  const oee = await api("oee", { params: { scope: line, bucket: "shift", start_ns: now - 86400e9, end_ns: now } });
  const t = oee.total;
  el.querySelector("#kpis").innerHTML = [["OEE (24 h)", pct(t.oee)], ["Availability", pct(t.availability)],
    ["Performance", pct(t.performance)], ["Quality", pct(t.quality)], ["Good", t.good], ["Rejected", t.rejected]]
    .map(([k, v]) => html`<div class="kpi"><span class="muted">${k}</span><b>${v}</b></div>`).join("");
  const x = oee.periods.map((q) => q.period);
  const traces = LOSSES.map(([key, name, color]) => ({
    type: "bar", name, x, y: oee.periods.map((q) => (q.losses_s[key] ?? 0) / 3600), marker: { color },
  }));
  traces.push({ type: "scatter", mode: "lines+markers", name: "OEE", x, y: oee.periods.map((q) => q.oee),
    yaxis: "y2", line: { color: "#111827" } });
  Plotly.react(el.querySelector("#oee"), traces, {
    ...PLOT_LAYOUT, margin: { ...PLOT_LAYOUT.margin, r: 55 }, barmode: "stack", yaxis: { title: "h" },
    yaxis2: { title: "OEE", overlaying: "y", side: "right", range: [0, 1], tickformat: ".0%",
      tickvals: [0, 0.25, 0.5, 0.75, 1], showgrid: false },
  }, PLOT_CONFIG);

  const plant = await api(`plant/${p.e}`);
  const assets = plant.sites.flatMap((s) => s.lines).find((l) => l.path === line)?.assets ?? [];
  const bars = [];
  for (const a of assets) {
    const tl = await api(`assets/${a.path}/states`);
    for (const sp of tl.spans) {
      bars.push({ asset: a.id, state: sp.state, reason: sp.reason, start: sp.start_ns, end: sp.end_ns });
    }
  }
  const byState = {};
  for (const b of bars) (byState[b.state] ||= []).push(b);
  Plotly.react(el.querySelector("#states"), Object.entries(byState).map(([state, bs]) => ({
    type: "bar", orientation: "h", name: state, y: bs.map((b) => b.asset),
    base: bs.map((b) => plotTime(b.start)), x: bs.map((b) => (b.end - b.start) / 1e6),
    text: bs.map((b) => b.reason), hovertemplate: "%{y}: " + state + " %{text}<extra></extra>",
    marker: { color: STATE_COLOURS[state] || "#6b7280" },
  })), { ...PLOT_LAYOUT, barmode: "overlay", xaxis: { type: "date" } }, PLOT_CONFIG);
}
