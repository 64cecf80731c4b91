// SPDX-License-Identifier: Apache-2.0
//
// The cutover rehearsal's relying-party part: openid-client 6 signs in as v1's `root` through
// apps imported from v1 (rehearsal.sh imports the Koder inventory and starts `serve`).
// Environment:
//   ISSUER                          http://127.0.0.1:<port>
//   LOGIN, PASSWORD, OLD_PASSWORD   root's login name, current and old (must fail) password
//   SUB                             root's v1 user id
//   WEB_ID, WEB_SECRET, WEB_REDIRECT     a confidential web app (client_secret_basic)
//   SPA_ID, SPA_REDIRECT                 a public app (PKCE, no secret)
//   EMAIL                                the user's email (userinfo)
//   NATIVE_ID                            a native app registered for http://127.0.0.1/callback
// TAP lines without the plan; exit status 0 only when every check held.
import { createServer } from 'node:http';
import * as jose from 'jose';
import * as client from 'openid-client';
import { browserLogin, check, failures } from './rp_lib.mjs';

// The browser's part of a sign-in; null when the login did not send it back (refused).
async function signInAs(authUrl, redirectPrefix, password) {
  try {
    return await browserLogin(issuer, authUrl, redirectPrefix, { login: env.LOGIN, password });
  } catch (err) {
    if (err.refused) return null;
    throw err;
  }
}

const env = process.env;
// WEB_*, NATIVE_ID and OLD_PASSWORD are optional (the second run, on fresh-instance.sql, has
// only a public web app); EMAIL is the address userinfo must answer.
for (const k of ['ISSUER', 'LOGIN', 'PASSWORD', 'SUB', 'EMAIL', 'SPA_ID', 'SPA_REDIRECT']) {
  if (!env[k]) {
    console.log(`not ok - environment: ${k} is not set`);
    process.exit(2);
  }
}
const issuer = new URL(env.ISSUER);
const jwks = jose.createRemoteJWKSet(new URL('/oauth/v2/keys', issuer));

async function signIn(name, { clientId, auth, redirectUri, receive }) {
  const config = await client.discovery(issuer, clientId, undefined, auth,
    { execute: [client.allowInsecureRequests] });
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const authUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri, scope: 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256', nonce, state,
  });
  let callback = await signInAs(authUrl, redirectUri, env.PASSWORD);
  check(callback && callback.searchParams.get('state') === state && callback.searchParams.has('code'),
    `${name}: ${env.LOGIN} signs in with its current password and comes back with a code`);
  if (!callback) return;
  if (receive) callback = await receive(callback);
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state, idTokenExpected: true,
  });
  const { payload: idt } = await jose.jwtVerify(tokens.id_token, jwks, {
    issuer: env.ISSUER, audience: clientId, algorithms: ['RS256'],
  });
  check(idt.sub === env.SUB, `${name}: the ID token's sub is the user's v1 id ${env.SUB}`, JSON.stringify(idt));
  const aud = Array.isArray(idt.aud) ? idt.aud : [idt.aud];
  check(aud.includes(clientId) && idt.azp === clientId,
    `${name}: the ID token's aud holds the imported client_id ${clientId}`, JSON.stringify(idt));
  const info = await client.fetchUserInfo(config, tokens.access_token, idt.sub);
  check(info.sub === env.SUB && info.email === env.EMAIL,
    `${name}: userinfo answers the v1 user's profile`, JSON.stringify(info));
  if (!env.OLD_PASSWORD) return;

  // The old password is refused through the same app.
  const authUrl2 = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri, scope: 'openid',
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
    code_challenge_method: 'S256', nonce: client.randomNonce(), state: client.randomState(),
  });
  check(await signInAs(authUrl2, redirectUri, env.OLD_PASSWORD) === null,
    `${name}: the old password is refused`);
}

function loopback() {
  return new Promise((resolve) => {
    let pending = null;
    const srv = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('signed in');
      if (pending) pending(new URL(req.url, 'http://127.0.0.1'));
    });
    srv.listen(0, '127.0.0.1', () => {
      const port = srv.address().port;
      resolve({
        port,
        srv,
        redirectUri: `http://127.0.0.1:${port}/callback`,
        receive(url) {
          return new Promise((ok, bad) => {
            pending = (got) => ok(new URL(got.pathname + got.search, `http://127.0.0.1:${port}`));
            fetch(url).then((r) => r.text()).catch(bad);
          });
        },
      });
    });
  });
}

try {
  if (env.WEB_ID) {
    await signIn('web (client_secret_basic)', {
      clientId: env.WEB_ID, auth: client.ClientSecretBasic(env.WEB_SECRET),
      redirectUri: env.WEB_REDIRECT,
    });
  }
  await signIn(`public ${env.SPA_ID} (PKCE, no secret)`, {
    clientId: env.SPA_ID, auth: client.None(), redirectUri: env.SPA_REDIRECT,
  });
  if (env.NATIVE_ID) {
    const lb = await loopback();
    await signIn(`native (loopback port ${lb.port})`, {
      clientId: env.NATIVE_ID, auth: client.None(), redirectUri: lb.redirectUri,
      receive: lb.receive,
    });
    lb.srv.close();
  }
} catch (err) {
  check(false, 'the rehearsal ran to the end', err.stack || err);
}
process.exit(failures() ? 1 : 0);
