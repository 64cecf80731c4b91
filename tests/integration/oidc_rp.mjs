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
// Each flow: discovery, an authorization URL with PKCE and nonce, the login form posted with a
// cookie jar (plain fetch; the form's hidden fields parsed), the callback, the code exchange,
// the ID token (and a JWT access token) verified against the JWKS with jose, userinfo.
// TAP lines without the plan (oidc_rp.sh adds it); exit status 0 only when every check held.
import { createServer } from 'node:http';
import * as jose from 'jose';
import * as client from 'openid-client';
import { browserLogin, check, failures } from './rp_lib.mjs';

const env = process.env;
for (const k of ['ISSUER', 'LOGIN', 'PASSWORD', 'WEB_ID', 'WEB_SECRET', 'POST_ID', 'POST_SECRET',
  'SPA_ID', 'NATIVE_ID']) {
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

// The plan is printed by oidc_rp.sh, which adds its own checks after these.
process.exit(failures() ? 1 : 0);
