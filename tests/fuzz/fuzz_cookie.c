/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the Cookie header parser (oidc_cookie_get() in oidc/session.c). Input: a flags byte
 * (bit 0: https issuer, so names carry the __Host- prefix), then '\n'-separated header values,
 * each sent as a `cookie` header (every third one as another header, which must be ignored).
 * A value found must be a token of [A-Za-z0-9_-] that fits the buffer and that the headers
 * really carry as "<name>=<value>".
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "oidc/session.h"

#define HEADERS_MAX 16

static void check(const struct oidc_ctx *ctx, const struct oidc_request *req, const char *name)
{
    char out[80];
    memset(out, 'X', sizeof out);
    size_t n = 1 + (size_t)(req->nheaders * 7) % (sizeof out - 1);
    if (oidc_cookie_get(ctx, req, name, out, n) < 0)
        return;
    size_t len = strlen(out);
    FUZZ_CHECK(len > 0 && len < n);
    for (size_t i = 0; i < len; i++) {
        char c = out[i];
        FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_');
    }
    char pair[160];
    snprintf(pair, sizeof pair, "%s%s=%s", ctx->issuer_https ? "__Host-" : "", name, out);
    bool seen = false;
    for (size_t h = 0; h < req->nheaders && !seen; h++)
        seen = strcmp(req->headers[h].name, "cookie") == 0 && strstr(req->headers[h].value, pair);
    FUZZ_CHECK(seen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    struct oidc_ctx ctx = {.issuer_https = data[0] & 1};
    char *buf = malloc(size);
    FUZZ_CHECK(buf);
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';

    struct oidc_kv headers[HEADERS_MAX];
    size_t n = 0;
    for (char *p = buf; n < HEADERS_MAX;) {
        headers[n].name = n % 3 == 2 ? "x-cookie" : "cookie";
        headers[n].value = p;
        n++;
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    struct oidc_request req = {.method = "GET", .path = "/", .headers = headers, .nheaders = n};
    check(&ctx, &req, OIDC_SESSION_COOKIE);
    check(&ctx, &req, OIDC_CSRF_COOKIE);
    free(buf);
    return 0;
}
