/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for oidc/jwt.c: round trips for RS256 and ES256, and the hostile tokens a JWS
 * verifier meets (alg none, HS256 keyed with the RSA public key's PEM, algorithm/key
 * mismatches, unknown kid, crit, malformed base64url, oversized parts, duplicate names).
 * Hostile tokens are built here by hand and signed with OpenSSL directly, so a test fails if
 * the verifier accepts what it must refuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "common/b64.h"
#include "common/buf.h"
#include "oidc/jwt.h"

static EVP_PKEY *rsa_key, *rsa_key2, *ec_key, *rsa_small;

struct keyring {
    const char *kid;
    EVP_PKEY *key;
    const char *alg; /* registered alg, "" to derive */
    int calls;
};

static int lookup(const char *kid, EVP_PKEY **ret_key, char alg[OIDC_JWT_ALG_MAX], void *cbdata,
                  struct err *e)
{
    struct keyring *k = cbdata;
    k->calls++;
    if (!kid || strcmp(kid, k->kid) != 0)
        return err_set(e, -E_NOTFOUND, "unknown kid");
    EVP_PKEY_up_ref(k->key);
    *ret_key = k->key;
    strcpy(alg, k->alg);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    rsa_key = EVP_RSA_gen(2048);
    rsa_key2 = EVP_RSA_gen(2048);
    rsa_small = EVP_RSA_gen(1024);
    ec_key = EVP_EC_gen("P-256");
    return rsa_key && rsa_key2 && ec_key && rsa_small ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(rsa_key2);
    EVP_PKEY_free(rsa_small);
    EVP_PKEY_free(ec_key);
    return 0;
}

static char *b64s(const char *s)
{
    return b64url_encode_alloc(s, strlen(s));
}

/* header.claims with an RS256/ES256 signature computed by OpenSSL, over the given raw JSON. */
static char *raw_signed(const char *header, const char *claims, EVP_PKEY *key, bool ecdsa_raw)
{
    char *h = b64s(header), *c = b64s(claims);
    struct buf b = BUF_INIT;
    buf_addf(&b, "%s.%s", h, c);
    free(h);
    free(c);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t siglen = 0;
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestSign(md, NULL, &siglen, (unsigned char *)b.data, b.len), 1);
    unsigned char *sig = malloc(siglen);
    assert_int_equal(EVP_DigestSign(md, sig, &siglen, (unsigned char *)b.data, b.len), 1);
    EVP_MD_CTX_free(md);
    unsigned char raw[64];
    if (ecdsa_raw) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
        const BIGNUM *r, *s;
        ECDSA_SIG_get0(es, &r, &s);
        BN_bn2binpad(r, raw, 32);
        BN_bn2binpad(s, raw + 32, 32);
        ECDSA_SIG_free(es);
    }
    char *s64 = ecdsa_raw ? b64url_encode_alloc(raw, 64) : b64url_encode_alloc(sig, siglen);
    free(sig);
    buf_addf(&b, ".%s", s64);
    free(s64);
    return buf_detach(&b, NULL);
}

static int verify(const char *tok, struct keyring *kr, json_t **claims)
{
    struct err e = {0};
    int r = oidc_jwt_verify(tok, strlen(tok), lookup, kr, NULL, claims, &e);
    return r;
}

static void test_rs256_roundtrip(void **state)
{
    (void)state;
    struct err e = {0};
    json_t *claims = json_pack("{s:s, s:I, s:[s,s]}", "sub", "123", "exp", (json_int_t)2000000000,
                               "aud", "a@p", "p");
    char *tok = NULL;
    assert_int_equal(oidc_jwt_sign(claims, rsa_key, "k1", "RS256", &tok, &e), 0);
    struct keyring kr = {"k1", rsa_key, "RS256", 0};
    json_t *hdr = NULL, *got = NULL;
    assert_int_equal(oidc_jwt_verify(tok, strlen(tok), lookup, &kr, &hdr, &got, &e), 0);
    assert_true(json_equal(claims, got));
    assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "RS256");
    assert_string_equal(json_string_value(json_object_get(hdr, "kid")), "k1");
    assert_string_equal(json_string_value(json_object_get(hdr, "typ")), "JWT");
    json_decref(hdr);
    json_decref(got);

    /* The same token against another RSA key under the same kid: refused. */
    struct keyring other = {"k1", rsa_key2, "RS256", 0};
    assert_int_equal(verify(tok, &other, NULL), -E_INVALID_TOKEN);

    /* A flipped bit in the claims: refused. */
    char *dot = strchr(tok, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(tok, &kr, NULL), -E_INVALID_TOKEN);
    free(tok);
    json_decref(claims);
}

static void test_es256_roundtrip(void **state)
{
    (void)state;
    struct err e = {0};
    json_t *claims = json_pack("{s:s}", "sub", "x");
    char *tok = NULL;
    assert_int_equal(oidc_jwt_sign(claims, ec_key, "ec1", "ES256", &tok, &e), 0);
    /* JWS ES256 signatures are the raw 64-byte r||s: 86 base64url characters. */
    assert_int_equal(strlen(strrchr(tok, '.') + 1), 86);
    struct keyring kr = {"ec1", ec_key, "", 0};
    json_t *got = NULL;
    assert_int_equal(verify(tok, &kr, &got), 0);
    assert_true(json_equal(claims, got));
    json_decref(got);
    free(tok);

    /* An independently produced raw-signature token verifies too (interop). */
    tok = raw_signed("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", "{\"sub\":\"y\"}", ec_key, true);
    assert_int_equal(verify(tok, &kr, NULL), 0);
    free(tok);
    /* A DER signature (what OpenSSL emits) is not JWS: refused. */
    tok = raw_signed("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", "{\"sub\":\"y\"}", ec_key, false);
    assert_int_equal(verify(tok, &kr, NULL), -E_INVALID_TOKEN);
    free(tok);
    json_decref(claims);
}

static void test_sign_refuses_mismatch(void **state)
{
    (void)state;
    struct err e = {0};
    json_t *claims = json_pack("{s:s}", "sub", "x");
    char *tok = NULL;
    assert_int_equal(oidc_jwt_sign(claims, rsa_key, "k", "ES256", &tok, &e), -E_INVALID);
    assert_int_equal(oidc_jwt_sign(claims, ec_key, "k", "RS256", &tok, &e), -E_INVALID);
    assert_int_equal(oidc_jwt_sign(claims, rsa_small, "k", "RS256", &tok, &e), -E_INVALID);
    assert_int_equal(oidc_jwt_sign(claims, rsa_key, "k", "HS256", &tok, &e), -E_INVALID);
    json_t *arr = json_array();
    assert_int_equal(oidc_jwt_sign(arr, rsa_key, "k", "RS256", &tok, &e), -E_INVALID);
    json_decref(arr);
    assert_null(tok);
    json_decref(claims);
}

static void test_alg_none(void **state)
{
    (void)state;
    struct keyring kr = {"k1", rsa_key, "", 0};
    char *h = b64s("{\"alg\":\"none\",\"kid\":\"k1\"}"), *c = b64s("{\"sub\":\"admin\"}");
    char tok[512];
    snprintf(tok, sizeof tok, "%s.%s.", h, c);
    assert_int_equal(verify(tok, &kr, NULL), -E_INVALID_TOKEN);
    snprintf(tok, sizeof tok, "%s.%s", h, c);
    assert_int_equal(verify(tok, &kr, NULL), -E_INVALID_TOKEN);
    snprintf(tok, sizeof tok, "%s.%s.AAAA", h, c);
    assert_int_equal(verify(tok, &kr, NULL), -E_INVALID_TOKEN);
    free(h);
    h = b64s("{\"alg\":\"None\",\"kid\":\"k1\"}");
    snprintf(tok, sizeof tok, "%s.%s.", h, c);
    assert_int_equal(verify(tok, &kr, NULL), -E_INVALID_TOKEN);
    free(h);
    free(c);
}

/* The classic confusion: HS256 keyed with the verifier's RSA public key PEM. */
static void test_hs256_with_public_pem(void **state)
{
    (void)state;
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, rsa_key), 1);
    char *pem = NULL;
    long pemlen = BIO_get_mem_data(bio, &pem);

    char *h = b64s("{\"alg\":\"HS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}");
    char *c = b64s("{\"sub\":\"admin\",\"exp\":2000000000}");
    struct buf b = BUF_INIT;
    buf_addf(&b, "%s.%s", h, c);
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), pem, (int)pemlen, (unsigned char *)b.data, b.len, mac, &maclen);
    char *m64 = b64url_encode_alloc(mac, maclen);
    buf_addf(&b, ".%s", m64);
    char *tok = buf_detach(&b, NULL);

    struct keyring kr = {"k1", rsa_key, "", 0};
    assert_int_equal(verify(tok, &kr, NULL), -E_INVALID_TOKEN);
    struct keyring kr2 = {"k1", rsa_key, "RS256", 0};
    assert_int_equal(verify(tok, &kr2, NULL), -E_INVALID_TOKEN);
    free(tok);
    free(m64);
    free(h);
    free(c);
    BIO_free(bio);
}

static void test_alg_key_mismatch(void **state)
{
    (void)state;
    /* RS256 header, EC key: refused even before a signature is computed. */
    char *tok = raw_signed("{\"alg\":\"RS256\",\"kid\":\"k\"}", "{}", rsa_key, false);
    struct keyring ec = {"k", ec_key, "", 0};
    assert_int_equal(verify(tok, &ec, NULL), -E_INVALID_TOKEN);
    /* The RSA key registered for ES256 (a mistake in the store): refused. */
    struct keyring wrong = {"k", rsa_key, "ES256", 0};
    assert_int_equal(verify(tok, &wrong, NULL), -E_INVALID_TOKEN);
    /* The right key: accepted (the token itself is fine). */
    struct keyring ok = {"k", rsa_key, "RS256", 0};
    assert_int_equal(verify(tok, &ok, NULL), 0);
    free(tok);

    /* An EC signature labelled RS256: the signature is good for the key, the label is not. */
    tok = raw_signed("{\"alg\":\"RS256\",\"kid\":\"k\"}", "{}", ec_key, true);
    assert_int_equal(verify(tok, &ec, NULL), -E_INVALID_TOKEN);
    free(tok);
    tok = raw_signed("{\"alg\":\"ES256\",\"kid\":\"k\"}", "{}", ec_key, true);
    assert_int_equal(verify(tok, &ec, NULL), 0);
    free(tok);

    /* ES256 header over an RSA key. */
    tok = raw_signed("{\"alg\":\"ES256\",\"kid\":\"k\"}", "{}", ec_key, true);
    struct keyring rsa = {"k", rsa_key, "", 0};
    assert_int_equal(verify(tok, &rsa, NULL), -E_INVALID_TOKEN);
    free(tok);

    /* Other algorithms are never accepted, whatever the key. */
    const char *algs[] = {"RS384", "RS512", "PS256", "ES384", "HS512", "rs256", "EdDSA"};
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        char hdr[64];
        snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"kid\":\"k\"}", algs[i]);
        tok = raw_signed(hdr, "{}", rsa_key, false);
        assert_int_equal(verify(tok, &ok, NULL), -E_INVALID_TOKEN);
        free(tok);
    }
    /* A short RSA key is not usable. */
    tok = raw_signed("{\"alg\":\"RS256\",\"kid\":\"k\"}", "{}", rsa_small, false);
    struct keyring small = {"k", rsa_small, "", 0};
    assert_int_equal(verify(tok, &small, NULL), -E_INVALID_TOKEN);
    free(tok);
}

static void test_wrong_kid(void **state)
{
    (void)state;
    struct err e = {0};
    json_t *claims = json_pack("{s:s}", "sub", "x");
    char *tok = NULL;
    assert_int_equal(oidc_jwt_sign(claims, rsa_key, "other", "RS256", &tok, &e), 0);
    struct keyring kr = {"k1", rsa_key, "", 0};
    assert_int_equal(verify(tok, &kr, NULL), -E_INVALID_TOKEN);
    free(tok);
    /* No kid at all: the callback gets NULL and refuses. */
    tok = raw_signed("{\"alg\":\"RS256\"}", "{}", rsa_key, false);
    kr.calls = 0;
    assert_int_equal(verify(tok, &kr, NULL), -E_INVALID_TOKEN);
    assert_int_equal(kr.calls, 1);
    free(tok);
    /* A kid that is not a string, empty, or too long. */
    const char *hdrs[] = {"{\"alg\":\"RS256\",\"kid\":7}", "{\"alg\":\"RS256\",\"kid\":\"\"}",
                          "{\"alg\":\"RS256\",\"kid\":[\"k1\"]}"};
    for (size_t i = 0; i < 3; i++) {
        tok = raw_signed(hdrs[i], "{}", rsa_key, false);
        kr.calls = 0;
        assert_int_equal(verify(tok, &kr, NULL), -E_INVALID_TOKEN);
        assert_int_equal(kr.calls, 0);
        free(tok);
    }
    char big[400];
    memset(big, 'a', 200);
    big[200] = '\0';
    char hdr[512];
    snprintf(hdr, sizeof hdr, "{\"alg\":\"RS256\",\"kid\":\"%s\"}", big);
    tok = raw_signed(hdr, "{}", rsa_key, false);
    assert_int_equal(verify(tok, &kr, NULL), -E_INVALID_TOKEN);
    free(tok);
    json_decref(claims);
}

static void test_crit_and_extensions(void **state)
{
    (void)state;
    struct keyring kr = {"k", rsa_key, "", 0};
    const char *hdrs[] = {
        "{\"alg\":\"RS256\",\"kid\":\"k\",\"crit\":[\"exp\"],\"exp\":1}",
        "{\"alg\":\"RS256\",\"kid\":\"k\",\"crit\":[]}",
        "{\"alg\":\"RS256\",\"kid\":\"k\",\"b64\":false,\"crit\":[\"b64\"]}",
        "{\"alg\":\"RS256\",\"kid\":\"k\",\"b64\":false}",
        "{\"alg\":\"RS256\",\"kid\":\"k\",\"zip\":\"DEF\"}",
        "{\"alg\":\"RS256\",\"kid\":\"k\",\"typ\":1}",
        "{\"alg\":\"RS256\",\"kid\":\"k\",\"alg\":\"RS256\"}", /* duplicate name */
        "{\"alg\":\"RS256\",\"kid\":\"k\",\"kid\":\"j\"}",
        "[\"RS256\"]",
        "\"RS256\"",
        "{\"alg\":\"RS256\",\"kid\":\"k\"} trailing",
        "{\"kid\":\"k\"}",
        "{\"alg\":null,\"kid\":\"k\"}",
    };
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
        char *tok = raw_signed(hdrs[i], "{}", rsa_key, false);
        assert_int_equal(verify(tok, &kr, NULL), -E_INVALID_TOKEN);
        free(tok);
    }
    /* Unknown but harmless header names are fine (jku/x5u are never followed). */
    char *tok = raw_signed("{\"alg\":\"RS256\",\"kid\":\"k\",\"jku\":\"https://evil.example/\","
                           "\"x5u\":\"https://evil.example/\"}",
                           "{}", rsa_key, false);
    assert_int_equal(verify(tok, &kr, NULL), 0);
    free(tok);
    /* Claims that are not a JSON object, or duplicate names in the claims. */
    const char *claims[] = {"[]", "1", "{\"sub\":\"a\",\"sub\":\"b\"}", "{"};
    for (size_t i = 0; i < 4; i++) {
        tok = raw_signed("{\"alg\":\"RS256\",\"kid\":\"k\"}", claims[i], rsa_key, false);
        assert_int_equal(verify(tok, &kr, NULL), -E_INVALID_TOKEN);
        free(tok);
    }
}

static void test_bad_base64(void **state)
{
    (void)state;
    struct keyring kr = {"k", rsa_key, "", 0};
    char *good = raw_signed("{\"alg\":\"RS256\",\"kid\":\"k\"}", "{\"sub\":\"x\"}", rsa_key, false);
    assert_int_equal(verify(good, &kr, NULL), 0);
    size_t n = strlen(good);
    char *t = malloc(n + 8);

    /* A '+' or '/' (standard alphabet) in each segment. */
    char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
    size_t pos[3] = {1, (size_t)(d1 - good) + 2, (size_t)(d2 - good) + 2};
    for (int i = 0; i < 3; i++) {
        strcpy(t, good);
        t[pos[i]] = '+';
        assert_int_equal(verify(t, &kr, NULL), -E_INVALID_TOKEN);
        t[pos[i]] = '/';
        assert_int_equal(verify(t, &kr, NULL), -E_INVALID_TOKEN);
    }
    /* Padding appended to the signature. */
    snprintf(t, n + 8, "%s==", good);
    assert_int_equal(verify(t, &kr, NULL), -E_INVALID_TOKEN);
    /* A space, a NUL inside, four segments, two segments, empty parts. */
    strcpy(t, good);
    t[5] = ' ';
    assert_int_equal(verify(t, &kr, NULL), -E_INVALID_TOKEN);
    strcpy(t, good);
    assert_int_equal(oidc_jwt_verify(t, n + 1, lookup, &kr, NULL, NULL, NULL), -E_INVALID_TOKEN);
    snprintf(t, n + 8, "%s.AA", good);
    assert_int_equal(verify(t, &kr, NULL), -E_INVALID_TOKEN);
    strcpy(t, good);
    *strrchr(t, '.') = '\0';
    assert_int_equal(verify(t, &kr, NULL), -E_INVALID_TOKEN);
    assert_int_equal(verify("..", &kr, NULL), -E_INVALID_TOKEN);
    assert_int_equal(verify("", &kr, NULL), -E_INVALID_TOKEN);
    assert_int_equal(verify("a.b.c", &kr, NULL), -E_INVALID_TOKEN);
    /* A non-canonical last character in the signature (leftover bits set). */
    strcpy(t, good);
    char *last = t + strlen(t) - 1;
    /* RSA-2048 signature = 256 bytes = 342 chars + 2 leftover bits in the last char. */
    *last = *last == 'B' ? 'C' : 'B';
    assert_int_equal(verify(t, &kr, NULL), -E_INVALID_TOKEN);
    free(t);
    free(good);
}

static void test_size_caps(void **state)
{
    (void)state;
    struct keyring kr = {"k", rsa_key, "", 0};
    /* A header over OIDC_JWT_HEADER_MAX. */
    struct buf h = BUF_INIT;
    buf_adds(&h, "{\"alg\":\"RS256\",\"kid\":\"k\",\"x\":\"");
    for (int i = 0; i < OIDC_JWT_HEADER_MAX; i++)
        buf_adds(&h, "a");
    buf_adds(&h, "\"}");
    char *tok = raw_signed(h.data, "{}", rsa_key, false);
    kr.calls = 0;
    assert_int_equal(verify(tok, &kr, NULL), -E_INVALID_TOKEN);
    assert_int_equal(kr.calls, 0);
    free(tok);
    buf_release(&h);
    /* Claims over OIDC_JWT_CLAIMS_MAX. */
    struct buf c = BUF_INIT;
    buf_adds(&c, "{\"x\":\"");
    for (int i = 0; i < OIDC_JWT_CLAIMS_MAX; i++)
        buf_adds(&c, "a");
    buf_adds(&c, "\"}");
    tok = raw_signed("{\"alg\":\"RS256\",\"kid\":\"k\"}", c.data, rsa_key, false);
    assert_int_equal(verify(tok, &kr, NULL), -E_INVALID_TOKEN);
    free(tok);
    buf_release(&c);
    /* A whole token over OIDC_JWT_MAX, and a deeply nested header. */
    char *huge = malloc(OIDC_JWT_MAX + 2);
    memset(huge, 'A', OIDC_JWT_MAX + 1);
    huge[10] = '.';
    huge[20] = '.';
    huge[OIDC_JWT_MAX + 1] = '\0';
    assert_int_equal(verify(huge, &kr, NULL), -E_INVALID_TOKEN);
    free(huge);
    struct buf d = BUF_INIT;
    for (int i = 0; i < 300; i++)
        buf_adds(&d, "[");
    tok = raw_signed(d.data, "{}", rsa_key, false);
    assert_int_equal(verify(tok, &kr, NULL), -E_INVALID_TOKEN);
    free(tok);
    buf_release(&d);
}

static void test_check_time(void **state)
{
    (void)state;
    struct err e;
    json_t *c = json_pack("{s:I, s:I, s:I}", "exp", (json_int_t)1000, "nbf", (json_int_t)900, "iat",
                          (json_int_t)900);
    assert_int_equal(oidc_jwt_check_time(c, 950, 0, true, &e), 0);
    assert_int_equal(oidc_jwt_check_time(c, 1000, 0, true, &e), -E_INVALID_TOKEN);
    assert_int_equal(oidc_jwt_check_time(c, 1003, 5, true, &e), 0);
    assert_int_equal(oidc_jwt_check_time(c, 890, 5, true, &e), -E_INVALID_TOKEN);
    assert_int_equal(oidc_jwt_check_time(c, 896, 5, true, &e), 0);
    json_decref(c);
    c = json_pack("{s:s}", "exp", "2000000000");
    assert_int_equal(oidc_jwt_check_time(c, 950, 0, true, &e), -E_INVALID_TOKEN);
    json_decref(c);
    c = json_object();
    assert_int_equal(oidc_jwt_check_time(c, 950, 0, true, &e), -E_INVALID_TOKEN);
    assert_int_equal(oidc_jwt_check_time(c, 950, 0, false, &e), 0);
    json_decref(c);
}

static void test_hash_claim(void **state)
{
    (void)state;
    struct err e;
    char out[44];
    /* The example of OpenID Connect Core 1.0, appendix A.3. */
    const char *at = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
    assert_int_equal(oidc_jwt_hash_claim(at, strlen(at), "RS256", out, &e), 0);
    assert_string_equal(out, "77QmUPtjPfzWtF2AnpK9RQ");
    assert_int_equal(oidc_jwt_hash_claim(at, strlen(at), "HS256", out, &e), -E_INVALID);
}

int main(void)
{
    cmocka_set_message_output(CM_OUTPUT_TAP);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rs256_roundtrip),
        cmocka_unit_test(test_es256_roundtrip),
        cmocka_unit_test(test_sign_refuses_mismatch),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_hs256_with_public_pem),
        cmocka_unit_test(test_alg_key_mismatch),
        cmocka_unit_test(test_wrong_kid),
        cmocka_unit_test(test_crit_and_extensions),
        cmocka_unit_test(test_bad_base64),
        cmocka_unit_test(test_size_caps),
        cmocka_unit_test(test_check_time),
        cmocka_unit_test(test_hash_claim),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
