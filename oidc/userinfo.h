/* SPDX-License-Identifier: Apache-2.0 */
/* The userinfo endpoint (/oidc/v1/userinfo, OIDC Core 5.3) and bearer token validation. */
#ifndef OIDC_USERINFO_H
#define OIDC_USERINFO_H

#include <jansson.h>
#include <stdint.h>

#include "common/err.h"
#include "oidc/http.h"
#include "oidc/oidc.h"

/** A validated access token, whichever its format. Strings owned; release it. */
struct oidc_access {
    char *jti;
    char *sub;
    char *client_id;
    char *scope;
    int64_t expires_at;
    int64_t issued_at;  /* 0 when unknown */
    json_t *audience;   /* array of strings (introspection); NULL when unknown */
};

/**
 * Validates the access token @token: a JWT is verified against our published keys (the
 * algorithm the key implies, iss = our issuer, exp/nbf, jti not deny-listed, and it must be an
 * access token, not an ID token); an opaque one is looked up by its SHA-256 (not expired, not
 * revoked, jti not deny-listed). Fills @ret (release with oidc_access_release()).
 * -E_INVALID_TOKEN with a reason, or a store error. Worker threads.
 */
int oidc_access_validate(struct oidc_ctx *ctx, const char *token, int64_t now,
                         struct oidc_access *ret, struct err *e);

void oidc_access_release(struct oidc_access *a);

/**
 * Answers userinfo: GET or POST, the bearer token in the Authorization header or in a form
 * body (RFC 6750 2.1, 2.2; never both, never in the query). Claims by the token's scope.
 * Errors carry WWW-Authenticate: Bearer (RFC 6750 3). Worker threads.
 */
void oidc_userinfo_endpoint(struct oidc_ctx *ctx, const struct oidc_request *req,
                            struct oidc_response *resp);

#endif
