// node-oidc-provider as the reference of bench/grants.sh: client_credentials with
// client_secret_basic, the access token a JWT (RS256) or opaque as the second argument says.
// Its defaults stay: the in-memory adapter (no store written to disk), plain secret
// comparison (no hash), no access log. Usage: node server.mjs PORT jwt|opaque
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, format] = process.argv.slice(2);
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' };
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'svc', client_secret: 'machine-secret', grant_types: ['client_credentials'],
    redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  scopes: ['api'],
  features: {
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:bench:api',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'api', audience: 'urn:bench:api', accessTokenFormat: format,
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});
provider.listen(Number(port), '127.0.0.1');
