/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes JWS compact parsing and verification (oidc/jwt.c), the path of client assertions,
 * id_token_hint and JWT access tokens. The first input byte picks the mode:
 *   even: the rest is a token handed to oidc_jwt_verify() as is, against a key set with an
 *         RSA-2048 key (kid "rsa"), a P-256 key ("ec"), an RSA key registered for ES256
 *         ("rsa-as-es", never usable) and a key callback that fails for any other kid;
 *   odd:  the rest is JSON; when it is an object it is signed (RS256 or ES256 by bit 1), must
 *         verify and give back equal claims, and the token with any one byte changed (position
 *         and xor from bytes 2-3 of the input) must not verify: the decoders are canonical, so
 *         there is no second spelling of a token.
 * oidc_jwt_check_time() also runs on every claims object seen.
 */
#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <string.h>

#include "fuzz.h"
#include "oidc/jwt.h"

static EVP_PKEY *rsa_key, *ec_key;

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    rsa_key = EVP_RSA_gen(2048);
    ec_key = EVP_EC_gen("P-256");
    FUZZ_CHECK(rsa_key && ec_key);
    return 0;
}

static int key_cb(const char *kid, EVP_PKEY **ret_key, char alg[OIDC_JWT_ALG_MAX], void *cbdata,
                  struct err *e)
{
    EVP_PKEY *k = NULL;
    alg[0] = '\0';
    if (kid && strcmp(kid, "rsa") == 0) {
        k = rsa_key;
    } else if (kid && strcmp(kid, "ec") == 0) {
        k = ec_key;
        strcpy(alg, "ES256");
    } else if (kid && strcmp(kid, "rsa-as-es") == 0) {
        k = rsa_key;
        strcpy(alg, "ES256");
    } else {
        return err_set(e, -E_NOTFOUND, "unknown kid");
    }
    EVP_PKEY_up_ref(k);
    *ret_key = k;
    return 0;
}

static void check_time(const json_t *claims, const uint8_t *data, size_t size)
{
    struct err e = {0};
    int64_t now = size > 3 ? (int64_t)data[size - 1] << 24 | data[size - 2] << 16 : 1700000000;
    int r = oidc_jwt_check_time(claims, now, 60, size & 1, &e);
    if (r < 0) {
        FUZZ_CHECK(r == -E_INVALID_TOKEN && e.code == r);
        return;
    }
    const json_t *exp = json_object_get(claims, "exp");
    if (exp)
        FUZZ_CHECK(json_is_integer(exp) && json_integer_value(exp) > now - 60);
    else
        FUZZ_CHECK(!(size & 1));
}

static void verify_raw(const uint8_t *data, size_t size)
{
    json_t *hdr = NULL, *claims = NULL;
    struct err e = {0};
    int r = oidc_jwt_verify((const char *)data, size, key_cb, NULL, &hdr, &claims, &e);
    if (r < 0) {
        FUZZ_CHECK(r == -E_INVALID_TOKEN && e.code == r && !hdr && !claims);
        return;
    }
    /* Only our keys sign, and the fuzzer does not have them: reaching here is a forgery. */
    FUZZ_CHECK(!"a token the fuzzer made verified");
}

static void sign_verify(const uint8_t *data, size_t size)
{
    if (size < 4)
        return;
    bool ec = data[1] & 1;
    json_t *claims = json_loadb((const char *)data + 4, size - 4, JSON_REJECT_DUPLICATES, NULL);
    if (!claims)
        return;
    if (!json_is_object(claims)) {
        json_decref(claims);
        return;
    }
    check_time(claims, data, size);
    char *tok = NULL;
    struct err e = {0};
    int r = oidc_jwt_sign(claims, ec ? ec_key : rsa_key, ec ? "ec" : "rsa", ec ? "ES256" : "RS256",
                          &tok, &e);
    if (r < 0)
        fprintf(stderr, "signing failed: %s\n", e.msg);
    FUZZ_CHECK(r == 0);
    size_t len = strlen(tok);
    json_t *hdr = NULL, *got = NULL;
    r = oidc_jwt_verify(tok, len, key_cb, NULL, &hdr, &got, &e);
    if (len <= OIDC_JWT_MAX && json_dumpb(claims, NULL, 0, JSON_COMPACT) <= OIDC_JWT_CLAIMS_MAX) {
        if (r < 0)
            fprintf(stderr, "verify of a token we signed failed: %s\n", e.msg);
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(json_equal(claims, got));
        FUZZ_CHECK(strcmp(json_string_value(json_object_get(hdr, "alg")), ec ? "ES256" : "RS256") ==
                   0);
    }
    json_decref(hdr);
    json_decref(got);

    /* One changed byte: never verifies. */
    uint8_t x = data[3] ? data[3] : 1;
    size_t pos = data[2] % len;
    tok[pos] = (char)(tok[pos] ^ x);
    hdr = got = NULL;
    r = oidc_jwt_verify(tok, len, key_cb, NULL, &hdr, &got, &e);
    FUZZ_CHECK(r < 0 && !hdr && !got);
    free(tok);
    json_decref(claims);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > OIDC_JWT_MAX + 64)
        return 0;
    if (data[0] & 1)
        sign_verify(data, size);
    else
        verify_raw(data + 1, size - 1);
    return 0;
}
