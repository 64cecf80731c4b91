/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /oidc/v1/end_session over a temporary LMDB store: an expired but genuine id_token_hint is
 * accepted, a forged one (same kid, another key) refused, a hint issued to another client
 * refused, post_logout_redirect_uri only when registered (exact), state passed back, the
 * session ended, and the logged-out page otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "fixture_token.h"
#include "oidc/endsession.h"
#include "oidc/grant.h"
#include "oidc/jwt.h"
#include "oidc/keys.h"
#include "oidc/oidc.h"
#include "oidc/session.h"

#define ISSUER "https://id.example"

static char dir[64];
static struct store *store;
static struct oidc_ctx *ctx;

static int setup(void **state)
{
    (void)state;
    struct err e = {0};
    if (fx_ctx_open(ISSUER, dir, &store, &ctx) < 0)
        return -1;
    struct fx_client a = {.client_id = "100@proj", .project_id = "p1", .auth_method = 2};
    struct fx_client b = {.client_id = "200@other", .project_id = "p2", .auth_method = 2};
    if (fx_client_put(store, &a) < 0 || fx_client_put(store, &b) < 0)
        return -1;
    /* Register a post-logout URI for 100@proj. */
    Koderid__V2__Client *c = NULL;
    if (repo_client_get(store, "100@proj", &c, &e) < 0)
        return -1;
    char *pl[1] = {(char *)"https://app.example/bye"};
    c->post_logout_redirect_uris = pl;
    c->n_post_logout_redirect_uris = 1;
    int r = repo_client_put(store, c, &e);
    c->post_logout_redirect_uris = NULL;
    c->n_post_logout_redirect_uris = 0;
    koderid__v2__client__free_unpacked(c, NULL);
    return r < 0 || fx_user_put(store, "u1", "ada", 1) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    oidc_ctx_free(ctx);
    store_close(store);
    fx_rm_rf(dir);
    return 0;
}

static const char *hdr(const struct oidc_response *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* An ID token for u1 and @client_id issued @age seconds ago (12 h lifetime: old = expired). */
static char *id_token(const char *client_id, int64_t age)
{
    struct err e = {0};
    Koderid__V2__Client *c = NULL;
    Koderid__V2__User *u = NULL;
    json_t *aud = json_pack("[s]", client_id);
    assert_int_equal(repo_client_get(store, client_id, &c, &e), 0);
    assert_int_equal(repo_user_get(store, "u1", &u, &e), 0);
    struct oidc_issue in = {.client = c,
                            .user = u,
                            .scope = "openid",
                            .audience = aud,
                            .jti = "j1",
                            .now = store_now_ms() / 1000 - age};
    in.at_expires_at = in.now + 60;
    char *tok = NULL;
    assert_int_equal(oidc_issue_id_token(ctx, &in, NULL, &tok, &e), 0);
    json_decref(aud);
    koderid__v2__client__free_unpacked(c, NULL);
    koderid__v2__user__free_unpacked(u, NULL);
    return tok;
}

static void call(const char *method, const char *query_or_body, struct oidc_response *resp)
{
    struct fx_req f;
    fx_req_init(&f, method, "/oidc/v1/end_session",
                strcmp(method, "POST") == 0 ? query_or_body : NULL);
    if (strcmp(method, "GET") == 0) {
        f.req.query = query_or_body;
        f.req.query_len = strlen(query_or_body);
    } else {
        fx_req_header(&f, "content-type", "application/x-www-form-urlencoded");
    }
    memset(resp, 0, sizeof *resp);
    oidc_end_session_endpoint(ctx, &f.req, resp);
    fx_req_release(&f);
}

static void test_expired_hint_and_redirect(void **state)
{
    (void)state;
    char *tok = id_token("100@proj", 3 * 86400);
    char q[8192];
    snprintf(q, sizeof q,
             "id_token_hint=%s&post_logout_redirect_uri=https%%3A%%2F%%2Fapp.example%%2Fbye"
             "&state=s%%20t",
             tok);
    struct oidc_response resp;
    call("GET", q, &resp);
    assert_int_equal(resp.status, 302);
    assert_string_equal(hdr(&resp, "location"), "https://app.example/bye?state=s%20t");
    assert_non_null(strstr(hdr(&resp, "set-cookie"), "Max-Age=0"));
    oidc_response_release(&resp);

    /* POST too, with client_id instead of the hint. */
    call("POST", "client_id=100%40proj&post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fbye",
         &resp);
    assert_int_equal(resp.status, 302);
    assert_string_equal(hdr(&resp, "location"), "https://app.example/bye");
    oidc_response_release(&resp);
    free(tok);
}

static void test_hostile(void **state)
{
    (void)state;
    struct oidc_response resp;
    char q[8192];

    /* Unregistered, or registered for another client, or a prefix trick: refused, no redirect. */
    const char *bad[] = {"https://evil.example/bye", "https://app.example/bye/x",
                         "https://app.example/bye?x=1", "https://app.example/by"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(q, sizeof q, "client_id=100%%40proj&post_logout_redirect_uri=%s", bad[i]);
        call("GET", q, &resp);
        assert_int_equal(resp.status, 400);
        assert_null(hdr(&resp, "location"));
        oidc_response_release(&resp);
    }
    call("GET", "client_id=200%40other&post_logout_redirect_uri=https://app.example/bye", &resp);
    assert_int_equal(resp.status, 400);
    oidc_response_release(&resp);
    call("GET", "post_logout_redirect_uri=https://app.example/bye", &resp); /* no client */
    assert_int_equal(resp.status, 400);
    oidc_response_release(&resp);

    /* A hint issued to 100@proj presented with client_id 200@other. */
    char *tok = id_token("100@proj", 0);
    snprintf(q, sizeof q, "id_token_hint=%s&client_id=200%%40other", tok);
    call("GET", q, &resp);
    assert_int_equal(resp.status, 400);
    oidc_response_release(&resp);

    /* Forged: same header and claims, signed with another key under our kid. */
    json_t *hdrj = NULL, *claims = NULL;
    struct err e = {0};
    char *dot = strchr(tok, '.');
    char *dot2 = strchr(dot + 1, '.');
    *dot2 = '\0';
    snprintf(q, sizeof q, "id_token_hint=%s.AAAA", tok); /* bad signature */
    call("GET", q, &resp);
    assert_int_equal(resp.status, 400);
    oidc_response_release(&resp);
    *dot2 = '.';
    EVP_PKEY *ours = NULL, *other = EVP_RSA_gen(2048);
    char kid[64], alg[8];
    assert_int_equal(oidc_keys_current(ctx->keys, &ours, kid, alg, &e), 0);
    claims = json_pack("{s:s, s:s, s:s, s:s, s:I}", "iss", ISSUER, "sub", "u1", "aud", "100@proj",
                       "azp", "100@proj", "exp", (json_int_t)(store_now_ms() / 1000 + 600));
    char *forged = NULL;
    assert_int_equal(oidc_jwt_sign(claims, other, kid, alg, &forged, &e), 0);
    snprintf(q, sizeof q, "id_token_hint=%s", forged);
    call("GET", q, &resp);
    assert_int_equal(resp.status, 400);
    assert_null(hdr(&resp, "location"));
    oidc_response_release(&resp);
    /* The genuine one with the same claims passes: the refusal is the signature's. */
    free(forged);
    forged = NULL;
    assert_int_equal(oidc_jwt_sign(claims, ours, kid, alg, &forged, &e), 0);
    snprintf(q, sizeof q, "id_token_hint=%s", forged);
    call("GET", q, &resp);
    assert_int_equal(resp.status, 302);
    assert_string_equal(hdr(&resp, "location"), OIDC_LOGOUT_DONE_PATH);
    oidc_response_release(&resp);
    (void)hdrj;
    json_decref(claims);
    EVP_PKEY_free(ours);
    EVP_PKEY_free(other);
    free(forged);
    free(tok);
}

static void test_session_ended(void **state)
{
    (void)state;
    struct err e = {0};
    struct oidc_response cresp = {0};
    Koderid__V2__Session *sess = NULL;
    assert_int_equal(oidc_session_create(ctx, "u1", "pwd", "100@proj", &cresp, &sess, &e), 0);
    koderid__v2__session__free_unpacked(sess, NULL);
    const char *sc = hdr(&cresp, "set-cookie");
    assert_non_null(sc);
    char cookie[512];
    snprintf(cookie, sizeof cookie, "%.*s", (int)strcspn(sc, ";"), sc);

    struct fx_req f;
    fx_req_init(&f, "GET", "/oauth/v2/authorize", NULL);
    fx_req_header(&f, "cookie", cookie);
    uint64_t v = 0;
    char key[REPO_KEY_MAX];
    sess = NULL;
    assert_int_equal(oidc_session_load(ctx, &f.req, &sess, &v, key, &e), 0);
    koderid__v2__session__free_unpacked(sess, NULL);

    struct oidc_response resp = {0};
    f.req.path = "/oidc/v1/end_session";
    oidc_end_session_endpoint(ctx, &f.req, &resp);
    assert_int_equal(resp.status, 302);
    assert_string_equal(hdr(&resp, "location"), OIDC_LOGOUT_DONE_PATH);
    oidc_response_release(&resp);
    sess = NULL;
    assert_int_equal(oidc_session_load(ctx, &f.req, &sess, &v, key, &e), -E_NOTFOUND);
    fx_req_release(&f);
    oidc_response_release(&cresp);

    f.req.path = OIDC_LOGOUT_DONE_PATH;
    fx_req_init(&f, "GET", OIDC_LOGOUT_DONE_PATH, NULL);
    oidc_logout_done_endpoint(ctx, &f.req, &resp);
    assert_int_equal(resp.status, 200);
    assert_non_null(strstr(resp.body, "Signed out"));
    oidc_response_release(&resp);
}

int main(void)
{
    cmocka_set_message_output(CM_OUTPUT_TAP);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expired_hint_and_redirect),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_session_ended),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
