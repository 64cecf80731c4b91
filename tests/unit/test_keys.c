/* SPDX-License-Identifier: Apache-2.0 */
/* oidc/keys.c and oidc/discovery.c: master key files, sealing, JWKS built by hand compared
 * with OpenSSL's own view of the key, the key set over a real LMDB store, and discovery. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/b64.h"
#include "common/rand.h"
#include "oidc/discovery.h"
#include "oidc/http.h"
#include "oidc/keys.h"
#include "oidc/oidc.h"
#include "storage/repo.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_keys_XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *path_in(const char *name)
{
    static char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_master_key_files(void **state)
{
    unsigned char k1[32], k2[32];
    struct err e = {0};
    (void)state;
    const char *p = path_in("m1.key");

    assert_int_equal(oidc_keys_master_load(p, false, k1, &e), -E_NOTFOUND);
    assert_int_equal(oidc_keys_master_load(p, true, k1, &e), 0);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    assert_int_equal(oidc_keys_master_load(p, false, k2, &e), 0);
    assert_memory_equal(k1, k2, 32);

    const char *bad = path_in("short.key");
    write_file(bad, "0123456789", 10, 0600);
    assert_int_equal(oidc_keys_master_load(bad, false, k1, &e), -E_CONFIG);
    assert_non_null(strstr(e.msg, "exactly 32 bytes"));

    const char *open_key = path_in("open.key");
    write_file(open_key, k2, 32, 0644);
    assert_int_equal(oidc_keys_master_load(open_key, false, k1, &e), -E_CONFIG);
    assert_non_null(strstr(e.msg, "readable"));

    assert_int_equal(oidc_keys_master_load(path_in("nodir/x.key"), true, k1, &e), -E_IO);
}

static void test_seal_round_trip_and_tamper(void **state)
{
    unsigned char master[32], other[32];
    unsigned char *sealed = NULL, *plain = NULL;
    size_t slen = 0, plen = 0;
    struct err e = {0};
    const char msg[] = "-----BEGIN PRIVATE KEY-----\nnot really\n-----END PRIVATE KEY-----\n";
    (void)state;
    assert_int_equal(rand_bytes(master, 32), 0);
    memcpy(other, master, 32);
    other[31] ^= 1;

    assert_int_equal(oidc_keys_seal(master, "kid1", msg, sizeof msg - 1, &sealed, &slen, &e), 0);
    assert_int_equal(slen, 12 + (sizeof msg - 1) + 16);
    assert_null(memmem(sealed, slen, "PRIVATE KEY", 11)); /* no plaintext inside */

    assert_int_equal(oidc_keys_open_sealed(master, "kid1", sealed, slen, &plain, &plen, &e), 0);
    assert_int_equal(plen, sizeof msg - 1);
    assert_memory_equal(plain, msg, plen);
    free(plain);

    /* wrong master key */
    assert_int_equal(oidc_keys_open_sealed(other, "kid1", sealed, slen, &plain, &plen, &e),
                     -E_PERMISSION);
    assert_non_null(strstr(e.msg, "master key"));
    /* another record's kid (the blob was moved) */
    assert_int_equal(oidc_keys_open_sealed(master, "kid2", sealed, slen, &plain, &plen, &e),
                     -E_PERMISSION);
    /* every byte matters: nonce, ciphertext, tag */
    size_t where[] = {0, 11, 12, 20, slen - 16, slen - 1};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        sealed[where[i]] ^= 0x40;
        assert_int_equal(oidc_keys_open_sealed(master, "kid1", sealed, slen, &plain, &plen, &e),
                         -E_PERMISSION);
        sealed[where[i]] ^= 0x40;
    }
    /* truncated */
    assert_int_equal(oidc_keys_open_sealed(master, "kid1", sealed, 20, &plain, &plen, &e),
                     -E_PERMISSION);
    free(sealed);
}

/* Decodes a base64url member of @o into a BIGNUM. */
static BIGNUM *member_bn(json_t *o, const char *name, size_t *ret_len)
{
    const char *s = json_string_value(json_object_get(o, name));
    assert_non_null(s);
    assert_null(strchr(s, '='));
    assert_null(strchr(s, '+'));
    assert_null(strchr(s, '/'));
    size_t len = 0;
    unsigned char *raw = b64url_decode_alloc(s, strlen(s), false, &len);
    assert_non_null(raw);
    BIGNUM *bn = BN_bin2bn(raw, (int)len, NULL);
    free(raw);
    if (ret_len)
        *ret_len = len;
    return bn;
}

static void test_jwks_matches_openssl(void **state)
{
    struct err e = {0};
    (void)state;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(rsa);
    assert_non_null(ec);
    struct oidc_jwk_in in[] = {
        {rsa, "r1", "RS256"},
        {ec, "e1", "ES256"},
        {ec, "bad", "RS256"}, /* type does not match alg: skipped */
    };
    char *s = oidc_jwks_build(in, 3, &e);
    assert_non_null(s);
    json_error_t je;
    json_t *doc = json_loads(s, 0, &je);
    assert_non_null(doc);
    json_t *keys = json_object_get(doc, "keys");
    assert_int_equal(json_array_size(keys), 2);

    json_t *k = json_array_get(keys, 0);
    assert_string_equal(json_string_value(json_object_get(k, "kid")), "r1");
    assert_string_equal(json_string_value(json_object_get(k, "kty")), "RSA");
    assert_string_equal(json_string_value(json_object_get(k, "use")), "sig");
    assert_string_equal(json_string_value(json_object_get(k, "alg")), "RS256");
    assert_null(json_object_get(k, "d")); /* never a private part */
    BIGNUM *n = NULL, *ev = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_E, &ev), 1);
    size_t nlen = 0;
    BIGNUM *jn = member_bn(k, "n", &nlen), *jev = member_bn(k, "e", NULL);
    assert_int_equal(nlen, 256);
    assert_int_equal(BN_cmp(n, jn), 0);
    assert_int_equal(BN_cmp(ev, jev), 0);
    assert_string_equal(json_string_value(json_object_get(k, "e")), "AQAB");

    k = json_array_get(keys, 1);
    assert_string_equal(json_string_value(json_object_get(k, "kty")), "EC");
    assert_string_equal(json_string_value(json_object_get(k, "crv")), "P-256");
    BIGNUM *x = NULL, *y = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(ec, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(ec, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
    size_t xlen = 0, ylen = 0;
    BIGNUM *jx = member_bn(k, "x", &xlen), *jy = member_bn(k, "y", &ylen);
    assert_int_equal(xlen, 32);
    assert_int_equal(ylen, 32);
    assert_int_equal(BN_cmp(x, jx), 0);
    assert_int_equal(BN_cmp(y, jy), 0);

    BN_free(n), BN_free(ev), BN_free(jn), BN_free(jev);
    BN_free(x), BN_free(y), BN_free(jx), BN_free(jy);
    json_decref(doc);
    free(s);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
}

static struct store *open_store(const char *sub)
{
    struct store_config sc = {
        .backend = "lmdb", .tenant = 1, .data_dir = path_in(sub), .lmdb_map_size = 64 << 20};
    struct store *s = NULL;
    struct err e = {0};
    assert_int_equal(store_open(&sc, &s, &e), 0);
    return s;
}

/* Signs with the current key and verifies with the key the JWKS publishes under its kid. */
static void sign_and_verify(struct oidc_keys *k)
{
    struct err e = {0};
    EVP_PKEY *priv = NULL, *pub = NULL;
    char kid[64], alg[8], alg2[8];
    assert_int_equal(oidc_keys_current(k, &priv, kid, alg, &e), 0);
    assert_string_equal(alg, "RS256");
    assert_int_equal(oidc_keys_public(k, kid, &pub, alg2, &e), 0);

    const unsigned char data[] = "header.payload";
    unsigned char sig[512];
    size_t siglen = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, priv), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &siglen, data, sizeof data - 1), 1);
    EVP_MD_CTX_free(md);
    md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
    assert_int_equal(EVP_DigestVerify(md, sig, siglen, data, sizeof data - 1), 1);
    EVP_MD_CTX_free(md);

    /* The JWKS lists that kid with the public key's modulus. */
    char *jwks = oidc_keys_jwks_json(k, &e);
    assert_non_null(jwks);
    assert_non_null(strstr(jwks, kid));
    json_t *doc = json_loads(jwks, 0, NULL);
    json_t *first = NULL, *it;
    size_t i;
    json_array_foreach (json_object_get(doc, "keys"), i, it) {
        if (strcmp(json_string_value(json_object_get(it, "kid")), kid) == 0)
            first = it;
    }
    assert_non_null(first);
    BIGNUM *n = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    BIGNUM *jn = member_bn(first, "n", NULL);
    assert_int_equal(BN_cmp(n, jn), 0);
    BN_free(n);
    BN_free(jn);
    json_decref(doc);
    free(jwks);
    EVP_PKEY_free(priv);
    EVP_PKEY_free(pub);
}

static void test_key_set_over_lmdb(void **state)
{
    struct err e = {0};
    struct oidc_keys *k = NULL;
    (void)state;
    struct store *s = open_store("store1");
    const char *mk = path_in("master-set.key");

    /* First start: master key and one signing key are created. */
    assert_int_equal(oidc_keys_open(s, mk, true, &k, &e), 0);
    sign_and_verify(k);
    uint64_t gen = oidc_keys_generation(k);
    struct oidc_key_info *info = NULL;
    size_t n = 0;
    assert_int_equal(oidc_keys_list(s, &info, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_true(info[0].has_private && info[0].signing && info[0].published);
    char first_kid[64];
    snprintf(first_kid, sizeof first_kid, "%s", info[0].kid);
    free(info);

    /* The private key is stored sealed, never as PEM. */
    char key[REPO_KEY_MAX];
    repo_key(key, "sigkey/%s", first_kid);
    struct store_value v = {0};
    assert_int_equal(store_get(s, key, strlen(key), &v, &e), 0);
    assert_null(memmem(v.data, v.len, "PRIVATE KEY", 11));
    store_value_release(&v);

    /* An imported v1 key: published until publish_until, never signs. */
    EVP_PKEY *v1 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, v1);
    char *pem = NULL;
    long pem_len = BIO_get_mem_data(b, &pem);
    Koderid__V2__SigningKey rec = KODERID__V2__SIGNING_KEY__INIT;
    rec.kid = "v1-live";
    rec.alg = "RS256";
    rec.public_pem.data = (uint8_t *)pem;
    rec.public_pem.len = (size_t)pem_len;
    rec.publish_until = time(NULL) + 3600;
    rec.source = "zitadel";
    assert_int_equal(repo_put(s, "sigkey/v1-live", &rec.base, 0, NULL, &e), 0);
    rec.kid = "v1-gone";
    rec.publish_until = time(NULL) - 10;
    assert_int_equal(repo_put(s, "sigkey/v1-gone", &rec.base, 0, NULL, &e), 0);
    BIO_free(b);
    EVP_PKEY_free(v1);

    assert_int_equal(oidc_keys_reload(k, &e), 0);
    assert_true(oidc_keys_generation(k) != gen);
    char *jwks = oidc_keys_jwks_json(k, &e);
    assert_non_null(strstr(jwks, "v1-live"));
    assert_null(strstr(jwks, "v1-gone"));
    assert_non_null(strstr(jwks, first_kid));
    free(jwks);
    EVP_PKEY *pk = NULL;
    char alg[8], kid[64];
    assert_int_equal(oidc_keys_public(k, "v1-live", &pk, alg, &e), 0);
    EVP_PKEY_free(pk);
    assert_int_equal(oidc_keys_public(k, "v1-gone", &pk, alg, &e), -E_NOTFOUND);
    assert_int_equal(oidc_keys_current(k, &pk, kid, alg, &e), 0);
    assert_string_equal(kid, first_kid); /* imported keys never sign */
    EVP_PKEY_free(pk);
    size_t checked = 0;
    unsigned char master[32];
    assert_int_equal(oidc_keys_master_load(mk, false, master, &e), 0);
    assert_int_equal(oidc_keys_verify_master(s, master, &checked, &e), 0);
    assert_int_equal(checked, 1);
    oidc_keys_free(k);

    /* Reopening with the same master key finds the same key, creates none. */
    assert_int_equal(oidc_keys_open(s, mk, false, &k, &e), 0);
    assert_int_equal(oidc_keys_list(s, &info, &n, &e), 0);
    assert_int_equal(n, 3);
    free(info);
    sign_and_verify(k);
    oidc_keys_free(k);

    /* Another master key does not open the stored key: a clear error, not a new key. */
    const char *mk2 = path_in("master-other.key");
    assert_int_equal(oidc_keys_master_load(mk2, true, master, &e), 0);
    assert_int_equal(oidc_keys_open(s, mk2, false, &k, &e), -E_PERMISSION);
    assert_non_null(strstr(e.msg, first_kid));
    assert_int_equal(oidc_keys_verify_master(s, master, &checked, &e), -E_PERMISSION);
    store_close(s);
}

static void test_discovery(void **state)
{
    struct err e = {0};
    (void)state;
    const char *issuer = "https://id.example.com";
    char *s = oidc_discovery_json(issuer, &e);
    assert_non_null(s);
    json_t *d = json_loads(s, 0, NULL);
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "issuer")), issuer);
    assert_string_equal(json_string_value(json_object_get(d, "jwks_uri")),
                        "https://id.example.com/oauth/v2/keys");
    /* OpenID Discovery 1.0 section 3: required members. */
    assert_non_null(json_object_get(d, "authorization_endpoint"));
    assert_non_null(json_object_get(d, "response_types_supported"));
    assert_non_null(json_object_get(d, "subject_types_supported"));
    assert_non_null(json_object_get(d, "id_token_signing_alg_values_supported"));

    /* Every advertised endpoint is answered by the protocol core (not its 404), so the
     * document never lists what is not implemented. */
    struct oidc_config oc = {.issuer = issuer};
    struct oidc_ctx *ctx = NULL;
    struct store *st = open_store("store-discovery");
    assert_int_equal(oidc_ctx_new(&oc, st, &ctx, &e), 0);
    const char *field;
    json_t *v;
    int endpoints = 0;
    json_object_foreach (d, field, v) {
        size_t fl = strlen(field);
        bool is_endpoint = fl > 9 && strcmp(field + fl - 9, "_endpoint") == 0;
        const char *url = json_string_value(v);
        if (url && (is_endpoint || strcmp(field, "jwks_uri") == 0))
            assert_int_equal(strncmp(url, issuer, strlen(issuer)), 0);
        if (!is_endpoint)
            continue;
        endpoints++;
        struct oidc_request req = {
            .method = "GET", .path = url + strlen(issuer), .client_addr = "127.0.0.1"};
        struct oidc_response resp = {0};
        oidc_handle(ctx, &req, &resp);
        if (resp.status == 404 && resp.body && strstr(resp.body, "no such endpoint"))
            fail_msg("discovery lists %s = %s, which is not routed", field, url);
        oidc_response_release(&resp);
    }
    assert_true(endpoints >= 1);
    oidc_ctx_free(ctx);
    store_close(st);
    json_decref(d);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_master_key_files),
        cmocka_unit_test(test_seal_round_trip_and_tamper),
        cmocka_unit_test(test_jwks_matches_openssl),
        cmocka_unit_test(test_key_set_over_lmdb),
        cmocka_unit_test(test_discovery),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, setup, teardown);
}
