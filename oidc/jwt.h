/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compact JWS (RFC 7515) signing and verification for RS256 and ES256: the one module that
 * touches token signatures. Verification never trusts the token's own `alg`: the key is found
 * by `kid` through a callback, and the algorithm must be the one that key implies (libjwt
 * 1.10.2's jwt_decode trusts `alg`, so it is not used for verifying; see LIBRARIES.md).
 *
 * Everything here is a pure function of its arguments (plus OpenSSL's RNG for ES256 signing),
 * size-capped, safe to call from any thread and to fuzz.
 */
#ifndef OIDC_JWT_H
#define OIDC_JWT_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define OIDC_JWT_MAX 16384        /* bytes of a compact token we accept */
#define OIDC_JWT_HEADER_MAX 1024  /* decoded JOSE header bytes */
#define OIDC_JWT_CLAIMS_MAX 12288 /* decoded claims bytes */
#define OIDC_JWT_KID_MAX 128
#define OIDC_JWT_ALG_MAX 8 /* "RS256\0" fits, with room */

/**
 * Finds the verification key for @kid (NULL when the header has none). Fills *ret_key with a
 * new reference (jwt.c frees it) and @alg with the algorithm the key is registered for ("" to
 * let jwt.c derive it from the key type). Returns 0, or a negative code (-E_NOTFOUND for an
 * unknown kid) with @e set.
 */
typedef int (*oidc_jwt_key_cb)(const char *kid, EVP_PKEY **ret_key, char alg[OIDC_JWT_ALG_MAX],
                               void *cbdata, struct err *e);

/**
 * Signs @claims (a JSON object) as a compact JWS with header {"alg", "kid", "typ": "JWT"}.
 * @alg is "RS256" (RSA key, 2048 bits or more) or "ES256" (P-256 key); a key that does not
 * fit @alg is -E_INVALID. *ret is a new string the caller frees. -E_NOMEM, -E_INTERNAL.
 */
int oidc_jwt_sign(const json_t *claims, EVP_PKEY *key, const char *kid, const char *alg, char **ret,
                  struct err *e);

/**
 * Verifies the compact JWS @token (@len bytes): strict base64url in three segments, a JSON
 * object header of at most OIDC_JWT_HEADER_MAX bytes with no duplicate names, `alg` RS256 or
 * ES256 and equal to what the key from @key_cb implies (so `none` and HS* never verify), no
 * `crit`, `b64` or `zip`; then the signature with OpenSSL. On success *ret_header and
 * *ret_claims (may be NULL) get new references to the header and claims objects.
 * Returns 0, or -E_INVALID_TOKEN (malformed, unknown key, bad signature) with a reason in @e.
 * Time claims are not checked here: see oidc_jwt_check_time().
 */
int oidc_jwt_verify(const char *token, size_t len, oidc_jwt_key_cb key_cb, void *cbdata,
                    json_t **ret_header, json_t **ret_claims, struct err *e);

/**
 * Checks `exp` (required when @require_exp; must be after @now - @skew), `nbf` and `iat` (not
 * after @now + @skew) of verified @claims; each present one must be an integer.
 * -E_INVALID_TOKEN with a reason otherwise.
 */
int oidc_jwt_check_time(const json_t *claims, int64_t now, int64_t skew, bool require_exp,
                        struct err *e);

/**
 * The OIDC hash claim (at_hash, c_hash) of @value for @alg: base64url of the left half of its
 * SHA-256 for RS256/ES256, written into @out (22 chars + NUL). -E_INVALID for another alg.
 */
int oidc_jwt_hash_claim(const char *value, size_t len, const char *alg, char out[44],
                        struct err *e);

/**
 * The algorithm @key implies: "RS256" for an RSA key of 2048 bits or more, "ES256" for a P-256
 * key. -E_INVALID for anything else.
 */
int oidc_jwt_key_alg(EVP_PKEY *key, char alg[OIDC_JWT_ALG_MAX], struct err *e);

#endif
