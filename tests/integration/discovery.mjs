// SPDX-License-Identifier: Apache-2.0
//
// Discovery lists exactly what is implemented. Every field of the served discovery document
// is checked against the endpoints it describes: each listed value must work, each known value
// it leaves out must be refused, and a field this file has no check for fails the suite (a new
// field comes with its check). Runs on the imported Koder inventory (discovery.sh).
// Environment: ISSUER, SECRETS (secrets.json), EC_KEY (PKCS#8 P-256 key registered as `ec1`
// for the private_key_jwt app and as `mk1` for the machine user MACHINE).
// TAP lines without the plan; exit status 0 only when every check held.
import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as jose from 'jose';
import * as client from 'openid-client';
import { authRequest, browserLogin, check, failures, hiddenFields } from './rp_lib.mjs';

const env = process.env;
const issuer = new URL(env.ISSUER);
const secrets = JSON.parse(readFileSync(env.SECRETS, 'utf8'));
const root = secrets.users.root;
const machine = secrets.machines['platform-admin'];
const insecure = { execute: [client.allowInsecureRequests] };

// Imported apps (koder-inventory.sql).
const C = {
  docs: { id: '250000000369918530@koder_platform', cb: 'https://docs.koder.dev/auth/callback' }, // web, client_secret_basic
  mesh: { id: '250000000173052295', cb: 'https://mesh.koder.dev/auth/callback' }, // web, client_secret_post
  spa: { id: '250000000304512052', cb: 'https://browser-web.koder.dev/callback' }, // user agent, none
  vault: { id: '250000000251651078', cb: 'https://vault.koder.dev/auth/callback' }, // web, private_key_jwt
  widgets: { id: '250000000582789556', cb: 'https://legacy-widgets.koder.dev/silent-callback.html' }, // id_token, id_token token
  photos: { id: '250000000474101864@koder_platform', cb: 'https://photos.koder.dev/auth/callback' }, // ID token role + userinfo assertion
  pay: { id: '250000000496977041@koder_platform', cb: 'https://pay.koder.dev/auth/callback' }, // JWT access token
  api: { id: '250000000024786503@zitadel' }, // API app, basic
};
const secretOf = (c) => secrets.clients[c.id];
const vaultKeys = {
  RS256: { key: await jose.importPKCS8(secrets.clients[C.vault.id].private_key_jwt, 'RS256'), kid: secrets.clients[C.vault.id].kid },
  ES256: { key: await jose.importPKCS8(readFileSync(env.EC_KEY, 'utf8'), 'ES256'), kid: 'ec1' },
};
const strangerKey = (await jose.generateKeyPair('RS256')).privateKey;

const meta = await (await fetch(new URL('/.well-known/openid-configuration', issuer))).json();
const covered = new Set();
const field = (name) => { covered.add(name); return meta[name] ?? []; };
const listed = (name, v) => field(name).includes(v);

const TOKEN = meta.token_endpoint;
const INTROSPECT = meta.introspection_endpoint;
const REVOKE = meta.revocation_endpoint;

async function post(url, params, basic) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (basic) {
    headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(basic[0])}:${encodeURIComponent(basic[1])}`).toString('base64')}`;
  }
  const res = await fetch(url, { method: 'POST', headers, body: new URLSearchParams(params) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, headers: res.headers };
}
const errOf = (r) => `${r.status} ${r.json && r.json.error}`;

async function assertion(c, alg, aud, { key, kid } = vaultKeys[alg]) {
  const now = Math.floor(Date.now() / 1000);
  return new jose.SignJWT({ iss: c.id, sub: c.id, aud, iat: now, exp: now + 60, jti: randomUUID() })
    .setProtectedHeader({ alg, kid }).sign(key);
}
const ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

// Client authentication by @method for a request to @url: [params, basic].
async function auth(method, url, { wrong = false, alg = 'RS256' } = {}) {
  const bad = (s) => (wrong ? `${s}x` : s);
  switch (method) {
    case 'client_secret_basic': return [{}, [C.docs.id, bad(secretOf(C.docs))]];
    case 'client_secret_post': return [{ client_id: C.mesh.id, client_secret: bad(secretOf(C.mesh)) }];
    case 'none': return [{ client_id: wrong ? C.docs.id : C.spa.id }]; // a confidential app cannot go without
    case 'private_key_jwt': {
      const a = wrong ? await assertion(C.vault, 'RS256', url, { key: strangerKey, kid: vaultKeys.RS256.kid })
        : await assertion(C.vault, alg, url);
      return [{ client_id: C.vault.id, client_assertion_type: ASSERTION, client_assertion: a }];
    }
    case 'client_secret_jwt': { // HS256 over the app's secret: not offered
      const now = Math.floor(Date.now() / 1000);
      const h = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
      const p = Buffer.from(JSON.stringify({ iss: C.docs.id, sub: C.docs.id, aud: url, iat: now, exp: now + 60, jti: randomUUID() })).toString('base64url');
      const sig = createHmac('sha256', secretOf(C.docs)).update(`${h}.${p}`).digest('base64url');
      return [{ client_id: C.docs.id, client_assertion_type: ASSERTION, client_assertion: `${h}.${p}.${sig}` }];
    }
    default: throw new Error(`no way to test client authentication ${method}`);
  }
}
const AUTH_METHODS = ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt', 'client_secret_jwt'];
const clientOf = { none: C.spa, client_secret_basic: C.docs, client_secret_post: C.mesh, private_key_jwt: C.vault };

// authorize with @params: where the browser is sent ({ login: true } for the login page, else
// the parameters the client got back, from the query or the fragment).
async function authorize(c, params) {
  const u = new URL(meta.authorization_endpoint);
  for (const [k, v] of Object.entries({ client_id: c.id, redirect_uri: c.cb, state: 'st', nonce: 'n0', ...params })) {
    if (v !== undefined) u.searchParams.set(k, v);
  }
  const res = await fetch(u, { redirect: 'manual' });
  const loc = res.headers.get('location');
  if (!loc) return { status: res.status };
  const to = new URL(loc, issuer);
  if (to.origin === issuer.origin && to.pathname.startsWith('/ui/login')) return { login: true };
  const out = Object.fromEntries(to.searchParams);
  for (const [k, v] of new URLSearchParams(to.hash.slice(1))) out[k] = v;
  return out;
}
const pkce = { code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' };

// A full sign-in as root through @c with @scope (PKCE); extra authorize parameters in @extra.
// Returns { tokens, idt, header, callback } or the refusal.
async function signIn(c, scope, extra = {}) {
  const auth = c === C.spa ? client.None() : client.ClientSecretBasic(secretOf(c));
  const config = await client.discovery(issuer, c.id, undefined, auth, insecure);
  const { url, verifier, nonce, state } = await authRequest(config, c.cb, scope, extra);
  let callback;
  try {
    callback = await browserLogin(issuer, url, c.cb, { login: root.login, password: root.password });
  } catch (err) {
    if (!err.refused || err.status !== 200) throw err;
    // form_post: an auto-submitting form to the app with the answer in hidden fields.
    if (!err.body.includes(`action="${c.cb}"`)) throw err;
    callback = new URL(c.cb);
    callback.search = new URLSearchParams(hiddenFields(err.body)).toString();
    callback.formPost = true;
  }
  const raw = new URL(callback);
  if (raw.hash) { raw.search = raw.hash.slice(1); raw.hash = ''; }
  const tokens = await client.authorizationCodeGrant(config, raw, {
    pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state, idTokenExpected: true,
  });
  return { config, tokens, idt: tokens.claims(), header: jose.decodeProtectedHeader(tokens.id_token), callback };
}

// An implicit sign-in through the legacy app: the answer in the fragment holds exactly what
// @rt names (OIDC Core 3.2.2.5), an ID token for root with the nonce, and no code.
async function implicitSignIn(rt) {
  const config = await client.discovery(issuer, C.widgets.id, undefined, client.None(), insecure);
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, { redirect_uri: C.widgets.cb, scope: 'openid', response_type: rt, nonce, state: 'st' });
  const back = await browserLogin(issuer, url, C.widgets.cb, { login: root.login, password: root.password });
  const f = new URLSearchParams(back.hash.slice(1));
  const { payload } = f.get('id_token')
    ? await jose.jwtVerify(f.get('id_token'), jose.createRemoteJWKSet(new URL(meta.jwks_uri)), { issuer: env.ISSUER, audience: C.widgets.id })
    : { payload: {} };
  const wantsAt = rt.split(' ').includes('token');
  check(back.search === '' && !f.has('code') && f.get('state') === 'st' && payload.sub === root.id &&
    payload.nonce === nonce && f.has('access_token') === wantsAt,
    `response_type=${rt} (listed): the fragment carries ${wantsAt ? 'an ID token and an access token' : 'an ID token only'}`,
    [...f.keys()].join(' '));
  const noNonce = await authorize(C.widgets, { response_type: rt, scope: 'openid', nonce: undefined });
  check(noNonce.error === 'invalid_request', `response_type=${rt}: without a nonce is invalid_request`, JSON.stringify(noNonce));
}

try {
  check(meta.issuer === env.ISSUER, 'issuer is the configured issuer', meta.issuer);
  covered.add('issuer');

  // ---- grant types ----
  const KNOWN_GRANTS = ['authorization_code', 'refresh_token', 'client_credentials',
    'urn:ietf:params:oauth:grant-type:jwt-bearer', 'implicit', 'password',
    'urn:ietf:params:oauth:grant-type:device_code', 'urn:ietf:params:oauth:grant-type:token-exchange',
    'urn:ietf:params:oauth:grant-type:saml2-bearer'];
  const grants = field('grant_types_supported');
  for (const g of grants) check(KNOWN_GRANTS.includes(g), `grant_types_supported: ${g} is a grant this suite can check`);
  for (const g of KNOWN_GRANTS.filter((x) => !grants.includes(x) || x === 'implicit')) {
    const r = await post(TOKEN, { grant_type: g }, [C.docs.id, secretOf(C.docs)]);
    check(r.status === 400 && r.json.error === 'unsupported_grant_type',
      `token endpoint: ${g} (${grants.includes(g) ? 'an authorization-endpoint grant' : 'not listed'}) is unsupported_grant_type`, errOf(r));
  }
  const s1 = await signIn(C.docs, 'openid profile email phone offline_access');
  check(grants.includes('authorization_code') && typeof s1.tokens.access_token === 'string',
    'authorization_code (listed): a code is exchanged for tokens');
  const refreshed = await client.refreshTokenGrant(s1.config, s1.tokens.refresh_token);
  check(grants.includes('refresh_token') && typeof refreshed.access_token === 'string' &&
    refreshed.refresh_token !== s1.tokens.refresh_token, 'refresh_token (listed): rotates and issues tokens');
  const cc = await post(TOKEN, { grant_type: 'client_credentials', scope: 'openid' }, [`platform-admin@${'koder-id.id.koder.dev'}`, machine.secret]);
  check(grants.includes('client_credentials') && cc.status === 200 && typeof cc.json.access_token === 'string' && !cc.json.id_token,
    'client_credentials (listed): the machine user gets an access token, no ID token', errOf(cc));
  {
    const now = Math.floor(Date.now() / 1000);
    const a = await new jose.SignJWT({ iss: env.MACHINE, sub: env.MACHINE, aud: env.ISSUER, iat: now, exp: now + 60, jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256', kid: 'mk1' }).sign(vaultKeys.ES256.key);
    const jb = await post(TOKEN, { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: a, scope: 'openid' });
    check(grants.includes('urn:ietf:params:oauth:grant-type:jwt-bearer') && jb.status === 200 && typeof jb.json.access_token === 'string',
      'jwt-bearer (listed): a signed assertion gets the machine user an access token', errOf(jb));
  }
  if (grants.includes('implicit')) {
    const r = await authorize(C.widgets, { response_type: 'id_token', scope: 'openid' });
    check(r.login === true, 'implicit (listed): response_type=id_token for an implicit app goes to the login', JSON.stringify(r));
  }

  // ---- client authentication at the token endpoint ----
  const tokenMethods = field('token_endpoint_auth_methods_supported');
  for (const m of AUTH_METHODS) {
    const [p, basic] = await auth(m, TOKEN);
    const body = { grant_type: 'authorization_code', code: 'bogus-code', redirect_uri: (clientOf[m] || C.docs).cb, code_verifier: 'v'.repeat(43), ...p };
    const r = await post(TOKEN, body, basic);
    if (tokenMethods.includes(m)) {
      const [wp, wbasic] = await auth(m, TOKEN, { wrong: true });
      const w = await post(TOKEN, { ...body, ...wp }, wbasic);
      check(r.status === 400 && r.json.error === 'invalid_grant' && w.status === 401 && w.json.error === 'invalid_client',
        `token endpoint, ${m} (listed): authenticates (a bogus code is invalid_grant); a wrong credential is invalid_client`,
        `${errOf(r)} / ${errOf(w)}`);
    } else {
      check(r.status === 401 && r.json.error === 'invalid_client', `token endpoint, ${m} (not listed): invalid_client`, errOf(r));
    }
  }
  const algProbe = async (name, url, okStatus, what) => {
    const algs = field(name);
    for (const alg of algs) {
      if (!vaultKeys[alg]) { check(false, `${name}: no key to test ${alg} with`); continue; }
      const [p] = await auth('private_key_jwt', url, { alg });
      const r = await post(url, { grant_type: 'authorization_code', code: 'bogus-code', redirect_uri: C.vault.cb, token: 'bogus', ...p });
      check(okStatus(r), `${name}: a private_key_jwt assertion signed ${alg} authenticates at ${what}`, errOf(r));
    }
    // HS256 keyed with the registered public key (alg confusion) and alg none: refused.
    const pub = readFileSync(env.EC_KEY, 'utf8');
    const now = Math.floor(Date.now() / 1000);
    const claims = Buffer.from(JSON.stringify({ iss: C.vault.id, sub: C.vault.id, aud: url, iat: now, exp: now + 60, jti: randomUUID() })).toString('base64url');
    const hs = Buffer.from(JSON.stringify({ alg: 'HS256', kid: 'ec1' })).toString('base64url');
    const none = Buffer.from(JSON.stringify({ alg: 'none', kid: 'ec1' })).toString('base64url');
    for (const [alg, a] of [['HS256', `${hs}.${claims}.${createHmac('sha256', pub).update(`${hs}.${claims}`).digest('base64url')}`],
      ['none', `${none}.${claims}.`]]) {
      const r = await post(url, { grant_type: 'authorization_code', code: 'bogus-code', redirect_uri: C.vault.cb, token: 'bogus', client_id: C.vault.id, client_assertion_type: ASSERTION, client_assertion: a });
      check(!algs.includes(alg) && r.status === 401 && r.json.error === 'invalid_client', `${what}: an assertion with alg ${alg} (not listed) is invalid_client`, errOf(r));
    }
  };
  await algProbe('token_endpoint_auth_signing_alg_values_supported', TOKEN,
    (r) => r.status === 400 && r.json.error === 'invalid_grant', 'the token endpoint');

  // ---- introspection ----
  check(typeof INTROSPECT === 'string', 'introspection_endpoint is listed'); covered.add('introspection_endpoint');
  const introMethods = field('introspection_endpoint_auth_methods_supported');
  for (const m of ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']) {
    let p = [], basic;
    if (m === 'client_secret_basic') basic = [C.api.id, secretOf(C.api)];
    else if (m === 'client_secret_post') p = { client_id: C.api.id, client_secret: secretOf(C.api) };
    else if (m === 'none') p = { client_id: C.spa.id };
    else [p] = await auth(m, INTROSPECT);
    const r = await post(INTROSPECT, { token: 'bogus', ...p }, basic);
    if (introMethods.includes(m)) {
      check(r.status === 200 && r.json.active === false, `introspection, ${m} (listed): authenticates, an unknown token is active:false`, errOf(r));
    } else {
      check(r.status === 401 && r.json.error === 'invalid_client', `introspection, ${m} (not listed): invalid_client`, errOf(r));
    }
  }
  await algProbe('introspection_endpoint_auth_signing_alg_values_supported', INTROSPECT,
    (r) => r.status === 200 && r.json.active === false, 'introspection');

  // ---- revocation ----
  check(typeof REVOKE === 'string', 'revocation_endpoint is listed'); covered.add('revocation_endpoint');
  const revMethods = field('revocation_endpoint_auth_methods_supported');
  for (const m of AUTH_METHODS) {
    const [p, basic] = await auth(m, REVOKE);
    const r = await post(REVOKE, { token: 'bogus', ...p }, basic);
    if (revMethods.includes(m)) {
      const [wp, wbasic] = await auth(m, REVOKE, { wrong: true });
      const w = await post(REVOKE, { token: 'bogus', ...wp }, wbasic);
      check(r.status === 200 && w.status === 401 && w.json.error === 'invalid_client',
        `revocation, ${m} (listed): an unknown token answers 200; a wrong credential is invalid_client`, `${r.status} / ${errOf(w)}`);
    } else {
      check(r.status === 401 && r.json.error === 'invalid_client', `revocation, ${m} (not listed): invalid_client`, errOf(r));
    }
  }
  await algProbe('revocation_endpoint_auth_signing_alg_values_supported', REVOKE, (r) => r.status === 200, 'revocation');

  // ---- authorization endpoint ----
  covered.add('authorization_endpoint');
  const RT = ['code', 'id_token', 'id_token token', 'token', 'code id_token', 'code token', 'code id_token token'];
  const rts = field('response_types_supported');
  for (const rt of rts) check(RT.includes(rt), `response_types_supported: ${rt} is one this suite can check`);
  for (const rt of RT) {
    const c = rt === 'code' ? C.docs : C.widgets;
    const r = await authorize(c, { response_type: rt, scope: 'openid', ...(rt === 'code' ? pkce : {}) });
    if (rts.includes(rt)) {
      check(r.login === true, `response_type=${rt} (listed) goes to the login`, JSON.stringify(r));
      if (rt !== 'code') await implicitSignIn(rt);
    } else check(r.error === 'unsupported_response_type', `response_type=${rt} (not listed) is unsupported_response_type`, JSON.stringify(r));
  }
  const RM = ['query', 'fragment', 'form_post', 'query.jwt', 'fragment.jwt', 'form_post.jwt', 'jwt', 'web_message'];
  const rms = field('response_modes_supported');
  for (const rm of rms) check(RM.includes(rm), `response_modes_supported: ${rm} is one this suite can check`);
  for (const rm of RM) {
    const r = await authorize(C.docs, { response_type: 'code', scope: 'openid', response_mode: rm, ...pkce });
    if (!rms.includes(rm)) {
      check(r.error === 'invalid_request', `response_mode=${rm} (not listed) is refused`, JSON.stringify(r));
      continue;
    }
    const s = await signIn(C.docs, 'openid', { response_mode: rm });
    const where = s.callback.formPost ? 'form_post' : s.callback.hash ? 'fragment' : 'query';
    check(where === rm && typeof s.tokens.access_token === 'string',
      `response_mode=${rm} (listed): the code comes back in the ${rm} and is exchanged`, `${where} ${s.callback}`);
  }
  const ccm = field('code_challenge_methods_supported');
  for (const m of ['S256', 'plain']) {
    const r = await authorize(C.spa, { response_type: 'code', scope: 'openid', code_challenge: pkce.code_challenge, code_challenge_method: m });
    if (ccm.includes(m)) check(r.login === true, `code_challenge_method=${m} (listed) goes to the login`, JSON.stringify(r));
    else check(r.error === 'invalid_request', `code_challenge_method=${m} (not listed) is invalid_request`, JSON.stringify(r));
  }
  const req = await authorize(C.docs, { response_type: 'code', scope: 'openid', request: 'eyJhbGciOiJub25lIn0.e30.', ...pkce });
  check(field('request_parameter_supported') === false && req.error === 'request_not_supported',
    'request_parameter_supported false: a request object is request_not_supported', JSON.stringify(req));
  const requ = await authorize(C.docs, { response_type: 'code', scope: 'openid', request_uri: 'https://docs.koder.dev/r', ...pkce });
  check(meta.request_uri_parameter_supported === false && requ.error === 'request_uri_not_supported',
    'request_uri_parameter_supported false: request_uri is request_uri_not_supported', JSON.stringify(requ));
  covered.add('request_uri_parameter_supported');
  check(field('authorization_response_iss_parameter_supported') === true &&
    s1.callback.searchParams.get('iss') === env.ISSUER,
    'authorization_response_iss_parameter_supported: the code comes back with iss (RFC 9207)', String(s1.callback));

  // ---- scopes and claims ----
  const scopes = field('scopes_supported');
  const effect = {
    openid: () => typeof s1.tokens.id_token === 'string',
    profile: () => typeof s1.info.name === 'string',
    email: () => s1.info.email === root.login,
    phone: () => typeof s1.info.phone_number === 'string',
    offline_access: () => typeof s1.tokens.refresh_token === 'string',
  };
  s1.info = await client.fetchUserInfo(s1.config, s1.tokens.access_token, s1.idt.sub);
  for (const sc of scopes) {
    const r = await authorize(C.docs, { response_type: 'code', scope: `openid ${sc}`, ...pkce });
    check(r.login === true && effect[sc] && effect[sc](), `scope ${sc} (listed) is accepted and has its effect`, JSON.stringify(s1.info));
  }
  const photos = await signIn(C.photos, scopes.join(' '));
  const photosInfo = await client.fetchUserInfo(photos.config, photos.tokens.access_token, photos.idt.sub);
  const pay = await signIn(C.pay, 'openid');
  const payAt = jose.decodeJwt(pay.tokens.access_token);
  const seen = new Set([...Object.keys(photos.idt), ...Object.keys(photosInfo), ...Object.keys(payAt)]);
  const claims = field('claims_supported');
  const missing = claims.filter((c) => !seen.has(c));
  check(missing.length === 0, 'claims_supported: every listed claim appears (ID token, userinfo, JWT access token)', `never seen: ${missing}`);
  const unlisted = [...Object.keys(photos.idt), ...Object.keys(photosInfo)]
    .filter((c) => !c.startsWith('urn:zitadel:') && !claims.includes(c));
  check(unlisted.length === 0, 'claims_supported: every claim of the ID token and userinfo is listed (v1\'s urn:zitadel:* aside)', `unlisted: ${unlisted}`);
  const subs = field('subject_types_supported');
  check(subs.length === 1 && subs[0] === 'public' && photos.idt.sub === root.id && s1.idt.sub === root.id,
    'subject_types_supported public: every client sees the user\'s v1 id', JSON.stringify(subs));
  const algs = field('id_token_signing_alg_values_supported');
  const keys = await (await fetch(field('jwks_uri'))).json();
  check(algs.includes(s1.header.alg) && keys.keys.length > 0 && keys.keys.every((k) => algs.includes(k.alg)),
    'id_token_signing_alg_values_supported: the ID token\'s alg and every JWKS key\'s alg are listed',
    `${s1.header.alg} ${keys.keys.map((k) => k.alg)}`);

  // ---- userinfo, end_session ----
  const ui = await fetch(field('userinfo_endpoint'));
  check(ui.status === 401 && /^Bearer /.test(ui.headers.get('www-authenticate') || '') &&
    s1.info.sub === root.id, 'userinfo_endpoint: answers a token, and 401 with a Bearer challenge without one');
  const es = await fetch(field('end_session_endpoint'), { redirect: 'manual' });
  check(es.status === 200 || es.status === 302 || es.status === 303, 'end_session_endpoint answers', es.status);
  covered.add('token_endpoint');

  const unknown = Object.keys(meta).filter((k) => !covered.has(k));
  check(unknown.length === 0, 'discovery has no field this suite does not check', `unchecked: ${unknown}`);
} catch (err) {
  check(false, 'the discovery suite ran to the end', err.stack || err);
}
process.exit(failures() ? 1 : 0);
