/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the Authorization: Basic parser of the token endpoint (oidc_basic_parse() in
 * oidc/clientauth.c). The input is parsed as a header value as is; then it is split in two at
 * a position its first byte gives, the halves form-urlencoded as a client would send them,
 * joined by ':', base64-encoded behind "Basic ", and parsing that must give the halves back.
 */
#include <openssl/crypto.h>
#include <stdbool.h>
#include <string.h>

#include "common/b64.h"
#include "fuzz.h"
#include "oidc/clientauth.h"

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static size_t form_encode(const char *s, size_t len, char *out)
{
    static const char hx[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '*') {
            out[o++] = (char)c;
        } else if (c == ' ') {
            out[o++] = '+';
        } else {
            out[o++] = '%';
            out[o++] = hx[c >> 4];
            out[o++] = hx[c & 15];
        }
    }
    return o;
}

static void check_raw(const uint8_t *data, size_t size)
{
    char *value = malloc(size + 1);
    FUZZ_CHECK(value);
    memcpy(value, data, size);
    value[size] = '\0';
    char *id = NULL, *secret = NULL;
    struct err e = {0};
    int r = oidc_basic_parse(value, &id, &secret, &e);
    if (r == 0) {
        FUZZ_CHECK(id && secret && id[0] != '\0');
        FUZZ_CHECK(strncasecmp(value, "basic", 5) == 0);
    } else {
        FUZZ_CHECK(r == -E_NOTFOUND || (r == -E_INVALID_REQUEST && e.code == r));
        FUZZ_CHECK(!id && !secret);
    }
    free(id);
    wipe_free(secret);
    free(value);
}

static void check_roundtrip(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1000)
        return;
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    if (memchr(s, '\0', len))
        return;
    size_t cut = data[0] % (len + 1);
    char *raw = malloc(3 * len + 2);
    FUZZ_CHECK(raw);
    size_t n = form_encode(s, cut, raw);
    raw[n++] = ':';
    n += form_encode(s + cut, len - cut, raw + n);
    char *b64 = b64_encode_alloc(raw, n);
    FUZZ_CHECK(b64);
    char *value = malloc(strlen(b64) + 8);
    FUZZ_CHECK(value);
    strcpy(value, "Basic ");
    strcat(value, b64);

    char *id = NULL, *secret = NULL;
    struct err e = {0};
    int r = oidc_basic_parse(value, &id, &secret, &e);
    if (cut == 0 || strlen(value) > OIDC_BASIC_HEADER_MAX) {
        FUZZ_CHECK(r == -E_INVALID_REQUEST);
    } else {
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(strlen(id) == cut && memcmp(id, s, cut) == 0);
        FUZZ_CHECK(strlen(secret) == len - cut && memcmp(secret, s + cut, len - cut) == 0);
    }
    free(id);
    wipe_free(secret);
    free(value);
    free(b64);
    free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    check_raw(data, size);
    check_roundtrip(data, size);
    return 0;
}
