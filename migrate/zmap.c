/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pure mapping helpers for import-zitadel (no database, no store), kept apart so that every
 * decision about v1's values is unit-tested: array literals, hash formats, enums, client ids,
 * login names and public keys.
 */
#include "zmap.h"

#include <crypt.h>
#include <ctype.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/b64.h"
#include "common/buf.h"
#include "common/cleanup.h"

#define ARRAY_MAX_ELEMS 10000
#define ARRAY_MAX_ELEM_LEN 65536

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM_BLD *, OSSL_PARAM_BLD_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM *, OSSL_PARAM_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_DECODER_CTX *, OSSL_DECODER_CTX_free)

void zmap_strv_release(struct zmap_strv *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int strv_push(struct zmap_strv *l, char *s)
{
    char **v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v) {
        free(s);
        return -E_NOMEM;
    }
    l->v = v;
    l->v[l->n++] = s;
    return 0;
}

static const char *skip_ws(const char *p)
{
    while (*p && isspace((unsigned char)*p))
        p++;
    return p;
}

/* One element at *pp (after leading white space); sets *ret (NULL for an SQL NULL). */
static int parse_elem(const char **pp, char **ret, struct err *e)
{
    const char *p = *pp;
    struct buf b = BUF_INIT;

    if (*p == '"') {
        p++;
        for (;;) {
            if (*p == '\0') {
                buf_release(&b);
                return err_set(e, -E_INVALID, "array literal: unterminated quoted element");
            }
            if (*p == '"')
                break;
            if (*p == '\\') {
                p++;
                if (*p == '\0')
                    continue;
            }
            if (b.len >= ARRAY_MAX_ELEM_LEN || buf_add(&b, p, 1) < 0) {
                buf_release(&b);
                return err_set(e, -E_INVALID, "array literal: element too long");
            }
            p++;
        }
        p++;
        *pp = p;
        *ret = buf_detach(&b, NULL);
        return *ret ? 0 : err_set(e, -E_NOMEM, "out of memory");
    }
    if (*p == '{')
        return err_set(e, -E_INVALID, "array literal: nested arrays are not expected");

    size_t keep = 0; /* length without trailing unescaped white space */
    bool escaped = false;
    while (*p && *p != ',' && *p != '}') {
        if (*p == '"' || *p == '{') {
            buf_release(&b);
            return err_set(e, -E_INVALID, "array literal: stray '%c'", *p);
        }
        bool esc = false;
        if (*p == '\\') {
            p++;
            if (*p == '\0')
                break;
            esc = escaped = true;
        }
        if (b.len >= ARRAY_MAX_ELEM_LEN || buf_add(&b, p, 1) < 0) {
            buf_release(&b);
            return err_set(e, -E_INVALID, "array literal: element too long");
        }
        if (esc || !isspace((unsigned char)*p))
            keep = b.len;
        p++;
    }
    if (b.len == 0 || keep == 0) {
        buf_release(&b);
        return err_set(e, -E_INVALID, "array literal: empty unquoted element");
    }
    b.len = keep;
    b.data[keep] = '\0';
    *pp = p;
    if (!escaped && strcasecmp(b.data, "NULL") == 0) {
        buf_release(&b);
        *ret = NULL;
        return 0;
    }
    *ret = buf_detach(&b, NULL);
    return *ret ? 0 : err_set(e, -E_NOMEM, "out of memory");
}

int zmap_parse_text_array(const char *lit, struct zmap_strv *ret, struct err *e)
{
    struct zmap_strv l = {0};
    const char *p = lit;
    int r;

    if (!lit || !*lit) {
        *ret = l;
        return 0;
    }
    p = skip_ws(p);
    if (*p == '[') { /* bounds decoration: [lo:hi]={...} */
        while (*p && *p != '=') {
            if (!(isdigit((unsigned char)*p) || *p == '[' || *p == ']' || *p == ':' || *p == '-'))
                return err_set(e, -E_INVALID, "array literal: bad dimension decoration");
            p++;
        }
        if (*p != '=')
            return err_set(e, -E_INVALID, "array literal: bad dimension decoration");
        p = skip_ws(p + 1);
    }
    if (*p != '{')
        return err_set(e, -E_INVALID, "array literal: missing '{'");
    p = skip_ws(p + 1);
    if (*p == '}') {
        p = skip_ws(p + 1);
        if (*p)
            return err_set(e, -E_INVALID, "array literal: text after '}'");
        *ret = l;
        return 0;
    }
    for (;;) {
        char *s = NULL;
        p = skip_ws(p);
        r = parse_elem(&p, &s, e);
        if (r < 0) {
            zmap_strv_release(&l);
            return r;
        }
        if (l.n >= ARRAY_MAX_ELEMS || strv_push(&l, s) < 0) {
            zmap_strv_release(&l);
            return err_set(e, -E_INVALID, "array literal: too many elements");
        }
        p = skip_ws(p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '}') {
            p = skip_ws(p + 1);
            break;
        }
        zmap_strv_release(&l);
        return err_set(e, -E_INVALID, "array literal: expected ',' or '}'");
    }
    if (*p) {
        zmap_strv_release(&l);
        return err_set(e, -E_INVALID, "array literal: text after '}'");
    }
    *ret = l;
    return 0;
}

int zmap_parse_int_array(const char *lit, int32_t **ret_v, size_t *ret_n, struct err *e)
{
    struct zmap_strv l = {0};
    int r = zmap_parse_text_array(lit, &l, e);
    if (r < 0)
        return r;
    int32_t *v = NULL;
    if (l.n) {
        v = calloc(l.n, sizeof *v);
        if (!v) {
            zmap_strv_release(&l);
            return err_set(e, -E_NOMEM, "out of memory");
        }
    }
    for (size_t i = 0; i < l.n; i++) {
        char *end = NULL;
        if (!l.v[i]) {
            free(v);
            zmap_strv_release(&l);
            return err_set(e, -E_INVALID, "integer array: NULL element");
        }
        long long x = strtoll(l.v[i], &end, 10);
        if (end == l.v[i] || *end || x < INT32_MIN || x > INT32_MAX) {
            err_set(e, -E_INVALID, "integer array: '%.20s' is not an integer", l.v[i]);
            free(v);
            zmap_strv_release(&l);
            return -E_INVALID;
        }
        v[i] = (int32_t)x;
    }
    *ret_n = l.n;
    *ret_v = v;
    zmap_strv_release(&l);
    return 0;
}

/* ---- hashes ---- */

static bool in_crypt_alpha(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(c == '.' || c == '/' || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
              (c >= 'a' && c <= 'z')))
            return false;
    }
    return true;
}

/* After @prefix: @nmid '$'-separated non-empty printable segments without '$' (one of them
 * optional when @opt_rounds names a "rounds=" segment), then a final segment of exactly @tail
 * crypt-alphabet characters. */
static bool crypt_shape(const char *h, size_t plen, int nmid, size_t tail, bool opt_rounds)
{
    const char *p = h + plen;
    if (opt_rounds && strncmp(p, "rounds=", 7) == 0) {
        const char *d = strchr(p, '$');
        if (!d)
            return false;
        for (const char *q = p + 7; q < d; q++)
            if (!isdigit((unsigned char)*q))
                return false;
        p = d + 1;
    }
    for (int i = 0; i < nmid; i++) {
        const char *d = strchr(p, '$');
        if (!d || d == p)
            return false;
        for (const char *q = p; q < d; q++)
            if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f)
                return false;
        p = d + 1;
    }
    return strlen(p) == tail && in_crypt_alpha(p, tail);
}

static bool is_bcrypt(const char *h)
{
    if (strlen(h) != 60 || h[0] != '$' || h[1] != '2' || h[3] != '$' || h[6] != '$')
        return false;
    if (h[2] != 'a' && h[2] != 'b' && h[2] != 'y')
        return false;
    if (!isdigit((unsigned char)h[4]) || !isdigit((unsigned char)h[5]))
        return false;
    int cost = (h[4] - '0') * 10 + (h[5] - '0');
    return cost >= 4 && cost <= 31 && in_crypt_alpha(h + 7, 53);
}

enum zmap_hash_fmt zmap_hash_format(const char *h)
{
    if (!h || !*h)
        return ZMAP_HASH_NONE;
    if (strncmp(h, "$2", 2) == 0)
        return is_bcrypt(h) ? ZMAP_HASH_BCRYPT : ZMAP_HASH_UNKNOWN;
    if (strncmp(h, "$y$", 3) == 0)
        return crypt_shape(h, 3, 2, 43, false) ? ZMAP_HASH_YESCRYPT : ZMAP_HASH_UNKNOWN;
    if (strncmp(h, "$gy$", 4) == 0)
        return crypt_shape(h, 4, 2, 43, false) ? ZMAP_HASH_GOST_YESCRYPT : ZMAP_HASH_UNKNOWN;
    if (strncmp(h, "$7$", 3) == 0)
        return crypt_shape(h, 3, 1, 43, false) ? ZMAP_HASH_SCRYPT7 : ZMAP_HASH_UNKNOWN;
    if (strncmp(h, "$6$", 3) == 0)
        return crypt_shape(h, 3, 1, 86, true) ? ZMAP_HASH_SHA512CRYPT : ZMAP_HASH_UNKNOWN;
    if (strncmp(h, "$5$", 3) == 0)
        return crypt_shape(h, 3, 1, 43, true) ? ZMAP_HASH_SHA256CRYPT : ZMAP_HASH_UNKNOWN;
    if (strncmp(h, "$1$", 3) == 0)
        return crypt_shape(h, 3, 1, 22, false) ? ZMAP_HASH_MD5CRYPT : ZMAP_HASH_UNKNOWN;
    if (strncmp(h, "$argon2i$", 9) == 0 || strncmp(h, "$argon2id$", 10) == 0 ||
        strncmp(h, "$argon2d$", 9) == 0)
        return ZMAP_HASH_ARGON2;
    if (strncmp(h, "$scrypt$", 8) == 0)
        return ZMAP_HASH_SCRYPT_PHC;
    if (strncmp(h, "$pbkdf2$", 8) == 0 || strncmp(h, "$pbkdf2-", 8) == 0)
        return ZMAP_HASH_PBKDF2;
    if (strncmp(h, "$P$", 3) == 0 || strncmp(h, "$H$", 3) == 0)
        return ZMAP_HASH_PHPASS;
    if (strlen(h) == 32 && strspn(h, "0123456789abcdefABCDEF") == 32)
        return ZMAP_HASH_MD5PLAIN;
    return ZMAP_HASH_UNKNOWN;
}

bool zmap_hash_verifiable(enum zmap_hash_fmt fmt)
{
    return fmt <= ZMAP_HASH_MD5CRYPT;
}

const char *zmap_hash_name(enum zmap_hash_fmt fmt)
{
    static const char *const names[] = {
        [ZMAP_HASH_NONE] = "none",
        [ZMAP_HASH_BCRYPT] = "bcrypt",
        [ZMAP_HASH_YESCRYPT] = "yescrypt",
        [ZMAP_HASH_GOST_YESCRYPT] = "gost-yescrypt",
        [ZMAP_HASH_SCRYPT7] = "scrypt ($7$)",
        [ZMAP_HASH_SHA512CRYPT] = "sha512crypt",
        [ZMAP_HASH_SHA256CRYPT] = "sha256crypt",
        [ZMAP_HASH_MD5CRYPT] = "md5crypt",
        [ZMAP_HASH_ARGON2] = "argon2",
        [ZMAP_HASH_SCRYPT_PHC] = "scrypt (passwap)",
        [ZMAP_HASH_PBKDF2] = "pbkdf2",
        [ZMAP_HASH_PHPASS] = "phpass",
        [ZMAP_HASH_MD5PLAIN] = "md5 (plain)",
        [ZMAP_HASH_UNKNOWN] = "unknown",
    };
    if ((unsigned)fmt >= ARRAY_SIZE(names))
        return "unknown";
    return names[fmt];
}

int zmap_hash_check(const char *hash, enum zmap_hash_fmt *ret_fmt, struct err *e)
{
    enum zmap_hash_fmt f = zmap_hash_format(hash);
    *ret_fmt = f;
    if (f == ZMAP_HASH_NONE)
        return 0;
    if (!zmap_hash_verifiable(f)) {
        if (f == ZMAP_HASH_UNKNOWN)
            return err_set(e, -E_INVALID, "hash format not recognized");
        return err_set(e, -E_INVALID, "%s hash: v2 (libxcrypt) cannot verify it",
                       zmap_hash_name(f));
    }
    /* The method must be enabled in this libxcrypt build. */
    if (crypt_checksalt(hash) == CRYPT_SALT_INVALID)
        return err_set(e, -E_INVALID, "%s hash: not accepted by this libxcrypt", zmap_hash_name(f));
    return 0;
}

int zmap_cryptovalue_hash(const char *json, char **ret, struct err *e)
{
    json_error_t je;
    _cleanup_(json_decrefp) json_t *j = json_loads(json ? json : "", 0, &je);
    if (!j || !json_is_object(j))
        return err_set(e, -E_INVALID, "legacy secret: not a JSON object");
    json_t *type = json_object_get(j, "CryptoType");
    json_t *crypted = json_object_get(j, "Crypted");
    if (!type)
        type = json_object_get(j, "cryptoType");
    if (!crypted)
        crypted = json_object_get(j, "crypted");
    if (!json_is_integer(type) || !json_is_string(crypted))
        return err_set(e, -E_INVALID, "legacy secret: CryptoType/Crypted missing");
    if (json_integer_value(type) != 1)
        return err_set(e, -E_INVALID,
                       "legacy secret is encrypted under v1's master key, not hashed");
    size_t n = 0;
    const char *c = json_string_value(crypted);
    unsigned char *raw = b64_decode_alloc(c, strlen(c), &n);
    if (!raw)
        return err_set(e, -E_INVALID, "legacy secret: Crypted is not base64");
    if (memchr(raw, '\0', n)) {
        free(raw);
        return err_set(e, -E_INVALID, "legacy secret: Crypted is not a text hash");
    }
    *ret = (char *)raw;
    return 0;
}

/* ---- enums ---- */

const char *zmap_enum_name(enum zmap_enum kind, long long v)
{
    static const char *const app_type[] = {"web", "user_agent", "native"};
    static const char *const auth[] = {"basic", "post", "none", "private_key_jwt"};
    static const char *const api_auth[] = {"basic", "private_key_jwt"};
    static const char *const token[] = {"bearer", "jwt"};
    static const char *const resp[] = {"code", "id_token", "id_token token"};
    static const char *const grant[] = {"authorization_code", "implicit", "refresh_token",
                                        "device_code", "token_exchange"};
    static const char *const app_state[] = {NULL, "active", "inactive"};
    static const char *const user_state[] = {NULL,     "active",  "inactive", "deleted",
                                             "locked", "suspend", "initial"};
    static const char *const user_type[] = {NULL, "human", "machine"};
    static const char *const gender[] = {"unspecified", "female", "male", "diverse"};
    static const char *const wk_state[] = {NULL, "initial", "active", "inactive", "removed"};
    const char *const *t = NULL;
    size_t n = 0;
#define T(a) (t = (a), n = ARRAY_SIZE(a))
    switch (kind) {
    case ZMAP_APP_TYPE:
        T(app_type);
        break;
    case ZMAP_AUTH_METHOD:
        T(auth);
        break;
    case ZMAP_API_AUTH_METHOD:
        T(api_auth);
        break;
    case ZMAP_TOKEN_TYPE:
        T(token);
        break;
    case ZMAP_RESPONSE_TYPE:
        T(resp);
        break;
    case ZMAP_GRANT_TYPE:
        T(grant);
        break;
    case ZMAP_APP_STATE:
    case ZMAP_ORG_STATE:
    case ZMAP_PROJECT_STATE:
        T(app_state);
        break;
    case ZMAP_USER_STATE:
        T(user_state);
        break;
    case ZMAP_USER_TYPE:
        T(user_type);
        break;
    case ZMAP_GENDER:
        T(gender);
        break;
    case ZMAP_WEB_KEY_STATE:
        T(wk_state);
        break;
    }
#undef T
    if (!t || v < 0 || (unsigned long long)v >= n)
        return NULL;
    return t[v];
}

int zmap_api_auth_method(long long v1)
{
    switch (v1) {
    case 0:
        return 0;
    case 1:
        return 3;
    default:
        return -1;
    }
}

enum zmap_cid_form zmap_client_id_form(const char *cid)
{
    /* "client/" + id and "projclient/<project>/" + id must fit a store key. */
    size_t n = cid ? strlen(cid) : 0;
    if (n == 0 || n > 255)
        return ZMAP_CID_INVALID;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)cid[i] < 0x20 || cid[i] == 0x7f)
            return ZMAP_CID_INVALID;
    size_t digits = strspn(cid, "0123456789");
    if (digits == n)
        return ZMAP_CID_NUMERIC;
    if (digits > 0 && cid[digits] == '@' && cid[digits + 1] != '\0' &&
        !strchr(cid + digits + 1, '@'))
        return ZMAP_CID_AT_PROJECT;
    return ZMAP_CID_OTHER;
}

int64_t zmap_ns_to_ms(long long ns)
{
    return ns > 0 ? (int64_t)(ns / 1000000) : 0;
}

int64_t zmap_ns_to_s(long long ns)
{
    return ns > 0 ? (int64_t)(ns / 1000000000) : 0;
}

/* ---- login names ---- */

int zmap_login_names(const char *username, bool must_be_domain, const struct zmap_domain *doms,
                     size_t ndoms, struct zmap_strv *ret, struct err *e)
{
    struct zmap_strv l = {0};
    int r = 0;

    if (!username || !*username)
        return err_set(e, -E_INVALID, "empty username");
    if (!must_be_domain || ndoms == 0) {
        char *s = strdup(username);
        if (!s || strv_push(&l, s) < 0)
            return err_set(e, -E_NOMEM, "out of memory");
        *ret = l;
        return 0;
    }
    /* Primary first, then the others in the given order. */
    for (int pass = 0; pass < 2 && r == 0; pass++) {
        for (size_t i = 0; i < ndoms && r == 0; i++) {
            if (doms[i].is_primary != (pass == 0) || !doms[i].name || !*doms[i].name)
                continue;
            struct buf b = BUF_INIT;
            if (buf_addf(&b, "%s@%s", username, doms[i].name) < 0) {
                r = -E_NOMEM;
                break;
            }
            r = strv_push(&l, buf_detach(&b, NULL));
        }
    }
    if (r < 0 || l.n == 0) {
        zmap_strv_release(&l);
        if (r < 0)
            return err_set(e, -E_NOMEM, "out of memory");
        char *s = strdup(username);
        if (!s || strv_push(&l, s) < 0)
            return err_set(e, -E_NOMEM, "out of memory");
    }
    *ret = l;
    return 0;
}

/* ---- bytes and keys ---- */

int zmap_bytea_decode(const char *text, unsigned char **ret, size_t *ret_len, struct err *e)
{
    if (!text || strncmp(text, "\\x", 2) != 0)
        return err_set(e, -E_INVALID, "bytea: expected hex output");
    const char *h = text + 2;
    size_t n = strlen(h);
    if (n % 2)
        return err_set(e, -E_INVALID, "bytea: odd hex length");
    unsigned char *out = malloc(n / 2 + 1);
    if (!out)
        return err_set(e, -E_NOMEM, "out of memory");
    for (size_t i = 0; i < n / 2; i++) {
        int a = hex_digit(h[2 * i]), b = hex_digit(h[2 * i + 1]);
        if (a < 0 || b < 0) {
            free(out);
            return err_set(e, -E_INVALID, "bytea: bad hex digit");
        }
        out[i] = (unsigned char)(a << 4 | b);
    }
    out[n / 2] = '\0';
    *ret = out;
    *ret_len = n / 2;
    return 0;
}

static int pem_of(EVP_PKEY *pk, char **ret_pem, size_t *ret_len, struct err *e)
{
    _cleanup_(BIO_freep) BIO *bio = BIO_new(BIO_s_mem());
    if (!bio || PEM_write_bio_PUBKEY(bio, pk) != 1)
        return err_set(e, -E_INTERNAL, "cannot write a PEM public key");
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *out = malloc((size_t)n + 1);
    if (!out)
        return err_set(e, -E_NOMEM, "out of memory");
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    *ret_pem = out;
    if (ret_len)
        *ret_len = (size_t)n;
    return 0;
}

int zmap_pubkey_pem(const unsigned char *data, size_t len, char **ret_pem, size_t *ret_len,
                    struct err *e)
{
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *pk = NULL;
    if (!data || len == 0 || len > 64 * 1024)
        return err_set(e, -E_INVALID, "public key: empty or too large");
    _cleanup_(OSSL_DECODER_CTX_freep) OSSL_DECODER_CTX *dctx =
        OSSL_DECODER_CTX_new_for_pkey(&pk, NULL, NULL, NULL, EVP_PKEY_PUBLIC_KEY, NULL, NULL);
    const unsigned char *p = data;
    size_t left = len;
    if (!dctx || OSSL_DECODER_from_data(dctx, &p, &left) != 1 || !pk)
        return err_set(e, -E_INVALID, "public key: not a PEM or DER public key");
    static const char spki[] = "-----BEGIN PUBLIC KEY-----";
    if (len >= sizeof spki - 1 && memcmp(data, spki, sizeof spki - 1) == 0 &&
        !memchr(data, '\0', len)) {
        char *out = malloc(len + 1);
        if (!out)
            return err_set(e, -E_NOMEM, "out of memory");
        memcpy(out, data, len);
        out[len] = '\0';
        *ret_pem = out;
        if (ret_len)
            *ret_len = len;
        return 0;
    }
    return pem_of(pk, ret_pem, ret_len, e);
}

static BIGNUM *b64url_bn(json_t *j, const char *name, size_t *ret_len)
{
    const char *s = json_string_value(json_object_get(j, name));
    if (!s)
        return NULL;
    size_t n = 0;
    unsigned char *raw = b64url_decode_alloc(s, strlen(s), true, &n);
    if (!raw || n == 0) {
        free(raw);
        return NULL;
    }
    BIGNUM *bn = BN_bin2bn(raw, (int)n, NULL);
    free(raw);
    if (ret_len)
        *ret_len = n;
    return bn;
}

static int jwk_rsa(json_t *j, EVP_PKEY **ret, struct err *e)
{
    _cleanup_(BN_freep) BIGNUM *n = b64url_bn(j, "n", NULL);
    _cleanup_(BN_freep) BIGNUM *ex = b64url_bn(j, "e", NULL);
    if (!n || !ex)
        return err_set(e, -E_INVALID, "jwk: RSA n/e missing or not base64url");
    _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, ex))
        return err_set(e, -E_NOMEM, "out of memory");
    _cleanup_(OSSL_PARAM_freep) OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, ret, EVP_PKEY_PUBLIC_KEY, params) != 1)
        return err_set(e, -E_INVALID, "jwk: not a usable RSA public key");
    return 0;
}

static int jwk_ec(json_t *j, const char **ret_alg, EVP_PKEY **ret, struct err *e)
{
    const char *crv = json_string_value(json_object_get(j, "crv"));
    const char *group;
    size_t flen;
    if (crv && strcmp(crv, "P-256") == 0) {
        group = "prime256v1";
        flen = 32;
        *ret_alg = "ES256";
    } else if (crv && strcmp(crv, "P-384") == 0) {
        group = "secp384r1";
        flen = 48;
        *ret_alg = "ES384";
    } else if (crv && strcmp(crv, "P-521") == 0) {
        group = "secp521r1";
        flen = 66;
        *ret_alg = "ES512";
    } else {
        return err_set(e, -E_INVALID, "jwk: EC curve '%.20s' not supported", crv ? crv : "");
    }
    size_t xl = 0, yl = 0;
    _cleanup_(BN_freep) BIGNUM *x = b64url_bn(j, "x", &xl);
    _cleanup_(BN_freep) BIGNUM *y = b64url_bn(j, "y", &yl);
    if (!x || !y || xl > flen || yl > flen)
        return err_set(e, -E_INVALID, "jwk: EC x/y missing or malformed");
    unsigned char pt[1 + 2 * 66];
    pt[0] = 0x04;
    if (BN_bn2binpad(x, pt + 1, (int)flen) < 0 || BN_bn2binpad(y, pt + 1 + flen, (int)flen) < 0)
        return err_set(e, -E_INVALID, "jwk: EC x/y too long");
    _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * flen))
        return err_set(e, -E_NOMEM, "out of memory");
    _cleanup_(OSSL_PARAM_freep) OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, ret, EVP_PKEY_PUBLIC_KEY, params) != 1)
        return err_set(e, -E_INVALID, "jwk: not a usable EC public key");
    return 0;
}

int zmap_jwk_to_pem(const char *jwk_json, char **ret_pem, char **ret_alg, char **ret_kid,
                    struct err *e)
{
    json_error_t je;
    _cleanup_(json_decrefp) json_t *j = json_loads(jwk_json ? jwk_json : "", 0, &je);
    if (!j || !json_is_object(j))
        return err_set(e, -E_INVALID, "jwk: not a JSON object");
    if (json_object_get(j, "d"))
        return err_set(e, -E_INVALID, "jwk: holds a private key");
    const char *kty = json_string_value(json_object_get(j, "kty"));
    const char *alg = json_string_value(json_object_get(j, "alg"));
    const char *kid = json_string_value(json_object_get(j, "kid"));
    const char *dflt = NULL;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *pk = NULL;
    int r;
    if (kty && strcmp(kty, "RSA") == 0) {
        dflt = "RS256";
        r = jwk_rsa(j, &pk, e);
    } else if (kty && strcmp(kty, "EC") == 0) {
        r = jwk_ec(j, &dflt, &pk, e);
    } else {
        return err_set(e, -E_INVALID, "jwk: key type '%.20s' not supported", kty ? kty : "");
    }
    if (r < 0)
        return r;
    if (alg && strncmp(alg, kty[0] == 'R' ? "RS" : "ES", 2) != 0)
        return err_set(e, -E_INVALID, "jwk: alg '%.20s' does not fit a %s key", alg, kty);
    _cleanup_free_ char *pem = NULL;
    r = pem_of(pk, &pem, NULL, e);
    if (r < 0)
        return r;
    char *a = strdup(alg ? alg : dflt);
    char *k = strdup(kid ? kid : "");
    if (!a || !k) {
        free(a);
        free(k);
        return err_set(e, -E_NOMEM, "out of memory");
    }
    *ret_pem = TAKE_PTR(pem);
    *ret_alg = a;
    *ret_kid = k;
    return 0;
}
