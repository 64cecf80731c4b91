/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The protocol core's context and entry point. The server creates one struct oidc_ctx at start
 * and calls oidc_handle() from worker threads for every request that is not a cheap static
 * answer. Everything here is thread-safe once created.
 */
#ifndef OIDC_OIDC_H
#define OIDC_OIDC_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "oidc/http.h"
#include "oidc/jwt.h"
#include "storage/store.h"

/** Settings the protocol core needs; strings are copied by oidc_ctx_new(). */
struct oidc_config {
    const char *issuer;          /* scheme://host[:port], no path, no trailing slash */
    const char *master_key_file; /* 32 random bytes; encrypts signing keys (NULL: no keys) */
    bool create_master_key;      /* create the master key file (0600) when missing */
    int yescrypt_cost;           /* cost for password hash upgrades (default 5) */
    int hash_workers;            /* threads for expensive hash checks (default 2) */
    int hash_queue_max;          /* pending expensive checks before refusing (default 64) */
    int worker_threads;          /* the server's worker pool, when known: every pending hash
                                  * check holds a worker, so at most a quarter of them may
                                  * wait (hash_queue_max is clamped), and a login flood cannot
                                  * starve token requests */
};

/** Token lifetimes in seconds (v1 defaults 12 h, 12 h, 30 d idle, 90 d absolute). */
struct oidc_lifetimes {
    int64_t access_token;
    int64_t id_token;
    int64_t refresh_idle;
    int64_t refresh_absolute;
};

struct oidc_keys;
struct oidc_throttle;
struct oidc_hashq;
struct oidc_secret_cache;
struct oidc_cors;

struct oidc_ctx {
    struct store *store; /* borrowed; outlives the ctx */
    struct oidc_config cfg;
    bool issuer_https;
    struct oidc_lifetimes lifetimes;
    struct oidc_keys *keys;
    struct oidc_throttle *login_throttle;      /* failed logins per account ("acct:<name>") */
    struct oidc_throttle *login_addr_throttle; /* failed logins per client address */
    struct oidc_throttle *client_throttle;     /* failed client authentications */
    struct oidc_hashq *hashq;                  /* expensive hash checks (oidc/hashq.h) */
    int64_t session_lifetime;                  /* browser session, seconds (default 12 h) */
    int64_t auth_request_ttl;                  /* pending AuthRequest, seconds (10 min) */
    int64_t code_ttl;                          /* authorization code, seconds (60 s) */
    char *dummy_hash; /* verified for unknown users, so timing does not tell who exists */
    struct oidc_secret_cache *secret_cache;
    struct oidc_cors *cors; /* allowed CORS origins (oidc/cors.h), loaded from the store */
};

/**
 * Creates the context over @store: copies @cfg, loads lifetimes (settings/oidc or v1's
 * defaults), opens the signing keys, loads the allowed CORS origins. Returns 0 and *ret, or a negative code with @e.
 */
int oidc_ctx_new(const struct oidc_config *cfg, struct store *store, struct oidc_ctx **ret,
                 struct err *e);

/**
 * An oidc_jwt_key_cb over the keys this server publishes (its own and v1's imported ones),
 * for tokens it issued itself: @cbdata is the struct oidc_ctx. -E_NOTFOUND for an unknown
 * or missing kid.
 */
int oidc_ctx_own_key(const char *kid, EVP_PKEY **ret_key, char alg[OIDC_JWT_ALG_MAX], void *cbdata,
                     struct err *e);

/** Frees @ctx (NULL allowed). */
void oidc_ctx_free(struct oidc_ctx *ctx);

/**
 * Answers one request: routes by path to an endpoint and fills @resp (status, headers, body).
 * Never fails: every problem becomes the spec's error response. Any worker thread.
 */
void oidc_handle(struct oidc_ctx *ctx, const struct oidc_request *req, struct oidc_response *resp);

#endif
