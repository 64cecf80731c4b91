/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JWT assertions signed with a registered public key (AuthnKey under authnkey/<owner>/<kid>):
 * client authentication private_key_jwt (RFC 7523 section 2.2, OIDC Core 9) for OIDC and API
 * apps, and the JWT bearer grant (RFC 7523 section 2.1, v1's "JWT profile") for machine users.
 * The algorithm is pinned to the key (RS256 for RSA, ES256 for P-256; never the token's own
 * `alg`, so `none` and HMAC never verify), `iss` = `sub` = the owner, `aud` names the issuer
 * or the endpoint, `exp` is required and at most OIDC_ASSERTION_MAX_AHEAD seconds ahead, and
 * a `jti` cannot be used twice while the assertion is valid (ajti/<owner>/<jti>, created with
 * a create-only compare-and-swap).
 */
#ifndef OIDC_ASSERTION_H
#define OIDC_ASSERTION_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "oidc/oidc.h"

#define OIDC_ASSERTION_MAX_AHEAD 3600 /* seconds an assertion's exp may lie ahead */
#define OIDC_ASSERTION_SKEW 10        /* seconds of clock skew allowed */
#define OIDC_CLIENT_ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/**
 * Reads the unverified `iss` of @assertion into a new string (*ret, caller frees), to know
 * whose keys to try. Nothing about the token is trusted yet. -E_INVALID_TOKEN when malformed.
 */
int oidc_assertion_issuer(const char *assertion, char **ret, struct err *e);

/**
 * Verifies @assertion for @owner (a client_id or a machine user id): signature with one of
 * the owner's enabled, unexpired keys by `kid`, `iss` = `sub` = @owner, `aud` containing the
 * issuer or issuer + @endpoint_path, `exp` required and short, `nbf`/`iat` not in the future;
 * when @require_jti a `jti` must be present; a present `jti` is recorded and a second use is
 * refused. @now is unix seconds. -E_INVALID_TOKEN with a reason (never the token), or a
 * store error.
 */
int oidc_assertion_verify(struct oidc_ctx *ctx, const char *assertion, const char *owner,
                          const char *endpoint_path, bool require_jti, int64_t now,
                          struct err *e);

#endif
