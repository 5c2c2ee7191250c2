// Hash router of the dashboard: each view is a module exporting render(el, params) -> cleanup?

import { api, esc, token } from "./api.js";

const ROUTES = [
  [/^#\/login$/, () => import("./login.js"), []],
  [/^#\/kiln\/([^/]+)\/([^/]+)\/([^/]+)\/([^/]+)$/, () => import("./kiln.js"), ["e", "s", "l", "a"]],
  [/^#\/firing\/([^/]+)\/([^/]+)\/([^/]+)\/([^/]+)\/([^/]+)$/, () => import("./firing.js"), ["e", "s", "l", "a", "firing"]],
  [/^#\/line\/([^/]+)\/([^/]+)\/([^/]+)$/, () => import("./line.js"), ["e", "s", "l"]],
  [/^#\/enterprise\/([^/]+)$/, () => import("./enterprise.js"), ["e"]],
  [/^#\/town$/, () => import("./town.js"), []],
  [/^#?\/?$/, () => import("./plant.js"), []],
];

let cleanup = null;
let me = null;

async function whoami() {
  if (!token.get()) return null;
  try {
    return await api("me");
  } catch {
    return null;
  }
}

function nav() {
  const links = [`<a href="#/">Plant</a>`];
  if (me && (me.role === "admin" || me.role === "town")) links.push(`<a href="#/town">Town</a>`);
  if (me?.enterprise) links.push(`<a href="#/enterprise/${esc(me.enterprise)}">Digitalisation</a>`);
  document.getElementById("nav").innerHTML = links.join("");
  document.getElementById("who").innerHTML = me
    ? `${esc(me.name)} · ${esc(me.role)}${me.enterprise ? " · " + esc(me.enterprise) : ""} · <a href="#/login" id="logout">sign out</a>`
    : "";
  document.getElementById("logout")?.addEventListener("click", () => { token.clear(); me = null; });
}

async function route() {
  if (cleanup) { try { cleanup(); } catch {} cleanup = null; }
  const hash = location.hash || "#/";
  if (hash === "#/login") me = null; // signing in again (perhaps as someone else)
  if (hash !== "#/login" && !token.get()) { location.hash = "#/login"; return; }
  if (hash !== "#/login" && !me) me = await whoami();
  nav();
  const el = document.getElementById("view");
  for (const [re, load, names] of ROUTES) {
    const m = hash.match(re);
    if (!m) continue;
    const params = Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1])]));
    const view = await load();
    el.innerHTML = "";
    try {
      cleanup = (await view.render(el, params, me)) || null;
    } catch (err) {
      el.innerHTML = `<p class="error">${esc(err.message)}</p>`;
    }
    return;
  }
  el.innerHTML = `<p class="error">No such page: ${esc(hash)}</p>`;
}

window.addEventListener("hashchange", route);
route();
