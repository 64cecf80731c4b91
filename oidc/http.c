/* SPDX-License-Identifier: Apache-2.0 */
/* The plain request/response helpers shared by all endpoints. */
#include "http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *oidc_request_header(const struct oidc_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

int oidc_response_header(struct oidc_response *resp, const char *name, const char *value)
{
    if (resp->nheaders >= OIDC_RESP_HEADERS_MAX)
        return -E_TOOBIG;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return -E_NOMEM;
    }
    resp->headers[resp->nheaders].name = n;
    resp->headers[resp->nheaders].value = v;
    resp->nheaders++;
    return 0;
}

void oidc_response_body(struct oidc_response *resp, int status, const char *content_type,
                        char *body, size_t len)
{
    free(resp->body);
    resp->status = status;
    resp->body = body;
    resp->body_len = body ? len : 0;
    if (content_type)
        oidc_response_header(resp, "content-type", content_type);
}

void oidc_response_note(struct oidc_response *resp, const char *fmt, ...)
{
    size_t used = strlen(resp->log);
    va_list ap;

    if (used + 2 >= sizeof resp->log)
        return;
    if (used)
        resp->log[used++] = ' ';
    va_start(ap, fmt);
    vsnprintf(resp->log + used, sizeof resp->log - used, fmt, ap);
    va_end(ap);
    for (char *p = resp->log; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = '?';
}

void oidc_response_release(struct oidc_response *resp)
{
    for (size_t i = 0; i < resp->nheaders; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    free(resp->body);
    memset(resp, 0, sizeof *resp);
}
