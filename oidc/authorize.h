/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The authorization endpoint (/oauth/v2/authorize, GET and POST): validates the request,
 * answers at once from a live browser session, or keeps it as an AuthRequest (authreq/<id>)
 * and sends the browser to the login page. Errors found before the redirect_uri is known to be
 * the client's are shown on a page, never redirected; later ones go back to the client with
 * error, error_description, state and iss (RFC 9207), in the requested response mode.
 * Response types: code, and for clients configured for them id_token and "id_token token"
 * (implicit: nonce required, fragment by default, never in a query).
 */
#ifndef OIDC_AUTHORIZE_H
#define OIDC_AUTHORIZE_H

#include <stdint.h>

#include "oidc/authresp.h"
#include "oidc/http.h"
#include "oidc/oidc.h"
#include "storage/records.pb-c.h"

#define OIDC_LOGIN_PATH "/ui/login/login"

/** The endpoint. Any worker thread. */
void oidc_authorize_endpoint(struct oidc_ctx *ctx, const struct oidc_request *req,
                             struct oidc_response *resp);

/**
 * Answers the validated request @ar for the signed-in user, in ar's response mode (query,
 * fragment, or form_post; status @status 302 or 303 for redirects): for response_type code an
 * authorization code (stored under code/<sha256 hex>, single use, ctx->code_ttl) with state and
 * iss; for "id_token" and "id_token token" the tokens themselves (implicit flow). When v1's
 * sign-in checks (oidc_claims_signin_check) refuse the user, nothing is issued: the answer is
 * a 403 page with the reason (access_denied in the response mode under prompt=none). Returns
 * 0, or a negative code (nothing was answered).
 */
int oidc_authorize_issue(struct oidc_ctx *ctx, const Koderid__V2__AuthRequest *ar,
                         const char *user_id, int64_t auth_time, char **amr, size_t n_amr,
                         const char *session_id, int status, struct oidc_response *resp,
                         struct err *e);

/**
 * Answers in @mode (a redirect with @status, or the form_post page) to @redirect_uri (already
 * validated) with @code's OAuth error, @description, @state (may be NULL) and iss.
 */
void oidc_authorize_redirect_error(struct oidc_ctx *ctx, const char *redirect_uri,
                                   enum oidc_resp_mode mode, const char *state, int code,
                                   const char *description, int status,
                                   struct oidc_response *resp);

#endif
