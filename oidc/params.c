/* SPDX-License-Identifier: Apache-2.0 */
/* Strict form/query parsing: the first parser every hostile request meets. */
#include "params.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"

int oidc_url_decode(const char *s, size_t len, int plus_is_space, char **ret, struct err *e)
{
    char *out = malloc(len + 1);
    size_t o = 0;

    if (!out)
        return err_set(e, -E_NOMEM, "out of memory");
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 1 < len ? hex_digit(s[i + 1]) : -1;
            int lo = i + 2 < len ? hex_digit(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return err_set(e, -E_INVALID_REQUEST, "malformed percent-encoding");
            }
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out[o++] = ' ';
        } else if (c == '\0') {
            free(out);
            return err_set(e, -E_INVALID_REQUEST, "NUL byte in request");
        } else {
            out[o++] = c;
        }
    }
    out[o] = '\0';
    *ret = out;
    return 0;
}

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

int oidc_params_parse(const char *s, size_t len, struct oidc_params *ret, struct err *e)
{
    size_t i = 0;

    ret->items = NULL;
    ret->n = 0;
    if (!s)
        return 0;
    while (i < len) {
        size_t start = i, eq = (size_t)-1;
        while (i < len && s[i] != '&') {
            if (s[i] == '=' && eq == (size_t)-1)
                eq = i;
            i++;
        }
        size_t end = i;
        i++; /* skip '&' */
        if (end == start)
            continue;
        size_t nlen = (eq == (size_t)-1 ? end : eq) - start;
        size_t vstart = eq == (size_t)-1 ? end : eq + 1;
        size_t vlen = end - vstart;
        if (nlen == 0)
            return err_set(e, -E_INVALID_REQUEST, "parameter without a name");
        if (nlen > OIDC_PARAM_NAME_MAX * 3 || vlen > OIDC_PARAM_VALUE_MAX * 3)
            return err_set(e, -E_INVALID_REQUEST, "parameter too long");
        char *name = NULL, *value = NULL;
        int r = oidc_url_decode(s + start, nlen, 1, &name, e);
        if (r < 0)
            return r;
        if (strlen(name) > OIDC_PARAM_NAME_MAX) {
            free(name);
            return err_set(e, -E_INVALID_REQUEST, "parameter name too long");
        }
        r = oidc_url_decode(s + vstart, vlen, 1, &value, e);
        if (r < 0) {
            r = err_set(e, -E_INVALID_REQUEST, "malformed value of parameter '%.40s'", name);
            free(name);
            return r;
        }
        if (strlen(value) > OIDC_PARAM_VALUE_MAX) {
            r = err_set(e, -E_INVALID_REQUEST, "parameter '%.40s' too long", name);
            free(name);
            wipe_free(value);
            return r;
        }
        /* Duplicates are refused even when one of them is empty (RFC 6749 3.1). */
        for (size_t k = 0; k < ret->n; k++)
            if (strcmp(ret->items[k].name, name) == 0) {
                r = err_set(e, -E_INVALID_REQUEST, "parameter '%.40s' repeated", name);
                free(name);
                wipe_free(value);
                return r;
            }
        if (ret->n >= OIDC_PARAMS_MAX) {
            free(name);
            wipe_free(value);
            return err_set(e, -E_INVALID_REQUEST, "too many parameters");
        }
        struct oidc_kv *items = realloc(ret->items, (ret->n + 1) * sizeof *items);
        if (!items) {
            free(name);
            wipe_free(value);
            return err_set(e, -E_NOMEM, "out of memory");
        }
        ret->items = items;
        /* Empty values are kept so duplicates are still seen; oidc_params_get() hides them. */
        ret->items[ret->n].name = name;
        ret->items[ret->n].value = value;
        ret->n++;
    }
    return 0;
}

const char *oidc_params_get(const struct oidc_params *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->items[i].name, name) == 0)
            return p->items[i].value[0] ? p->items[i].value : NULL;
    return NULL;
}

void oidc_params_release(struct oidc_params *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->items[i].name);
        wipe_free(p->items[i].value);
    }
    free(p->items);
    p->items = NULL;
    p->n = 0;
}
