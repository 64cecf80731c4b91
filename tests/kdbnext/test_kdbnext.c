/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kdb-next backend against the reference server (tests/kdbnext/server.py, Python grpcio),
 * started by tests/kdbnext/run.sh which exports KODER_TEST_KDB_*. argv[1] picks the group,
 * matching how run.sh started the server:
 *   plain    h2c: contract details, tenant isolation, token, faults (UNAVAILABLE bursts,
 *            server down and back, deadlines, a stopped server, dropped connections under
 *            load), many threads multiplexed on one connection
 *   streams  h2c, server with --max-concurrent-streams 4: the excess calls queue
 *   tls      TLS: a good connection, hostname verification, wrong CA, cleartext refused
 *   mtls     TLS with a required client certificate
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/grpc.h"
#include "storage/store.h"

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static uint64_t base_tenant(void)
{
    const char *t = env("KODER_TEST_KDB_TENANT");
    return t ? strtoull(t, NULL, 10) : 1000001;
}

/* Every test uses its own tenant so tests never see each other's keys. */
static uint64_t next_tenant(void)
{
    static uint64_t n;
    return base_tenant() + 100 + ++n;
}

struct opts {
    uint64_t tenant;
    const char *address;
    const char *ca;
    const char *cert, *key;
    const char *token_file;
    int timeout_ms;
    int plaintext; /* 0 = as run.sh says, 1 = cleartext, 2 = TLS */
};

static int open_with(struct opts o, struct store **ret, struct err *e)
{
    const char *plain = env("KODER_TEST_KDB_PLAINTEXT");
    struct store_config cfg = {
        .backend = "kdbnext",
        .tenant = o.tenant ? o.tenant : next_tenant(),
        .kdb_address = o.address ? o.address : env("KODER_TEST_KDB_ADDRESS"),
        .kdb_tls_ca_file = o.ca ? o.ca : env("KODER_TEST_KDB_CA"),
        .kdb_tls_cert_file = o.cert ? o.cert : env("KODER_TEST_KDB_CERT"),
        .kdb_tls_key_file = o.key ? o.key : env("KODER_TEST_KDB_KEY"),
        .kdb_token_file = o.token_file ? o.token_file : env("KODER_TEST_KDB_TOKEN_FILE"),
        .kdb_timeout_ms = o.timeout_ms ? o.timeout_ms : 3000,
        .kdb_plaintext = o.plaintext ? o.plaintext == 1 : (plain && strcmp(plain, "1") == 0),
    };
    return store_open(&cfg, ret, e);
}

#define OPTS(...) ((struct opts){__VA_ARGS__})

static struct store *open_ok(struct opts o)
{
    struct store *s = NULL;
    struct err e = {0};
    int r = open_with(o, &s, &e);
    if (r != 0)
        fail_msg("store_open: %s", e.msg);
    return s;
}

static int64_t mono_ms(void)
{
    return grpc_now_ms();
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- server control (server.py --control) ------------------------------------------------ */

static int ctl_seq;

/* Applies knobs (a JSON object body without braces) and waits until the server did. */
static void ctl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ctl(const char *fmt, ...)
{
    const char *path = env("KODER_TEST_KDB_CONTROL");
    assert_non_null(path);
    char body[512], tmp[4096], ack[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    int seq = ++ctl_seq;
    snprintf(tmp, sizeof tmp, "%s.w", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fprintf(f, "{\"seq\": %d%s%s}\n", seq, *body ? ", " : "", body);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0);
    snprintf(ack, sizeof ack, "%s.ack", path);
    for (int i = 0; i < 1000; i++) {
        f = fopen(ack, "r");
        if (f) {
            int got = -1;
            if (fscanf(f, "%d", &got) != 1)
                got = -1;
            fclose(f);
            if (got == seq)
                return;
        }
        sleep_ms(10);
    }
    fail_msg("server.py did not apply control seq %d", seq);
}

/* One integer counter from the server's stats (ctl with "stats": true first). */
static long stat_value(const char *name)
{
    char path[4096], buf[4096], needle[64];
    snprintf(path, sizeof path, "%s.stats", env("KODER_TEST_KDB_CONTROL"));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    snprintf(needle, sizeof needle, "\"%s\": ", name);
    const char *p = strstr(buf, needle);
    if (!p)
        return 0;
    return strtol(p + strlen(needle), NULL, 10);
}

/* ---- helpers ------------------------------------------------------------------------------ */

static uint64_t put_str(struct store *s, const char *k, const char *v)
{
    struct err e = {0};
    uint64_t ver = 0;
    int r = store_put(s, k, strlen(k), v, strlen(v), 0, &ver, &e);
    if (r != 0)
        fail_msg("put '%s': %s", k, e.msg);
    return ver;
}

static void check_value(struct store *s, const char *k, const char *v)
{
    struct store_value val = {0};
    struct err e = {0};
    int r = store_get(s, k, strlen(k), &val, &e);
    if (r != 0)
        fail_msg("get '%s': %d %s", k, r, e.msg);
    assert_int_equal(val.len, strlen(v));
    assert_memory_equal(val.data, v, val.len);
    store_value_release(&val);
}

static int get_rc(struct store *s, const char *k, struct err *e)
{
    struct store_value val = {0};
    int r = store_get(s, k, strlen(k), &val, e);
    store_value_release(&val);
    return r;
}

/* ---- configuration ------------------------------------------------------------------------ */

static void test_open_refuses_bad_config(void **state)
{
    struct store *s = NULL;
    struct err e = {0};
    assert_int_equal(open_with(OPTS(.tenant = 1000000), &s, &e), -E_CONFIG);
    assert_non_null(strstr(e.msg, "preseeded"));
    assert_int_equal(open_with(OPTS(.tenant = 1), &s, &e), -E_CONFIG);
    assert_non_null(strstr(e.msg, "preseeded"));
    assert_int_equal(open_with(OPTS(.address = "127.0.0.1:99999"), &s, &e), -E_CONFIG);
    assert_int_equal(open_with(OPTS(.address = "::1:80"), &s, &e), -E_CONFIG);
    assert_int_equal(open_with(OPTS(.token_file = "/nonexistent/token"), &s, &e), -E_CONFIG);
    assert_null(s);
    /* tenant 0 (not configured) */
    struct store_config cfg = {.backend = "kdbnext", .kdb_address = "127.0.0.1:1",
                               .kdb_token_file = env("KODER_TEST_KDB_TOKEN_FILE")};
    assert_int_equal(store_open(&cfg, &s, &e), -E_CONFIG);
    assert_non_null(strstr(e.msg, "tenant"));
}

/* ---- the contract in detail (the conformance suite covers the rest) ----------------------- */

static void test_roundtrip(void **state)
{
    struct store *s = open_ok(OPTS());
    struct err e = {0};
    assert_int_equal(store_ping(s, &e), 0);
    uint64_t v1 = put_str(s, "k/1", "one");
    assert_true(v1 > 0);
    check_value(s, "k/1", "one");
    /* a binary key with NUL bytes and an empty value */
    static const char bkey[] = {'b', 0, 1, (char)0xff};
    uint64_t vb = 0;
    assert_int_equal(store_put(s, bkey, sizeof bkey, "", 0, 0, &vb, &e), 0);
    struct store_value val = {0};
    assert_int_equal(store_get(s, bkey, sizeof bkey, &val, &e), 0);
    assert_int_equal(val.len, 0);
    assert_non_null(val.data);
    assert_int_equal(val.version, vb);
    store_value_release(&val);
    /* cas: conflict, then success */
    uint64_t v2 = 0;
    assert_int_equal(store_cas(s, "k/1", 3, v1 + 1000, "two", 3, 0, &v2, &e), -E_CONFLICT);
    assert_int_equal(store_cas(s, "k/1", 3, 0, "two", 3, 0, &v2, &e), -E_CONFLICT);
    assert_int_equal(store_cas(s, "k/1", 3, v1, "two", 3, 0, &v2, &e), 0);
    assert_true(v2 > v1);
    assert_int_equal(store_cas(s, "k/2", 3, 0, "new", 3, 0, NULL, &e), 0);
    /* delete with a wrong version, then the right one, then absent */
    assert_int_equal(store_del(s, "k/1", 3, v1, &e), -E_CONFLICT);
    assert_int_equal(store_del(s, "k/1", 3, v2, &e), 0);
    assert_int_equal(store_del(s, "k/1", 3, 0, &e), -E_NOTFOUND);
    assert_int_equal(get_rc(s, "k/1", &e), -E_NOTFOUND);
    /* a large value (1 MiB, the store's maximum) */
    size_t big = STORE_VALUE_MAX;
    unsigned char *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (unsigned char)(i * 7);
    assert_int_equal(store_put(s, "big", 3, data, big, 0, NULL, &e), 0);
    assert_int_equal(store_get(s, "big", 3, &val, &e), 0);
    assert_int_equal(val.len, big);
    assert_memory_equal(val.data, data, big);
    store_value_release(&val);
    free(data);
    /* TTL: expires_at_ms set, then gone */
    assert_int_equal(store_put(s, "ttl", 3, "x", 1, 300, NULL, &e), 0);
    assert_int_equal(store_get(s, "ttl", 3, &val, &e), 0);
    assert_true(val.expires_at_ms > store_now_ms());
    store_value_release(&val);
    sleep_ms(450);
    assert_int_equal(get_rc(s, "ttl", &e), -E_NOTFOUND);
    assert_int_equal(store_cas(s, "ttl", 3, 0, "y", 1, 0, NULL, &e), 0);
    store_close(s);
}

static void test_scan_pages(void **state)
{
    struct store *s = open_ok(OPTS());
    struct err e = {0};
    char k[32];
    for (int i = 0; i < 25; i++) {
        snprintf(k, sizeof k, "p/%03d", i);
        put_str(s, k, "v");
    }
    put_str(s, "p0", "outside");
    put_str(s, "o/1", "outside");
    char after[32] = "";
    int seen = 0, pages = 0;
    for (;;) {
        struct store_list l = {0};
        assert_int_equal(store_scan(s, "p/", 2, after, strlen(after), 10, &l, &e), 0);
        pages++;
        for (size_t i = 0; i < l.n; i++) {
            snprintf(k, sizeof k, "p/%03d", seen++);
            assert_string_equal(l.items[i].key, k);
        }
        bool more = l.more;
        if (l.n)
            snprintf(after, sizeof after, "%s", l.items[l.n - 1].key);
        store_list_release(&l);
        if (!more)
            break;
    }
    assert_int_equal(seen, 25);
    assert_int_equal(pages, 3);
    /* a prefix ending in 0xff bytes (upper bound computed by the server) */
    static const char ff[] = {'z', (char)0xff};
    static const char ffk[] = {'z', (char)0xff, (char)0xff, 1};
    assert_int_equal(store_put(s, ffk, sizeof ffk, "v", 1, 0, NULL, &e), 0);
    struct store_list l = {0};
    assert_int_equal(store_scan(s, ff, sizeof ff, NULL, 0, 5, &l, &e), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.items[0].klen, sizeof ffk);
    store_list_release(&l);
    store_close(s);
}

/* ---- tenants ------------------------------------------------------------------------------ */

static void test_tenant_isolation(void **state)
{
    struct store *a = open_ok(OPTS());
    struct store *b = open_ok(OPTS());
    struct err e = {0};
    const char *keys[] = {"user/1", "user/2", "client/x", "a", "\x01", "zzz"};
    for (size_t i = 0; i < 6; i++)
        put_str(a, keys[i], "tenant-a");
    put_str(b, "user/3", "tenant-b");
    put_str(b, "b-only", "tenant-b");
    /* no get crosses */
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(get_rc(b, keys[i], &e), -E_NOTFOUND);
    assert_int_equal(get_rc(a, "user/3", &e), -E_NOTFOUND);
    assert_int_equal(get_rc(a, "b-only", &e), -E_NOTFOUND);
    /* no scan crosses, whatever the prefix or cursor */
    const char *prefixes[] = {"", "u", "user/", "b", "\x01", "z"};
    for (size_t i = 0; i < 6; i++) {
        struct store_list l = {0};
        assert_int_equal(store_scan(b, prefixes[i], strlen(prefixes[i]), NULL, 0, 1000, &l, &e), 0);
        for (size_t j = 0; j < l.n; j++) {
            check_value(b, l.items[j].key, "tenant-b");
            assert_memory_equal(l.items[j].value.data, "tenant-b", 8);
        }
        store_list_release(&l);
        assert_int_equal(store_scan(a, prefixes[i], strlen(prefixes[i]), "\x01", 1, 1000, &l, &e),
                         0);
        for (size_t j = 0; j < l.n; j++)
            assert_memory_equal(l.items[j].value.data, "tenant-a", 8);
        store_list_release(&l);
    }
    struct store_list l = {0};
    assert_int_equal(store_scan(b, "", 0, NULL, 0, 1000, &l, &e), 0);
    assert_int_equal(l.n, 2);
    store_list_release(&l);
    /* writes, cas and deletes stay in their tenant */
    assert_int_equal(store_cas(b, "user/1", 6, 0, "b", 1, 0, NULL, &e), 0);
    assert_int_equal(store_del(b, "user/2", 6, 0, &e), -E_NOTFOUND);
    assert_int_equal(store_del(b, "user/1", 6, 0, &e), 0);
    check_value(a, "user/1", "tenant-a");
    check_value(a, "user/2", "tenant-a");
    store_close(a);
    store_close(b);
}

static void test_token_refused(void **state)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/wrong-token", env("KODER_TEST_KDB_DIR"));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not-the-token\n", f);
    fclose(f);
    struct store *s = open_ok(OPTS(.token_file = path));
    struct err e = {0};
    assert_int_equal(store_ping(s, &e), -E_PERMISSION);
    assert_non_null(strstr(e.msg, "token"));
    assert_null(strstr(e.msg, "not-the-token"));
    assert_int_equal(get_rc(s, "x", &e), -E_PERMISSION);
    assert_int_equal(store_put(s, "x", 1, "v", 1, 0, NULL, &e), -E_PERMISSION);
    store_close(s);
    unlink(path);
}

/* ---- faults ------------------------------------------------------------------------------- */

static void test_unavailable_bursts(void **state)
{
    struct store *s = open_ok(OPTS());
    struct err e = {0};
    uint64_t v = put_str(s, "u/1", "v");
    /* reads and puts are retried through a short burst */
    ctl("\"unavailable_next\": 2, \"reset_stats\": true");
    check_value(s, "u/1", "v");
    ctl("\"unavailable_next\": 2");
    v = put_str(s, "u/1", "w");
    /* a compare-and-swap that reached the server is never retried */
    ctl("\"unavailable_next\": 1");
    assert_int_equal(store_cas(s, "u/1", 3, v, "x", 1, 0, NULL, &e), -E_UNAVAILABLE);
    assert_int_equal(store_cas(s, "u/1", 3, v, "x", 1, 0, NULL, &e), 0);
    ctl("\"unavailable_next\": 1");
    assert_int_equal(store_del(s, "u/1", 3, v + 1000, &e), -E_UNAVAILABLE);
    /* a long burst gives up quickly with -E_UNAVAILABLE */
    ctl("\"unavailable_next\": 50");
    int64_t t0 = mono_ms();
    assert_int_equal(get_rc(s, "u/1", &e), -E_UNAVAILABLE);
    assert_true(mono_ms() - t0 < 3000); /* the timeout is 3000: it did not wait it out */
    ctl("\"unavailable_next\": 0, \"stats\": true");
    assert_int_equal(stat_value("unavailable_sent"), 2 + 2 + 1 + 1 + 4);
    check_value(s, "u/1", "x");
    store_close(s);
}

static void test_server_down_fails_fast_and_recovers(void **state)
{
    struct store *s = open_ok(OPTS(.timeout_ms = 10000));
    struct err e = {0};
    put_str(s, "d/1", "v");
    ctl("\"down\": true");
    for (int i = 0; i < 5; i++) {
        int64_t t0 = mono_ms();
        int r = get_rc(s, "d/1", &e);
        int64_t took = mono_ms() - t0;
        assert_int_equal(r, -E_UNAVAILABLE);
        if (took > 3000)
            fail_msg("a call with the server down took %lld ms (timeout 10000)", (long long)took);
        assert_int_equal(store_cas(s, "d/2", 3, 0, "v", 1, 0, NULL, &e), -E_UNAVAILABLE);
    }
    assert_int_equal(store_ping(s, &e), -E_UNAVAILABLE);
    ctl("\"down\": false");
    int64_t t0 = mono_ms();
    int r;
    while ((r = get_rc(s, "d/1", &e)) == -E_UNAVAILABLE && mono_ms() - t0 < 5000)
        sleep_ms(20);
    if (r != 0)
        fail_msg("no recovery after the server came back: %s", e.msg);
    check_value(s, "d/1", "v");
    assert_int_equal(store_ping(s, &e), 0);
    store_close(s);
}

/* A reply past the 4 MiB message limit is refused, and the connection stays usable. */
static void test_oversize_reply_refused(void **state)
{
    struct store *s = open_ok(OPTS());
    struct err e = {0};
    put_str(s, "big/1", "v");
    ctl("\"oversize_get\": true, \"reset_stats\": true");
    assert_int_equal(get_rc(s, "big/1", &e), -E_IO);
    assert_non_null(strstr(e.msg, "4 MiB"));
    ctl("\"oversize_get\": false");
    check_value(s, "big/1", "v");
    ctl("\"stats\": true");
    assert_int_equal(stat_value("connections"), 1);
    store_close(s);
}

static void test_deadline(void **state)
{
    struct store *s = open_ok(OPTS(.timeout_ms = 300));
    struct err e = {0};
    put_str(s, "t/1", "v");
    /* the server answers late: DEADLINE_EXCEEDED (from grpc-timeout or our own clock) */
    ctl("\"stall_ms\": 8000");
    int64_t t0 = mono_ms();
    assert_int_equal(get_rc(s, "t/1", &e), -E_DEADLINE);
    int64_t took = mono_ms() - t0;
    assert_true(took >= 250 && took < 4000);
    ctl("\"stall_ms\": 0");
    check_value(s, "t/1", "v");
    /* the server process stops answering altogether: our own deadline fires */
    pid_t pid = (pid_t)atol(env("KODER_TEST_KDB_PID"));
    assert_int_equal(kill(pid, SIGSTOP), 0);
    t0 = mono_ms();
    int r = get_rc(s, "t/1", &e);
    took = mono_ms() - t0;
    kill(pid, SIGCONT);
    assert_int_equal(r, -E_DEADLINE);
    assert_true(took >= 250 && took < 4000); /* a stopped server never answers */
    check_value(s, "t/1", "v");
    store_close(s);
}

struct load {
    struct store *s;
    int id;
    int n;
    volatile int *stop;
    /* results */
    int acked, failed;
    char (*keys)[32];
    uint64_t *versions;
};

static void *writer(void *arg)
{
    struct load *l = arg;
    for (int i = 0; i < l->n && !*l->stop; i++) {
        char k[32];
        snprintf(k, sizeof k, "w/%02d/%05d", l->id, i);
        struct err e = {0};
        uint64_t ver = 0;
        /* alternate unconditional puts and create-only compare-and-swaps */
        int r = (i & 1) ? store_put(l->s, k, strlen(k), k, strlen(k), 0, &ver, &e)
                        : store_cas(l->s, k, strlen(k), 0, k, strlen(k), 0, &ver, &e);
        if (r == 0) {
            memcpy(l->keys[l->acked], k, sizeof k);
            l->versions[l->acked++] = ver;
        } else {
            l->failed++;
        }
    }
    return NULL;
}

static void test_drop_mid_load_loses_no_acked_write(void **state)
{
    enum { THREADS = 16, PER = 20000 };
    struct store *s = open_ok(OPTS(.timeout_ms = 3000));
    ctl("\"write_latency_ms\": 2");
    volatile int stop = 0;
    struct load loads[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        loads[i] = (struct load){.s = s, .id = i, .n = PER, .stop = &stop};
        loads[i].keys = calloc(PER, sizeof *loads[i].keys);
        loads[i].versions = calloc(PER, sizeof *loads[i].versions);
        pthread_create(&th[i], NULL, writer, &loads[i]);
    }
    int acked_before = 0;
    for (int d = 0; d < 6; d++) {
        sleep_ms(250);
        ctl("\"drop\": true");
    }
    sleep_ms(400);
    for (int i = 0; i < THREADS; i++)
        acked_before += loads[i].acked;
    stop = 1;
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    ctl("\"write_latency_ms\": 0");
    int acked = 0, failed = 0;
    struct err e = {0};
    for (int i = 0; i < THREADS; i++) {
        for (int j = 0; j < loads[i].acked; j++) {
            const char *k = loads[i].keys[j];
            struct store_value v = {0};
            int r = store_get(s, k, strlen(k), &v, &e);
            if (r != 0)
                fail_msg("acknowledged write '%s' lost: %s", k, e.msg);
            assert_int_equal(v.len, strlen(k));
            assert_memory_equal(v.data, k, v.len);
            /* nothing wrote it after us */
            assert_int_equal(v.version, loads[i].versions[j]);
            store_value_release(&v);
        }
        acked += loads[i].acked;
        failed += loads[i].failed;
        free(loads[i].keys);
        free(loads[i].versions);
    }
    print_message("# drop under load: %d writes acknowledged (all read back), %d failed\n", acked,
                  failed);
    /* the load kept going across the drops */
    assert_true(acked_before > 50);
    store_close(s);
}

struct reader {
    struct store *s;
    int n;
    int ok;
};

static void *reader_fn(void *arg)
{
    struct reader *r = arg;
    for (int i = 0; i < r->n; i++) {
        char k[16];
        snprintf(k, sizeof k, "m/%d", i % 8);
        struct store_value v = {0};
        struct err e = {0};
        if (store_get(r->s, k, strlen(k), &v, &e) == 0 && v.len == strlen(k) &&
            memcmp(v.data, k, v.len) == 0)
            r->ok++;
        store_value_release(&v);
    }
    return NULL;
}

/* 64 threads, each call taking 50 ms at the server: only multiplexing makes this fast. */
static void run_many_threads(int PER, long expect_max_inflight_at_least,
                             long expect_max_inflight_at_most)
{
    enum { THREADS = 64 };
    struct store *s = open_ok(OPTS(.timeout_ms = 10000));
    for (int i = 0; i < 8; i++) {
        char k[16];
        snprintf(k, sizeof k, "m/%d", i);
        put_str(s, k, k);
    }
    ctl("\"read_latency_ms\": 50, \"reset_stats\": true");
    struct reader rd[THREADS];
    pthread_t th[THREADS];
    int64_t t0 = mono_ms();
    for (int i = 0; i < THREADS; i++) {
        rd[i] = (struct reader){.s = s, .n = PER};
        pthread_create(&th[i], NULL, reader_fn, &rd[i]);
    }
    int ok = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ok += rd[i].ok;
    }
    int64_t took = mono_ms() - t0;
    ctl("\"read_latency_ms\": 0, \"stats\": true");
    long conns = stat_value("connections"), inflight = stat_value("max_inflight");
    print_message("# %d gets of 50 ms from %d threads: %lld ms, %ld connection(s), "
                  "max %ld in flight\n",
                  THREADS * PER, THREADS, (long long)took, conns, inflight);
    assert_int_equal(ok, THREADS * PER);
    assert_int_equal(conns, 1);
    assert_true(inflight >= expect_max_inflight_at_least);
    assert_true(inflight <= expect_max_inflight_at_most);
    /* one at a time would take THREADS * PER * 50 ms (32 s for 640 calls) */
    assert_true(took < (int64_t)THREADS * PER * 50 / expect_max_inflight_at_least * 2 + 3000);
    store_close(s);
}

static void test_many_threads_one_connection(void **state)
{
    run_many_threads(10, 16, 64);
}

static void test_max_concurrent_streams_respected(void **state)
{
    /* server.py --max-concurrent-streams 4: never more than 4 at once, none refused */
    run_many_threads(2, 3, 4);
}

/* ---- TLS ---------------------------------------------------------------------------------- */

static void test_tls_ok(void **state)
{
    struct store *s = open_ok(OPTS());
    struct err e = {0};
    assert_int_equal(store_ping(s, &e), 0);
    put_str(s, "tls/1", "v");
    check_value(s, "tls/1", "v");
    store_close(s);
}

static void test_tls_hostname_mismatch(void **state)
{
    /* the certificate names DNS:localhost only: 127.0.0.1 must not verify */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%s", env("KODER_TEST_KDB_PORT"));
    struct store *s = open_ok(OPTS(.address = addr));
    struct err e = {0};
    assert_int_equal(get_rc(s, "x", &e), -E_UNAVAILABLE);
    assert_non_null(strstr(e.msg, "certificate verification failed"));
    assert_int_equal(store_ping(s, &e), -E_UNAVAILABLE);
    store_close(s);
}

static void test_tls_wrong_ca(void **state)
{
    struct store *s = open_ok(OPTS(.ca = env("KODER_TEST_KDB_OTHER_CA")));
    struct err e = {0};
    assert_int_equal(get_rc(s, "x", &e), -E_UNAVAILABLE);
    assert_non_null(strstr(e.msg, "certificate verification failed"));
    store_close(s);
}

static void test_tls_server_refuses_cleartext(void **state)
{
    struct store *s = open_ok(OPTS(.plaintext = 1, .timeout_ms = 1000));
    struct err e = {0};
    int r = get_rc(s, "x", &e);
    assert_true(r == -E_UNAVAILABLE || r == -E_IO || r == -E_DEADLINE);
    store_close(s);
}

static void test_mtls_needs_client_cert(void **state)
{
    struct store *s = open_ok(OPTS());
    struct err e = {0};
    assert_int_equal(store_ping(s, &e), 0);
    store_close(s);
    /* without a client certificate the server ends the handshake */
    struct store_config cfg = {
        .backend = "kdbnext",
        .tenant = next_tenant(),
        .kdb_address = env("KODER_TEST_KDB_ADDRESS"),
        .kdb_tls_ca_file = env("KODER_TEST_KDB_CA"),
        .kdb_token_file = env("KODER_TEST_KDB_TOKEN_FILE"),
        .kdb_timeout_ms = 2000,
    };
    s = NULL;
    assert_int_equal(store_open(&cfg, &s, &e), 0);
    assert_int_equal(store_ping(s, &e), -E_UNAVAILABLE);
    store_close(s);
    /* a key without its certificate is a configuration error */
    cfg.kdb_tls_key_file = env("KODER_TEST_KDB_KEY");
    assert_int_equal(store_open(&cfg, &s, &e), -E_CONFIG);
}

int main(int argc, char **argv)
{
    const char *group = argc > 1 ? argv[1] : "plain";
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(test_open_refuses_bad_config),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_scan_pages),
        cmocka_unit_test(test_tenant_isolation),
        cmocka_unit_test(test_token_refused),
        cmocka_unit_test(test_unavailable_bursts),
        cmocka_unit_test(test_server_down_fails_fast_and_recovers),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_oversize_reply_refused),
        cmocka_unit_test(test_drop_mid_load_loses_no_acked_write),
        cmocka_unit_test(test_many_threads_one_connection),
    };
    const struct CMUnitTest streams[] = {
        cmocka_unit_test(test_max_concurrent_streams_respected),
    };
    const struct CMUnitTest tls[] = {
        cmocka_unit_test(test_tls_ok),
        cmocka_unit_test(test_tls_hostname_mismatch),
        cmocka_unit_test(test_tls_wrong_ca),
        cmocka_unit_test(test_tls_server_refuses_cleartext),
        cmocka_unit_test(test_many_threads_one_connection),
    };
    const struct CMUnitTest mtls[] = {
        cmocka_unit_test(test_mtls_needs_client_cert),
    };
    if (!env("KODER_TEST_KDB_ADDRESS")) {
        fprintf(stderr, "run me through tests/kdbnext/run.sh\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    cmocka_set_message_output(CM_OUTPUT_TAP);
    if (strcmp(group, "plain") == 0)
        return cmocka_run_group_tests_name("kdbnext-plain", plain, NULL, NULL);
    if (strcmp(group, "streams") == 0)
        return cmocka_run_group_tests_name("kdbnext-streams", streams, NULL, NULL);
    if (strcmp(group, "tls") == 0)
        return cmocka_run_group_tests_name("kdbnext-tls", tls, NULL, NULL);
    if (strcmp(group, "mtls") == 0)
        return cmocka_run_group_tests_name("kdbnext-mtls", mtls, NULL, NULL);
    fprintf(stderr, "unknown group '%s'\n", group);
    return 1;
}
