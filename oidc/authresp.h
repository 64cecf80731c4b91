/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The authorization response, in the response mode the request asked for: parameters in the
 * redirect_uri's query (code responses only), in its fragment (OAuth 2.0 Multiple Response
 * Type Encoding Practices), or POSTed to it by an auto-submitting page (OAuth 2.0 Form Post
 * Response Mode). Every response, success or error, ends with iss (RFC 9207).
 */
#ifndef OIDC_AUTHRESP_H
#define OIDC_AUTHRESP_H

#include <stdbool.h>
#include <stddef.h>

#include "oidc/http.h"
#include "oidc/oidc.h"

enum oidc_resp_mode {
    OIDC_RESP_QUERY = 0,
    OIDC_RESP_FRAGMENT = 1,
    OIDC_RESP_FORM_POST = 2,
};

#define OIDC_AUTHRESP_PARAMS_MAX 10

/** One authorization response being built. Names and values are borrowed until sent. */
struct oidc_authresp {
    const char *redirect_uri; /* validated for the client */
    enum oidc_resp_mode mode;
    size_t n;
    const char *names[OIDC_AUTHRESP_PARAMS_MAX];
    const char *values[OIDC_AUTHRESP_PARAMS_MAX];
};

/** The mode named @s ("query", "fragment", "form_post"), or -1 for anything else. */
int oidc_resp_mode_parse(const char *s);

/** The name of @mode ("query", ...). */
const char *oidc_resp_mode_name(enum oidc_resp_mode mode);

/**
 * Whether @response_type issues tokens from the authorization endpoint ("id_token",
 * "id_token token" in either order): such responses default to the fragment and never go in
 * a query.
 */
bool oidc_response_type_implicit(const char *response_type);

/**
 * The mode of a stored request: @response_mode when it names one, else the default of
 * @response_type (fragment for implicit types, query otherwise).
 */
enum oidc_resp_mode oidc_resp_mode_of(const char *response_type, const char *response_mode);

/** Adds name=value; a NULL or empty value is left out. Extra parameters are dropped. */
void oidc_authresp_add(struct oidc_authresp *a, const char *name, const char *value);

/**
 * Answers with @a: a redirect (@status 302 or 303) for query and fragment, the form_post page
 * (200) otherwise; iss = ctx's issuer is appended. Any thread.
 */
void oidc_authresp_send(struct oidc_ctx *ctx, struct oidc_authresp *a, int status,
                        struct oidc_response *resp);

#endif
