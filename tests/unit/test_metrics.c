/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for server/metrics.c: the text format as Prometheus reads it, histogram
 * invariants, labels from paths and grant types, counting from many threads at once, and the
 * timing decorator around a real (temporary LMDB) store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/metrics.h"

/* The value of the sample line that starts with @series (name and labels), or -1. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = eol ? eol + 1 : NULL;
    }
    return -1;
}

static char *render(void)
{
    struct buf b = BUF_INIT;
    assert_int_equal(metrics_render(&b), 0);
    return buf_detach(&b, NULL);
}

static void test_endpoint_and_grant_labels(void **state)
{
    (void)state;
#define EP(p) metrics_endpoint_of(p, strlen(p))
    assert_int_equal(EP("/.well-known/openid-configuration"), METRICS_EP_DISCOVERY);
    assert_int_equal(EP("/oauth/v2/keys"), METRICS_EP_JWKS);
    assert_int_equal(EP("/oauth/v2/authorize"), METRICS_EP_AUTHORIZE);
    assert_int_equal(EP("/oauth/v2/authorize/callback"), METRICS_EP_AUTHORIZE);
    assert_int_equal(EP("/oauth/v2/authorizeX"), METRICS_EP_OTHER);
    assert_int_equal(EP("/ui/login/login"), METRICS_EP_LOGIN);
    assert_int_equal(EP("/ui/loginx"), METRICS_EP_OTHER);
    assert_int_equal(EP("/oauth/v2/token"), METRICS_EP_TOKEN);
    assert_int_equal(EP("/oauth/v2/token/"), METRICS_EP_OTHER);
    assert_int_equal(EP("/oidc/v1/userinfo"), METRICS_EP_USERINFO);
    assert_int_equal(EP("/oauth/v2/introspect"), METRICS_EP_INTROSPECT);
    assert_int_equal(EP("/oauth/v2/revoke"), METRICS_EP_REVOKE);
    assert_int_equal(EP("/oidc/v1/end_session"), METRICS_EP_END_SESSION);
    assert_int_equal(EP("/healthz"), METRICS_EP_HEALTH);
    assert_int_equal(EP("/readyz"), METRICS_EP_HEALTH);
    assert_int_equal(EP("/metrics"), METRICS_EP_METRICS);
    assert_int_equal(EP("/"), METRICS_EP_OTHER);
    assert_int_equal(EP(""), METRICS_EP_OTHER);
    assert_int_equal(metrics_endpoint_of(NULL, 0), METRICS_EP_OTHER);
    /* the path length is what counts, not a NUL */
    assert_int_equal(metrics_endpoint_of("/oauth/v2/tokenXYZ", 15), METRICS_EP_TOKEN);
#undef EP
    assert_string_equal(metrics_endpoint_name(METRICS_EP_TOKEN), "token");
    assert_string_equal(metrics_endpoint_name((enum metrics_endpoint)999), "other");
    assert_int_equal(metrics_grant_of("authorization_code"), METRICS_GRANT_AUTHORIZATION_CODE);
    assert_int_equal(metrics_grant_of("refresh_token"), METRICS_GRANT_REFRESH_TOKEN);
    assert_int_equal(metrics_grant_of("client_credentials"), METRICS_GRANT_CLIENT_CREDENTIALS);
    assert_int_equal(metrics_grant_of("urn:ietf:params:oauth:grant-type:jwt-bearer"),
                     METRICS_GRANT_JWT_BEARER);
    assert_int_equal(metrics_grant_of("urn:ietf:params:oauth:grant-type:device_code"),
                     METRICS_GRANT_DEVICE_CODE);
    assert_int_equal(metrics_grant_of("password"), METRICS_GRANT_OTHER);
    assert_int_equal(metrics_grant_of(NULL), METRICS_GRANT_OTHER);
}

static void test_text_format(void **state)
{
    (void)state;
    metrics_reset();
    metrics_request(METRICS_EP_TOKEN, 200, 0.0004); /* first bucket */
    metrics_request(METRICS_EP_TOKEN, 200, 0.003);  /* le 0.005 */
    metrics_request(METRICS_EP_TOKEN, 400, 20.0);   /* only +Inf */
    metrics_request(METRICS_EP_DISCOVERY, 304, 0.0001);
    metrics_request(METRICS_EP_OTHER, 9999, -1); /* bad status and time are clamped */
    metrics_token_issued(METRICS_GRANT_AUTHORIZATION_CODE);
    metrics_token_issued(METRICS_GRANT_AUTHORIZATION_CODE);
    metrics_token_issued(METRICS_GRANT_CLIENT_CREDENTIALS);
    metrics_login_failure();
    metrics_store_call(METRICS_STORE_GET, 0.002, 0);
    metrics_store_call(METRICS_STORE_GET, 0.002, -E_NOTFOUND);
    metrics_store_call(METRICS_STORE_CAS, 0.002, -E_CONFLICT);
    metrics_store_call(METRICS_STORE_PUT, 0.2, -E_UNAVAILABLE);
    char *t = render();

    assert_true(sample(t, "koder_id_v2_http_requests_total{endpoint=\"token\",status=\"200\"}") ==
                2);
    assert_true(sample(t, "koder_id_v2_http_requests_total{endpoint=\"token\",status=\"400\"}") ==
                1);
    assert_true(
        sample(t, "koder_id_v2_http_requests_total{endpoint=\"discovery\",status=\"304\"}") == 1);
    assert_true(sample(t, "koder_id_v2_http_requests_total{endpoint=\"other\",status=\"0\"}") == 1);
    assert_true(sample(t, "koder_id_v2_http_requests_total{endpoint=\"jwks\",status=\"200\"}") ==
                -1);
    /* cumulative buckets; +Inf == _count; _sum in seconds */
    assert_true(
        sample(
            t,
            "koder_id_v2_http_request_duration_seconds_bucket{endpoint=\"token\",le=\"0.0005\"}") ==
        1);
    assert_true(
        sample(
            t,
            "koder_id_v2_http_request_duration_seconds_bucket{endpoint=\"token\",le=\"0.0025\"}") ==
        1);
    assert_true(
        sample(
            t,
            "koder_id_v2_http_request_duration_seconds_bucket{endpoint=\"token\",le=\"0.005\"}") ==
        2);
    assert_true(
        sample(t,
               "koder_id_v2_http_request_duration_seconds_bucket{endpoint=\"token\",le=\"10\"}") ==
        2);
    assert_true(
        sample(
            t,
            "koder_id_v2_http_request_duration_seconds_bucket{endpoint=\"token\",le=\"+Inf\"}") ==
        3);
    assert_true(sample(t, "koder_id_v2_http_request_duration_seconds_count{endpoint=\"token\"}") ==
                3);
    double sum = sample(t, "koder_id_v2_http_request_duration_seconds_sum{endpoint=\"token\"}");
    assert_true(sum > 20.0033 && sum < 20.0035);
    assert_true(sample(t, "koder_id_v2_http_request_duration_seconds_count{endpoint=\"jwks\"}") ==
                0);
    assert_true(sample(t, "koder_id_v2_tokens_issued_total{grant=\"authorization_code\"}") == 2);
    assert_true(sample(t, "koder_id_v2_tokens_issued_total{grant=\"client_credentials\"}") == 1);
    assert_true(sample(t, "koder_id_v2_tokens_issued_total{grant=\"refresh_token\"}") == 0);
    assert_true(sample(t, "koder_id_v2_login_failures_total") == 1);
    assert_true(sample(t, "koder_id_v2_store_calls_total{op=\"get\",result=\"ok\"}") == 1);
    assert_true(sample(t, "koder_id_v2_store_calls_total{op=\"get\",result=\"not_found\"}") == 1);
    assert_true(sample(t, "koder_id_v2_store_calls_total{op=\"cas\",result=\"conflict\"}") == 1);
    assert_true(sample(t, "koder_id_v2_store_calls_total{op=\"put\",result=\"error\"}") == 1);
    assert_true(
        sample(t, "koder_id_v2_store_call_duration_seconds_bucket{op=\"put\",le=\"0.1\"}") == 0);
    assert_true(
        sample(t, "koder_id_v2_store_call_duration_seconds_bucket{op=\"put\",le=\"0.25\"}") == 1);
    /* every family is announced once, before its samples */
    assert_non_null(strstr(t, "# TYPE koder_id_v2_http_request_duration_seconds histogram\n"));
    assert_non_null(strstr(t, "# TYPE koder_id_v2_tokens_issued_total counter\n"));
    assert_true(strstr(t, "# TYPE koder_id_v2_login_failures_total counter\n") <
                strstr(t, "koder_id_v2_login_failures_total 1\n"));
    /* no key age without a callback */
    assert_null(strstr(t, "signing_key_age_seconds"));
    free(t);
}

static int64_t key_created(void *cbdata)
{
    return *(int64_t *)cbdata;
}

static void test_key_age(void **state)
{
    (void)state;
    static int64_t created;
    created = (int64_t)time(NULL) - 3600;
    metrics_set_key_created_cb(key_created, &created);
    char *t = render();
    double age = sample(t, "koder_id_v2_signing_key_age_seconds");
    assert_true(age >= 3600 && age < 3700);
    free(t);
    created = 0; /* no key yet: no sample */
    t = render();
    assert_null(strstr(t, "koder_id_v2_signing_key_age_seconds "));
    free(t);
    metrics_set_key_created_cb(NULL, NULL);
}

#define THREADS 4
#define PER_THREAD 20000

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        metrics_request(METRICS_EP_JWKS, 200, 0.001);
        metrics_token_issued(METRICS_GRANT_REFRESH_TOKEN);
    }
    return NULL;
}

static void test_threads(void **state)
{
    pthread_t th[THREADS];
    (void)state;
    metrics_reset();
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    char *t = render();
    assert_true(sample(t, "koder_id_v2_http_requests_total{endpoint=\"jwks\",status=\"200\"}") ==
                THREADS * PER_THREAD);
    assert_true(sample(t, "koder_id_v2_http_request_duration_seconds_count{endpoint=\"jwks\"}") ==
                THREADS * PER_THREAD);
    assert_true(sample(t, "koder_id_v2_tokens_issued_total{grant=\"refresh_token\"}") ==
                THREADS * PER_THREAD);
    free(t);
}

static void test_store_decorator(void **state)
{
    char dir[] = "/tmp/test_metrics.XXXXXX";
    struct store *inner = NULL, *s = NULL;
    struct store_value v = {0};
    struct store_list l = {0};
    struct err e = {0};
    uint64_t ver = 0;
    (void)state;
    assert_non_null(mkdtemp(dir));
    struct store_config cfg = {
        .backend = "lmdb", .tenant = 1, .data_dir = dir, .lmdb_map_size = 16 << 20};
    assert_int_equal(store_open(&cfg, &inner, &e), 0);
    assert_int_equal(metrics_store_wrap(inner, &s, &e), 0);
    assert_int_equal(s->tenant, inner->tenant);
    metrics_reset();

    assert_int_equal(store_put(s, "k1", 2, "v", 1, 0, &ver, &e), 0);
    assert_int_equal(store_get(s, "k1", 2, &v, &e), 0);
    assert_int_equal(v.len, 1);
    store_value_release(&v);
    assert_int_equal(store_get(s, "nope", 4, &v, &e), -E_NOTFOUND);
    assert_int_equal(store_cas(s, "k1", 2, ver + 1000, "w", 1, 0, NULL, &e), -E_CONFLICT);
    assert_true(store_scan(s, "k", 1, NULL, 0, 10, &l, &e) >= 0);
    assert_int_equal(l.n, 1);
    store_list_release(&l);
    assert_int_equal(store_del(s, "k1", 2, 0, &e), 0);
    assert_int_equal(store_ping(s, &e), 0);
    /* backup walks and restores reach the backend's own ops, under its name */
    assert_string_equal(s->ops->name, "lmdb");
    assert_int_equal(s->ops->each != NULL, inner->ops->each != NULL);
    assert_int_equal(s->ops->restore != NULL, inner->ops->restore != NULL);
    assert_int_equal(s->ops->clear != NULL, inner->ops->clear != NULL);
    /* a call the interface refuses never reaches a backend, nor the decorator */
    assert_true(store_get(s, "", 0, &v, &e) < 0);

    char *t = render();
    assert_true(sample(t, "koder_id_v2_store_calls_total{op=\"put\",result=\"ok\"}") == 1);
    assert_true(sample(t, "koder_id_v2_store_calls_total{op=\"get\",result=\"ok\"}") == 1);
    assert_true(sample(t, "koder_id_v2_store_calls_total{op=\"get\",result=\"not_found\"}") == 1);
    assert_true(sample(t, "koder_id_v2_store_calls_total{op=\"get\",result=\"error\"}") == 0);
    assert_true(sample(t, "koder_id_v2_store_calls_total{op=\"cas\",result=\"conflict\"}") == 1);
    assert_true(sample(t, "koder_id_v2_store_calls_total{op=\"scan\",result=\"ok\"}") == 1);
    assert_true(sample(t, "koder_id_v2_store_calls_total{op=\"del\",result=\"ok\"}") == 1);
    assert_true(sample(t, "koder_id_v2_store_calls_total{op=\"ping\",result=\"ok\"}") == 1);
    assert_true(sample(t, "koder_id_v2_store_call_duration_seconds_count{op=\"get\"}") == 2);
    free(t);
    store_close(s); /* closes inner too */
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    cmocka_set_message_output(CM_OUTPUT_TAP);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoint_and_grant_labels),
        cmocka_unit_test(test_text_format),
        cmocka_unit_test(test_key_age),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_store_decorator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
