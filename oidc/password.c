/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The only user of libxcrypt. Formats are allow-listed by prefix: crypt(3) also accepts
 * traditional DES, whose 8-character limit and 12-bit salt must never be trusted, and failure
 * tokens such as "*0" that a careless comparison could match.
 */
#include "password.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oidc/hashq.h"
#include "storage/repo.h"

static const char *const formats[] = {"$2a$", "$2b$", "$2y$", "$y$", "$5$", "$6$", "$1$"};

static bool format_ok(const char *hash)
{
    if (!hash || strlen(hash) > CRYPT_OUTPUT_SIZE - 1)
        return false;
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (strncmp(hash, formats[i], strlen(formats[i])) == 0)
            return true;
    return false;
}

int oidc_password_verify(const char *hash, const char *password, bool *ret_match, struct err *e)
{
    struct crypt_data *cd;
    bool match = false;

    if (!format_ok(hash) || !password || strlen(password) > OIDC_PASSWORD_MAX) {
        *ret_match = false;
        return 0;
    }
    cd = calloc(1, sizeof *cd); /* 32 KiB: not on a worker's stack */
    if (!cd)
        return err_set(e, -E_NOMEM, "out of memory");
    const char *out = crypt_rn(password, hash, cd, sizeof *cd);
    if (out && out[0] != '*') {
        size_t n = strlen(hash);
        match = strlen(out) == n && CRYPTO_memcmp(out, hash, n) == 0;
    }
    OPENSSL_cleanse(cd, sizeof *cd);
    free(cd);
    *ret_match = match;
    return 0;
}

struct verify_job {
    const char *hash;
    const char *password;
    bool match;
    int r;
    struct err e;
};

static void verify_job_run(void *cbdata)
{
    struct verify_job *j = cbdata;
    j->r = oidc_password_verify(j->hash, j->password, &j->match, &j->e);
}

int oidc_password_verify_queued(struct oidc_hashq *q, const char *hash, const char *password,
                                int timeout_ms, bool *ret_match, struct err *e)
{
    if (!q || !oidc_password_expensive(hash))
        return oidc_password_verify(hash, password, ret_match, e);
    struct verify_job j = {.hash = hash, .password = password};
    int r = oidc_hashq_run(q, verify_job_run, &j, timeout_ms, e);
    if (r < 0)
        return r;
    if (j.r < 0) {
        if (e)
            *e = j.e;
        return j.r;
    }
    *ret_match = j.match;
    return 0;
}

/* bcrypt's two-digit cost after "$2x$", or -1. */
static int bcrypt_cost(const char *hash)
{
    if (strncmp(hash, "$2", 2) != 0 || !hash[2] || hash[3] != '$')
        return -1;
    if (hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9' || hash[6] != '$')
        return -1;
    return (hash[4] - '0') * 10 + (hash[5] - '0');
}

bool oidc_password_expensive(const char *hash)
{
    if (!format_ok(hash))
        return false;
    if (hash[1] == '2')
        return bcrypt_cost(hash) >= 8;
    if (hash[1] == 'y')
        return true;
    if (hash[1] == '5' || hash[1] == '6') {
        const char *r = strstr(hash, "$rounds=");
        return r && atol(r + 8) >= 50000;
    }
    return false;
}

static int itoa64_index(char c)
{
    static const char itoa64[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const char *p = c ? strchr(itoa64, c) : NULL;
    return p ? (int)(p - itoa64) : -1;
}

/* A comparable measure of a yescrypt parameter field ("j9T"): N's log2 and r, or -1. */
static long yescrypt_work(const char *params, size_t len)
{
    if (len != 3 || params[0] != 'j')
        return -1;
    int n = itoa64_index(params[1]), r = itoa64_index(params[2]);
    if (n < 0 || r < 0 || n > 40)
        return -1;
    return (1L << (n > 30 ? 30 : n)) * (r + 1);
}

bool oidc_password_needs_upgrade(const char *hash, int yescrypt_cost)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];

    if (!format_ok(hash))
        return false; /* never verified, nothing to upgrade */
    if (strncmp(hash, "$y$", 3) != 0)
        return true;
    if (!crypt_gensalt_rn("$y$", (unsigned long)yescrypt_cost, NULL, 0, setting, sizeof setting))
        return false;
    const char *hp = hash + 3, *he = strchr(hp, '$');
    const char *sp = setting + 3, *se = strchr(sp, '$');
    if (!he || !se)
        return false;
    long have = yescrypt_work(hp, (size_t)(he - hp)), want = yescrypt_work(sp, (size_t)(se - sp));
    return have >= 0 && want >= 0 && have < want;
}

int oidc_password_hash(const char *password, int yescrypt_cost, char **ret, struct err *e)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd;

    if (yescrypt_cost < 1 || yescrypt_cost > 11)
        return err_set(e, -E_INVALID, "yescrypt cost %d out of range 1..11", yescrypt_cost);
    if (!password || strlen(password) > OIDC_PASSWORD_MAX)
        return err_set(e, -E_INVALID, "password too long");
    if (!crypt_gensalt_rn("$y$", (unsigned long)yescrypt_cost, NULL, 0, setting, sizeof setting))
        return err_set(e, -E_INTERNAL, "crypt_gensalt failed");
    cd = calloc(1, sizeof *cd);
    if (!cd)
        return err_set(e, -E_NOMEM, "out of memory");
    const char *out = crypt_rn(password, setting, cd, sizeof *cd);
    char *h = out && out[0] == '$' ? strdup(out) : NULL;
    OPENSSL_cleanse(cd, sizeof *cd);
    free(cd);
    if (!h)
        return err_set(e, -E_INTERNAL, "yescrypt hashing failed");
    *ret = h;
    return 0;
}

int oidc_password_policy_check(const char *password, const Koderid__V2__PasswordPolicy *policy,
                               struct err *e)
{
    size_t len = password ? strlen(password) : 0, chars = 0;
    bool blank = true, lower = false, upper = false, digit = false, symbol = false;

    if (len > OIDC_PASSWORD_MAX)
        return err_set(e, -E_INVALID, "The password is too long (at most %d bytes).",
                       OIDC_PASSWORD_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)password[i];
        if (c < 0x20 || c == 0x7f)
            return err_set(e, -E_INVALID, "The password must not contain control characters.");
        if ((c & 0xc0) == 0x80) /* count characters, not UTF-8 continuation bytes */
            continue;
        chars++;
        blank &= c == ' ';
        if (c >= 'a' && c <= 'z')
            lower = true;
        else if (c >= 'A' && c <= 'Z')
            upper = true;
        else if (c >= '0' && c <= '9')
            digit = true;
        else
            symbol = true; /* v1: anything but an ASCII letter or digit, non-ASCII included */
    }
    uint32_t min = policy ? policy->min_length : OIDC_PASSWORD_MIN_CHARS;
    if (min < 1)
        min = 1;
    if (chars < min || blank)
        return err_set(e, -E_INVALID, "The password must have at least %u character%s.", min,
                       min == 1 ? "" : "s");
    if (policy && policy->has_lowercase && !lower)
        return err_set(e, -E_INVALID, "The password must contain a lower-case letter (a-z).");
    if (policy && policy->has_uppercase && !upper)
        return err_set(e, -E_INVALID, "The password must contain an upper-case letter (A-Z).");
    if (policy && policy->has_number && !digit)
        return err_set(e, -E_INVALID, "The password must contain a digit (0-9).");
    if (policy && policy->has_symbol && !symbol)
        return err_set(e, -E_INVALID,
                       "The password must contain a symbol (a character other than a letter "
                       "a-z, A-Z or a digit).");
    return 0;
}

int oidc_password_policy_load(struct store *s, const char *org_id,
                              Koderid__V2__PasswordPolicy **ret, struct err *e)
{
    char key[REPO_KEY_MAX];
    ProtobufCMessage *m = NULL;
    int r = -E_NOTFOUND;

    *ret = NULL;
    if (org_id && *org_id && !strchr(org_id, '/') && repo_key(key, "pwpolicy/org/%s", org_id) >= 0)
        r = repo_get(s, key, &koderid__v2__password_policy__descriptor, &m, NULL, e);
    if (r == -E_NOTFOUND)
        r = repo_get(s, "pwpolicy/default", &koderid__v2__password_policy__descriptor, &m, NULL, e);
    if (r == -E_NOTFOUND) {
        err_clear(e);
        return 0;
    }
    if (r < 0)
        return r;
    *ret = (Koderid__V2__PasswordPolicy *)m;
    return 0;
}
