/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the form/query parser (oidc/params.c), the first code every request body and query
 * string meets: oidc_params_parse() over the whole input, and oidc_url_decode() both ways.
 * Besides memory errors it checks what the parser promises: bounded names and values, no
 * duplicate names, no NUL inside a decoded value, and oidc_params_get() agreeing with the list.
 */
#include <string.h>

#include "fuzz.h"
#include "oidc/params.h"

static void check_decode(const char *s, size_t len, int plus_is_space)
{
    struct err e = {0};
    char *out = NULL;
    int r = oidc_url_decode(s, len, plus_is_space, &out, &e);
    if (r < 0) {
        FUZZ_CHECK(out == NULL);
        FUZZ_CHECK(e.code == r && e.msg[0] != '\0');
        return;
    }
    FUZZ_CHECK(r == 0 && out != NULL);
    /* Decoding never grows the text, and an embedded NUL is always refused. */
    size_t olen = strlen(out);
    FUZZ_CHECK(olen <= len);
    FUZZ_CHECK(memchr(s, '\0', len) == NULL);
    /* Without escapes the result is the input itself ('+' aside). */
    if (!memchr(s, '%', len) && !(plus_is_space && memchr(s, '+', len)))
        FUZZ_CHECK(olen == len && memcmp(out, s, len) == 0);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct oidc_params p = {0};
    struct err e = {0};

    check_decode(s, size, 1);
    check_decode(s, size, 0);

    int r = oidc_params_parse(s, size, &p, &e);
    if (r < 0)
        FUZZ_CHECK(e.code == r && e.msg[0] != '\0');
    FUZZ_CHECK(p.n <= OIDC_PARAMS_MAX);
    for (size_t i = 0; i < p.n; i++) {
        const char *name = p.items[i].name, *value = p.items[i].value;
        FUZZ_CHECK(name && value);
        FUZZ_CHECK(name[0] != '\0' && strlen(name) <= OIDC_PARAM_NAME_MAX);
        FUZZ_CHECK(strlen(value) <= OIDC_PARAM_VALUE_MAX);
        for (size_t k = 0; k < i; k++)
            FUZZ_CHECK(strcmp(p.items[k].name, name) != 0);
        const char *got = oidc_params_get(&p, name);
        FUZZ_CHECK(value[0] ? got == value : got == NULL);
    }
    oidc_params_release(&p);
    FUZZ_CHECK(p.items == NULL && p.n == 0);
    return 0;
}
