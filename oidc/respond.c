/* SPDX-License-Identifier: Apache-2.0 */
/* JSON, redirect and OAuth error answers. */
#include "respond.h"

#include <stdlib.h>
#include <string.h>

void oidc_respond_json(struct oidc_response *resp, int status, json_t *obj)
{
    char *body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!body) {
        static const char fallback[] = "{\"error\":\"server_error\"}";
        body = strdup(fallback);
        status = 500;
    }
    oidc_response_body(resp, status, "application/json", body, body ? strlen(body) : 0);
    oidc_response_header(resp, "cache-control", "no-store");
    oidc_response_header(resp, "pragma", "no-cache");
}

void oidc_respond_error(struct oidc_response *resp, int code, const char *description)
{
    json_t *o = json_object();
    const char *error = err_oauth(code);
    json_object_set_new(o, "error", json_string(error));
    if (description && *description)
        json_object_set_new(o, "error_description", json_string(description));
    oidc_respond_json(resp, err_http_status(code), o);
    oidc_response_note(resp, "error=%s", error);
}

void oidc_respond_redirect(struct oidc_response *resp, int status, const char *location)
{
    oidc_response_body(resp, status, NULL, NULL, 0);
    oidc_response_header(resp, "location", location);
    oidc_response_header(resp, "cache-control", "no-store");
    oidc_response_header(resp, "pragma", "no-cache");
    oidc_response_header(resp, "referrer-policy", "no-referrer");
}
