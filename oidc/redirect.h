/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redirect_uri checks as v1 makes them (../shared/ZITADEL.md 4.4), without v1's string-glob
 * pitfalls: an exact string match with a registered URI; for native apps an http loopback URI
 * matching a registered one whatever its port (RFC 8252 section 7.3); and for dev-mode apps
 * glob patterns (`*` within a segment, `**` across) matched against the parsed components, so
 * userinfo, `@`, backslashes or encoded separators can never move the host.
 */
#ifndef OIDC_REDIRECT_H
#define OIDC_REDIRECT_H

#include <stdbool.h>
#include <stddef.h>

#include "storage/records.pb-c.h"

#define OIDC_REDIRECT_URI_MAX 2048

/** A URI split into components. Borrowed pointers into the parsed string. */
struct oidc_url {
    char scheme[32];    /* lower-cased */
    bool has_authority; /* "//" after the scheme */
    bool has_userinfo;  /* an '@' in the authority (always refused for matching) */
    char host[256];     /* lower-cased; IPv6 literals keep their brackets */
    long port;          /* -1 when absent, or '*' pattern = -2 */
    const char *path;
    size_t path_len;
    const char *query; /* after '?', or NULL when there is no '?' */
    size_t query_len;
};

/**
 * Parses @s strictly: printable ASCII only, no backslash, no fragment, a scheme, and when
 * there is an authority a host of [A-Za-z0-9._~-] or a bracketed IPv6 literal and a decimal
 * port 1..65535. With @pattern, '*' is also accepted in host, port and path/query (for
 * registered dev-mode globs). Returns 0, or -1 when @s is not acceptable.
 */
int oidc_url_parse(const char *s, bool pattern, struct oidc_url *ret);

/** Whether @uri may be used as redirect_uri for @client (see above). */
bool oidc_redirect_allowed(const Koderid__V2__Client *client, const char *uri);

/**
 * The CSP source for @uri's origin ("https://rp.example:8443", or "com.example.app:" for a
 * custom scheme) into @out (@n bytes). Returns 0, or -1 when @uri does not parse or the result
 * does not fit. The text never contains ';', ',' or whitespace.
 */
int oidc_redirect_csp_source(const char *uri, char *out, size_t n);

/** Whether @host (lower-case, as oidc_url_parse() gives it) is 127.0.0.1, [::1] or localhost. */
bool oidc_redirect_is_loopback_host(const char *host);

#endif
