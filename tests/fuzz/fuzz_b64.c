/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the strict base64/base64url decoders of common/b64.c, which read JWS segments, Basic
 * credentials and imported keys. The decoders are meant to be canonical: whatever they accept
 * must re-encode to exactly the input (less padding), so a decoder that tolerates stray bits
 * or characters fails here, not only one that overruns. The encoders are checked the other way
 * round: the input encoded, then decoded, must come back unchanged.
 */
#include <stdbool.h>
#include <string.h>

#include "common/b64.h"
#include "fuzz.h"

static size_t strip_pad(const char *s, size_t len)
{
    size_t n = 0;
    while (len > 0 && s[len - 1] == '=' && n < 2) {
        len--;
        n++;
    }
    return len;
}

static void check_url(const char *s, size_t len, bool allow_pad)
{
    size_t olen = (size_t)-1;
    unsigned char *out = b64url_decode_alloc(s, len, allow_pad, &olen);
    if (!out)
        return;
    size_t want = allow_pad ? strip_pad(s, len) : len;
    FUZZ_CHECK(olen == want / 4 * 3 + (want % 4 ? want % 4 - 1 : 0));
    FUZZ_CHECK(out[olen] == '\0');
    char *again = b64url_encode_alloc(out, olen);
    FUZZ_CHECK(again && strlen(again) == want && memcmp(again, s, want) == 0);
    FUZZ_CHECK(b64url_encoded_len(olen) == want);
    free(again);
    free(out);
}

static void check_std(const char *s, size_t len)
{
    size_t olen = (size_t)-1;
    unsigned char *out = b64_decode_alloc(s, len, &olen);
    if (!out)
        return;
    size_t want = strip_pad(s, len);
    char *again = b64_encode_alloc(out, olen);
    FUZZ_CHECK(again);
    /* The encoder always pads; compare the unpadded parts, then the padding is valid. */
    FUZZ_CHECK(strip_pad(again, strlen(again)) == want && memcmp(again, s, want) == 0);
    FUZZ_CHECK(len == want || len == strlen(again));
    free(again);
    free(out);
}

static void check_roundtrip(const uint8_t *data, size_t size)
{
    char *enc = b64url_encode_alloc(data, size);
    FUZZ_CHECK(enc && strlen(enc) == b64url_encoded_len(size));
    size_t olen = 0;
    unsigned char *dec = b64url_decode_alloc(enc, strlen(enc), false, &olen);
    FUZZ_CHECK(dec && olen == size && memcmp(dec, data, size) == 0);
    free(dec);
    free(enc);

    enc = b64_encode_alloc(data, size);
    FUZZ_CHECK(enc && strlen(enc) == (size + 2) / 3 * 4);
    dec = b64_decode_alloc(enc, strlen(enc), &olen);
    FUZZ_CHECK(dec && olen == size && memcmp(dec, data, size) == 0);
    free(dec);
    free(enc);

    char *hex = malloc(2 * size + 1);
    FUZZ_CHECK(hex);
    hex_encode(data, size, hex);
    FUZZ_CHECK(strlen(hex) == 2 * size);
    free(hex);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    check_url(s, size, false);
    check_url(s, size, true);
    check_std(s, size);
    check_roundtrip(data, size);
    return 0;
}
