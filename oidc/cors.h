/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CORS (issue 5): the token, userinfo, introspect, revoke, JWKS and discovery endpoints answer
 * browsers of the origins a client registered: the origins of its redirect URIs and its
 * additional_origins. Authorize, the login pages and end_session never do (they are
 * navigations, not fetches).
 *
 * The allowed origins are an in-memory set rebuilt from the store (oidc_cors_reload(), run at
 * start, periodically and on SIGHUP by the server), so checking a request's Origin never
 * touches the store and can run on an event-loop thread.
 */
#ifndef OIDC_CORS_H
#define OIDC_CORS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "storage/store.h"

/* "https://" + a 255-byte host + ":65535", NUL included; longer is never an origin here. */
#define OIDC_CORS_ORIGIN_MAX 280

/* Seconds a browser may cache a preflight answer (Chromium caps this at 7200). */
#define OIDC_CORS_MAX_AGE "600"

/** What one endpoint allows cross-origin. Static strings. */
struct oidc_cors_endpoint {
    const char *path;
    size_t path_len;
    const char *methods;        /* Access-Control-Allow-Methods */
    const char *allow_headers;  /* Access-Control-Allow-Headers, or NULL */
    const char *expose_headers; /* Access-Control-Expose-Headers, or NULL */
};

/**
 * The CORS policy of the endpoint at @path (@len bytes, the normalized path without the
 * query), or NULL when that path never answers CORS. A table lookup: any thread.
 */
const struct oidc_cors_endpoint *oidc_cors_endpoint(const char *path, size_t len);

/**
 * The origin (RFC 6454 section 6.2 ASCII serialization: lower-case scheme and host, no
 * default port, no path) of @uri into @out. Only http and https URIs with a host have one a
 * browser sends: custom schemes, userinfo, wildcards in scheme, host or port (dev-mode
 * globs), non-ASCII and anything oidc_url_parse() refuses give -1. Returns the length.
 */
int oidc_cors_origin_of(const char *uri, char out[OIDC_CORS_ORIGIN_MAX]);

/** The set of allowed origins; thread-safe. */
struct oidc_cors;

/** An empty set. 0, or -E_NOMEM with @e. */
int oidc_cors_new(struct oidc_cors **ret, struct err *e);

/** Frees @c (NULL allowed). No call may be in flight. */
void oidc_cors_free(struct oidc_cors *c);

/**
 * Replaces the set with the origins of @n URIs (each through oidc_cors_origin_of(); those
 * without an origin are skipped). For tests and for oidc_cors_reload(). Any thread.
 */
int oidc_cors_set(struct oidc_cors *c, const char *const *uris, size_t n, struct err *e);

/**
 * Rebuilds the set from every active client (state 1) in @store: the origins of its
 * redirect_uris and additional_origins. Reads the store (never call it on an event loop);
 * readers keep the old set until the new one is complete. Sets *ret_n (may be NULL) to the
 * number of distinct origins. On failure the old set stays.
 */
int oidc_cors_reload(struct oidc_cors *c, struct store *store, size_t *ret_n, struct err *e);

/**
 * Whether @origin (@len bytes, the request's Origin header as sent) is in the set. Byte
 * exact: browsers send the serialization oidc_cors_origin_of() makes, so anything else (upper
 * case, a default port, a trailing slash, "null") is not allowed. No allocation, no store:
 * safe on an event loop. @c NULL allows nothing.
 */
bool oidc_cors_allowed(struct oidc_cors *c, const char *origin, size_t len);

#endif
