// Kiln view: live zone temperatures, the current firing's actual vs setpoint, the firings.

import { PLOT_CONFIG, PLOT_LAYOUT, ago, api, esc, fmtTime, html, num, pct } from "./api.js";
import { firingCurve } from "./charts.js";

export async function render(el, p) {
  const path = `${p.e}/${p.s}/${p.l}/${p.a}`;
  el.innerHTML = html`<h1>Kiln ${path}</h1>
    <div class="kpis" id="kpis"></div>
    <div class="grid">
      <div class="card"><h2>Live zone temperatures</h2><div id="zones" class="chart"></div></div>
      <div class="card"><h2 id="curve-title">Current firing</h2><div id="curve" class="chart"></div></div>
    </div>
    <div class="card"><h2>Firings</h2><div id="firings"></div></div>`;

  const draw = async () => {
    const latest = await api(`assets/${path}/latest`);
    const f = latest.fields;
    const v = (k) => f[k]?.value;
    el.querySelector("#kpis").innerHTML = [
      ["State", v("state") ?? "–"], ["Firing", v("firing_id") || "–"], ["Programme", v("programme") || "–"],
      ["Gas m³/h", num(v("gas_flow_m3_h"))], ["O₂ %", num(v("o2_pct"))], ["CO ppm", num(v("co_ppm"), 0)],
      ["Last seen", ago(latest.last_seen_ns, latest.now_ns)],
    ].map(([k, val]) => html`<div class="kpi"><span class="muted">${k}</span><b>${val}</b></div>`).join("");
    const tcs = Object.keys(f).filter((k) => /^zone\d+_tc\d+_temperature_c$/.test(k)).sort(
      (a, b) => a.localeCompare(b, undefined, { numeric: true }));
    const zones = [...new Set(tcs.map((k) => k.match(/^zone(\d+)/)[1]))];
    Plotly.react(el.querySelector("#zones"), [
      { type: "bar", x: tcs.map((k) => k.replace("_temperature_c", "")), y: tcs.map((k) => v(k)),
        name: "thermocouple", marker: { color: tcs.map((k) => (f[k].quality ? "#b91c1c" : "#f59e0b")) } },
      { type: "scatter", mode: "markers", x: zones.map((z) => `zone${z}_tc1`),
        y: zones.map((z) => v(`zone${z}_setpoint_c`)), name: "zone setpoint",
        marker: { symbol: "line-ew-open", size: 28, color: "#1d4ed8", line: { width: 3 } } },
    ], { ...PLOT_LAYOUT, yaxis: { title: "°C" } }, PLOT_CONFIG);

    const firings = await api(`kilns/${path}/firings`);
    el.querySelector("#firings").innerHTML = firings.length ? `<table><tr><th>Firing</th><th>Programme</th>
      <th>Start</th><th>End</th><th>State</th><th class="num">Conformance</th><th class="num">Good / reject</th></tr>` +
      firings.map((x) => html`<tr><td><a href="#/firing/${path}/${encodeURIComponent(x.firing_id)}">${x.firing_id}</a></td>
        <td>${x.programme}</td><td>${fmtTime(x.start_ns)}</td><td>${fmtTime(x.end_ns)}</td><td>${x.state}</td>
        <td class="num">${pct(x.conformance_score)}</td>
        <td class="num">${x.grading ? `${x.grading.good_count} / ${x.grading.reject_count}` : "not graded"}</td></tr>`).join("") +
      "</table>" : `<p class="muted">No firings in the last 14 days.</p>`;
    const current = firings[0];
    if (current) {
      const [curve, report] = await Promise.all([
        api(`kilns/${path}/firings/${encodeURIComponent(current.firing_id)}/curve`, { params: { points: 400 } }),
        api(`kilns/${path}/firings/${encodeURIComponent(current.firing_id)}/events`),
      ]);
      el.querySelector("#curve-title").innerHTML =
        html`${current.state === "running" ? "Current" : "Last"} firing ${current.firing_id}`;
      firingCurve(el.querySelector("#curve"), curve, report);
    }
  };
  await draw();
  const timer = setInterval(() => draw().catch(() => {}), 10000);
  return () => clearInterval(timer);
}
