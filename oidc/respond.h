/* SPDX-License-Identifier: Apache-2.0 */
/* JSON answers, redirects and the spec's error responses, so endpoints never build them by hand. */
#ifndef OIDC_RESPOND_H
#define OIDC_RESPOND_H

#include <jansson.h>

#include "common/err.h"
#include "oidc/http.h"

/**
 * A JSON body (application/json) with @status; steals the reference to @obj. Adds
 * Cache-Control: no-store and Pragma: no-cache (token-ish answers must not be cached).
 */
void oidc_respond_json(struct oidc_response *resp, int status, json_t *obj);

/**
 * An OAuth error body {"error": ..., "error_description": ...} (RFC 6749 section 5.2) whose
 * `error` string and status come from @code's row in the error table. The description is
 * the caller's (never a secret). Notes the error in resp->log.
 */
void oidc_respond_error(struct oidc_response *resp, int code, const char *description);

/**
 * A redirect (@status 302 or 303) to @location with Cache-Control: no-store, Pragma: no-cache
 * and Referrer-Policy: no-referrer (the location may carry a code or tokens).
 */
void oidc_respond_redirect(struct oidc_response *resp, int status, const char *location);

#endif
