/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of storage/backup.c: round trips, refusals of damaged files, merge, fallbacks. */
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "fixture_tmp.h"
#include "storage/backup.h"
#include "storage/store.h"

static int dir_seq;

static int group_setup(void **state)
{
    (void)state;
    return fx_tmp_setup("backup-test");
}

static struct store *fresh_store(uint64_t tenant)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/d%d", fx_tmpbase, ++dir_seq);
    struct store_config cfg = {
        .backend = "lmdb", .data_dir = dir, .tenant = tenant, .lmdb_map_size = (size_t)256 << 20};
    struct store *s = NULL;
    struct err e = {0};
    if (store_open(&cfg, &s, &e) < 0)
        fail_msg("open: %s", e.msg);
    return s;
}

static void put(struct store *s, const void *k, size_t klen, const void *v, size_t vlen,
                int64_t ttl)
{
    struct err e = {0};
    if (store_put(s, k, klen, v, vlen, ttl, NULL, &e) < 0)
        fail_msg("put: %s", e.msg);
}

/* A source store with a mix of entries; returns how many are live. */
static size_t fill(struct store *s)
{
    struct err e = {0};
    char k[64];
    for (int i = 0; i < 2500; i++) {
        snprintf(k, sizeof k, "user/%05d", i);
        put(s, k, strlen(k), k, strlen(k), 0);
    }
    put(s, "at/ttl", 6, "tok", 3, 600000);
    put(s, "gone", 4, "x", 1, 1); /* expires before the export */
    const unsigned char bin[] = {'b', 0, 0xff, 0x80};
    put(s, bin, sizeof bin, bin, sizeof bin, 0);
    put(s, "empty", 5, NULL, 0, 0);
    unsigned char *big = malloc(STORE_VALUE_MAX);
    assert_non_null(big);
    for (size_t i = 0; i < STORE_VALUE_MAX; i++)
        big[i] = (unsigned char)(i * 31 + 7);
    put(s, "big", 3, big, STORE_VALUE_MAX, 0);
    free(big);
    char longkey[STORE_KEY_MAX];
    memset(longkey, 'L', sizeof longkey);
    put(s, longkey, sizeof longkey, "l", 1, 0);
    /* bump versions so they are not just 1..n */
    assert_int_equal(store_del(s, "user/00000", 10, 0, &e), 0);
    put(s, "user/00000", 10, "again", 5, 0);
    usleep(10 * 1000);
    return 2500 + 5;
}

struct collect {
    size_t n;
    struct store_entry *items;
};

static int collect_cb(const void *key, size_t klen, const struct store_value *v, struct err *e,
                      void *cbdata)
{
    (void)e;
    struct collect *c = cbdata;
    c->items = realloc(c->items, (c->n + 1) * sizeof *c->items);
    assert_non_null(c->items);
    struct store_entry *it = &c->items[c->n++];
    it->key = malloc(klen + 1);
    memcpy(it->key, key, klen);
    it->key[klen] = '\0';
    it->klen = klen;
    it->value = *v;
    it->value.data = malloc(v->len + 1);
    memcpy(it->value.data, v->data, v->len);
    return 0;
}

static void collect_release(struct collect *c)
{
    struct store_list l = {.items = c->items, .n = c->n};
    store_list_release(&l);
    memset(c, 0, sizeof *c);
}

static struct collect dump(struct store *s)
{
    struct collect c = {0};
    struct err e = {0};
    if (store_each(s, collect_cb, &c, &e) < 0)
        fail_msg("each: %s", e.msg);
    return c;
}

/* Same keys, bytes and expiry; same versions when @same_versions. */
static void assert_same(struct store *a, struct store *b, bool same_versions)
{
    struct collect ca = dump(a), cb = dump(b);
    assert_int_equal(ca.n, cb.n);
    for (size_t i = 0; i < ca.n; i++) {
        assert_int_equal(ca.items[i].klen, cb.items[i].klen);
        assert_memory_equal(ca.items[i].key, cb.items[i].key, ca.items[i].klen);
        assert_int_equal(ca.items[i].value.len, cb.items[i].value.len);
        assert_memory_equal(ca.items[i].value.data, cb.items[i].value.data, ca.items[i].value.len);
        assert_int_equal(ca.items[i].value.expires_at_ms, cb.items[i].value.expires_at_ms);
        if (same_versions)
            assert_int_equal(ca.items[i].value.version, cb.items[i].value.version);
    }
    collect_release(&ca);
    collect_release(&cb);
}

/* Exports @s into memory. */
static unsigned char *export_mem(struct store *s, size_t *ret_len, struct store_backup_stats *st)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct err e = {0};
    assert_non_null(f);
    if (store_export(s, f, st, &e) < 0)
        fail_msg("export: %s", e.msg);
    fclose(f);
    *ret_len = len;
    return (unsigned char *)buf;
}

static int import_mem(struct store *s, const unsigned char *buf, size_t len, unsigned flags,
                      struct store_backup_stats *st, struct err *e)
{
    FILE *f = fmemopen((void *)buf, len ? len : 1, "r");
    assert_non_null(f);
    if (len == 0)
        fgetc(f); /* fmemopen refuses size 0: read the one byte away */
    int r = store_import_backup(s, f, flags, st, e);
    fclose(f);
    return r;
}

static size_t count_keys(struct store *s)
{
    struct collect c = dump(s);
    size_t n = c.n;
    collect_release(&c);
    return n;
}

static void test_roundtrip(void **state)
{
    (void)state;
    struct err e = {0};
    struct store *src = fresh_store(1), *dst = fresh_store(5);
    size_t live = fill(src);
    struct store_backup_stats st = {0}, ist = {0};
    size_t len = 0;
    unsigned char *buf = export_mem(src, &len, &st);
    assert_int_equal(st.entries, live);
    assert_int_equal(st.bytes, len);
    assert_memory_equal(buf, STORE_BACKUP_MAGIC, strlen(STORE_BACKUP_MAGIC));

    assert_int_equal(import_mem(dst, buf, len, 0, &ist, &e), 0);
    assert_int_equal(ist.entries, live);
    assert_int_equal(ist.written, live);
    assert_int_equal(ist.skipped, 0);
    assert_same(src, dst, true);
    /* The version counter moved past the restored versions. */
    struct collect c = dump(dst);
    uint64_t max = 0, v = 0;
    for (size_t i = 0; i < c.n; i++)
        if (c.items[i].value.version > max)
            max = c.items[i].value.version;
    collect_release(&c);
    assert_int_equal(store_put(dst, "new", 3, "n", 1, 0, &v, &e), 0);
    assert_true(v > max);
    assert_int_equal(store_del(dst, "new", 3, 0, &e), 0);

    /* A second import into the now non-empty store is refused, and writes nothing. */
    assert_int_equal(import_mem(dst, buf, len, 0, NULL, &e), -E_EXISTS);
    /* Merge: keys in the file win, with new versions; other keys stay. */
    put(dst, "user/00001", 10, "changed", 7, 0);
    put(dst, "zz-only-here", 12, "x", 1, 0);
    assert_int_equal(import_mem(dst, buf, len, STORE_IMPORT_MERGE, &ist, &e), 0);
    struct store_value sv = {0};
    assert_int_equal(store_get(dst, "user/00001", 10, &sv, &e), 0);
    assert_memory_equal(sv.data, "user/00001", 10);
    assert_true(sv.version > max);
    store_value_release(&sv);
    assert_int_equal(store_get(dst, "zz-only-here", 12, &sv, &e), 0);
    store_value_release(&sv);
    assert_int_equal(store_del(dst, "zz-only-here", 12, 0, &e), 0);
    assert_same(src, dst, false);

    free(buf);
    store_close(src);
    store_close(dst);
}

static void test_empty_store(void **state)
{
    (void)state;
    struct err e = {0};
    struct store *src = fresh_store(1), *dst = fresh_store(1);
    size_t len = 0;
    struct store_backup_stats st = {0};
    unsigned char *buf = export_mem(src, &len, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(import_mem(dst, buf, len, 0, &st, &e), 0);
    assert_int_equal(st.entries, 0);
    assert_int_equal(count_keys(dst), 0);
    free(buf);
    store_close(src);
    store_close(dst);
}

static void test_damaged_files_refused(void **state)
{
    (void)state;
    struct err e = {0};
    struct store *src = fresh_store(1), *dst = fresh_store(1);
    for (int i = 0; i < 20; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%02d", i);
        put(src, k, strlen(k), "value", 5, 0);
    }
    size_t len = 0;
    struct store_backup_stats st = {0};
    unsigned char *buf = export_mem(src, &len, &st);
    unsigned char *bad = malloc(len + 16);
    assert_non_null(bad);

    /* Every truncation. */
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(bad, buf, cut);
        int r = import_mem(dst, bad, cut, 0, NULL, &e);
        if (r != -E_INVALID)
            fail_msg("cut at %zu: %d %s", cut, r, e.msg);
    }
    /* Every single flipped bit of a byte, byte by byte. */
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, buf, len);
        bad[i] ^= 0x10;
        int r = import_mem(dst, bad, len, 0, NULL, &e);
        if (r != -E_INVALID)
            fail_msg("flip at %zu: %d %s", i, r, e.msg);
    }
    /* Bytes after the end. */
    memcpy(bad, buf, len);
    bad[len] = '\n';
    assert_int_equal(import_mem(dst, bad, len + 1, 0, NULL, &e), -E_INVALID);
    assert_string_equal(e.msg, "backup has bytes after its end");
    /* Something else entirely. */
    assert_int_equal(import_mem(dst, (const unsigned char *)"hello\n", 6, 0, NULL, &e), -E_INVALID);
    assert_int_equal(count_keys(dst), 0);

    /* And the intact file still imports. */
    assert_int_equal(import_mem(dst, buf, len, 0, &st, &e), 0);
    assert_int_equal(st.written, 20);
    free(bad);
    free(buf);
    store_close(src);
    store_close(dst);
}

/* A well-formed file whose checksum is right but whose keys are out of order is refused. */
static void test_order_and_limits_checked(void **state)
{
    (void)state;
    struct err e = {0};
    struct store *src = fresh_store(1), *dst = fresh_store(1);
    put(src, "a", 1, "1", 1, 0);
    put(src, "b", 1, "2", 1, 0);
    size_t len = 0;
    struct store_backup_stats st = {0};
    unsigned char *buf = export_mem(src, &len, &st);
    /* Swap the two keys' single bytes, then recompute the checksum the way an export does. */
    size_t hdr_end =
        (size_t)((unsigned char *)memchr(buf + strlen(STORE_BACKUP_MAGIC), '\n', len) - buf) + 1;
    size_t k1 = hdr_end + 23, k2 = hdr_end + 23 + 1 + 1 + 23;
    assert_int_equal(buf[k1], 'a');
    assert_int_equal(buf[k2], 'b');
    buf[k1] = 'b';
    buf[k2] = 'a';
    unsigned int dlen = 0;
    EVP_Digest(buf, len - 32, buf + len - 32, &dlen, EVP_sha256(), NULL);
    assert_int_equal(import_mem(dst, buf, len, 0, NULL, &e), -E_INVALID);
    assert_non_null(strstr(e.msg, "out of order"));
    /* A key length of 0. */
    buf[k1] = 'a';
    buf[k2] = 'b';
    buf[hdr_end + 1] = 0;
    buf[hdr_end + 2] = 0;
    EVP_Digest(buf, len - 32, buf + len - 32, &dlen, EVP_sha256(), NULL);
    assert_int_equal(import_mem(dst, buf, len, 0, NULL, &e), -E_INVALID);
    assert_non_null(strstr(e.msg, "out of range"));
    assert_int_equal(count_keys(dst), 0);
    free(buf);
    store_close(src);
    store_close(dst);
}

static void test_expired_since_export_skipped(void **state)
{
    (void)state;
    struct err e = {0};
    struct store *src = fresh_store(1), *dst = fresh_store(1);
    put(src, "short", 5, "s", 1, 30);
    put(src, "long", 4, "l", 1, 600000);
    size_t len = 0;
    struct store_backup_stats st = {0};
    unsigned char *buf = export_mem(src, &len, &st);
    assert_int_equal(st.entries, 2);
    usleep(50 * 1000);
    assert_int_equal(import_mem(dst, buf, len, 0, &st, &e), 0);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.written, 1);
    assert_int_equal(st.skipped, 1);
    assert_int_equal(count_keys(dst), 1);
    free(buf);
    store_close(src);
    store_close(dst);
}

static void test_pipe_input_and_file(void **state)
{
    (void)state;
    struct err e = {0};
    struct store *src = fresh_store(1), *dst = fresh_store(1);
    fill(src);
    char path[600], cmd[700];
    snprintf(path, sizeof path, "%s/backup.bin", fx_tmpbase);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(store_export(src, f, NULL, &e), 0);
    fclose(f);
    snprintf(cmd, sizeof cmd, "cat '%s'", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    struct store_backup_stats st = {0};
    assert_int_equal(store_import_backup(dst, p, 0, &st, &e), 0);
    pclose(p);
    assert_same(src, dst, true);
    store_close(src);
    store_close(dst);
}

/* Backends without each/restore ops go through the generic scan/put paths. */
static void test_generic_fallbacks(void **state)
{
    (void)state;
    struct err e = {0};
    struct store *src = fresh_store(1), *dst = fresh_store(1);
    fill(src);
    static struct store_ops plain;
    const struct store_ops *src_ops = src->ops, *dst_ops = dst->ops;
    plain = *src_ops;
    plain.each = NULL;
    plain.restore = NULL;
    src->ops = &plain;
    dst->ops = &plain;
    size_t len = 0;
    struct store_backup_stats st = {0};
    unsigned char *buf = export_mem(src, &len, &st);
    assert_int_equal(import_mem(dst, buf, len, 0, &st, &e), 0);
    src->ops = src_ops;
    dst->ops = dst_ops;
    /* Bytes and keys equal; expiry is re-derived from a remaining TTL, so compare loosely. */
    struct collect ca = dump(src), cb = dump(dst);
    assert_int_equal(ca.n, cb.n);
    for (size_t i = 0; i < ca.n; i++) {
        assert_int_equal(ca.items[i].klen, cb.items[i].klen);
        assert_memory_equal(ca.items[i].key, cb.items[i].key, ca.items[i].klen);
        assert_int_equal(ca.items[i].value.len, cb.items[i].value.len);
        assert_memory_equal(ca.items[i].value.data, cb.items[i].value.data, ca.items[i].value.len);
        int64_t xa = ca.items[i].value.expires_at_ms, xb = cb.items[i].value.expires_at_ms;
        assert_true(xa == 0 ? xb == 0 : (xb >= xa - 5 && xb <= xa + 5));
    }
    collect_release(&ca);
    collect_release(&cb);
    free(buf);
    store_close(src);
    store_close(dst);
}

/* The export of one tenant holds only that tenant's keys. */
static void test_tenant_scope(void **state)
{
    (void)state;
    struct err e = {0};
    char dir[512];
    snprintf(dir, sizeof dir, "%s/shared", fx_tmpbase);
    struct store_config cfg = {.backend = "lmdb", .data_dir = dir, .tenant = 1};
    struct store *a = NULL, *b = NULL;
    assert_int_equal(store_open(&cfg, &a, &e), 0);
    cfg.tenant = 2;
    assert_int_equal(store_open(&cfg, &b, &e), 0);
    put(a, "k", 1, "a", 1, 0);
    put(b, "k", 1, "b", 1, 0);
    put(b, "k2", 2, "b", 1, 0);
    size_t len = 0;
    struct store_backup_stats st = {0};
    unsigned char *buf = export_mem(a, &len, &st);
    assert_int_equal(st.entries, 1);
    assert_non_null(memmem(buf, len, "tenant 1 ", 9));
    free(buf);
    store_close(a);
    store_close(b);
}

struct mover {
    struct store *s;
    volatile int stop;
    int errors;
};

/* Moves one marker between the first and the last key, always creating before deleting. */
static void *mover_thread(void *p)
{
    struct mover *m = p;
    struct err e = {0};
    while (!m->stop) {
        if (store_put(m->s, "a/0000", 6, "m", 1, 0, NULL, &e) < 0 ||
            store_del(m->s, "a/2999", 6, 0, &e) < 0 ||
            store_put(m->s, "a/2999", 6, "m", 1, 0, NULL, &e) < 0 ||
            store_del(m->s, "a/0000", 6, 0, &e) < 0)
            m->errors++;
    }
    return NULL;
}

static int count_markers(const void *key, size_t klen, const struct store_value *v, struct err *e,
                         void *cbdata)
{
    (void)e;
    size_t *n = cbdata;
    if (v->len == 1 && v->data[0] == 'm' && klen == 6)
        (*n)++;
    return 0;
}

/* An export is one snapshot: the marker is seen in every walk, however the writer races it. */
static void test_export_is_a_snapshot(void **state)
{
    (void)state;
    struct store *s = fresh_store(1);
    char k[16];
    for (int i = 1; i < 2999; i++) {
        snprintf(k, sizeof k, "a/%04d", i);
        put(s, k, strlen(k), "filler-filler-filler", 20, 0);
    }
    put(s, "a/2999", 6, "m", 1, 0);
    struct mover m = {.s = s};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, mover_thread, &m), 0);
    for (int i = 0; i < 200; i++) {
        size_t n = 0;
        struct err e = {0};
        assert_int_equal(store_each(s, count_markers, &n, &e), 0);
        assert_true(n == 1 || n == 2);
    }
    m.stop = 1;
    pthread_join(t, NULL);
    assert_int_equal(m.errors, 0);
    store_close(s);
}

/* --replace: the tenant becomes exactly the dump, versions included; other tenants stay. */
static void test_replace(void **state)
{
    (void)state;
    struct err e = {0};
    struct store *src = fresh_store(1), *dst = fresh_store(1);
    fill(src);
    size_t len = 0;
    struct store_backup_stats st = {0};
    unsigned char *buf = export_mem(src, &len, &st);
    put(dst, "zz-extra", 8, "x", 1, 0);
    put(dst, "user/00001", 10, "changed", 7, 0);
    assert_int_equal(import_mem(dst, buf, len, STORE_IMPORT_REPLACE | STORE_IMPORT_MERGE, NULL, &e),
                     -E_INVALID);
    assert_int_equal(count_keys(dst), 2);
    /* A damaged file leaves the store as it was: nothing cleared. */
    buf[len / 2] ^= 1;
    assert_int_equal(import_mem(dst, buf, len, STORE_IMPORT_REPLACE, NULL, &e), -E_INVALID);
    assert_int_equal(count_keys(dst), 2);
    buf[len / 2] ^= 1;
    assert_int_equal(import_mem(dst, buf, len, STORE_IMPORT_REPLACE, &st, &e), 0);
    assert_same(src, dst, true);

    /* The generic clear (no clear op) does the same, one tenant only. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/replace-shared", fx_tmpbase);
    struct store_config cfg = {.backend = "lmdb", .data_dir = dir, .tenant = 1};
    struct store *a = NULL, *b = NULL;
    assert_int_equal(store_open(&cfg, &a, &e), 0);
    cfg.tenant = 2;
    assert_int_equal(store_open(&cfg, &b, &e), 0);
    for (int i = 0; i < 2100; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%04d", i);
        put(a, k, strlen(k), "v", 1, 0);
    }
    put(b, "kb", 2, "v", 1, 0);
    static struct store_ops plain;
    const struct store_ops *a_ops = a->ops;
    plain = *a_ops;
    plain.clear = NULL;
    a->ops = &plain;
    assert_int_equal(store_clear(a, &e), 0);
    a->ops = a_ops;
    assert_int_equal(count_keys(a), 0);
    assert_int_equal(count_keys(b), 1);
    put(a, "k", 1, "v", 1, 0);
    assert_int_equal(store_clear(a, &e), 0);
    assert_int_equal(count_keys(a), 0);
    assert_int_equal(count_keys(b), 1);
    store_close(a);
    store_close(b);
    free(buf);
    store_close(src);
    store_close(dst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_empty_store),
        cmocka_unit_test(test_damaged_files_refused),
        cmocka_unit_test(test_order_and_limits_checked),
        cmocka_unit_test(test_expired_since_export_skipped),
        cmocka_unit_test(test_pipe_input_and_file),
        cmocka_unit_test(test_generic_fallbacks),
        cmocka_unit_test(test_tenant_scope),
        cmocka_unit_test(test_export_is_a_snapshot),
        cmocka_unit_test(test_replace),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, group_setup, fx_tmp_teardown);
}
