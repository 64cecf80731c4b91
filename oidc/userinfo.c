/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Userinfo and access token validation. Opaque tokens are looked up by hash; JWT access tokens
 * are verified with oidc/jwt.c against our keys only. An ID token is never accepted as an
 * access token: ours always carry azp, access tokens never do, and access tokens always carry
 * jti and scope.
 */
#include "userinfo.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"
#include "common/rand.h"
#include "oidc/claims.h"
#include "oidc/grant.h"
#include "oidc/jwt.h"
#include "oidc/keys.h"
#include "oidc/params.h"
#include "oidc/respond.h"
#include "oidc/token.h"

#define USERINFO_BODY_MAX (32 * 1024)

void oidc_access_release(struct oidc_access *a)
{
    free(a->jti);
    free(a->sub);
    free(a->client_id);
    free(a->scope);
    json_decref(a->audience);
    memset(a, 0, sizeof *a);
}

static char *str_claim(const json_t *claims, const char *name)
{
    const json_t *j = json_object_get(claims, name);
    return json_is_string(j) ? strdup(json_string_value(j)) : NULL;
}

static int validate_jwt(struct oidc_ctx *ctx, const char *token, int64_t now,
                        struct oidc_access *ret, struct err *e)
{
    _cleanup_(json_decrefp) json_t *claims = NULL;
    int r = oidc_jwt_verify(token, strlen(token), oidc_ctx_own_key, ctx, NULL, &claims, e);
    if (r < 0)
        return r;
    const json_t *iss = json_object_get(claims, "iss");
    if (!json_is_string(iss) || strcmp(json_string_value(iss), ctx->cfg.issuer) != 0)
        return err_set(e, -E_INVALID_TOKEN, "token from another issuer");
    if ((r = oidc_jwt_check_time(claims, now, 5, true, e)) < 0)
        return r;
    if (json_object_get(claims, "azp") || json_object_get(claims, "nonce") ||
        json_object_get(claims, "at_hash"))
        return err_set(e, -E_INVALID_TOKEN, "an id token is not an access token");
    struct oidc_access a = {
        .jti = str_claim(claims, "jti"),
        .sub = str_claim(claims, "sub"),
        .client_id = str_claim(claims, "client_id"),
        .scope = str_claim(claims, "scope"),
        .expires_at = json_integer_value(json_object_get(claims, "exp")),
        .issued_at = json_integer_value(json_object_get(claims, "iat")),
    };
    const json_t *aud = json_object_get(claims, "aud");
    if (json_is_string(aud))
        a.audience = json_pack("[O]", aud);
    else if (json_is_array(aud))
        a.audience = json_incref((json_t *)aud);
    if (!a.jti || !a.sub || !a.scope || !*a.jti || !*a.sub) {
        oidc_access_release(&a);
        return err_set(e, -E_INVALID_TOKEN, "not an access token");
    }
    if (oidc_jti_denied(ctx, a.jti)) {
        oidc_access_release(&a);
        return err_set(e, -E_INVALID_TOKEN, "token revoked");
    }
    *ret = a;
    return 0;
}

static int validate_opaque(struct oidc_ctx *ctx, const char *token, int64_t now,
                           struct oidc_access *ret, struct err *e)
{
    char hash[65], key[REPO_KEY_MAX];
    sha256_hex(token, strlen(token), hash);
    repo_key(key, "at/%s", hash);
    Koderid__V2__AccessToken *at = NULL;
    struct err ge = {0};
    int r = repo_get(ctx->store, key, &koderid__v2__access_token__descriptor,
                     (ProtobufCMessage **)&at, NULL, &ge);
    if (r == -E_NOTFOUND)
        return err_set(e, -E_INVALID_TOKEN, "token unknown or expired");
    if (r < 0)
        return err_set(e, r, "%s", ge.msg);
    r = 0;
    if (at->revoked)
        r = err_set(e, -E_INVALID_TOKEN, "token revoked");
    else if (at->expires_at <= now)
        r = err_set(e, -E_INVALID_TOKEN, "token expired");
    else if (oidc_jti_denied(ctx, at->jti))
        r = err_set(e, -E_INVALID_TOKEN, "token revoked");
    if (r == 0) {
        ret->jti = strdup(at->jti);
        ret->sub = strdup(at->user_id);
        ret->client_id = strdup(at->client_id);
        ret->scope = strdup(at->scope);
        ret->expires_at = at->expires_at;
        ret->issued_at = at->issued_at;
        ret->audience = json_array();
        for (size_t i = 0; ret->audience && i < at->n_audience; i++)
            json_array_append_new(ret->audience, json_string(at->audience[i]));
        if (!ret->jti || !ret->sub || !ret->client_id || !ret->scope) {
            oidc_access_release(ret);
            r = err_set(e, -E_NOMEM, "out of memory");
        }
    }
    koderid__v2__access_token__free_unpacked(at, NULL);
    return r;
}

int oidc_access_validate(struct oidc_ctx *ctx, const char *token, int64_t now,
                         struct oidc_access *ret, struct err *e)
{
    memset(ret, 0, sizeof *ret);
    if (!token || !*token)
        return err_set(e, -E_INVALID_TOKEN, "empty token");
    if (strlen(token) > OIDC_JWT_MAX)
        return err_set(e, -E_INVALID_TOKEN, "token too large");
    if (strchr(token, '.'))
        return validate_jwt(ctx, token, now, ret, e);
    if (strlen(token) > OIDC_TOKEN_MAX)
        return err_set(e, -E_INVALID_TOKEN, "token unknown or expired");
    return validate_opaque(ctx, token, now, ret, e);
}

/* An RFC 6750 section 3 error: the JSON body, and the challenge in WWW-Authenticate. */
static void bearer_error(struct oidc_ctx *ctx, struct oidc_response *resp, int code,
                         const char *desc, const char *scope)
{
    char v[512];
    size_t o = 0;
    o += (size_t)snprintf(v, sizeof v, "Bearer realm=\"");
    for (const char *p = ctx->cfg.issuer; *p && o + 2 < sizeof v; p++)
        if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
            v[o++] = *p;
    if (code) {
        o += (size_t)snprintf(v + o, sizeof v - o, "\", error=\"%s", err_oauth(code));
        if (desc && *desc && o < sizeof v) {
            o += (size_t)snprintf(v + o, sizeof v - o, "\", error_description=\"");
            for (const char *p = desc; *p && o + 2 < sizeof v; p++)
                if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20 &&
                    (unsigned char)*p < 0x7f)
                    v[o++] = *p;
        }
        if (scope && o < sizeof v)
            o += (size_t)snprintf(v + o, sizeof v - o, "\", scope=\"%s", scope);
    }
    if (o + 2 > sizeof v)
        o = sizeof v - 2;
    v[o++] = '"';
    v[o] = '\0';
    if (code) {
        oidc_respond_error(resp, code, desc);
    } else {
        /* No credentials at all: 401 without an error code (RFC 6750 3.1). */
        oidc_response_body(resp, 401, NULL, NULL, 0);
        oidc_response_header(resp, "cache-control", "no-store");
    }
    oidc_response_header(resp, "www-authenticate", v);
}

void oidc_userinfo_endpoint(struct oidc_ctx *ctx, const struct oidc_request *req,
                            struct oidc_response *resp)
{
    _cleanup_(oidc_params_release) struct oidc_params form = {0};
    _cleanup_(oidc_params_release) struct oidc_params query = {0};
    _cleanup_(oidc_access_release) struct oidc_access acc = {0};
    struct err e = {0};
    const char *token = NULL;
    int r;

    bool is_post = strcmp(req->method, "POST") == 0;
    if (!is_post && strcmp(req->method, "GET") != 0) {
        oidc_respond_error(resp, -E_METHOD, "userinfo accepts GET and POST");
        oidc_response_header(resp, "allow", "GET, POST");
        return;
    }
    if ((r = oidc_params_parse(req->query, req->query ? req->query_len : 0, &query, &e)) < 0) {
        bearer_error(ctx, resp, -E_INVALID_REQUEST, e.msg, NULL);
        return;
    }
    if (oidc_params_get(&query, "access_token")) {
        bearer_error(ctx, resp, -E_INVALID_REQUEST, "access_token in the query is not accepted",
                     NULL);
        return;
    }
    const char *authz = oidc_request_header(req, "authorization");
    if (authz) {
        if (strncasecmp(authz, "bearer", 6) != 0 || (authz[6] != ' ' && authz[6] != '\t')) {
            bearer_error(ctx, resp, -E_INVALID_REQUEST, "authorization scheme must be Bearer",
                         NULL);
            return;
        }
        token = authz + 7;
        while (*token == ' ' || *token == '\t')
            token++;
    }
    if (is_post && req->body_len > 0 &&
        oidc_request_content_type_is(req, "application/x-www-form-urlencoded")) {
        if (req->body_len > USERINFO_BODY_MAX) {
            bearer_error(ctx, resp, -E_INVALID_REQUEST, "request body too large", NULL);
            return;
        }
        if ((r = oidc_params_parse(req->body, req->body_len, &form, &e)) < 0) {
            bearer_error(ctx, resp, -E_INVALID_REQUEST, e.msg, NULL);
            return;
        }
        const char *body_token = oidc_params_get(&form, "access_token");
        if (body_token && token) {
            bearer_error(ctx, resp, -E_INVALID_REQUEST, "access token given in more than one way",
                         NULL);
            return;
        }
        if (body_token)
            token = body_token;
    }
    if (!token || !*token) {
        bearer_error(ctx, resp, 0, NULL, NULL);
        return;
    }

    int64_t now = store_now_ms() / 1000;
    if ((r = oidc_access_validate(ctx, token, now, &acc, &e)) < 0) {
        if (r == -E_INVALID_TOKEN)
            bearer_error(ctx, resp, r, e.msg, NULL);
        else
            oidc_respond_error(resp, r, "cannot check the token now");
        return;
    }
    oidc_response_note(resp, "client=%.80s sub=%.40s", acc.client_id ? acc.client_id : "", acc.sub);
    if (!oidc_scope_has(acc.scope, "openid")) {
        bearer_error(ctx, resp, -E_INSUFFICIENT_SCOPE, "the token lacks the openid scope",
                     "openid");
        return;
    }
    _cleanup_(repo_msg_freep) Koderid__V2__User *user = NULL;
    r = repo_user_get(ctx->store, acc.sub, &user, &e);
    if (r == -E_NOTFOUND || (r == 0 && user->state != 1)) {
        bearer_error(ctx, resp, -E_INVALID_TOKEN, "the token's user is not active", NULL);
        return;
    }
    if (r < 0) {
        oidc_respond_error(resp, r, "cannot read the user now");
        return;
    }
    json_t *body = json_object();
    if (!body || oidc_claims_userinfo(user, acc.scope, body, &e) < 0) {
        json_decref(body);
        oidc_respond_error(resp, -E_NOMEM, "out of memory");
        return;
    }
    /* v1's Zitadel claims (roles, resource owner, org) need the token's client and audience. */
    Koderid__V2__Client *client = NULL;
    json_t *aud = NULL;
    r = acc.client_id && *acc.client_id ? repo_client_get(ctx->store, acc.client_id, &client, &e)
                                        : -E_NOTFOUND;
    if (r == 0 && (r = oidc_claims_audience(ctx->store, client, acc.scope, &aud, &e)) == 0)
        r = oidc_claims_zitadel(ctx->store, client, user, acc.scope, aud, OIDC_CLAIMS_USERINFO,
                                body, &e);
    json_decref(aud);
    if (client)
        koderid__v2__client__free_unpacked(client, NULL);
    if (r < 0 && r != -E_NOTFOUND) {
        json_decref(body);
        oidc_respond_error(resp, r, "cannot read the user's claims now");
        return;
    }
    oidc_respond_json(resp, 200, body);
}
