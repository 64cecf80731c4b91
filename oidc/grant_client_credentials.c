/* SPDX-License-Identifier: Apache-2.0 */
/*
 * grant_type=client_credentials for machine users (v1's internal/api/oidc/
 * client_credentials.go): the client_id is the machine user's username or any of its login
 * names (repo_user_by_login), the secret is checked against User.secret_hash with the secret
 * cache and the per-caller throttle, and the access token is opaque or a JWT per
 * User.access_token_type. No ID token, no refresh token; `sub` is the machine user's id.
 * Also the issuance shared with the JWT bearer grant (grant_jwt_bearer.c).
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/rand.h"
#include "oidc/claims.h"
#include "oidc/clientauth.h"
#include "oidc/grant.h"
#include "oidc/throttle.h"

int oidc_issue_machine_token(struct oidc_ctx *ctx, const Koderid__V2__User *user,
                             const char *scope_param, int64_t now, json_t **ret_body, struct err *e)
{
    int r;
    _cleanup_free_ char *scope =
        oidc_scope_without(scope_param ? scope_param : "", "offline_access");
    if (!scope)
        return err_set(e, -E_NOMEM, "out of memory");
    /* The token's client is the machine user itself (v1: client_id = its username). */
    Koderid__V2__Client self = KODERID__V2__CLIENT__INIT;
    self.client_id = user->username && *user->username ? user->username : user->id;
    self.access_token_type = user->access_token_type == 1 ? 1 : 0;
    /* No project: aud = the projects its aud scopes name, and its client_id (v1's fallback). */
    _cleanup_(json_decrefp) json_t *aud = NULL;
    if ((r = oidc_claims_audience(ctx->store, &self, scope, &aud, e)) < 0)
        return r;
    char jti[21];
    id_new(jti);
    struct oidc_issue in = {
        .client = &self,
        .user = user,
        .scope = scope,
        .audience = aud,
        .jti = jti,
        .family_id = "",
        .now = now,
        .at_expires_at = now + ctx->lifetimes.access_token,
    };
    _cleanup_(wipe_freep) char *access_token = NULL;
    if ((r = oidc_issue_access_token(ctx, &in, &access_token, e)) < 0)
        return r;
    json_t *body = oidc_token_response(&in, access_token, NULL, NULL);
    if (!body)
        return err_set(e, -E_NOMEM, "out of memory");
    *ret_body = body;
    return 0;
}

int oidc_grant_client_credentials(struct oidc_ctx *ctx, const struct oidc_grant_req *g,
                                  json_t **ret_body, struct err *e)
{
    _cleanup_free_ char *basic_id = NULL;
    _cleanup_(wipe_freep) char *basic_secret = NULL;
    const char *authz = oidc_request_header(g->req, "authorization");
    struct err le = {0};
    int r;

    if (authz) {
        r = oidc_basic_parse(authz, &basic_id, &basic_secret, e);
        if (r == -E_INVALID_REQUEST)
            return err_set(e, -E_INVALID_CLIENT, "%s", e->msg);
    }
    const char *form_id = oidc_params_get(g->form, "client_id");
    const char *form_secret = oidc_params_get(g->form, "client_secret");
    if (oidc_params_get(g->form, "client_assertion"))
        return err_set(e, -E_INVALID_CLIENT,
                       "machine users authenticate with a secret here; use the jwt-bearer "
                       "grant for keys");
    if (basic_id && form_secret)
        return err_set(e, -E_INVALID_REQUEST, "more than one client authentication method");
    if (basic_id && form_id && strcmp(form_id, basic_id) != 0)
        return err_set(e, -E_INVALID_REQUEST, "client_id differs from the authenticated one");
    const char *id = basic_id ? basic_id : form_id;
    const char *secret = basic_id ? basic_secret : form_secret;
    if (!id || !secret)
        return err_set(e, -E_INVALID_CLIENT, "client_id and client_secret required");

    _cleanup_(repo_msg_freep) Koderid__V2__User *user = NULL;
    r = repo_user_by_login(ctx->store, id, &user, &le);
    if (r < 0 && r != -E_NOTFOUND)
        return err_set(e, r, "%s", le.msg);
    if (r == -E_NOTFOUND || user->type != 2)
        return err_set(e, -E_INVALID_CLIENT, "no machine user '%.80s'", id);
    if (user->state != 1)
        return err_set(e, -E_INVALID_CLIENT, "machine user '%.80s' is not active", id);

    /* As for app clients (clientauth.c): a remembered success answers before the throttle,
     * anything else meets the throttle before it may cost a hash check. */
    char tkey[200];
    snprintf(tkey, sizeof tkey, "user:%s", user->id);
    if (!oidc_secret_cached(ctx, user->id, secret, user->secret_hash)) {
        int64_t tnow = oidc_throttle_now_ms(), retry = 0;
        if (ctx->client_throttle && !oidc_throttle_check(ctx->client_throttle, tkey, tnow, &retry))
            return err_set(e, -E_INVALID_CLIENT,
                           "machine user '%.80s': too many failed attempts, retry in %lld s", id,
                           (long long)(retry + 999) / 1000);
        r = oidc_secret_verify(ctx, user->id, secret, user->secret_hash, NULL, &le);
        if (r == -E_INVALID_CLIENT) {
            if (ctx->client_throttle)
                oidc_throttle_failure(ctx->client_throttle, tkey, oidc_throttle_now_ms());
            return err_set(e, r, "machine user '%.80s': %s", id, le.msg);
        }
        if (r < 0)
            return err_set(e, r, "%s", le.msg);
        if (ctx->client_throttle)
            oidc_throttle_success(ctx->client_throttle, tkey);
    }
    oidc_secret_rehash_user(ctx, user, secret);

    return oidc_issue_machine_token(ctx, user, oidc_params_get(g->form, "scope"), g->now, ret_body,
                                    e);
}
