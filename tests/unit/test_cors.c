/* SPDX-License-Identifier: Apache-2.0 */
/* oidc/cors.c: origins of registered URIs (RFC 6454 serialization), the allowed-origin set
 * against hostile Origin headers, the set rebuilt from a real LMDB store, readers racing a
 * rebuild, and which endpoints answer CORS at all. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture_tmp.h"
#include "oidc/cors.h"
#include "oidc/discovery.h"
#include "storage/repo.h"

static int setup(void **state)
{
    (void)state;
    return fx_tmp_setup("cors-test");
}

static void origin_is(const char *uri, const char *want)
{
    char out[OIDC_CORS_ORIGIN_MAX];
    int n = oidc_cors_origin_of(uri, out);
    if (!want) {
        if (n >= 0)
            fail_msg("'%s' gave origin '%s', wanted none", uri ? uri : "(null)", out);
        return;
    }
    if (n < 0)
        fail_msg("'%s' gave no origin, wanted '%s'", uri, want);
    assert_string_equal(out, want);
    assert_int_equal(n, (int)strlen(want));
}

static void test_origin_of(void **state)
{
    (void)state;
    origin_is("https://app.example.com/cb", "https://app.example.com");
    origin_is("https://App.Example.COM/Cb?x=1", "https://app.example.com");
    origin_is("HTTPS://APP.EXAMPLE.COM/cb", "https://app.example.com");
    origin_is("https://app.example.com:443/cb", "https://app.example.com");
    origin_is("http://app.example.com:80/cb", "http://app.example.com");
    origin_is("http://app.example.com:443/cb", "http://app.example.com:443");
    origin_is("https://app.example.com:80/cb", "https://app.example.com:80");
    origin_is("https://app.example.com:8443/", "https://app.example.com:8443");
    origin_is("https://app.example.com/", "https://app.example.com");
    origin_is("https://app.example.com", "https://app.example.com");
    origin_is("http://127.0.0.1/callback", "http://127.0.0.1");
    origin_is("http://localhost:3000/cb", "http://localhost:3000");
    origin_is("http://[::1]:3000/cb", "http://[::1]:3000");
    /* A dev-mode glob whose wildcards are all in the path still has one origin. */
    origin_is("https://app.example.com/**", "https://app.example.com");
    /* Nothing a browser would send as Origin, or not safely an origin at all. */
    origin_is("https://app.example@evil.com/cb", NULL);
    origin_is("https://user:pw@app.example.com/cb", NULL);
    origin_is("https://app.example.com\\@evil.com/", NULL);
    origin_is("https://app.example.com#x", NULL);
    origin_is("https://*.example.com/cb", NULL);
    origin_is("http://localhost:*/cb", NULL);
    origin_is("https://app.example.com:0/", NULL);
    origin_is("https://app.example.com:65536/", NULL);
    origin_is("https://app.example.com:/", NULL);
    origin_is("com.example.app:/cb", NULL);
    origin_is("myapp://callback", NULL);
    origin_is("ftp://files.example.com/", NULL);
    origin_is("null", NULL);
    origin_is("*", NULL);
    origin_is("", NULL);
    origin_is(NULL, NULL);
    origin_is("https://b\xc3\xbc"
              "cher.example/",
              NULL);
    origin_is("https:///cb", NULL);
    origin_is("https://app.example.com /cb", NULL);
    char long_host[400];
    memset(long_host, 'a', sizeof long_host);
    memcpy(long_host, "https://", 8);
    long_host[sizeof long_host - 1] = '\0';
    origin_is(long_host, NULL);
}

static const char *const registered[] = {
    "https://app.example.com/cb",
    "https://App.Example.com/other", /* the same origin twice */
    "https://spa.example.org:8443",
    "http://localhost:3000/cb",
    "http://127.0.0.1/callback", /* a native app's loopback redirect */
    "https://*.dev.example/cb",  /* dev-mode glob host: no origin */
    "com.example.app:/cb",       /* custom scheme: no origin */
    "https://victim.example@evil.example/cb",
};

static bool allowed(struct oidc_cors *c, const char *o)
{
    return oidc_cors_allowed(c, o, strlen(o));
}

static void test_allowed_hostile(void **state)
{
    struct oidc_cors *c = NULL;
    struct err e = {0};
    (void)state;
    assert_int_equal(oidc_cors_new(&c, &e), 0);
    assert_false(allowed(c, "https://app.example.com")); /* empty until loaded */
    assert_int_equal(oidc_cors_set(c, registered, sizeof registered / sizeof *registered, &e), 0);

    assert_true(allowed(c, "https://app.example.com"));
    assert_true(allowed(c, "https://spa.example.org:8443"));
    assert_true(allowed(c, "http://localhost:3000"));
    assert_true(allowed(c, "http://127.0.0.1"));

    static const char *const refused[] = {
        "https://app.example.com/",    /* not a serialized origin */
        "HTTPS://APP.EXAMPLE.COM",     /* browsers send lower case */
        "https://App.Example.com",     /* idem */
        "https://app.example.com:443", /* browsers drop the default port */
        "http://app.example.com",      /* another scheme */
        "https://app.example.com.evil.com",
        "https://app.example.evil.com",
        "https://app.example@evil.com",
        "https://evil.example",
        "https://evil.example:443",
        "https://victim.example",
        "https://app.example.co",
        "https://app.example.comm",
        "https://spa.example.org", /* the registered port matters */
        "https://spa.example.org:8444",
        "http://localhost:3001",
        "http://localhost",
        "http://127.0.0.1:5555", /* loopback: the registered port only */
        "https://x.dev.example",
        "https://.dev.example",
        "null",
        "*",
        "",
        " https://app.example.com",
        "https://app.example.com ",
        "https://b\xc3\xbc"
        "cher.example",
        "com.example.app:",
        "file://",
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        if (allowed(c, refused[i]))
            fail_msg("'%s' allowed", refused[i]);

    /* Length is what counts: a NUL inside the header does not cut it short. */
    static const char nul[] = "https://app.example.com\0.evil.com";
    assert_false(oidc_cors_allowed(c, nul, sizeof nul - 1));
    assert_false(oidc_cors_allowed(c, "https://app.example.com", 0));
    assert_false(oidc_cors_allowed(c, NULL, 5));
    assert_false(oidc_cors_allowed(NULL, "https://app.example.com", 23));

    /* A very long Origin is refused before it is hashed, whatever its prefix. */
    size_t big = 100000;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, 'a', big);
    memcpy(huge, "https://app.example.com", 23);
    huge[big] = '\0';
    assert_false(oidc_cors_allowed(c, huge, big));
    assert_false(oidc_cors_allowed(c, huge, OIDC_CORS_ORIGIN_MAX));
    free(huge);

    /* A new set replaces the old one whole. */
    static const char *const other[] = {"https://new.example/cb"};
    assert_int_equal(oidc_cors_set(c, other, 1, &e), 0);
    assert_true(allowed(c, "https://new.example"));
    assert_false(allowed(c, "https://app.example.com"));
    assert_int_equal(oidc_cors_set(c, NULL, 0, &e), 0);
    assert_false(allowed(c, "https://new.example"));
    oidc_cors_free(c);
    oidc_cors_free(NULL);
}

/* Many origins: every member found, near misses not (the table's probing). */
static void test_many(void **state)
{
    enum { N = 5000 };
    struct oidc_cors *c = NULL;
    struct err e = {0};
    char(*uris)[64] = calloc(N, sizeof *uris);
    const char **ptrs = calloc(N, sizeof *ptrs);
    (void)state;
    assert_non_null(uris);
    assert_non_null(ptrs);
    for (size_t i = 0; i < N; i++) {
        snprintf(uris[i], sizeof uris[i], "https://app%zu.example.com/cb", i);
        ptrs[i] = uris[i];
    }
    assert_int_equal(oidc_cors_new(&c, &e), 0);
    assert_int_equal(oidc_cors_set(c, ptrs, N, &e), 0);
    char o[64];
    for (size_t i = 0; i < N; i++) {
        snprintf(o, sizeof o, "https://app%zu.example.com", i);
        assert_true(allowed(c, o));
        snprintf(o, sizeof o, "https://app%zu.example.com", i + N);
        assert_false(allowed(c, o));
    }
    oidc_cors_free(c);
    free(uris);
    free(ptrs);
}

static struct store *open_store(void)
{
    struct store_config sc = {
        .backend = "lmdb", .tenant = 1, .data_dir = fx_tmpbase, .lmdb_map_size = 64 << 20};
    struct store *s = NULL;
    struct err e = {0};
    assert_int_equal(store_open(&sc, &s, &e), 0);
    return s;
}

static void put_client(struct store *s, const char *id, int state, const char *redirect,
                       const char *origin)
{
    Koderid__V2__Client c = KODERID__V2__CLIENT__INIT;
    char *ru[1] = {(char *)redirect}, *ao[1] = {(char *)origin};
    struct err e = {0};
    c.client_id = (char *)id;
    c.project_id = "p1";
    c.state = state;
    c.n_redirect_uris = 1;
    c.redirect_uris = ru;
    c.n_additional_origins = origin ? 1 : 0;
    c.additional_origins = ao;
    assert_int_equal(repo_client_put(s, &c, &e), 0);
}

/* Rebuilt from the store: active clients only, additional origins, a record that does not
 * unpack skipped, several scan pages, and a client added later seen on the next reload. */
static void test_reload_from_store(void **state)
{
    struct store *s = open_store();
    struct oidc_cors *c = NULL;
    struct err e = {0};
    size_t n = 0;
    (void)state;
    put_client(s, "web", 1, "https://rp.example/cb", "https://spa.example:8443/");
    put_client(s, "off", 2, "https://inactive.example/cb", "https://inactive2.example");
    assert_int_equal(store_put(s, "client/bad", 10, "\xff\xff\xff", 3, 0, NULL, &e), 0);

    /* 1100 more clients in one batch: three scan pages. */
    enum { MANY = 1100 };
    struct store_entry *items = calloc(MANY, sizeof *items);
    assert_non_null(items);
    for (size_t i = 0; i < MANY; i++) {
        char key[64], id[32], uri[64];
        snprintf(id, sizeof id, "m%04zu", i);
        snprintf(key, sizeof key, "client/%s", id);
        snprintf(uri, sizeof uri, "https://m%zu.example/cb", i);
        Koderid__V2__Client cl = KODERID__V2__CLIENT__INIT;
        char *ru[1] = {uri};
        cl.client_id = id;
        cl.state = 1;
        cl.n_redirect_uris = 1;
        cl.redirect_uris = ru;
        size_t len = koderid__v2__client__get_packed_size(&cl);
        items[i].key = strdup(key);
        items[i].klen = strlen(key);
        items[i].value.data = malloc(len);
        assert_non_null(items[i].value.data);
        items[i].value.len = koderid__v2__client__pack(&cl, items[i].value.data);
    }
    assert_int_equal(store_restore(s, items, MANY, false, &e), 0);
    for (size_t i = 0; i < MANY; i++) {
        free(items[i].key);
        free(items[i].value.data);
    }
    free(items);

    assert_int_equal(oidc_cors_new(&c, &e), 0);
    assert_int_equal(oidc_cors_reload(c, s, &n, &e), 0);
    assert_int_equal(n, 2 + MANY);
    assert_true(allowed(c, "https://rp.example"));
    assert_true(allowed(c, "https://spa.example:8443"));
    assert_true(allowed(c, "https://m0.example"));
    assert_true(allowed(c, "https://m1099.example"));
    assert_false(allowed(c, "https://inactive.example"));
    assert_false(allowed(c, "https://inactive2.example"));
    assert_false(allowed(c, "https://later.example"));

    put_client(s, "later", 1, "https://later.example/cb", NULL);
    assert_true(!allowed(c, "https://later.example")); /* not before the reload */
    assert_int_equal(oidc_cors_reload(c, s, &n, &e), 0);
    assert_int_equal(n, 3 + MANY);
    assert_true(allowed(c, "https://later.example"));

    /* A client switched off loses its origins on the next reload. */
    put_client(s, "web", 2, "https://rp.example/cb", "https://spa.example:8443/");
    assert_int_equal(oidc_cors_reload(c, s, NULL, &e), 0);
    assert_false(allowed(c, "https://rp.example"));
    assert_false(allowed(c, "https://spa.example:8443"));
    oidc_cors_free(c);
    store_close(s);
}

/* Readers never see a freed or half-built set while another thread replaces it. */
struct race {
    struct oidc_cors *c;
    bool stop;     /* atomic */
    size_t misses; /* atomic */
};

static void *reader(void *arg)
{
    struct race *r = arg;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE))
        if (!allowed(r->c, "https://stays.example"))
            __atomic_add_fetch(&r->misses, 1, __ATOMIC_RELAXED);
    return NULL;
}

static void test_reload_race(void **state)
{
    struct race r = {0};
    struct err e = {0};
    pthread_t t[2];
    static const char *const a[] = {"https://stays.example/a", "https://a.example/"};
    static const char *const b[] = {"https://b.example/", "https://stays.example/b"};
    (void)state;
    assert_int_equal(oidc_cors_new(&r.c, &e), 0);
    assert_int_equal(oidc_cors_set(r.c, a, 2, &e), 0);
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, &r), 0);
    for (size_t i = 0; i < 2000; i++)
        assert_int_equal(oidc_cors_set(r.c, i % 2 ? a : b, 2, &e), 0);
    __atomic_store_n(&r.stop, true, __ATOMIC_RELEASE);
    for (size_t i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(r.misses, 0);
    oidc_cors_free(r.c);
}

static void test_endpoints(void **state)
{
    (void)state;
    static const char *const yes[] = {"/oauth/v2/token",      "/oidc/v1/userinfo",
                                      "/oauth/v2/introspect", "/oauth/v2/revoke",
                                      OIDC_PATH_DISCOVERY,    OIDC_PATH_JWKS};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        const struct oidc_cors_endpoint *ce = oidc_cors_endpoint(yes[i], strlen(yes[i]));
        assert_non_null(ce);
        assert_string_equal(ce->path, yes[i]);
        assert_non_null(ce->methods);
    }
    const struct oidc_cors_endpoint *ui = oidc_cors_endpoint("/oidc/v1/userinfo", 17);
    assert_string_equal(ui->methods, "GET, POST");
    assert_non_null(strstr(ui->allow_headers, "Authorization"));
    assert_non_null(strstr(ui->expose_headers, "WWW-Authenticate"));
    assert_string_equal(oidc_cors_endpoint(OIDC_PATH_JWKS, strlen(OIDC_PATH_JWKS))->methods, "GET");
    static const char *const no[] = {
        "/oauth/v2/authorize",
        "/ui/login",
        "/ui/login/",
        "/ui/login/login",
        "/oidc/v1/end_session",
        "/ui/login/logout/done",
        "/oauth/v2/token/",
        "/oauth/v2/tok",
        "/OAUTH/V2/TOKEN",
        "/healthz",
        "/",
        "",
    };
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (oidc_cors_endpoint(no[i], strlen(no[i])))
            fail_msg("'%s' answers CORS", no[i]);
    assert_null(oidc_cors_endpoint(NULL, 0));
    /* The length bounds the compare: a longer buffer with the path as a prefix is not it. */
    assert_null(oidc_cors_endpoint("/oauth/v2/tokenX", 16));
    assert_non_null(oidc_cors_endpoint("/oauth/v2/tokenX", 15));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_origin_of),   cmocka_unit_test(test_allowed_hostile),
        cmocka_unit_test(test_many),        cmocka_unit_test(test_reload_from_store),
        cmocka_unit_test(test_reload_race), cmocka_unit_test(test_endpoints),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, setup, fx_tmp_teardown);
}
