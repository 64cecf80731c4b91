/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Browser sessions and the login cookies. The session cookie holds a random token; the store
 * keeps the Session record only under the token's SHA-256 (sess/<hex>), so a read of the
 * store never yields a usable cookie. Cookies are HttpOnly, SameSite=Lax, Path=/, and Secure
 * with the `__Host-` prefix when the issuer is https.
 */
#ifndef OIDC_SESSION_H
#define OIDC_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "oidc/http.h"
#include "oidc/oidc.h"
#include "storage/records.pb-c.h"
#include "storage/repo.h"

#define OIDC_SESSION_COOKIE "koder_session"
#define OIDC_CSRF_COOKIE "koder_csrf"

/**
 * The value of cookie @name (without the `__Host-` prefix: it is added when the issuer is
 * https) from the request's Cookie headers, copied into @out (@n bytes): the first value that is
 * a non-empty token of [A-Za-z0-9_-] shorter than @n, skipping malformed ones of the same name
 * (`sid=garbage; sid=good` gives `good`). Returns 0, or -1 when there is none.
 */
int oidc_cookie_get(const struct oidc_ctx *ctx, const struct oidc_request *req, const char *name,
                    char *out, size_t n);

/**
 * Adds a Set-Cookie header for @name=@value (a token of [A-Za-z0-9_-]) with the attributes
 * above; @max_age_s > 0 adds Max-Age, 0 makes a browser-session cookie, < 0 deletes it.
 */
int oidc_cookie_set(const struct oidc_ctx *ctx, struct oidc_response *resp, const char *name,
                    const char *value, int64_t max_age_s);

/**
 * Loads the live session named by the request's session cookie: not ended, not expired.
 * Returns 0 with *ret (caller frees with koderid__v2__session__free_unpacked), its store
 * version and key; -E_NOTFOUND when there is none; another negative code on a store failure.
 */
int oidc_session_load(struct oidc_ctx *ctx, const struct oidc_request *req,
                      Koderid__V2__Session **ret, uint64_t *ret_version, char ret_key[REPO_KEY_MAX],
                      struct err *e);

/**
 * Creates a session for @user_id signed in now with @amr, bound to @client_id, and adds its
 * cookie to @resp. Returns 0 with a copy of the record in *ret (caller frees), or a negative
 * code.
 */
int oidc_session_create(struct oidc_ctx *ctx, const char *user_id, const char *amr,
                        const char *client_id, struct oidc_response *resp,
                        Koderid__V2__Session **ret, struct err *e);

/** Adds @client_id to the session under @key (best effort: a lost race is ignored). */
void oidc_session_add_client(struct oidc_ctx *ctx, const char *key, uint64_t version,
                             const Koderid__V2__Session *s, const char *client_id);

/** Deletes the session named by the request's cookie, if any (a new login replaces it). */
void oidc_session_end_current(struct oidc_ctx *ctx, const struct oidc_request *req);

#endif
