/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the Zitadel value parsers of the importer (migrate/zmap.c): what v1's PostgreSQL
 * columns hold is input from outside. The first input byte picks the parser, the rest
 * (NUL-terminated) is its input:
 *   0 text[] literal    round trip: the elements quoted back into a literal parse the same
 *   1 int[] literal     round trip through decimal text
 *   2 hash format       zmap_hash_check() agrees with zmap_hash_verifiable(), crypt prefixes
 *   3 CryptoValue JSON  the hash it yields is a NUL-free string
 *   4 client id form    the form matches the text (digits, '@', control bytes, length)
 *   5 bytea hex         the decoded bytes re-encode to the (lower-cased) input
 *   6 public key        a key accepted is PEM that OpenSSL reads back
 *   7 JWK               likewise, with an alg and a kid
 *   8 login names       username and '\n'-separated domains; names are non-empty
 */
#include <ctype.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "migrate/zmap.h"

static void check_text_array(const char *lit)
{
    struct zmap_strv l = {0};
    struct err e = {0};
    if (zmap_parse_text_array(lit, &l, &e) < 0) {
        FUZZ_CHECK(e.code < 0 && l.v == NULL && l.n == 0);
        return;
    }
    /* Quote every element back: {"a","b\"c",NULL} */
    size_t cap = 3;
    for (size_t i = 0; i < l.n; i++)
        cap += (l.v[i] ? 2 * strlen(l.v[i]) + 3 : 5);
    char *out = malloc(cap), *o = out;
    FUZZ_CHECK(out);
    *o++ = '{';
    for (size_t i = 0; i < l.n; i++) {
        if (i)
            *o++ = ',';
        if (!l.v[i]) {
            memcpy(o, "NULL", 4);
            o += 4;
            continue;
        }
        *o++ = '"';
        for (const char *p = l.v[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                *o++ = '\\';
            *o++ = *p;
        }
        *o++ = '"';
    }
    *o++ = '}';
    *o = '\0';
    struct zmap_strv again = {0};
    int r = zmap_parse_text_array(out, &again, &e);
    if (r < 0)
        fprintf(stderr, "re-parse failed: %s\n", e.msg);
    FUZZ_CHECK(r == 0 && again.n == l.n);
    for (size_t i = 0; i < l.n; i++) {
        FUZZ_CHECK(!l.v[i] == !again.v[i]);
        FUZZ_CHECK(!l.v[i] || strcmp(l.v[i], again.v[i]) == 0);
    }
    zmap_strv_release(&again);
    zmap_strv_release(&l);
    FUZZ_CHECK(l.v == NULL && l.n == 0);
    free(out);
}

static void check_int_array(const char *lit)
{
    int32_t *v = NULL;
    size_t n = 0;
    struct err e = {0};
    if (zmap_parse_int_array(lit, &v, &n, &e) < 0)
        return;
    char *out = malloc(n * 12 + 3), *o = out;
    FUZZ_CHECK(out);
    *o++ = '{';
    for (size_t i = 0; i < n; i++)
        o += sprintf(o, "%s%d", i ? "," : "", v[i]);
    *o++ = '}';
    *o = '\0';
    int32_t *w = NULL;
    size_t m = 0;
    FUZZ_CHECK(zmap_parse_int_array(out, &w, &m, &e) == 0 && m == n);
    FUZZ_CHECK(n == 0 || memcmp(v, w, n * sizeof *v) == 0);
    free(w);
    free(v);
    free(out);
}

static void check_hash(const char *h)
{
    enum zmap_hash_fmt fmt = zmap_hash_format(h), fmt2 = ZMAP_HASH_UNKNOWN;
    struct err e = {0};
    int r = zmap_hash_check(h, &fmt2, &e);
    FUZZ_CHECK(fmt2 == fmt);
    /* Usable only if verifiable; a verifiable family may still be malformed (refused). */
    if (r == 0)
        FUZZ_CHECK(zmap_hash_verifiable(fmt));
    else
        FUZZ_CHECK(fmt != ZMAP_HASH_NONE);
    FUZZ_CHECK(zmap_hash_name(fmt) != NULL);
    if (r < 0 && strlen(h) >= 12)
        FUZZ_CHECK(strstr(e.msg, h) == NULL); /* never the hash in a message */
    switch (fmt) {
    case ZMAP_HASH_NONE:
        FUZZ_CHECK(h[0] == '\0');
        break;
    case ZMAP_HASH_BCRYPT:
        FUZZ_CHECK(strncmp(h, "$2a$", 4) == 0 || strncmp(h, "$2b$", 4) == 0 ||
                   strncmp(h, "$2y$", 4) == 0);
        break;
    case ZMAP_HASH_YESCRYPT:
        FUZZ_CHECK(strncmp(h, "$y$", 3) == 0);
        break;
    case ZMAP_HASH_SHA512CRYPT:
        FUZZ_CHECK(strncmp(h, "$6$", 3) == 0);
        break;
    case ZMAP_HASH_SHA256CRYPT:
        FUZZ_CHECK(strncmp(h, "$5$", 3) == 0);
        break;
    case ZMAP_HASH_MD5CRYPT:
        FUZZ_CHECK(strncmp(h, "$1$", 3) == 0);
        break;
    default:
        break;
    }
}

static void check_cryptovalue(const char *json)
{
    char *h = NULL;
    struct err e = {0};
    if (zmap_cryptovalue_hash(json, &h, &e) < 0) {
        FUZZ_CHECK(h == NULL && e.code < 0);
        return;
    }
    FUZZ_CHECK(h != NULL);
    check_hash(h);
    free(h);
}

static void check_cid(const char *cid)
{
    enum zmap_cid_form f = zmap_client_id_form(cid);
    size_t len = strlen(cid);
    bool ctl = false, digits = len > 0;
    for (size_t i = 0; i < len; i++) {
        ctl |= (unsigned char)cid[i] < 0x20 || cid[i] == 0x7f;
        digits &= isdigit((unsigned char)cid[i]) != 0;
    }
    if (len == 0 || ctl)
        FUZZ_CHECK(f == ZMAP_CID_INVALID);
    if (f == ZMAP_CID_NUMERIC)
        FUZZ_CHECK(digits);
    if (f == ZMAP_CID_AT_PROJECT)
        FUZZ_CHECK(strchr(cid, '@') != NULL);
    if (f != ZMAP_CID_INVALID)
        FUZZ_CHECK(len + strlen("client/") <= 511);
}

static void check_bytea(const char *text)
{
    unsigned char *b = NULL;
    size_t n = 0;
    struct err e = {0};
    if (zmap_bytea_decode(text, &b, &n, &e) < 0)
        return;
    FUZZ_CHECK(strncmp(text, "\\x", 2) == 0 && strlen(text) == 2 + 2 * n);
    for (size_t i = 0; i < n; i++) {
        char hx[3];
        snprintf(hx, sizeof hx, "%02x", b[i]);
        FUZZ_CHECK(tolower((unsigned char)text[2 + 2 * i]) == hx[0] &&
                   tolower((unsigned char)text[3 + 2 * i]) == hx[1]);
    }
    FUZZ_CHECK(b[n] == '\0');
    free(b);
}

static void check_pem_reads(const char *pem, size_t len)
{
    FUZZ_CHECK(pem && strlen(pem) == len);
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    FUZZ_CHECK(bio);
    EVP_PKEY *k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    FUZZ_CHECK(k);
    EVP_PKEY_free(k);
    BIO_free(bio);
}

static void check_pubkey(const uint8_t *data, size_t size)
{
    char *pem = NULL;
    size_t len = 0;
    struct err e = {0};
    if (zmap_pubkey_pem(data, size, &pem, &len, &e) < 0)
        return;
    check_pem_reads(pem, len);
    free(pem);
}

static void check_jwk(const char *json)
{
    char *pem = NULL, *alg = NULL, *kid = NULL;
    struct err e = {0};
    if (zmap_jwk_to_pem(json, &pem, &alg, &kid, &e) < 0) {
        FUZZ_CHECK(!pem && !alg && !kid);
        return;
    }
    FUZZ_CHECK(alg && kid && alg[0]);
    check_pem_reads(pem, strlen(pem));
    free(pem);
    free(alg);
    free(kid);
}

static void check_login_names(char *s, bool must)
{
    struct zmap_domain doms[8];
    size_t n = 0;
    char *user = s, *nl = strchr(s, '\n');
    if (nl) {
        *nl = '\0';
        for (char *p = nl + 1; p && n < 8;) {
            char *next = strchr(p, '\n');
            if (next)
                *next++ = '\0';
            doms[n].name = p;
            doms[n].is_primary = n == 0;
            n++;
            p = next;
        }
    }
    struct zmap_strv l = {0};
    struct err e = {0};
    if (zmap_login_names(user, must, doms, n, &l, &e) < 0)
        return;
    for (size_t i = 0; i < l.n; i++)
        FUZZ_CHECK(l.v[i] && strncmp(l.v[i], user, strlen(user)) == 0);
    zmap_strv_release(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 64 * 1024)
        return 0;
    char *s = malloc(size);
    FUZZ_CHECK(s);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    switch (data[0] % 9) {
    case 0:
        check_text_array(s);
        break;
    case 1:
        check_int_array(s);
        break;
    case 2:
        check_hash(s);
        break;
    case 3:
        check_cryptovalue(s);
        break;
    case 4:
        check_cid(s);
        break;
    case 5:
        check_bytea(s);
        break;
    case 6:
        check_pubkey(data + 1, size - 1);
        break;
    case 7:
        check_jwk(s);
        break;
    case 8:
        check_login_names(s, data[0] & 0x80);
        break;
    }
    free(s);
    return 0;
}
