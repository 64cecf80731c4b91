/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Server-rendered HTML for the login pages and authorization error pages: one small inline
 * stylesheet (allowed by its hash in the Content-Security-Policy), no script but the form_post
 * page's constant auto-submit (allowed by its hash too), and the headers every such page carries (CSP, nosniff, framing refused, no referrer, no caching).
 */
#ifndef OIDC_HTML_H
#define OIDC_HTML_H

#include "common/buf.h"
#include "oidc/http.h"

/** Appends the document head (title escaped), the stylesheet and the opening <main>. */
int oidc_html_begin(struct buf *b, const char *title);

/** Appends the closing tags. */
int oidc_html_end(struct buf *b);

/**
 * Answers with the page in @b (taken over and reset) and @status, adding the security
 * headers. @form_action is an extra CSP form-action source beside 'self' (where the form's
 * answer redirects to), or NULL for a page without a form.
 */
void oidc_html_respond(struct oidc_response *resp, int status, const char *form_action,
                       struct buf *b);

/**
 * The form_post page (OAuth 2.0 Form Post Response Mode): a form POSTing the @n fields
 * @names/@values (escaped) to @action, submitted by an inline script the CSP allows by its hash,
 * with a visible Continue button for browsers without JavaScript. Status 200, no-store.
 * @form_action is the CSP source of @action's origin (oidc_redirect_csp_source()).
 */
void oidc_html_form_post(struct oidc_response *resp, const char *action, const char *form_action,
                         const char *const *names, const char *const *values, size_t n);

/** A complete error page: a title and a one-line message (both escaped). */
void oidc_html_error(struct oidc_response *resp, int status, const char *title,
                     const char *message);

#endif
