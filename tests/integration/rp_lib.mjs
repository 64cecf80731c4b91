// SPDX-License-Identifier: Apache-2.0
//
// What the relying-party tests (oidc_rp, grants, rehearsal, ...) share: TAP output, a cookie
// jar, and the browser's part of a sign-in through the gateway's login page driven with plain
// fetch (authorize -> login page -> form post -> redirect back to the app).
import * as oidc from 'openid-client';

// TAP lines without the plan (the .sh wrapper adds it). `check` prints one line per check;
// `failures()` says how many failed, for the exit status.
let count = 0;
let failed = 0;
export function check(cond, what, detail) {
  count++;
  if (cond) {
    console.log(`ok ${count} - ${what}`);
    return true;
  }
  failed++;
  console.log(`not ok ${count} - ${what}`);
  if (detail !== undefined) {
    const text = typeof detail === 'string' ? detail : (detail?.stack ?? JSON.stringify(detail));
    console.log(`# ${String(text).split('\n').join('\n# ')}`);
  }
  return false;
}
export function failures() { return failed; }

// A minimal cookie jar: name=value per cookie, sent back on every request to the issuer.
export class Jar {
  constructor() { this.cookies = new Map(); }
  take(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
  }
  header() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
}

// The hidden inputs of a server-rendered form, HTML entities decoded.
export function hiddenFields(html) {
  const fields = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
    fields[m[1]] = m[2].replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  }
  return fields;
}

// Signs in through the login page at @issuer (a URL) as @login/@password, starting from
// @authUrl. Returns the URL the browser is sent back to when it starts with @redirectPrefix
// (not fetched). When the login does not send the browser back (a refused password), throws
// an Error whose `refused` is true (and `status`, `location`, `body`: the login's answer). With
// @jar the cookies persist across calls (a session).
export async function browserLogin(issuer, authUrl, redirectPrefix,
  { login, password, jar = new Jar() }) {
  let res = await fetch(authUrl, { headers: { cookie: jar.header() }, redirect: 'manual' });
  jar.take(res);
  if (res.status !== 302 && res.status !== 303) {
    throw new Error(`authorize answered ${res.status} ${(await res.text()).slice(0, 300)}`);
  }
  const loginUrl = new URL(res.headers.get('location'), issuer);
  if (loginUrl.origin !== issuer.origin) throw new Error(`login page elsewhere: ${loginUrl}`);
  res = await fetch(loginUrl, { headers: { cookie: jar.header() }, redirect: 'manual' });
  jar.take(res);
  const html = await res.text();
  if (res.status !== 200) throw new Error(`login page answered ${res.status}`);
  const action = new URL(/<form method="post" action="([^"]+)"/.exec(html)[1], issuer);
  const body = new URLSearchParams({ ...hiddenFields(html), loginName: login, password });
  res = await fetch(action, {
    method: 'POST',
    headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
    body,
    redirect: 'manual',
  });
  jar.take(res);
  const loc = res.headers.get('location');
  if (!loc || !loc.startsWith(redirectPrefix)) {
    const text = await res.text();
    const err = new Error(`login answered ${res.status} ${loc ?? ''} ${text.slice(0, 300)}`);
    Object.assign(err, { refused: true, status: res.status, location: loc, body: text });
    throw err;
  }
  return new URL(loc);
}

// An authorization URL for @config's client with PKCE (S256), a nonce and a state, plus
// @extra parameters. Returns { url, verifier, nonce, state } for the code exchange.
export async function authRequest(config, redirectUri, scope, extra = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const nonce = oidc.randomNonce();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri, scope, code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256', nonce, state, ...extra,
  });
  return { url, verifier, nonce, state };
}
