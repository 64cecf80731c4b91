// SPDX-License-Identifier: Apache-2.0
//
// v1's claim shapes on the imported Koder inventory (claims.sh imports it and starts `serve`):
// openid-client 6 signs in as v1's root through imported apps with different flags and
// checks ../shared/ZITADEL.md sections 4 and 5 claim by claim. Environment (from claims.sh):
//   ISSUER, SECRETS (secrets.json), SUB (root's id), ORG ({id, name, domain} of root's org)
//   PLATFORM, BULL                    project ids
//   AUD_PLATFORM, AUD_BULL            JSON: each project's app client ids and the project id
//   ROLES_PLATFORM                    JSON: root's roles on Koder Platform, v1's shape
//   LIFETIMES                         JSON: {at, idt} in seconds, from oidc_settings2
// TAP lines without the plan; exit status 0 only when every check held.
import { readFileSync } from 'node:fs';
import * as jose from 'jose';
import * as client from 'openid-client';
import { authRequest, browserLogin, check, failures } from './rp_lib.mjs';

const env = process.env;
const issuer = new URL(env.ISSUER);
const secrets = JSON.parse(readFileSync(env.SECRETS, 'utf8'));
const root = secrets.users.root;
const org = JSON.parse(env.ORG);
const life = JSON.parse(env.LIFETIMES);
const rolesPlatform = JSON.parse(env.ROLES_PLATFORM);
const checkT = check;

// The login's answer: { location } when it sent the browser back to @app, else the refusal's
// { status, location, body }.
async function login(authUrl, app) {
  try {
    const url = await browserLogin(issuer, authUrl, app.cb, { login: root.login, password: root.password });
    return { location: url.href };
  } catch (err) {
    if (!err.refused) throw err;
    return { status: err.status, location: err.location, body: err.body };
  }
}

const ROLES = 'urn:zitadel:iam:org:project:roles';
const rolesOf = (p) => `urn:zitadel:iam:org:project:${p}:roles`;
const RO_ID = 'urn:zitadel:iam:user:resourceowner:id';
const RO_NAME = 'urn:zitadel:iam:user:resourceowner:name';
const RO_DOMAIN = 'urn:zitadel:iam:user:resourceowner:primary_domain';
const ORG_ID = 'urn:zitadel:iam:org:id';
const ORG_DOMAIN = 'urn:zitadel:iam:org:domain:primary';

// Imported apps (koder-inventory.sql), all web + client_secret_basic, project Koder Platform
// (project_role_assertion) unless said otherwise.
const apps = {
  pay: { id: '250000000496977041@koder_platform', cb: 'https://pay.koder.dev/auth/callback' }, // JWT access token, access_token_role_assertion
  photos: { id: '250000000474101864@koder_platform', cb: 'https://photos.koder.dev/auth/callback' }, // id_token_role_assertion + id_token_userinfo_assertion
  flow: { id: '250000000349221846@koder_platform', cb: 'https://flow.koder.dev/auth/callback' }, // id_token_role_assertion only
  docs: { id: '250000000369918530@koder_platform', cb: 'https://docs.koder.dev/auth/callback' }, // no flag
  bull: { id: '250000000080498240@koder_bull', cb: 'https://koder-bull-web.koder.dev/auth/callback' }, // Koder Bull, id_token_userinfo_assertion
  aiChat: { id: '250000000091973509', cb: 'https://ai-chat.koder.dev/callback', pub: true }, // Koder AI SPA
  cloudConsole: { id: '250000000235416257@koder_cloud', cb: 'https://cloud-console.koder.dev/callback', pub: true },
};

const jwks = jose.createRemoteJWKSet(new URL('/oauth/v2/keys', issuer));
const sameSet = (a, b) => Array.isArray(a) && a.length === b.length && b.every((x) => a.includes(x));
const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const keysOf = (o) => JSON.stringify(Object.keys(o).sort());

async function configFor(app) {
  const auth = app.pub ? client.None() : client.ClientSecretBasic(secrets.clients[app.id]);
  return client.discovery(issuer, app.id, undefined, auth, { execute: [client.allowInsecureRequests] });
}

// Signs root in through @app asking @scope; returns tokens, the verified ID token's payload,
// the JWT access token's payload (or null for an opaque one) and the userinfo answer.
async function signIn(app, scope) {
  const config = await configFor(app);
  const a = await authRequest(config, app.cb, scope);
  const r = await login(a.url, app);
  if (r.status) throw new Error(`${app.id}: sign-in did not come back (${r.status}): ${r.body.slice(0, 300)}`);
  const tokens = await client.authorizationCodeGrant(config, new URL(r.location), {
    pkceCodeVerifier: a.verifier, expectedNonce: a.nonce, expectedState: a.state,
    idTokenExpected: true,
  });
  const { payload: idt } = await jose.jwtVerify(tokens.id_token, jwks, {
    issuer: env.ISSUER, audience: app.id, algorithms: ['RS256'],
  });
  let at = null;
  if (tokens.access_token.split('.').length === 3) {
    at = (await jose.jwtVerify(tokens.access_token, jwks, { issuer: env.ISSUER })).payload;
  }
  const info = await client.fetchUserInfo(config, tokens.access_token, idt.sub);
  return { tokens, idt, at, info };
}

// A sign-in v1 refuses: the login answers a page with the reason and never returns to the app.
async function refused(app, scope, reason, what) {
  const config = await configFor(app);
  const a = await authRequest(config, app.cb, scope);
  const r = await login(a.url, app);
  checkT(r.status === 403 && r.location === null && r.body.includes(reason),
    `${what}: the login answers 403 with ${reason} and never returns to the app`,
    `${r.status} ${r.location} ${(r.body || '').slice(0, 400)}`);
}

const audPlatform = JSON.parse(env.AUD_PLATFORM);
const audBull = JSON.parse(env.AUD_BULL);
const roScope = 'urn:zitadel:iam:user:resourceowner';

try {
  // Pay: JWT access token with access_token_role_assertion; no ID token flags.
  {
    const s = await signIn(apps.pay, `openid profile email ${roScope}`);
    checkT(s.at !== null, 'pay: the access token is a JWT (access_token_type 1)');
    checkT(sameSet(s.idt.aud, audPlatform),
      `pay: the ID token's aud is exactly Koder Platform's ${audPlatform.length - 1} client ids and the project id`,
      JSON.stringify(s.idt.aud));
    checkT(s.at && sameSet(s.at.aud, audPlatform), "pay: the access token's aud is the same",
      JSON.stringify(s.at && s.at.aud));
    checkT(s.at && eq(s.at[ROLES], rolesPlatform) && eq(s.at[rolesOf(env.PLATFORM)], rolesPlatform),
      `pay: the JWT access token asserts root's roles ${JSON.stringify(rolesPlatform)} in both role claims`,
      JSON.stringify(s.at));
    checkT(!(ROLES in s.idt) && !(rolesOf(env.PLATFORM) in s.idt),
      'pay: no role claim in the ID token without id_token_role_assertion', JSON.stringify(s.idt));
    checkT(!('email' in s.idt) && !('preferred_username' in s.idt) && !('name' in s.idt),
      'pay: no profile or email claim in the ID token without id_token_userinfo_assertion',
      JSON.stringify(s.idt));
    checkT(s.idt[RO_ID] === org.id && s.at && s.at[RO_ID] === org.id && s.at[RO_NAME] === org.name,
      'pay: the resource-owner claims are in the ID token and the JWT access token (v1 copies its private userinfo claims)',
      JSON.stringify({ idt: s.idt, at: s.at }));
    checkT(s.at && s.at.exp - s.at.iat === life.at && s.tokens.expires_in === life.at,
      `pay: access token exp - iat and expires_in = the imported ${life.at} s`,
      JSON.stringify({ exp: s.at && s.at.exp, iat: s.at && s.at.iat, expires_in: s.tokens.expires_in }));
    checkT(s.idt.exp - s.idt.iat === life.idt, `pay: ID token exp - iat = the imported ${life.idt} s`,
      JSON.stringify(s.idt));
    checkT(s.info.sub === root.id && s.info.preferred_username === root.login &&
      s.info.email === root.login && s.info.email_verified === true,
      `pay: userinfo: sub, preferred_username = the login name ${root.login}, email`, JSON.stringify(s.info));
    checkT(eq(s.info[ROLES], rolesPlatform) && eq(s.info[rolesOf(env.PLATFORM)], rolesPlatform),
      'pay: userinfo asserts the roles (project_role_assertion)', JSON.stringify(s.info));
    checkT(s.info[RO_ID] === org.id && s.info[RO_NAME] === org.name && s.info[RO_DOMAIN] === org.domain,
      `pay: userinfo: urn:zitadel:iam:user:resourceowner:{id,name,primary_domain} = ${JSON.stringify(org)}`,
      JSON.stringify(s.info));
  }

  // Pay again, asking one role: only that role anywhere.
  {
    const s = await signIn(apps.pay, 'openid urn:zitadel:iam:org:project:role:admin');
    const admin = { admin: rolesPlatform.admin };
    checkT(s.at && eq(s.at[ROLES], admin) && eq(s.info[ROLES], admin),
      'pay: urn:zitadel:iam:org:project:role:admin narrows the role claims to admin',
      JSON.stringify({ at: s.at, info: s.info }));
    checkT(!(RO_ID in s.at) && !(RO_ID in s.info) && !('email' in s.info),
      'pay: without the scopes, no resource-owner and no email claims', JSON.stringify(s.info));
  }

  // Photos: opaque access token, roles and userinfo claims in the ID token, org scopes.
  {
    const scope = `openid profile email urn:zitadel:iam:org:id:${org.id} urn:zitadel:iam:org:domain:primary:${org.domain}`;
    const s = await signIn(apps.photos, scope);
    checkT(s.at === null, 'photos: the access token is opaque (access_token_type 0)');
    checkT(eq(s.idt[ROLES], rolesPlatform) && eq(s.idt[rolesOf(env.PLATFORM)], rolesPlatform),
      'photos: the ID token carries the roles (id_token_role_assertion)', JSON.stringify(s.idt));
    checkT(s.idt.email === root.login && s.idt.preferred_username === root.login &&
      typeof s.idt.name === 'string' && s.idt.email_verified === true,
      'photos: the ID token carries profile and email claims (id_token_userinfo_assertion)',
      JSON.stringify(s.idt));
    checkT(s.idt[ORG_ID] === org.id && s.idt[ORG_DOMAIN] === org.domain && s.idt[RO_ID] === org.id &&
      s.idt[RO_DOMAIN] === org.domain,
      'photos: urn:zitadel:iam:org:id and :domain:primary scopes: their claims and the resource owner\'s',
      JSON.stringify(s.idt));
    checkT(s.info[ORG_ID] === org.id && s.info[ORG_DOMAIN] === org.domain &&
      eq(s.info[ROLES], rolesPlatform),
      'photos: userinfo says the same', JSON.stringify(s.info));
    checkT(sameSet(s.idt.aud, audPlatform) && s.idt.azp === apps.photos.id,
      'photos: aud = the project\'s client ids and id; azp = the client', JSON.stringify(s.idt));
  }

  // Flow: id_token_role_assertion without id_token_userinfo_assertion.
  {
    const s = await signIn(apps.flow, 'openid profile email');
    checkT(eq(s.idt[ROLES], rolesPlatform) && !('email' in s.idt) && !('preferred_username' in s.idt),
      'flow: roles in the ID token, no profile or email claim', JSON.stringify(s.idt));
    checkT(s.info.email === root.login && eq(s.info[ROLES], rolesPlatform),
      'flow: userinfo has the email and the roles', JSON.stringify(s.info));
  }

  // Docs: no flag; roles only in userinfo, because the project asserts them.
  {
    const s = await signIn(apps.docs, 'openid');
    checkT(!(ROLES in s.idt) && keysOf(s.info) === keysOf({ sub: 1, [ROLES]: 1, [rolesOf(env.PLATFORM)]: 1 }) &&
      eq(s.info[ROLES], rolesPlatform),
      'docs: scope openid alone: userinfo = sub and the asserted roles; the ID token has none',
      JSON.stringify({ idt: s.idt, info: s.info }));
    checkT(s.idt.exp - s.idt.iat === life.idt && s.tokens.expires_in === life.at,
      'docs: lifetimes of an opaque access token and the ID token', JSON.stringify(s.idt));
  }

  // Koder Bull (no assertion, no grant of root): roles only when asked, other projects by scope.
  {
    const s = await signIn(apps.bull, 'openid email');
    checkT(sameSet(s.idt.aud, audBull), 'bull: aud = Koder Bull\'s client ids and project id',
      JSON.stringify(s.idt.aud));
    checkT(s.idt.email === root.login && !Object.keys(s.info).some((k) => k.endsWith(':roles')),
      'bull: email in the ID token (id_token_userinfo_assertion); no role claim anywhere unasked',
      JSON.stringify(s.info));
    const scope = `openid urn:zitadel:iam:org:project:id:${env.PLATFORM}:aud urn:zitadel:iam:org:projects:roles`;
    const x = await signIn(apps.bull, scope);
    checkT(sameSet(x.idt.aud, [...audBull, env.PLATFORM]),
      'bull: urn:zitadel:iam:org:project:id:{platform}:aud adds that project id to aud',
      JSON.stringify(x.idt.aud));
    checkT(eq(x.info[rolesOf(env.PLATFORM)], rolesPlatform) && !(ROLES in x.info),
      'bull: urn:zitadel:iam:org:projects:roles: userinfo has Koder Platform\'s roles under its id, none for Bull',
      JSON.stringify(x.info));
    checkT(!Object.keys(x.idt).some((k) => k.endsWith(':roles')),
      'bull: but not the ID token (no id_token_role_assertion)', JSON.stringify(x.idt));
    const y = await signIn(apps.bull, `openid urn:zitadel:iam:org:project:id:${env.PLATFORM}:aud`);
    checkT(sameSet(y.idt.aud, [...audBull, env.PLATFORM]) &&
      !Object.keys(y.info).some((k) => k.endsWith(':roles')),
      'bull: an :aud scope alone widens aud but asks for no roles', JSON.stringify(y.info));
  }

  // Refusals (projects seeded by claims.sh).
  await refused(apps.aiChat, 'openid', 'Errors.User.GrantRequired',
    'project_role_check (Koder AI, root holds no role on it)');
  await refused(apps.cloudConsole, 'openid', 'Errors.User.ProjectRequired',
    'has_project_check (Koder Cloud, owned by another org)');
  await refused(apps.docs, 'openid urn:zitadel:iam:org:id:250000000099999999', 'Errors.User.NotAllowedOrg',
    'urn:zitadel:iam:org:id of another org');
  await refused(apps.docs, 'openid urn:zitadel:iam:org:domain:primary:partner.example',
    'Errors.User.NotAllowedOrg', 'urn:zitadel:iam:org:domain:primary of another org');
} catch (err) {
  checkT(false, 'the claims suite ran to the end', err.stack || err);
}
process.exit(failures() ? 1 : 0);
