/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for oidc/clientauth.c over a temporary LMDB store: the Basic header (RFC 6749
 * 2.3.1 form-encoding, v1's '@' client ids, strict base64), one method per client, the
 * WWW-Authenticate answer, the secret cache and the per-client throttle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture_token.h"
#include "oidc/clientauth.h"
#include "oidc/throttle.h"

static char dir[64];
static struct oidc_ctx ctx;

static int setup(void **state)
{
    (void)state;
    struct err e = {0};
    ctx.store = fx_store_open(dir);
    if (!ctx.store)
        return -1;
    ctx.cfg.issuer = "https://id.example.com";
    if (oidc_secret_cache_new(0, &ctx.secret_cache, &e) < 0)
        return -1;
    struct oidc_throttle_config tc = {.free_failures = 3, .base_delay_ms = 60000};
    if (oidc_throttle_new(&tc, &ctx.client_throttle, &e) < 0)
        return -1;
    const struct fx_client clients[] = {
        {.client_id = "2001@shop", .project_id = "p1", .auth_method = 0, .secret = "s3cret"},
        {.client_id = "2002", .project_id = "p1", .auth_method = 1, .secret = "p0st"},
        {.client_id = "2003@spa", .project_id = "p1", .auth_method = 2},
        {.client_id = "2004", .project_id = "p1", .auth_method = 3},
        {.client_id = "2005", .auth_method = 0, .secret = "x", .state = 2},
        {.client_id = "id:with:colons", .auth_method = 0, .secret = "pa ss+%:"},
        {.client_id = "2007", .auth_method = 0, .secret = "throttled"},
        {.client_id = "2008", .auth_method = 0, .secret = "cached"},
        {.client_id = "2009", .auth_method = 0, .secret = "rotate-me"},
    };
    for (size_t i = 0; i < sizeof clients / sizeof clients[0]; i++)
        if (fx_client_put(ctx.store, &clients[i]) < 0)
            return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    oidc_throttle_free(ctx.client_throttle);
    oidc_secret_cache_free(ctx.secret_cache);
    store_close(ctx.store);
    fx_rm_rf(dir);
    return 0;
}

static int parse(const char *header, char **id, char **secret)
{
    struct err e = {0};
    *id = *secret = NULL;
    return oidc_basic_parse(header, id, secret, &e);
}

static char *basic_of(const char *userpass)
{
    char *b = b64_encode_alloc(userpass, strlen(userpass));
    char *v = malloc(strlen(b) + 7);
    sprintf(v, "Basic %s", b);
    free(b);
    return v;
}

static void expect_basic(const char *userpass, const char *want_id, const char *want_secret)
{
    char *h = basic_of(userpass), *id, *secret;
    assert_int_equal(parse(h, &id, &secret), 0);
    assert_string_equal(id, want_id);
    assert_string_equal(secret, want_secret);
    free(h);
    free(id);
    free(secret);
}

static void expect_basic_refused(const char *header)
{
    char *id, *secret;
    assert_int_equal(parse(header, &id, &secret), -E_INVALID_REQUEST);
    assert_null(id);
    assert_null(secret);
}

static void test_basic_header(void **state)
{
    (void)state;
    expect_basic("2001@shop:s3cret", "2001@shop", "s3cret");
    expect_basic("2001%40shop:s3cret", "2001@shop", "s3cret");
    expect_basic("id%3Awith%3Acolons:pa+ss%2B%25%3A", "id:with:colons", "pa ss+%:");
    expect_basic("a:", "a", "");
    expect_basic("a:b:c", "a", "b:c");

    char *id, *secret;
    assert_int_equal(parse("Bearer abc", &id, &secret), -E_NOTFOUND);
    assert_int_equal(parse("Basicabc", &id, &secret), -E_NOTFOUND);
    assert_int_equal(parse("Digest username=x", &id, &secret), -E_NOTFOUND);
    char *lower = basic_of("a:b");
    memcpy(lower, "bAsIc", 5);
    assert_int_equal(parse(lower, &id, &secret), 0);
    free(id);
    free(secret);
    free(lower);

    expect_basic_refused("Basic !!!!");
    expect_basic_refused("Basic YTpiYw");    /* "a:bc" without its padding */
    expect_basic_refused("Basic YTpiYw=");   /* wrong padding */
    expect_basic_refused("Basic YTpi Yw=="); /* a space inside */
    expect_basic_refused("Basic YTpiY-==");  /* base64url alphabet */
    expect_basic_refused("Basic ");
    char *h = basic_of("no-colon");
    expect_basic_refused(h);
    free(h);
    h = basic_of(":secret");
    expect_basic_refused(h);
    free(h);
    h = basic_of("a%zz:b");
    expect_basic_refused(h);
    free(h);
    h = basic_of("a%00b:c");
    expect_basic_refused(h);
    free(h);
    char nul[] = "a\0b:c";
    char *b = b64_encode_alloc(nul, 5);
    char v[64];
    snprintf(v, sizeof v, "Basic %s", b);
    free(b);
    expect_basic_refused(v);
    char *big = malloc(OIDC_BASIC_HEADER_MAX + 16);
    strcpy(big, "Basic ");
    memset(big + 6, 'A', OIDC_BASIC_HEADER_MAX);
    big[OIDC_BASIC_HEADER_MAX + 6] = '\0';
    expect_basic_refused(big);
    free(big);
}

/* Runs client authentication for a request with an optional Basic value and form body. */
static int auth(const char *userpass, const char *body, struct oidc_client_auth *a)
{
    struct fx_req f;
    struct oidc_params form = {0};
    struct err e = {0};
    fx_req_form(&f, "POST", "/oauth/v2/token", body);
    if (userpass)
        fx_req_basic(&f, userpass);
    assert_int_equal(oidc_params_parse(body, strlen(body), &form, &e), 0);
    memset(a, 0, sizeof *a);
    int r = oidc_client_authenticate(&ctx, &f.req, &form, a, &e);
    if (r == 0)
        assert_non_null(a->client);
    else
        assert_null(a->client);
    oidc_params_release(&form);
    fx_req_release(&f);
    return r;
}

static void test_methods(void **state)
{
    (void)state;
    struct oidc_client_auth a;
    const char *gt = "grant_type=authorization_code";

    assert_int_equal(auth("2001%40shop:s3cret", gt, &a), 0);
    assert_string_equal(a.client->client_id, "2001@shop");
    assert_int_equal(a.method, OIDC_AUTH_BASIC);
    assert_true(a.used_basic);
    oidc_client_auth_release(&a);
    /* v1 ids unencoded work too ('@' needs no escaping). */
    assert_int_equal(auth("2001@shop:s3cret", gt, &a), 0);
    oidc_client_auth_release(&a);
    /* Basic plus the same client_id in the body is fine; a different one is not. */
    assert_int_equal(auth("2001@shop:s3cret", "client_id=2001%40shop", &a), 0);
    oidc_client_auth_release(&a);
    assert_int_equal(auth("2001@shop:s3cret", "client_id=2002", &a), -E_INVALID_REQUEST);
    /* Two methods at once. */
    assert_int_equal(auth("2001@shop:s3cret", "client_id=2001%40shop&client_secret=s3cret", &a),
                     -E_INVALID_REQUEST);
    /* Wrong secret, unknown client. */
    assert_int_equal(auth("2001@shop:wrong", gt, &a), -E_INVALID_CLIENT);
    assert_true(a.used_basic);
    assert_int_equal(auth("9999:x", gt, &a), -E_INVALID_CLIENT);
    /* Encoded colons and spaces. */
    assert_int_equal(auth("id%3Awith%3Acolons:pa+ss%2B%25%3A", gt, &a), 0);
    oidc_client_auth_release(&a);
    assert_int_equal(auth("id%3Awith%3Acolons:pa ss+%:", gt, &a), -E_INVALID_REQUEST);
    assert_int_equal(auth("id%3Awith%3Acolons:pa%20ss%2B%25%3A", gt, &a), 0);
    oidc_client_auth_release(&a);

    /* client_secret_post. */
    assert_int_equal(auth(NULL, "client_id=2002&client_secret=p0st", &a), 0);
    assert_int_equal(a.method, OIDC_AUTH_POST);
    assert_false(a.used_basic);
    oidc_client_auth_release(&a);
    assert_int_equal(auth(NULL, "client_secret=p0st", &a), -E_INVALID_CLIENT);
    /* Each client only with its registered method. */
    assert_int_equal(auth("2002:p0st", gt, &a), -E_INVALID_CLIENT);
    assert_int_equal(auth(NULL, "client_id=2001%40shop&client_secret=s3cret", &a),
                     -E_INVALID_CLIENT);
    assert_int_equal(auth(NULL, "client_id=2001%40shop", &a), -E_INVALID_CLIENT);
    assert_int_equal(auth(NULL, "client_id=2002", &a), -E_INVALID_CLIENT);

    /* none: a public client names itself; with a secret it is refused. */
    assert_int_equal(auth(NULL, "client_id=2003%40spa", &a), 0);
    assert_int_equal(a.method, OIDC_AUTH_NONE);
    oidc_client_auth_release(&a);
    assert_int_equal(auth(NULL, "client_id=2003%40spa&client_secret=x", &a), -E_INVALID_CLIENT);
    assert_int_equal(auth("2003@spa:", gt, &a), -E_INVALID_CLIENT);
    assert_int_equal(auth("2003@spa:x", gt, &a), -E_INVALID_CLIENT);

    /* private_key_jwt: not yet. Nothing at all: refused. Inactive: refused. */
    assert_int_equal(auth(NULL,
                          "client_id=2004&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3A"
                          "client-assertion-type%3Ajwt-bearer&client_assertion=a.b.c",
                          &a),
                     -E_INVALID_CLIENT);
    assert_int_equal(auth(NULL, gt, &a), -E_INVALID_CLIENT);
    assert_int_equal(auth("2005:x", gt, &a), -E_INVALID_CLIENT);
    /* A malformed Basic header is invalid_request, and still flagged as Basic. */
    struct fx_req f;
    struct oidc_params form = {0};
    struct err e;
    fx_req_form(&f, "POST", "/oauth/v2/token", gt);
    fx_req_header(&f, "authorization", "Basic %%%");
    memset(&a, 0, sizeof a);
    assert_int_equal(oidc_client_authenticate(&ctx, &f.req, &form, &a, &e), -E_INVALID_REQUEST);
    assert_true(a.used_basic);
    fx_req_release(&f);
}

static void test_www_authenticate(void **state)
{
    (void)state;
    struct oidc_client_auth a;
    struct oidc_response resp = {0};
    assert_int_equal(auth("2001@shop:wrong", "grant_type=x", &a), -E_INVALID_CLIENT);
    oidc_respond_client_error(&ctx, &resp, &a, -E_INVALID_CLIENT, "bad");
    assert_int_equal(resp.status, 401);
    assert_string_equal(fx_resp_header(&resp, "www-authenticate"),
                        "Basic realm=\"https://id.example.com\"");
    assert_non_null(strstr(resp.body, "\"error\":\"invalid_client\""));
    assert_string_equal(fx_resp_header(&resp, "cache-control"), "no-store");
    oidc_response_release(&resp);
    /* Without Basic: 401 but no challenge. */
    assert_int_equal(auth(NULL, "client_id=2002&client_secret=nope", &a), -E_INVALID_CLIENT);
    oidc_respond_client_error(&ctx, &resp, &a, -E_INVALID_CLIENT, "bad");
    assert_int_equal(resp.status, 401);
    assert_null(fx_resp_header(&resp, "www-authenticate"));
    oidc_response_release(&resp);
    /* Another error after a Basic attempt: no challenge either. */
    a.used_basic = true;
    oidc_respond_client_error(&ctx, &resp, &a, -E_INVALID_GRANT, "bad");
    assert_int_equal(resp.status, 400);
    assert_null(fx_resp_header(&resp, "www-authenticate"));
    oidc_response_release(&resp);
}

static void test_secret_cache(void **state)
{
    (void)state;
    struct err e;
    bool cached = true;
    char *hash = fx_bcrypt("cached");
    assert_int_equal(oidc_secret_verify(&ctx, "c1", "wrong", hash, &cached, &e), -E_INVALID_CLIENT);
    assert_int_equal(oidc_secret_verify(&ctx, "c1", "wrong", hash, &cached, &e), -E_INVALID_CLIENT);
    assert_int_equal(oidc_secret_verify(&ctx, "c1", "cached", hash, &cached, &e), 0);
    assert_false(cached);
    assert_int_equal(oidc_secret_verify(&ctx, "c1", "cached", hash, &cached, &e), 0);
    assert_true(cached);
    /* The cache is per subject and per hash: another client, or a changed hash, misses. */
    assert_int_equal(oidc_secret_verify(&ctx, "c2", "cached", hash, &cached, &e), 0);
    assert_false(cached);
    char *hash2 = fx_bcrypt("new-secret");
    assert_int_equal(oidc_secret_verify(&ctx, "c1", "cached", hash2, &cached, &e),
                     -E_INVALID_CLIENT);
    assert_int_equal(oidc_secret_verify(&ctx, "c1", "new-secret", hash2, &cached, &e), 0);
    assert_false(cached);
    /* A failure is never remembered as a success. */
    assert_int_equal(oidc_secret_verify(&ctx, "c1", "cachedX", hash, &cached, &e),
                     -E_INVALID_CLIENT);
    free(hash);
    free(hash2);

    /* Formats: cost above 14, MD5-crypt, DES, empty: refused without checking. */
    const char *refused[] = {"$2a$15$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
                             "$2a$03$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
                             "$1$abcdefgh$abcdefghijklmnopqrstuv", "abJnggxhB/yWI", ""};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(oidc_secret_verify(&ctx, "c3", "x", refused[i], NULL, &e),
                         -E_INVALID_CLIENT);

    /* The secret changes in the store: the old one stops working at once. */
    struct oidc_client_auth a;
    assert_int_equal(auth("2009:rotate-me", "grant_type=x", &a), 0);
    oidc_client_auth_release(&a);
    struct fx_client c = {.client_id = "2009", .auth_method = 0, .secret = "rotated"};
    assert_int_equal(fx_client_put(ctx.store, &c), 0);
    assert_int_equal(auth("2009:rotate-me", "grant_type=x", &a), -E_INVALID_CLIENT);
    assert_int_equal(auth("2009:rotated", "grant_type=x", &a), 0);
    oidc_client_auth_release(&a);
}

static void test_throttle(void **state)
{
    (void)state;
    struct oidc_client_auth a;
    /* 2008's secret is verified once (now cached). */
    assert_int_equal(auth("2008:cached", "grant_type=x", &a), 0);
    oidc_client_auth_release(&a);
    /* Three free failures each, then the client is refused even with its right secret... */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(auth("2007:wrong", "grant_type=x", &a), -E_INVALID_CLIENT);
        assert_int_equal(auth("2008:wrong", "grant_type=x", &a), -E_INVALID_CLIENT);
    }
    struct err e = {0};
    struct fx_req f;
    struct oidc_params form = {0};
    fx_req_form(&f, "POST", "/oauth/v2/token", "grant_type=x");
    fx_req_basic(&f, "2007:throttled");
    memset(&a, 0, sizeof a);
    assert_int_equal(oidc_client_authenticate(&ctx, &f.req, &form, &a, &e), -E_INVALID_CLIENT);
    assert_non_null(strstr(e.msg, "too many failed attempts"));
    fx_req_release(&f);
    assert_true(
        oidc_throttle_failures(ctx.client_throttle, "client:2007", oidc_throttle_now_ms()) >= 3);
    /* ...except one whose secret was verified moments ago: an attacker cannot lock it out. */
    assert_int_equal(auth("2008:cached", "grant_type=x", &a), 0);
    oidc_client_auth_release(&a);
    /* Other clients are not affected. */
    assert_int_equal(auth("2001@shop:s3cret", "grant_type=x", &a), 0);
    oidc_client_auth_release(&a);
}

int main(void)
{
    cmocka_set_message_output(CM_OUTPUT_TAP);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_header),     cmocka_unit_test(test_methods),
        cmocka_unit_test(test_www_authenticate), cmocka_unit_test(test_secret_cache),
        cmocka_unit_test(test_throttle),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
