/* SPDX-License-Identifier: Apache-2.0 */
/* The error table's lookups and err_set(). */
#include "err.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    const char *oauth;
    int status;
} table[] = {
#define ERR_ROW_(name, s, st) {#name, s, st},
    ERR_MAP(ERR_ROW_)
#undef ERR_ROW_
};

static int idx(int code)
{
    if (code < 0)
        code = -code;
    if (code >= E__COUNT)
        return E_INTERNAL;
    return code;
}

int err_set(struct err *e, int code, const char *fmt, ...)
{
    if (code > 0)
        code = -code;
    if (e) {
        va_list ap;
        e->code = code;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void err_clear(struct err *e)
{
    if (e) {
        e->code = 0;
        e->msg[0] = '\0';
    }
}

const char *err_oauth(int code)
{
    return table[idx(code)].oauth;
}

int err_http_status(int code)
{
    return table[idx(code)].status;
}

const char *err_name(int code)
{
    return table[idx(code)].name;
}
