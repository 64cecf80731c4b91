/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store: a small, blocking, thread-safe key-value interface with versions and TTLs, over
 * which every backend (LMDB embedded, kdb-next over gRPC) is a vtable.
 *
 * Every key lives in the store's one tenant namespace: nothing a caller does can reach another
 * tenant's keys. Keys are byte strings up to STORE_KEY_MAX; values up to STORE_VALUE_MAX.
 * Versions are positive, increase on every write of any key (so a deleted and re-created key
 * never repeats a version), and are what cas() compares. Expired entries are never returned.
 */
#ifndef STORAGE_STORE_H
#define STORAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define STORE_KEY_MAX 511
#define STORE_VALUE_MAX (1024 * 1024)

struct store;

/** One value read from the store. data is owned by the caller: store_value_release(). */
struct store_value {
    unsigned char *data;
    size_t len;
    uint64_t version;
    int64_t expires_at_ms; /* unix ms, 0 = never */
};

struct store_entry {
    char *key; /* NUL-terminated for convenience; klen excludes the NUL */
    size_t klen;
    struct store_value value;
};

/** A page of scan results, in ascending key order. Release with store_list_release(). */
struct store_list {
    struct store_entry *items;
    size_t n;
    bool more; /* more keys under the prefix after the last item */
};

/** Backend configuration; unused fields are ignored by a backend. */
struct store_config {
    const char *backend; /* "lmdb" or "kdbnext" */
    uint64_t tenant;     /* tenant namespace; lmdb default 1 */
    /* lmdb */
    const char *data_dir; /* folder of the LMDB file (created if missing) */
    size_t lmdb_map_size; /* bytes */
    bool read_only;
    /* kdbnext */
    const char *kdb_address; /* host:port */
    const char *kdb_tls_ca_file;
    const char *kdb_tls_cert_file;
    const char *kdb_tls_key_file;
    const char *kdb_token_file;
    int kdb_timeout_ms;
    bool kdb_plaintext;
};

/**
 * Called by store_each() for each live entry. @key and @v->data are borrowed: valid only during
 * the call, read-only. A negative return stops the walk and is returned by store_each().
 */
typedef int (*store_each_cb)(const void *key, size_t klen, const struct store_value *v,
                             struct err *e, void *cbdata);

struct store_ops {
    const char *name;
    int (*get)(struct store *s, const void *key, size_t klen, struct store_value *ret,
               struct err *e);
    int (*put)(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
               int64_t ttl_ms, uint64_t *ret_version, struct err *e);
    int (*cas)(struct store *s, const void *key, size_t klen, uint64_t expected_version,
               const void *val, size_t vlen, int64_t ttl_ms, uint64_t *ret_version, struct err *e);
    int (*del)(struct store *s, const void *key, size_t klen, uint64_t expected_version,
               struct err *e);
    int (*scan)(struct store *s, const void *prefix, size_t plen, const void *start_after,
                size_t salen, size_t limit, struct store_list *ret, struct err *e);
    int (*ping)(struct store *s, struct err *e);
    int (*purge_expired)(struct store *s, size_t *ret_purged, struct err *e);
    void (*close)(struct store *s);
    /* Optional (NULL = the generic fallback described at store_each / store_restore). */
    int (*each)(struct store *s, store_each_cb cb, void *cbdata, struct err *e);
    int (*restore)(struct store *s, const struct store_entry *items, size_t n, bool keep_versions,
                   struct err *e);
    int (*clear)(struct store *s, struct err *e);
};

/** The common head of every backend's struct store. */
struct store {
    const struct store_ops *ops;
    uint64_t tenant;
};

/**
 * Opens the backend named by @cfg->backend. Returns 0 and the store in *ret, or a negative
 * code (-E_CONFIG for a bad configuration, -E_IO / -E_UNAVAILABLE when it cannot be reached)
 * with a one-line reason in @e. Call from any thread; the store is then shared by all threads.
 */
int store_open(const struct store_config *cfg, struct store **ret, struct err *e);

/** Closes and frees @s (NULL allowed). No call may be in flight. */
void store_close(struct store *s);

/** Reads @key. -E_NOTFOUND when absent or expired. */
int store_get(struct store *s, const void *key, size_t klen, struct store_value *ret,
              struct err *e);

/** Writes @key unconditionally; @ttl_ms > 0 makes it expire. Sets *ret_version (may be NULL). */
int store_put(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
              int64_t ttl_ms, uint64_t *ret_version, struct err *e);

/**
 * Writes @key only when its current version is @expected_version (0 = the key must not exist
 * or be expired). -E_CONFLICT otherwise. This is what makes codes single-use.
 */
int store_cas(struct store *s, const void *key, size_t klen, uint64_t expected_version,
              const void *val, size_t vlen, int64_t ttl_ms, uint64_t *ret_version, struct err *e);

/**
 * Deletes @key; with @expected_version != 0 only when it matches (-E_CONFLICT otherwise).
 * Deleting an absent key is -E_NOTFOUND.
 */
int store_del(struct store *s, const void *key, size_t klen, uint64_t expected_version,
              struct err *e);

/**
 * Lists up to @limit (1..1000) live entries whose key starts with @prefix and sorts after
 * @start_after (NULL/0 for the first page), ascending.
 */
int store_scan(struct store *s, const void *prefix, size_t plen, const void *start_after,
               size_t salen, size_t limit, struct store_list *ret, struct err *e);

/** Checks the backend answers (used by /readyz and `check`). */
int store_ping(struct store *s, struct err *e);

/** Removes expired entries now (the server runs this periodically). */
int store_purge_expired(struct store *s, size_t *ret_purged, struct err *e);

/**
 * Calls @cb for every live entry of the tenant in ascending key order (backup export). A backend
 * with an `each` op walks one consistent snapshot (LMDB: one read transaction); otherwise this
 * pages through scan(), which is consistent per key only. Writers are not blocked either way.
 */
int store_each(struct store *s, store_each_cb cb, void *cbdata, struct err *e);

/**
 * Writes @n entries as a backup restore does: each item's key, value bytes and
 * value.expires_at_ms (absolute; an entry already expired is skipped). With @keep_versions the
 * items keep value.version (the version counter is raised past the largest, so later writes
 * still get new versions); otherwise each gets a fresh version. A backend with a `restore` op
 * writes in few durable transactions; otherwise this falls back to put() per item with the
 * remaining TTL and fresh versions. Not atomic as a whole: a failure can leave a prefix written.
 */
int store_restore(struct store *s, const struct store_entry *items, size_t n, bool keep_versions,
                  struct err *e);

/**
 * Deletes every key of the tenant (import-backup --replace); other tenants are untouched. A
 * backend with a `clear` op does it in one transaction (LMDB: mdb_drop); otherwise this deletes
 * page by page through scan() and del(). Writes racing it may survive it.
 */
int store_clear(struct store *s, struct err *e);

/** Frees what a get returned and zeroes @v. */
void store_value_release(struct store_value *v);

/** Frees a scan page and zeroes @l. */
void store_list_release(struct store_list *l);

/** Current wall-clock time in unix milliseconds (what TTLs are measured against). */
int64_t store_now_ms(void);

/* Backend constructors, called by store_open(). */
int store_lmdb_open(const struct store_config *cfg, struct store **ret, struct err *e);
int store_kdbnext_open(const struct store_config *cfg, struct store **ret, struct err *e);

#endif
