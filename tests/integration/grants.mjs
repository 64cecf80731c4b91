// SPDX-License-Identifier: Apache-2.0
//
// The token lifecycle against the real gateway (issue 5), seeded and started by grants.sh:
// openid-client 6 for what it supports (refreshTokenGrant, clientCredentialsGrant,
// tokenIntrospection, tokenRevocation, genericGrantRequest for jwt-bearer, PrivateKeyJwt),
// plain fetch for the hostile cases (replays, alg none, HMAC with a public key, parallel
// refreshes, other clients' tokens). Environment from grants.sh:
//   ISSUER, LOGIN, PASSWORD, WEB_ID/WEB_SECRET (basic, opaque, refresh), POST_ID/POST_SECRET
//   (post, JWT access token, refresh), API_ID/API_SECRET (API app, basic, WEB's project),
//   API_OTHER_ID/API_OTHER_SECRET (another project), PKJ_ID + PKJ_KEY (API app,
//   private_key_jwt, RSA PKCS#8 file, key id PKJ_KID) and PKJ_PUB,
//   M_OPAQUE/M_OPAQUE_SECRET/M_OPAQUE_ID, M_JWT/M_JWT_SECRET/M_JWT_ID, M_KEY_ID + M_KEY (EC
//   PKCS#8 file, key id M_KID), ORG_ID (the project's org; LOGIN holds role `admin` on
//   PROJECT_ID), SEED (a command line prefix that runs grants_seed on the store).
// TAP lines without the plan; exit 0 only when every check held.
import { execSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createHmac, createPublicKey, randomUUID } from 'node:crypto';
import * as jose from 'jose';
import * as client from 'openid-client';
import { browserLogin, check, failures } from './rp_lib.mjs';

const env = process.env;
const issuer = new URL(env.ISSUER);
const insecure = { execute: [client.allowInsecureRequests] };
const TOKEN = `${env.ISSUER}/oauth/v2/token`;
const INTROSPECT = `${env.ISSUER}/oauth/v2/introspect`;
const REVOKE = `${env.ISSUER}/oauth/v2/revoke`;
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

async function refused(p, error, what) {
  try {
    await p;
    check(false, what, 'no error');
  } catch (err) {
    // RFC 6749 5.2: every token-endpoint error here is a 400 (a ResponseBodyError's status).
    check(err.error === error && (err.status ?? 400) === 400, what, err);
  }
}


// A code flow of @config's client; the token response.
async function signIn(config, redirectUri, scope) {
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri, scope, nonce, state, code_challenge_method: 'S256',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
  });
  const cb = await browserLogin(issuer, url, redirectUri, { login: env.LOGIN, password: env.PASSWORD });
  return client.authorizationCodeGrant(config, cb, {
    pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state,
  });
}

function form(params, basic) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (basic) headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(basic[0])}:${encodeURIComponent(basic[1])}`).toString('base64')}`;
  return { method: 'POST', headers, body: new URLSearchParams(params) };
}
async function post(url, params, basic) {
  const res = await fetch(url, form(params, basic));
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* empty body */ }
  return { status: res.status, json };
}
const b64u = (s) => Buffer.from(s).toString('base64url');

const jwks = jose.createRemoteJWKSet(new URL('/oauth/v2/keys', issuer));
const pkjKey = await jose.importPKCS8(readFileSync(env.PKJ_KEY, 'utf8'), 'RS256');
const machineKey = await jose.importPKCS8(readFileSync(env.M_KEY, 'utf8'), 'ES256');
async function assertion(key, alg, kid, owner, aud, { expIn = 60, jti = randomUUID() } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: owner, sub: owner, aud, iat: now, exp: now + expIn };
  if (jti) claims.jti = jti;
  return new jose.SignJWT(claims).setProtectedHeader({ alg, kid }).sign(key);
}

try {
  // ---- discovery ----
  const webConfig = await client.discovery(issuer, env.WEB_ID, undefined,
    client.ClientSecretBasic(env.WEB_SECRET), insecure);
  const meta = webConfig.serverMetadata();
  check(meta.introspection_endpoint === INTROSPECT && meta.revocation_endpoint === REVOKE &&
    ['refresh_token', 'client_credentials', JWT_BEARER].every((g) => meta.grant_types_supported.includes(g)) &&
    meta.token_endpoint_auth_methods_supported.includes('private_key_jwt') &&
    meta.introspection_endpoint_auth_methods_supported.join(' ') === 'client_secret_basic private_key_jwt',
  'discovery lists introspect, revoke, the grants and private_key_jwt', meta);

  // ---- refresh_token ----
  const t1 = await signIn(webConfig, 'https://app.example/cb', 'openid profile offline_access');
  check(typeof t1.refresh_token === 'string', 'refresh: a refresh token for offline_access');
  const t2 = await client.refreshTokenGrant(webConfig, t1.refresh_token);
  check(t2.refresh_token && t2.refresh_token !== t1.refresh_token && t2.id_token &&
    t2.claims().sub === t1.claims().sub, 'refresh: rotated, with a new ID token for the same sub');
  const info = await client.fetchUserInfo(webConfig, t2.access_token, t1.claims().sub);
  check(info.sub === t1.claims().sub, 'refresh: the new access token works at userinfo');
  const t3 = await client.refreshTokenGrant(webConfig, t2.refresh_token, { scope: 'openid' });
  check(t3.scope === 'openid', 'refresh: the scope may narrow');
  await refused(client.refreshTokenGrant(webConfig, t3.refresh_token, { scope: 'openid email' }),
    'invalid_scope', 'refresh: the scope may not widen');
  await refused(client.refreshTokenGrant(webConfig, t1.refresh_token), 'invalid_grant',
    'refresh: a spent refresh token is refused');
  await refused(client.refreshTokenGrant(webConfig, t3.refresh_token), 'invalid_grant',
    'refresh: ... and its reuse revoked the whole family');

  // Two clients, one token: bound to its client (the JWT client cannot use WEB's token).
  const postConfig = await client.discovery(issuer, env.POST_ID, undefined,
    client.ClientSecretPost(env.POST_SECRET), insecure);
  const t4 = await signIn(webConfig, 'https://app.example/cb', 'openid offline_access');
  await refused(client.refreshTokenGrant(postConfig, t4.refresh_token), 'invalid_grant',
    "refresh: another client's refresh token is refused");
  // Parallel refreshes of one token: exactly one wins.
  const results = await Promise.all(Array.from({ length: 8 }, () =>
    post(TOKEN, { grant_type: 'refresh_token', refresh_token: t4.refresh_token },
      [env.WEB_ID, env.WEB_SECRET])));
  const wins = results.filter((r) => r.status === 200).length;
  check(wins === 1 && results.every((r) => r.status === 200 || r.json?.error === 'invalid_grant'),
    `refresh: 8 parallel refreshes of one token, exactly one succeeds (${wins})`);

  // ---- introspection ----
  const apiConfig = await client.discovery(issuer, env.API_ID, undefined,
    client.ClientSecretBasic(env.API_SECRET), insecure);
  const t5 = await signIn(webConfig, 'https://app.example/cb', 'openid profile email offline_access');
  const i1 = await client.tokenIntrospection(apiConfig, t5.access_token);
  check(i1.active === true && i1.sub === t5.claims().sub && i1.client_id === env.WEB_ID &&
    i1.username === env.LOGIN && i1.token_type === 'Bearer' && i1.iss === env.ISSUER &&
    typeof i1.jti === 'string' && i1.exp > i1.iat && i1.scope === 'openid profile email offline_access' &&
    i1.email === `${env.LOGIN}@example.com` && Array.isArray(i1.aud) && i1.aud.includes(env.WEB_ID),
  'introspect: an API app of the project sees the token active with v1\'s fields', i1);
  const apiOther = await client.discovery(issuer, env.API_OTHER_ID, undefined,
    client.ClientSecretBasic(env.API_OTHER_SECRET), insecure);
  const i2 = await client.tokenIntrospection(apiOther, t5.access_token);
  check(i2.active === false && Object.keys(i2).length === 1,
    'introspect: an API app outside the audience gets active:false');
  for (const [what, tok] of [['unknown', 'no-such-token'], ['truncated', t5.access_token.slice(0, 20)],
    ['a refresh token', t5.refresh_token], ['an ID token', t5.id_token]]) {
    const r = await client.tokenIntrospection(apiConfig, tok);
    check(r.active === false, `introspect: ${what} is active:false`, r);
  }
  const wrong = await post(INTROSPECT, { token: t5.access_token }, [env.API_ID, 'wrong']);
  check(wrong.status === 401 && wrong.json.error === 'invalid_client',
    'introspect: a wrong API secret is invalid_client (401)');

  // private_key_jwt (RS256 API app)
  const pkjConfig = await client.discovery(issuer, env.PKJ_ID, undefined,
    client.PrivateKeyJwt({ key: pkjKey, kid: env.PKJ_KID }), insecure);
  const i3 = await client.tokenIntrospection(pkjConfig, t5.access_token);
  check(i3.active === true && i3.sub === t5.claims().sub,
    'private_key_jwt: openid-client introspects with a signed assertion');
  const a1 = await assertion(pkjKey, 'RS256', env.PKJ_KID, env.PKJ_ID, INTROSPECT);
  const withAssertion = (a) => ({ token: t5.access_token, client_assertion_type: ASSERTION_TYPE, client_assertion: a });
  const ok1 = await post(INTROSPECT, withAssertion(a1));
  const replay = await post(INTROSPECT, withAssertion(a1));
  check(ok1.status === 200 && ok1.json.active === true && replay.status === 401 &&
    replay.json.error === 'invalid_client', 'private_key_jwt: a reused jti is refused', replay);
  const expired = await post(INTROSPECT, withAssertion(await assertion(pkjKey, 'RS256', env.PKJ_KID, env.PKJ_ID, env.ISSUER, { expIn: -120 })));
  check(expired.status === 401 && expired.json.error === 'invalid_client', 'private_key_jwt: an expired assertion is refused');
  const longLived = await post(INTROSPECT, withAssertion(await assertion(pkjKey, 'RS256', env.PKJ_KID, env.PKJ_ID, env.ISSUER, { expIn: 86400 })));
  check(longLived.status === 401, 'private_key_jwt: an assertion valid for a day is refused');
  const otherAud = await post(INTROSPECT, withAssertion(await assertion(pkjKey, 'RS256', env.PKJ_KID, env.PKJ_ID, 'https://elsewhere.example')));
  check(otherAud.status === 401, 'private_key_jwt: another audience is refused');
  const noJti = await post(INTROSPECT, withAssertion(await assertion(pkjKey, 'RS256', env.PKJ_KID, env.PKJ_ID, env.ISSUER, { jti: null })));
  check(noJti.status === 401, 'private_key_jwt: an assertion without jti is refused');
  const now = Math.floor(Date.now() / 1000);
  const claims = b64u(JSON.stringify({ iss: env.PKJ_ID, sub: env.PKJ_ID, aud: env.ISSUER, iat: now, exp: now + 60, jti: randomUUID() }));
  const none = `${b64u(JSON.stringify({ alg: 'none', kid: env.PKJ_KID }))}.${claims}.`;
  const hsInput = `${b64u(JSON.stringify({ alg: 'HS256', kid: env.PKJ_KID, typ: 'JWT' }))}.${claims}`;
  const hs = `${hsInput}.${createHmac('sha256', readFileSync(env.PKJ_PUB)).update(hsInput).digest('base64url')}`;
  const rNone = await post(INTROSPECT, withAssertion(none));
  const rHs = await post(INTROSPECT, withAssertion(hs));
  check(rNone.status === 401 && rHs.status === 401 && rHs.json.error === 'invalid_client',
    'private_key_jwt: alg none and HS256 keyed with the public key are refused');

  // ---- client_credentials (machine users) ----
  const mConfig = await client.discovery(issuer, env.M_OPAQUE, undefined,
    client.ClientSecretBasic(env.M_OPAQUE_SECRET), insecure);
  const c1 = await client.clientCredentialsGrant(mConfig, { scope: 'openid profile' });
  check(c1.access_token && !c1.access_token.includes('.') && !c1.id_token && !c1.refresh_token &&
    c1.token_type.toLowerCase() === 'bearer', 'client_credentials: an opaque access token, no ID or refresh token');
  const ci = await client.tokenIntrospection(pkjConfig, c1.access_token);
  check(ci.active === false, 'client_credentials: an API app outside its audience sees it inactive');
  const mJwt = await client.discovery(issuer, env.M_JWT, undefined,
    client.ClientSecretPost(env.M_JWT_SECRET), insecure);
  const c2 = await client.clientCredentialsGrant(mJwt, { scope: `openid urn:zitadel:iam:org:project:id:${env.PROJECT_ID}:aud` });
  const { payload: cj } = await jose.jwtVerify(c2.access_token, jwks, { issuer: env.ISSUER, algorithms: ['RS256'] });
  check(cj.sub === env.M_JWT_ID && cj.aud.includes(env.PROJECT_ID) && !c2.id_token,
    'client_credentials: a JWT access token (per the user) with sub = the machine user id', cj);
  const ci2 = await client.tokenIntrospection(apiConfig, c2.access_token);
  check(ci2.active === true && ci2.sub === env.M_JWT_ID && ci2.username === env.M_JWT,
    'client_credentials: introspected by an API app of the named project', ci2);
  const badSecret = await post(TOKEN, { grant_type: 'client_credentials' }, [env.M_OPAQUE, 'wrong']);
  check(badSecret.status === 401 && badSecret.json.error === 'invalid_client', 'client_credentials: a wrong secret is invalid_client');
  const human = await post(TOKEN, { grant_type: 'client_credentials' }, [env.LOGIN, env.PASSWORD]);
  check(human.status === 401, 'client_credentials: a human user is not a machine client');

  // ---- jwt-bearer (machine user with a key) ----
  const ja = await assertion(machineKey, 'ES256', env.M_KID, env.M_KEY_ID, env.ISSUER);
  // The assertion is the only credential: a public-client configuration (client_id only).
  const keyConfig = await client.discovery(issuer, env.M_KEY_ID, undefined, client.None(), insecure);
  const jb = await client.genericGrantRequest(keyConfig, JWT_BEARER, { assertion: ja, scope: 'openid' });
  const { payload: jbp } = await jose.jwtVerify(jb.access_token, jwks, { issuer: env.ISSUER, algorithms: ['RS256'] });
  check(jbp.sub === env.M_KEY_ID && !jb.id_token, 'jwt-bearer: a signed assertion gets the machine user a token');
  const jr = await post(TOKEN, { grant_type: JWT_BEARER, assertion: ja });
  check(jr.status === 400 && jr.json.error === 'invalid_grant', 'jwt-bearer: a reused assertion (jti) is invalid_grant');
  const jexp = await post(TOKEN, { grant_type: JWT_BEARER, assertion: await assertion(machineKey, 'ES256', env.M_KID, env.M_KEY_ID, env.ISSUER, { expIn: -300 }) });
  check(jexp.status === 400 && jexp.json.error === 'invalid_grant', 'jwt-bearer: an expired assertion is invalid_grant');
  const jrs = await post(TOKEN, { grant_type: JWT_BEARER, assertion: await assertion(pkjKey, 'RS256', env.M_KID, env.M_KEY_ID, env.ISSUER) });
  check(jrs.status === 400 && jrs.json.error === 'invalid_grant', "jwt-bearer: another key's signature is invalid_grant");

  // ---- revocation ----
  const t6 = await signIn(webConfig, 'https://app.example/cb', 'openid offline_access');
  const sub6 = t6.claims().sub;
  const other = await post(REVOKE, { token: t6.access_token }, [env.POST_ID, env.POST_SECRET]).catch((e) => e);
  // POST_ID is a client_secret_post client: authenticate it in the body.
  const other2 = await post(REVOKE, { token: t6.access_token, client_id: env.POST_ID, client_secret: env.POST_SECRET });
  check(other.status === 401 && other2.status === 400 && other2.json.error === 'invalid_request',
    "revoke: another client's token is refused", other2);
  const still = await client.fetchUserInfo(webConfig, t6.access_token, sub6);
  check(still.sub === sub6, "revoke: ... and the token stays valid");
  await client.tokenRevocation(webConfig, t6.access_token, { token_type_hint: 'refresh_token' });
  await refused(client.fetchUserInfo(webConfig, t6.access_token, sub6).catch((e) => { throw { error: e.status === 401 || /invalid_token/.test(String(e)) ? 'revoked' : String(e) }; }),
    'revoked', 'revoke: an access token (with a wrong hint) no longer works at userinfo');
  const i6 = await client.tokenIntrospection(apiConfig, t6.access_token);
  check(i6.active === false, 'revoke: ... nor at introspection');
  await client.tokenRevocation(webConfig, t6.refresh_token);
  await refused(client.refreshTokenGrant(webConfig, t6.refresh_token), 'invalid_grant',
    'revoke: a revoked refresh token is refused');
  await client.tokenRevocation(webConfig, 'no-such-token');
  check(true, 'revoke: an unknown token answers 200');
  const badHint = await post(REVOKE, { token: 'x', token_type_hint: 'id_token' }, [env.WEB_ID, env.WEB_SECRET]);
  check(badHint.status === 400 && badHint.json.error === 'unsupported_token_type', 'revoke: an unknown hint is unsupported_token_type');
  // A JWT access token (POST client) revoked: deny-listed.
  const t7 = await signIn(postConfig, 'https://post.example/cb', 'openid offline_access');
  check(t7.access_token.split('.').length === 3, 'revoke: the post client has JWT access tokens');
  await client.tokenRevocation(postConfig, t7.access_token);
  const i7 = await client.tokenIntrospection(apiConfig, t7.access_token);
  check(i7.active === false, 'revoke: a revoked JWT access token is inactive (deny-list)');

  // ---- role claims from a grant made with `grant add` ----
  const tr = await signIn(webConfig, 'https://app.example/cb', 'openid urn:zitadel:iam:org:project:role:admin');
  const ri = await client.fetchUserInfo(webConfig, tr.access_token, tr.claims().sub);
  const roles = ri['urn:zitadel:iam:org:project:roles'];
  check(roles && Object.keys(roles).join() === 'admin' && Object.keys(roles.admin).join() === env.ORG_ID &&
    ri[`urn:zitadel:iam:org:project:${env.PROJECT_ID}:roles`]?.admin?.[env.ORG_ID] === roles.admin[env.ORG_ID],
  'roles: the role made by role add and granted by grant add is in the role claims at userinfo', { ri, scope: tr.scope });

  // ---- a locked user's refresh tokens end ----
  const t8 = await signIn(webConfig, 'https://app.example/cb', 'openid offline_access');
  execSync(`${env.SEED} state ${t8.claims().sub} 4`);
  await refused(client.refreshTokenGrant(webConfig, t8.refresh_token), 'invalid_grant',
    'refresh: a locked user\'s refresh token is refused');
  execSync(`${env.SEED} state ${t8.claims().sub} 1`);
  await refused(client.refreshTokenGrant(webConfig, t8.refresh_token), 'invalid_grant',
    'refresh: ... and stays ended after unlocking');

  // ---- alg confusion and forged hints (issue 5's hostile cases), each with the spec's answer ----
  {
    const keys = await (await fetch(`${env.ISSUER}/oauth/v2/keys`)).json();
    const ours = keys.keys.find((k) => k.kty === 'RSA');
    const ourPem = createPublicKey({ key: ours, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    const hs = (payload, kid, pem) => {
      const input = `${b64u(JSON.stringify({ alg: 'HS256', kid, typ: 'JWT' }))}.${payload}`;
      return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
    };
    const none = (payload, kid) => `${b64u(JSON.stringify({ alg: 'none', kid }))}.${payload}.`;
    const tj = await signIn(postConfig, 'https://post.example/cb', 'openid');
    const atBody = tj.access_token.split('.')[1];
    for (const [name, tok] of [['HS256 keyed with our public key', hs(atBody, ours.kid, ourPem)],
      ['alg none', none(atBody, ours.kid)]]) {
      const r = await fetch(`${env.ISSUER}/oidc/v1/userinfo`, { headers: { authorization: `Bearer ${tok}` } });
      const body = await r.json().catch(() => ({}));
      const www = r.headers.get('www-authenticate') || '';
      check(r.status === 401 && body.error === 'invalid_token' && /^Bearer realm="[^"]*", error="invalid_token"/.test(www),
        `userinfo: a JWT access token re-signed ${name} is 401 invalid_token with WWW-Authenticate Bearer error="invalid_token" (RFC 6750 3.1)`,
        `${r.status} ${JSON.stringify(body)} ${www}`);
      const i = await client.tokenIntrospection(apiConfig, tok);
      check(i.active === false, `introspection: ... and is active: false (RFC 7662 2.2)`, i);
    }
    const mkPem = createPublicKey(readFileSync(env.M_KEY)).export({ type: 'spki', format: 'pem' });
    for (const [name, mk] of [['HS256 keyed with its public key', (p) => hs(p, 'mk', mkPem)], ['alg none', (p) => none(p, 'mk')]]) {
      const t0 = Math.floor(Date.now() / 1000);
      const p = b64u(JSON.stringify({ iss: env.M_KEY_ID, sub: env.M_KEY_ID, aud: env.ISSUER, iat: t0, exp: t0 + 60, jti: randomUUID() }));
      const r = await post(TOKEN, { grant_type: JWT_BEARER, assertion: mk(p) });
      check(r.status === 400 && r.json.error === 'invalid_grant',
        `jwt-bearer: an assertion with ${name} is 400 invalid_grant (RFC 7523 3.1)`, r);
    }
    // end_session: a hint must be ours and for the client named (RP-Initiated Logout 1.0, 2).
    const idBody = tj.id_token.split('.')[1];
    const endSession = async (q) => {
      const r = await fetch(`${env.ISSUER}/oidc/v1/end_session?${new URLSearchParams(q)}`, { redirect: 'manual' });
      return { status: r.status, location: r.headers.get('location') };
    };
    for (const [name, hint] of [['HS256 keyed with our public key', hs(idBody, ours.kid, ourPem)], ['alg none', none(idBody, ours.kid)]]) {
      const r = await endSession({ id_token_hint: hint });
      check(r.status === 400 && r.location === null, `end_session: an id_token_hint re-signed ${name} is refused with a 400 page`, r);
    }
    const wrongClient = await endSession({ id_token_hint: tj.id_token, client_id: env.WEB_ID });
    const rightClient = await endSession({ id_token_hint: tj.id_token, client_id: env.POST_ID });
    check(wrongClient.status === 400 && wrongClient.location === null && rightClient.status === 302,
      "end_session: a genuine hint with another client's client_id is refused with a 400 page", { wrongClient, rightClient });
  }
} catch (err) {
  check(false, 'the suite ran to its end', err);
}
process.exit(failures() ? 1 : 0);
