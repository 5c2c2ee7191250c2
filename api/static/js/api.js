// The API client of the dashboard: token in localStorage, problem details turned into errors.

const TOKEN_KEY = "kilnworks.token";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export const token = {
  get: () => localStorage.getItem(TOKEN_KEY),
  set: (t) => localStorage.setItem(TOKEN_KEY, t),
  clear: () => localStorage.removeItem(TOKEN_KEY),
};

/** GET or POST /api/v1/<path>; rejects with ApiError (401 sends the user to the login page). */
export async function api(path, { method = "GET", body, params } = {}) {
  const url = new URL("/api/v1/" + path.replace(/^\//, ""), location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null) url.searchParams.set(k, v);
  }
  const headers = { Accept: "application/json" };
  const t = token.get();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 204) return null;
  const data = await r.json().catch(() => null);
  if (!r.ok) {
    if (r.status === 401 && location.hash !== "#/login") location.hash = "#/login";
    throw new ApiError(r.status, data);
  }
  return data;
}

// -- formatting -------------------------------------------------------------------------------

const TZ = "Asia/Shanghai";
const dtf = new Intl.DateTimeFormat("en-GB", {
  timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
});

/** Integer UTC nanoseconds (a JS number loses sub-µs precision only) -> a Date. */
export const nsToDate = (ns) => new Date(ns / 1e6);
export const fmtTime = (ns) => (ns == null ? "–" : dtf.format(nsToDate(ns)));
/** Plant-local wall-clock string Plotly can place on a date axis. */
export function plotTime(ns) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-CA", {
      timeZone: TZ, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }).formatToParts(nsToDate(ns)).map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
}
export const pct = (x) => (x == null ? "–" : `${(100 * x).toFixed(1)} %`);
export const num = (x, d = 1) => (x == null ? "–" : Number(x).toFixed(d));
export const ago = (ns, nowNs) => {
  if (ns == null) return "never";
  const s = (nowNs - ns) / 1e9;
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
};

/** Tiny safe templating: escape every interpolated value. */
export function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
export function html(strings, ...values) {
  return strings.reduce((out, s, i) => out + s + (i < values.length ? (values[i]?.__html ?? esc(values[i])) : ""), "");
}
export const raw = (s) => ({ __html: s });

export const PLOT_CONFIG = { displaylogo: false, responsive: true };
export const PLOT_LAYOUT = {
  margin: { l: 55, r: 15, t: 30, b: 40 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff",
  legend: { orientation: "h", y: -0.2 }, font: { size: 12 },
};
