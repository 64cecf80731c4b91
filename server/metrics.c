/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metrics registry (see metrics.h): fixed arrays of relaxed atomic counters, rendered in
 * the Prometheus text format. A histogram keeps a count per bucket (not cumulative: one
 * atomic add per observation) and its sum in nanoseconds; rendering accumulates. A scrape
 * that races with recording may see a bucket a few observations behind another, which
 * Prometheus tolerates; the +Inf bucket and _count are the same number by construction.
 */
#include "server/metrics.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef KODER_ID_VERSION
#define KODER_ID_VERSION "unknown"
#endif

#define PREFIX "koder_id_v2_"
#define STATUS_MAX 600

static const double bucket_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                   0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static const char *const bucket_le_text[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                             "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                             "1",      "2.5",   "5",      "10"};
#define NBUCKETS (sizeof bucket_le / sizeof bucket_le[0])

struct hist {
    atomic_uint_fast64_t bucket[NBUCKETS + 1]; /* the last one is +Inf only */
    atomic_uint_fast64_t sum_ns;
};

enum store_result { RES_OK, RES_NOT_FOUND, RES_CONFLICT, RES_ERROR, RES__COUNT };

static struct {
    atomic_uint_fast64_t requests[METRICS_EP__COUNT][STATUS_MAX];
    struct hist request_seconds[METRICS_EP__COUNT];
    atomic_uint_fast64_t tokens[METRICS_GRANT__COUNT];
    atomic_uint_fast64_t login_failures;
    atomic_uint_fast64_t store_calls[METRICS_STORE__COUNT][RES__COUNT];
    struct hist store_seconds[METRICS_STORE__COUNT];
} m;

static _Atomic(metrics_key_created_cb) key_cb; /* zero: no callback (clang refuses NULL here) */
static void *_Atomic key_cbdata;

static const char *const ep_names[METRICS_EP__COUNT] = {
    [METRICS_EP_DISCOVERY] = "discovery",
    [METRICS_EP_JWKS] = "jwks",
    [METRICS_EP_AUTHORIZE] = "authorize",
    [METRICS_EP_LOGIN] = "login",
    [METRICS_EP_TOKEN] = "token",
    [METRICS_EP_USERINFO] = "userinfo",
    [METRICS_EP_INTROSPECT] = "introspect",
    [METRICS_EP_REVOKE] = "revoke",
    [METRICS_EP_END_SESSION] = "end_session",
    [METRICS_EP_DEVICE] = "device_authorization",
    [METRICS_EP_HEALTH] = "health",
    [METRICS_EP_METRICS] = "metrics",
    [METRICS_EP_OTHER] = "other",
};

static const char *const grant_names[METRICS_GRANT__COUNT] = {
    [METRICS_GRANT_AUTHORIZATION_CODE] = "authorization_code",
    [METRICS_GRANT_REFRESH_TOKEN] = "refresh_token",
    [METRICS_GRANT_CLIENT_CREDENTIALS] = "client_credentials",
    [METRICS_GRANT_JWT_BEARER] = "jwt_bearer",
    [METRICS_GRANT_TOKEN_EXCHANGE] = "token_exchange",
    [METRICS_GRANT_DEVICE_CODE] = "device_code",
    [METRICS_GRANT_OTHER] = "other",
};

static const char *const op_names[METRICS_STORE__COUNT] = {
    [METRICS_STORE_GET] = "get",
    [METRICS_STORE_PUT] = "put",
    [METRICS_STORE_CAS] = "cas",
    [METRICS_STORE_DEL] = "del",
    [METRICS_STORE_SCAN] = "scan",
    [METRICS_STORE_PING] = "ping",
    [METRICS_STORE_PURGE] = "purge_expired",
};

static const char *const result_names[RES__COUNT] = {"ok", "not_found", "conflict", "error"};

static bool path_is(const char *path, size_t len, const char *want)
{
    size_t n = strlen(want);
    return len == n && memcmp(path, want, n) == 0;
}

static bool path_under(const char *path, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(path, prefix, n) == 0 && (len == n || path[n] == '/');
}

enum metrics_endpoint metrics_endpoint_of(const char *path, size_t len)
{
    if (!path)
        return METRICS_EP_OTHER;
    if (path_is(path, len, "/.well-known/openid-configuration") ||
        path_is(path, len, "/.well-known/oauth-authorization-server"))
        return METRICS_EP_DISCOVERY;
    if (path_is(path, len, "/oauth/v2/keys"))
        return METRICS_EP_JWKS;
    if (path_under(path, len, "/oauth/v2/authorize"))
        return METRICS_EP_AUTHORIZE;
    if (path_under(path, len, "/ui/login"))
        return METRICS_EP_LOGIN;
    if (path_is(path, len, "/oauth/v2/token"))
        return METRICS_EP_TOKEN;
    if (path_is(path, len, "/oidc/v1/userinfo"))
        return METRICS_EP_USERINFO;
    if (path_is(path, len, "/oauth/v2/introspect"))
        return METRICS_EP_INTROSPECT;
    if (path_is(path, len, "/oauth/v2/revoke"))
        return METRICS_EP_REVOKE;
    if (path_is(path, len, "/oidc/v1/end_session"))
        return METRICS_EP_END_SESSION;
    if (path_is(path, len, "/oauth/v2/device_authorization"))
        return METRICS_EP_DEVICE;
    if (path_is(path, len, "/healthz") || path_is(path, len, "/readyz"))
        return METRICS_EP_HEALTH;
    if (path_is(path, len, "/metrics"))
        return METRICS_EP_METRICS;
    return METRICS_EP_OTHER;
}

const char *metrics_endpoint_name(enum metrics_endpoint ep)
{
    return (unsigned)ep < METRICS_EP__COUNT ? ep_names[ep] : "other";
}

enum metrics_grant metrics_grant_of(const char *g)
{
    if (!g)
        return METRICS_GRANT_OTHER;
    if (strcmp(g, "authorization_code") == 0)
        return METRICS_GRANT_AUTHORIZATION_CODE;
    if (strcmp(g, "refresh_token") == 0)
        return METRICS_GRANT_REFRESH_TOKEN;
    if (strcmp(g, "client_credentials") == 0)
        return METRICS_GRANT_CLIENT_CREDENTIALS;
    if (strcmp(g, "urn:ietf:params:oauth:grant-type:jwt-bearer") == 0)
        return METRICS_GRANT_JWT_BEARER;
    if (strcmp(g, "urn:ietf:params:oauth:grant-type:token-exchange") == 0)
        return METRICS_GRANT_TOKEN_EXCHANGE;
    if (strcmp(g, "urn:ietf:params:oauth:grant-type:device_code") == 0)
        return METRICS_GRANT_DEVICE_CODE;
    return METRICS_GRANT_OTHER;
}

static void hist_observe(struct hist *h, double seconds)
{
    size_t i = 0;
    if (!(seconds >= 0)) /* also NaN */
        seconds = 0;
    while (i < NBUCKETS && seconds > bucket_le[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    uint64_t ns = seconds > 1e6 ? (uint64_t)1e15 : (uint64_t)(seconds * 1e9);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

void metrics_request(enum metrics_endpoint ep, int status, double seconds)
{
    if ((unsigned)ep >= METRICS_EP__COUNT)
        ep = METRICS_EP_OTHER;
    if (status < 100 || status >= STATUS_MAX)
        status = 0;
    atomic_fetch_add_explicit(&m.requests[ep][status], 1, memory_order_relaxed);
    hist_observe(&m.request_seconds[ep], seconds);
}

void metrics_token_issued(enum metrics_grant grant)
{
    if ((unsigned)grant >= METRICS_GRANT__COUNT)
        grant = METRICS_GRANT_OTHER;
    atomic_fetch_add_explicit(&m.tokens[grant], 1, memory_order_relaxed);
}

void metrics_login_failure(void)
{
    atomic_fetch_add_explicit(&m.login_failures, 1, memory_order_relaxed);
}

void metrics_store_call(enum metrics_store_op op, double seconds, int result)
{
    enum store_result r = result >= 0             ? RES_OK
                          : result == -E_NOTFOUND ? RES_NOT_FOUND
                          : result == -E_CONFLICT ? RES_CONFLICT
                                                  : RES_ERROR;
    if ((unsigned)op >= METRICS_STORE__COUNT)
        return;
    atomic_fetch_add_explicit(&m.store_calls[op][r], 1, memory_order_relaxed);
    hist_observe(&m.store_seconds[op], seconds);
}

void metrics_set_key_created_cb(metrics_key_created_cb cb, void *cbdata)
{
    atomic_store(&key_cbdata, cbdata);
    atomic_store(&key_cb, cb);
}

void metrics_reset(void)
{
    memset(&m, 0, sizeof m);
}

static uint64_t load(atomic_uint_fast64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

static int render_hist(struct buf *out, const char *name, const char *label, const char *value,
                       struct hist *h)
{
    uint64_t cum = 0;
    int r = 0;
    for (size_t i = 0; i < NBUCKETS && r == 0; i++) {
        cum += load(&h->bucket[i]);
        r = buf_addf(out, PREFIX "%s_bucket{%s=\"%s\",le=\"%s\"} %llu\n", name, label, value,
                     bucket_le_text[i], (unsigned long long)cum);
    }
    cum += load(&h->bucket[NBUCKETS]);
    if (r == 0)
        r = buf_addf(out,
                     PREFIX "%s_bucket{%s=\"%s\",le=\"+Inf\"} %llu\n" PREFIX
                            "%s_sum{%s=\"%s\"} %.9f\n" PREFIX "%s_count{%s=\"%s\"} %llu\n",
                     name, label, value, (unsigned long long)cum, name, label, value,
                     (double)load(&h->sum_ns) / 1e9, name, label, value, (unsigned long long)cum);
    return r;
}

static int head(struct buf *out, const char *name, const char *type, const char *help)
{
    return buf_addf(out, "# HELP " PREFIX "%s %s\n# TYPE " PREFIX "%s %s\n", name, help, name,
                    type);
}

int metrics_render(struct buf *out)
{
    int r = 0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);

    r |= head(out, "build_info", "gauge", "The running version.");
    r |= buf_addf(out, PREFIX "build_info{version=\"%s\"} 1\n", KODER_ID_VERSION);

    r |= head(out, "http_requests_total", "counter",
              "HTTP requests answered, by endpoint and status (status 0: not sent).");
    for (int ep = 0; ep < METRICS_EP__COUNT; ep++)
        for (int st = 0; st < STATUS_MAX; st++) {
            uint64_t n = load(&m.requests[ep][st]);
            if (n)
                r |= buf_addf(out,
                              PREFIX "http_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n",
                              ep_names[ep], st, (unsigned long long)n);
        }

    r |= head(out, "http_request_duration_seconds", "histogram",
              "Time from a request's arrival to its answer, by endpoint.");
    for (int ep = 0; ep < METRICS_EP__COUNT; ep++)
        r |= render_hist(out, "http_request_duration_seconds", "endpoint", ep_names[ep],
                         &m.request_seconds[ep]);

    r |= head(out, "tokens_issued_total", "counter",
              "Token responses that issued tokens, by grant.");
    for (int g = 0; g < METRICS_GRANT__COUNT; g++)
        r |= buf_addf(out, PREFIX "tokens_issued_total{grant=\"%s\"} %llu\n", grant_names[g],
                      (unsigned long long)load(&m.tokens[g]));

    r |= head(out, "login_failures_total", "counter",
              "Failed sign-in attempts (wrong password, unknown user, throttled).");
    r |= buf_addf(out, PREFIX "login_failures_total %llu\n",
                  (unsigned long long)load(&m.login_failures));

    r |= head(out, "store_calls_total", "counter",
              "Store calls by operation and result (error: the backend failed).");
    for (int op = 0; op < METRICS_STORE__COUNT; op++)
        for (int res = 0; res < RES__COUNT; res++)
            r |= buf_addf(out, PREFIX "store_calls_total{op=\"%s\",result=\"%s\"} %llu\n",
                          op_names[op], result_names[res],
                          (unsigned long long)load(&m.store_calls[op][res]));

    r |= head(out, "store_call_duration_seconds", "histogram", "Store call latency, by operation.");
    for (int op = 0; op < METRICS_STORE__COUNT; op++)
        r |= render_hist(out, "store_call_duration_seconds", "op", op_names[op],
                         &m.store_seconds[op]);

    metrics_key_created_cb cb = atomic_load(&key_cb);
    if (cb) {
        int64_t created = cb(atomic_load(&key_cbdata));
        if (created > 0) {
            r |= head(out, "signing_key_age_seconds", "gauge",
                      "Age of the key that signs tokens now.");
            r |= buf_addf(out, PREFIX "signing_key_age_seconds %lld\n",
                          (long long)(now.tv_sec - created));
        }
    }
    return r ? -E_NOMEM : 0;
}

/* --- the timing decorator around a store --- */

struct timed_store {
    struct store base;
    struct store *inner;
    struct store_ops ops; /* timed_ops under the inner backend's name */
};

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

#define TIMED(op, call)                                                                            \
    do {                                                                                           \
        struct timespec t0_;                                                                       \
        clock_gettime(CLOCK_MONOTONIC, &t0_);                                                      \
        int r_ = call;                                                                             \
        metrics_store_call(op, seconds_since(&t0_), r_);                                           \
        return r_;                                                                                 \
    } while (0)

#define INNER (((struct timed_store *)s)->inner)

static int t_get(struct store *s, const void *key, size_t klen, struct store_value *ret,
                 struct err *e)
{
    TIMED(METRICS_STORE_GET, store_get(INNER, key, klen, ret, e));
}

static int t_put(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
                 int64_t ttl_ms, uint64_t *ret_version, struct err *e)
{
    TIMED(METRICS_STORE_PUT, store_put(INNER, key, klen, val, vlen, ttl_ms, ret_version, e));
}

static int t_cas(struct store *s, const void *key, size_t klen, uint64_t expected, const void *val,
                 size_t vlen, int64_t ttl_ms, uint64_t *ret_version, struct err *e)
{
    TIMED(METRICS_STORE_CAS,
          store_cas(INNER, key, klen, expected, val, vlen, ttl_ms, ret_version, e));
}

static int t_del(struct store *s, const void *key, size_t klen, uint64_t expected, struct err *e)
{
    TIMED(METRICS_STORE_DEL, store_del(INNER, key, klen, expected, e));
}

static int t_scan(struct store *s, const void *prefix, size_t plen, const void *start_after,
                  size_t salen, size_t limit, struct store_list *ret, struct err *e)
{
    TIMED(METRICS_STORE_SCAN, store_scan(INNER, prefix, plen, start_after, salen, limit, ret, e));
}

static int t_ping(struct store *s, struct err *e)
{
    TIMED(METRICS_STORE_PING, store_ping(INNER, e));
}

static int t_purge(struct store *s, size_t *ret_purged, struct err *e)
{
    TIMED(METRICS_STORE_PURGE, store_purge_expired(INNER, ret_purged, e));
}

/* Backup walks and restores: forwarded untimed, so the inner backend's snapshot and bulk
 * writes are kept (store_each/store_restore/store_clear fall back to slower, weaker paths
 * when these are NULL). */
static int t_each(struct store *s, store_each_cb cb, void *cbdata, struct err *e)
{
    return store_each(INNER, cb, cbdata, e);
}

static int t_restore(struct store *s, const struct store_entry *items, size_t n, bool keep_versions,
                     struct err *e)
{
    return store_restore(INNER, items, n, keep_versions, e);
}

static int t_clear(struct store *s, struct err *e)
{
    return store_clear(INNER, e);
}

static void t_close(struct store *s)
{
    store_close(INNER);
    free(s);
}

static const struct store_ops timed_ops = {
    .name = "timed",
    .get = t_get,
    .put = t_put,
    .cas = t_cas,
    .del = t_del,
    .scan = t_scan,
    .ping = t_ping,
    .purge_expired = t_purge,
    .close = t_close,
    .each = t_each,
    .restore = t_restore,
    .clear = t_clear,
};

int metrics_store_wrap(struct store *inner, struct store **ret, struct err *e)
{
    struct timed_store *ts = calloc(1, sizeof *ts);
    if (!ts)
        return err_set(e, -E_NOMEM, "out of memory");
    ts->ops = timed_ops;
    ts->ops.name = inner->ops->name;
    ts->base.ops = &ts->ops;
    ts->base.tenant = inner->tenant;
    ts->inner = inner;
    *ret = &ts->base;
    return 0;
}
