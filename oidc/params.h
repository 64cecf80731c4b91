/* SPDX-License-Identifier: Apache-2.0 */
/*
 * application/x-www-form-urlencoded parsing for query strings and form bodies, with the limits
 * and rules of RFC 6749 section 3.1: a parameter may appear once, an empty value counts as
 * absent.
 */
#ifndef OIDC_PARAMS_H
#define OIDC_PARAMS_H

#include <stddef.h>

#include "common/err.h"
#include "oidc/http.h"

#define OIDC_PARAMS_MAX 64          /* distinct parameters per request */
#define OIDC_PARAM_NAME_MAX 128     /* bytes, decoded */
#define OIDC_PARAM_VALUE_MAX 16384  /* bytes, decoded (request objects, assertions) */

struct oidc_params {
    struct oidc_kv *items; /* decoded, NUL-terminated; empty values dropped */
    size_t n;
};

/**
 * Parses @len bytes of @s into @ret (which the caller releases with oidc_params_release(),
 * also on failure). -E_INVALID_REQUEST with a reason naming the parameter (never its value)
 * for a duplicate, a bad escape, an embedded NUL, or a name/value/count over the limits.
 */
int oidc_params_parse(const char *s, size_t len, struct oidc_params *ret, struct err *e);

/** The value of @name, or NULL when absent. Borrowed from @p. */
const char *oidc_params_get(const struct oidc_params *p, const char *name);

/** Frees what @p holds (wiping values, which may be secrets) and zeroes it. */
void oidc_params_release(struct oidc_params *p);

/**
 * Percent-decodes @len bytes of @s ('+' becomes a space when @plus_is_space) into a new
 * string (caller frees). -E_INVALID_REQUEST on a bad escape or an embedded NUL.
 */
int oidc_url_decode(const char *s, size_t len, int plus_is_space, char **ret, struct err *e);

#endif
