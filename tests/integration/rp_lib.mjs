// SPDX-License-Identifier: Apache-2.0
//
// Shared by the relying-party suites (rehearsal.mjs, claims.mjs): TAP checks, a cookie jar,
// and a "browser" that goes authorize -> login page -> form post with fetch.

// TAP lines without the plan. tap.check(cond, what, detail); tap.failures at the end.
export function tap() {
  const t = {
    n: 0,
    failures: 0,
    check(cond, what, detail) {
      t.n++;
      if (cond) {
        console.log(`ok ${t.n} - ${what}`);
      } else {
        t.failures++;
        console.log(`not ok ${t.n} - ${what}`);
        if (detail !== undefined) console.log(`# ${String(detail).split('\n').join('\n# ')}`);
      }
      return cond;
    },
  };
  return t;
}

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

export function hiddenFields(html) {
  const fields = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
    fields[m[1]] = m[2].replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  }
  return fields;
}

// authorize -> login page -> form post with @login and @password. Returns the login form's
// answer: { status, location, body } (location null when it did not redirect).
export async function browserLoginRaw(issuer, authUrl, login, password) {
  const jar = new Jar();
  let res = await fetch(authUrl, { redirect: 'manual' });
  jar.take(res);
  if (res.status !== 302 && res.status !== 303) throw new Error(`authorize answered ${res.status} ${await res.text()}`);
  const loginUrl = new URL(res.headers.get('location'), issuer);
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
  return { status: res.status, location: res.headers.get('location'), body: await res.text() };
}

// The redirect URL back to the app, or null when the login did not send the browser there.
export async function browserLogin(issuer, authUrl, redirectPrefix, login, password) {
  const { location } = await browserLoginRaw(issuer, authUrl, login, password);
  if (!location || !location.startsWith(redirectPrefix)) return null;
  return new URL(location);
}
