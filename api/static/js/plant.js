// Home: the plant model the caller may see, with connection status; links to the views.

import { ago, api, esc, html, raw } from "./api.js";

export async function render(el, _params, me) {
  const draw = async () => {
    const p = await api("plant");
    const parts = [`<h1>Plant</h1>`];
    for (const e of p.enterprises) {
      parts.push(html`<div class="card"><h2>${e.name} <span class="muted">(${e.id})</span>
        <span class="pill ${e.assets_connected === e.assets_total ? "ok" : "warn"}">${e.assets_connected}/${e.assets_total} connected</span>
        <a href="#/enterprise/${e.id}" class="muted">digitalisation →</a></h2>`);
      if (!e.sites.length) parts.push(html`<p class="muted">Last data ${ago(e.last_seen_ns, p.now_ns)}.</p>`);
      for (const s of e.sites) {
        for (const l of s.lines) {
          const hasPress = l.assets.some((a) => a.type === "press");
          parts.push(html`<h3>${s.name} · ${l.name}
            ${raw(hasPress ? html`<a href="#/line/${l.path}">line OEE →</a>` : "")}</h3>
            <table><tr><th>Asset</th><th>Type</th><th>Status</th><th>Last seen</th></tr>`);
          for (const a of l.assets) {
            const href = a.type === "kiln" ? `#/kiln/${a.path}` : `#/line/${l.path}`;
            parts.push(html`<tr><td><a href="${href}">${a.name}</a></td><td>${a.kind} ${a.type}</td>
              <td><span class="dot ${a.connected ? "on" : "off"}"></span>${a.connected ? "connected" : "silent"}</td>
              <td>${ago(a.last_seen_ns, p.now_ns)}</td></tr>`);
          }
          parts.push("</table>");
        }
      }
      parts.push("</div>");
    }
    if (me?.role !== "town") {
      try {
        const alarms = await api("alarms", { params: { active: true, limit: 50 } });
        parts.push(`<div class="card"><h2>Active alarms (${alarms.length})</h2><table>
          <tr><th>Since</th><th>Asset</th><th>Kind</th><th>Message</th><th></th></tr>`);
        for (const a of alarms) {
          parts.push(html`<tr><td>${ago(a.start_ns, p.now_ns)}</td><td>${a.asset}</td>
            <td><span class="pill ${a.severity === "major" ? "bad" : "warn"}">${a.kind}</span></td><td>${a.message}</td>
            <td>${raw(a.acked_ns ? html`acked by ${a.acked_by}` : `<button class="secondary ack" data-id="${a.id}">Acknowledge</button>`)}</td></tr>`);
        }
        parts.push("</table></div>");
      } catch {}
    }
    el.innerHTML = parts.join("");
    el.querySelectorAll("button.ack").forEach((b) => b.addEventListener("click", async () => {
      await api(`alarms/${b.dataset.id}/ack`, { method: "POST" });
      draw();
    }));
  };
  await draw();
  const timer = setInterval(draw, 15000);
  return () => clearInterval(timer);
}
