/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Group commit in the LMDB backend (storage/lmdb.c): many threads writing at once get exactly
 * the answers they would get one at a time, one failing operation fails nobody else in its
 * batch, and nothing is acknowledged before it is committed. (Several processes with several
 * threads each on one file: test_store.c's test_multi_process.)
 *
 * To put chosen operations in one batch without timing, a child process holds LMDB's writer
 * lock (a write transaction on the same file) while the threads queue; the test waits until
 * store_lmdb_stats() counts them all as waiting, then lets the child go: the leader, blocked
 * until then, takes the whole queue as one batch.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>

#include "storage/store.h"
#include "storage/store_lmdb.h"

static char tmpbase[256];
static int dir_seq;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int group_setup(void **state)
{
    (void)state;
    /* On disk, not /dev/shm: the durability case is about what fsync made permanent. */
    snprintf(tmpbase, sizeof tmpbase, "/tmp/koder-lmdb-group-XXXXXX");
    return mkdtemp(tmpbase) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    nftw(tmpbase, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static struct store *open_new(char *dir, size_t n, size_t map_size)
{
    snprintf(dir, n, "%s/d%d", tmpbase, ++dir_seq);
    struct store_config cfg = {.backend = "lmdb", .data_dir = dir, .lmdb_map_size = map_size};
    struct store *s = NULL;
    struct err e = {0};
    int r = store_open(&cfg, &s, &e);
    if (r < 0)
        fprintf(stderr, "# store_open: %s\n", e.msg);
    assert_int_equal(r, 0);
    return s;
}

static struct store_lmdb_stats stats(struct store *s)
{
    struct store_lmdb_stats st = {0};
    struct err e = {0};
    assert_int_equal(store_lmdb_stats(s, &st, &e), 0);
    return st;
}

/* ---- many threads on one key: exactly one cas wins each version ---- */

enum { CAS_THREADS = 8, CAS_ROUNDS = 60 };

struct cas_race {
    struct store *s;
    pthread_barrier_t bar;
    int result[CAS_ROUNDS][CAS_THREADS];
    uint64_t seen[CAS_ROUNDS][CAS_THREADS]; /* the version each thread compared against */
    uint64_t got[CAS_ROUNDS][CAS_THREADS];  /* the version a winner wrote */
};

struct cas_arg {
    struct cas_race *race;
    int id;
};

static void *cas_thread(void *p)
{
    struct cas_arg *a = p;
    struct cas_race *race = a->race;
    for (int r = 0; r < CAS_ROUNDS; r++) {
        struct store_value v = {0};
        struct err e = {0};
        pthread_barrier_wait(&race->bar);
        /* Nobody writes between the two barriers: every thread sees the same version. */
        uint64_t ver = 0;
        if (store_get(race->s, "one", 3, &v, &e) == 0) {
            ver = v.version;
            store_value_release(&v);
        }
        race->seen[r][a->id] = ver;
        pthread_barrier_wait(&race->bar);
        char val[32];
        snprintf(val, sizeof val, "%d/%d", r, a->id);
        race->result[r][a->id] =
            store_cas(race->s, "one", 3, ver, val, strlen(val), 0, &race->got[r][a->id], &e);
    }
    return NULL;
}

static void test_cas_one_winner_per_version(void **state)
{
    (void)state;
    char dir[512];
    struct store *s = open_new(dir, sizeof dir, 0);
    static struct cas_race race;
    memset(&race, 0, sizeof race);
    race.s = s;
    assert_int_equal(pthread_barrier_init(&race.bar, NULL, CAS_THREADS), 0);
    pthread_t th[CAS_THREADS];
    struct cas_arg args[CAS_THREADS];
    for (int i = 0; i < CAS_THREADS; i++) {
        args[i] = (struct cas_arg){&race, i};
        assert_int_equal(pthread_create(&th[i], NULL, cas_thread, &args[i]), 0);
    }
    for (int i = 0; i < CAS_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&race.bar);

    uint64_t prev = 0;
    int last_winner = -1;
    for (int r = 0; r < CAS_ROUNDS; r++) {
        int winners = 0;
        for (int t = 0; t < CAS_THREADS; t++) {
            assert_int_equal(race.seen[r][t], prev);
            if (race.result[r][t] == 0) {
                winners++;
                last_winner = t;
                assert_true(race.got[r][t] > prev);
            } else {
                assert_int_equal(race.result[r][t], -E_CONFLICT);
            }
        }
        assert_int_equal(winners, 1);
        prev = race.got[r][last_winner];
    }
    struct store_value v = {0};
    struct err e = {0};
    assert_int_equal(store_get(s, "one", 3, &v, &e), 0);
    char want[32];
    snprintf(want, sizeof want, "%d/%d", CAS_ROUNDS - 1, last_winner);
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.data, want, v.len);
    assert_int_equal(v.version, prev);
    store_value_release(&v);
    assert_int_equal(stats(s).fallbacks, 0);
    store_close(s);
}

/* ---- many threads, many keys: every put lands with its own version ---- */

enum { PUT_THREADS = 8, PUT_KEYS = 150 };

struct put_arg {
    struct store *s;
    int id;
    int result[PUT_KEYS];
    uint64_t version[PUT_KEYS];
};

static void *put_thread(void *p)
{
    struct put_arg *a = p;
    for (int i = 0; i < PUT_KEYS; i++) {
        char k[32];
        struct err e = {0};
        snprintf(k, sizeof k, "p/%d/%d", a->id, i);
        /* the key is its own value */
        a->result[i] = store_put(a->s, k, strlen(k), k, strlen(k), 0, &a->version[i], &e);
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_puts_many_keys(void **state)
{
    (void)state;
    char dir[512];
    struct store *s = open_new(dir, sizeof dir, 0);
    struct store_lmdb_stats before = stats(s);
    static struct put_arg args[PUT_THREADS];
    pthread_t th[PUT_THREADS];
    for (int i = 0; i < PUT_THREADS; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].s = s;
        args[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, put_thread, &args[i]), 0);
    }
    for (int i = 0; i < PUT_THREADS; i++)
        pthread_join(th[i], NULL);

    static uint64_t all[PUT_THREADS * PUT_KEYS];
    size_t n = 0;
    for (int t = 0; t < PUT_THREADS; t++)
        for (int i = 0; i < PUT_KEYS; i++) {
            assert_int_equal(args[t].result[i], 0);
            char k[32];
            struct store_value v = {0};
            struct err e = {0};
            snprintf(k, sizeof k, "p/%d/%d", t, i);
            assert_int_equal(store_get(s, k, strlen(k), &v, &e), 0);
            assert_int_equal(v.len, strlen(k));
            assert_memory_equal(v.data, k, v.len);
            assert_int_equal(v.version, args[t].version[i]);
            store_value_release(&v);
            all[n++] = args[t].version[i];
        }
    qsort(all, n, sizeof *all, cmp_u64);
    for (size_t i = 1; i < n; i++)
        assert_true(all[i] > all[i - 1]); /* one version each, never shared */

    /* Every put went through a committed batch, none through the fallback. */
    struct store_lmdb_stats after = stats(s);
    assert_int_equal(after.ops - before.ops, PUT_THREADS * PUT_KEYS);
    assert_int_equal(after.fallbacks, before.fallbacks);
    assert_true(after.batches - before.batches <= PUT_THREADS * PUT_KEYS);
    assert_int_equal(after.waiting, 0);
    store_close(s);
}

/* ---- chosen operations in one batch ---- */

/* A child process that holds LMDB's writer lock on @dir until told to let go. */
struct holder {
    pid_t pid;
    int go_fd; /* write a byte: the child aborts its transaction and exits */
};

static void holder_start(struct holder *h, const char *dir, size_t map_size)
{
    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    h->pid = fork();
    assert_true(h->pid >= 0);
    if (h->pid == 0) {
        /* Never touches the parent's environment: its own one on the same file. */
        close(ready[0]);
        close(go[1]);
        MDB_env *env = NULL;
        MDB_txn *txn = NULL;
        char c = 'L';
        if (mdb_env_create(&env) || (map_size && mdb_env_set_mapsize(env, map_size)) ||
            mdb_env_set_maxdbs(env, 64) || mdb_env_open(env, dir, MDB_NOTLS, 0600) ||
            mdb_txn_begin(env, NULL, 0, &txn) || write(ready[1], &c, 1) != 1)
            _exit(1);
        ssize_t n = read(go[0], &c, 1);
        mdb_txn_abort(txn);
        mdb_env_close(env);
        _exit(n == 1 ? 0 : 2);
    }
    close(ready[1]);
    close(go[0]);
    char c = 0;
    assert_int_equal(read(ready[0], &c, 1), 1); /* the lock is held from here on */
    close(ready[0]);
    h->go_fd = go[1];
}

static void holder_release(struct holder *h)
{
    char c = 'G';
    assert_int_equal(write(h->go_fd, &c, 1), 1);
    close(h->go_fd);
    int status = 0;
    assert_int_equal(waitpid(h->pid, &status, 0), h->pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Polls (no timing decides anything) until @n operations wait in @s's queue. */
static void wait_queued(struct store *s, uint64_t n)
{
    for (long i = 0; stats(s).waiting < n; i++) {
        assert_true(i < 1200000); /* 2 minutes: something is stuck */
        usleep(100);
    }
    assert_int_equal(stats(s).waiting, n);
}

enum op_kind { OP_PUT, OP_CAS, OP_DEL };

struct op {
    struct store *s;
    enum op_kind kind;
    const char *key;
    const void *val;
    size_t vlen;
    uint64_t expected;
    int result;
    uint64_t version;
    struct err err;
};

static void *op_thread(void *p)
{
    struct op *o = p;
    size_t kl = strlen(o->key);
    if (o->kind == OP_PUT)
        o->result = store_put(o->s, o->key, kl, o->val, o->vlen, 0, &o->version, &o->err);
    else if (o->kind == OP_CAS)
        o->result =
            store_cas(o->s, o->key, kl, o->expected, o->val, o->vlen, 0, &o->version, &o->err);
    else
        o->result = store_del(o->s, o->key, kl, o->expected, &o->err);
    return NULL;
}

/* Runs @ops (one thread each) as one batch: queued behind a held writer lock, then let go. */
static void run_one_batch(struct store *s, const char *dir, size_t map_size, struct op *ops,
                          size_t n)
{
    struct holder h;
    holder_start(&h, dir, map_size);
    pthread_t th[16];
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++) {
        ops[i].s = s;
        assert_int_equal(pthread_create(&th[i], NULL, op_thread, &ops[i]), 0);
    }
    wait_queued(s, n);
    holder_release(&h);
    for (size_t i = 0; i < n; i++)
        pthread_join(th[i], NULL);
}

static uint64_t version_of(struct store *s, const char *key)
{
    struct store_value v = {0};
    struct err e = {0};
    if (store_get(s, key, strlen(key), &v, &e) < 0)
        return 0;
    uint64_t ver = v.version;
    store_value_release(&v);
    return ver;
}

/* Conflicts and not-found inside a batch fail only themselves; the batch commits once. */
static void test_batch_mixed_results(void **state)
{
    (void)state;
    char dir[512];
    struct err e = {0};
    struct store *s = open_new(dir, sizeof dir, 0);
    uint64_t v_pre = 0, v_old = 0;
    assert_int_equal(store_put(s, "pre", 3, "x", 1, 0, &v_pre, &e), 0);
    assert_int_equal(store_put(s, "old", 3, "x", 1, 0, &v_old, &e), 0);
    struct store_lmdb_stats before = stats(s);

    struct op ops[] = {
        {.kind = OP_PUT, .key = "a", .val = "1", .vlen = 1},
        {.kind = OP_PUT, .key = "b", .val = "2", .vlen = 1},
        {.kind = OP_CAS, .key = "c", .val = "3", .vlen = 1, .expected = 0},
        {.kind = OP_CAS, .key = "same", .val = "4", .vlen = 1, .expected = 0},
        {.kind = OP_CAS, .key = "same", .val = "5", .vlen = 1, .expected = 0},
        {.kind = OP_CAS, .key = "old", .val = "6", .vlen = 1, .expected = v_old + 1000},
        {.kind = OP_DEL, .key = "missing"},
        {.kind = OP_DEL, .key = "pre", .expected = v_pre},
    };
    size_t n = sizeof ops / sizeof ops[0];
    run_one_batch(s, dir, 0, ops, n);

    /* The answers one at a time would give. */
    assert_int_equal(ops[0].result, 0);
    assert_int_equal(ops[1].result, 0);
    assert_int_equal(ops[2].result, 0);
    assert_int_equal(ops[3].result + ops[4].result, -E_CONFLICT); /* one wins, one conflicts */
    assert_true(ops[3].result == 0 || ops[4].result == 0);
    assert_int_equal(ops[5].result, -E_CONFLICT);
    assert_string_equal(ops[5].err.msg, "version conflict");
    assert_int_equal(ops[6].result, -E_NOTFOUND);
    assert_int_equal(ops[7].result, 0);

    /* One transaction: the four writes took the next four versions, each its own. */
    uint64_t vs[4] = {ops[0].version, ops[1].version, ops[2].version,
                      ops[3].result == 0 ? ops[3].version : ops[4].version};
    qsort(vs, 4, sizeof *vs, cmp_u64);
    for (int i = 0; i < 4; i++)
        assert_int_equal(vs[i], v_old + 1 + i);
    assert_int_equal(version_of(s, "a"), ops[0].version);
    assert_int_equal(version_of(s, "c"), ops[2].version);
    assert_int_equal(version_of(s, "old"), v_old);
    assert_int_equal(version_of(s, "pre"), 0);
    struct store_value v = {0};
    assert_int_equal(store_get(s, "same", 4, &v, &e), 0);
    assert_memory_equal(v.data, ops[3].result == 0 ? "4" : "5", 1);
    store_value_release(&v);

    struct store_lmdb_stats after = stats(s);
    assert_int_equal(after.batches - before.batches, 1);
    assert_int_equal(after.ops - before.ops, n);
    assert_true(after.max_batch >= n);
    assert_int_equal(after.fallbacks, before.fallbacks);
    assert_int_equal(after.waiting, 0);
    store_close(s);
}

/* A write that does not fit the map fails alone; the others of its batch are written. */
static void test_batch_map_full_falls_back(void **state)
{
    (void)state;
    char dir[512];
    struct err e = {0};
    const size_t map = (size_t)1 << 20;
    struct store *s = open_new(dir, sizeof dir, map);
    static unsigned char big[500000];
    memset(big, 'x', sizeof big);
    assert_int_equal(store_put(s, "fill", 4, big, sizeof big, 0, NULL, &e), 0);
    struct store_lmdb_stats before = stats(s);

    struct op ops[] = {
        {.kind = OP_PUT, .key = "s1", .val = "1", .vlen = 1},
        {.kind = OP_PUT, .key = "big", .val = big, .vlen = sizeof big},
        {.kind = OP_CAS, .key = "s2", .val = "2", .vlen = 1, .expected = 0},
        {.kind = OP_PUT, .key = "s3", .val = "3", .vlen = 1},
    };
    size_t n = sizeof ops / sizeof ops[0];
    run_one_batch(s, dir, map, ops, n);

    assert_int_equal(ops[1].result, -E_IO);
    assert_string_equal(ops[1].err.msg, "store full: raise lmdb.map_size");
    assert_int_equal(version_of(s, "big"), 0);
    const char *small[] = {"s1", "s2", "s3"};
    for (int i = 0; i < 3; i++) {
        struct op *o = &ops[i == 0 ? 0 : i + 1];
        assert_int_equal(o->result, 0);
        assert_int_equal(version_of(s, small[i]), o->version);
    }
    struct store_lmdb_stats after = stats(s);
    assert_int_equal(after.fallbacks - before.fallbacks, 1);
    assert_int_equal(after.batches, before.batches); /* no whole batch committed */
    assert_int_equal(after.waiting, 0);
    store_close(s);
}

/* ---- durability: what was acknowledged survives a SIGKILL right after ---- */

enum { DUR_THREADS = 6, DUR_MAX = 20000, DUR_ACKS = 300 };

struct ack {
    uint32_t thread, i;
    uint64_t version;
};

struct dur_arg {
    struct store *s;
    int id;
    int fd;
};

static void *dur_thread(void *p)
{
    struct dur_arg *a = p;
    for (uint32_t i = 0; i < DUR_MAX; i++) {
        char k[32];
        struct err e = {0};
        struct ack ack = {(uint32_t)a->id, i, 0};
        snprintf(k, sizeof k, "d/%d/%u", a->id, i);
        if (store_put(a->s, k, strlen(k), k, strlen(k), 0, &ack.version, &e) < 0)
            _exit(3);
        /* Acknowledged: tell the parent (a pipe write this small is atomic). */
        if (write(a->fd, &ack, sizeof ack) != sizeof ack)
            _exit(4);
    }
    return NULL;
}

static void test_durability_sigkill(void **state)
{
    (void)state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/d%d", tmpbase, ++dir_seq);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        struct store_config cfg = {.backend = "lmdb", .data_dir = dir};
        struct store *s = NULL;
        struct err e = {0};
        if (store_open(&cfg, &s, &e) < 0)
            _exit(2);
        pthread_t th[DUR_THREADS];
        struct dur_arg args[DUR_THREADS];
        for (int i = 0; i < DUR_THREADS; i++) {
            args[i] = (struct dur_arg){s, i, fds[1]};
            pthread_create(&th[i], NULL, dur_thread, &args[i]);
        }
        for (int i = 0; i < DUR_THREADS; i++)
            pthread_join(th[i], NULL);
        _exit(0); /* finished before the kill: still a valid run */
    }
    close(fds[1]);
    static struct ack acks[DUR_THREADS * DUR_MAX];
    size_t n = 0;
    bool killed = false;
    for (;;) {
        ssize_t r = read(fds[0], &acks[n], sizeof acks[n]);
        if (r == 0)
            break; /* every write end is closed: the child is gone */
        if (r < 0 && errno == EINTR)
            continue;
        assert_int_equal(r, sizeof acks[n]);
        n++;
        if (n == DUR_ACKS && !killed) {
            assert_int_equal(kill(pid, SIGKILL), 0);
            killed = true;
        }
    }
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
    assert_true(n >= DUR_ACKS);

    struct store_config cfg = {.backend = "lmdb", .data_dir = dir};
    struct store *s = NULL;
    struct err e = {0};
    assert_int_equal(store_open(&cfg, &s, &e), 0);
    for (size_t i = 0; i < n; i++) {
        char k[32];
        struct store_value v = {0};
        snprintf(k, sizeof k, "d/%u/%u", acks[i].thread, acks[i].i);
        assert_int_equal(store_get(s, k, strlen(k), &v, &e), 0);
        assert_int_equal(v.version, acks[i].version);
        assert_int_equal(v.len, strlen(k));
        assert_memory_equal(v.data, k, v.len);
        store_value_release(&v);
    }
    /* The writer lock the killed child may have held is recovered: writes go on. */
    uint64_t ver = 0;
    assert_int_equal(store_put(s, "after", 5, "x", 1, 0, &ver, &e), 0);
    assert_true(ver > 0);
    store_close(s);
}

int main(void)
{
    cmocka_set_message_output(CM_OUTPUT_TAP);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cas_one_winner_per_version),
        cmocka_unit_test(test_puts_many_keys),
        cmocka_unit_test(test_batch_mixed_results),
        cmocka_unit_test(test_batch_map_full_falls_back),
        cmocka_unit_test(test_durability_sigkill),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
