/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes redirect_uri matching (oidc/redirect.c): the strict URI parser in both modes, the
 * CSP source derived from a URI, and oidc_redirect_allowed() against a client whose registered
 * URIs come from the input too. Input: one flags byte (bit 0 dev_mode, then app_type), then
 * '\n'-separated lines: registered URIs (up to 8), the last line the URI a request sends.
 *
 * Besides memory errors it checks the security property: an allowed URI that is not a
 * registered string is an http loopback URI of a native app whose host a registered loopback
 * URI names, or, in dev mode, a URI with the same scheme whose host matches a registered
 * glob's literal prefix and suffix; and never a URI with userinfo.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "oidc/redirect.h"

#define LINES_MAX 9

static bool is_host_char(char c, bool pattern)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-._~", c) ||
           (pattern && c == '*');
}

static void check_parse(const char *s, bool pattern)
{
    struct oidc_url u;
    if (oidc_url_parse(s, pattern, &u) < 0)
        return;
    size_t len = strlen(s);
    FUZZ_CHECK(len <= OIDC_REDIRECT_URI_MAX);
    FUZZ_CHECK(!u.has_userinfo);
    FUZZ_CHECK(u.scheme[0] >= 'a' && u.scheme[0] <= 'z');
    FUZZ_CHECK(strchr(s, '#') == NULL && strchr(s, '\\') == NULL);
    FUZZ_CHECK(u.port == -1 || (u.port >= 1 && u.port <= 65535) || (pattern && u.port == -2));
    if (u.has_authority) {
        size_t hl = strlen(u.host);
        FUZZ_CHECK(hl > 0);
        if (u.host[0] == '[') {
            FUZZ_CHECK(hl >= 3 && u.host[hl - 1] == ']');
            for (size_t i = 1; i + 1 < hl; i++)
                FUZZ_CHECK(strchr("0123456789abcdef:.", u.host[i]));
        } else {
            for (size_t i = 0; i < hl; i++)
                FUZZ_CHECK(is_host_char(u.host[i], pattern));
        }
    } else {
        FUZZ_CHECK(u.host[0] == '\0' && u.port == -1);
    }
    FUZZ_CHECK(u.path >= s && u.path + u.path_len <= s + len);
    FUZZ_CHECK(memchr(u.path, '?', u.path_len) == NULL);
    if (u.query)
        FUZZ_CHECK(u.query[-1] == '?' && u.query + u.query_len == s + len);
    else
        FUZZ_CHECK(u.path + u.path_len == s + len);
}

static void check_csp(const char *s)
{
    char out[300];
    if (oidc_redirect_csp_source(s, out, sizeof out) < 0)
        return;
    FUZZ_CHECK(out[0] != '\0');
    for (const char *p = out; *p; p++)
        FUZZ_CHECK(*p != ';' && *p != ',' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' &&
                   *p != '\'' && *p != '"');
}

/* Whether @host is what a glob host @pat (with '*') could match: its literal ends agree. */
static bool glob_ends_agree(const char *pat, const char *host)
{
    const char *first = strchr(pat, '*'), *last = strrchr(pat, '*');
    if (!first)
        return strcmp(pat, host) == 0;
    size_t pre = (size_t)(first - pat), suf = strlen(last + 1), hl = strlen(host);
    return hl >= pre + suf && memcmp(host, pat, pre) == 0 &&
           memcmp(host + hl - suf, last + 1, suf) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8 * 1024)
        return 0;
    bool dev_mode = data[0] & 1;
    int app_type = (data[0] >> 1) % 3;

    /* Split the rest into NUL-terminated lines. */
    char *buf = malloc(size);
    FUZZ_CHECK(buf);
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    char *lines[LINES_MAX];
    size_t n = 0;
    for (char *p = buf; n < LINES_MAX;) {
        lines[n++] = p;
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    const char *uri = lines[n - 1];

    for (size_t i = 0; i < n; i++) {
        check_parse(lines[i], false);
        check_parse(lines[i], true);
        check_csp(lines[i]);
    }

    Koderid__V2__Client c = KODERID__V2__CLIENT__INIT;
    c.client_id = "fuzz";
    c.dev_mode = dev_mode;
    c.app_type = app_type;
    c.redirect_uris = lines;
    c.n_redirect_uris = n - 1;
    if (!oidc_redirect_allowed(&c, uri))
        goto out;

    struct oidc_url got;
    FUZZ_CHECK(oidc_url_parse(uri, false, &got) == 0);
    for (size_t i = 0; i + 1 < n; i++)
        if (strcmp(lines[i], uri) == 0)
            goto out; /* an exact match */
    bool explained = false;
    for (size_t i = 0; i + 1 < n && !explained; i++) {
        struct oidc_url reg;
        if (app_type == 2 && oidc_url_parse(lines[i], false, &reg) == 0 &&
            strcmp(got.scheme, "http") == 0 && oidc_redirect_is_loopback_host(got.host) &&
            strcmp(reg.host, got.host) == 0)
            explained = true;
        if (dev_mode && strchr(lines[i], '*') && oidc_url_parse(lines[i], true, &reg) == 0 &&
            strcmp(reg.scheme, got.scheme) == 0 && glob_ends_agree(reg.host, got.host))
            explained = true;
    }
    FUZZ_CHECK(explained);
out:
    free(buf);
    return 0;
}
