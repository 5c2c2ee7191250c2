// Town view: the key enterprises side by side (aggregates only).

import { PLOT_CONFIG, PLOT_LAYOUT, api, html, num, pct, raw } from "./api.js";

export async function render(el) {
  const draw = async () => {
    const t = await api("town/overview", { params: { hours: 24 } });
    const names = t.enterprises.map((e) => e.name);
    el.innerHTML = html`<h1>Shangbu town · key enterprises (last 24 h)</h1>
      <div class="kpis"><div class="kpi"><span class="muted">Town OEE</span><b>${pct(t.town_oee)}</b></div></div>
      <div class="card"><div id="side" class="chart" style="height:380px"></div></div>
      <div class="card"><table><tr><th>Enterprise</th><th class="num">OEE</th><th class="num">Availability</th>
        <th class="num">Performance</th><th class="num">Quality</th><th class="num">Firings</th>
        <th class="num">Conformance</th><th class="num">kWh / t fired</th><th class="num">Digitalisation</th>
        <th class="num">Connected</th><th class="num">Data age</th></tr>
        ${raw(t.enterprises.map((e) => html`<tr><td><a href="#/enterprise/${e.enterprise}">${e.name}</a></td>
          <td class="num">${pct(e.oee)}</td><td class="num">${pct(e.availability)}</td>
          <td class="num">${pct(e.performance)}</td><td class="num">${pct(e.quality)}</td>
          <td class="num">${e.firings}</td><td class="num">${pct(e.conformance_mean)}</td>
          <td class="num">${num(e.energy_kwh_per_t, 0)}</td><td class="num">${num(e.digitalisation_index)}</td>
          <td class="num">${e.assets_connected}/${e.assets_total}</td>
          <td class="num">${e.data_age_s == null ? "no data" : num(e.data_age_s, 0) + " s"}</td></tr>`).join(""))}
      </table></div>`;
    Plotly.react(el.querySelector("#side"), [
      { type: "bar", name: "OEE", x: names, y: t.enterprises.map((e) => e.oee) },
      { type: "bar", name: "firing conformance", x: names, y: t.enterprises.map((e) => e.conformance_mean) },
      { type: "bar", name: "digitalisation index / 100", x: names,
        y: t.enterprises.map((e) => (e.digitalisation_index == null ? null : e.digitalisation_index / 100)) },
      { type: "bar", name: "assets connected", x: names, y: t.enterprises.map((e) => e.assets_connected / e.assets_total) },
    ], { ...PLOT_LAYOUT, barmode: "group", yaxis: { range: [0, 1], tickformat: ".0%" } }, PLOT_CONFIG);
  };
  await draw();
  const timer = setInterval(() => draw().catch(() => {}), 30000);
  return () => clearInterval(timer);
}
