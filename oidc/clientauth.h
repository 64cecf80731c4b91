/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Client authentication at the token, introspection and revocation endpoints: RFC 6749 section
 * 2.3.1 client_secret_basic and client_secret_post, `none` for public clients, and
 * private_key_jwt (RFC 7523 2.2, checked by oidc/assertion.c). A client
 * uses only the method it is registered with (Client.auth_method). Secrets are checked with
 * libxcrypt against v1's hashes; a verified secret is remembered briefly (keyed hash), failures
 * are throttled per client.
 */
#ifndef OIDC_CLIENTAUTH_H
#define OIDC_CLIENTAUTH_H

#include <stdbool.h>

#include "common/err.h"
#include "oidc/http.h"
#include "oidc/oidc.h"
#include "oidc/params.h"
#include "storage/repo.h"

/* Client.auth_method values (v1's OIDCAuthMethodType). */
enum oidc_auth_method {
    OIDC_AUTH_BASIC = 0,
    OIDC_AUTH_POST = 1,
    OIDC_AUTH_NONE = 2,
    OIDC_AUTH_PRIVATE_KEY_JWT = 3,
};

#define OIDC_BASIC_HEADER_MAX 4096 /* bytes of an Authorization: Basic value */
#define OIDC_SECRET_CACHE_TTL_MS (5 * 60 * 1000)
#define OIDC_SECRET_QUEUE_WAIT_MS 5000 /* longest wait for a slot in the hash queue */

/** The outcome of oidc_client_authenticate(). */
struct oidc_client_auth {
    Koderid__V2__Client *client; /* the authenticated client (owned); NULL until success */
    int method;                  /* enum oidc_auth_method the request used */
    bool used_basic;             /* a Basic header was presented (set even on failure) */
};

/**
 * Authenticates the client of a token-endpoint request: from the Authorization header of @req
 * and the form @form. Exactly one method may be used; it must be the client's registered one;
 * the client must be active. On success fills @ret (release with oidc_client_auth_release()).
 * Errors: -E_INVALID_REQUEST (two methods, mismatching client_id, malformed header),
 * -E_INVALID_CLIENT (unknown client, wrong secret, wrong method, inactive, throttled), store
 * errors. ret->used_basic is set in every case so the caller can answer with
 * WWW-Authenticate (oidc_respond_client_error()). Worker threads.
 */
int oidc_client_authenticate(struct oidc_ctx *ctx, const struct oidc_request *req,
                             const struct oidc_params *form, struct oidc_client_auth *ret,
                             struct err *e);

/** Frees what @a holds and zeroes it. */
void oidc_client_auth_release(struct oidc_client_auth *a);

/**
 * oidc_client_authenticate() for an endpoint: on failure answers @resp with
 * oidc_respond_client_error() and returns the negative code; on success notes the client in
 * the access log and returns 0.
 */
int oidc_client_authenticate_endpoint(struct oidc_ctx *ctx, const struct oidc_request *req,
                                      const struct oidc_params *form, struct oidc_client_auth *ret,
                                      struct oidc_response *resp);

/**
 * The error answer for a request whose client authentication (or anything after it) failed:
 * RFC 6749 5.2's body; an invalid_client after a Basic attempt is 401 with
 * `WWW-Authenticate: Basic realm="<issuer>"`.
 */
void oidc_respond_client_error(struct oidc_ctx *ctx, struct oidc_response *resp,
                               const struct oidc_client_auth *a, int code, const char *desc);

/**
 * Parses an Authorization header value "Basic <base64>" (scheme case-insensitive; strict,
 * padded base64) whose decoded text is "<client_id>:<secret>", each form-urlencoded (RFC 6749
 * 2.3.1). *ret_id and *ret_secret are new strings (caller frees; wipe the secret). Returns 0,
 * -E_NOTFOUND when the header is not a Basic one, -E_INVALID_REQUEST when it is malformed.
 */
int oidc_basic_parse(const char *value, char **ret_id, char **ret_secret, struct err *e);

/**
 * Verifies @secret against the crypt(3) hash @hash (bcrypt $2a$/$2b$/$2y$ cost 4..14, or
 * yescrypt $y$) for @subject (a client_id or machine user id). A success is remembered in
 * ctx's secret cache for OIDC_SECRET_CACHE_TTL_MS under an HMAC (per-process random key) of
 * subject, secret and hash, so a changed hash misses at once; failures are never remembered.
 * Sets *ret_cached (may be NULL) when the cache answered. An expensive hash runs on ctx's hash
 * queue. -E_INVALID_CLIENT on mismatch or an unsupported hash; -E_UNAVAILABLE when the queue
 * is full. Worker threads (a bcrypt check at cost 14 takes most of a second).
 */
int oidc_secret_verify(struct oidc_ctx *ctx, const char *subject, const char *secret,
                       const char *hash, bool *ret_cached, struct err *e);

/**
 * Whether a success for (@subject, @secret, @hash) is remembered now: a cheap check that runs
 * no hash, for callers that consult a throttle before paying for oidc_secret_verify().
 */
bool oidc_secret_cached(struct oidc_ctx *ctx, const char *subject, const char *secret,
                        const char *hash);

/** Creates the secret cache (@slots entries; 0 = 4096). */
int oidc_secret_cache_new(unsigned slots, struct oidc_secret_cache **ret, struct err *e);

/** Frees @c (NULL allowed), wiping it. */
void oidc_secret_cache_free(struct oidc_secret_cache *c);

/* v1's SystemDefaults.SecretHasher: bcrypt cost 4 (../shared/ZITADEL.md 2.1). */
#define OIDC_SECRET_BCRYPT_COST 4

/**
 * After a successful check of @secret against @c's secret hash: when that hash is bcrypt above
 * OIDC_SECRET_BCRYPT_COST (v1's legacy secrets, cost up to 14), replaces it with a bcrypt hash
 * at that cost, as v1 does, with a compare-and-swap on the client record (a concurrent secret
 * change wins). Best effort: failures are logged, never returned. secret_rehash.c.
 */
void oidc_secret_rehash_client(struct oidc_ctx *ctx, const Koderid__V2__Client *c,
                               const char *secret);

/** The same for a machine user's secret (User.secret_hash). */
void oidc_secret_rehash_user(struct oidc_ctx *ctx, const Koderid__V2__User *u, const char *secret);

/** Whether @hash is bcrypt at a cost above OIDC_SECRET_BCRYPT_COST. */
bool oidc_secret_needs_rehash(const char *hash);

#endif
