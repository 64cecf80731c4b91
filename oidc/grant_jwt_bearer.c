/* SPDX-License-Identifier: Apache-2.0 */
/*
 * grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer (RFC 7523 2.1): v1's "JWT profile"
 * for machine users with a registered public key (AuthnKey under authnkey/<user id>/<kid>).
 * The assertion's iss and sub are the user id and its aud the issuer (or the token endpoint);
 * oidc/assertion.c checks signature, audience, lifetime and jti reuse. Any failure is
 * invalid_grant (RFC 7523 3.1). The token is the machine user's, as with client_credentials.
 */
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "oidc/assertion.h"
#include "oidc/grant.h"

int oidc_grant_jwt_bearer(struct oidc_ctx *ctx, const struct oidc_grant_req *g, json_t **ret_body,
                          struct err *e)
{
    const char *assertion = oidc_params_get(g->form, "assertion");
    struct err le = {0};
    int r;

    if (!assertion)
        return err_set(e, -E_INVALID_REQUEST, "assertion missing");
    if (oidc_params_get(g->form, "client_assertion") ||
        oidc_request_header(g->req, "authorization"))
        return err_set(e, -E_INVALID_REQUEST,
                       "the jwt-bearer grant authenticates by its assertion alone");
    _cleanup_free_ char *iss = NULL;
    if ((r = oidc_assertion_issuer(assertion, &iss, &le)) < 0)
        return err_set(e, -E_INVALID_GRANT, "%s", le.msg);

    _cleanup_(repo_msg_freep) Koderid__V2__User *user = NULL;
    r = repo_user_get(ctx->store, iss, &user, &le);
    if (r < 0 && r != -E_NOTFOUND)
        return err_set(e, r, "%s", le.msg);
    if (r == -E_NOTFOUND || user->type != 2)
        return err_set(e, -E_INVALID_GRANT, "assertion issuer is not a machine user");
    if (user->state != 1)
        return err_set(e, -E_INVALID_GRANT, "machine user is not active");
    r = oidc_assertion_verify(ctx, assertion, user->id, "/oauth/v2/token", false, g->now, &le);
    if (r == -E_INVALID_TOKEN)
        return err_set(e, -E_INVALID_GRANT, "%s", le.msg);
    if (r < 0)
        return err_set(e, r, "%s", le.msg);
    return oidc_issue_machine_token(ctx, user, oidc_params_get(g->form, "scope"), g->now, ret_body,
                                    e);
}
