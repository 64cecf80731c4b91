/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The protocol core's context and its router: a table from path to endpoint function. Each
 * endpoint lives in its own file and answers with the spec's errors; nothing here knows h2o.
 */
#include "oidc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "oidc/authorize.h"
#include "oidc/clientauth.h"
#include "oidc/cors.h"
#include "oidc/endsession.h"
#include "oidc/hashq.h"
#include "oidc/introspect.h"
#include "oidc/keys.h"
#include "oidc/login.h"
#include "oidc/password.h"
#include "oidc/respond.h"
#include "oidc/throttle.h"
#include "oidc/token.h"
#include "oidc/userinfo.h"
#include "storage/repo.h"

typedef void (*oidc_endpoint_cb)(struct oidc_ctx *ctx, const struct oidc_request *req,
                                 struct oidc_response *resp);

struct oidc_route {
    const char *path;
    oidc_endpoint_cb handler;
};

/* Endpoints register here (one row each). */
static const struct oidc_route routes[] = {
    {"/oauth/v2/token", oidc_token_endpoint},
    {"/oidc/v1/userinfo", oidc_userinfo_endpoint},
    {"/oauth/v2/introspect", oidc_introspect_endpoint},
    {"/oauth/v2/revoke", oidc_revoke_endpoint},
    {"/oauth/v2/authorize", oidc_authorize_endpoint},
    {"/oidc/v1/end_session", oidc_end_session_endpoint},
    {OIDC_LOGOUT_DONE_PATH, oidc_logout_done_endpoint},
    {"/ui/login/login", oidc_login_endpoint},
    {"/ui/login", oidc_login_endpoint},
    {"/ui/login/", oidc_login_endpoint},
    {NULL, NULL},
};

/* Pending hash checks allowed: the configured maximum, but never more than a quarter of the
 * worker pool, each waiting check holding one worker. Measured with the defaults (64 workers,
 * 64 pending, yescrypt cost 8): a flood of 100 logins held every worker and a cheap request
 * waited 14-16 s; with at most 16 pending it waited 0.3 s at worst. */
static unsigned hash_queue_max(const struct oidc_config *cfg)
{
    unsigned max = cfg->hash_queue_max > 0 ? (unsigned)cfg->hash_queue_max : 64;
    if (cfg->worker_threads > 0) {
        unsigned cap = (unsigned)cfg->worker_threads / 4;
        if (cap < 1)
            cap = 1;
        if (max > cap)
            max = cap;
    }
    return max;
}

int oidc_ctx_new(const struct oidc_config *cfg, struct store *store, struct oidc_ctx **ret,
                 struct err *e)
{
    struct oidc_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return err_set(e, -E_NOMEM, "out of memory");
    ctx->store = store;
    ctx->cfg = *cfg;
    ctx->cfg.issuer = strdup(cfg->issuer ? cfg->issuer : "");
    ctx->cfg.master_key_file = cfg->master_key_file ? strdup(cfg->master_key_file) : NULL;
    ctx->issuer_https = strncmp(ctx->cfg.issuer, "https://", 8) == 0;
    ctx->lifetimes = (struct oidc_lifetimes){
        .access_token = 12 * 3600,
        .id_token = 12 * 3600,
        .refresh_idle = 30 * 86400,
        .refresh_absolute = 90 * 86400,
    };
    if (ctx->cfg.yescrypt_cost <= 0)
        ctx->cfg.yescrypt_cost = 5;
    if (!ctx->cfg.issuer || (cfg->master_key_file && !ctx->cfg.master_key_file)) {
        oidc_ctx_free(ctx);
        return err_set(e, -E_NOMEM, "out of memory");
    }
    /* Accounts: 5 free failures, then 1 s doubling to 15 min. Addresses: many users may share
     * one (a NAT, an office), so 20 free failures and a 5 min cap. */
    struct oidc_throttle_config acct = {.free_failures = 5, .max_delay_ms = 15 * 60 * 1000};
    struct oidc_throttle_config addr = {.free_failures = 20, .max_delay_ms = 5 * 60 * 1000};
    struct oidc_throttle_config client = {.free_failures = 5, .max_delay_ms = 15 * 60 * 1000};
    int r;
    if ((r = oidc_throttle_new(&acct, &ctx->login_throttle, e)) < 0 ||
        (r = oidc_throttle_new(&addr, &ctx->login_addr_throttle, e)) < 0 ||
        (r = oidc_throttle_new(&client, &ctx->client_throttle, e)) < 0 ||
        (r = oidc_hashq_new((unsigned)(cfg->hash_workers > 0 ? cfg->hash_workers : 2),
                            hash_queue_max(cfg), &ctx->hashq, e)) < 0 ||
        (r = oidc_secret_cache_new(0, &ctx->secret_cache, e)) < 0 ||
        (r = oidc_cors_new(&ctx->cors, e)) < 0 ||
        (store && (r = oidc_cors_reload(ctx->cors, store, NULL, e)) < 0)) {
        oidc_ctx_free(ctx);
        return r;
    }
    ctx->session_lifetime = 12 * 3600;
    ctx->auth_request_ttl = 600;
    ctx->code_ttl = 60;
    if ((r = oidc_password_hash("not a password", ctx->cfg.yescrypt_cost, &ctx->dummy_hash, e)) <
        0) {
        oidc_ctx_free(ctx);
        return r;
    }
    Koderid__V2__OidcSettings *st = NULL;
    if (store && repo_get(store, "settings/oidc", &koderid__v2__oidc_settings__descriptor,
                          (ProtobufCMessage **)&st, NULL, NULL) == 0) {
        if (st->access_token_lifetime > 0)
            ctx->lifetimes.access_token = st->access_token_lifetime;
        if (st->id_token_lifetime > 0)
            ctx->lifetimes.id_token = st->id_token_lifetime;
        if (st->refresh_token_idle_expiration > 0)
            ctx->lifetimes.refresh_idle = st->refresh_token_idle_expiration;
        if (st->refresh_token_expiration > 0)
            ctx->lifetimes.refresh_absolute = st->refresh_token_expiration;
        koderid__v2__oidc_settings__free_unpacked(st, NULL);
    }
    /* Without a master key file there are no signing keys (unit tests of endpoints that do
     * not sign); the server always configures one. */
    if (store && ctx->cfg.master_key_file) {
        r = oidc_keys_open(store, ctx->cfg.master_key_file, cfg->create_master_key, &ctx->keys, e);
        if (r < 0) {
            oidc_ctx_free(ctx);
            return r;
        }
    }
    *ret = ctx;
    return 0;
}

int oidc_ctx_own_key(const char *kid, EVP_PKEY **ret_key, char alg[OIDC_JWT_ALG_MAX], void *cbdata,
                     struct err *e)
{
    struct oidc_ctx *ctx = cbdata;
    char a[8] = "";
    if (!kid)
        return err_set(e, -E_NOTFOUND, "token without kid");
    if (!ctx->keys)
        return err_set(e, -E_NOTFOUND, "no keys");
    int r = oidc_keys_public(ctx->keys, kid, ret_key, a, e);
    if (r < 0)
        return r;
    snprintf(alg, OIDC_JWT_ALG_MAX, "%s", a);
    return 0;
}

void oidc_ctx_free(struct oidc_ctx *ctx)
{
    if (!ctx)
        return;
    oidc_keys_free(ctx->keys);
    oidc_cors_free(ctx->cors);
    oidc_hashq_free(ctx->hashq);
    oidc_secret_cache_free(ctx->secret_cache);
    oidc_throttle_free(ctx->login_throttle);
    oidc_throttle_free(ctx->login_addr_throttle);
    oidc_throttle_free(ctx->client_throttle);
    free(ctx->dummy_hash);
    free((char *)ctx->cfg.issuer);
    free((char *)ctx->cfg.master_key_file);
    free(ctx);
}

void oidc_handle(struct oidc_ctx *ctx, const struct oidc_request *req, struct oidc_response *resp)
{
    for (const struct oidc_route *r = routes; r->path; r++)
        if (strcmp(r->path, req->path) == 0) {
            r->handler(ctx, req, resp);
            return;
        }
    oidc_respond_error(resp, -E_NOTFOUND, "no such endpoint");
}
