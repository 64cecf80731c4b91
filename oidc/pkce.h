/* SPDX-License-Identifier: Apache-2.0 */
/* PKCE (RFC 7636): only S256; `plain` is refused everywhere. */
#ifndef OIDC_PKCE_H
#define OIDC_PKCE_H

#include <stdbool.h>

/**
 * Whether @s is 43 to 128 characters of the unreserved set [A-Za-z0-9-._~] (the shape of both
 * a code_challenge and a code_verifier, RFC 7636 section 4.1/4.2). NULL gives false.
 */
bool oidc_pkce_well_formed(const char *s);

/**
 * Whether @verifier is well formed and BASE64URL(SHA-256(@verifier)) equals @challenge
 * (compared in constant time). Any thread.
 */
bool oidc_pkce_verify_s256(const char *verifier, const char *challenge);

#endif
