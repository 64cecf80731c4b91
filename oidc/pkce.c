/* SPDX-License-Identifier: Apache-2.0 */
/* PKCE S256: shape checks for challenge and verifier, and the verification itself. */
#include "pkce.h"

#include <openssl/crypto.h>
#include <string.h>

#include "common/b64.h"
#include "common/rand.h"

bool oidc_pkce_well_formed(const char *s)
{
    size_t n = 0;
    if (!s)
        return false;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= 128)
            return false;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~'))
            return false;
    }
    return n >= 43;
}

bool oidc_pkce_verify_s256(const char *verifier, const char *challenge)
{
    unsigned char digest[32];
    char enc[44];

    if (!oidc_pkce_well_formed(verifier) || !challenge || strlen(challenge) != 43)
        return false;
    sha256_raw(verifier, strlen(verifier), digest);
    b64url_encode(digest, sizeof digest, enc);
    return CRYPTO_memcmp(enc, challenge, 43) == 0;
}
