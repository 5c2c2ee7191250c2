// Firing report: the conformance report, the curve, excursions/stalls, and the grading form.

import { api, esc, fmtTime, html, num, pct, raw } from "./api.js";
import { firingCurve } from "./charts.js";

export async function render(el, p) {
  const path = `${p.e}/${p.s}/${p.l}/${p.a}`;
  const base = `kilns/${path}/firings/${encodeURIComponent(p.firing)}`;
  const [r, curve] = await Promise.all([api(base), api(`${base}/curve`, { params: { points: 800 } })]);
  const s = r.summary;
  const verdictClass = s.verdict === "conforming" ? "ok" : s.verdict === "nonconforming" ? "bad" : "warn";
  el.innerHTML = html`<h1>Firing ${r.firing.firing_id} <span class="muted">on ${path}</span>
      <span class="pill ${verdictClass}" id="verdict">${s.verdict ?? "not judged"}</span></h1>
    <div class="kpis">
      ${raw([["Score (in band)", pct(r.score)], ["Max |dev| °C", num(s.max_abs_deviation_c)],
        ["RMS dev °C", num(s.rms_deviation_c)], [s.in_progress ? "Coverage so far" : "Coverage", pct(s.coverage_so_far ?? s.coverage)],
        ["Uniformity class", s.uniformity_class > 0 ? s.uniformity_class : "–"],
        ["Cone", s.cone_max == null ? "–" : num(s.cone_max)],
        ["Start", fmtTime(r.firing.start_ns)], ["End", fmtTime(r.firing.end_ns)]]
        .map(([k, v]) => html`<div class="kpi"><span class="muted">${k}</span><b>${v}</b></div>`).join(""))}
    </div>
    ${raw(r.problems.length ? html`<p class="error">${r.problems.join("; ")}</p>` : "")}
    <div class="card"><div id="curve" class="chart" style="height:420px"></div></div>
    <div class="grid">
      <div class="card"><h2>Segments</h2><table><tr><th>#</th><th>Kind</th><th class="num">Programmed °C/h</th>
        <th class="num">Achieved °C/h (mean)</th><th class="num">Soak in band</th></tr>
        ${raw(r.segments.map((g) => html`<tr><td>${g.index + 1}</td><td>${g.kind}</td>
          <td class="num">${num(g.programmed_rate_c_h)}</td>
          <td class="num">${num(mean(g.achieved_rate_c_h))}</td>
          <td class="num">${g.soak_in_band_s ? num(mean(g.soak_in_band_s) / 60, 0) + " min" : "–"}</td></tr>`).join(""))}
      </table></div>
      <div class="card"><h2>Excursions and stalls (${r.events.length})</h2><table>
        <tr><th>Kind</th><th>Where</th><th>From</th><th>To</th><th class="num">Worst °C</th></tr>
        ${raw(r.events.map((e) => html`<tr><td>${e.kind}</td><td>${e.subject.replace("_temperature_c", "")}</td>
          <td>${fmtTime(e.start_ns)}</td><td>${fmtTime(e.end_ns)}</td>
          <td class="num">${e.peak_deviation_c == null ? e.detail : num(e.peak_deviation_c)}</td></tr>`).join(""))}
      </table></div>
      <div class="card"><h2>Thermocouples</h2><table><tr><th>Thermocouple</th><th class="num">In band</th>
        <th class="num">Max |dev|</th><th class="num">Peak °C</th></tr>
        ${raw(r.thermocouples.map((t) => html`<tr><td>${t.name.replace("_temperature_c", "")}</td>
          <td class="num">${pct(t.share_in_band)}</td><td class="num">${num(t.max_abs_deviation_c)}</td>
          <td class="num">${num(t.peak_c)}</td></tr>`).join(""))}
      </table></div>
      <div class="card"><h2>Grading</h2><div id="grading"></div>
        <form class="inline" id="grade">
          <label>Good <input name="good" type="number" min="0" required></label>
          <label>Rejected <input name="reject" type="number" min="0" required></label>
          <label>Reasons (crack=3, black_core=1) <input name="reasons"></label>
          <label>Fired mass kg <input name="mass" type="number" min="0" step="any"></label>
          <button type="submit">Record grading</button>
        </form><p id="grade-error" class="error"></p></div>
    </div>`;
  firingCurve(el.querySelector("#curve"), curve, r.events);
  const showGrading = (g) => {
    el.querySelector("#grading").innerHTML = g
      ? html`<p>${g.good_count} good, ${g.reject_count} rejected
          (${Object.entries(g.reject_reasons).map(([k, v]) => `${k} ${v}`).join(", ") || "no reasons"}),
          graded ${fmtTime(g.graded_ns)} by ${g.graded_by}.</p>`
      : `<p class="muted">Not graded yet.</p>`;
  };
  showGrading(r.firing.grading);
  el.querySelector("#grade").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const reasons = Object.fromEntries(String(f.get("reasons") || "").split(",").map((x) => x.trim())
      .filter(Boolean).map((x) => { const [k, v] = x.split("="); return [k.trim(), Number(v)]; }));
    try {
      const g = await api(`${base}/grading`, { method: "POST", body: {
        good_count: Number(f.get("good")), reject_count: Number(f.get("reject")), reject_reasons: reasons,
        fired_mass_kg: f.get("mass") ? Number(f.get("mass")) : null } });
      showGrading(g);
      el.querySelector("#grade-error").textContent = "";
    } catch (err) {
      el.querySelector("#grade-error").textContent = err.message;
    }
  });
}

function mean(xs) {
  const v = (xs || []).filter((x) => x != null);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}
