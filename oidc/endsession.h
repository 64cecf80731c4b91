/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) at v1's /oidc/v1/end_session,
 * and v1's logged-out page /ui/login/logout/done.
 */
#ifndef OIDC_ENDSESSION_H
#define OIDC_ENDSESSION_H

#include "oidc/http.h"
#include "oidc/oidc.h"

#define OIDC_LOGOUT_DONE_PATH "/ui/login/logout/done"

/**
 * GET or POST (form). `id_token_hint`, when given, must be an ID token we signed (checked
 * against our published keys and issuer; an expired one is accepted, as the spec allows) or
 * the request is refused with a page. `client_id` (or the hint's azp) names the client;
 * with both, the hint must have been issued to it. `post_logout_redirect_uri` is honoured
 * only when registered for that client (exact; globs for dev-mode apps), with `state` added;
 * an unregistered one is refused with a page. The browser session (cookie and
 * record) always ends; without a redirect the browser goes to OIDC_LOGOUT_DONE_PATH.
 */
void oidc_end_session_endpoint(struct oidc_ctx *ctx, const struct oidc_request *req,
                               struct oidc_response *resp);

/** The logged-out page. */
void oidc_logout_done_endpoint(struct oidc_ctx *ctx, const struct oidc_request *req,
                               struct oidc_response *resp);

#endif
