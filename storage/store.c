/* SPDX-License-Identifier: Apache-2.0 */
/* The store interface: argument checks shared by every backend, then the backend's vtable. */
#include "store.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

int64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int store_open(const struct store_config *cfg, struct store **ret, struct err *e)
{
    const char *b = cfg->backend ? cfg->backend : "lmdb";
    if (strcmp(b, "lmdb") == 0)
        return store_lmdb_open(cfg, ret, e);
    if (strcmp(b, "kdbnext") == 0)
        return store_kdbnext_open(cfg, ret, e);
    return err_set(e, -E_CONFIG, "unknown storage backend '%s' (lmdb or kdbnext)", b);
}

void store_close(struct store *s)
{
    if (s)
        s->ops->close(s);
}

static int check_key(const void *key, size_t klen, struct err *e)
{
    if (!key || klen == 0 || klen > STORE_KEY_MAX)
        return err_set(e, -E_INVALID, "key length %zu out of range", klen);
    return 0;
}

static int check_val(const void *val, size_t vlen, int64_t ttl_ms, struct err *e)
{
    if ((!val && vlen) || vlen > STORE_VALUE_MAX)
        return err_set(e, -E_TOOBIG, "value length %zu out of range", vlen);
    if (ttl_ms < 0)
        return err_set(e, -E_INVALID, "negative ttl");
    return 0;
}

int store_get(struct store *s, const void *key, size_t klen, struct store_value *ret, struct err *e)
{
    int r = check_key(key, klen, e);
    return r < 0 ? r : s->ops->get(s, key, klen, ret, e);
}

int store_put(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
              int64_t ttl_ms, uint64_t *ret_version, struct err *e)
{
    int r = check_key(key, klen, e);
    if (r == 0)
        r = check_val(val, vlen, ttl_ms, e);
    return r < 0 ? r : s->ops->put(s, key, klen, val, vlen, ttl_ms, ret_version, e);
}

int store_cas(struct store *s, const void *key, size_t klen, uint64_t expected_version,
              const void *val, size_t vlen, int64_t ttl_ms, uint64_t *ret_version, struct err *e)
{
    int r = check_key(key, klen, e);
    if (r == 0)
        r = check_val(val, vlen, ttl_ms, e);
    return r < 0 ? r
                 : s->ops->cas(s, key, klen, expected_version, val, vlen, ttl_ms, ret_version, e);
}

int store_del(struct store *s, const void *key, size_t klen, uint64_t expected_version,
              struct err *e)
{
    int r = check_key(key, klen, e);
    return r < 0 ? r : s->ops->del(s, key, klen, expected_version, e);
}

int store_scan(struct store *s, const void *prefix, size_t plen, const void *start_after,
               size_t salen, size_t limit, struct store_list *ret, struct err *e)
{
    if (plen > STORE_KEY_MAX || salen > STORE_KEY_MAX || (plen && !prefix) ||
        (salen && !start_after))
        return err_set(e, -E_INVALID, "scan prefix or cursor out of range");
    if (limit == 0 || limit > 1000)
        return err_set(e, -E_INVALID, "scan limit %zu out of range 1..1000", limit);
    return s->ops->scan(s, prefix, plen, start_after, salen, limit, ret, e);
}

int store_ping(struct store *s, struct err *e)
{
    return s->ops->ping(s, e);
}

int store_purge_expired(struct store *s, size_t *ret_purged, struct err *e)
{
    return s->ops->purge_expired(s, ret_purged, e);
}

void store_value_release(struct store_value *v)
{
    if (v->data) {
        OPENSSL_cleanse(v->data, v->len);
        free(v->data);
    }
    memset(v, 0, sizeof *v);
}

void store_list_release(struct store_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].key);
        store_value_release(&l->items[i].value);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

int store_each(struct store *s, store_each_cb cb, void *cbdata, struct err *e)
{
    if (s->ops->each)
        return s->ops->each(s, cb, cbdata, e);
    /* Generic: page through scan(); each page is consistent, the whole walk is not. */
    unsigned char after[STORE_KEY_MAX];
    size_t alen = 0;
    for (;;) {
        struct store_list l = {0};
        int r = store_scan(s, NULL, 0, alen ? after : NULL, alen, 1000, &l, e);
        if (r < 0)
            return r;
        for (size_t i = 0; i < l.n && r >= 0; i++) {
            if (l.items[i].klen == 0 || l.items[i].klen > STORE_KEY_MAX) {
                r = err_set(e, -E_INTERNAL, "backend returned a key of %zu bytes",
                            l.items[i].klen);
                break;
            }
            r = cb(l.items[i].key, l.items[i].klen, &l.items[i].value, e, cbdata);
            memcpy(after, l.items[i].key, l.items[i].klen);
            alen = l.items[i].klen;
        }
        bool more = l.more && l.n > 0;
        store_list_release(&l);
        if (r < 0)
            return r;
        if (!more)
            return 0;
    }
}

int store_restore(struct store *s, const struct store_entry *items, size_t n, bool keep_versions,
                  struct err *e)
{
    for (size_t i = 0; i < n; i++) {
        int r = check_key(items[i].key, items[i].klen, e);
        if (r == 0)
            r = check_val(items[i].value.data, items[i].value.len, 0, e);
        if (r == 0 && items[i].value.expires_at_ms < 0)
            r = err_set(e, -E_INVALID, "negative expiry");
        if (r < 0)
            return r;
    }
    if (s->ops->restore)
        return s->ops->restore(s, items, n, keep_versions, e);
    int64_t now = store_now_ms();
    for (size_t i = 0; i < n; i++) {
        const struct store_entry *it = &items[i];
        int64_t ttl = 0;
        if (it->value.expires_at_ms) {
            if (it->value.expires_at_ms <= now)
                continue;
            ttl = it->value.expires_at_ms - now;
        }
        int r = store_put(s, it->key, it->klen, it->value.data, it->value.len, ttl, NULL, e);
        if (r < 0)
            return r;
    }
    return 0;
}

int store_clear(struct store *s, struct err *e)
{
    if (s->ops->clear)
        return s->ops->clear(s, e);
    for (;;) {
        struct store_list l = {0};
        int r = store_scan(s, NULL, 0, NULL, 0, 1000, &l, e);
        if (r < 0)
            return r;
        for (size_t i = 0; i < l.n && r >= 0; i++) {
            r = store_del(s, l.items[i].key, l.items[i].klen, 0, e);
            if (r == -E_NOTFOUND) /* expired or deleted meanwhile */
                r = 0;
        }
        bool more = l.more;
        store_list_release(&l);
        if (r < 0)
            return r;
        if (!more)
            return 0;
    }
}
