/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for oidc/password.c, oidc/hashq.c and oidc/throttle.c. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <crypt.h>

#include "fixture_tmp.h"
#include "oidc/hashq.h"
#include "oidc/oidc.h"
#include "oidc/password.h"
#include "oidc/throttle.h"
#include "storage/repo.h"
#include "storage/store.h"

static char *mkhash(const char *prefix, unsigned long cost, const char *pw)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    assert_non_null(crypt_gensalt_rn(prefix, cost, NULL, 0, setting, sizeof setting));
    char *h = crypt_rn(pw, setting, &cd, sizeof cd);
    assert_non_null(h);
    return strdup(h);
}

static void test_verify_formats(void **state)
{
    (void)state;
    const char *prefixes[] = {"$2b$", "$y$", "$5$", "$6$", "$1$"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        char *h = mkhash(prefixes[i], prefixes[i][1] == '2' ? 4 : 0, "correct horse");
        bool m = false;
        assert_int_equal(oidc_password_verify(h, "correct horse", &m, NULL), 0);
        assert_true(m);
        assert_int_equal(oidc_password_verify(h, "correct horsf", &m, NULL), 0);
        assert_false(m);
        assert_int_equal(oidc_password_verify(h, "", &m, NULL), 0);
        assert_false(m);
        free(h);
    }
    /* Go's bcrypt writes $2a$; the same hash with $2y$ verifies too */
    char *h = mkhash("$2b$", 4, "pw");
    h[2] = 'a';
    bool m = false;
    assert_int_equal(oidc_password_verify(h, "pw", &m, NULL), 0);
    assert_true(m);
    h[2] = 'y';
    assert_int_equal(oidc_password_verify(h, "pw", &m, NULL), 0);
    assert_true(m);
    free(h);
}

static void test_verify_refused(void **state)
{
    bool m = true;
    (void)state;
    /* traditional DES, failure tokens, empty, locked: never a match */
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    char *des = strdup(crypt_rn("password", "ab", &cd, sizeof cd));
    assert_int_equal(oidc_password_verify(des, "password", &m, NULL), 0);
    assert_false(m);
    free(des);
    const char *odd[] = {"", "*", "*0", "!", "!$y$j9T$x$y", "$2a$04$short", "$y$"};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        m = true;
        assert_int_equal(oidc_password_verify(odd[i], "*0", &m, NULL), 0);
        assert_false(m);
    }
    m = true;
    assert_int_equal(oidc_password_verify(NULL, "x", &m, NULL), 0);
    assert_false(m);
    /* over-long input never reaches the hash */
    char *h = mkhash("$y$", 1, "x");
    char *longpw = malloc(OIDC_PASSWORD_MAX + 2);
    memset(longpw, 'x', OIDC_PASSWORD_MAX + 1);
    longpw[OIDC_PASSWORD_MAX + 1] = '\0';
    m = true;
    assert_int_equal(oidc_password_verify(h, longpw, &m, NULL), 0);
    assert_false(m);
    free(longpw);
    free(h);
}

static void test_upgrade(void **state)
{
    (void)state;
    char *b = mkhash("$2b$", 4, "pw");
    char *y3 = mkhash("$y$", 3, "pw");
    char *y5 = mkhash("$y$", 5, "pw");
    char *y7 = mkhash("$y$", 7, "pw");
    assert_true(oidc_password_needs_upgrade(b, 5));
    assert_true(oidc_password_needs_upgrade(y3, 5));
    assert_false(oidc_password_needs_upgrade(y5, 5));
    assert_false(oidc_password_needs_upgrade(y7, 5));
    assert_true(oidc_password_needs_upgrade(y5, 7));
    assert_false(oidc_password_needs_upgrade("", 5));

    char *n = NULL;
    struct err e;
    assert_int_equal(oidc_password_hash("new pw", 5, &n, &e), 0);
    assert_memory_equal(n, "$y$", 3);
    assert_false(oidc_password_needs_upgrade(n, 5));
    bool m = false;
    assert_int_equal(oidc_password_verify(n, "new pw", &m, NULL), 0);
    assert_true(m);
    assert_int_equal(oidc_password_hash("x", 0, &n, &e), -E_INVALID);
    assert_int_equal(oidc_password_hash("x", 12, &n, &e), -E_INVALID);
    free(n);
    free(b);
    free(y3);
    free(y5);
    free(y7);
}

static void test_expensive(void **state)
{
    (void)state;
    assert_false(
        oidc_password_expensive("$2a$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234"));
    assert_true(
        oidc_password_expensive("$2a$14$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234"));
    assert_true(oidc_password_expensive("$y$j9T$abc$def"));
    assert_false(oidc_password_expensive("$6$salt$hash"));
    assert_true(oidc_password_expensive("$6$rounds=100000$salt$hash"));
    assert_false(oidc_password_expensive("ab01234567890"));
}

/* hash queue */

struct slow_job {
    int sleep_ms;
    int ran;
};

static void slow(void *cbdata)
{
    struct slow_job *j = cbdata;
    usleep((useconds_t)j->sleep_ms * 1000);
    __atomic_add_fetch(&j->ran, 1, __ATOMIC_SEQ_CST);
}

struct runner {
    struct oidc_hashq *q;
    struct slow_job job;
    int r;
    int timeout_ms;
};

static void *run_one(void *arg)
{
    struct runner *r = arg;
    r->r = oidc_hashq_run(r->q, slow, &r->job, r->timeout_ms, NULL);
    return NULL;
}

static void test_hashq_runs_and_bounds(void **state)
{
    (void)state;
    struct oidc_hashq *q = NULL;
    struct err e;
    assert_int_equal(oidc_hashq_new(1, 2, &q, &e), 0);

    /* a simple job runs */
    struct slow_job j = {.sleep_ms = 1};
    assert_int_equal(oidc_hashq_run(q, slow, &j, 0, &e), 0);
    assert_int_equal(j.ran, 1);

    /* two slow jobs fill the queue (one running, one waiting); a third is refused at once */
    struct runner a = {.q = q, .job = {.sleep_ms = 300}}, b = {.q = q, .job = {.sleep_ms = 300}};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, run_one, &a);
    while (oidc_hashq_pending(q) < 1)
        usleep(1000);
    pthread_create(&tb, NULL, run_one, &b);
    while (oidc_hashq_pending(q) < 2)
        usleep(1000);
    struct slow_job c = {.sleep_ms = 1};
    assert_int_equal(oidc_hashq_run(q, slow, &c, 0, &e), -E_UNAVAILABLE);
    assert_int_equal(c.ran, 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.r, 0);
    assert_int_equal(b.r, 0);
    assert_int_equal(a.job.ran + b.job.ran, 2);
    assert_int_equal(oidc_hashq_pending(q), 0);
    oidc_hashq_free(q);
}

static void test_hashq_timeout_withdraws(void **state)
{
    (void)state;
    struct oidc_hashq *q = NULL;
    assert_int_equal(oidc_hashq_new(1, 4, &q, NULL), 0);
    struct runner a = {.q = q, .job = {.sleep_ms = 300}};
    pthread_t ta;
    pthread_create(&ta, NULL, run_one, &a);
    while (oidc_hashq_pending(q) < 1)
        usleep(1000);
    struct slow_job c = {.sleep_ms = 1};
    struct err e;
    assert_int_equal(oidc_hashq_run(q, slow, &c, 50, &e), -E_UNAVAILABLE);
    pthread_join(ta, NULL);
    usleep(20000);
    assert_int_equal(c.ran, 0); /* withdrawn, never run */
    assert_int_equal(oidc_hashq_pending(q), 0);
    oidc_hashq_free(q);
}

static void test_verify_queued(void **state)
{
    (void)state;
    struct oidc_hashq *q = NULL;
    assert_int_equal(oidc_hashq_new(2, 8, &q, NULL), 0);
    char *h = mkhash("$y$", 1, "pw");
    bool m = false;
    assert_int_equal(oidc_password_verify_queued(q, h, "pw", 0, &m, NULL), 0);
    assert_true(m);
    assert_int_equal(oidc_password_verify_queued(q, h, "pX", 0, &m, NULL), 0);
    assert_false(m);
    free(h);
    oidc_hashq_free(q);
}

static void test_ctx_clamps_hash_queue(void **state)
{
    (void)state;
    struct {
        int queue_max, workers;
        unsigned want;
    } cases[] = {{64, 64, 16}, {64, 0, 64}, {0, 0, 64}, {8, 64, 8}, {64, 3, 1}, {0, 200, 50}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct oidc_config cfg = {.issuer = "http://127.0.0.1:1",
                                  .yescrypt_cost = 1,
                                  .hash_workers = 1,
                                  .hash_queue_max = cases[i].queue_max,
                                  .worker_threads = cases[i].workers};
        struct oidc_ctx *ctx = NULL;
        struct err e = {0};
        assert_int_equal(oidc_ctx_new(&cfg, NULL, &ctx, &e), 0);
        if (oidc_hashq_capacity(ctx->hashq) != cases[i].want)
            fail_msg("queue %d workers %d: capacity %u, want %u", cases[i].queue_max,
                     cases[i].workers, oidc_hashq_capacity(ctx->hashq), cases[i].want);
        oidc_ctx_free(ctx);
    }
}

/* throttle */

static void test_throttle_backoff(void **state)
{
    (void)state;
    struct oidc_throttle *t = NULL;
    struct oidc_throttle_config cfg = {.slots = 64,
                                       .free_failures = 3,
                                       .base_delay_ms = 1000,
                                       .max_delay_ms = 8000,
                                       .forget_ms = 60000};
    assert_int_equal(oidc_throttle_new(&cfg, &t, NULL), 0);
    int64_t now = 1000000, retry = 0;

    assert_true(oidc_throttle_check(t, "acct:alice", now, &retry));
    oidc_throttle_failure(t, "acct:alice", now);
    oidc_throttle_failure(t, "acct:alice", now);
    assert_true(oidc_throttle_check(t, "acct:alice", now, &retry));
    oidc_throttle_failure(t, "acct:alice", now); /* third: 1 s */
    assert_false(oidc_throttle_check(t, "acct:alice", now, &retry));
    assert_int_equal(retry, 1000);
    assert_false(oidc_throttle_check(t, "acct:alice", now + 999, &retry));
    assert_int_equal(retry, 1);
    assert_true(oidc_throttle_check(t, "acct:alice", now + 1000, &retry));
    /* other keys are unaffected */
    assert_true(oidc_throttle_check(t, "acct:bob", now, &retry));

    oidc_throttle_failure(t, "acct:alice", now + 1000); /* 2 s */
    assert_false(oidc_throttle_check(t, "acct:alice", now + 2999, &retry));
    assert_true(oidc_throttle_check(t, "acct:alice", now + 3000, &retry));
    for (int i = 0; i < 10; i++)
        oidc_throttle_failure(t, "acct:alice", now + 3000);
    assert_false(oidc_throttle_check(t, "acct:alice", now + 3000, &retry));
    assert_int_equal(retry, 8000); /* capped */
    assert_int_equal(oidc_throttle_failures(t, "acct:alice", now + 3000), 14);

    /* success forgets */
    oidc_throttle_success(t, "acct:alice");
    assert_true(oidc_throttle_check(t, "acct:alice", now + 3000, &retry));
    assert_int_equal(oidc_throttle_failures(t, "acct:alice", now + 3000), 0);

    /* a quiet key is forgotten after forget_ms */
    oidc_throttle_failure(t, "addr:192.0.2.1", now);
    oidc_throttle_failure(t, "addr:192.0.2.1", now);
    assert_int_equal(oidc_throttle_failures(t, "addr:192.0.2.1", now + 59999), 2);
    assert_int_equal(oidc_throttle_failures(t, "addr:192.0.2.1", now + 60000), 0);
    oidc_throttle_free(t);
}

static void test_throttle_bounded(void **state)
{
    (void)state;
    struct oidc_throttle *t = NULL;
    struct oidc_throttle_config cfg = {.slots = 16, .free_failures = 1};
    assert_int_equal(oidc_throttle_new(&cfg, &t, NULL), 0);
    int64_t now = 5000;
    oidc_throttle_failure(t, "victim", now);
    assert_false(oidc_throttle_check(t, "victim", now, NULL));
    /* a flood of fresh keys is absorbed by a fixed table: the oldest entries go first, and
     * the table never grows */
    char key[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        oidc_throttle_failure(t, key, now + 1 + i);
    }
    /* the most recent keys are still throttled */
    snprintf(key, sizeof key, "k%d", 9999);
    assert_false(oidc_throttle_check(t, key, now + 10000, NULL));
    unsigned remembered = 0;
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        remembered += oidc_throttle_failures(t, key, now + 10000) > 0;
    }
    assert_true(remembered <= 16);
    assert_true(remembered >= 8);
    oidc_throttle_free(t);
}

struct hammer {
    struct oidc_throttle *t;
    int id;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    char key[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "k%d", (i * 7 + h->id) % 300);
        if (i % 3)
            oidc_throttle_failure(h->t, key, i);
        else
            oidc_throttle_check(h->t, key, i, NULL);
        if (i % 101 == 0)
            oidc_throttle_success(h->t, key);
    }
    return NULL;
}

static void test_throttle_threads(void **state)
{
    (void)state;
    struct oidc_throttle *t = NULL;
    assert_int_equal(oidc_throttle_new(&(struct oidc_throttle_config){.slots = 128}, &t, NULL), 0);
    pthread_t th[4];
    struct hammer h[4];
    for (int i = 0; i < 4; i++) {
        h[i] = (struct hammer){t, i};
        pthread_create(&th[i], NULL, hammer_run, &h[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    oidc_throttle_failure(t, "after", 1);
    assert_int_equal(oidc_throttle_failures(t, "after", 1), 1);
    oidc_throttle_free(t);
}

/* The built-in rule (no policy stored). */
static void test_policy(void **state)
{
    (void)state;
    struct err e = {0};
    char big[OIDC_PASSWORD_MAX + 2];
    assert_int_equal(oidc_password_policy_check("12345678", NULL, &e), 0);
    assert_int_equal(oidc_password_policy_check("correct horse battery", NULL, &e), 0);
    assert_int_equal(oidc_password_policy_check("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                                "\xc3\xa9\xc3\xa9",
                                                NULL, &e),
                     0); /* 8 characters, 16 bytes */
    assert_int_equal(oidc_password_policy_check("1234567", NULL, &e), -E_INVALID);
    assert_non_null(strstr(e.msg, "at least 8 characters"));
    assert_int_equal(oidc_password_policy_check("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                                "\xc3\xa9",
                                                NULL, &e),
                     -E_INVALID); /* 7 characters, 14 bytes */
    assert_int_equal(oidc_password_policy_check("        ", NULL, &e), -E_INVALID);
    assert_int_equal(oidc_password_policy_check("", NULL, &e), -E_INVALID);
    assert_int_equal(oidc_password_policy_check(NULL, NULL, &e), -E_INVALID);
    assert_int_equal(oidc_password_policy_check("1234\t5678", NULL, &e), -E_INVALID);
    assert_non_null(strstr(e.msg, "control characters"));
    assert_int_equal(oidc_password_policy_check("12345678\x7f", NULL, &e), -E_INVALID);
    memset(big, 'a', sizeof big - 1);
    big[OIDC_PASSWORD_MAX] = '\0';
    assert_int_equal(oidc_password_policy_check(big, NULL, &e), 0);
    big[OIDC_PASSWORD_MAX] = 'a';
    big[OIDC_PASSWORD_MAX + 1] = '\0';
    assert_int_equal(oidc_password_policy_check(big, NULL, &e), -E_INVALID);
    assert_non_null(strstr(e.msg, "too long"));
}

#define E6 "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" /* 6 characters, 12 bytes */

static Koderid__V2__PasswordPolicy mkpolicy(const char *org, uint32_t min, bool lower, bool upper,
                                            bool number, bool symbol)
{
    Koderid__V2__PasswordPolicy p = KODERID__V2__PASSWORD_POLICY__INIT;
    p.org_id = (char *)org;
    p.min_length = min;
    p.has_lowercase = lower;
    p.has_uppercase = upper;
    p.has_number = number;
    p.has_symbol = symbol;
    return p;
}

/* Each character class of v1's complexity policy, one at a time. */
static void test_policy_classes(void **state)
{
    (void)state;
    struct err e = {0};
    Koderid__V2__PasswordPolicy p = mkpolicy("", 4, true, false, false, false);
    assert_int_equal(oidc_password_policy_check("ABCD1234", &p, &e), -E_INVALID);
    assert_non_null(strstr(e.msg, "lower-case letter"));
    assert_int_equal(oidc_password_policy_check("ABCd1234", &p, &e), 0);
    assert_int_equal(oidc_password_policy_check(E6, &p, &e), -E_INVALID); /* not ASCII */

    p = mkpolicy("", 4, false, true, false, false);
    assert_int_equal(oidc_password_policy_check("abcd1234", &p, &e), -E_INVALID);
    assert_non_null(strstr(e.msg, "upper-case letter"));
    assert_int_equal(oidc_password_policy_check("abcD1234", &p, &e), 0);

    p = mkpolicy("", 4, false, false, true, false);
    assert_int_equal(oidc_password_policy_check("abcdEFGH!", &p, &e), -E_INVALID);
    assert_non_null(strstr(e.msg, "digit"));
    assert_int_equal(oidc_password_policy_check("abcd9EFGH", &p, &e), 0);

    p = mkpolicy("", 4, false, false, false, true);
    assert_int_equal(oidc_password_policy_check("abcdEFGH1234", &p, &e), -E_INVALID);
    assert_non_null(strstr(e.msg, "symbol"));
    assert_int_equal(oidc_password_policy_check("abcd-1234", &p, &e), 0);
    assert_int_equal(oidc_password_policy_check("abcd 1234", &p, &e), 0);    /* space */
    assert_int_equal(oidc_password_policy_check("abcd\xc3\xa9", &p, &e), 0); /* non-ASCII */

    /* v1's default: all four classes, 8 characters ("Password1!" is its documented one). */
    p = mkpolicy("", 8, true, true, true, true);
    assert_int_equal(oidc_password_policy_check("Password1!", &p, &e), 0);
    assert_int_equal(oidc_password_policy_check("password1!", &p, &e), -E_INVALID);
    assert_non_null(strstr(e.msg, "upper-case"));
    assert_int_equal(oidc_password_policy_check("Pa1!", &p, &e), -E_INVALID);
    assert_non_null(strstr(e.msg, "at least 8 characters"));
    /* The fixed rules hold under any policy. */
    assert_int_equal(oidc_password_policy_check("Pass\tword1!", &p, &e), -E_INVALID);
    assert_non_null(strstr(e.msg, "control characters"));
}

/* min_length counts characters, not bytes; a policy may lower or raise the built-in 8. */
static void test_policy_min_length(void **state)
{
    (void)state;
    struct err e = {0};
    Koderid__V2__PasswordPolicy p = mkpolicy("", 7, false, false, false, false);
    assert_int_equal(oidc_password_policy_check(E6, &p, &e), -E_INVALID); /* 12 bytes */
    assert_non_null(strstr(e.msg, "at least 7 characters"));
    assert_int_equal(oidc_password_policy_check(E6 "\xe2\x82\xac", &p, &e), 0); /* + euro sign */
    assert_int_equal(oidc_password_policy_check("1234567", &p, &e), 0);
    p.min_length = 12;
    assert_int_equal(oidc_password_policy_check("12345678901", &p, &e), -E_INVALID);
    assert_non_null(strstr(e.msg, "at least 12 characters"));
    assert_int_equal(oidc_password_policy_check(E6 E6, &p, &e), 0);
    p.min_length = 0; /* counts as 1: never an empty password */
    assert_int_equal(oidc_password_policy_check("", &p, &e), -E_INVALID);
    assert_int_equal(oidc_password_policy_check("x", &p, &e), 0);
    assert_int_equal(oidc_password_policy_check(" ", &p, &e), -E_INVALID);
}

/* oidc_password_policy_load: the org's own, else the instance default, else none. */
static void test_policy_load(void **state)
{
    (void)state;
    struct err e = {0};
    struct store *s = NULL;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/pwpolicy", fx_tmpbase);
    assert_int_equal(mkdir(dir, 0700), 0);
    struct store_config cfg = {
        .backend = "lmdb", .data_dir = dir, .lmdb_map_size = (size_t)16 << 20};
    assert_int_equal(store_open(&cfg, &s, &e), 0);

    Koderid__V2__PasswordPolicy *got = NULL;
    assert_int_equal(oidc_password_policy_load(s, "o1", &got, &e), 0);
    assert_null(got); /* nothing stored: the built-in rule */

    Koderid__V2__PasswordPolicy def = mkpolicy("", 10, true, true, true, true);
    Koderid__V2__PasswordPolicy org = mkpolicy("o1", 6, false, false, true, false);
    assert_int_equal(repo_put(s, "pwpolicy/default", &def.base, 0, NULL, &e), 0);
    assert_int_equal(oidc_password_policy_load(s, "o1", &got, &e), 0);
    assert_non_null(got);
    assert_int_equal(got->min_length, 10);
    assert_int_equal(oidc_password_policy_check("abc123", got, &e), -E_INVALID);
    koderid__v2__password_policy__free_unpacked(got, NULL);

    assert_int_equal(repo_put(s, "pwpolicy/org/o1", &org.base, 0, NULL, &e), 0);
    assert_int_equal(oidc_password_policy_load(s, "o1", &got, &e), 0);
    assert_string_equal(got->org_id, "o1");
    assert_int_equal(oidc_password_policy_check("abc123", got, &e), 0); /* the org's rule */
    assert_int_equal(oidc_password_policy_check("abcdef", got, &e), -E_INVALID);
    assert_non_null(strstr(e.msg, "digit"));
    koderid__v2__password_policy__free_unpacked(got, NULL);

    /* Another org, no org, or an id that cannot be a key: the instance default. */
    const char *others[] = {"o2", "", NULL, "o1/../o1"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        assert_int_equal(oidc_password_policy_load(s, others[i], &got, &e), 0);
        assert_int_equal(got->min_length, 10);
        koderid__v2__password_policy__free_unpacked(got, NULL);
    }
    store_close(s);
}

static int group_setup(void **state)
{
    (void)state;
    return fx_tmp_setup("password");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify_formats),
        cmocka_unit_test(test_verify_refused),
        cmocka_unit_test(test_upgrade),
        cmocka_unit_test(test_expensive),
        cmocka_unit_test(test_hashq_runs_and_bounds),
        cmocka_unit_test(test_hashq_timeout_withdraws),
        cmocka_unit_test(test_verify_queued),
        cmocka_unit_test(test_ctx_clamps_hash_queue),
        cmocka_unit_test(test_throttle_backoff),
        cmocka_unit_test(test_throttle_bounded),
        cmocka_unit_test(test_throttle_threads),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_policy_classes),
        cmocka_unit_test(test_policy_min_length),
        cmocka_unit_test(test_policy_load),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, group_setup, fx_tmp_teardown);
}
