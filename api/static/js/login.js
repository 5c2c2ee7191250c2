// Login: paste an API token (kilnworks serve create-token); it is checked against /me.

import { api, esc, token } from "./api.js";

export async function render(el) {
  token.clear();
  el.innerHTML = `
    <div class="card login">
      <h1>Sign in</h1>
      <p class="muted">Paste your kilnworks token. An administrator creates one with
        <code>kilnworks serve create-token --role engineer --enterprise &lt;id&gt;</code>.</p>
      <form id="login-form">
        <label>Token <input id="token" name="token" autocomplete="off" placeholder="kw_…" required></label>
        <p><button type="submit">Sign in</button></p>
        <p id="login-error" class="error"></p>
      </form>
    </div>`;
  el.querySelector("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const t = el.querySelector("#token").value.trim();
    token.set(t);
    try {
      const me = await api("me");
      location.hash = me.role === "town" ? "#/town" : "#/";
    } catch (err) {
      token.clear();
      el.querySelector("#login-error").textContent =
        err.status === 401 ? "That token is not valid (unknown, mistyped or revoked)." : esc(err.message);
    }
  });
}
