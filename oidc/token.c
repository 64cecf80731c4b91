/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The token endpoint: request checks common to every grant, client authentication, and a
 * dispatch table from grant_type to the grant's function. A new grant is one row here plus its
 * own file; a grant whose caller is not an app client (client_credentials for machine users,
 * jwt-bearer) sets authenticates_itself and gets a NULL client.
 */
#include "token.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"
#include "oidc/clientauth.h"
#include "oidc/grant.h"
#include "oidc/respond.h"

struct oidc_grant {
    const char *grant_type;
    int client_grant_type;     /* Client.grant_types value that allows it; -1: none needed */
    bool authenticates_itself; /* the grant authenticates its caller (no app client) */
    oidc_grant_cb run;
};

static const struct oidc_grant grants[] = {
    {"authorization_code", 0, false, oidc_grant_authorization_code},
    {"refresh_token", 2, false, oidc_grant_refresh_token},
    {"client_credentials", -1, true, oidc_grant_client_credentials},
    {"urn:ietf:params:oauth:grant-type:jwt-bearer", -1, true, oidc_grant_jwt_bearer},
    {NULL, 0, false, NULL},
};

bool oidc_request_content_type_is(const struct oidc_request *req, const char *type)
{
    const char *ct = oidc_request_header(req, "content-type");
    size_t n = strlen(type);
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, type, n) != 0)
        return false;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

static bool client_has_grant(const Koderid__V2__Client *c, int grant)
{
    for (size_t i = 0; i < c->n_grant_types; i++)
        if (c->grant_types[i] == grant)
            return true;
    return false;
}

void oidc_token_endpoint(struct oidc_ctx *ctx, const struct oidc_request *req,
                         struct oidc_response *resp)
{
    _cleanup_(oidc_params_release) struct oidc_params form = {0};
    _cleanup_(oidc_client_auth_release) struct oidc_client_auth auth = {0};
    struct err e = {0};
    int r;

    if (strcmp(req->method, "POST") != 0) {
        oidc_respond_error(resp, -E_METHOD, "the token endpoint accepts POST only");
        oidc_response_header(resp, "allow", "POST");
        return;
    }
    if (req->body_len > OIDC_TOKEN_BODY_MAX) {
        oidc_respond_error(resp, -E_TOOBIG, "request body too large");
        return;
    }
    if (!oidc_request_content_type_is(req, "application/x-www-form-urlencoded")) {
        oidc_respond_error(resp, -E_INVALID_REQUEST,
                           "content type must be application/x-www-form-urlencoded");
        return;
    }
    /* Parameters (and secrets) belong in the body, never in a URL that gets logged. */
    if (req->query && req->query_len) {
        oidc_respond_error(resp, -E_INVALID_REQUEST, "parameters must be sent in the body");
        return;
    }
    if ((r = oidc_params_parse(req->body, req->body_len, &form, &e)) < 0) {
        oidc_respond_error(resp, r, e.msg);
        return;
    }

    const char *grant_type = oidc_params_get(&form, "grant_type");
    const struct oidc_grant *grant = NULL;
    if (!grant_type) {
        oidc_respond_error(resp, -E_INVALID_REQUEST, "grant_type missing");
        return;
    }
    for (const struct oidc_grant *gr = grants; gr->grant_type; gr++)
        if (strcmp(gr->grant_type, grant_type) == 0)
            grant = gr;
    if (!grant) {
        oidc_respond_error(resp, -E_UNSUPPORTED_GRANT_TYPE, "grant_type not supported");
        return;
    }

    if (!grant->authenticates_itself) {
        if (oidc_client_authenticate_endpoint(ctx, req, &form, &auth, resp) < 0)
            return;
        if (auth.client->kind != KODERID__V2__CLIENT_KIND__CLIENT_OIDC) {
            oidc_respond_error(resp, -E_UNAUTHORIZED_CLIENT, "api apps get no user tokens");
            return;
        }
        if (grant->client_grant_type >= 0 &&
            !client_has_grant(auth.client, grant->client_grant_type)) {
            oidc_respond_error(resp, -E_UNAUTHORIZED_CLIENT,
                               "grant_type not allowed for this client");
            return;
        }
    }

    struct oidc_grant_req g = {
        .req = req,
        .form = &form,
        .client = auth.client,
        .auth_method = auth.method,
        .now = store_now_ms() / 1000,
    };
    json_t *body = NULL;
    if ((r = grant->run(ctx, &g, &body, &e)) < 0) {
        oidc_respond_client_error(ctx, resp, &auth, r, e.msg);
        return;
    }
    oidc_respond_json(resp, 200, body);
    oidc_response_note(resp, "grant=%s", grant->grant_type);
}
