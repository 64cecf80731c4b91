// SPDX-License-Identifier: Apache-2.0
//
// The login page in a real browser: headless Chromium (Debian's) driven by playwright-core.
// Started by browser_login.sh against the real binary, with these in the environment:
//   ISSUER      http://127.0.0.1:<port> of the running server
//   CLIENT_ID   a native client (auth method none) registered with http://127.0.0.1/cb
//   LOGIN, PASSWORD  a user's login name and password
//   CHANGE_LOGIN, CHANGE_PASSWORD  a user whose password must change at sign-in, and the
//                    current (temporary) one
// A tiny HTTP server on a random loopback port plays the relying party's callback (RFC 8252
// loopback redirect: the port is not registered). Exit status 0 only when every check held.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const { ISSUER, CLIENT_ID, LOGIN, PASSWORD, CHANGE_LOGIN, CHANGE_PASSWORD } = process.env;
if (!ISSUER || !CLIENT_ID || !LOGIN || !PASSWORD || !CHANGE_LOGIN || !CHANGE_PASSWORD) {
  console.error('browser_login: ISSUER, CLIENT_ID, LOGIN, PASSWORD, CHANGE_LOGIN and ' +
                'CHANGE_PASSWORD must be set');
  process.exit(2);
}

let failures = 0;
function check(cond, what) {
  if (cond) {
    console.log(`ok - ${what}`);
  } else {
    console.log(`not ok - ${what}`);
    failures++;
  }
}

const b64url = (buf) => buf.toString('base64url');

// The relying party's callback.
const callbacks = [];
let onCallback = null;
// A POSTed callback (response_mode=form_post) gets its form body as url.form. Only /cb is the
// callback: the browser's own requests (a late /favicon.ico) must not be taken for one.
const rp = createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname !== '/cb') {
    res.writeHead(404);
    res.end();
    return;
  }
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    url.method = req.method;
    url.form = new URLSearchParams(body);
    callbacks.push(url);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>callback</title><p id="done">callback ok</p>');
    if (onCallback) onCallback(url);
  });
});
await new Promise((resolve) => rp.listen(0, '127.0.0.1', resolve));
const rpPort = rp.address().port;
const redirectUri = `http://127.0.0.1:${rpPort}/cb`;

function nextCallback(ms) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no callback within ' + ms + ' ms')), ms);
    onCallback = (url) => {
      clearTimeout(t);
      onCallback = null;
      resolve(url);
    };
  });
}

function authorizeUrl(extra = {}) {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const state = b64url(randomBytes(12));
  const u = new URL('/oauth/v2/authorize', ISSUER);
  u.search = new URLSearchParams({
    client_id: CLIENT_ID,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'openid profile email',
    state,
    nonce: b64url(randomBytes(12)),
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...extra,
  }).toString();
  return { url: u.toString(), state };
}

const profile = mkdtempSync(join(tmpdir(), 'koder-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
    viewport: { width: 390, height: 844 }, // a phone
  });
  const page = context.pages()[0] || (await context.newPage());
  const cspViolations = [];
  page.on('console', (msg) => {
    if (/Content[- ]Security[- ]Policy|Refused to/i.test(msg.text())) cspViolations.push(msg.text());
  });
  page.setDefaultTimeout(20000);

  // 0. Discovery names this endpoint and promises iss on the response (RFC 9207).
  const disco = await (await fetch(new URL('/.well-known/openid-configuration', ISSUER))).json();
  check(disco.authorization_endpoint === ISSUER + '/oauth/v2/authorize', 'discovery: authorization_endpoint');
  check(disco.authorization_response_iss_parameter_supported === true, 'discovery: iss parameter supported');
  check((disco.code_challenge_methods_supported || []).join() === 'S256', 'discovery: S256 only');

  // 1. The authorization request lands on the login page.
  const first = authorizeUrl();
  const resp = await page.goto(first.url);
  check(resp && resp.status() === 200, 'authorize redirects to a login page answering 200');
  check(new URL(page.url()).pathname === '/ui/login/login', `login page path (${page.url()})`);
  check((await page.title()) === 'Sign in', 'login page title');
  const headers = resp ? await resp.allHeaders() : {};
  check(/default-src 'none'/.test(headers['content-security-policy'] || ''), 'CSP sent');
  check(headers['x-frame-options'] === 'DENY', 'framing refused');
  const fontSize = await page.$eval('button', (b) => getComputedStyle(b).backgroundColor);
  check(fontSize === 'rgb(48, 96, 208)', `inline stylesheet applied under the CSP (${fontSize})`);

  // 2. A wrong password shows the message on the page, and stays there.
  await page.fill('#loginName', LOGIN);
  await page.fill('#password', PASSWORD + '-wrong');
  await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
  await page.waitForSelector('#error');
  const msg = await page.textContent('#error');
  check(/Wrong login name or password/.test(msg || ''), `wrong password message shown ("${msg}")`);
  check(new URL(page.url()).origin === new URL(ISSUER).origin, 'still on the login page');
  check(callbacks.length === 0, 'no callback after a wrong password');
  check((await page.inputValue('#loginName')) === LOGIN, 'login name kept in the form');

  // 3. The right password: typed, clicked, redirected to the callback with a code.
  await page.fill('#password', '');
  await page.type('#password', PASSWORD, { delay: 5 });
  const cb = nextCallback(20000);
  await page.click('button[type=submit]');
  const url = await cb;
  await page.waitForSelector('#done');
  check(url.pathname === '/cb', 'callback path');
  check(/^[A-Za-z0-9_-]{43}$/.test(url.searchParams.get('code') || ''), 'callback has a code');
  check(url.searchParams.get('state') === first.state, 'callback has the state');
  check(url.searchParams.get('iss') === ISSUER, 'callback has iss (RFC 9207)');
  check(url.searchParams.get('error') === null, 'no error on the callback');
  check(page.url().startsWith(redirectUri), `browser landed on the redirect_uri (${page.url()})`);

  // 4. The session cookie signs the next request in without the form.
  const cookies = await context.cookies(ISSUER);
  const sess = cookies.find((c) => /koder_session$/.test(c.name));
  check(sess && sess.httpOnly && sess.sameSite === 'Lax', 'session cookie HttpOnly, SameSite=Lax');
  const second = authorizeUrl({ prompt: 'none' });
  const cb2 = nextCallback(20000);
  await page.goto(second.url);
  const url2 = await cb2;
  check(/^[A-Za-z0-9_-]{43}$/.test(url2.searchParams.get('code') || ''), 'prompt=none with a session: a code');
  check(url2.searchParams.get('code') !== url.searchParams.get('code'), 'a new code each time');
  check(url2.searchParams.get('state') === second.state, 'second state');

  // 4b. response_mode=form_post: the page's script (allowed by its CSP hash) posts the answer.
  const posted = authorizeUrl({ prompt: 'none', response_mode: 'form_post' });
  const cbPosted = nextCallback(20000);
  await page.goto(posted.url);
  const urlPosted = await cbPosted;
  await page.waitForSelector('#done');
  check(urlPosted.method === 'POST' && urlPosted.search === '',
    `form_post: the callback is a POST (${urlPosted.method} ${urlPosted.pathname}${urlPosted.search})`);
  check(/^[A-Za-z0-9_-]{43}$/.test(urlPosted.form.get('code') || '') &&
    urlPosted.form.get('state') === posted.state && urlPosted.form.get('iss') === ISSUER,
  'form_post: code, state and iss in the posted form');

  // 5. prompt=login asks again.
  await page.goto(authorizeUrl({ prompt: 'login' }).url);
  check(new URL(page.url()).pathname === '/ui/login/login', 'prompt=login shows the form again');

  // 6. A user whose password must change: the right password leads to a second form, and no
  //    code until a new password is set.
  await context.clearCookies();
  const third = authorizeUrl();
  await page.goto(third.url);
  await page.fill('#loginName', CHANGE_LOGIN);
  await page.fill('#password', CHANGE_PASSWORD);
  const before = callbacks.length;
  await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
  await page.waitForSelector('#newPassword');
  check((await page.title()) === 'Change your password', 'password change form after the right password');
  check(new URL(page.url()).pathname === '/ui/login/login', `change form on the login page (${page.url()})`);
  check(await page.$('#password') === null, 'the current password is not asked again');
  check(callbacks.length === before, 'no callback before the new password is set');
  const noSession = (await context.cookies(ISSUER)).find((c) => /koder_session$/.test(c.name));
  check(!noSession, 'no session cookie before the new password is set');
  const changeHeaders = await (await page.reload()).allHeaders();
  check(/form-action 'self'/.test(changeHeaders['content-security-policy'] || ''),
    'change form: CSP with form-action');
  check((await page.title()) === 'Change your password', 'reloading (the POST again) keeps the change form');

  // Two different passwords: refused on the page.
  const fresh = `new ${CHANGE_PASSWORD} 2`;
  await page.fill('#newPassword', fresh);
  await page.fill('#confirmPassword', fresh + 'x');
  await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
  await page.waitForSelector('#error');
  check(/not the same/.test((await page.textContent('#error')) || ''), 'mismatched passwords: message');
  check(callbacks.length === before, 'mismatched passwords: no callback');

  // The step skipped: this browser goes back to the app, which asks with prompt=none: no code.
  const arid = await page.inputValue('input[name=authRequestID]');
  const skip = authorizeUrl({ prompt: 'none' });
  const cbSkip = nextCallback(20000);
  await page.goto(skip.url);
  const urlSkip = await cbSkip;
  check(urlSkip.searchParams.get('error') === 'login_required' && !urlSkip.searchParams.get('code'),
    `the change skipped: prompt=none gets login_required, no code (${urlSkip.search})`);
  // ... and the pending sign-in still wants the new password.
  await page.goto(new URL(`/ui/login/login?authRequestID=${arid}`, ISSUER).toString());
  check((await page.title()) === 'Change your password', 'back on the login page: the change form');

  // Typed and clicked: the callback gets a code.
  await page.type('#newPassword', fresh, { delay: 2 });
  await page.type('#confirmPassword', fresh, { delay: 2 });
  const cb3 = nextCallback(20000);
  await page.click('button[type=submit]');
  const url3 = await cb3;
  check(/^[A-Za-z0-9_-]{43}$/.test(url3.searchParams.get('code') || ''), 'after the change: a code');
  check(url3.searchParams.get('state') === third.state, 'after the change: the state');

  // The old password is refused, the new one signs in at once.
  await context.clearCookies();
  await page.goto(authorizeUrl().url);
  await page.fill('#loginName', CHANGE_LOGIN);
  await page.fill('#password', CHANGE_PASSWORD);
  await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
  await page.waitForSelector('#error');
  check(/Wrong login name or password/.test((await page.textContent('#error')) || ''),
    'the temporary password no longer works');
  await page.fill('#password', fresh);
  const cb4 = nextCallback(20000);
  await page.click('button[type=submit]');
  const url4 = await cb4;
  check(/^[A-Za-z0-9_-]{43}$/.test(url4.searchParams.get('code') || ''),
    'the new password signs in without the change form');

  check(cspViolations.length === 0, `no CSP violations (${cspViolations.join(' | ')})`);
} catch (err) {
  console.log(`not ok - ${err && err.stack ? err.stack : err}`);
  failures++;
} finally {
  if (context) await context.close().catch(() => {});
  rp.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(failures ? `# ${failures} check(s) failed` : '# all checks passed');
process.exit(failures ? 1 : 0);
