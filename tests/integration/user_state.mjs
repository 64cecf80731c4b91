// SPDX-License-Identifier: Apache-2.0
//
// `user lock|unlock|deactivate|reactivate|remove` against the real gateway, seeded and
// started by user_state.sh: each command is run (the real binary, on the store `serve` is
// using) between requests that must then be refused or work again. Environment:
//   ISSUER, GW_BIN, GW_CONF, LOGIN, PASSWORD, WEB_ID/WEB_SECRET (web client, basic, opaque
//   access tokens, refresh), API_ID/API_SECRET (API app, for introspection), M_NAME/M_SECRET
//   (a machine user with a secret).
// TAP lines without the plan; exit 0 only when every check held.
import { execFileSync } from 'node:child_process';
import * as client from 'openid-client';
import { Jar, authRequest, browserLogin, check, failures } from './rp_lib.mjs';

const env = process.env;
const issuer = new URL(env.ISSUER);
const insecure = { execute: [client.allowInsecureRequests] };
const CB = 'https://app.example/cb';

// Runs `user SUB --user WHO`; returns its stdout line (throws on a non-zero exit).
function userCmd(sub, who, input) {
  return execFileSync(env.GW_BIN, ['user', sub, '--user', who, '--config', env.GW_CONF],
    { input, stdio: ['pipe', 'pipe', 'pipe'] }).toString().trim();
}

async function signIn(config, jar, login = env.LOGIN, password = env.PASSWORD) {
  const a = await authRequest(config, CB, 'openid offline_access', {});
  const cb = await browserLogin(issuer, a.url, CB, { login, password, jar });
  return client.authorizationCodeGrant(config, cb, {
    pkceCodeVerifier: a.verifier, expectedNonce: a.nonce, expectedState: a.state,
  });
}

async function loginRefused(config) {
  try {
    await signIn(config, new Jar());
    return false;
  } catch (err) {
    return err.refused === true;
  }
}

// prompt=none with the session in @jar: the error the browser is sent back with, or
// 'code' when it signed in silently.
async function silent(config, jar) {
  const a = await authRequest(config, CB, 'openid', { prompt: 'none' });
  const res = await fetch(a.url, { headers: { cookie: jar.header() }, redirect: 'manual' });
  const loc = new URL(res.headers.get('location') ?? '', issuer);
  if (!loc.href.startsWith(CB)) return `elsewhere: ${res.status} ${loc}`;
  return loc.searchParams.get('error') ?? (loc.searchParams.get('code') ? 'code' : 'nothing');
}

async function refreshError(config, rt) {
  try {
    await client.refreshTokenGrant(config, rt);
    return 'accepted';
  } catch (err) {
    return err.error ?? String(err);
  }
}

async function clientCredentials() {
  const basic = Buffer.from(`${encodeURIComponent(env.M_NAME)}:${encodeURIComponent(env.M_SECRET)}`)
    .toString('base64');
  const res = await fetch(`${env.ISSUER}/oauth/v2/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'openid' }),
  });
  const json = await res.json().catch(() => ({}));
  return { status: res.status, error: json.error, token: json.access_token };
}

try {
  const web = await client.discovery(issuer, env.WEB_ID, undefined,
    client.ClientSecretBasic(env.WEB_SECRET), insecure);
  const api = await client.discovery(issuer, env.API_ID, undefined,
    client.ClientSecretBasic(env.API_SECRET), insecure);

  // ---- lock ----
  const jar = new Jar();
  const t1 = await signIn(web, jar);
  const sub = t1.claims().sub;
  check((await client.tokenIntrospection(api, t1.access_token)).active === true,
    'before: the access token introspects as active');
  check(await silent(web, jar) === 'code', 'before: prompt=none signs in silently from the session');
  check(userCmd('lock', env.LOGIN) === sub, 'user lock --user LOGIN prints the user id');
  check(await loginRefused(web), 'locked: the login page refuses the password');
  check(await refreshError(web, t1.refresh_token) === 'invalid_grant',
    'locked: the refresh token is refused (invalid_grant)');
  check((await client.tokenIntrospection(api, t1.access_token)).active === false,
    'locked: the unexpired access token introspects as inactive');
  const ui = await fetch(`${env.ISSUER}/oidc/v1/userinfo`,
    { headers: { authorization: `Bearer ${t1.access_token}` } });
  check(ui.status === 401, 'locked: userinfo refuses the access token', `status ${ui.status}`);
  const s1 = await silent(web, jar);
  check(s1 === 'login_required', 'locked: prompt=none from the old session is login_required', s1);

  // ---- unlock ----
  check(userCmd('unlock', sub) === sub, 'user unlock --user ID prints the user id');
  const t2 = await signIn(web, new Jar());
  check(t2.claims().sub === sub, 'unlocked: the user signs in again');
  const r2 = await client.refreshTokenGrant(web, t2.refresh_token);
  check(!!r2.access_token, 'unlocked: a new refresh token works');

  // ---- deactivate / reactivate ----
  check(userCmd('deactivate', env.LOGIN) === sub, 'user deactivate prints the user id');
  check(await loginRefused(web), 'deactivated: the login page refuses the password');
  check(await refreshError(web, r2.refresh_token) === 'invalid_grant',
    'deactivated: the refresh token is refused');
  userCmd('reactivate', env.LOGIN);
  check((await signIn(web, new Jar())).claims().sub === sub, 'reactivated: the user signs in again');

  // ---- a machine user ----
  const c1 = await clientCredentials();
  check(c1.status === 200 && c1.token, 'machine: client_credentials works', c1);
  const mid = userCmd('deactivate', env.M_NAME);
  const c2 = await clientCredentials();
  check(c2.status !== 200 && c2.error === 'invalid_client',
    'machine deactivated: client_credentials is refused (invalid_client)', c2);
  check((await client.tokenIntrospection(api, c1.token)).active === false,
    'machine deactivated: its access token introspects as inactive');
  userCmd('reactivate', mid);
  const c3 = await clientCredentials();
  check(c3.status === 200, 'machine reactivated: client_credentials works again', c3);
  userCmd('lock', env.M_NAME);
  check((await clientCredentials()).error === 'invalid_client',
    'machine locked: client_credentials is refused');

  // ---- remove, then the login name is taken again ----
  const jar3 = new Jar();
  const t3 = await signIn(web, jar3);
  check(userCmd('remove', env.LOGIN) === sub, 'user remove prints the user id');
  check(await loginRefused(web), 'removed: the login page refuses the login name');
  check(await refreshError(web, t3.refresh_token) === 'invalid_grant',
    'removed: the refresh token is refused');
  check((await client.tokenIntrospection(api, t3.access_token)).active === false,
    'removed: the access token introspects as inactive');
  const s3 = await silent(web, jar3);
  check(s3 === 'login_required', 'removed: prompt=none from the old session is login_required', s3);
  const newId = execFileSync(env.GW_BIN, ['user', 'add', '--username', env.LOGIN, '--email',
    `${env.LOGIN}@example.org`, '--password-stdin', '--config', env.GW_CONF],
  { input: `${env.PASSWORD}\n` }).toString().trim();
  check(newId && newId !== sub, 'removed: user add takes the login name again (a new id)');
  const t4 = await signIn(web, new Jar());
  check(t4.claims().sub === newId, 'the new user signs in with the reused login name');
  const s4 = await silent(web, jar3);
  check(s4 === 'login_required', 'the removed user\'s session does not sign in the new user', s4);
} catch (err) {
  check(false, 'the suite ran to the end', err);
}
process.exit(failures() ? 1 : 0);
