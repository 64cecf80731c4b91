// SPDX-License-Identifier: Apache-2.0
//
// CORS in a real browser: headless Chromium (Debian's) driven by playwright-core runs fetch()
// from two pages served by tiny local HTTP servers: one on an origin a client registered (a
// redirect URI), one on an origin nobody registered. Started by cors_browser.sh with:
//   ISSUER              http://127.0.0.1:<port> of the running server
//   PORT_OK, PORT_DENY  the pages' ports (PORT_OK is registered, PORT_DENY is not)
//   SPA_ID              a public client whose redirect URI is on PORT_OK
//   WEB_ID, WEB_SECRET  a confidential client (Basic auth: a preflighted request)
// TAP output; exit status 0 only when every check held.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const { ISSUER, PORT_OK, PORT_DENY, SPA_ID, WEB_ID, WEB_SECRET } = process.env;
if (!ISSUER || !PORT_OK || !PORT_DENY || !SPA_ID || !WEB_ID || !WEB_SECRET) {
  console.error('cors_browser: ISSUER, PORT_OK, PORT_DENY, SPA_ID, WEB_ID, WEB_SECRET must be set');
  process.exit(2);
}

let n = 0;
let failures = 0;
function check(cond, what) {
  n++;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${what}`);
  if (!cond) failures++;
}

// The pages: an empty document on each port, so fetch() runs with that page's origin.
function listen(port) {
  const srv = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>rp</title><p>relying party');
  });
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(Number(port), '127.0.0.1', () => resolve(srv));
  });
}

// Runs in the page: every CORS endpoint, and authorize, as a browser app would call them.
// Each result is {status, ...} when the script could read the answer, {error} when the
// browser refused it.
async function probe({ issuer, spaId, webId, webSecret, redirectUri }) {
  const form = (o) => new URLSearchParams(o);
  const basic = 'Basic ' + btoa(`${encodeURIComponent(webId)}:${encodeURIComponent(webSecret)}`);
  const calls = {
    discovery: () => fetch(`${issuer}/.well-known/openid-configuration`),
    jwks: () => fetch(`${issuer}/oauth/v2/keys`),
    // A form POST is a "simple" request: no preflight, the answer needs the allow header.
    token: () => fetch(`${issuer}/oauth/v2/token`, {
      method: 'POST',
      body: form({ grant_type: 'authorization_code', code: 'nope', client_id: spaId,
                   redirect_uri: redirectUri, code_verifier: 'x'.repeat(43) }),
    }),
    // An Authorization header makes the browser preflight first.
    userinfo: () => fetch(`${issuer}/oidc/v1/userinfo`, { headers: { authorization: 'Bearer nope' } }),
    introspect: () => fetch(`${issuer}/oauth/v2/introspect`, {
      method: 'POST', headers: { authorization: basic }, body: form({ token: 'nope' }),
    }),
    revoke: () => fetch(`${issuer}/oauth/v2/revoke`, {
      method: 'POST', headers: { authorization: basic }, body: form({ token: 'nope' }),
    }),
    authorize: () => fetch(`${issuer}/oauth/v2/authorize?` + form({
      client_id: spaId, redirect_uri: redirectUri, response_type: 'code', scope: 'openid',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
    })),
  };
  const out = {};
  for (const [name, call] of Object.entries(calls)) {
    try {
      const r = await call();
      const text = await r.text();
      let json = null;
      try { json = JSON.parse(text); } catch { /* not JSON */ }
      out[name] = { status: r.status, json, challenge: r.headers.get('www-authenticate') };
    } catch (e) {
      out[name] = { error: String(e) };
    }
  }
  return out;
}

const servers = [];
const profile = mkdtempSync(join(tmpdir(), 'koder-chromium-'));
let context;
try {
  servers.push(await listen(PORT_OK), await listen(PORT_DENY));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(20000);
  const arg = (port) => ({ issuer: ISSUER, spaId: SPA_ID, webId: WEB_ID, webSecret: WEB_SECRET,
                           redirectUri: `http://127.0.0.1:${PORT_OK}/cb` });

  await page.goto(`http://127.0.0.1:${PORT_OK}/`);
  const ok = await page.evaluate(probe, arg(PORT_OK));
  const o = `from the registered origin http://127.0.0.1:${PORT_OK}`;
  check(ok.discovery.json?.issuer === ISSUER, `discovery readable ${o}`);
  check(Array.isArray(ok.jwks.json?.keys) && ok.jwks.json.keys.length > 0, `JWKS readable ${o}`);
  check(ok.token.status === 400 && ok.token.json?.error === 'invalid_grant',
        `token's invalid_grant readable ${o} (${JSON.stringify(ok.token)})`);
  check(ok.userinfo.status === 401, `userinfo (preflighted) readable ${o} (${JSON.stringify(ok.userinfo)})`);
  check(/^Bearer/.test(ok.userinfo.challenge || ''), `userinfo's WWW-Authenticate exposed ${o}`);
  check(ok.introspect.status === 200 && ok.introspect.json?.active === false,
        `introspect (Basic, preflighted) readable ${o} (${JSON.stringify(ok.introspect)})`);
  check(ok.revoke.status === 200, `revoke (Basic, preflighted) readable ${o} (${JSON.stringify(ok.revoke)})`);
  check(typeof ok.authorize.error === 'string', `authorize is never readable, even ${o} (${JSON.stringify(ok.authorize).slice(0, 120)})`);

  await page.goto(`http://127.0.0.1:${PORT_DENY}/`);
  const deny = await page.evaluate(probe, arg(PORT_DENY));
  for (const name of Object.keys(deny)) {
    check(typeof deny[name].error === 'string',
          `${name} blocked from the unregistered origin http://127.0.0.1:${PORT_DENY} (${JSON.stringify(deny[name]).slice(0, 120)})`);
  }
} catch (e) {
  check(false, `browser run: ${e.stack || e}`);
} finally {
  if (context) await context.close();
  for (const s of servers) s.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(`1..${n}`);
process.exit(failures ? 1 : 0);
