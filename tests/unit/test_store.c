/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the LMDB backend's own behaviour (files, reopen, read-only, shared
 * environments, map full, damaged entries, purge batches) and of storage/repo.c. The
 * backend-agnostic cases live in test_store_conformance.c and run against LMDB too.
 */
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>

#include "fixture_tmp.h"
#include "storage/repo.h"
#include "storage/store.h"

static int dir_seq;

static int group_setup(void **state)
{
    (void)state;
    return fx_tmp_setup("store-test");
}

/* A fresh data dir path (not created) for one test. */
static void new_dir(char *out, size_t n)
{
    snprintf(out, n, "%s/d%d/sub", fx_tmpbase, ++dir_seq);
}

static struct store *open_at(const char *dir, uint64_t tenant, bool read_only, int expect)
{
    struct store_config cfg = {.backend = "lmdb",
                               .data_dir = dir,
                               .tenant = tenant,
                               .lmdb_map_size = (size_t)64 << 20,
                               .read_only = read_only};
    struct store *s = NULL;
    struct err e = {0};
    int r = store_open(&cfg, &s, &e);
    if (r != expect)
        fail_msg("open %s: got %d want %d: %s", dir, r, expect, e.msg);
    return s;
}

static void put(struct store *s, const char *k, const char *v, int64_t ttl, uint64_t *ver)
{
    struct err e = {0};
    int r = store_put(s, k, strlen(k), v, strlen(v), ttl, ver, &e);
    if (r < 0)
        fail_msg("put %s: %s", k, e.msg);
}

static void test_open_creates_dir(void **state)
{
    (void)state;
    char dir[512], path[600];
    struct stat st;
    new_dir(dir, sizeof dir);
    struct store *s = open_at(dir, 0, false, 0);
    assert_string_equal(s->ops->name, "lmdb");
    assert_int_equal(s->tenant, 1); /* 0 means the default tenant 1 */
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    store_close(s);

    struct err e = {0};
    struct store_config cfg = {.backend = "lmdb"};
    assert_int_equal(store_open(&cfg, &s, &e), -E_CONFIG);
    cfg.data_dir = path; /* a file, not a folder */
    assert_int_equal(store_open(&cfg, &s, &e), -E_CONFIG);
    cfg.backend = "nope";
    assert_int_equal(store_open(&cfg, &s, &e), -E_CONFIG);
    store_close(NULL);
}

static void test_reopen_keeps_data_and_versions(void **state)
{
    (void)state;
    char dir[512];
    uint64_t v1 = 0, v2 = 0;
    struct store_value v = {0};
    struct err e = {0};
    new_dir(dir, sizeof dir);
    struct store *s = open_at(dir, 0, false, 0);
    put(s, "k", "one", 0, &v1);
    put(s, "gone", "x", 0, NULL);
    assert_int_equal(store_del(s, "gone", 4, 0, &e), 0);
    store_close(s);

    /* Tenant 1 given explicitly is the default tenant. */
    s = open_at(dir, 1, false, 0);
    assert_int_equal(store_get(s, "k", 1, &v, &e), 0);
    assert_int_equal(v.version, v1);
    assert_memory_equal(v.data, "one", 3);
    store_value_release(&v);
    put(s, "gone", "y", 0, &v2);
    assert_true(v2 > v1 + 1); /* the counter survived the close */
    store_close(s);
}

static void test_shared_environment(void **state)
{
    (void)state;
    char dir[512];
    struct store_value v = {0};
    struct err e = {0};
    new_dir(dir, sizeof dir);
    struct store *a = open_at(dir, 7, false, 0);
    struct store *a2 = open_at(dir, 7, false, 0);
    struct store *b = open_at(dir, 8, false, 0);
    put(a, "k", "a", 0, NULL);
    assert_int_equal(store_get(a2, "k", 1, &v, &e), 0);
    store_value_release(&v);
    assert_int_equal(store_get(b, "k", 1, &v, &e), -E_NOTFOUND);
    store_close(a);
    /* The others keep working after one handle closes. */
    assert_int_equal(store_get(a2, "k", 1, &v, &e), 0);
    store_value_release(&v);
    put(b, "k", "b", 0, NULL);
    store_close(a2);
    store_close(b);
    /* The same folder through another path is the same environment. */
    char alt[600];
    snprintf(alt, sizeof alt, "%s/../sub/", dir);
    a = open_at(dir, 8, false, 0);
    b = open_at(alt, 8, false, 0);
    assert_int_equal(store_get(b, "k", 1, &v, &e), 0);
    assert_memory_equal(v.data, "b", 1);
    store_value_release(&v);
    store_close(a);
    store_close(b);
}

static void test_read_only(void **state)
{
    (void)state;
    char dir[512];
    struct store_value v = {0};
    struct store_list l = {0};
    struct err e = {0};
    size_t n = 0;
    new_dir(dir, sizeof dir);

    /* Nothing there: read-only does not create it. */
    open_at(dir, 0, true, -E_IO);
    struct stat st;
    assert_int_not_equal(stat(dir, &st), 0);

    struct store *rw = open_at(dir, 0, false, 0);
    put(rw, "k", "v", 0, NULL);
    /* A read-only handle beside a writable one. */
    struct store *ro = open_at(dir, 0, true, 0);
    assert_int_equal(store_get(ro, "k", 1, &v, &e), 0);
    store_value_release(&v);
    store_close(ro);
    store_close(rw);

    ro = open_at(dir, 0, true, 0);
    assert_int_equal(store_get(ro, "k", 1, &v, &e), 0);
    store_value_release(&v);
    assert_int_equal(store_ping(ro, &e), 0);
    assert_int_equal(store_put(ro, "k", 1, "w", 1, 0, NULL, &e), -E_PERMISSION);
    assert_int_equal(store_cas(ro, "n", 1, 0, "w", 1, 0, NULL, &e), -E_PERMISSION);
    assert_int_equal(store_del(ro, "k", 1, 0, &e), -E_PERMISSION);
    assert_int_equal(store_purge_expired(ro, &n, &e), -E_PERMISSION);
    /* A tenant that never wrote reads as empty. */
    struct store *ro9 = open_at(dir, 9, true, 0);
    assert_int_equal(store_get(ro9, "k", 1, &v, &e), -E_NOTFOUND);
    assert_int_equal(store_scan(ro9, "", 0, NULL, 0, 10, &l, &e), 0);
    assert_int_equal(l.n, 0);
    store_list_release(&l);
    /* The environment is read-only now: a writable open in this process is refused. */
    open_at(dir, 0, false, -E_CONFIG);
    store_close(ro9);
    store_close(ro);
    /* Closed: writable again, and the data is unchanged. */
    rw = open_at(dir, 0, false, 0);
    assert_int_equal(store_get(rw, "k", 1, &v, &e), 0);
    assert_memory_equal(v.data, "v", 1);
    store_value_release(&v);
    store_close(rw);
}

static void test_map_full(void **state)
{
    (void)state;
    char dir[512];
    struct err e = {0};
    new_dir(dir, sizeof dir);
    struct store_config cfg = {
        .backend = "lmdb", .data_dir = dir, .lmdb_map_size = (size_t)1 << 20};
    struct store *s = NULL;
    assert_int_equal(store_open(&cfg, &s, &e), 0);
    static unsigned char val[100000];
    memset(val, 'x', sizeof val);
    int r = 0, i;
    for (i = 0; i < 100 && r == 0; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        r = store_put(s, k, strlen(k), val, sizeof val, 0, NULL, &e);
    }
    assert_int_equal(r, -E_IO);
    assert_string_equal(e.msg, "store full: raise lmdb.map_size");
    assert_true(i > 2);
    /* Still readable, and deleting makes room again. */
    struct store_value v = {0};
    assert_int_equal(store_get(s, "k0", 2, &v, &e), 0);
    store_value_release(&v);
    assert_int_equal(store_del(s, "k0", 2, 0, &e), 0);
    assert_int_equal(store_del(s, "k1", 2, 0, &e), 0);
    assert_int_equal(store_put(s, "k0", 2, val, sizeof val, 0, NULL, &e), 0);
    store_close(s);
}

static void test_damaged_entry(void **state)
{
    (void)state;
    char dir[512];
    struct err e = {0};
    struct store_value v = {0};
    struct store_list l = {0};
    new_dir(dir, sizeof dir);
    struct store *s = open_at(dir, 3, false, 0);
    put(s, "ok", "v", 0, NULL);
    store_close(s);

    /* Write an entry shorter than the header straight into the tenant's DB. */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "t/3", 0, &dbi), 0);
    MDB_val k = {3, "bad"}, d = {4, "abcd"};
    assert_int_equal(mdb_put(txn, dbi, &k, &d, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    s = open_at(dir, 3, false, 0);
    assert_int_equal(store_get(s, "bad", 3, &v, &e), -E_INTERNAL);
    assert_int_equal(store_get(s, "ok", 2, &v, &e), 0);
    store_value_release(&v);
    assert_int_equal(store_scan(s, "", 0, NULL, 0, 10, &l, &e), -E_INTERNAL);
    assert_null(l.items);
    assert_int_equal(store_cas(s, "bad", 3, 0, "x", 1, 0, NULL, &e), -E_INTERNAL);
    /* put repairs it */
    put(s, "bad", "fixed", 0, NULL);
    assert_int_equal(store_scan(s, "", 0, NULL, 0, 10, &l, &e), 0);
    assert_int_equal(l.n, 2);
    store_list_release(&l);
    store_close(s);
}

static void test_purge_batches(void **state)
{
    (void)state;
    char dir[512];
    struct err e = {0};
    struct store_list l = {0};
    size_t purged = 0;
    new_dir(dir, sizeof dir);
    struct store *s = open_at(dir, 0, false, 0);
    struct store *other = open_at(dir, 2, false, 0);
    /* 700 expiring keys (more than one purge batch) between live ones. */
    for (int i = 0; i < 1000; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%04d", i);
        put(s, k, "v", i % 10 < 7 ? 1 : 0, NULL);
    }
    put(other, "k0000", "v", 1, NULL);
    usleep(20 * 1000);
    assert_int_equal(store_purge_expired(s, &purged, &e), 0);
    assert_int_equal(purged, 700);
    assert_int_equal(store_purge_expired(s, &purged, &e), 0);
    assert_int_equal(purged, 0);
    assert_int_equal(store_scan(s, "k", 1, NULL, 0, 1000, &l, &e), 0);
    assert_int_equal(l.n, 300);
    assert_false(l.more);
    store_list_release(&l);
    /* Purging one tenant leaves another's entries to its own purge. */
    assert_int_equal(store_purge_expired(other, &purged, &e), 0);
    assert_int_equal(purged, 1);
    store_close(other);
    store_close(s);
}

static void test_ttl_overflow(void **state)
{
    (void)state;
    char dir[512];
    struct err e = {0};
    struct store_value v = {0};
    new_dir(dir, sizeof dir);
    struct store *s = open_at(dir, 0, false, 0);
    assert_int_equal(store_put(s, "k", 1, "v", 1, INT64_MAX, NULL, &e), 0);
    assert_int_equal(store_get(s, "k", 1, &v, &e), 0);
    assert_int_equal(v.expires_at_ms, INT64_MAX);
    store_value_release(&v);
    store_close(s);
}

/* Child of test_multi_process: opens the store itself (never an environment from before the
 * fork) and adds @n to the counter by cas, retrying conflicts. */
static int child_increments(const char *dir, int n)
{
    struct store_config cfg = {.backend = "lmdb", .data_dir = dir};
    struct store *s = NULL;
    struct err e = {0};
    if (store_open(&cfg, &s, &e) < 0)
        return 10;
    for (int done = 0; done < n;) {
        struct store_value v = {0};
        uint64_t cur = 0, ver = 0;
        int r = store_get(s, "counter", 7, &v, &e);
        if (r == 0) {
            memcpy(&cur, v.data, sizeof cur);
            ver = v.version;
            store_value_release(&v);
        } else if (r != -E_NOTFOUND) {
            return 11;
        }
        cur++;
        r = store_cas(s, "counter", 7, ver, &cur, sizeof cur, 0, NULL, &e);
        if (r == 0)
            done++;
        else if (r != -E_CONFLICT)
            return 12;
    }
    store_close(s);
    return 0;
}

struct incr_arg {
    const char *dir;
    int n;
    int rc;
};

static void *incr_thread(void *p)
{
    struct incr_arg *a = p;
    a->rc = child_increments(a->dir, a->n);
    return NULL;
}

/*
 * Several processes write one store at once (serve beside an admin command), with several
 * threads each: within a process their writes share group commits, between processes LMDB's
 * writer lock orders them.
 */
static void test_multi_process(void **state)
{
    (void)state;
    enum { NPROC = 3, NTHREADS = 3, OPS = 100 };
    char dir[512];
    new_dir(dir, sizeof dir);
    pid_t pids[NPROC];
    for (int i = 0; i < NPROC; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] != 0)
            continue;
        pthread_t th[NTHREADS];
        struct incr_arg args[NTHREADS];
        for (int t = 0; t < NTHREADS; t++) {
            args[t] = (struct incr_arg){dir, OPS, 20};
            if (pthread_create(&th[t], NULL, incr_thread, &args[t]) != 0)
                _exit(21);
        }
        int rc = 0;
        for (int t = 0; t < NTHREADS; t++) {
            pthread_join(th[t], NULL);
            if (args[t].rc && !rc)
                rc = args[t].rc;
        }
        _exit(rc);
    }
    for (int i = 0; i < NPROC; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    struct store *s = open_at(dir, 0, false, 0);
    struct store_value v = {0};
    struct err e = {0};
    uint64_t cur = 0;
    assert_int_equal(store_get(s, "counter", 7, &v, &e), 0);
    memcpy(&cur, v.data, sizeof cur);
    store_value_release(&v);
    assert_int_equal(cur, NPROC * NTHREADS * OPS);
    store_close(s);
}

/* ---- repo.c ---- */

static struct store *repo_store(void)
{
    char dir[512];
    new_dir(dir, sizeof dir);
    return open_at(dir, 0, false, 0);
}

static void test_repo_user_login_index(void **state)
{
    (void)state;
    struct err e = {0};
    struct store *s = repo_store();
    Koderid__V2__User u = KODERID__V2__USER__INIT;
    Koderid__V2__User *got = NULL;
    char *names[] = {"Alice@Example.com", "alice"};
    u.id = "100";
    u.username = "Alice";
    u.login_name = "Alice@Example.com";
    u.login_names = names;
    u.n_login_names = 2;
    u.email = "alice@example.com";
    assert_int_equal(repo_user_put(s, &u, &e), 0);

    assert_int_equal(repo_user_by_login(s, "ALICE@example.COM", &got, &e), 0);
    assert_string_equal(got->id, "100");
    assert_string_equal(got->email, "alice@example.com");
    koderid__v2__user__free_unpacked(got, NULL);
    assert_int_equal(repo_user_by_login(s, "alice", &got, &e), 0);
    koderid__v2__user__free_unpacked(got, NULL);
    assert_int_equal(repo_user_by_login(s, "bob", &got, &e), -E_NOTFOUND);

    /* A second user; alice's rename below must leave bob's entry alone. */
    Koderid__V2__User b = KODERID__V2__USER__INIT;
    b.id = "200";
    b.username = "bob";
    assert_int_equal(repo_user_put(s, &b, &e), 0);

    /* Rename: the old names leave the index, the new one joins. */
    char *names2[] = {"al@example.com"};
    u.username = "al";
    u.login_name = "al@example.com";
    u.login_names = names2;
    u.n_login_names = 1;
    assert_int_equal(repo_user_put(s, &u, &e), 0);
    assert_int_equal(repo_user_by_login(s, "alice", &got, &e), -E_NOTFOUND);
    assert_int_equal(repo_user_by_login(s, "alice@example.com", &got, &e), -E_NOTFOUND);
    assert_int_equal(repo_user_by_login(s, "AL@EXAMPLE.com", &got, &e), 0);
    assert_string_equal(got->id, "100");
    koderid__v2__user__free_unpacked(got, NULL);
    /* With login names given (an org whose policy requires the domain), the bare username
     * does not sign in, as in v1. */
    assert_int_equal(repo_user_by_login(s, "AL", &got, &e), -E_NOTFOUND);
    /* Without them (bob), the username is the login name. */
    assert_int_equal(repo_user_by_login(s, "bob", &got, &e), 0);
    assert_string_equal(got->id, "200");
    koderid__v2__user__free_unpacked(got, NULL);

    /* An index entry that points at someone else is left alone when a name is dropped. */
    assert_int_equal(repo_put_str(s, "login/al", "200", 0, &e), 0);
    u.username = "";
    assert_int_equal(repo_user_put(s, &u, &e), 0);
    char *owner = NULL;
    assert_int_equal(repo_get_str(s, "login/al", &owner, &e), 0);
    assert_string_equal(owner, "200");
    free(owner);

    assert_int_equal(repo_user_get(s, "100", &got, &e), 0);
    assert_string_equal(got->login_name, "al@example.com");
    koderid__v2__user__free_unpacked(got, NULL);
    store_close(s);
}

/* repo_user_del: the user's grants, keys and own index entries go; user 10's neighbours
 * (user 100's grants, an index entry pointing elsewhere) stay. */
static void test_repo_user_del(void **state)
{
    (void)state;
    struct err e = {0};
    struct store *s = repo_store();
    Koderid__V2__User u = KODERID__V2__USER__INIT, other = KODERID__V2__USER__INIT;
    Koderid__V2__User *got = NULL;
    char *names[] = {"Eve@example.com", "eve2"};
    u.id = "10";
    u.username = "eve";
    u.login_name = "Eve@example.com";
    u.login_names = names;
    u.n_login_names = 2;
    other.id = "100";
    other.username = "mallory";
    assert_int_equal(repo_user_put(s, &u, &e), 0);
    assert_int_equal(repo_user_put(s, &other, &e), 0);
    assert_int_equal(repo_put_str(s, "login/eve2", "100", 0, &e), 0); /* taken by 100 since */
    for (int i = 0; i < 3; i++) {
        char key[64];
        snprintf(key, sizeof key, "grant/10/g%d", i);
        assert_int_equal(repo_put_str(s, key, "x", 0, &e), 0);
    }
    assert_int_equal(repo_put_str(s, "grant/100/g", "x", 0, &e), 0);
    assert_int_equal(repo_put_str(s, "authnkey/10/k", "x", 0, &e), 0);

    assert_int_equal(repo_user_del(s, "10", &e), 0);
    assert_int_equal(repo_user_get(s, "10", &got, &e), -E_NOTFOUND);
    assert_int_equal(repo_user_by_login(s, "eve@EXAMPLE.com", &got, &e), -E_NOTFOUND);
    char *v = NULL;
    assert_int_equal(repo_get_str(s, "grant/10/g1", &v, &e), -E_NOTFOUND);
    assert_int_equal(repo_get_str(s, "authnkey/10/k", &v, &e), -E_NOTFOUND);
    assert_int_equal(repo_get_str(s, "grant/100/g", &v, &e), 0);
    free(v);
    assert_int_equal(repo_get_str(s, "login/eve2", &v, &e), 0);
    assert_string_equal(v, "100");
    free(v);
    assert_int_equal(repo_user_by_login(s, "mallory", &got, &e), 0);
    koderid__v2__user__free_unpacked(got, NULL);
    assert_int_equal(repo_user_del(s, "10", &e), -E_NOTFOUND);
    store_close(s);
}

static void test_repo_client(void **state)
{
    (void)state;
    struct err e = {0};
    struct store *s = repo_store();
    Koderid__V2__Client c = KODERID__V2__CLIENT__INIT;
    Koderid__V2__Client *got = NULL;
    char *uris[] = {"https://app.example/cb"};
    c.client_id = "123@proj";
    c.project_id = "555";
    c.name = "app";
    c.redirect_uris = uris;
    c.n_redirect_uris = 1;
    assert_int_equal(repo_client_put(s, &c, &e), 0);
    assert_int_equal(repo_client_get(s, "123@proj", &got, &e), 0);
    assert_string_equal(got->name, "app");
    assert_int_equal(got->n_redirect_uris, 1);
    assert_string_equal(got->redirect_uris[0], "https://app.example/cb");
    koderid__v2__client__free_unpacked(got, NULL);
    char *cid = NULL;
    assert_int_equal(repo_get_str(s, "projclient/555/123@proj", &cid, &e), 0);
    assert_string_equal(cid, "123@proj");
    free(cid);
    assert_int_equal(repo_client_get(s, "nope", &got, &e), -E_NOTFOUND);

    /* A hostile id never truncates into another key. */
    char longid[600];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    c.client_id = longid;
    assert_int_equal(repo_client_put(s, &c, &e), -E_INVALID);
    assert_int_equal(repo_client_get(s, longid, &got, &e), -E_NOTFOUND);
    char key[REPO_KEY_MAX];
    assert_int_equal(repo_key(key, "client/%s", longid), -E_INVALID);
    assert_int_equal(repo_key(key, "client/%s", "x"), 8);
    store_close(s);
}

static void test_repo_corrupt_and_del(void **state)
{
    (void)state;
    struct err e = {0};
    struct store *s = repo_store();
    Koderid__V2__User *got = NULL;
    /* A field with wire type 7 does not exist: unpack fails. */
    const unsigned char junk[] = {0x0f, 0xff, 0xff, 0xff};
    assert_int_equal(store_put(s, "user/9", 6, junk, sizeof junk, 0, NULL, &e), 0);
    assert_int_equal(repo_user_get(s, "9", &got, &e), -E_INTERNAL);
    assert_null(got);

    Koderid__V2__Org o = KODERID__V2__ORG__INIT;
    Koderid__V2__Org *og = NULL;
    uint64_t v1 = 0, v2 = 0, v3 = 0;
    o.id = "1";
    assert_int_equal(repo_cas(s, "org/1", 0, &o.base, 0, &v1, &e), 0);
    assert_int_equal(repo_cas(s, "org/1", 0, &o.base, 0, NULL, &e), -E_CONFLICT);
    assert_int_equal(repo_cas(s, "org/1", v1, &o.base, 0, &v2, &e), 0);
    assert_int_equal(repo_put(s, "org/1", &o.base, 0, &v3, &e), 0);
    assert_true(v1 < v2 && v2 < v3);
    ProtobufCMessage *m = NULL;
    uint64_t ver = 0;
    assert_int_equal(repo_get(s, "org/1", &koderid__v2__org__descriptor, &m, &ver, &e), 0);
    assert_int_equal(ver, v3);
    protobuf_c_message_free_unpacked(m, NULL);
    assert_int_equal(repo_org_get(s, "1", &og, &e), 0);
    assert_string_equal(og->id, "1");
    koderid__v2__org__free_unpacked(og, NULL);
    assert_int_equal(repo_del(s, "org/1", &e), 0);
    assert_int_equal(repo_del(s, "org/1", &e), 0); /* absent is fine here */
    assert_int_equal(repo_org_get(s, "1", &og, &e), -E_NOTFOUND);

    char low[8];
    repo_lower("AbC-Ü", low, sizeof low);
    assert_string_equal(low, "abc-Ü");
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_creates_dir),
        cmocka_unit_test(test_reopen_keeps_data_and_versions),
        cmocka_unit_test(test_shared_environment),
        cmocka_unit_test(test_read_only),
        cmocka_unit_test(test_map_full),
        cmocka_unit_test(test_damaged_entry),
        cmocka_unit_test(test_purge_batches),
        cmocka_unit_test(test_ttl_overflow),
        cmocka_unit_test(test_multi_process),
        cmocka_unit_test(test_repo_user_login_index),
        cmocka_unit_test(test_repo_user_del),
        cmocka_unit_test(test_repo_client),
        cmocka_unit_test(test_repo_corrupt_and_del),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, group_setup, fx_tmp_teardown);
}
