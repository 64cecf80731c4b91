/* SPDX-License-Identifier: Apache-2.0 */
/* base64 / base64url / hex, strict decoders for untrusted input. */
#include "b64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char std_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t b64url_encoded_len(size_t len)
{
    return (len / 3) * 4 + (len % 3 ? len % 3 + 1 : 0);
}

static size_t encode(const unsigned char *in, size_t len, char *out, const char *alpha, bool pad)
{
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alpha[v >> 18 & 63];
        out[o++] = alpha[v >> 12 & 63];
        out[o++] = alpha[v >> 6 & 63];
        out[o++] = alpha[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alpha[v >> 18 & 63];
        out[o++] = alpha[v >> 12 & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alpha[v >> 18 & 63];
        out[o++] = alpha[v >> 12 & 63];
        out[o++] = alpha[v >> 6 & 63];
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

size_t b64url_encode(const void *data, size_t len, char *out)
{
    return encode(data, len, out, url_alpha, false);
}

char *b64url_encode_alloc(const void *data, size_t len)
{
    char *out = malloc(b64url_encoded_len(len) + 1);
    if (out)
        b64url_encode(data, len, out);
    return out;
}

char *b64_encode_alloc(const void *data, size_t len)
{
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (out)
        encode(data, len, out, std_alpha, true);
    return out;
}

static int val(char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (url ? c == '-' : c == '+')
        return 62;
    if (url ? c == '_' : c == '/')
        return 63;
    return -1;
}

static unsigned char *decode(const char *s, size_t slen, bool url, bool allow_pad, size_t *ret_len)
{
    size_t npad = 0;
    while (allow_pad && slen > 0 && s[slen - 1] == '=' && npad < 2) {
        slen--;
        npad++;
    }
    if (slen % 4 == 1)
        return NULL;
    if (npad && (slen + npad) % 4 != 0)
        return NULL;
    unsigned char *out = malloc(slen / 4 * 3 + 3);
    if (!out)
        return NULL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < slen; i++) {
        int v = val(s[i], url);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Non-zero leftover bits mean a non-canonical encoding. */
    if (acc != 0) {
        free(out);
        return NULL;
    }
    out[o] = '\0';
    *ret_len = o;
    return out;
}

unsigned char *b64url_decode_alloc(const char *s, size_t slen, bool allow_pad, size_t *ret_len)
{
    return decode(s, slen, true, allow_pad, ret_len);
}

unsigned char *b64_decode_alloc(const char *s, size_t slen, size_t *ret_len)
{
    return decode(s, slen, false, true, ret_len);
}

void hex_encode(const void *data, size_t len, char *out)
{
    static const char hx[] = "0123456789abcdef";
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * len] = '\0';
}

int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
