/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /oauth/v2/revoke (RFC 7009). A refresh token revokes its whole family (every token rotated
 * from the same grant); an access token goes on the deny-list (deny/<jti>) until it expires,
 * which both JWT and opaque validation consult. The hint only orders the search (2.1: "MUST
 * extend its search across all of its supported token types"). Revoking another client's
 * token is refused, not silently ignored: RFC 7009 2.1 says the server "verifies whether the
 * token was issued to the client making the revocation request. If this validation fails, the
 * request is refused and the client is informed of the error".
 */
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/rand.h"
#include "oidc/clientauth.h"
#include "oidc/grant.h"
#include "oidc/introspect.h"
#include "oidc/respond.h"
#include "oidc/userinfo.h"

enum found { NOT_FOUND, REVOKED, OTHER_CLIENT, FAILED };

static enum found revoke_refresh(struct oidc_ctx *ctx, const char *token, const char *client_id,
                                 struct err *e)
{
    char hash[65], key[REPO_KEY_MAX];
    if (strlen(token) > OIDC_TOKEN_MAX)
        return NOT_FOUND;
    sha256_hex(token, strlen(token), hash);
    repo_key(key, "rt/%s", hash);
    Koderid__V2__RefreshToken *rt = NULL;
    int r = repo_get(ctx->store, key, &koderid__v2__refresh_token__descriptor,
                     (ProtobufCMessage **)&rt, NULL, e);
    if (r == -E_NOTFOUND)
        return NOT_FOUND;
    if (r < 0)
        return FAILED;
    enum found f = REVOKED;
    if (strcmp(rt->client_id, client_id) != 0)
        f = OTHER_CLIENT;
    else if (oidc_revoke_family(ctx, rt->family_id, rt->client_id, rt->user_id, e) < 0)
        f = FAILED;
    koderid__v2__refresh_token__free_unpacked(rt, NULL);
    return f;
}

static enum found revoke_access(struct oidc_ctx *ctx, const char *token, const char *client_id,
                                struct err *e)
{
    _cleanup_(oidc_access_release) struct oidc_access acc = {0};
    struct err ve = {0};
    int r = oidc_access_validate(ctx, token, store_now_ms() / 1000, &acc, &ve);
    if (r == -E_INVALID_TOKEN)
        return NOT_FOUND; /* unknown, expired, already revoked: nothing to do */
    if (r < 0) {
        err_set(e, r, "%s", ve.msg);
        return FAILED;
    }
    if (!acc.client_id || strcmp(acc.client_id, client_id) != 0)
        return OTHER_CLIENT;
    return oidc_deny_jti(ctx, acc.jti, acc.client_id, acc.expires_at, e) < 0 ? FAILED : REVOKED;
}

void oidc_revoke_endpoint(struct oidc_ctx *ctx, const struct oidc_request *req,
                          struct oidc_response *resp)
{
    _cleanup_(oidc_params_release) struct oidc_params form = {0};
    _cleanup_(oidc_client_auth_release) struct oidc_client_auth auth = {0};
    struct err e = {0};

    if (oidc_form_post(req, resp, &form) < 0)
        return;
    if (oidc_client_authenticate_endpoint(ctx, req, &form, &auth, resp) < 0)
        return;
    const char *client_id = auth.client->client_id;
    const char *token = oidc_params_get(&form, "token");
    const char *hint = oidc_params_get(&form, "token_type_hint");
    if (!token) {
        oidc_respond_error(resp, -E_INVALID_REQUEST, "token missing");
        return;
    }
    bool refresh_first = false;
    if (hint) {
        if (strcmp(hint, "refresh_token") == 0)
            refresh_first = true;
        else if (strcmp(hint, "access_token") != 0) {
            oidc_respond_error(resp, -E_UNSUPPORTED_TOKEN_TYPE,
                               "token_type_hint must be access_token or refresh_token");
            return;
        }
    }
    /* A JWT is never a refresh token, and ours never hold a dot otherwise. */
    enum found f = NOT_FOUND;
    if (refresh_first)
        f = revoke_refresh(ctx, token, client_id, &e);
    if (f == NOT_FOUND)
        f = revoke_access(ctx, token, client_id, &e);
    if (f == NOT_FOUND && !refresh_first)
        f = revoke_refresh(ctx, token, client_id, &e);
    switch (f) {
    case FAILED:
        oidc_respond_error(resp, -E_UNAVAILABLE, "cannot revoke now");
        return;
    case OTHER_CLIENT:
        oidc_respond_error(resp, -E_INVALID_REQUEST, "the token was not issued to this client");
        return;
    case REVOKED:
        oidc_response_note(resp, "revoked");
        break;
    case NOT_FOUND:
        oidc_response_note(resp, "unknown token");
        break;
    }
    oidc_response_body(resp, 200, NULL, NULL, 0);
    oidc_response_header(resp, "cache-control", "no-store");
    oidc_response_header(resp, "pragma", "no-cache");
}
