// Enterprise view: digitalisation progress over time (measured + self-assessed), OEE per day.

import { PLOT_CONFIG, PLOT_LAYOUT, api, esc, fmtTime, html, num, pct, plotTime, raw } from "./api.js";

const INDICATORS = ["connected", "completeness", "timeliness", "conformance", "reason_coded"];

export async function render(el, p, me) {
  const draw = async () => {
    const prog = await api(`enterprises/${p.e}/digitalisation`, { params: { period: "week", periods: 12 } });
    const last = prog.points[prog.points.length - 1];
    el.innerHTML = html`<h1>Digitalisation progress · ${p.e}</h1>
      <div class="kpis">${raw([["Progress index", num(last?.progress_index)], ["Δ since last week", num(last?.delta_index)],
        ["Self-assessed level", last?.assessed_level == null ? "–" : `${num(last.assessed_level)} (${last.assessed_level_name})`],
        ["Evidence level", num(last?.evidence_level)]]
        .map(([k, v]) => html`<div class="kpi"><span class="muted">${k}</span><b>${v}</b></div>`).join(""))}</div>
      <div class="grid">
        <div class="card"><h2>Progress index over time</h2><div id="progress" class="chart"></div></div>
        <div class="card"><h2>Measured indicators</h2><div id="indicators" class="chart"></div></div>
      </div>
      <div class="card"><h2>Notes</h2><ul>${raw((last?.notes || []).map((n) => html`<li>${n}</li>`).join(""))}</ul></div>
      <div class="card"><h2>GB/T 39116 self-assessments</h2><table><tr><th>When</th><th>By</th>
        <th class="num">Personnel</th><th class="num">Technology</th><th class="num">Resources</th><th class="num">Manufacturing</th><th>Note</th></tr>
        ${raw(prog.assessments.map((a) => html`<tr><td>${fmtTime(a.submitted_ns)}</td><td>${a.submitted_by}</td>
          <td class="num">${a.personnel}</td><td class="num">${a.technology}</td><td class="num">${a.resources}</td>
          <td class="num">${a.manufacturing}</td><td>${a.note}</td></tr>`).join(""))}</table>
        ${raw(me && (me.role === "manager" || me.role === "admin") ? `<form class="inline" id="assess">
          ${["personnel", "technology", "resources", "manufacturing"].map((k) =>
            `<label>${k} <input name="${k}" type="number" min="1" max="5" step="0.5" value="2" required></label>`).join("")}
          <label>Note <input name="note"></label><button type="submit">Submit assessment</button></form>
          <p id="assess-error" class="error"></p>` : "")}
      </div>`;
    const x = prog.points.map((q) => plotTime(q.end_ns));
    Plotly.react(el.querySelector("#progress"), [
      { x, y: prog.points.map((q) => q.progress_index), name: "progress index (0-100)", mode: "lines+markers" },
      { x, y: prog.points.map((q) => (q.measured_index == null ? null : 100 * q.measured_index)), name: "measured ×100", mode: "lines" },
      { x, y: prog.points.map((q) => (q.assessed_level == null ? null : 25 * (q.assessed_level - 1))), name: "self-assessed (scaled)", mode: "lines", line: { dash: "dot" } },
    ], { ...PLOT_LAYOUT, yaxis: { range: [0, 100] }, xaxis: { type: "date" } }, PLOT_CONFIG);
    Plotly.react(el.querySelector("#indicators"), INDICATORS.map((k) => ({
      x, y: prog.points.map((q) => q.indicators[k]), name: k, mode: "lines+markers",
    })), { ...PLOT_LAYOUT, yaxis: { range: [0, 1.05], tickformat: ".0%" }, xaxis: { type: "date" } }, PLOT_CONFIG);
    el.querySelector("#assess")?.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = Object.fromEntries(new FormData(ev.target));
      try {
        await api(`enterprises/${p.e}/digitalisation/assessments`, { method: "POST", body: {
          personnel: Number(f.personnel), technology: Number(f.technology), resources: Number(f.resources),
          manufacturing: Number(f.manufacturing), note: f.note || "" } });
        await draw();
      } catch (err) {
        el.querySelector("#assess-error").textContent = err.message;
      }
    });
  };
  await draw();
}
