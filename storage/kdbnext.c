/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kdb-next backend: store.h over the kdbnext.v1.KV gRPC service
 * (storage/proto/kdbnext/v1/kv.proto), through one multiplexed channel (storage/grpc.c).
 *
 * Every call gets a deadline of kdbnext.timeout_ms, shared by its retries. A call is retried
 * (with a short jittered backoff, at most RETRIES_MAX times) only on -E_UNAVAILABLE and only
 * when a repeat cannot do harm: Get and Scan always; Put and unconditional Delete too (a
 * repeat leaves the same state); CompareAndSwap and Delete-with-version only when the
 * channel proves the request never reached the server, since a lost reply to an applied
 * compare-and-swap would turn its retry into a false conflict (or a double spend).
 *
 * Expiry is kdb-next's job (it drops expired entries by itself): purge_expired is a no-op.
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/cleanup.h"
#include "grpc.h"
#include "storage/kv.pb-c.h"

#define KDB_DEFAULT_PORT 18090
#define KDB_DEFAULT_TIMEOUT_MS 2000
#define KDB_PRESEEDED_MAX 1000000ULL
#define RETRIES_MAX 3
#define PING_KEY "\0koder-id-v2/ping"

struct kdb_store {
    struct store base;
    struct grpc_channel *ch;
    int timeout_ms;
};

static struct kdb_store *kdb(struct store *s)
{
    return (struct kdb_store *)s;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/*
 * Packs @req, calls @method until it succeeds, fails for good, or the deadline passes.
 * @idempotent: whether an UNAVAILABLE attempt that may have reached the server can be repeated.
 */
static int kdb_call(struct kdb_store *k, const char *method, const ProtobufCMessage *req,
                    bool idempotent, int timeout_ms, unsigned char **ret_msg, size_t *ret_len,
                    struct err *e)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    _cleanup_free_ unsigned char *buf = malloc(len ? len : 1);
    if (!buf)
        return err_set(e, -E_NOMEM, "out of memory");
    protobuf_c_message_pack(req, buf);
    int64_t deadline = grpc_now_ms() + timeout_ms;
    int r = 0;
    for (int attempt = 0;; attempt++) {
        struct grpc_call_info info;
        r = grpc_channel_call(k->ch, method, buf, len, deadline, ret_msg, ret_len, &info, e);
        if (r != -E_UNAVAILABLE || attempt >= RETRIES_MAX || !(idempotent || info.not_sent))
            break;
        int64_t step = 10LL << attempt;
        step = step / 2 + (int64_t)((unsigned)grpc_now_ms() * 2654435761u % (unsigned)step);
        if (grpc_now_ms() + step >= deadline)
            break;
        sleep_ms(step);
    }
    OPENSSL_cleanse(buf, len);
    return r;
}

#define UNPACK(type, fn, msg, len, e)                                                              \
    ({                                                                                             \
        type *_m = fn(NULL, (len), (msg));                                                         \
        if (!_m)                                                                                   \
            err_set((e), -E_IO, "kdb-next sent a response that does not unpack");                  \
        _m;                                                                                        \
    })

static int copy_value(const Kdbnext__V1__Entry *en, struct store_value *ret, struct err *e)
{
    if (en->value.len > STORE_VALUE_MAX || en->version == 0)
        return err_set(e, -E_IO, "kdb-next sent an entry out of range");
    unsigned char *d = malloc(en->value.len ? en->value.len : 1);
    if (!d)
        return err_set(e, -E_NOMEM, "out of memory");
    if (en->value.len)
        memcpy(d, en->value.data, en->value.len);
    *ret = (struct store_value){.data = d, .len = en->value.len, .version = en->version,
                                .expires_at_ms = en->expires_at_ms};
    return 0;
}

static int kdb_get(struct store *s, const void *key, size_t klen, struct store_value *ret,
                   struct err *e)
{
    Kdbnext__V1__GetRequest req = KDBNEXT__V1__GET_REQUEST__INIT;
    req.tenant_id = s->tenant;
    req.key = (ProtobufCBinaryData){klen, (uint8_t *)key};
    _cleanup_free_ unsigned char *msg = NULL;
    size_t mlen = 0;
    int r = kdb_call(kdb(s), "/kdbnext.v1.KV/Get", &req.base, true, kdb(s)->timeout_ms, &msg,
                     &mlen, e);
    if (r < 0)
        return r;
    Kdbnext__V1__GetResponse *resp =
        UNPACK(Kdbnext__V1__GetResponse, kdbnext__v1__get_response__unpack, msg, mlen, e);
    if (!resp)
        return -E_IO;
    if (!resp->entry)
        r = err_set(e, -E_IO, "kdb-next answered Get without an entry");
    else
        r = copy_value(resp->entry, ret, e);
    if (resp->entry && resp->entry->value.len)
        OPENSSL_cleanse(resp->entry->value.data, resp->entry->value.len);
    kdbnext__v1__get_response__free_unpacked(resp, NULL);
    OPENSSL_cleanse(msg, mlen);
    return r;
}

static int kdb_put(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
                   int64_t ttl_ms, uint64_t *ret_version, struct err *e)
{
    Kdbnext__V1__PutRequest req = KDBNEXT__V1__PUT_REQUEST__INIT;
    req.tenant_id = s->tenant;
    req.key = (ProtobufCBinaryData){klen, (uint8_t *)key};
    req.value = (ProtobufCBinaryData){vlen, (uint8_t *)val};
    req.ttl_ms = ttl_ms;
    _cleanup_free_ unsigned char *msg = NULL;
    size_t mlen = 0;
    int r = kdb_call(kdb(s), "/kdbnext.v1.KV/Put", &req.base, true, kdb(s)->timeout_ms, &msg,
                     &mlen, e);
    if (r < 0)
        return r;
    Kdbnext__V1__PutResponse *resp =
        UNPACK(Kdbnext__V1__PutResponse, kdbnext__v1__put_response__unpack, msg, mlen, e);
    if (!resp)
        return -E_IO;
    if (resp->version == 0)
        r = err_set(e, -E_IO, "kdb-next answered Put without a version");
    else if (ret_version)
        *ret_version = resp->version;
    kdbnext__v1__put_response__free_unpacked(resp, NULL);
    return r;
}

static int kdb_cas(struct store *s, const void *key, size_t klen, uint64_t expected_version,
                   const void *val, size_t vlen, int64_t ttl_ms, uint64_t *ret_version,
                   struct err *e)
{
    Kdbnext__V1__CompareAndSwapRequest req = KDBNEXT__V1__COMPARE_AND_SWAP_REQUEST__INIT;
    req.tenant_id = s->tenant;
    req.key = (ProtobufCBinaryData){klen, (uint8_t *)key};
    req.expected_version = expected_version;
    req.value = (ProtobufCBinaryData){vlen, (uint8_t *)val};
    req.ttl_ms = ttl_ms;
    _cleanup_free_ unsigned char *msg = NULL;
    size_t mlen = 0;
    int r = kdb_call(kdb(s), "/kdbnext.v1.KV/CompareAndSwap", &req.base, false,
                     kdb(s)->timeout_ms, &msg, &mlen, e);
    if (r < 0)
        return r;
    Kdbnext__V1__CompareAndSwapResponse *resp =
        UNPACK(Kdbnext__V1__CompareAndSwapResponse,
               kdbnext__v1__compare_and_swap_response__unpack, msg, mlen, e);
    if (!resp)
        return -E_IO;
    if (resp->version == 0)
        r = err_set(e, -E_IO, "kdb-next answered CompareAndSwap without a version");
    else if (ret_version)
        *ret_version = resp->version;
    kdbnext__v1__compare_and_swap_response__free_unpacked(resp, NULL);
    return r;
}

static int kdb_del(struct store *s, const void *key, size_t klen, uint64_t expected_version,
                   struct err *e)
{
    Kdbnext__V1__DeleteRequest req = KDBNEXT__V1__DELETE_REQUEST__INIT;
    req.tenant_id = s->tenant;
    req.key = (ProtobufCBinaryData){klen, (uint8_t *)key};
    req.expected_version = expected_version;
    _cleanup_free_ unsigned char *msg = NULL;
    size_t mlen = 0;
    return kdb_call(kdb(s), "/kdbnext.v1.KV/Delete", &req.base, expected_version == 0,
                    kdb(s)->timeout_ms, &msg, &mlen, e);
}

static bool has_prefix(const ProtobufCBinaryData *k, const void *prefix, size_t plen)
{
    return k->len >= plen && (plen == 0 || memcmp(k->data, prefix, plen) == 0);
}

/* memcmp order, shorter first on a tie: -1, 0, 1 */
static int key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int kdb_scan(struct store *s, const void *prefix, size_t plen, const void *start_after,
                    size_t salen, size_t limit, struct store_list *ret, struct err *e)
{
    Kdbnext__V1__ScanRequest req = KDBNEXT__V1__SCAN_REQUEST__INIT;
    req.tenant_id = s->tenant;
    req.prefix = (ProtobufCBinaryData){plen, (uint8_t *)prefix};
    req.start_after = (ProtobufCBinaryData){salen, (uint8_t *)start_after};
    req.limit = (uint32_t)limit;
    _cleanup_free_ unsigned char *msg = NULL;
    size_t mlen = 0;
    int r = kdb_call(kdb(s), "/kdbnext.v1.KV/Scan", &req.base, true, kdb(s)->timeout_ms, &msg,
                     &mlen, e);
    if (r < 0)
        return r;
    Kdbnext__V1__ScanResponse *resp =
        UNPACK(Kdbnext__V1__ScanResponse, kdbnext__v1__scan_response__unpack, msg, mlen, e);
    if (!resp)
        return -E_IO;
    struct store_list l = {0};
    if (resp->n_entries > limit) {
        r = err_set(e, -E_IO, "kdb-next returned %zu entries for a limit of %zu",
                    resp->n_entries, limit);
    } else if (resp->n_entries) {
        l.items = calloc(resp->n_entries, sizeof *l.items);
        if (!l.items)
            r = err_set(e, -E_NOMEM, "out of memory");
    }
    /* The server is checked, not trusted: every key must be under the prefix, after the
     * cursor and in ascending order, or the page is refused. */
    const void *prev = start_after;
    size_t prevlen = salen;
    for (size_t i = 0; r == 0 && i < resp->n_entries; i++) {
        const Kdbnext__V1__Entry *en = resp->entries[i];
        if (en->key.len == 0 || en->key.len > STORE_KEY_MAX || !has_prefix(&en->key, prefix, plen) ||
            key_cmp(en->key.data, en->key.len, prev, prevlen) <= 0) {
            r = err_set(e, -E_IO, "kdb-next returned a scan page out of order or range");
            break;
        }
        prev = en->key.data;
        prevlen = en->key.len;
        struct store_entry *it = &l.items[i];
        it->key = malloc(en->key.len + 1);
        if (!it->key) {
            r = err_set(e, -E_NOMEM, "out of memory");
            break;
        }
        memcpy(it->key, en->key.data, en->key.len);
        it->key[en->key.len] = 0;
        it->klen = en->key.len;
        l.n = i + 1;
        r = copy_value(en, &it->value, e);
    }
    l.more = resp->more;
    for (size_t i = 0; i < resp->n_entries; i++)
        if (resp->entries[i]->value.len)
            OPENSSL_cleanse(resp->entries[i]->value.data, resp->entries[i]->value.len);
    kdbnext__v1__scan_response__free_unpacked(resp, NULL);
    OPENSSL_cleanse(msg, mlen);
    if (r < 0) {
        store_list_release(&l);
        return r;
    }
    *ret = l;
    return 0;
}

static int kdb_ping(struct store *s, struct err *e)
{
    struct kdb_store *k = kdb(s);
    Kdbnext__V1__GetRequest req = KDBNEXT__V1__GET_REQUEST__INIT;
    req.tenant_id = s->tenant;
    req.key = (ProtobufCBinaryData){sizeof PING_KEY - 1, (uint8_t *)PING_KEY};
    _cleanup_free_ unsigned char *msg = NULL;
    size_t mlen = 0;
    int t = k->timeout_ms < 2000 ? k->timeout_ms : 2000;
    int r = kdb_call(k, "/kdbnext.v1.KV/Get", &req.base, true, t, &msg, &mlen, e);
    if (r == 0 || r == -E_NOTFOUND) {
        err_clear(e);
        return 0;
    }
    if (r == -E_PERMISSION) {
        char why[sizeof e->msg];
        snprintf(why, sizeof why, "%s", e ? e->msg : "");
        return err_set(e, r, "kdb-next refused the token or tenant: %s", why);
    }
    return r;
}

static int kdb_purge_expired(struct store *s, size_t *ret_purged, struct err *e)
{
    if (ret_purged)
        *ret_purged = 0;
    return 0;
}

static void kdb_close(struct store *s)
{
    struct kdb_store *k = kdb(s);
    grpc_channel_free(k->ch);
    free(k);
}

static const struct store_ops kdb_ops = {
    .name = "kdbnext",
    .get = kdb_get,
    .put = kdb_put,
    .cas = kdb_cas,
    .del = kdb_del,
    .scan = kdb_scan,
    .ping = kdb_ping,
    .purge_expired = kdb_purge_expired,
    .close = kdb_close,
};

int store_kdbnext_open(const struct store_config *cfg, struct store **ret, struct err *e)
{
    if (cfg->tenant == 0)
        return err_set(e, -E_CONFIG, "kdbnext.tenant is required (an id above %llu)",
                       KDB_PRESEEDED_MAX);
    if (cfg->tenant <= KDB_PRESEEDED_MAX)
        return err_set(e, -E_CONFIG,
                       "kdbnext.tenant %llu is in kdb-next's preseeded range 1..%llu, reserved "
                       "for kdb-next's own tenants: use an id above %llu",
                       (unsigned long long)cfg->tenant, KDB_PRESEEDED_MAX, KDB_PRESEEDED_MAX);
    if (!cfg->kdb_address || !*cfg->kdb_address)
        return err_set(e, -E_CONFIG, "kdbnext.address is required (host:port)");
    if (!cfg->kdb_token_file || !*cfg->kdb_token_file)
        return err_set(e, -E_CONFIG, "kdbnext.token_file is required");
    int timeout = cfg->kdb_timeout_ms ? cfg->kdb_timeout_ms : KDB_DEFAULT_TIMEOUT_MS;
    if (timeout < 10 || timeout > 600000)
        return err_set(e, -E_CONFIG, "kdbnext.timeout_ms %d out of range 10..600000",
                       cfg->kdb_timeout_ms);
    struct kdb_store *k = calloc(1, sizeof *k);
    if (!k)
        return err_set(e, -E_NOMEM, "out of memory");
    k->base.ops = &kdb_ops;
    k->base.tenant = cfg->tenant;
    k->timeout_ms = timeout;
    struct grpc_channel_config gc = {
        .address = cfg->kdb_address,
        .default_port = KDB_DEFAULT_PORT,
        .plaintext = cfg->kdb_plaintext,
        .ca_file = cfg->kdb_tls_ca_file,
        .cert_file = cfg->kdb_tls_cert_file,
        .key_file = cfg->kdb_tls_key_file,
        .token_file = cfg->kdb_token_file,
        .connect_timeout_ms = timeout < 3000 ? timeout : 3000,
    };
    int r = grpc_channel_new(&gc, &k->ch, e);
    if (r < 0) {
        free(k);
        return r;
    }
    *ret = &k->base;
    return 0;
}
