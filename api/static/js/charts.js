// Chart builders shared by the kiln and firing views (plotly.js, loaded globally).

import { PLOT_CONFIG, PLOT_LAYOUT, plotTime } from "./api.js";

/** Actual vs setpoint with the ±tolerance band and excursions shaded. */
export function firingCurve(el, curve, events = []) {
  const x = curve.time_ns.map(plotTime);
  const sp = curve.setpoint_c;
  const tol = curve.tolerance_c;
  const band = (sign) => sp.map((v) => (v == null ? null : v + sign * tol));
  const traces = [
    { x, y: band(-1), mode: "lines", line: { width: 0 }, hoverinfo: "skip", showlegend: false },
    { x, y: band(+1), mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: "rgba(29,78,216,0.12)",
      name: `±${tol} °C band`, hoverinfo: "skip" },
    { x, y: sp, mode: "lines", name: "setpoint", line: { color: "#1d4ed8", width: 2, dash: "dash" } },
  ];
  for (const [name, y] of Object.entries(curve.thermocouples)) {
    // Windows without a sample are null; drop them so a sparse series still draws as a line.
    const keep = y.map((v, i) => (v == null ? -1 : i)).filter((i) => i >= 0);
    traces.push({ x: keep.map((i) => x[i]), y: keep.map((i) => y[i]), mode: "lines",
      name: name.replace("_temperature_c", ""), line: { width: 1.2 } });
  }
  const shapes = events.filter((e) => e.kind === "excursion").map((e) => ({
    type: "rect", xref: "x", yref: "paper", x0: plotTime(e.start_ns), x1: plotTime(e.end_ns), y0: 0, y1: 1,
    fillcolor: "rgba(185,28,28,0.08)", line: { width: 0 },
  }));
  const stalls = events.filter((e) => e.kind === "stall");
  if (stalls.length) {
    traces.push({ x: stalls.map((e) => plotTime(e.start_ns)), y: stalls.map(() => null), mode: "markers",
      name: "stall", marker: { symbol: "x", color: "#b45309", size: 10 } });
  }
  Plotly.react(el, traces, {
    ...PLOT_LAYOUT, shapes, yaxis: { title: "°C" }, xaxis: { type: "date" },
    title: { text: "Actual vs setpoint (excursions shaded)", font: { size: 13 } },
  }, PLOT_CONFIG);
}
