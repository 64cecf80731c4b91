/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JWS compact serialization over OpenSSL's EVP_DigestSign/EVP_DigestVerify. Signing builds the
 * header itself so the `alg` written always matches the key; verification parses the header
 * itself, asks the caller for the key by `kid` and requires the algorithm that key implies.
 * Nothing of the token's own choosing (alg, jku, jwk, x5u) ever selects a key or an algorithm.
 */
#include "jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/obj_mac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/buf.h"
#include "common/cleanup.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ECDSA_SIG *, ECDSA_SIG_free)

#define ES256_PART 32

int oidc_jwt_key_alg(EVP_PKEY *key, char alg[OIDC_JWT_ALG_MAX], struct err *e)
{
    if (!key)
        return err_set(e, -E_INVALID, "no key");
    int id = EVP_PKEY_get_base_id(key);
    if (id == EVP_PKEY_RSA) {
        if (EVP_PKEY_get_bits(key) < 2048)
            return err_set(e, -E_INVALID, "rsa key shorter than 2048 bits");
        strcpy(alg, "RS256");
        return 0;
    }
    if (id == EVP_PKEY_EC) {
        char group[32] = "";
        size_t glen = 0;
        if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                            &glen))
            return err_set(e, -E_INVALID, "ec key without a named group");
        if (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)
            return err_set(e, -E_INVALID, "ec key not on P-256");
        strcpy(alg, "ES256");
        return 0;
    }
    return err_set(e, -E_INVALID, "unsupported key type");
}

/* ECDSA's DER signature to JWS's fixed-size r || s. */
static int ecdsa_der_to_raw(const unsigned char *der, size_t len, unsigned char out[64])
{
    const unsigned char *p = der;
    _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
    if (!sig || p != der + len)
        return -E_INTERNAL;
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_bn2binpad(r, out, ES256_PART) != ES256_PART ||
        BN_bn2binpad(s, out + ES256_PART, ES256_PART) != ES256_PART)
        return -E_INTERNAL;
    return 0;
}

/* JWS's r || s to DER for OpenSSL; *ret is the caller's (OPENSSL_free). */
static int ecdsa_raw_to_der(const unsigned char raw[64], unsigned char **ret, size_t *ret_len)
{
    _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, ES256_PART, NULL);
    BIGNUM *s = BN_bin2bn(raw + ES256_PART, ES256_PART, NULL);
    if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s)) {
        BN_free(r);
        BN_free(s);
        return -E_NOMEM;
    }
    unsigned char *der = NULL;
    int n = i2d_ECDSA_SIG(sig, &der);
    if (n <= 0)
        return -E_INTERNAL;
    *ret = der;
    *ret_len = (size_t)n;
    return 0;
}

static char *b64url_json(const json_t *obj)
{
    _cleanup_free_ char *s = json_dumps(obj, JSON_COMPACT);
    if (!s)
        return NULL;
    return b64url_encode_alloc(s, strlen(s));
}

int oidc_jwt_sign(const json_t *claims, EVP_PKEY *key, const char *kid, const char *alg, char **ret,
                  struct err *e)
{
    char key_alg[OIDC_JWT_ALG_MAX];
    int r;

    if (!json_is_object(claims))
        return err_set(e, -E_INVALID, "claims must be a json object");
    if ((r = oidc_jwt_key_alg(key, key_alg, e)) < 0)
        return r;
    if (!alg || strcmp(alg, key_alg) != 0)
        return err_set(e, -E_INVALID, "key does not fit algorithm '%.16s'", alg ? alg : "");

    _cleanup_(json_decrefp) json_t *hdr = json_pack("{s:s}", "alg", key_alg);
    if (!hdr)
        return err_set(e, -E_NOMEM, "out of memory");
    if (kid && *kid && json_object_set_new(hdr, "kid", json_string(kid)) < 0)
        return err_set(e, -E_INVALID, "kid is not valid utf-8");
    json_object_set_new(hdr, "typ", json_string("JWT"));

    _cleanup_free_ char *h64 = b64url_json(hdr);
    _cleanup_free_ char *c64 = b64url_json(claims);
    if (!h64 || !c64)
        return err_set(e, -E_NOMEM, "cannot serialize claims");

    struct buf b = BUF_INIT;
    if (buf_adds(&b, h64) < 0 || buf_adds(&b, ".") < 0 || buf_adds(&b, c64) < 0) {
        buf_release(&b);
        return err_set(e, -E_NOMEM, "out of memory");
    }

    _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t siglen = 0;
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)b.data, b.len) != 1) {
        buf_release(&b);
        return err_set(e, -E_INTERNAL, "cannot start signing");
    }
    _cleanup_free_ unsigned char *sig = malloc(siglen);
    if (!sig || EVP_DigestSign(md, sig, &siglen, (const unsigned char *)b.data, b.len) != 1) {
        buf_release(&b);
        return err_set(e, -E_INTERNAL, "signing failed");
    }

    unsigned char raw[2 * ES256_PART];
    const unsigned char *out = sig;
    size_t outlen = siglen;
    if (strcmp(key_alg, "ES256") == 0) {
        if (ecdsa_der_to_raw(sig, siglen, raw) < 0) {
            buf_release(&b);
            return err_set(e, -E_INTERNAL, "bad ecdsa signature encoding");
        }
        out = raw;
        outlen = sizeof raw;
    }
    _cleanup_free_ char *s64 = b64url_encode_alloc(out, outlen);
    if (!s64 || buf_adds(&b, ".") < 0 || buf_adds(&b, s64) < 0) {
        buf_release(&b);
        return err_set(e, -E_NOMEM, "out of memory");
    }
    *ret = buf_detach(&b, NULL);
    return 0;
}

/* Decodes a base64url segment holding a JSON object of at most @max bytes. */
static int segment_json(const char *s, size_t len, size_t max, const char *what, json_t **ret,
                        struct err *e)
{
    if (len == 0)
        return err_set(e, -E_INVALID_TOKEN, "empty %s", what);
    if (b64url_encoded_len(max) < len)
        return err_set(e, -E_INVALID_TOKEN, "%s too large", what);
    size_t n = 0;
    _cleanup_free_ unsigned char *raw = b64url_decode_alloc(s, len, false, &n);
    if (!raw)
        return err_set(e, -E_INVALID_TOKEN, "%s is not base64url", what);
    json_error_t je;
    json_t *j = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return err_set(e, -E_INVALID_TOKEN, "%s is not json", what);
    if (!json_is_object(j)) {
        json_decref(j);
        return err_set(e, -E_INVALID_TOKEN, "%s is not a json object", what);
    }
    *ret = j;
    return 0;
}

static int check_header(const json_t *hdr, const char **ret_alg, const char **ret_kid,
                        struct err *e)
{
    const json_t *alg = json_object_get(hdr, "alg");
    if (!json_is_string(alg))
        return err_set(e, -E_INVALID_TOKEN, "header without alg");
    const char *a = json_string_value(alg);
    if (strcmp(a, "RS256") != 0 && strcmp(a, "ES256") != 0)
        return err_set(e, -E_INVALID_TOKEN, "algorithm not accepted");
    /* We understand no extension; RFC 7515 4.1.11 says refuse what `crit` names. */
    if (json_object_get(hdr, "crit"))
        return err_set(e, -E_INVALID_TOKEN, "crit header not supported");
    if (json_object_get(hdr, "b64") || json_object_get(hdr, "zip"))
        return err_set(e, -E_INVALID_TOKEN, "header parameter not supported");
    const json_t *typ = json_object_get(hdr, "typ");
    if (typ && !json_is_string(typ))
        return err_set(e, -E_INVALID_TOKEN, "typ is not a string");
    const json_t *kid = json_object_get(hdr, "kid");
    *ret_kid = NULL;
    if (kid) {
        if (!json_is_string(kid) || json_string_length(kid) == 0 ||
            json_string_length(kid) > OIDC_JWT_KID_MAX)
            return err_set(e, -E_INVALID_TOKEN, "kid is not a short string");
        if (strlen(json_string_value(kid)) != json_string_length(kid))
            return err_set(e, -E_INVALID_TOKEN, "kid contains NUL");
        *ret_kid = json_string_value(kid);
    }
    *ret_alg = a;
    return 0;
}

static int verify_sig(EVP_PKEY *key, const char *alg, const char *input, size_t inlen,
                      const unsigned char *sig, size_t siglen, struct err *e)
{
    _cleanup_free_ unsigned char *der = NULL;
    if (strcmp(alg, "ES256") == 0) {
        if (siglen != 2 * ES256_PART)
            return err_set(e, -E_INVALID_TOKEN, "bad signature length");
        unsigned char *d = NULL;
        size_t dlen = 0;
        if (ecdsa_raw_to_der(sig, &d, &dlen) < 0)
            return err_set(e, -E_INVALID_TOKEN, "bad signature");
        der = malloc(dlen);
        if (!der) {
            OPENSSL_free(d);
            return err_set(e, -E_NOMEM, "out of memory");
        }
        memcpy(der, d, dlen);
        OPENSSL_free(d);
        sig = der;
        siglen = dlen;
    } else if (siglen != (size_t)EVP_PKEY_get_size(key)) {
        return err_set(e, -E_INVALID_TOKEN, "bad signature length");
    }
    _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1)
        return err_set(e, -E_INTERNAL, "cannot start verification");
    if (EVP_DigestVerify(md, sig, siglen, (const unsigned char *)input, inlen) != 1)
        return err_set(e, -E_INVALID_TOKEN, "signature does not verify");
    return 0;
}

int oidc_jwt_verify(const char *token, size_t len, oidc_jwt_key_cb key_cb, void *cbdata,
                    json_t **ret_header, json_t **ret_claims, struct err *e)
{
    if (!token || len == 0)
        return err_set(e, -E_INVALID_TOKEN, "empty token");
    if (len > OIDC_JWT_MAX)
        return err_set(e, -E_INVALID_TOKEN, "token too large");
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(token + len - d1 - 1)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', (size_t)(token + len - d2 - 1)))
        return err_set(e, -E_INVALID_TOKEN, "not a compact jws");
    size_t hlen = (size_t)(d1 - token), clen = (size_t)(d2 - d1 - 1);
    size_t slen = (size_t)(token + len - d2 - 1);

    _cleanup_(json_decrefp) json_t *hdr = NULL;
    int r = segment_json(token, hlen, OIDC_JWT_HEADER_MAX, "header", &hdr, e);
    if (r < 0)
        return r;
    const char *alg = NULL, *kid = NULL;
    if ((r = check_header(hdr, &alg, &kid, e)) < 0)
        return r;

    /* The signature: never empty (alg none), never larger than RSA-4096's. */
    if (slen == 0)
        return err_set(e, -E_INVALID_TOKEN, "no signature");
    if (slen > b64url_encoded_len(512))
        return err_set(e, -E_INVALID_TOKEN, "signature too large");
    size_t siglen = 0;
    _cleanup_free_ unsigned char *sig = b64url_decode_alloc(d2 + 1, slen, false, &siglen);
    if (!sig)
        return err_set(e, -E_INVALID_TOKEN, "signature is not base64url");

    _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
    char key_alg[OIDC_JWT_ALG_MAX] = "";
    struct err ke = {0};
    if (!key_cb || key_cb(kid, &key, key_alg, cbdata, &ke) < 0 || !key)
        return err_set(e, -E_INVALID_TOKEN, "no key for this token%s%s", ke.msg[0] ? ": " : "",
                       ke.msg);
    char implied[OIDC_JWT_ALG_MAX];
    if (oidc_jwt_key_alg(key, implied, &ke) < 0)
        return err_set(e, -E_INVALID_TOKEN, "unusable key: %s", ke.msg);
    /* A key registered for one algorithm is used for that one only. */
    if (key_alg[0] && strcmp(key_alg, implied) != 0)
        return err_set(e, -E_INVALID_TOKEN, "key registered for another algorithm");
    if (strcmp(alg, implied) != 0)
        return err_set(e, -E_INVALID_TOKEN, "algorithm does not match the key");

    if ((r = verify_sig(key, implied, token, (size_t)(d2 - token), sig, siglen, e)) < 0)
        return r;

    _cleanup_(json_decrefp) json_t *claims = NULL;
    if ((r = segment_json(d1 + 1, clen, OIDC_JWT_CLAIMS_MAX, "claims", &claims, e)) < 0)
        return r;
    if (ret_header)
        *ret_header = TAKE_PTR(hdr);
    if (ret_claims)
        *ret_claims = TAKE_PTR(claims);
    return 0;
}

static int time_claim(const json_t *claims, const char *name, bool *present, int64_t *v,
                      struct err *e)
{
    const json_t *j = json_object_get(claims, name);
    *present = j != NULL;
    if (!j)
        return 0;
    if (!json_is_integer(j))
        return err_set(e, -E_INVALID_TOKEN, "%s is not an integer", name);
    *v = json_integer_value(j);
    return 0;
}

int oidc_jwt_check_time(const json_t *claims, int64_t now, int64_t skew, bool require_exp,
                        struct err *e)
{
    bool has;
    int64_t v = 0;
    int r;

    if ((r = time_claim(claims, "exp", &has, &v, e)) < 0)
        return r;
    if (!has && require_exp)
        return err_set(e, -E_INVALID_TOKEN, "token without exp");
    if (has && v <= now - skew)
        return err_set(e, -E_INVALID_TOKEN, "token expired");
    if ((r = time_claim(claims, "nbf", &has, &v, e)) < 0)
        return r;
    if (has && v > now + skew)
        return err_set(e, -E_INVALID_TOKEN, "token not yet valid");
    if ((r = time_claim(claims, "iat", &has, &v, e)) < 0)
        return r;
    if (has && v > now + skew)
        return err_set(e, -E_INVALID_TOKEN, "token issued in the future");
    return 0;
}

int oidc_jwt_hash_claim(const char *value, size_t len, const char *alg, char out[44], struct err *e)
{
    if (!alg || (strcmp(alg, "RS256") != 0 && strcmp(alg, "ES256") != 0))
        return err_set(e, -E_INVALID, "no hash claim for algorithm");
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)value, len, md);
    b64url_encode(md, SHA256_DIGEST_LENGTH / 2, out);
    return 0;
}
