/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The plain request and response that endpoints see: no h2o anywhere in oidc/. The server
 * turns an h2o request into a struct oidc_request, a worker calls oidc_handle(), and the loop
 * thread sends the struct oidc_response back.
 */
#ifndef OIDC_HTTP_H
#define OIDC_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define OIDC_RESP_HEADERS_MAX 24

struct oidc_kv {
    char *name;
    char *value;
};

/** What the server hands an endpoint. All strings are borrowed for the call's duration. */
struct oidc_request {
    const char *method;     /* "GET", "POST", "OPTIONS", ... */
    const char *path;       /* without the query */
    const char *query;      /* raw query string without '?', or NULL */
    size_t query_len;
    const char *body;       /* raw body (size-capped by the server), or NULL */
    size_t body_len;
    const struct oidc_kv *headers; /* names lower-case */
    size_t nheaders;
    const char *client_addr; /* peer address, or X-Forwarded-For's when the peer is trusted */
};

/** What an endpoint fills; everything in it is owned by it. */
struct oidc_response {
    int status;
    struct oidc_kv headers[OIDC_RESP_HEADERS_MAX];
    size_t nheaders;
    char *body;
    size_t body_len;
    char log[256]; /* a short note for the access log: client_id, sub, error; never a secret */
};

/** Returns the first header named @name (lower-case) or NULL. */
const char *oidc_request_header(const struct oidc_request *req, const char *name);

/** Adds a response header (copied). Returns 0 or -E_NOMEM / -E_TOOBIG. */
int oidc_response_header(struct oidc_response *resp, const char *name, const char *value);

/** Sets status and takes ownership of @body (malloc'd, may be NULL). */
void oidc_response_body(struct oidc_response *resp, int status, const char *content_type,
                        char *body, size_t len);

/** Appends printf-style text to resp->log (truncated, control characters removed). */
void oidc_response_note(struct oidc_response *resp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Frees everything the response owns and zeroes it. */
void oidc_response_release(struct oidc_response *resp);

#endif
