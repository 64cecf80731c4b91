/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /oauth/v2/introspect (RFC 7662). Tokens are validated exactly as userinfo validates them
 * (oidc_access_validate), so a revoked or expired token can never look active here while
 * failing there, or the reverse. Whatever is wrong with the token, the answer is the same
 * {"active": false}: it tells a resource server nothing it could probe with.
 */
#include "introspect.h"

#include <stdio.h>
#include <string.h>

#include "common/cleanup.h"
#include "oidc/claims.h"
#include "oidc/clientauth.h"
#include "oidc/respond.h"
#include "oidc/token.h"
#include "oidc/userinfo.h"

int oidc_form_post(const struct oidc_request *req, struct oidc_response *resp,
                   struct oidc_params *form)
{
    struct err e = {0};
    int r;
    if (strcmp(req->method, "POST") != 0) {
        oidc_respond_error(resp, -E_METHOD, "this endpoint accepts POST only");
        oidc_response_header(resp, "allow", "POST");
        return -E_METHOD;
    }
    if (req->body_len > OIDC_FORM_BODY_MAX) {
        oidc_respond_error(resp, -E_TOOBIG, "request body too large");
        return -E_TOOBIG;
    }
    if (!oidc_request_content_type_is(req, "application/x-www-form-urlencoded")) {
        oidc_respond_error(resp, -E_INVALID_REQUEST,
                           "content type must be application/x-www-form-urlencoded");
        return -E_INVALID_REQUEST;
    }
    if (req->query && req->query_len) {
        oidc_respond_error(resp, -E_INVALID_REQUEST, "parameters must be sent in the body");
        return -E_INVALID_REQUEST;
    }
    if ((r = oidc_params_parse(req->body, req->body_len, form, &e)) < 0) {
        oidc_respond_error(resp, r, e.msg);
        return r;
    }
    return 0;
}

static bool audience_allows(const json_t *aud, const Koderid__V2__Client *c)
{
    size_t i;
    const json_t *v;
    json_array_foreach (aud, i, v) {
        const char *s = json_string_value(v);
        if (s && (strcmp(s, c->client_id) == 0 ||
                  (c->project_id && *c->project_id && strcmp(s, c->project_id) == 0)))
            return true;
    }
    return false;
}

static void inactive(struct oidc_response *resp, const char *why)
{
    oidc_response_note(resp, "active=false (%s)", why);
    oidc_respond_json(resp, 200, json_pack("{s:b}", "active", 0));
}

void oidc_introspect_endpoint(struct oidc_ctx *ctx, const struct oidc_request *req,
                              struct oidc_response *resp)
{
    _cleanup_(oidc_params_release) struct oidc_params form = {0};
    _cleanup_(oidc_client_auth_release) struct oidc_client_auth auth = {0};
    _cleanup_(oidc_access_release) struct oidc_access acc = {0};
    struct err e = {0};
    int r;

    if (oidc_form_post(req, resp, &form) < 0)
        return;
    if (oidc_client_authenticate_endpoint(ctx, req, &form, &auth, resp) < 0)
        return;
    if (auth.method != OIDC_AUTH_BASIC && auth.method != OIDC_AUTH_PRIVATE_KEY_JWT) {
        oidc_respond_client_error(ctx, resp, &auth, -E_INVALID_CLIENT,
                                  "introspection needs client_secret_basic or private_key_jwt");
        return;
    }
    const char *token = oidc_params_get(&form, "token");
    if (!token) {
        oidc_respond_error(resp, -E_INVALID_REQUEST, "token missing");
        return;
    }
    int64_t now = store_now_ms() / 1000;
    r = oidc_access_validate(ctx, token, now, &acc, &e);
    if (r == -E_INVALID_TOKEN) {
        inactive(resp, e.msg);
        return;
    }
    if (r < 0) {
        oidc_respond_error(resp, -E_UNAVAILABLE, "cannot check the token now");
        return;
    }
    if (!acc.audience || !audience_allows(acc.audience, auth.client)) {
        inactive(resp, "caller not in the token's audience");
        return;
    }
    _cleanup_(repo_msg_freep) Koderid__V2__User *user = NULL;
    r = repo_user_get(ctx->store, acc.sub, &user, &e);
    if (r == -E_NOTFOUND || (r == 0 && user->state != 1)) {
        inactive(resp, "user not active");
        return;
    }
    if (r < 0) {
        oidc_respond_error(resp, -E_UNAVAILABLE, "cannot read the user now");
        return;
    }
    json_t *body = json_object();
    if (!body || oidc_claims_userinfo(user, acc.scope, body, &e) < 0) {
        json_decref(body);
        oidc_respond_error(resp, -E_NOMEM, "out of memory");
        return;
    }
    int64_t iat = acc.issued_at;
    json_object_set_new(body, "active", json_true());
    json_object_set_new(body, "scope", json_string(acc.scope));
    json_object_set_new(body, "client_id", json_string(acc.client_id ? acc.client_id : ""));
    json_object_set_new(body, "token_type", json_string("Bearer"));
    json_object_set_new(body, "exp", json_integer(acc.expires_at));
    if (iat > 0) {
        json_object_set_new(body, "iat", json_integer(iat));
        json_object_set_new(body, "nbf", json_integer(iat));
    }
    json_object_set_new(body, "sub", json_string(acc.sub));
    json_object_set(body, "aud", acc.audience);
    json_object_set_new(body, "iss", json_string(ctx->cfg.issuer));
    json_object_set_new(body, "jti", json_string(acc.jti));
    const char *login = user->login_name && *user->login_name ? user->login_name : user->username;
    if (login && *login)
        json_object_set_new(body, "username", json_string(login));
    oidc_response_note(resp, "active=true sub=%.40s", acc.sub);
    oidc_respond_json(resp, 200, body);
}
