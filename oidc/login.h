/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The login page at /ui/login/login?authRequestID=<id> (v1's path): a server-rendered form
 * for the login name and password of a pending AuthRequest. A successful POST creates the
 * browser session and sends the browser back to the client with a code.
 *
 * CSRF: the form carries a random token stored in the AuthRequest, and the browser carries a
 * cookie whose SHA-256 the AuthRequest also records when the form is rendered; a POST needs
 * both (and the cookie is SameSite=Lax). Failed attempts are throttled per account and per
 * client address; password checks run on the bounded hash queue.
 *
 * A user with password_change_required (v1's flag) who gives the right password gets a second
 * form on the same page: the new password twice. The request remembers which user proved the
 * password, in which browser (the CSRF binding) and against which hash; only that browser can
 * answer it, and only then is the code issued, the flag cleared and password_changed_at set.
 */
#ifndef OIDC_LOGIN_H
#define OIDC_LOGIN_H

#include "oidc/http.h"
#include "oidc/oidc.h"

/** GET shows the form, POST checks it. Any worker thread. */
void oidc_login_endpoint(struct oidc_ctx *ctx, const struct oidc_request *req,
                         struct oidc_response *resp);

#endif
