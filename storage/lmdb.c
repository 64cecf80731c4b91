/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The embedded store: one LMDB environment (data_dir/data.mdb + lock.mdb), crash-safe, no
 * server.
 *
 * Layout inside the environment:
 *   named DB "meta"        "format" -> u64 BE 1; "version" -> u64 BE, the last version given out
 *   named DB "t/<tenant>"  one per tenant (decimal id): the tenant's keys, raw, sorted bytewise;
 *                          value = u64 BE version, i64 BE expires_at_ms (0 = never), then bytes
 * A tenant is a separate B-tree, not a key prefix: a cursor can never walk into another tenant,
 * and keys keep the whole STORE_KEY_MAX (LMDB's own key limit is 511 bytes, so an 8-byte prefix
 * would not fit). At most LMDB_MAX_TENANTS tenants share one file.
 *
 * Versions come from one counter for the whole file, incremented inside every write
 * transaction that writes a key (writers are serialized by LMDB), so they increase across all
 * keys and tenants and a deleted and re-created key never repeats one.
 *
 * LMDB allows one environment per file per process, while the conformance tests (and possibly
 * `check` inside `serve`) open several stores over the same folder: environments are shared
 * through a registry keyed by the folder's device and inode, with a reference count. Each
 * struct store is then a (environment, tenant DB, read-only flag) handle.
 *
 * Every commit is synced (no MDB_NOSYNC / MDB_NOMETASYNC): writes that take rights away (a
 * spent code, a revoked token) must be durable before the answer.
 *
 * Group commit. LMDB serializes writers and each synced commit costs an fsync, so N concurrent
 * writes one transaction each would wait for N fsyncs one after another. Instead every write
 * (put, cas, del, a purge batch, a restore chunk, clear) is queued per environment; the caller
 * at the head of the queue becomes the leader: it begins one write transaction, takes what is
 * queued by then (at most WRITE_BATCH_OPS operations or WRITE_BATCH_BYTES), applies each in
 * queue order with exactly its own semantics (a cas reads the version as of this transaction,
 * so of two cas on one key in a batch the second sees the first's version), commits once,
 * and only then wakes each caller with its own result. Nothing is answered before the commit
 * that holds it is durable. While a leader commits, new callers queue; the next head leads
 * the next batch with all of them. One operation's failure fails nobody else: -E_CONFLICT and
 * -E_NOTFOUND are decided before anything is written and stay in the batch; any other failure
 * (MDB_MAP_FULL, a damaged entry) or a failed commit aborts the batch, whose operations then
 * run again one synced transaction each, so each gets its own honest result.
 *
 * A leader among the callers rather than a committer thread: nothing to start, stop or
 * re-create after fork() (the CLI and the tests fork), no hand-off between threads for a lone
 * writer (it leads a batch of one at today's latency: begin, write, commit on its own thread),
 * and LMDB's writer lock, a mutex that the thread that took it must release, is taken and
 * released by the one leader thread. Other processes on the same file (the CLI while serve
 * runs) still take turns on LMDB's own writer lock; a leader waiting for it lets more queue.
 * Reads do not queue: they are lock-free MVCC read transactions as before.
 */
#include "store_lmdb.h"
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <lmdb.h>

#include "common/cleanup.h"

#define LMDB_DEFAULT_MAP_SIZE ((size_t)8 << 30) /* sparse: only used pages take disk */
#define LMDB_MAX_TENANTS 62
#define LMDB_MAX_READERS 1024
#define LMDB_HDR 16
#define LMDB_FORMAT 1
#define PURGE_BATCH 256
#define WRITE_BATCH_OPS 128
#define WRITE_BATCH_BYTES ((size_t)8 << 20)

struct write_op;

struct lmdb_tenant_db {
    uint64_t tenant;
    MDB_dbi dbi;
    bool exists; /* false only in a read-only environment where the tenant never wrote */
};

struct lmdb_env {
    struct lmdb_env *next;
    dev_t dev;
    ino_t ino;
    MDB_env *env;
    MDB_dbi meta;
    bool read_only;
    int refs;
    struct lmdb_tenant_db tenants[LMDB_MAX_TENANTS];
    size_t n_tenants;
    /* group commit: the queued writes; the head's caller leads the next batch */
    pthread_mutex_t wq_lock;
    struct write_op *wq_head, *wq_tail;
    struct store_lmdb_stats stats; /* under wq_lock */
};

struct lmdb_store {
    struct store base;
    struct lmdb_env *env;
    MDB_dbi dbi;
    bool exists;
    bool read_only;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lmdb_env *registry;

static inline struct lmdb_store *lm(struct store *s)
{
    return (struct lmdb_store *)s;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Maps an LMDB failure to our codes; @what names the operation. */
static int mdb_fail(struct err *e, int rc, const char *what)
{
    if (rc == MDB_MAP_FULL)
        return err_set(e, -E_IO, "store full: raise lmdb.map_size");
    if (rc == MDB_READERS_FULL)
        return err_set(e, -E_UNAVAILABLE, "lmdb %s: too many readers", what);
    if (rc == MDB_MAP_RESIZED)
        return err_set(e, -E_IO, "lmdb %s: map grown by another process; restart", what);
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID)
        return err_set(e, -E_INTERNAL, "lmdb %s: %s", what, mdb_strerror(rc));
    return err_set(e, -E_IO, "lmdb %s: %s", what, mdb_strerror(rc));
}

/* An entry's header: false when the value is too short to be one of ours. */
static bool decode(const MDB_val *v, uint64_t *ret_version, int64_t *ret_expires)
{
    if (v->mv_size < LMDB_HDR)
        return false;
    *ret_version = get_u64(v->mv_data);
    *ret_expires = (int64_t)get_u64((const unsigned char *)v->mv_data + 8);
    return true;
}

static bool expired(int64_t expires_at_ms, int64_t now)
{
    return expires_at_ms != 0 && expires_at_ms <= now;
}

/* ---- environment registry ---- */

static int mkdir_p(const char *path, struct err *e)
{
    char tmp[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof tmp)
        return err_set(e, -E_CONFIG, "data_dir path length %zu out of range", n);
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0')
            continue;
        char c = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
            return err_set(e, -E_IO, "data_dir '%.100s': mkdir: %s", tmp, strerror(errno));
        tmp[i] = c;
    }
    return 0;
}

static int env_open_dbs(struct lmdb_env *le, struct err *e)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(le->env, NULL, le->read_only ? MDB_RDONLY : 0, &txn);
    if (rc)
        return mdb_fail(e, rc, "begin");
    rc = mdb_dbi_open(txn, "meta", le->read_only ? 0 : MDB_CREATE, &le->meta);
    if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return err_set(e, -E_IO, "no store in data_dir (never written)");
    }
    if (rc) {
        mdb_txn_abort(txn);
        return mdb_fail(e, rc, "open meta");
    }
    unsigned char fmt[8];
    MDB_val k = {6, "format"}, v;
    rc = mdb_get(txn, le->meta, &k, &v);
    if (rc == MDB_NOTFOUND && !le->read_only) {
        put_u64(fmt, LMDB_FORMAT);
        v.mv_size = 8;
        v.mv_data = fmt;
        rc = mdb_put(txn, le->meta, &k, &v, 0);
    } else if (rc == 0 && (v.mv_size != 8 || get_u64(v.mv_data) != LMDB_FORMAT)) {
        mdb_txn_abort(txn);
        return err_set(e, -E_CONFIG, "store format is not %d: built for another version",
                       LMDB_FORMAT);
    } else if (rc == MDB_NOTFOUND) {
        rc = 0; /* read-only, format mark missing: nothing ever written */
    }
    if (rc) {
        mdb_txn_abort(txn);
        return mdb_fail(e, rc, "init meta");
    }
    rc = mdb_txn_commit(txn);
    return rc ? mdb_fail(e, rc, "commit") : 0;
}

static void env_destroy(struct lmdb_env *le)
{
    if (le->env)
        mdb_env_close(le->env);
    pthread_mutex_destroy(&le->wq_lock);
    free(le);
}

/* Called with registry_lock held. */
static int env_new(const struct store_config *cfg, const struct stat *st, struct lmdb_env **ret,
                   struct err *e)
{
    struct lmdb_env *le = calloc(1, sizeof *le);
    if (!le)
        return err_set(e, -E_NOMEM, "out of memory");
    pthread_mutex_init(&le->wq_lock, NULL);
    le->dev = st->st_dev;
    le->ino = st->st_ino;
    le->read_only = cfg->read_only;
    int rc = mdb_env_create(&le->env);
    if (rc) {
        le->env = NULL;
        env_destroy(le);
        return mdb_fail(e, rc, "env create");
    }
    size_t map = cfg->lmdb_map_size ? cfg->lmdb_map_size : LMDB_DEFAULT_MAP_SIZE;
    if ((rc = mdb_env_set_mapsize(le->env, map)) ||
        (rc = mdb_env_set_maxdbs(le->env, LMDB_MAX_TENANTS + 1)) ||
        (rc = mdb_env_set_maxreaders(le->env, LMDB_MAX_READERS))) {
        env_destroy(le);
        return mdb_fail(e, rc, "env setup");
    }
    unsigned flags = MDB_NOTLS | (cfg->read_only ? MDB_RDONLY : 0);
    rc = mdb_env_open(le->env, cfg->data_dir, flags, 0600);
    if (rc) {
        env_destroy(le);
        if (rc == ENOENT && cfg->read_only)
            return err_set(e, -E_IO, "no store in data_dir '%.100s'", cfg->data_dir);
        if (rc == EACCES || rc == EPERM)
            return err_set(e, -E_PERMISSION, "data_dir '%.100s': %s", cfg->data_dir,
                           mdb_strerror(rc));
        return err_set(e, -E_IO, "data_dir '%.100s': lmdb open: %s", cfg->data_dir,
                       mdb_strerror(rc));
    }
    int dead = 0;
    mdb_reader_check(le->env, &dead); /* free reader slots of crashed processes */
    int r = env_open_dbs(le, e);
    if (r < 0) {
        env_destroy(le);
        return r;
    }
    *ret = le;
    return 0;
}

/* The tenant's DB in @le, opened (and created when writable) once. registry_lock held. */
static int env_tenant(struct lmdb_env *le, uint64_t tenant, struct lmdb_tenant_db **ret,
                      struct err *e)
{
    for (size_t i = 0; i < le->n_tenants; i++)
        if (le->tenants[i].tenant == tenant) {
            *ret = &le->tenants[i];
            return 0;
        }
    if (le->n_tenants == LMDB_MAX_TENANTS)
        return err_set(e, -E_CONFIG, "too many tenants in one lmdb store (max %d)",
                       LMDB_MAX_TENANTS);
    char name[32];
    snprintf(name, sizeof name, "t/%" PRIu64, tenant);
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(le->env, NULL, le->read_only ? MDB_RDONLY : 0, &txn);
    if (rc)
        return mdb_fail(e, rc, "begin");
    struct lmdb_tenant_db *t = &le->tenants[le->n_tenants];
    t->tenant = tenant;
    rc = mdb_dbi_open(txn, name, le->read_only ? 0 : MDB_CREATE, &t->dbi);
    if (rc == MDB_NOTFOUND && le->read_only) {
        /* Never written: an empty tenant. Not remembered, so it is looked up again later. */
        mdb_txn_abort(txn);
        static struct lmdb_tenant_db empty;
        empty.tenant = tenant;
        empty.exists = false;
        *ret = &empty;
        return 0;
    }
    if (rc) {
        mdb_txn_abort(txn);
        return mdb_fail(e, rc, "open tenant db");
    }
    rc = mdb_txn_commit(txn);
    if (rc)
        return mdb_fail(e, rc, "commit");
    t->exists = true;
    le->n_tenants++;
    *ret = t;
    return 0;
}

static const struct store_ops lmdb_ops;

int store_lmdb_open(const struct store_config *cfg, struct store **ret, struct err *e)
{
    if (!cfg->data_dir || !*cfg->data_dir)
        return err_set(e, -E_CONFIG, "data_dir is not set");
    uint64_t tenant = cfg->tenant ? cfg->tenant : 1;

    if (!cfg->read_only) {
        int r = mkdir_p(cfg->data_dir, e);
        if (r < 0)
            return r;
    }
    struct stat st;
    if (stat(cfg->data_dir, &st) < 0)
        return err_set(e, -E_IO, "data_dir '%.100s': %s", cfg->data_dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return err_set(e, -E_CONFIG, "data_dir '%.100s' is not a folder", cfg->data_dir);

    struct lmdb_store *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, -E_NOMEM, "out of memory");

    pthread_mutex_lock(&registry_lock);
    struct lmdb_env *le = registry;
    while (le && !(le->dev == st.st_dev && le->ino == st.st_ino))
        le = le->next;
    bool fresh = false;
    int r = 0;
    if (le && le->read_only && !cfg->read_only) {
        r = err_set(e, -E_CONFIG, "store already open read-only in this process");
    } else if (!le) {
        r = env_new(cfg, &st, &le, e);
        fresh = r == 0;
    }
    struct lmdb_tenant_db *t = NULL;
    if (r == 0)
        r = env_tenant(le, tenant, &t, e);
    if (r < 0) {
        if (fresh)
            env_destroy(le);
        pthread_mutex_unlock(&registry_lock);
        free(s);
        return r;
    }
    if (fresh) {
        le->next = registry;
        registry = le;
    }
    le->refs++;
    pthread_mutex_unlock(&registry_lock);

    s->base.ops = &lmdb_ops;
    s->base.tenant = tenant;
    s->env = le;
    s->dbi = t->dbi;
    s->exists = t->exists;
    s->read_only = cfg->read_only;
    *ret = &s->base;
    return 0;
}

static void lmdb_close(struct store *base)
{
    struct lmdb_store *s = lm(base);
    pthread_mutex_lock(&registry_lock);
    struct lmdb_env *le = s->env;
    if (--le->refs == 0) {
        struct lmdb_env **pp = &registry;
        while (*pp != le)
            pp = &(*pp)->next;
        *pp = le->next;
        env_destroy(le);
    }
    pthread_mutex_unlock(&registry_lock);
    free(s);
}

/* ---- reads ---- */

static int copy_value(const MDB_val *v, struct store_value *ret, struct err *e)
{
    uint64_t version;
    int64_t exp;
    if (!decode(v, &version, &exp))
        return err_set(e, -E_INTERNAL, "lmdb entry shorter than its header");
    size_t n = v->mv_size - LMDB_HDR;
    unsigned char *data = malloc(n ? n : 1);
    if (!data)
        return err_set(e, -E_NOMEM, "out of memory");
    memcpy(data, (const unsigned char *)v->mv_data + LMDB_HDR, n);
    ret->data = data;
    ret->len = n;
    ret->version = version;
    ret->expires_at_ms = exp;
    return 0;
}

static int lmdb_get(struct store *base, const void *key, size_t klen, struct store_value *ret,
                    struct err *e)
{
    struct lmdb_store *s = lm(base);
    if (!s->exists)
        return err_set(e, -E_NOTFOUND, "not found");
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(s->env->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return mdb_fail(e, rc, "begin");
    MDB_val k = {klen, (void *)key}, v;
    rc = mdb_get(txn, s->dbi, &k, &v);
    int r;
    uint64_t version;
    int64_t exp;
    if (rc == MDB_NOTFOUND)
        r = err_set(e, -E_NOTFOUND, "not found");
    else if (rc)
        r = mdb_fail(e, rc, "get");
    else if (!decode(&v, &version, &exp))
        r = err_set(e, -E_INTERNAL, "lmdb entry shorter than its header");
    else if (expired(exp, store_now_ms()))
        r = err_set(e, -E_NOTFOUND, "not found");
    else
        r = copy_value(&v, ret, e);
    mdb_txn_abort(txn);
    return r;
}

static bool has_prefix(const MDB_val *k, const void *prefix, size_t plen)
{
    return plen == 0 || (k->mv_size >= plen && memcmp(k->mv_data, prefix, plen) == 0);
}

static int cmp_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int list_push(struct store_list *l, size_t *cap, const MDB_val *k, const MDB_val *v,
                     struct err *e)
{
    if (l->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct store_entry *items = realloc(l->items, ncap * sizeof *items);
        if (!items)
            return err_set(e, -E_NOMEM, "out of memory");
        l->items = items;
        *cap = ncap;
    }
    struct store_entry *it = &l->items[l->n];
    memset(it, 0, sizeof *it);
    it->key = malloc(k->mv_size + 1);
    if (!it->key)
        return err_set(e, -E_NOMEM, "out of memory");
    memcpy(it->key, k->mv_data, k->mv_size);
    it->key[k->mv_size] = '\0';
    it->klen = k->mv_size;
    int r = copy_value(v, &it->value, e);
    if (r < 0) {
        free(it->key);
        it->key = NULL;
        return r;
    }
    l->n++;
    return 0;
}

static int scan_txn(struct lmdb_store *s, MDB_txn *txn, const void *prefix, size_t plen,
                    const void *start_after, size_t salen, size_t limit, struct store_list *l,
                    struct err *e)
{
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(txn, s->dbi, &cur);
    if (rc)
        return mdb_fail(e, rc, "cursor");
    /* Start at the larger of the prefix and the cursor key. */
    bool from_cursor = salen && cmp_bytes(start_after, salen, prefix, plen) >= 0;
    MDB_val k = {from_cursor ? salen : plen, (void *)(from_cursor ? start_after : prefix)}, v;
    if (k.mv_size)
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    else
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    if (rc == 0 && from_cursor && k.mv_size == salen && memcmp(k.mv_data, start_after, salen) == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);

    int64_t now = store_now_ms();
    size_t cap = 0;
    int r = 0;
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (!has_prefix(&k, prefix, plen))
            break;
        uint64_t version;
        int64_t exp;
        if (!decode(&v, &version, &exp)) {
            r = err_set(e, -E_INTERNAL, "lmdb entry shorter than its header");
            break;
        }
        if (expired(exp, now))
            continue;
        if (l->n == limit) {
            l->more = true;
            break;
        }
        r = list_push(l, &cap, &k, &v, e);
        if (r < 0)
            break;
    }
    if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
        r = mdb_fail(e, rc, "scan");
    mdb_cursor_close(cur);
    return r;
}

static int lmdb_scan(struct store *base, const void *prefix, size_t plen, const void *start_after,
                     size_t salen, size_t limit, struct store_list *ret, struct err *e)
{
    struct lmdb_store *s = lm(base);
    struct store_list l = {0};
    if (!s->exists) {
        *ret = l;
        return 0;
    }
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(s->env->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return mdb_fail(e, rc, "begin");
    int r = scan_txn(s, txn, prefix, plen, start_after, salen, limit, &l, e);
    mdb_txn_abort(txn);
    if (r < 0) {
        store_list_release(&l);
        return r;
    }
    *ret = l;
    return 0;
}

static int lmdb_ping(struct store *base, struct err *e)
{
    struct lmdb_store *s = lm(base);
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(s->env->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return mdb_fail(e, rc, "begin");
    MDB_val k = {7, "version"}, v;
    rc = mdb_get(txn, s->env->meta, &k, &v);
    mdb_txn_abort(txn);
    if (rc && rc != MDB_NOTFOUND)
        return mdb_fail(e, rc, "ping");
    return 0;
}

/* ---- writes: group commit ---- */

/*
 * One queued write, on its caller's stack until done. @apply runs inside the batch's write
 * transaction, in queue order, and fails with -E_CONFLICT or -E_NOTFOUND only before it has
 * written anything: any other failure may have left the transaction half-written (or in
 * LMDB's error state), so batch_run() then reruns the batch one transaction per operation.
 */
typedef int (*write_apply_cb)(struct write_op *op, MDB_txn *txn, struct err *e);

struct write_op {
    struct write_op *next; /* queue link, under wq_lock */
    struct lmdb_store *s;
    write_apply_cb apply;
    size_t weight; /* bytes it writes, for the batch bound */
    /* put, cas, del */
    const void *key, *val;
    size_t klen, vlen;
    int64_t ttl_ms;
    uint64_t expected;
    /* purge, restore */
    const void *arg;
    /* filled by the leader; read by the caller once done */
    uint64_t version; /* put, cas */
    size_t count;     /* purge */
    int result;
    struct err err;
    bool done; /* under wq_lock */
    pthread_cond_t cv;
};

/* Runs @op in a synced transaction of its own. */
static void run_alone(struct lmdb_env *le, struct write_op *op)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(le->env, NULL, 0, &txn);
    if (rc) {
        op->result = mdb_fail(&op->err, rc, "begin");
        return;
    }
    op->result = op->apply(op, txn, &op->err);
    if (op->result < 0) {
        mdb_txn_abort(txn);
        return;
    }
    rc = mdb_txn_commit(txn);
    if (rc)
        op->result = mdb_fail(&op->err, rc, "commit");
}

/* A failure after which the batch's transaction is still good to commit (see write_op). */
static bool keeps_txn(int r)
{
    return r == 0 || r == -E_CONFLICT || r == -E_NOTFOUND;
}

enum batch_outcome { BATCH_COMMITTED, BATCH_FAILED_ALONE, BATCH_FELL_BACK };

/*
 * Applies the @n operations from @first in order inside @txn and commits once: one fsync for
 * all of them. When an operation fails in a way that spoils the transaction, or the commit
 * fails (MDB_MAP_FULL, EIO), nothing of it is kept and each operation is run again in its own
 * transaction, so each gets its own honest result and one bad write fails nobody else.
 */
static enum batch_outcome batch_run(struct lmdb_env *le, MDB_txn *txn, struct write_op *first,
                                    size_t n)
{
    struct write_op *op = first;
    bool good = true;
    for (size_t i = 0; i < n && good; i++) {
        if (i)
            op = op->next; /* never past the batch's last: its link may be changing */
        op->result = op->apply(op, txn, &op->err);
        good = keeps_txn(op->result);
    }
    if (!good) {
        mdb_txn_abort(txn);
        if (n == 1)
            return BATCH_FAILED_ALONE; /* its result is already its own */
    } else {
        int rc = mdb_txn_commit(txn);
        if (rc == 0)
            return BATCH_COMMITTED;
        if (n == 1) {
            first->result = mdb_fail(&first->err, rc, "commit");
            return BATCH_FAILED_ALONE;
        }
    }
    op = first;
    for (size_t i = 0; i < n; i++) {
        if (i)
            op = op->next;
        run_alone(le, op);
    }
    return BATCH_FELL_BACK;
}

/*
 * Runs one batch as the leader: @first is the queue's head. The write transaction is begun
 * before the batch is taken, so whatever queued while this thread waited for LMDB's writer
 * lock (held by the previous batch, or by another process) rides along. Then it wakes the
 * batch's callers and hands the lead to the next head.
 */
static void lead(struct lmdb_env *le, struct write_op *first)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(le->env, NULL, 0, &txn);

    pthread_mutex_lock(&le->wq_lock);
    struct write_op *last = first;
    size_t n = 1, bytes = first->weight;
    while (rc == 0 && n < WRITE_BATCH_OPS && last->next &&
           bytes + last->next->weight <= WRITE_BATCH_BYTES) {
        last = last->next;
        bytes += last->weight;
        n++;
    }
    pthread_mutex_unlock(&le->wq_lock);

    enum batch_outcome out = BATCH_FAILED_ALONE;
    if (rc)
        first->result = mdb_fail(&first->err, rc, "begin");
    else
        out = batch_run(le, txn, first, n);

    pthread_mutex_lock(&le->wq_lock);
    if (out == BATCH_COMMITTED) {
        le->stats.batches++;
        le->stats.ops += n;
        if (n > le->stats.max_batch)
            le->stats.max_batch = n;
    } else if (out == BATCH_FELL_BACK) {
        le->stats.fallbacks++;
    }
    le->stats.waiting -= n;
    le->wq_head = last->next;
    if (!le->wq_head)
        le->wq_tail = NULL;
    struct write_op *op = first;
    for (size_t i = 0; i < n; i++) {
        struct write_op *next = op->next;
        op->done = true; /* the caller may return (and its op vanish) once we unlock */
        if (op != first)
            pthread_cond_signal(&op->cv);
        op = next;
    }
    if (le->wq_head)
        pthread_cond_signal(&le->wq_head->cv);
    pthread_mutex_unlock(&le->wq_lock);
}

/*
 * Queues @op and returns once it is durable (or failed): the caller either leads a batch
 * itself (it reached the head of the queue) or sleeps until a leader has run it.
 */
static int write_submit(struct write_op *op, struct err *e)
{
    struct lmdb_env *le = op->s->env;
    if (op->s->read_only)
        return err_set(e, -E_PERMISSION, "store is open read-only");
    pthread_cond_init(&op->cv, NULL);
    pthread_mutex_lock(&le->wq_lock);
    op->next = NULL;
    op->done = false;
    if (le->wq_tail)
        le->wq_tail->next = op;
    else
        le->wq_head = op;
    le->wq_tail = op;
    le->stats.waiting++;
    while (!op->done && le->wq_head != op)
        pthread_cond_wait(&op->cv, &le->wq_lock);
    bool leader = !op->done;
    pthread_mutex_unlock(&le->wq_lock);
    if (leader)
        lead(le, op);
    pthread_cond_destroy(&op->cv);
    if (op->result < 0 && e)
        *e = op->err;
    return op->result;
}

int store_lmdb_stats(struct store *base, struct store_lmdb_stats *ret, struct err *e)
{
    if (!base || base->ops != &lmdb_ops)
        return err_set(e, -E_INVALID, "not an lmdb store");
    struct lmdb_env *le = lm(base)->env;
    pthread_mutex_lock(&le->wq_lock);
    *ret = le->stats;
    pthread_mutex_unlock(&le->wq_lock);
    return 0;
}

/* Takes the next version from the file's counter, inside @txn. */
static int next_version(struct lmdb_store *s, MDB_txn *txn, uint64_t *ret, struct err *e)
{
    MDB_val k = {7, "version"}, v;
    uint64_t cur = 0;
    int rc = mdb_get(txn, s->env->meta, &k, &v);
    if (rc == 0 && v.mv_size == 8)
        cur = get_u64(v.mv_data);
    else if (rc == 0)
        return err_set(e, -E_INTERNAL, "lmdb version counter is damaged");
    else if (rc != MDB_NOTFOUND)
        return mdb_fail(e, rc, "read version");
    unsigned char buf[8];
    put_u64(buf, cur + 1);
    v.mv_size = 8;
    v.mv_data = buf;
    rc = mdb_put(txn, s->env->meta, &k, &v, 0);
    if (rc)
        return mdb_fail(e, rc, "write version");
    *ret = cur + 1;
    return 0;
}

/* Writes one entry with a given version and absolute expiry inside @txn. */
static int write_raw(struct lmdb_store *s, MDB_txn *txn, const void *key, size_t klen,
                     const void *val, size_t vlen, uint64_t version, int64_t expires_at_ms,
                     struct err *e)
{
    MDB_val k = {klen, (void *)key}, v = {LMDB_HDR + vlen, NULL};
    int rc = mdb_put(txn, s->dbi, &k, &v, MDB_RESERVE);
    if (rc)
        return mdb_fail(e, rc, "put");
    unsigned char *p = v.mv_data;
    put_u64(p, version);
    put_u64(p + 8, (uint64_t)expires_at_ms);
    if (vlen)
        memcpy(p + LMDB_HDR, val, vlen);
    return 0;
}

/* Writes @op's key and value with the next version, its TTL counted from @now. */
static int write_value(struct write_op *op, MDB_txn *txn, int64_t now, struct err *e)
{
    uint64_t version = 0;
    int r = next_version(op->s, txn, &version, e);
    if (r < 0)
        return r;
    int64_t exp = 0;
    if (op->ttl_ms > 0)
        exp = op->ttl_ms > INT64_MAX - now ? INT64_MAX : now + op->ttl_ms;
    r = write_raw(op->s, txn, op->key, op->klen, op->val, op->vlen, version, exp, e);
    if (r == 0)
        op->version = version;
    return r;
}

/* The live version of @key in @txn: 0 when absent or expired. */
static int current_version(struct lmdb_store *s, MDB_txn *txn, const void *key, size_t klen,
                           int64_t now, uint64_t *ret, struct err *e)
{
    MDB_val k = {klen, (void *)key}, v;
    int rc = mdb_get(txn, s->dbi, &k, &v);
    if (rc == MDB_NOTFOUND) {
        *ret = 0;
        return 0;
    }
    if (rc)
        return mdb_fail(e, rc, "get");
    uint64_t version;
    int64_t exp;
    if (!decode(&v, &version, &exp))
        return err_set(e, -E_INTERNAL, "lmdb entry shorter than its header");
    *ret = expired(exp, now) ? 0 : version;
    return 0;
}

static int apply_put(struct write_op *op, MDB_txn *txn, struct err *e)
{
    return write_value(op, txn, store_now_ms(), e);
}

/* The version check reads this transaction: an earlier cas of the same batch counts. */
static int apply_cas(struct write_op *op, MDB_txn *txn, struct err *e)
{
    int64_t now = store_now_ms();
    uint64_t cur = 0;
    int r = current_version(op->s, txn, op->key, op->klen, now, &cur, e);
    if (r == 0 && cur != op->expected)
        r = err_set(e, -E_CONFLICT, "version conflict");
    return r < 0 ? r : write_value(op, txn, now, e);
}

static int apply_del(struct write_op *op, MDB_txn *txn, struct err *e)
{
    uint64_t cur = 0;
    int r = current_version(op->s, txn, op->key, op->klen, store_now_ms(), &cur, e);
    if (r < 0)
        return r;
    if (cur == 0)
        return err_set(e, -E_NOTFOUND, "not found");
    if (op->expected && cur != op->expected)
        return err_set(e, -E_CONFLICT, "version conflict");
    MDB_val k = {op->klen, (void *)op->key};
    int rc = mdb_del(txn, op->s->dbi, &k, NULL);
    return rc ? mdb_fail(e, rc, "del") : 0;
}

/* Queues one put, cas or del of @key (@val and @ttl_ms unused by del) and waits for it. */
static int write_key(struct store *base, write_apply_cb apply, const void *key, size_t klen,
                     uint64_t expected, const void *val, size_t vlen, int64_t ttl_ms,
                     uint64_t *ret_version, struct err *e)
{
    struct write_op op = {.s = lm(base),
                          .apply = apply,
                          .weight = klen + vlen + LMDB_HDR,
                          .key = key,
                          .val = val,
                          .klen = klen,
                          .vlen = vlen,
                          .ttl_ms = ttl_ms,
                          .expected = expected};
    int r = write_submit(&op, e);
    if (r == 0 && ret_version)
        *ret_version = op.version;
    return r;
}

static int lmdb_cas(struct store *base, const void *key, size_t klen, uint64_t expected_version,
                    const void *val, size_t vlen, int64_t ttl_ms, uint64_t *ret_version,
                    struct err *e)
{
    return write_key(base, apply_cas, key, klen, expected_version, val, vlen, ttl_ms,
                     ret_version, e);
}

static int lmdb_put(struct store *base, const void *key, size_t klen, const void *val, size_t vlen,
                    int64_t ttl_ms, uint64_t *ret_version, struct err *e)
{
    return write_key(base, apply_put, key, klen, 0, val, vlen, ttl_ms, ret_version, e);
}

static int lmdb_del(struct store *base, const void *key, size_t klen, uint64_t expected_version,
                    struct err *e)
{
    return write_key(base, apply_del, key, klen, expected_version, NULL, 0, 0, NULL, e);
}

struct key_batch {
    size_t n;
    size_t len[PURGE_BATCH];
    unsigned char key[PURGE_BATCH][STORE_KEY_MAX];
};

/* Deletes those of @op->arg's keys that are still expired; counts them in @op->count. */
static int apply_purge(struct write_op *op, MDB_txn *txn, struct err *e)
{
    const struct key_batch *b = op->arg;
    int64_t now = store_now_ms();
    op->count = 0;
    for (size_t i = 0; i < b->n; i++) {
        uint64_t version = 1;
        int r = current_version(op->s, txn, b->key[i], b->len[i], now, &version, e);
        if (r < 0)
            return r;
        if (version != 0)
            continue;
        MDB_val dk = {b->len[i], (void *)b->key[i]};
        int rc = mdb_del(txn, op->s->dbi, &dk, NULL);
        if (rc == 0)
            op->count++;
        else if (rc != MDB_NOTFOUND)
            return mdb_fail(e, rc, "purge del");
    }
    return 0;
}

/*
 * Finds up to PURGE_BATCH expired keys after @after (a read transaction: no writer is held
 * while walking), then deletes those still expired in one short write (queued like any other).
 */
static int purge_batch(struct lmdb_store *s, struct key_batch *b, bool *ret_done,
                       size_t *ret_purged, struct err *e)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    unsigned char after[STORE_KEY_MAX];
    size_t alen = b->n ? b->len[b->n - 1] : 0;
    if (alen)
        memcpy(after, b->key[b->n - 1], alen);
    int rc = mdb_txn_begin(s->env->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return mdb_fail(e, rc, "begin");
    rc = mdb_cursor_open(txn, s->dbi, &cur);
    if (rc) {
        mdb_txn_abort(txn);
        return mdb_fail(e, rc, "cursor");
    }
    MDB_val k = {alen, after}, v;
    rc = mdb_cursor_get(cur, &k, &v, alen ? MDB_SET_RANGE : MDB_FIRST);
    if (rc == 0 && alen && k.mv_size == alen && memcmp(k.mv_data, after, alen) == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    int64_t now = store_now_ms();
    b->n = 0;
    size_t bytes = 0;
    for (; rc == 0 && b->n < PURGE_BATCH; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t version;
        int64_t exp;
        if (decode(&v, &version, &exp) && expired(exp, now) && k.mv_size <= STORE_KEY_MAX) {
            memcpy(b->key[b->n], k.mv_data, k.mv_size);
            b->len[b->n++] = k.mv_size;
            bytes += k.mv_size;
        }
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return mdb_fail(e, rc, "purge scan");
    *ret_done = rc == MDB_NOTFOUND;
    if (b->n == 0)
        return 0;

    struct write_op op = {.s = s, .apply = apply_purge, .weight = bytes, .arg = b};
    int r = write_submit(&op, e);
    if (r == 0)
        *ret_purged += op.count;
    return r;
}

static int lmdb_purge_expired(struct store *base, size_t *ret_purged, struct err *e)
{
    struct lmdb_store *s = lm(base);
    if (s->read_only)
        return err_set(e, -E_PERMISSION, "store is open read-only");
    size_t purged = 0;
    if (s->exists) {
        _cleanup_free_ struct key_batch *b = calloc(1, sizeof *b);
        if (!b)
            return err_set(e, -E_NOMEM, "out of memory");
        bool done = false;
        while (!done) {
            int r = purge_batch(s, b, &done, &purged, e);
            if (r < 0)
                return r;
        }
    }
    if (ret_purged)
        *ret_purged = purged;
    return 0;
}

/* One read transaction over the whole tenant: a consistent snapshot for export. */
static int lmdb_each(struct store *base, store_each_cb cb, void *cbdata, struct err *e)
{
    struct lmdb_store *s = lm(base);
    if (!s->exists)
        return 0;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    int rc = mdb_txn_begin(s->env->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return mdb_fail(e, rc, "begin");
    rc = mdb_cursor_open(txn, s->dbi, &cur);
    if (rc) {
        mdb_txn_abort(txn);
        return mdb_fail(e, rc, "cursor");
    }
    int64_t now = store_now_ms();
    int r = 0;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && r == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct store_value sv = {0};
        if (!decode(&v, &sv.version, &sv.expires_at_ms)) {
            r = err_set(e, -E_INTERNAL, "lmdb entry shorter than its header");
            break;
        }
        if (expired(sv.expires_at_ms, now))
            continue;
        sv.data = (unsigned char *)v.mv_data + LMDB_HDR;
        sv.len = v.mv_size - LMDB_HDR;
        r = cb(k.mv_data, k.mv_size, &sv, e, cbdata);
    }
    if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
        r = mdb_fail(e, rc, "walk");
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return r;
}

/* Raises the version counter to at least @v inside @txn. */
static int raise_version(struct lmdb_store *s, MDB_txn *txn, uint64_t v, struct err *e)
{
    MDB_val k = {7, "version"}, d;
    int rc = mdb_get(txn, s->env->meta, &k, &d);
    if (rc == 0 && d.mv_size == 8 && get_u64(d.mv_data) >= v)
        return 0;
    if (rc && rc != MDB_NOTFOUND)
        return mdb_fail(e, rc, "read version");
    unsigned char buf[8];
    put_u64(buf, v);
    d.mv_size = 8;
    d.mv_data = buf;
    rc = mdb_put(txn, s->env->meta, &k, &d, 0);
    return rc ? mdb_fail(e, rc, "write version") : 0;
}

#define RESTORE_BATCH_BYTES ((size_t)32 << 20)

struct restore_chunk {
    const struct store_entry *items;
    size_t n;
    bool keep_versions;
};

static int apply_restore(struct write_op *op, MDB_txn *txn, struct err *e)
{
    const struct restore_chunk *c = op->arg;
    int64_t now = store_now_ms();
    uint64_t max = 0;
    for (size_t i = 0; i < c->n; i++) {
        const struct store_entry *it = &c->items[i];
        if (expired(it->value.expires_at_ms, now))
            continue;
        uint64_t version = it->value.version;
        int r = 0;
        if (!c->keep_versions || version == 0)
            r = next_version(op->s, txn, &version, e);
        if (r == 0)
            r = write_raw(op->s, txn, it->key, it->klen, it->value.data, it->value.len, version,
                          it->value.expires_at_ms, e);
        if (r < 0)
            return r;
        if (version > max)
            max = version;
    }
    return c->keep_versions ? raise_version(op->s, txn, max, e) : 0;
}

/* Bulk writes for import-backup: few synced transactions of up to ~32 MiB each. */
static int lmdb_restore(struct store *base, const struct store_entry *items, size_t n,
                        bool keep_versions, struct err *e)
{
    struct lmdb_store *s = lm(base);
    size_t i = 0;
    while (i < n) {
        size_t j = i, bytes = 0;
        for (; j < n && bytes < RESTORE_BATCH_BYTES; j++)
            bytes += items[j].klen + items[j].value.len + LMDB_HDR;
        struct restore_chunk c = {items + i, j - i, keep_versions};
        struct write_op op = {.s = s, .apply = apply_restore, .weight = bytes, .arg = &c};
        int r = write_submit(&op, e);
        if (r < 0)
            return r;
        i = j;
    }
    return 0;
}

static int apply_clear(struct write_op *op, MDB_txn *txn, struct err *e)
{
    int rc = mdb_drop(txn, op->s->dbi, 0);
    return rc ? mdb_fail(e, rc, "clear") : 0;
}

/* Empties the tenant's DB in one transaction (the DB itself stays). */
static int lmdb_clear(struct store *base, struct err *e)
{
    struct lmdb_store *s = lm(base);
    if (s->read_only)
        return err_set(e, -E_PERMISSION, "store is open read-only");
    if (!s->exists)
        return 0;
    struct write_op op = {.s = s, .apply = apply_clear};
    return write_submit(&op, e);
}

static const struct store_ops lmdb_ops = {
    .name = "lmdb",
    .get = lmdb_get,
    .put = lmdb_put,
    .cas = lmdb_cas,
    .del = lmdb_del,
    .scan = lmdb_scan,
    .ping = lmdb_ping,
    .purge_expired = lmdb_purge_expired,
    .close = lmdb_close,
    .each = lmdb_each,
    .restore = lmdb_restore,
    .clear = lmdb_clear,
};
