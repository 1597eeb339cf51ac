// The performer's token. It arrives in the link's fragment (/control#t=...),
// which a browser never sends to any server, and is kept in localStorage so a
// reload, or /camera on the same phone, does not ask again.

const KEY = "ganvj.token";

export function token() {
  const match = /(?:^#|&)t=([^&]+)/.exec(location.hash);
  if (match) {
    const value = decodeURIComponent(match[1]);
    try { localStorage.setItem(KEY, value); } catch { /* private mode: this page only */ }
    // Out of the address bar, so a screenshot or a shared screen does not show it.
    history.replaceState(null, "", location.pathname + location.search);
    sessionToken = value;
    return value;
  }
  try { return localStorage.getItem(KEY) || sessionToken; } catch { return sessionToken; }
}
let sessionToken = "";

export function forgetToken() {
  sessionToken = "";
  try { localStorage.removeItem(KEY); } catch { /* nothing kept */ }
}

export function withToken(url) {
  const value = token();
  if (!value) return url;
  return `${url}${url.includes("?") ? "&" : "?"}t=${encodeURIComponent(value)}`;
}

// {role: "viewer" | "performer" | "admin"}, or {role: null, error} for a refused token.
export async function whoAmI() {
  const response = await fetch(withToken("/api/role"));
  const body = await response.json().catch(() => ({}));
  if (!response.ok) return { role: null, error: body.error || `HTTP ${response.status}` };
  return body;
}
