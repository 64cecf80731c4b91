/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the PKCE checks (oidc/pkce.c) against an independent model: input is
 * "<verifier>\n<challenge>". oidc_pkce_well_formed() must agree with RFC 7636's grammar
 * (43..128 of [A-Za-z0-9-._~]), and oidc_pkce_verify_s256() must accept exactly a well-formed
 * verifier with the challenge BASE64URL(SHA-256(verifier)) computed here with OpenSSL.
 */
#include <openssl/sha.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "oidc/pkce.h"

static bool model_well_formed(const char *s)
{
    size_t n = strlen(s);
    if (n < 43 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~';
        if (!ok)
            return false;
    }
    return true;
}

static void model_challenge(const char *v, char out[44])
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char d[33] = {0};
    SHA256((const unsigned char *)v, strlen(v), d);
    /* 32 bytes: ten full groups of three, then two bytes as three characters. */
    size_t o = 0;
    for (size_t i = 0; i < 33; i += 3) {
        unsigned long x = (unsigned long)d[i] << 16 | (unsigned long)d[i + 1] << 8 | d[i + 2];
        out[o++] = alpha[x >> 18 & 63];
        out[o++] = alpha[x >> 12 & 63];
        out[o++] = alpha[x >> 6 & 63];
        if (i + 3 < 33)
            out[o++] = alpha[x & 63];
    }
    out[43] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024)
        return 0;
    char *buf = malloc(size + 1);
    FUZZ_CHECK(buf);
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *verifier = buf, *challenge = "";
    char *nl = strchr(buf, '\n');
    if (nl) {
        *nl = '\0';
        challenge = nl + 1;
    }

    FUZZ_CHECK(oidc_pkce_well_formed(verifier) == model_well_formed(verifier));
    FUZZ_CHECK(oidc_pkce_well_formed(challenge) == model_well_formed(challenge));
    FUZZ_CHECK(!oidc_pkce_well_formed(NULL));

    char want[44];
    model_challenge(verifier, want);
    bool expect = model_well_formed(verifier) && strcmp(challenge, want) == 0;
    FUZZ_CHECK(oidc_pkce_verify_s256(verifier, challenge) == expect);
    /* The right challenge always verifies a well-formed verifier; nothing verifies otherwise. */
    FUZZ_CHECK(oidc_pkce_verify_s256(verifier, want) == model_well_formed(verifier));
    FUZZ_CHECK(!oidc_pkce_verify_s256(verifier, NULL));
    FUZZ_CHECK(!oidc_pkce_verify_s256(NULL, want));
    free(buf);
    return 0;
}
