/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redirect_uri matching. Exact matches are plain string compares of what the client registered
 * and what it sent. The two relaxations (native loopback, dev-mode globs) first parse both
 * sides with one strict parser and compare component by component: a host comes only from the
 * authority, and a wildcard can never match a character that could end one.
 */
#include "redirect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Characters allowed anywhere in a URI we accept: RFC 3986 reserved + unreserved + '%'. */
static bool uri_char(char c)
{
    if (is_alpha(c) || is_digit(c))
        return true;
    return c && strchr("-._~:/?[]@!$&'()*+,;=%", c) != NULL;
}

int oidc_url_parse(const char *s, bool pattern, struct oidc_url *u)
{
    size_t n = 0;

    memset(u, 0, sizeof *u);
    u->port = -1;
    if (!s)
        return -1;
    for (; s[n]; n++)
        if (n >= OIDC_REDIRECT_URI_MAX || !uri_char(s[n]))
            return -1; /* also refuses '#', '\\', spaces, controls, non-ASCII */

    /* scheme */
    size_t i = 0;
    if (!is_alpha(s[0]))
        return -1;
    while (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')
        i++;
    if (s[i] != ':' || i >= sizeof u->scheme)
        return -1;
    for (size_t k = 0; k < i; k++)
        u->scheme[k] = lower(s[k]);
    i++;

    if (s[i] == '/' && s[i + 1] == '/') {
        u->has_authority = true;
        i += 2;
        size_t a = i;
        while (s[i] && s[i] != '/' && s[i] != '?')
            i++;
        size_t aend = i;
        for (size_t k = a; k < aend; k++)
            if (s[k] == '@')
                u->has_userinfo = true;
        if (u->has_userinfo)
            return -1; /* never part of a redirect we compare */
        size_t h = a, hend;
        if (s[h] == '[') {
            hend = h + 1;
            while (hend < aend && (is_digit(s[hend]) || strchr("abcdefABCDEF:.", s[hend])))
                hend++;
            if (hend >= aend || s[hend] != ']' || hend == h + 1)
                return -1;
            hend++;
        } else {
            hend = h;
            while (hend < aend && (is_alpha(s[hend]) || is_digit(s[hend]) ||
                                   strchr("-._~", s[hend]) || (pattern && s[hend] == '*')))
                hend++;
            if (hend == h)
                return -1;
        }
        if (hend - h >= sizeof u->host)
            return -1;
        for (size_t k = h; k < hend; k++)
            u->host[k - h] = lower(s[k]);
        if (hend < aend) {
            if (s[hend] != ':' || hend + 1 == aend)
                return -1;
            size_t p = hend + 1;
            if (pattern && aend - p == 1 && s[p] == '*') {
                u->port = -2;
            } else {
                long port = 0;
                if (aend - p > 5)
                    return -1;
                for (size_t k = p; k < aend; k++) {
                    if (!is_digit(s[k]))
                        return -1;
                    port = port * 10 + (s[k] - '0');
                }
                if (port < 1 || port > 65535)
                    return -1;
                u->port = port;
            }
        }
    }
    u->path = s + i;
    while (s[i] && s[i] != '?')
        i++;
    u->path_len = (size_t)(s + i - u->path);
    if (s[i] == '?') {
        u->query = s + i + 1;
        u->query_len = strlen(u->query);
    }
    return 0;
}

bool oidc_redirect_is_loopback_host(const char *host)
{
    return strcmp(host, "127.0.0.1") == 0 || strcmp(host, "[::1]") == 0 ||
           strcmp(host, "localhost") == 0;
}

static bool same_span(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool loopback_match(const struct oidc_url *reg, const struct oidc_url *got)
{
    if (strcmp(reg->scheme, "http") != 0 || !reg->has_authority)
        return false;
    if (!oidc_redirect_is_loopback_host(reg->host) || strcmp(reg->host, got->host) != 0)
        return false;
    if (!same_span(reg->path, reg->path_len, got->path, got->path_len))
        return false;
    if (!reg->query != !got->query)
        return false;
    return !reg->query || same_span(reg->query, reg->query_len, got->query, got->query_len);
}

/*
 * Glob over spans: `**` matches anything but '%', `*` anything but @sep and '%'. Refusing '%'
 * under a wildcard means an encoded separator (%2f, %5c, %2e) can never be what a wildcard
 * matched. A dynamic program over the subject (one row per pattern token), so any mix of `*`
 * and `**` is matched exactly in O(pattern x subject), both capped at 2048 bytes.
 */
static bool glob(const char *p, size_t plen, const char *s, size_t slen, char sep)
{
    bool *row = calloc(2 * (slen + 1), sizeof *row);
    if (!row)
        return false;
    bool *cur = row, *next = row + slen + 1;
    cur[0] = true;
    for (size_t pi = 0; pi < plen;) {
        bool deep = false, star = p[pi] == '*';
        if (star) {
            deep = pi + 1 < plen && p[pi + 1] == '*';
            pi += deep ? 2 : 1;
            while (pi < plen && p[pi] == '*') /* "***" is "**" */
                pi++, deep = true;
            next[0] = cur[0];
            for (size_t j = 1; j <= slen; j++) {
                char c = s[j - 1];
                bool ok = c != '%' && (deep || c != sep);
                next[j] = cur[j] || (next[j - 1] && ok);
            }
        } else {
            char lit = p[pi++];
            next[0] = false;
            for (size_t j = 1; j <= slen; j++)
                next[j] = cur[j - 1] && s[j - 1] == lit;
        }
        bool *t = cur;
        cur = next;
        next = t;
    }
    bool m = cur[slen];
    free(row);
    return m;
}

static bool has_dot_segment(const char *path, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        if (same_span(path + i, j - i, ".", 1) || same_span(path + i, j - i, "..", 2))
            return true;
        i = j + 1;
    }
    return false;
}

static bool glob_match(const struct oidc_url *pat, const struct oidc_url *got)
{
    if (strcmp(pat->scheme, got->scheme) != 0 || pat->has_authority != got->has_authority)
        return false;
    if (pat->has_authority) {
        if (!glob(pat->host, strlen(pat->host), got->host, strlen(got->host), '.'))
            return false;
        if (pat->port != -2 && pat->port != got->port)
            return false;
    }
    if (has_dot_segment(got->path, got->path_len))
        return false;
    if (!glob(pat->path, pat->path_len, got->path, got->path_len, '/'))
        return false;
    if (!pat->query)
        return !got->query;
    if (!got->query)
        return false;
    return glob(pat->query, pat->query_len, got->query, got->query_len, '&');
}

bool oidc_redirect_allowed(const Koderid__V2__Client *c, const char *uri)
{
    struct oidc_url got, reg;

    if (!c || !uri || !*uri)
        return false;
    /* Everything must parse, even for an exact match: no fragment, no control characters,
     * nothing a Location header or a CSP could be confused by. */
    if (oidc_url_parse(uri, false, &got) < 0)
        return false;
    for (size_t i = 0; i < c->n_redirect_uris; i++)
        if (strcmp(c->redirect_uris[i], uri) == 0)
            return true;
    if (c->app_type == 2 && strcmp(got.scheme, "http") == 0 && got.has_authority &&
        oidc_redirect_is_loopback_host(got.host)) {
        for (size_t i = 0; i < c->n_redirect_uris; i++)
            if (oidc_url_parse(c->redirect_uris[i], false, &reg) == 0 && loopback_match(&reg, &got))
                return true;
    }
    if (c->dev_mode) {
        for (size_t i = 0; i < c->n_redirect_uris; i++) {
            if (!strchr(c->redirect_uris[i], '*'))
                continue;
            if (oidc_url_parse(c->redirect_uris[i], true, &reg) == 0 && glob_match(&reg, &got))
                return true;
        }
    }
    return false;
}

int oidc_redirect_csp_source(const char *uri, char *out, size_t n)
{
    struct oidc_url u;
    int len;

    if (oidc_url_parse(uri, false, &u) < 0)
        return -1;
    if (!u.has_authority)
        len = snprintf(out, n, "%s:", u.scheme);
    else if (u.port > 0)
        len = snprintf(out, n, "%s://%s:%ld", u.scheme, u.host, u.port);
    else
        len = snprintf(out, n, "%s://%s", u.scheme, u.host);
    return len < 0 || (size_t)len >= n ? -1 : 0;
}
