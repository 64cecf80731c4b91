/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token introspection (/oauth/v2/introspect, RFC 7662) and revocation (/oauth/v2/revoke,
 * RFC 7009). Both take a form POST from an authenticated client (oidc/clientauth.c).
 */
#ifndef OIDC_INTROSPECT_H
#define OIDC_INTROSPECT_H

#include "oidc/http.h"
#include "oidc/oidc.h"
#include "oidc/params.h"

#define OIDC_FORM_BODY_MAX (64 * 1024)

/**
 * The checks of a back-channel form request shared by introspect and revoke: POST only (405
 * with Allow), body at most OIDC_FORM_BODY_MAX bytes, application/x-www-form-urlencoded, no
 * query string; parses the body into @form. On failure the error answer is already in @resp
 * and a negative code is returned.
 */
int oidc_form_post(const struct oidc_request *req, struct oidc_response *resp,
                   struct oidc_params *form);

/**
 * Introspection: the client authenticates with client_secret_basic or private_key_jwt (API
 * apps and OIDC apps); `token` is an access token of ours. Unknown, expired, revoked,
 * malformed tokens, tokens of inactive users and tokens whose audience holds neither the
 * caller's client id nor its project id (v1's rule) answer {"active": false}. An active answer
 * carries active, scope, client_id, token_type, exp, iat, nbf, sub, aud, iss, jti, username
 * (the login name) and the userinfo claims of the token's scope, as v1 does.
 */
void oidc_introspect_endpoint(struct oidc_ctx *ctx, const struct oidc_request *req,
                              struct oidc_response *resp);

/**
 * Revocation: any authenticated client, `token` an access or refresh token, `token_type_hint`
 * access_token or refresh_token (another value is unsupported_token_type; a wrong hint only
 * changes the search order). A refresh token revokes its family; an access token (JWT or
 * opaque) goes on the deny-list until it expires. An unknown, expired or malformed token
 * answers 200 (RFC 7009 2.2); a token issued to another client is refused with
 * invalid_request and stays valid (RFC 7009 2.1).
 */
void oidc_revoke_endpoint(struct oidc_ctx *ctx, const struct oidc_request *req,
                          struct oidc_response *resp);

#endif
