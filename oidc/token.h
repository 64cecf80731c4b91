/* SPDX-License-Identifier: Apache-2.0 */
/* The token endpoint (/oauth/v2/token, RFC 6749 section 3.2). */
#ifndef OIDC_TOKEN_H
#define OIDC_TOKEN_H

#include "oidc/http.h"
#include "oidc/oidc.h"

#define OIDC_TOKEN_BODY_MAX (64 * 1024) /* bytes of a token request body */

/**
 * Answers a token request: POST only (405 with Allow otherwise), a form body
 * (application/x-www-form-urlencoded, at most OIDC_TOKEN_BODY_MAX bytes, no query string,
 * no repeated parameter), client authentication, then the grant named by grant_type. Every
 * answer carries Cache-Control: no-store and Pragma: no-cache. Worker threads.
 */
void oidc_token_endpoint(struct oidc_ctx *ctx, const struct oidc_request *req,
                         struct oidc_response *resp);

/**
 * Whether @req's content type is @type (case-insensitive, parameters such as charset allowed).
 */
bool oidc_request_content_type_is(const struct oidc_request *req, const char *type);

#endif
