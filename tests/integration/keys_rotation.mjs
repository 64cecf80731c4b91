// SPDX-License-Identifier: Apache-2.0
// Relying parties verifying tokens continuously while the signing key rotates (issue 5).
// Driven by keys_rotation.sh, which starts the real binary(ies) with small windows:
//   ISSUER     the iss of every token          BASES   servers issuing tokens (space separated)
//   JWKS_BASE  where the RPs fetch the JWKS    BIN, CONF  the binary and its config (keys CLI)
//   CLIENT_ID, CLIENT_SECRET, RT  a web client (client_secret_post, JWT access tokens) and a
//              refresh token of it (each refresh gives an ID token and a JWT access token)
//   PUBLISH_AHEAD, MAX_AGE, RELOAD, LIFETIME, MARGIN  the windows (seconds)
//   MODE       "manual": `keys rotate` while tokens flow, the old key's whole retirement;
//              "scheduled": two servers rotating on their own (keys.rotate_every), started
//              after KEYS_BEFORE (`keys list --json`) was taken
// Two RPs verify every token: one keeps its JWKS (jose's 10 min) and re-fetches on an unknown
// kid (cooldown 1 s, scaled down like every other window), one honours Cache-Control max-age
// only. No wall-clock sleeps decide anything: every wait polls a condition with a deadline.
import * as jose from 'jose';
import { execFileSync } from 'node:child_process';

const env = process.env;
const issuer = env.ISSUER;
const bases = env.BASES.split(' ');
const jwksUrl = new URL('/oauth/v2/keys', env.JWKS_BASE || bases[0]);
const AHEAD = Number(env.PUBLISH_AHEAD), MAX_AGE = Number(env.MAX_AGE);
const LIFETIME = Number(env.LIFETIME), MARGIN = Number(env.MARGIN);

let n = 0, failed = 0;
function check(ok, what, detail) {
  n++;
  if (ok) {
    console.log(`ok ${n} - ${what}`);
  } else {
    failed++;
    console.log(`not ok ${n} - ${what}`);
    if (detail !== undefined) console.log(`# ${JSON.stringify(detail).slice(0, 1500)}`);
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Date.now() / 1000;

const rps = () => [
  ['refetching RP', jose.createRemoteJWKSet(jwksUrl, { cacheMaxAge: 600000, cooldownDuration: 1000 })],
  ['max-age RP', jose.createRemoteJWKSet(jwksUrl, { cacheMaxAge: MAX_AGE * 1000, cooldownDuration: MAX_AGE * 1000 })],
];
const parties = rps();

const tokens = []; // {kid, iat, at, access_token, id_token}
const failures = [];
const jwksSeen = []; // {start, end, kids}
let verified = 0, rt = env.RT, turn = 0;

async function refresh() {
  const base = bases[turn++ % bases.length];
  const res = await fetch(`${base}/oauth/v2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt,
      client_id: env.CLIENT_ID, client_secret: env.CLIENT_SECRET }),
  });
  const j = await res.json();
  if (res.status !== 200 || !j.id_token || !j.access_token?.includes('.'))
    throw new Error(`refresh at ${base}: ${res.status} ${JSON.stringify(j)}`);
  rt = j.refresh_token;
  const h = jose.decodeProtectedHeader(j.id_token);
  const ha = jose.decodeProtectedHeader(j.access_token);
  const c = jose.decodeJwt(j.id_token);
  // Both are signed in one request, each with the key current at its signing: at the switch
  // the two may differ (both keys are published then).
  return { kid: h.kid, kids: [h.kid, ha.kid], iat: c.iat, at: now(), access_token: j.access_token, id_token: j.id_token };
}

async function verifyWith(list, t, when) {
  for (const [rp, set] of list)
    for (const [what, tok] of [['ID token', t.id_token], ['access token', t.access_token]]) {
      try {
        await jose.jwtVerify(tok, set, { issuer });
        verified++;
      } catch (e) {
        failures.push({ rp, what, kid: jose.decodeProtectedHeader(tok).kid, iat: t.iat, when, at: now(), error: e.code || String(e) });
      }
    }
}

async function observeJwks() {
  const start = now();
  const res = await fetch(jwksUrl);
  const j = await res.json();
  jwksSeen.push({ start, end: now(), kids: j.keys.map((k) => k.kid), cc: res.headers.get('cache-control') });
}

// One round: a fresh token pair verified by both RPs, and one raw look at the JWKS.
async function step() {
  const t = await refresh();
  tokens.push(t);
  await verifyWith(parties, t, 'fresh');
  await observeJwks();
  await sleep(50);
  return t;
}

async function until(what, deadline, cond) {
  while (now() < deadline) {
    if (await cond()) return true;
    await step();
  }
  check(false, `${what} (timed out)`);
  return false;
}

const cli = (...args) => JSON.parse(execFileSync(env.BIN, [...args, '--json', '--config', env.CONF],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));

async function manual() {
  await step();
  const k0 = tokens[0].kid;
  await until('five tokens before the rotation', now() + 30, () => tokens.length >= 5);
  check(tokens.every((t) => t.kids.every((k) => k === k0)), 'before the rotation every token is signed by one key', k0);
  check(jwksSeen[0].cc === `public, max-age=${MAX_AGE}`, `the JWKS is cached for keys.jwks_max_age (${MAX_AGE} s)`, jwksSeen[0].cc);

  const rotatedAt = now();
  const r = cli('keys', 'rotate');
  const rotatedBy = now();
  check(r.old_kid === k0 && r.kid && r.kid !== k0, '`keys rotate` while serve runs: a new key replaces the signing one', r);
  check(r.sign_from >= Math.floor(rotatedAt) + AHEAD && r.sign_from <= Math.ceil(rotatedBy) + AHEAD,
    `the new key signs ${AHEAD} s after the rotation`, { r, rotatedAt, rotatedBy });
  check(r.old_publish_until === r.sign_from + LIFETIME + MARGIN,
    'the old key stays published for the token lifetime + keys.retire_margin after it stops', r);
  const listed = cli('keys', 'list');
  check(listed.find((k) => k.kid === r.kid)?.state === 'pending' && listed.find((k) => k.kid === k0)?.state === 'signing',
    'keys list: the new key is pending, the old one signs', listed);

  // Tokens flow through the switch, until three were signed by the new key.
  await until('tokens signed by the new key', r.sign_from + 20,
    () => tokens.filter((t) => t.kids.every((k) => k === r.kid)).length >= 3);
  const firstSeen = jwksSeen.find((o) => o.kids.includes(r.kid));
  check(firstSeen && firstSeen.end <= r.sign_from - MAX_AGE,
    `the new key is in the JWKS at least max-age (${MAX_AGE} s) before it signs`, { firstSeen, sign_from: r.sign_from });
  // iat is the request's start (whole seconds), the key is chosen a moment later: a request
  // begun in the second before sign_from may be signed by the new key.
  const early = tokens.filter((t) => t.kids.includes(r.kid) && t.iat < r.sign_from - 1);
  check(early.length === 0, 'no token is signed by the new key before its sign_from', early.map((t) => t.iat));
  const late = tokens.filter((t) => t.kids.some((k) => k !== r.kid) && t.iat >= r.sign_from + 1);
  check(late.length === 0, 'from its sign_from on (1 s granularity) every token is signed by the new key',
    late.map((t) => [t.kids, t.iat]));
  check(tokens.every((t) => t.kids.every((k) => k === k0 || k === r.kid)), 'no third key signed anything');

  // A token the old key signed just before the switch still verifies after it: at both RPs
  // with the JWKS they hold, at RPs starting now, and at the server (userinfo).
  const old = tokens.filter((t) => t.kids.every((k) => k === k0)).at(-1);
  await verifyWith(parties, old, 'old token after the switch');
  await verifyWith(rps(), old, 'old token at a new RP');
  const ui = await fetch(`${bases[0]}/oidc/v1/userinfo`, { headers: { authorization: `Bearer ${old.access_token}` } });
  check(ui.status === 200, 'userinfo accepts a JWT access token of the old key after the switch', ui.status);

  // The old key leaves the JWKS when its window closes, not before; then its record goes.
  await until('the old key leaves the JWKS', r.old_publish_until + 15,
    () => jwksSeen.length && !jwksSeen.at(-1).kids.includes(k0));
  const gone = jwksSeen.find((o) => !o.kids.includes(k0));
  check(gone && gone.end >= r.old_publish_until, 'the old key is not removed from the JWKS before publish_until',
    { gone, publish_until: r.old_publish_until });
  const wrong = jwksSeen.filter((o) => o.end < r.old_publish_until && !o.kids.includes(k0));
  check(wrong.length === 0, 'every JWKS fetched before publish_until holds the old key', wrong);
  check(jwksSeen.filter((o) => o.start > firstSeen.end).every((o) => o.kids.includes(r.kid)),
    'the new key never left the JWKS once there');
  let listedAfter = [];
  const deadline = now() + 15;
  while (now() < deadline) {
    listedAfter = cli('keys', 'list');
    if (!listedAfter.some((k) => k.kid === k0)) break;
    await step();
  }
  check(!listedAfter.some((k) => k.kid === k0) && listedAfter.find((k) => k.kid === r.kid)?.state === 'signing',
    'serve deletes the expired key; the new one signs', listedAfter);
}

async function scheduled() {
  // Both servers rotate on their own (keys.rotate_every): the signer in place has signed long
  // enough, so both find the rotation due at about the same moment.
  const start = JSON.parse(env.KEYS_BEFORE); // `keys list` before the two servers started
  const signer0 = start.find((k) => k.state === 'signing')?.kid;
  const kids = () => [...new Set(tokens.flatMap((t) => t.kids))];
  let most = 0;
  const lists = [];
  const ok = await until('two scheduled rotations took effect', now() + 4 * AHEAD + 30, () => {
    const l = cli('keys', 'list');
    lists.push(l);
    most = Math.max(most, l.filter((k) => k.state === 'pending').length);
    return kids().filter((k) => k !== signer0).length >= 2;
  });
  check(ok && tokens.at(-1).kid !== signer0, 'scheduled rotation replaced the signing key, twice', kids());
  check(most === 1, 'two servers on one store never had two keys pending at once', most);
  const created = new Set(lists.flat().map((k) => k.kid).filter((k) => !start.some((s) => s.kid === k)));
  check(created.size >= 2 && created.size <= kids().length, /* the signed ones + at most one pending */
    'one new key per rotation, no duplicates', { created: [...created], signed: kids() });
  check(tokens.some((t, i) => i > 0 && t.kid !== tokens[i - 1].kid), 'tokens kept flowing across the switches');
}

try {
  if (env.MODE === 'scheduled') await scheduled();
  else await manual();
} catch (e) {
  check(false, 'the run completed', String(e.stack || e));
}
check(failures.length === 0, `zero verification failures (${verified} verifications of ${tokens.length} token pairs)`, failures.slice(0, 5));
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
