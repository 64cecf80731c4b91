/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The authorization endpoint (/oauth/v2/authorize, GET and POST): validates the request,
 * answers at once from a live browser session, or keeps it as an AuthRequest (authreq/<id>)
 * and sends the browser to the login page. Errors found before the redirect_uri is known to be
 * the client's are shown on a page, never redirected; later ones go back to the client with
 * error, error_description, state and iss (RFC 9207).
 */
#ifndef OIDC_AUTHORIZE_H
#define OIDC_AUTHORIZE_H

#include <stdint.h>

#include "oidc/http.h"
#include "oidc/oidc.h"
#include "storage/records.pb-c.h"

#define OIDC_LOGIN_PATH "/ui/login/login"

/** The endpoint. Any worker thread. */
void oidc_authorize_endpoint(struct oidc_ctx *ctx, const struct oidc_request *req,
                             struct oidc_response *resp);

/**
 * Issues an authorization code for the validated request @ar and the signed-in user (stored
 * under code/<sha256 hex>, single use, ctx->code_ttl) and answers with a redirect (@status
 * 302 or 303) to ar->redirect_uri carrying code, state and iss. When v1's sign-in checks
 * (oidc_claims_signin_check) refuse the user, no code is issued: the answer is a 403 page
 * with the reason (a redirect with access_denied under prompt=none). Returns 0, or a
 * negative code (nothing was answered).
 */
int oidc_authorize_issue(struct oidc_ctx *ctx, const Koderid__V2__AuthRequest *ar,
                         const char *user_id, int64_t auth_time, char **amr, size_t n_amr,
                         const char *session_id, int status, struct oidc_response *resp,
                         struct err *e);

/**
 * Answers with a redirect (@status) to @redirect_uri (already validated) carrying @code's
 * OAuth error, @description, @state (may be NULL) and iss.
 */
void oidc_authorize_redirect_error(struct oidc_ctx *ctx, const char *redirect_uri,
                                   const char *state, int code, const char *description, int status,
                                   struct oidc_response *resp);

#endif
