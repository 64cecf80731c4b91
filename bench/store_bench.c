/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_bench: drives a store backend from many threads with the call sequences of the
 * storage-bound endpoints, and prints throughput, latency percentiles and CPU per operation.
 *
 *   code     a code exchange: get code, cas it consumed, put refresh token, put family
 *   refresh  a refresh: get token, cas it spent, get family, cas family, put new token
 *   get      one get;  put  one put;  cas  one create-only cas
 *
 * usage: store_bench [--backend lmdb|kdbnext] [--mix code] [--threads 64] [--seconds 10]
 *                    [--data-dir DIR]
 * kdbnext is configured from KODER_TEST_KDB_* (tests/kdbnext/run.sh exports them); with
 * KODER_TEST_KDB_PID set, the server process's CPU time is reported too. One line of JSON on
 * stdout; for lmdb it ends with the group-commit counters over the whole run, setup writes
 * included (ops_per_commit: write operations per synced transaction).
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "storage/store.h"
#include "storage/store_lmdb.h"

struct worker {
    struct store *s;
    int id;
    const char *mix;
    volatile int *stop;
    double *lat_ms; /* one per completed operation */
    size_t n, cap;
    size_t errors;
    char first_error[192];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char value[] = "a record of about the size of a serialized code or refresh token: "
                            "client id, user id, scopes, nonce, auth time, expiry ...........";

#define TRY(call)                                                                                  \
    do {                                                                                           \
        int r_ = (call);                                                                           \
        if (r_ < 0)                                                                                \
            return r_;                                                                             \
    } while (0)

static int op_code(struct worker *w, unsigned long i, struct err *e)
{
    char code[64], rt[64], fam[64];
    snprintf(code, sizeof code, "code/%d-%lu", w->id, i);
    snprintf(rt, sizeof rt, "rt/%d-%lu", w->id, i);
    snprintf(fam, sizeof fam, "rtfam/%d-%lu", w->id, i);
    struct store_value v = {0};
    TRY(store_get(w->s, code, strlen(code), &v, e));
    uint64_t ver = v.version;
    store_value_release(&v);
    TRY(store_cas(w->s, code, strlen(code), ver, "used", 4, 60000, NULL, e));
    TRY(store_put(w->s, rt, strlen(rt), value, sizeof value, 3600000, NULL, e));
    TRY(store_put(w->s, fam, strlen(fam), value, sizeof value, 3600000, NULL, e));
    return 0;
}

static int op_refresh(struct worker *w, unsigned long i, struct err *e)
{
    char rt[64], fam[64], nrt[64];
    snprintf(rt, sizeof rt, "rt/%d-%lu", w->id, i);
    snprintf(fam, sizeof fam, "rtfam/%d-%lu", w->id, i);
    snprintf(nrt, sizeof nrt, "rt/%d-%lu-next", w->id, i);
    struct store_value v = {0};
    TRY(store_get(w->s, rt, strlen(rt), &v, e));
    uint64_t ver = v.version;
    store_value_release(&v);
    TRY(store_cas(w->s, rt, strlen(rt), ver, "spent", 5, 3600000, NULL, e));
    TRY(store_get(w->s, fam, strlen(fam), &v, e));
    ver = v.version;
    store_value_release(&v);
    TRY(store_cas(w->s, fam, strlen(fam), ver, value, sizeof value, 3600000, NULL, e));
    TRY(store_put(w->s, nrt, strlen(nrt), value, sizeof value, 3600000, NULL, e));
    return 0;
}

/* What the authorize / previous step wrote, outside the timed part. */
static int setup(struct worker *w, unsigned long i, struct err *e)
{
    char k[64];
    if (strcmp(w->mix, "code") == 0) {
        snprintf(k, sizeof k, "code/%d-%lu", w->id, i);
        return store_put(w->s, k, strlen(k), value, sizeof value, 60000, NULL, e);
    }
    if (strcmp(w->mix, "refresh") == 0) {
        snprintf(k, sizeof k, "rt/%d-%lu", w->id, i);
        TRY(store_put(w->s, k, strlen(k), value, sizeof value, 3600000, NULL, e));
        snprintf(k, sizeof k, "rtfam/%d-%lu", w->id, i);
        return store_put(w->s, k, strlen(k), value, sizeof value, 3600000, NULL, e);
    }
    if (strcmp(w->mix, "get") == 0 && i < 64) {
        snprintf(k, sizeof k, "get/%d-%lu", w->id, i);
        return store_put(w->s, k, strlen(k), value, sizeof value, 0, NULL, e);
    }
    return 0;
}

static int run_op(struct worker *w, unsigned long i, struct err *e)
{
    char k[64];
    if (strcmp(w->mix, "code") == 0)
        return op_code(w, i, e);
    if (strcmp(w->mix, "refresh") == 0)
        return op_refresh(w, i, e);
    if (strcmp(w->mix, "get") == 0) {
        struct store_value v = {0};
        snprintf(k, sizeof k, "get/%d-%lu", w->id, i % 64);
        int r = store_get(w->s, k, strlen(k), &v, e);
        store_value_release(&v);
        return r;
    }
    snprintf(k, sizeof k, "%s/%d-%lu", w->mix, w->id, i);
    if (strcmp(w->mix, "put") == 0)
        return store_put(w->s, k, strlen(k), value, sizeof value, 60000, NULL, e);
    return store_cas(w->s, k, strlen(k), 0, value, sizeof value, 60000, NULL, e);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (unsigned long i = 0; !*w->stop; i++) {
        struct err e = {0};
        if (setup(w, i, &e) < 0) {
            w->errors++;
            if (!w->first_error[0])
                snprintf(w->first_error, sizeof w->first_error, "setup: %.170s", e.msg);
            continue;
        }
        double t0 = now_s();
        int r = run_op(w, i, &e);
        double ms = (now_s() - t0) * 1000;
        if (*w->stop)
            break; /* finished after the window closed: not counted */
        if (r < 0) {
            w->errors++;
            if (!w->first_error[0])
                snprintf(w->first_error, sizeof w->first_error, "%s", e.msg);
            continue;
        }
        if (w->n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 4096;
            w->lat_ms = realloc(w->lat_ms, w->cap * sizeof *w->lat_ms);
            if (!w->lat_ms)
                abort();
        }
        w->lat_ms[w->n++] = ms;
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double cpu_self_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of another process, from /proc/PID/stat; -1 when unknown. */
static double cpu_pid_s(const char *pid)
{
    if (!pid)
        return -1;
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%s/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long ut = 0, st = 0;
    /* fields after the command: state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static const char *env(const char *n)
{
    const char *v = getenv(n);
    return v && *v ? v : NULL;
}

int main(int argc, char **argv)
{
    const char *backend = "lmdb", *mix = "code", *data_dir = NULL;
    int threads = 64;
    double seconds = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "store_bench: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--backend") == 0)
            backend = v;
        else if (strcmp(a, "--mix") == 0)
            mix = v;
        else if (strcmp(a, "--threads") == 0)
            threads = atoi(v);
        else if (strcmp(a, "--seconds") == 0)
            seconds = atof(v);
        else if (strcmp(a, "--data-dir") == 0)
            data_dir = v;
        else {
            fprintf(stderr, "usage: store_bench [--backend lmdb|kdbnext] [--mix "
                            "code|refresh|get|put|cas] [--threads N] [--seconds S] "
                            "[--data-dir DIR]\n");
            return 2;
        }
        i++;
    }
    if (threads < 1 || threads > 1024 || seconds <= 0)
        return 2;
    char tmpl[] = "/tmp/store-bench.XXXXXX";
    struct store_config cfg = {.backend = backend};
    if (strcmp(backend, "lmdb") == 0) {
        if (!data_dir && !(data_dir = mkdtemp(tmpl))) {
            perror("mkdtemp");
            return 1;
        }
        cfg.data_dir = data_dir;
        cfg.lmdb_map_size = (size_t)4 << 30;
        cfg.tenant = 1;
    } else {
        const char *t = env("KODER_TEST_KDB_TENANT");
        cfg.tenant = (t ? strtoull(t, NULL, 10) : 1000001) + 500;
        cfg.kdb_address = env("KODER_TEST_KDB_ADDRESS");
        cfg.kdb_token_file = env("KODER_TEST_KDB_TOKEN_FILE");
        cfg.kdb_tls_ca_file = env("KODER_TEST_KDB_CA");
        cfg.kdb_plaintext = env("KODER_TEST_KDB_PLAINTEXT") &&
                            strcmp(env("KODER_TEST_KDB_PLAINTEXT"), "1") == 0;
        cfg.kdb_timeout_ms = 5000;
    }
    struct store *s = NULL;
    struct err e = {0};
    if (store_open(&cfg, &s, &e) < 0) {
        fprintf(stderr, "store_bench: %s\n", e.msg);
        return 1;
    }
    if (store_ping(s, &e) < 0) {
        fprintf(stderr, "store_bench: %s\n", e.msg);
        return 1;
    }

    volatile int stop = 0;
    struct worker *w = calloc((size_t)threads, sizeof *w);
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    const char *server_pid = env("KODER_TEST_KDB_PID");
    double c0 = cpu_self_s(), s0 = cpu_pid_s(server_pid), t0 = now_s();
    for (int i = 0; i < threads; i++) {
        w[i] = (struct worker){.s = s, .id = i, .mix = mix, .stop = &stop};
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    struct timespec ts = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
    stop = 1;
    double elapsed = now_s() - t0, c1 = cpu_self_s(), s1 = cpu_pid_s(server_pid);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);

    size_t total = 0, errors = 0;
    const char *first_error = "";
    for (int i = 0; i < threads; i++) {
        total += w[i].n;
        errors += w[i].errors;
        if (!*first_error && w[i].first_error[0])
            first_error = w[i].first_error;
    }
    double *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < threads; i++) {
        memcpy(all + k, w[i].lat_ms, w[i].n * sizeof *all);
        k += w[i].n;
    }
    qsort(all, total, sizeof *all, cmp_double);
    double p50 = total ? all[total / 2] : 0, p99 = total ? all[(size_t)(total * 0.99)] : 0;
    /* CPU is measured over the whole window, setup writes included: per timed operation */
    printf("{\"backend\": \"%s\", \"mix\": \"%s\", \"threads\": %d, \"seconds\": %.2f, "
           "\"ops\": %zu, \"errors\": %zu, \"ops_per_s\": %.1f, \"p50_ms\": %.2f, "
           "\"p99_ms\": %.2f, \"client_cpu_ms_per_op\": %.3f, \"server_cpu_ms_per_op\": %.3f",
           backend, mix, threads, elapsed, total, errors, total / elapsed, p50, p99,
           total ? (c1 - c0) * 1000 / total : 0,
           (s0 >= 0 && total) ? (s1 - s0) * 1000 / total : -1.0);
    struct store_lmdb_stats gs;
    if (store_lmdb_stats(s, &gs, &e) == 0)
        printf(", \"commits\": %" PRIu64 ", \"ops_per_commit\": %.1f, \"max_batch\": %" PRIu64
               ", \"fallbacks\": %" PRIu64,
               gs.batches, gs.batches ? (double)gs.ops / (double)gs.batches : 0.0, gs.max_batch,
               gs.fallbacks);
    if (*first_error)
        printf(", \"first_error\": \"%s\"", first_error);
    printf("}\n");
    for (int i = 0; i < threads; i++)
        free(w[i].lat_ms);
    free(all);
    free(w);
    free(th);
    store_close(s);
    if (data_dir == tmpl)
        nftw(tmpl, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    return errors && !total ? 1 : 0;
}
