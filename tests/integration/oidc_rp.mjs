// SPDX-License-Identifier: Apache-2.0
//
// openid-client 6 (the relying party many Node products use) against the real gateway,
// started and seeded by oidc_rp.sh, which passes in the environment:
//   ISSUER                     http://127.0.0.1:<port>
//   LOGIN, PASSWORD            a user made with `user add`
//   WEB_ID, WEB_SECRET         a confidential web client (client_secret_basic, opaque tokens)
//   POST_ID, POST_SECRET       a confidential web client (client_secret_post, JWT access token)
//   SPA_ID                     a public SPA client (none) registered for https://spa.example/cb
//   NATIVE_ID                  a public native client registered for http://127.0.0.1/cb
//   IMPLICIT_ID                a public SPA with v1's implicit types (id_token, "id_token
//                              token"), registered for https://implicit.example/cb
// Each flow: discovery, an authorization URL with PKCE and nonce, the login form posted with a
// cookie jar (plain fetch; the form's hidden fields parsed), the callback, the code exchange,
// the ID token (and a JWT access token) verified against the JWKS with jose, userinfo.
// TAP lines without the plan (oidc_rp.sh adds it); exit status 0 only when every check held.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import * as jose from 'jose';
import * as client from 'openid-client';
import { browserLogin, check, failures, hiddenFields, Jar } from './rp_lib.mjs';

const env = process.env;
for (const k of ['ISSUER', 'LOGIN', 'PASSWORD', 'WEB_ID', 'WEB_SECRET', 'POST_ID', 'POST_SECRET',
  'SPA_ID', 'NATIVE_ID', 'IMPLICIT_ID']) {
  if (!env[k]) {
    console.log(`not ok - environment: ${k} is not set`);
    process.exit(2);
  }
}
const issuer = new URL(env.ISSUER);

const jwks = jose.createRemoteJWKSet(new URL('/oauth/v2/keys', issuer));

async function flow(name, { clientId, auth, redirectUri, scope, expectRefresh, jwtAccessToken,
  callbackServer }) {
  const config = await client.discovery(issuer, clientId, undefined, auth,
    { execute: [client.allowInsecureRequests] });
  const meta = config.serverMetadata();
  check(meta.issuer === env.ISSUER && meta.token_endpoint === `${env.ISSUER}/oauth/v2/token`,
    `${name}: discovery names the issuer and the token endpoint`);

  const verifier = client.randomPKCECodeVerifier();
  const challenge = await client.calculatePKCECodeChallenge(verifier);
  const nonce = client.randomNonce();
  const state = client.randomState();
  const authUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri, scope, code_challenge: challenge, code_challenge_method: 'S256',
    nonce, state,
  });

  let callback = await browserLogin(issuer, authUrl, redirectUri, { login: env.LOGIN, password: env.PASSWORD });
  check(callback.searchParams.get('state') === state && callback.searchParams.has('code'),
    `${name}: the login redirects back with the code and our state`);
  if (callbackServer) {
    // The native app's loopback listener really receives the redirect.
    const got = await callbackServer.receive(callback);
    check(got.pathname === '/cb' && got.searchParams.get('code') === callback.searchParams.get('code'),
      `${name}: the loopback listener on port ${callbackServer.port} got the callback`);
    callback = new URL(got.pathname + got.search, redirectUri);
  }

  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state,
    idTokenExpected: true,
  });
  check(tokens.token_type.toLowerCase() === 'bearer' && tokens.expires_in > 0,
    `${name}: code exchange gives a bearer token with expires_in`);
  check(Boolean(tokens.refresh_token) === expectRefresh,
    `${name}: refresh token ${expectRefresh ? 'issued for offline_access' : 'not issued'}`);

  // The ID token, verified here against the JWKS (openid-client trusts TLS for it).
  const { payload: idt, protectedHeader } = await jose.jwtVerify(tokens.id_token, jwks, {
    issuer: env.ISSUER, audience: clientId, algorithms: ['RS256'],
  });
  check(protectedHeader.alg === 'RS256' && typeof protectedHeader.kid === 'string',
    `${name}: ID token RS256 with a kid from the JWKS`);
  check(idt.nonce === nonce && idt.azp === clientId && Array.isArray(idt.aud) &&
    idt.aud.includes(clientId) && typeof idt.auth_time === 'number' &&
    typeof idt.at_hash === 'string' && Array.isArray(idt.amr),
  `${name}: ID token has nonce, azp, aud with the client, auth_time, at_hash, amr`,
  JSON.stringify(idt));
  const claims = tokens.claims();
  check(claims.sub === idt.sub, `${name}: openid-client validated the same ID token`);

  if (jwtAccessToken) {
    const { payload: at } = await jose.jwtVerify(tokens.access_token, jwks, {
      issuer: env.ISSUER, algorithms: ['RS256'],
    });
    check(at.sub === idt.sub && at.client_id === clientId && typeof at.jti === 'string' &&
      at.aud.includes(clientId) && at.nbf <= at.iat + 0 && at.exp > at.iat,
    `${name}: JWT access token verifies against the JWKS with v1's claims`, JSON.stringify(at));
  } else {
    check(!tokens.access_token.includes('.'), `${name}: access token is opaque`);
  }

  const info = await client.fetchUserInfo(config, tokens.access_token, idt.sub);
  check(info.sub === idt.sub && info.preferred_username === env.LOGIN &&
    info.email === `${env.LOGIN}@example.com` && info.email_verified === true &&
    info.given_name === 'Ada',
  `${name}: userinfo answers the profile and email claims`, JSON.stringify(info));

  // The same code a second time: refused by the provider (invalid_grant).
  try {
    await client.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state,
    });
    check(false, `${name}: a replayed code is refused`);
  } catch (err) {
    check(err.error === 'invalid_grant', `${name}: a replayed code is refused`, err);
  }
  // ... and what it issued is revoked.
  try {
    await client.fetchUserInfo(config, tokens.access_token, idt.sub);
    check(false, `${name}: the first access token is revoked after the replay`);
  } catch (err) {
    check(err.status === 401 || err.cause?.status === 401 || /invalid_token/.test(String(err)),
      `${name}: the first access token is revoked after the replay`, err);
  }
}

function loopbackServer() {
  return new Promise((resolve) => {
    let pending = null;
    const srv = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('signed in; you can close this window');
      if (pending) pending(new URL(req.url, 'http://127.0.0.1'));
    });
    srv.listen(0, '127.0.0.1', () => {
      const port = srv.address().port;
      resolve({
        port,
        redirectUri: `http://127.0.0.1:${port}/cb`,
        receive(url) {
          return new Promise((ok, bad) => {
            pending = ok;
            fetch(url).then((r) => r.text()).catch(bad);
          });
        },
        close() { srv.close(); },
      });
    });
  });
}

const cases = [
  ['web (client_secret_basic)', {
    clientId: env.WEB_ID, auth: client.ClientSecretBasic(env.WEB_SECRET),
    redirectUri: 'https://app.example/cb', scope: 'openid profile email offline_access',
    expectRefresh: true,
  }],
  ['web (client_secret_post, JWT access token)', {
    clientId: env.POST_ID, auth: client.ClientSecretPost(env.POST_SECRET),
    redirectUri: 'https://post.example/cb', scope: 'openid profile email',
    expectRefresh: false, jwtAccessToken: true,
  }],
  ['spa (none, PKCE)', {
    clientId: env.SPA_ID, auth: client.None(), redirectUri: 'https://spa.example/cb',
    scope: 'openid profile email', expectRefresh: false,
  }],
];

for (const [name, opts] of cases) {
  try {
    await flow(name, opts);
  } catch (err) {
    check(false, `${name}: flow completed`, err.stack ?? err);
  }
}

const lb = await loopbackServer();
try {
  await flow(`native (loopback redirect, random port ${lb.port})`, {
    clientId: env.NATIVE_ID, auth: client.None(), redirectUri: lb.redirectUri,
    scope: 'openid profile email offline_access', expectRefresh: true, callbackServer: lb,
  });
} catch (err) {
  check(false, 'native: flow completed', err.stack ?? err);
} finally {
  lb.close();
}

// ---- the implicit flow, response modes, prompt / max_age / auth_time ----
//
// openid-client 6 speaks response_type=id_token (implicitAuthentication, fragment or a
// form_post Request) and the code flow in form_post (authorizationCodeGrant with a Request);
// "id_token token" it does not, so that one is checked by hand: the ID token against the JWKS
// with jose, nonce, and at_hash over the access token, which userinfo then accepts.

const IMPLICIT_CB = 'https://implicit.example/cb';

// GET of an authorization URL with the jar's session; the answer, not followed.
async function authorizeWith(jar, url) {
  const res = await fetch(url, { headers: { cookie: jar.header() }, redirect: 'manual' });
  jar.take(res);
  return res;
}

// The parameters of a fragment response at IMPLICIT_CB, checking nothing is in the query.
function fragmentOf(location) {
  const u = new URL(location);
  if (`${u.origin}${u.pathname}` !== IMPLICIT_CB || u.search !== '') {
    throw new Error(`not a fragment response at ${IMPLICIT_CB}: ${location}`);
  }
  return new URLSearchParams(u.hash.slice(1));
}

// at_hash (OIDC Core 3.2.2.9): base64url of the left half of SHA-256 of the access token.
function atHash(token) {
  return createHash('sha256').update(token, 'ascii').digest().subarray(0, 16).toString('base64url');
}

async function idTokenAuthTime(config, jar, extra) {
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: IMPLICIT_CB, scope: 'openid', nonce, prompt: 'none', ...extra,
  });
  const res = await authorizeWith(jar, url);
  const claims = await client.implicitAuthentication(config, new URL(res.headers.get('location')),
    nonce, extra.max_age ? { maxAge: Number(extra.max_age) } : undefined);
  return claims.auth_time;
}

async function implicitFlows() {
  const config = await client.discovery(issuer, env.IMPLICIT_ID, undefined, client.None(),
    { execute: [client.allowInsecureRequests, client.useIdTokenResponseType] });
  const meta = config.serverMetadata();
  check(JSON.stringify(meta.response_types_supported) === '["code","id_token","id_token token"]' &&
    JSON.stringify(meta.response_modes_supported) === '["query","fragment","form_post"]' &&
    meta.grant_types_supported.includes('implicit') &&
    meta.authorization_response_iss_parameter_supported === true,
  'discovery lists exactly the response types and modes authorize answers', JSON.stringify(meta));

  // 1. response_type=id_token in the fragment, after the login page
  const jar = new Jar();
  let nonce = client.randomNonce();
  let state = client.randomState();
  let url = client.buildAuthorizationUrl(config, {
    redirect_uri: IMPLICIT_CB, scope: 'openid profile email', nonce, state, max_age: '3600',
  });
  check(url.searchParams.get('response_type') === 'id_token', 'openid-client asks for id_token');
  const callback = await browserLogin(issuer, url, IMPLICIT_CB,
    { login: env.LOGIN, password: env.PASSWORD, jar });
  const frag = fragmentOf(callback.href);
  check(frag.get('iss') === env.ISSUER && frag.get('state') === state && !frag.has('code') &&
    !frag.has('access_token') && !frag.has('token_type'),
  'id_token: the fragment has id_token, state and iss (RFC 9207), no code or access token',
  callback.href);
  const claims = await client.implicitAuthentication(config, callback, nonce,
    { expectedState: state, maxAge: 3600 });
  check(claims.nonce === nonce && claims.aud.includes(env.IMPLICIT_ID) &&
    typeof claims.auth_time === 'number' && claims.email === `${env.LOGIN}@example.com` &&
    claims.preferred_username === env.LOGIN && claims.at_hash === undefined,
  'id_token: openid-client verifies it (signature, nonce, max_age); with no access token the ' +
    'profile and email claims are in it', JSON.stringify(claims));
  const firstAuthTime = claims.auth_time;

  // 2. form_post from the session: the page, posted as a browser would (a Request)
  nonce = client.randomNonce();
  state = client.randomState();
  url = client.buildAuthorizationUrl(config, {
    redirect_uri: IMPLICIT_CB, scope: 'openid', nonce, state, response_mode: 'form_post',
  });
  let res = await authorizeWith(jar, url);
  let html = await res.text();
  const csp = res.headers.get('content-security-policy') ?? '';
  const script = /<script>([^<]*)<\/script>/.exec(html)?.[1] ?? '';
  const scriptHash = createHash('sha256').update(script).digest('base64');
  check(res.status === 200 && res.headers.get('cache-control') === 'no-store' &&
    csp.includes(`script-src 'sha256-${scriptHash}'`) && !csp.includes('unsafe-inline') &&
    csp.includes('form-action \'self\' https://implicit.example;') &&
    html.includes(`<form method="post" action="${IMPLICIT_CB}">`) &&
    html.includes('<button type="submit">'),
  'form_post: a no-store page whose form posts to the redirect_uri, its one script allowed by ' +
    'its CSP hash, a button without JavaScript', `${res.status} ${csp}`);
  let fields = hiddenFields(html);
  const post = new Request(IMPLICIT_CB, {
    method: 'POST', body: new URLSearchParams(fields),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  const fpClaims = await client.implicitAuthentication(config, post, nonce,
    { expectedState: state });
  check(fpClaims.nonce === nonce && fields.iss === env.ISSUER && fields.state === state &&
    fpClaims.auth_time === firstAuthTime,
  'form_post: openid-client accepts the posted id_token; auth_time is the session\'s',
  JSON.stringify(fields));

  // 3. "id_token token": the access token and at_hash, checked by hand
  nonce = client.randomNonce();
  url = new URL(meta.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: env.IMPLICIT_ID, redirect_uri: IMPLICIT_CB, response_type: 'id_token token',
    scope: 'openid profile email offline_access', nonce, state: 'tok',
  }).toString();
  res = await authorizeWith(jar, url);
  const tf = fragmentOf(res.headers.get('location'));
  const { payload: idt } = await jose.jwtVerify(tf.get('id_token'), jwks, {
    issuer: env.ISSUER, audience: env.IMPLICIT_ID, algorithms: ['RS256'],
  });
  check(tf.get('token_type') === 'Bearer' && Number(tf.get('expires_in')) > 0 &&
    !tf.has('refresh_token') && tf.get('state') === 'tok' && tf.get('iss') === env.ISSUER,
  '"id_token token": Bearer access token with expires_in, state and iss, no refresh token',
  res.headers.get('location')?.replace(/(access_token|id_token)=[^&]+/g, '$1=...'));
  check(idt.nonce === nonce && idt.at_hash === atHash(tf.get('access_token')) &&
    idt.auth_time === firstAuthTime && idt.email === undefined,
  '"id_token token": ID token verifies against the JWKS with nonce and at_hash of the access ' +
    'token; profile claims left to userinfo', JSON.stringify(idt));
  const info = await client.fetchUserInfo(config, tf.get('access_token'), idt.sub);
  check(info.sub === idt.sub && info.email === `${env.LOGIN}@example.com`,
    '"id_token token": userinfo accepts the access token', JSON.stringify(info));

  // 4. refused: tokens in a query, a missing nonce, an unknown mode (all in the fragment)
  for (const [desc, params] of [
    ['response_mode=query', { response_mode: 'query', nonce: 'n' }],
    ['no nonce', {}],
    ['response_mode=bogus', { response_mode: 'bogus', nonce: 'n' }],
  ]) {
    url = new URL(meta.authorization_endpoint);
    url.search = new URLSearchParams({
      client_id: env.IMPLICIT_ID, redirect_uri: IMPLICIT_CB, response_type: 'id_token',
      scope: 'openid', state: 'bad', ...params,
    }).toString();
    res = await authorizeWith(jar, url);
    let ef;
    try {
      ef = fragmentOf(res.headers.get('location'));
    } catch (err) {
      ef = new URLSearchParams();
    }
    check(res.status === 302 && ef.get('error') === 'invalid_request' && ef.get('state') === 'bad' &&
      !ef.has('id_token'), `implicit with ${desc}: invalid_request in the fragment, no token`,
    res.headers.get('location'));
  }

  // 5. prompt and max_age against the session; auth_time exact
  check(await idTokenAuthTime(config, jar, {}) === firstAuthTime,
    'prompt=none with a session: answered silently with the session\'s auth_time');
  check(await idTokenAuthTime(config, jar, { max_age: '3600' }) === firstAuthTime,
    'prompt=none, max_age not elapsed: silent, auth_time present and unchanged');
  for (const extra of [{ prompt: 'login' }, { max_age: '0' }, { prompt: 'consent' },
    { prompt: 'select_account' }]) {
    nonce = client.randomNonce();
    url = client.buildAuthorizationUrl(config, { redirect_uri: IMPLICIT_CB, scope: 'openid', nonce,
      ...extra });
    res = await authorizeWith(jar, url);
    const loc = new URL(res.headers.get('location') ?? '/', issuer);
    check(res.status === 302 && loc.origin === issuer.origin &&
      loc.pathname === '/ui/login/login', `${JSON.stringify(extra)} with a session: the login page`,
    res.headers.get('location'));
  }
  nonce = client.randomNonce();
  url = client.buildAuthorizationUrl(config, { redirect_uri: IMPLICIT_CB, scope: 'openid', nonce,
    prompt: 'none', state: 'pn' });
  res = await authorizeWith(new Jar(), url);
  let pf = fragmentOf(res.headers.get('location'));
  check(pf.get('error') === 'login_required' && pf.get('state') === 'pn' &&
    pf.get('iss') === env.ISSUER, 'prompt=none without a session: login_required');
  url = client.buildAuthorizationUrl(config, { redirect_uri: IMPLICIT_CB, scope: 'openid', nonce,
    prompt: 'none login' });
  res = await authorizeWith(jar, url);
  pf = fragmentOf(res.headers.get('location'));
  check(pf.get('error') === 'invalid_request', 'prompt=none with another value: invalid_request');

  // a forced login: a new session, whose auth_time the next silent answers carry
  const before = jar.header();
  nonce = client.randomNonce();
  url = client.buildAuthorizationUrl(config, { redirect_uri: IMPLICIT_CB, scope: 'openid', nonce,
    prompt: 'login' });
  const again = await browserLogin(issuer, url, IMPLICIT_CB,
    { login: env.LOGIN, password: env.PASSWORD, jar });
  const reClaims = await client.implicitAuthentication(config, again, nonce);
  check(jar.header() !== before && reClaims.auth_time >= firstAuthTime &&
    await idTokenAuthTime(config, jar, {}) === reClaims.auth_time,
  'prompt=login: the login page signs in again; silent answers then carry the new auth_time');

  // 6. the code flow in form_post, through openid-client with a Request
  const web = await client.discovery(issuer, env.WEB_ID, undefined,
    client.ClientSecretBasic(env.WEB_SECRET), { execute: [client.allowInsecureRequests] });
  const webJar = new Jar();
  const verifier = client.randomPKCECodeVerifier();
  nonce = client.randomNonce();
  state = client.randomState();
  url = client.buildAuthorizationUrl(web, {
    redirect_uri: 'https://app.example/cb', scope: 'openid', nonce, state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256', response_mode: 'form_post',
  });
  // the login form's POST answers with the form_post page itself
  res = await fetch(url, { redirect: 'manual' });
  webJar.take(res);
  const loginUrl = new URL(res.headers.get('location'), issuer);
  res = await fetch(loginUrl, { headers: { cookie: webJar.header() } });
  webJar.take(res);
  html = await res.text();
  res = await fetch(new URL('/ui/login/login', issuer), {
    method: 'POST',
    headers: { cookie: webJar.header(), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...hiddenFields(html), loginName: env.LOGIN,
      password: env.PASSWORD }),
    redirect: 'manual',
  });
  html = await res.text();
  fields = hiddenFields(html);
  check(res.status === 200 && fields.code && fields.state === state && fields.iss === env.ISSUER,
    'code + form_post: the login answers with the page posting code, state and iss',
    `${res.status} ${Object.keys(fields)}`);
  const tokens = await client.authorizationCodeGrant(web, new Request('https://app.example/cb', {
    method: 'POST', body: new URLSearchParams(fields),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  }), { pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state,
    idTokenExpected: true });
  check(tokens.claims().nonce === nonce,
    'code + form_post: openid-client exchanges the posted code');
}

try {
  await implicitFlows();
} catch (err) {
  check(false, 'implicit and response modes: flows completed', err.stack ?? err);
}

// The plan is printed by oidc_rp.sh, which adds its own checks after these.
process.exit(failures() ? 1 : 0);
