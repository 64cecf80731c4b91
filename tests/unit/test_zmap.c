/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for migrate/zmap: v1's arrays, hashes, enums, client ids, login names, keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <crypt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "common/b64.h"
#include "migrate/zmap.h"

static void test_text_array_plain(void **state)
{
    struct zmap_strv l = {0};
    (void)state;
    assert_int_equal(
        zmap_parse_text_array("{https://a.example/cb,https://b.example/cb/}", &l, NULL), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0], "https://a.example/cb");
    assert_string_equal(l.v[1], "https://b.example/cb/");
    zmap_strv_release(&l);

    assert_int_equal(zmap_parse_text_array("{}", &l, NULL), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(zmap_parse_text_array(NULL, &l, NULL), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(zmap_parse_text_array("", &l, NULL), 0);
    assert_int_equal(l.n, 0);
}

static void test_text_array_quoting(void **state)
{
    struct zmap_strv l = {0};
    (void)state;
    /* As PostgreSQL prints them: quotes for specials, backslash escapes inside quotes. */
    assert_int_equal(zmap_parse_text_array("{\"a,b\",\"c d\",\"e\\\"f\",\"g\\\\h\",\"\","
                                           "\"NULL\",NULL,null,\"{x}\",http://localhost:*/cb}",
                                           &l, NULL),
                     0);
    assert_int_equal(l.n, 10);
    assert_string_equal(l.v[0], "a,b");
    assert_string_equal(l.v[1], "c d");
    assert_string_equal(l.v[2], "e\"f");
    assert_string_equal(l.v[3], "g\\h");
    assert_string_equal(l.v[4], "");
    assert_string_equal(l.v[5], "NULL"); /* quoted: the string */
    assert_null(l.v[6]);                 /* unquoted: SQL NULL */
    assert_null(l.v[7]);
    assert_string_equal(l.v[8], "{x}");
    assert_string_equal(l.v[9], "http://localhost:*/cb");
    zmap_strv_release(&l);

    /* Bounds decoration and white space around elements. */
    assert_int_equal(zmap_parse_text_array("[0:1]={ a , \"b \" }", &l, NULL), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0], "a");
    assert_string_equal(l.v[1], "b ");
    zmap_strv_release(&l);

    /* An escaped NULL is the string. */
    assert_int_equal(zmap_parse_text_array("{\\NULL}", &l, NULL), 0);
    assert_string_equal(l.v[0], "NULL");
    zmap_strv_release(&l);
}

static void test_text_array_rejects(void **state)
{
    struct zmap_strv l = {0};
    struct err e = {0};
    (void)state;
    const char *bad[] = {"a,b", "{a,b",   "{\"a}",      "{{a,b},{c,d}}", "{a}x", "{a,,b}",
                         "{,}", "{a\"b}", "[1:2]{a,b}", "{a,}",          "x{a}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        l.n = 99;
        assert_int_equal(zmap_parse_text_array(bad[i], &l, &e), -E_INVALID);
        assert_int_equal(l.n, 99); /* untouched on failure */
    }
}

static void test_int_array(void **state)
{
    int32_t *v = NULL;
    size_t n = 0;
    (void)state;
    assert_int_equal(zmap_parse_int_array("{0,2}", &v, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_int_equal(v[0], 0);
    assert_int_equal(v[1], 2);
    free(v);
    assert_int_equal(zmap_parse_int_array("{-1}", &v, &n, NULL), 0);
    assert_int_equal(v[0], -1);
    free(v);
    assert_int_equal(zmap_parse_int_array(NULL, &v, &n, NULL), 0);
    assert_int_equal(n, 0);
    assert_null(v);
    assert_int_equal(zmap_parse_int_array("{1,NULL}", &v, &n, NULL), -E_INVALID);
    assert_int_equal(zmap_parse_int_array("{1,x}", &v, &n, NULL), -E_INVALID);
    assert_int_equal(zmap_parse_int_array("{99999999999}", &v, &n, NULL), -E_INVALID);
}

static char *make_hash(const char *prefix, unsigned long cost, const char *pw)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data d = {0};
    if (!crypt_gensalt_rn(prefix, cost, NULL, 0, setting, sizeof setting))
        return NULL;
    char *h = crypt_rn(pw, setting, &d, sizeof d);
    return (h && h[0] != '*') ? strdup(h) : NULL;
}

static void test_hash_formats_real(void **state)
{
    (void)state;
    /* Hashes libxcrypt makes here must be recognized as verifiable, by their own family. */
    static const struct {
        const char *prefix;
        unsigned long cost;
        enum zmap_hash_fmt fmt;
    } cases[] = {
        {"$2b$", 4, ZMAP_HASH_BCRYPT},        {"$2y$", 4, ZMAP_HASH_BCRYPT},
        {"$2a$", 4, ZMAP_HASH_BCRYPT},        {"$y$", 0, ZMAP_HASH_YESCRYPT},
        {"$6$", 0, ZMAP_HASH_SHA512CRYPT},    {"$5$", 0, ZMAP_HASH_SHA256CRYPT},
        {"$1$", 0, ZMAP_HASH_MD5CRYPT},       {"$7$", 0, ZMAP_HASH_SCRYPT7},
        {"$6$", 5000, ZMAP_HASH_SHA512CRYPT}, /* rounds=... */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *h = make_hash(cases[i].prefix, cases[i].cost, "secret");
        assert_non_null(h);
        enum zmap_hash_fmt f;
        assert_int_equal(zmap_hash_format(h), cases[i].fmt);
        assert_int_equal(zmap_hash_check(h, &f, NULL), 0);
        assert_int_equal(f, cases[i].fmt);
        assert_true(zmap_hash_verifiable(f));
        /* A truncated hash is not one. */
        h[strlen(h) - 1] = '\0';
        assert_int_equal(zmap_hash_format(h), ZMAP_HASH_UNKNOWN);
        free(h);
    }
}

static void test_hash_formats_v1(void **state)
{
    struct err e = {0};
    enum zmap_hash_fmt f;
    (void)state;
    /* From the Koder inventory fixture (Go's bcrypt writes $2a$). */
    const char *v1 = "$2a$04$m54skdVdIk9p3iHNzTpR8uNiEd.wKbmCf058sffzhXYhwpW4sYKEu";
    assert_int_equal(zmap_hash_format(v1), ZMAP_HASH_BCRYPT);
    assert_int_equal(zmap_hash_check(v1, &f, &e), 0);
    assert_int_equal(zmap_hash_check("", &f, &e), 0);
    assert_int_equal(f, ZMAP_HASH_NONE);
    assert_int_equal(zmap_hash_check(NULL, &f, &e), 0);
    assert_int_equal(f, ZMAP_HASH_NONE);

    /* Recognized, reported as not verifiable. */
    static const struct {
        const char *h;
        enum zmap_hash_fmt fmt;
    } un[] = {
        {"$argon2id$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", ZMAP_HASH_ARGON2},
        {"$argon2i$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", ZMAP_HASH_ARGON2},
        {"$scrypt$ln=16,r=8,p=1$c2FsdA$aGFzaA", ZMAP_HASH_SCRYPT_PHC},
        {"$pbkdf2-sha256$29000$N2d5MOYcg3Aj$Y5n9K0.Ak3YyJb/7oCC2xmP5TI8", ZMAP_HASH_PBKDF2},
        {"$pbkdf2$1000$c2FsdA$aGFzaA", ZMAP_HASH_PBKDF2},
        {"$P$BZ3mdSLtmdIwbdGz1STH4d6x4e1lI/.", ZMAP_HASH_PHPASS},
        {"5f4dcc3b5aa765d61d8327deb882cf99", ZMAP_HASH_MD5PLAIN},
    };
    for (size_t i = 0; i < sizeof un / sizeof un[0]; i++) {
        assert_int_equal(zmap_hash_format(un[i].h), un[i].fmt);
        assert_false(zmap_hash_verifiable(un[i].fmt));
        assert_int_equal(zmap_hash_check(un[i].h, &f, &e), -E_INVALID);
        assert_non_null(strstr(e.msg, "cannot verify"));
        assert_null(strstr(e.msg, un[i].h)); /* the hash is not echoed */
    }
    /* Unknown or malformed. */
    const char *bad[] = {"$2a$04$short",
                         "$2a$03$m54skdVdIk9p3iHNzTpR8uNiEd.wKbmCf058sffzhXYhwpW4sYKEu",
                         "$2x$04$m54skdVdIk9p3iHNzTpR8uNiEd.wKbmCf058sffzhXYhwpW4sYKEu",
                         "plaintext",
                         "$9$abc",
                         "$y$j9T$abc",
                         "{\"CryptoType\":1}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(zmap_hash_format(bad[i]), ZMAP_HASH_UNKNOWN);
        assert_int_equal(zmap_hash_check(bad[i], &f, &e), -E_INVALID);
    }
}

static void test_cryptovalue(void **state)
{
    char *h = NULL;
    struct err e = {0};
    (void)state;
    const char *bc = "$2a$14$DJo9xe5/BmmFzoSJARYQJe2vChsDqYKW/DlHJF4wz6XKtL20O0KWi";
    char *b64 = b64_encode_alloc(bc, strlen(bc));
    char json[256];
    snprintf(json, sizeof json,
             "{\"CryptoType\":1,\"Algorithm\":\"bcrypt\",\"KeyID\":\"\",\"Crypted\":\"%s\"}", b64);
    assert_int_equal(zmap_cryptovalue_hash(json, &h, &e), 0);
    assert_string_equal(h, bc);
    free(h);
    snprintf(json, sizeof json,
             "{\"CryptoType\":0,\"Algorithm\":\"aes\",\"KeyID\":\"userKey\",\"Crypted\":\"%s\"}",
             b64);
    assert_int_equal(zmap_cryptovalue_hash(json, &h, &e), -E_INVALID);
    assert_non_null(strstr(e.msg, "master key"));
    assert_int_equal(zmap_cryptovalue_hash("{\"CryptoType\":1,\"Crypted\":\"!!\"}", &h, &e),
                     -E_INVALID);
    assert_int_equal(zmap_cryptovalue_hash("not json", &h, &e), -E_INVALID);
    free(b64);
}

static void test_enums(void **state)
{
    (void)state;
    assert_string_equal(zmap_enum_name(ZMAP_APP_TYPE, 0), "web");
    assert_string_equal(zmap_enum_name(ZMAP_APP_TYPE, 1), "user_agent");
    assert_string_equal(zmap_enum_name(ZMAP_APP_TYPE, 2), "native");
    assert_null(zmap_enum_name(ZMAP_APP_TYPE, 3));
    assert_string_equal(zmap_enum_name(ZMAP_AUTH_METHOD, 3), "private_key_jwt");
    assert_null(zmap_enum_name(ZMAP_AUTH_METHOD, 4));
    assert_null(zmap_enum_name(ZMAP_AUTH_METHOD, -1));
    assert_string_equal(zmap_enum_name(ZMAP_RESPONSE_TYPE, 2), "id_token token");
    assert_null(zmap_enum_name(ZMAP_RESPONSE_TYPE, -1)); /* newest v1's "unspecified" */
    assert_string_equal(zmap_enum_name(ZMAP_GRANT_TYPE, 4), "token_exchange");
    assert_null(zmap_enum_name(ZMAP_GRANT_TYPE, 5));
    assert_string_equal(zmap_enum_name(ZMAP_TOKEN_TYPE, 1), "jwt");
    assert_null(zmap_enum_name(ZMAP_APP_STATE, 0));
    assert_null(zmap_enum_name(ZMAP_APP_STATE, 3));
    assert_string_equal(zmap_enum_name(ZMAP_APP_STATE, 2), "inactive");
    assert_string_equal(zmap_enum_name(ZMAP_USER_STATE, 6), "initial");
    assert_string_equal(zmap_enum_name(ZMAP_USER_STATE, 4), "locked");
    assert_null(zmap_enum_name(ZMAP_USER_STATE, 7));
    assert_null(zmap_enum_name(ZMAP_USER_TYPE, 0));
    assert_string_equal(zmap_enum_name(ZMAP_WEB_KEY_STATE, 2), "active");
    assert_null(zmap_enum_name(ZMAP_GENDER, -1));
    assert_int_equal(zmap_api_auth_method(0), 0);
    assert_int_equal(zmap_api_auth_method(1), 3);
    assert_int_equal(zmap_api_auth_method(2), -1);
    assert_int_equal(zmap_ns_to_ms(2000000000), 2000);
    assert_int_equal(zmap_ns_to_ms(-5), 0);
    assert_int_equal(zmap_ns_to_s(43200000000000LL), 43200);
    assert_int_equal(zmap_ns_to_s(7776000000000000LL), 7776000);
}

static void test_client_id_forms(void **state)
{
    (void)state;
    assert_int_equal(zmap_client_id_form("250000000091973509"), ZMAP_CID_NUMERIC);
    assert_int_equal(zmap_client_id_form("250000000080498240@koder_bull"), ZMAP_CID_AT_PROJECT);
    assert_int_equal(zmap_client_id_form("250000000016940950@zitadel"), ZMAP_CID_AT_PROJECT);
    assert_int_equal(zmap_client_id_form("my-client"), ZMAP_CID_OTHER);
    assert_int_equal(zmap_client_id_form("1@a@b"), ZMAP_CID_OTHER);
    assert_int_equal(zmap_client_id_form("123@"), ZMAP_CID_OTHER);
    assert_int_equal(zmap_client_id_form(""), ZMAP_CID_INVALID);
    assert_int_equal(zmap_client_id_form(NULL), ZMAP_CID_INVALID);
    assert_int_equal(zmap_client_id_form("a\nb"), ZMAP_CID_INVALID);
    char longid[300];
    memset(longid, '1', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(zmap_client_id_form(longid), ZMAP_CID_INVALID);
}

static void test_login_names(void **state)
{
    struct zmap_strv l = {0};
    (void)state;
    const struct zmap_domain doms[] = {{"other.example", false}, {"koder-id.id.koder.dev", true}};
    assert_int_equal(zmap_login_names("root", true, doms, 2, &l, NULL), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0], "root@koder-id.id.koder.dev"); /* primary first */
    assert_string_equal(l.v[1], "root@other.example");
    zmap_strv_release(&l);

    /* Without the policy: the username, even one that contains '@'. */
    assert_int_equal(zmap_login_names("zitadel-admin@zitadel.localhost", false, doms, 2, &l, NULL),
                     0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "zitadel-admin@zitadel.localhost");
    zmap_strv_release(&l);

    /* Policy without any verified domain. */
    assert_int_equal(zmap_login_names("root", true, NULL, 0, &l, NULL), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "root");
    zmap_strv_release(&l);

    assert_int_equal(zmap_login_names("", false, NULL, 0, &l, NULL), -E_INVALID);
}

static void test_bytea(void **state)
{
    unsigned char *b = NULL;
    size_t n = 0;
    (void)state;
    assert_int_equal(zmap_bytea_decode("\\x2d2d0aff", &b, &n, NULL), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(b, "--\n\xff", 4);
    free(b);
    assert_int_equal(zmap_bytea_decode("\\x2d2", &b, &n, NULL), -E_INVALID);
    assert_int_equal(zmap_bytea_decode("\\xzz", &b, &n, NULL), -E_INVALID);
    assert_int_equal(zmap_bytea_decode("2d2d", &b, &n, NULL), -E_INVALID);
}

static EVP_PKEY *rsa_key(void)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *pk = NULL;
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048), 1);
    assert_int_equal(EVP_PKEY_keygen(ctx, &pk), 1);
    EVP_PKEY_CTX_free(ctx);
    return pk;
}

static char *pem_pub(EVP_PKEY *pk, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(b, pk), 1);
    char *d = NULL;
    long n = BIO_get_mem_data(b, &d);
    char *out = strndup(d, (size_t)n);
    *len = (size_t)n;
    BIO_free(b);
    return out;
}

static void test_pubkey_pem(void **state)
{
    (void)state;
    EVP_PKEY *pk = rsa_key();
    size_t plen = 0, olen = 0;
    char *pem = pem_pub(pk, &plen), *out = NULL;
    struct err e = {0};

    /* PEM comes back byte for byte. */
    assert_int_equal(zmap_pubkey_pem((unsigned char *)pem, plen, &out, &olen, &e), 0);
    assert_int_equal(olen, plen);
    assert_memory_equal(out, pem, plen);
    free(out);

    /* DER becomes the same PEM. */
    unsigned char *der = NULL;
    int dlen = i2d_PUBKEY(pk, &der);
    assert_true(dlen > 0);
    assert_int_equal(zmap_pubkey_pem(der, (size_t)dlen, &out, &olen, &e), 0);
    assert_string_equal(out, pem);
    free(out);
    OPENSSL_free(der);

    assert_int_equal(zmap_pubkey_pem((const unsigned char *)"garbage", 7, &out, &olen, &e),
                     -E_INVALID);
    free(pem);
    EVP_PKEY_free(pk);
}

static void test_jwk_to_pem(void **state)
{
    (void)state;
    EVP_PKEY *pk = rsa_key();
    size_t plen = 0;
    char *pem = pem_pub(pk, &plen);
    BIGNUM *n = NULL, *ex = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(pk, "n", &n), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(pk, "e", &ex), 1);
    unsigned char nb[512], eb[8];
    int nl = BN_bn2bin(n, nb), el = BN_bn2bin(ex, eb);
    char *n64 = b64url_encode_alloc(nb, (size_t)nl), *e64 = b64url_encode_alloc(eb, (size_t)el);
    char jwk[1024];
    snprintf(jwk, sizeof jwk,
             "{\"e\":\"%s\",\"n\":\"%s\",\"alg\":\"RS256\",\"kid\":\"338293186697101315\","
             "\"kty\":\"RSA\",\"use\":\"sig\"}",
             e64, n64);
    char *out = NULL, *alg = NULL, *kid = NULL;
    struct err e = {0};
    assert_int_equal(zmap_jwk_to_pem(jwk, &out, &alg, &kid, &e), 0);
    assert_string_equal(out, pem);
    assert_string_equal(alg, "RS256");
    assert_string_equal(kid, "338293186697101315");
    free(out);
    free(alg);
    free(kid);

    /* Refused: a private JWK, OKP keys, a mismatched alg, garbage. */
    snprintf(jwk, sizeof jwk, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\",\"d\":\"AQAB\"}", n64,
             e64);
    assert_int_equal(zmap_jwk_to_pem(jwk, &out, &alg, &kid, &e), -E_INVALID);
    assert_int_equal(zmap_jwk_to_pem("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}", &out,
                                     &alg, &kid, &e),
                     -E_INVALID);
    snprintf(jwk, sizeof jwk, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\",\"alg\":\"ES256\"}", n64,
             e64);
    assert_int_equal(zmap_jwk_to_pem(jwk, &out, &alg, &kid, &e), -E_INVALID);
    assert_int_equal(zmap_jwk_to_pem("[]", &out, &alg, &kid, &e), -E_INVALID);

    /* EC P-256. */
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    assert_non_null(ec);
    size_t elen = 0;
    char *ecpem = pem_pub(ec, &elen);
    unsigned char pub[65];
    size_t publen = 0;
    assert_int_equal(EVP_PKEY_get_octet_string_param(ec, "pub", pub, sizeof pub, &publen), 1);
    assert_int_equal(publen, 65);
    char *x64 = b64url_encode_alloc(pub + 1, 32), *y64 = b64url_encode_alloc(pub + 33, 32);
    snprintf(jwk, sizeof jwk, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", x64,
             y64);
    assert_int_equal(zmap_jwk_to_pem(jwk, &out, &alg, &kid, &e), 0);
    assert_string_equal(out, ecpem);
    assert_string_equal(alg, "ES256");
    assert_string_equal(kid, "");
    free(out);
    free(alg);
    free(kid);

    free(x64);
    free(y64);
    free(ecpem);
    EVP_PKEY_free(ec);
    free(n64);
    free(e64);
    BN_free(n);
    BN_free(ex);
    free(pem);
    EVP_PKEY_free(pk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_array_plain),
        cmocka_unit_test(test_text_array_quoting),
        cmocka_unit_test(test_text_array_rejects),
        cmocka_unit_test(test_int_array),
        cmocka_unit_test(test_hash_formats_real),
        cmocka_unit_test(test_hash_formats_v1),
        cmocka_unit_test(test_cryptovalue),
        cmocka_unit_test(test_enums),
        cmocka_unit_test(test_client_id_forms),
        cmocka_unit_test(test_login_names),
        cmocka_unit_test(test_bytea),
        cmocka_unit_test(test_pubkey_pem),
        cmocka_unit_test(test_jwk_to_pem),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
