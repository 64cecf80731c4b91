/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the token and userinfo endpoints, called through oidc_handle() with plain
 * request structs over a temporary LMDB store and real signing keys (oidc/keys.c under a
 * temporary master key). AuthCode records are written directly, as /authorize would.
 * Signatures are checked here with OpenSSL against a key rebuilt from the JWKS, not with
 * oidc/jwt.c, so a bug there cannot hide itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>

#include "common/rand.h"
#include "fixture_token.h"
#include "oidc/claims.h"
#include "oidc/grant.h"
#include "oidc/jwt.h"
#include "oidc/keys.h"
#include "oidc/oidc.h"

#define ISSUER "http://127.0.0.1:8190"
#define REDIRECT "https://app.example/cb"
/* A verifier and its S256 challenge (computed with `openssl dgst -sha256 -binary`). */
#define VERIFIER "dBjftJeZ4CVP-mJ92K1rKy8ezMsYyA6kP7tMtR2BXZo"
#define CHALLENGE "kO6rSSCCXg_nL8dPVp0Mn92q_SAxDaipa2Vhz2sWe6s"

static char dir[64];
static struct store *store;
static struct oidc_ctx *ctx;

static int setup(void **state)
{
    (void)state;
    if (fx_ctx_open(ISSUER, dir, &store, &ctx) < 0)
        return -1;
    const struct fx_client clients[] = {
        /* project p1: a confidential web app, a JWT-access-token app, an SPA */
        {.client_id = "100@proj",
         .project_id = "p1",
         .auth_method = 0,
         .secret = "websecret",
         .refresh = true},
        {.client_id = "101",
         .project_id = "p1",
         .auth_method = 1,
         .secret = "jwtsecret",
         .access_token_type = 1,
         .refresh = true},
        {.client_id = "102@proj", .project_id = "p1", .auth_method = 2},
        /* project p2: another confidential app; one without refresh; an API app */
        {.client_id = "200", .project_id = "p2", .auth_method = 0, .secret = "other"},
        {.client_id = "201",
         .project_id = "p2",
         .auth_method = 0,
         .secret = "x",
         .userinfo_in_id_token = true},
        {.client_id = "202", .project_id = "p2", .auth_method = 0, .secret = "api", .kind = 1},
    };
    for (size_t i = 0; i < sizeof clients / sizeof clients[0]; i++)
        if (fx_client_put(store, &clients[i]) < 0)
            return -1;
    if (fx_user_put(store, "300000000000000001", "ada", 1) < 0 ||
        fx_user_put(store, "300000000000000002", "locked", 4) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    oidc_ctx_free(ctx);
    store_close(store);
    fx_rm_rf(dir);
    return 0;
}

struct code_opts {
    const char *client_id;
    const char *user_id;
    const char *scope;
    const char *challenge;
    const char *method;
    int64_t age; /* seconds since issue */
};

/* Writes an AuthCode record for a fresh random code; returns the code (caller frees). */
static char *put_code(const struct code_opts *o)
{
    char code[44], hash[65], key[REPO_KEY_MAX];
    struct err e = {0};
    assert_int_equal(rand_token(code), 0);
    sha256_hex(code, strlen(code), hash);
    repo_key(key, "code/%s", hash);
    Koderid__V2__AuthCode c = KODERID__V2__AUTH_CODE__INIT;
    char *amr[1] = {(char *)"pwd"};
    c.client_id = (char *)o->client_id;
    c.user_id = (char *)(o->user_id ? o->user_id : "300000000000000001");
    c.redirect_uri = (char *)REDIRECT;
    c.scope = (char *)(o->scope ? o->scope : "openid profile email offline_access");
    c.nonce = (char *)"n-0S6_WzA2Mj";
    c.code_challenge = (char *)(o->challenge ? o->challenge : "");
    c.code_challenge_method = (char *)(o->method ? o->method : (o->challenge ? "S256" : ""));
    c.auth_time = store_now_ms() / 1000 - 100;
    c.n_amr = 1;
    c.amr = amr;
    c.issued_at = store_now_ms() / 1000 - o->age;
    c.session_id = (char *)"sess1";
    assert_int_equal(repo_put(store, key, &c.base, 60000, NULL, &e), 0);
    return strdup(code);
}

/* POSTs @body to the token endpoint with optional Basic credentials. */
static void token_call(const char *basic, const char *body, struct oidc_response *resp)
{
    struct fx_req f;
    fx_req_form(&f, "POST", "/oauth/v2/token", body);
    if (basic)
        fx_req_basic(&f, basic);
    memset(resp, 0, sizeof *resp);
    oidc_handle(ctx, &f.req, resp);
    fx_req_release(&f);
}

static json_t *body_json(const struct oidc_response *resp)
{
    json_error_t je;
    json_t *j = json_loadb(resp->body, resp->body_len, 0, &je);
    assert_non_null(j);
    return j;
}

static const char *jstr(const json_t *o, const char *name)
{
    return json_string_value(json_object_get(o, name));
}

static void expect_error(const struct oidc_response *resp, int status, const char *error)
{
    if (resp->status != status)
        fprintf(stderr, "status %d body %.*s\n", resp->status, (int)resp->body_len, resp->body);
    assert_int_equal(resp->status, status);
    json_t *j = body_json(resp);
    assert_string_equal(jstr(j, "error"), error);
    json_decref(j);
}

static char *exchange_body(const char *code, const char *extra)
{
    char *b = malloc(1024);
    snprintf(b, 1024, "grant_type=authorization_code&code=%s&redirect_uri=%s%s", code,
             "https%3A%2F%2Fapp.example%2Fcb", extra ? extra : "");
    return b;
}

/* Exchanges a fresh code of the confidential web client; *ret is the token response. */
static json_t *web_exchange(const char *scope)
{
    struct code_opts o = {.client_id = "100@proj", .scope = scope};
    char *code = put_code(&o);
    char *body = exchange_body(code, NULL);
    struct oidc_response resp;
    token_call("100%40proj:websecret", body, &resp);
    if (resp.status != 200)
        fprintf(stderr, "%.*s\n", (int)resp.body_len, resp.body);
    assert_int_equal(resp.status, 200);
    json_t *j = body_json(&resp);
    oidc_response_release(&resp);
    free(body);
    free(code);
    return j;
}

/* The JWKS key for @kid, rebuilt from n and e with OpenSSL. */
static EVP_PKEY *jwks_key(const char *kid)
{
    struct err e = {0};
    char *jwks = oidc_keys_jwks_json(ctx->keys, &e);
    assert_non_null(jwks);
    json_t *j = json_loads(jwks, 0, NULL);
    free(jwks);
    assert_non_null(j);
    json_t *k;
    size_t i;
    EVP_PKEY *pkey = NULL;
    json_array_foreach (json_object_get(j, "keys"), i, k) {
        if (strcmp(jstr(k, "kid"), kid) != 0)
            continue;
        assert_string_equal(jstr(k, "kty"), "RSA");
        size_t nl, el;
        unsigned char *n = b64url_decode_alloc(jstr(k, "n"), strlen(jstr(k, "n")), false, &nl);
        unsigned char *ev = b64url_decode_alloc(jstr(k, "e"), strlen(jstr(k, "e")), false, &el);
        BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(ev, (int)el, NULL);
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn);
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be);
        OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
        EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
        assert_int_equal(EVP_PKEY_fromdata_init(pc), 1);
        assert_int_equal(EVP_PKEY_fromdata(pc, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
        EVP_PKEY_CTX_free(pc);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        BN_free(bn);
        BN_free(be);
        free(n);
        free(ev);
    }
    json_decref(j);
    assert_non_null(pkey);
    return pkey;
}

static json_t *b64_json_part(const char *p, size_t len)
{
    size_t n;
    unsigned char *raw = b64url_decode_alloc(p, len, false, &n);
    assert_non_null(raw);
    json_t *j = json_loadb((char *)raw, n, 0, NULL);
    free(raw);
    assert_non_null(j);
    return j;
}

/* Verifies an RS256 compact JWS with OpenSSL; returns its claims, *ret_header its header. */
static json_t *rs256_verified(const char *tok, json_t **ret_header)
{
    const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    assert_non_null(d1);
    assert_true(d2 > d1);
    json_t *hdr = b64_json_part(tok, (size_t)(d1 - tok));
    assert_string_equal(jstr(hdr, "alg"), "RS256");
    assert_string_equal(jstr(hdr, "typ"), "JWT");
    EVP_PKEY *key = jwks_key(jstr(hdr, "kid"));
    size_t siglen;
    unsigned char *sig = b64url_decode_alloc(d2 + 1, strlen(d2 + 1), false, &siglen);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(
        EVP_DigestVerify(md, sig, siglen, (const unsigned char *)tok, (size_t)(d2 - tok)), 1);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    free(sig);
    if (ret_header)
        *ret_header = hdr;
    else
        json_decref(hdr);
    return b64_json_part(d1 + 1, (size_t)(d2 - d1 - 1));
}

static bool stored(const char *prefix, const char *token)
{
    char hash[65], key[REPO_KEY_MAX];
    struct store_value v = {0};
    struct err e;
    sha256_hex(token, strlen(token), hash);
    repo_key(key, "%s/%s", prefix, hash);
    int r = store_get(store, key, strlen(key), &v, &e);
    store_value_release(&v);
    return r == 0;
}

static void test_exchange_opaque(void **state)
{
    (void)state;
    struct code_opts o = {.client_id = "100@proj"};
    char *code = put_code(&o);
    char *body = exchange_body(code, NULL);
    struct oidc_response resp;
    token_call("100%40proj:websecret", body, &resp);
    assert_int_equal(resp.status, 200);
    assert_string_equal(fx_resp_header(&resp, "cache-control"), "no-store");
    assert_string_equal(fx_resp_header(&resp, "pragma"), "no-cache");
    assert_string_equal(fx_resp_header(&resp, "content-type"), "application/json");
    json_t *j = body_json(&resp);
    assert_string_equal(jstr(j, "token_type"), "Bearer");
    assert_int_equal(json_integer_value(json_object_get(j, "expires_in")), 12 * 3600);
    assert_string_equal(jstr(j, "scope"), "openid profile email offline_access");
    const char *at = jstr(j, "access_token"), *rt = jstr(j, "refresh_token");
    assert_non_null(at);
    assert_non_null(rt);
    assert_non_null(jstr(j, "id_token"));
    assert_null(strchr(at, '.')); /* opaque */
    assert_true(strlen(at) >= 43);
    assert_true(stored("at", at));
    assert_true(stored("rt", rt));
    assert_false(stored("at", rt));

    /* The stored access token record. */
    char hash[65], key[REPO_KEY_MAX];
    struct err e;
    sha256_hex(at, strlen(at), hash);
    repo_key(key, "at/%s", hash);
    Koderid__V2__AccessToken *rec = NULL;
    assert_int_equal(repo_get(store, key, &koderid__v2__access_token__descriptor,
                              (ProtobufCMessage **)&rec, NULL, &e),
                     0);
    assert_string_equal(rec->client_id, "100@proj");
    assert_string_equal(rec->user_id, "300000000000000001");
    assert_string_equal(rec->scope, "openid profile email offline_access");
    assert_true(rec->expires_at - rec->issued_at == 12 * 3600);
    assert_int_equal(rec->n_audience, 4);
    assert_false(rec->revoked);
    assert_true(rec->family_id[0] != '\0');
    /* The refresh family exists, not revoked, pointing at the refresh token. */
    repo_key(key, "rtfam/%s", rec->family_id);
    Koderid__V2__RefreshFamily *fam = NULL;
    assert_int_equal(repo_get(store, key, &koderid__v2__refresh_family__descriptor,
                              (ProtobufCMessage **)&fam, NULL, &e),
                     0);
    assert_false(fam->revoked);
    sha256_hex(rt, strlen(rt), hash);
    assert_string_equal(fam->current_hash, hash);
    assert_string_equal(fam->client_id, "100@proj");
    koderid__v2__refresh_family__free_unpacked(fam, NULL);
    koderid__v2__access_token__free_unpacked(rec, NULL);
    json_decref(j);
    oidc_response_release(&resp);
    free(body);
    free(code);
}

static void test_id_token_claims(void **state)
{
    (void)state;
    int64_t before = store_now_ms() / 1000;
    json_t *j = web_exchange(NULL);
    json_t *hdr = NULL;
    json_t *c = rs256_verified(jstr(j, "id_token"), &hdr);
    int64_t after = store_now_ms() / 1000;

    assert_non_null(jstr(hdr, "kid"));
    assert_string_equal(jstr(c, "iss"), ISSUER);
    assert_string_equal(jstr(c, "sub"), "300000000000000001");
    /* aud: every client of project p1 (key order), then the project; never p2's. */
    json_t *aud = json_object_get(c, "aud");
    assert_int_equal(json_array_size(aud), 4);
    assert_string_equal(json_string_value(json_array_get(aud, 0)), "100@proj");
    assert_string_equal(json_string_value(json_array_get(aud, 1)), "101");
    assert_string_equal(json_string_value(json_array_get(aud, 2)), "102@proj");
    assert_string_equal(json_string_value(json_array_get(aud, 3)), "p1");
    json_int_t iat = json_integer_value(json_object_get(c, "iat"));
    assert_true(iat >= before && iat <= after);
    assert_int_equal(json_integer_value(json_object_get(c, "exp")), iat + 12 * 3600);
    json_int_t auth_time = json_integer_value(json_object_get(c, "auth_time"));
    assert_true(auth_time >= before - 101 && auth_time <= after - 99);
    assert_string_equal(jstr(c, "nonce"), "n-0S6_WzA2Mj");
    assert_string_equal(jstr(c, "azp"), "100@proj");
    json_t *amr = json_object_get(c, "amr");
    assert_int_equal(json_array_size(amr), 1);
    assert_string_equal(json_string_value(json_array_get(amr, 0)), "pwd");
    /* at_hash: left half of SHA-256 of the access token, base64url. */
    const char *at = jstr(j, "access_token");
    unsigned char md[32];
    SHA256((const unsigned char *)at, strlen(at), md);
    char want[32];
    b64url_encode(md, 16, want);
    assert_string_equal(jstr(c, "at_hash"), want);
    /* No userinfo claims without id_token_userinfo_assertion, and nothing else unexpected. */
    const char *allowed[] = {"iss",       "sub",   "aud", "exp", "iat",
                             "auth_time", "nonce", "amr", "azp", "at_hash"};
    const char *name;
    json_t *v;
    json_object_foreach (c, name, v) {
        bool ok = false;
        for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
            ok = ok || strcmp(name, allowed[i]) == 0;
        if (!ok)
            fprintf(stderr, "unexpected claim %s\n", name);
        assert_true(ok);
    }
    json_decref(c);
    json_decref(hdr);
    json_decref(j);

    /* With id_token_userinfo_assertion the profile and email claims are in the ID token. */
    struct code_opts o = {.client_id = "201", .scope = "openid profile email"};
    char *code = put_code(&o);
    char *body = exchange_body(code, NULL);
    struct oidc_response resp;
    token_call("201:x", body, &resp);
    assert_int_equal(resp.status, 200);
    j = body_json(&resp);
    assert_null(json_object_get(j, "refresh_token"));
    c = rs256_verified(jstr(j, "id_token"), NULL);
    assert_string_equal(jstr(c, "email"), "ada@example.com");
    assert_true(json_is_true(json_object_get(c, "email_verified")));
    assert_string_equal(jstr(c, "name"), "Ada Lovelace");
    assert_string_equal(jstr(c, "preferred_username"), "ada");
    /* aud for p2: its clients (including the API app) and the project. */
    assert_int_equal(json_array_size(json_object_get(c, "aud")), 4);
    json_decref(c);
    json_decref(j);
    oidc_response_release(&resp);
    free(body);
    free(code);
}

static void test_jwt_access_token(void **state)
{
    (void)state;
    struct code_opts o = {.client_id = "101", .scope = "openid email"};
    char *code = put_code(&o);
    char *body = exchange_body(code, "&client_id=101&client_secret=jwtsecret");
    struct oidc_response resp;
    token_call(NULL, body, &resp);
    assert_int_equal(resp.status, 200);
    json_t *j = body_json(&resp);
    const char *at = jstr(j, "access_token");
    assert_false(stored("at", at));
    json_t *c = rs256_verified(at, NULL);
    assert_string_equal(jstr(c, "iss"), ISSUER);
    assert_string_equal(jstr(c, "sub"), "300000000000000001");
    assert_string_equal(jstr(c, "client_id"), "101");
    assert_string_equal(jstr(c, "scope"), "openid email");
    assert_int_equal(json_array_size(json_object_get(c, "aud")), 4);
    assert_true(strlen(jstr(c, "jti")) == 18);
    json_int_t iat = json_integer_value(json_object_get(c, "iat"));
    assert_int_equal(json_integer_value(json_object_get(c, "nbf")), iat);
    assert_int_equal(json_integer_value(json_object_get(c, "exp")), iat + 12 * 3600);
    assert_null(json_object_get(c, "azp"));
    assert_null(json_object_get(c, "nonce"));
    /* offline_access was not requested: no refresh token. */
    assert_null(json_object_get(j, "refresh_token"));
    json_decref(c);
    json_decref(j);
    oidc_response_release(&resp);
    free(body);
    free(code);
}

static void test_pkce(void **state)
{
    (void)state;
    struct err e;
    assert_int_equal(oidc_pkce_check(CHALLENGE, "S256", VERIFIER, true, &e), 0);
    assert_int_equal(oidc_pkce_check(CHALLENGE, "S256", VERIFIER "x", true, &e), -E_INVALID_GRANT);
    assert_int_equal(oidc_pkce_check(CHALLENGE, "plain", VERIFIER, true, &e), -E_INVALID_GRANT);
    assert_int_equal(oidc_pkce_check(VERIFIER, "plain", VERIFIER, true, &e), -E_INVALID_GRANT);
    assert_int_equal(oidc_pkce_check(CHALLENGE, "S256", NULL, false, &e), -E_INVALID_GRANT);
    assert_int_equal(oidc_pkce_check(CHALLENGE, "S256", "short", false, &e), -E_INVALID_GRANT);
    assert_int_equal(oidc_pkce_check("", "", VERIFIER, false, &e), -E_INVALID_GRANT);
    assert_int_equal(oidc_pkce_check("", "", NULL, true, &e), -E_INVALID_GRANT);
    assert_int_equal(oidc_pkce_check("", "", NULL, false, &e), 0);

    struct oidc_response resp;
    /* A public client: PKCE required. */
    struct code_opts pub = {.client_id = "102@proj"};
    char *code = put_code(&pub);
    char *body = exchange_body(code, "&client_id=102%40proj");
    token_call(NULL, body, &resp);
    expect_error(&resp, 400, "invalid_grant");
    oidc_response_release(&resp);
    free(body);
    free(code);

    pub.challenge = CHALLENGE;
    code = put_code(&pub);
    body = exchange_body(code, "&client_id=102%40proj");
    token_call(NULL, body, &resp);
    expect_error(&resp, 400, "invalid_grant"); /* verifier missing */
    oidc_response_release(&resp);
    free(body);
    body = exchange_body(code, "&client_id=102%40proj&code_verifier="
                               "dBjftJeZ4CVP-mJ92K1rKy8ezMsYyA6kP7tMtR2BXZp");
    token_call(NULL, body, &resp);
    expect_error(&resp, 400, "invalid_grant"); /* wrong verifier */
    oidc_response_release(&resp);
    free(body);
    body = exchange_body(code, "&client_id=102%40proj&code_verifier=" VERIFIER);
    token_call(NULL, body, &resp);
    assert_int_equal(resp.status, 200); /* the failures above did not consume the code */
    json_t *j = body_json(&resp);
    assert_null(json_object_get(j, "refresh_token")); /* the SPA has no refresh grant */
    assert_string_equal(jstr(j, "scope"), "openid profile email");
    json_decref(j);
    oidc_response_release(&resp);
    free(body);
    free(code);

    /* A confidential client sending a verifier for a code issued without a challenge. */
    struct code_opts conf = {.client_id = "100@proj"};
    code = put_code(&conf);
    body = exchange_body(code, "&code_verifier=" VERIFIER);
    token_call("100%40proj:websecret", body, &resp);
    expect_error(&resp, 400, "invalid_grant");
    oidc_response_release(&resp);
    free(body);
    free(code);
    /* A code stored with method plain is refused even with the "right" verifier. */
    conf.challenge = VERIFIER;
    conf.method = "plain";
    code = put_code(&conf);
    body = exchange_body(code, "&code_verifier=" VERIFIER);
    token_call("100%40proj:websecret", body, &resp);
    expect_error(&resp, 400, "invalid_grant");
    oidc_response_release(&resp);
    free(body);
    free(code);
}

static int userinfo_call(const char *method, const char *bearer, const char *form,
                         struct oidc_response *resp)
{
    struct fx_req f;
    if (form)
        fx_req_form(&f, method, "/oidc/v1/userinfo", form);
    else
        fx_req_init(&f, method, "/oidc/v1/userinfo", NULL);
    if (bearer) {
        char v[8192];
        snprintf(v, sizeof v, "Bearer %s", bearer);
        fx_req_header(&f, "authorization", v);
    }
    memset(resp, 0, sizeof *resp);
    oidc_handle(ctx, &f.req, resp);
    fx_req_release(&f);
    return resp->status;
}

static void test_replay_revokes(void **state)
{
    (void)state;
    struct oidc_response resp;
    /* Opaque access token + refresh family. */
    struct code_opts o = {.client_id = "100@proj"};
    char *code = put_code(&o);
    char *body = exchange_body(code, NULL);
    token_call("100%40proj:websecret", body, &resp);
    assert_int_equal(resp.status, 200);
    json_t *first = body_json(&resp);
    oidc_response_release(&resp);
    const char *at = jstr(first, "access_token");
    assert_int_equal(userinfo_call("GET", at, NULL, &resp), 200);
    oidc_response_release(&resp);

    token_call("100%40proj:websecret", body, &resp);
    expect_error(&resp, 400, "invalid_grant");
    oidc_response_release(&resp);
    /* What the first exchange issued is revoked. */
    assert_int_equal(userinfo_call("GET", at, NULL, &resp), 401);
    assert_non_null(strstr(fx_resp_header(&resp, "www-authenticate"), "error=\"invalid_token\""));
    oidc_response_release(&resp);
    char hash[65], key[REPO_KEY_MAX];
    struct err e;
    const char *rt = jstr(first, "refresh_token");
    sha256_hex(rt, strlen(rt), hash);
    repo_key(key, "rt/%s", hash);
    Koderid__V2__RefreshToken *rtrec = NULL;
    assert_int_equal(repo_get(store, key, &koderid__v2__refresh_token__descriptor,
                              (ProtobufCMessage **)&rtrec, NULL, &e),
                     0);
    repo_key(key, "rtfam/%s", rtrec->family_id);
    Koderid__V2__RefreshFamily *fam = NULL;
    assert_int_equal(repo_get(store, key, &koderid__v2__refresh_family__descriptor,
                              (ProtobufCMessage **)&fam, NULL, &e),
                     0);
    assert_true(fam->revoked);
    koderid__v2__refresh_family__free_unpacked(fam, NULL);
    koderid__v2__refresh_token__free_unpacked(rtrec, NULL);
    /* A third try: still refused. */
    token_call("100%40proj:websecret", body, &resp);
    expect_error(&resp, 400, "invalid_grant");
    oidc_response_release(&resp);
    json_decref(first);
    free(body);
    free(code);

    /* JWT access token: its jti lands on the deny-list. */
    struct code_opts oj = {.client_id = "101", .scope = "openid"};
    code = put_code(&oj);
    body = exchange_body(code, "&client_id=101&client_secret=jwtsecret");
    token_call(NULL, body, &resp);
    assert_int_equal(resp.status, 200);
    first = body_json(&resp);
    oidc_response_release(&resp);
    at = jstr(first, "access_token");
    assert_int_equal(userinfo_call("GET", at, NULL, &resp), 200);
    oidc_response_release(&resp);
    token_call(NULL, body, &resp);
    expect_error(&resp, 400, "invalid_grant");
    oidc_response_release(&resp);
    json_t *claims = rs256_verified(at, NULL);
    assert_true(oidc_jti_denied(ctx, jstr(claims, "jti")));
    json_decref(claims);
    assert_int_equal(userinfo_call("GET", at, NULL, &resp), 401);
    oidc_response_release(&resp);
    json_decref(first);
    free(body);
    free(code);
}

static void test_code_binding(void **state)
{
    (void)state;
    struct oidc_response resp;
    struct code_opts o = {.client_id = "100@proj"};
    char *code = put_code(&o);
    char *body = exchange_body(code, NULL);
    /* Presented by another (authenticated) client: refused, and not consumed. */
    token_call("200:other", body, &resp);
    expect_error(&resp, 400, "invalid_grant");
    oidc_response_release(&resp);
    /* Another redirect_uri, or none: refused, not consumed. */
    char other[512];
    snprintf(other, sizeof other, "grant_type=authorization_code&code=%s&redirect_uri=%s", code,
             "https%3A%2F%2Fapp.example%2Fcb%2F");
    token_call("100%40proj:websecret", other, &resp);
    expect_error(&resp, 400, "invalid_grant");
    oidc_response_release(&resp);
    snprintf(other, sizeof other, "grant_type=authorization_code&code=%s", code);
    token_call("100%40proj:websecret", other, &resp);
    expect_error(&resp, 400, "invalid_request");
    oidc_response_release(&resp);
    /* Wrong secret: 401 with the Basic challenge. */
    token_call("100%40proj:wrong", body, &resp);
    expect_error(&resp, 401, "invalid_client");
    assert_non_null(fx_resp_header(&resp, "www-authenticate"));
    oidc_response_release(&resp);
    /* The rightful client still redeems it. */
    token_call("100%40proj:websecret", body, &resp);
    assert_int_equal(resp.status, 200);
    oidc_response_release(&resp);
    free(body);
    free(code);

    /* Expired, unknown, and a locked user's code. */
    o.age = OIDC_CODE_LIFETIME + 1;
    code = put_code(&o);
    body = exchange_body(code, NULL);
    token_call("100%40proj:websecret", body, &resp);
    expect_error(&resp, 400, "invalid_grant");
    oidc_response_release(&resp);
    free(body);
    free(code);
    body = exchange_body("bm90LWEtY29kZQ", NULL);
    token_call("100%40proj:websecret", body, &resp);
    expect_error(&resp, 400, "invalid_grant");
    oidc_response_release(&resp);
    free(body);
    struct code_opts locked = {.client_id = "100@proj", .user_id = "300000000000000002"};
    code = put_code(&locked);
    body = exchange_body(code, NULL);
    token_call("100%40proj:websecret", body, &resp);
    expect_error(&resp, 400, "invalid_grant");
    oidc_response_release(&resp);
    free(body);
    free(code);
}

static void test_request_checks(void **state)
{
    (void)state;
    struct oidc_response resp;
    struct fx_req f;

    fx_req_init(&f, "GET", "/oauth/v2/token", NULL);
    oidc_handle(ctx, &f.req, memset(&resp, 0, sizeof resp));
    expect_error(&resp, 405, "invalid_request");
    assert_string_equal(fx_resp_header(&resp, "allow"), "POST");
    oidc_response_release(&resp);
    fx_req_release(&f);

    fx_req_init(&f, "POST", "/oauth/v2/token", "{\"grant_type\":\"authorization_code\"}");
    fx_req_header(&f, "content-type", "application/json");
    oidc_handle(ctx, &f.req, memset(&resp, 0, sizeof resp));
    expect_error(&resp, 400, "invalid_request");
    oidc_response_release(&resp);
    fx_req_release(&f);

    fx_req_form(&f, "POST", "/oauth/v2/token", "grant_type=authorization_code");
    f.req.query = "client_secret=x";
    f.req.query_len = strlen(f.req.query);
    oidc_handle(ctx, &f.req, memset(&resp, 0, sizeof resp));
    expect_error(&resp, 400, "invalid_request");
    oidc_response_release(&resp);
    fx_req_release(&f);

    /* A charset parameter on the content type is fine. */
    fx_req_init(&f, "POST", "/oauth/v2/token", "grant_type=password");
    fx_req_header(&f, "content-type", "Application/X-WWW-Form-Urlencoded; charset=UTF-8");
    oidc_handle(ctx, &f.req, memset(&resp, 0, sizeof resp));
    expect_error(&resp, 400, "unsupported_grant_type");
    oidc_response_release(&resp);
    fx_req_release(&f);

    token_call("100%40proj:websecret", "grant_type=authorization_code&code=a&code=b", &resp);
    expect_error(&resp, 400, "invalid_request");
    oidc_response_release(&resp);
    token_call("100%40proj:websecret", "code=a", &resp);
    expect_error(&resp, 400, "invalid_request");
    oidc_response_release(&resp);
    token_call("100%40proj:websecret",
               "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code", &resp);
    expect_error(&resp, 400, "unsupported_grant_type");
    oidc_response_release(&resp);
    token_call("202:api", "grant_type=authorization_code&code=x&redirect_uri=y", &resp);
    expect_error(&resp, 400, "unauthorized_client");
    oidc_response_release(&resp);

    char *big = malloc(70 * 1024);
    memset(big, 'a', 70 * 1024 - 1);
    big[70 * 1024 - 1] = '\0';
    memcpy(big, "grant_type=authorization_code&x=", 32);
    token_call("100%40proj:websecret", big, &resp);
    expect_error(&resp, 413, "invalid_request");
    oidc_response_release(&resp);
    free(big);
}

static void test_userinfo(void **state)
{
    (void)state;
    struct oidc_response resp;
    json_t *t = web_exchange("openid profile email");
    const char *at = jstr(t, "access_token");

    assert_int_equal(userinfo_call("GET", at, NULL, &resp), 200);
    json_t *u = body_json(&resp);
    assert_string_equal(jstr(u, "sub"), "300000000000000001");
    assert_string_equal(jstr(u, "name"), "Ada Lovelace");
    assert_string_equal(jstr(u, "given_name"), "Ada");
    assert_string_equal(jstr(u, "family_name"), "Lovelace");
    assert_string_equal(jstr(u, "nickname"), "ada");
    assert_string_equal(jstr(u, "preferred_username"), "ada");
    assert_string_equal(jstr(u, "locale"), "en");
    assert_string_equal(jstr(u, "gender"), "female");
    assert_int_equal(json_integer_value(json_object_get(u, "updated_at")), 1700000000);
    assert_string_equal(jstr(u, "email"), "ada@example.com");
    assert_true(json_is_true(json_object_get(u, "email_verified")));
    assert_null(json_object_get(u, "phone_number"));
    assert_string_equal(fx_resp_header(&resp, "cache-control"), "no-store");
    json_decref(u);
    oidc_response_release(&resp);

    /* In a form body (RFC 6750 2.2). */
    char form[256];
    snprintf(form, sizeof form, "access_token=%s", at);
    assert_int_equal(userinfo_call("POST", NULL, form, &resp), 200);
    oidc_response_release(&resp);
    /* Both ways at once; in the query; no token; a garbage token; a bad method. */
    assert_int_equal(userinfo_call("POST", at, form, &resp), 400);
    assert_non_null(strstr(fx_resp_header(&resp, "www-authenticate"), "invalid_request"));
    oidc_response_release(&resp);
    struct fx_req f;
    fx_req_init(&f, "GET", "/oidc/v1/userinfo", NULL);
    f.req.query = form;
    f.req.query_len = strlen(form);
    oidc_handle(ctx, &f.req, memset(&resp, 0, sizeof resp));
    assert_int_equal(resp.status, 400);
    oidc_response_release(&resp);
    fx_req_release(&f);
    assert_int_equal(userinfo_call("GET", NULL, NULL, &resp), 401);
    assert_string_equal(fx_resp_header(&resp, "www-authenticate"), "Bearer realm=\"" ISSUER "\"");
    oidc_response_release(&resp);
    assert_int_equal(userinfo_call("GET", "bm9wZQ", NULL, &resp), 401);
    assert_non_null(strstr(fx_resp_header(&resp, "www-authenticate"), "error=\"invalid_token\""));
    oidc_response_release(&resp);
    assert_int_equal(userinfo_call("DELETE", at, NULL, &resp), 405);
    assert_string_equal(fx_resp_header(&resp, "allow"), "GET, POST");
    oidc_response_release(&resp);
    /* An ID token is not an access token. */
    assert_int_equal(userinfo_call("GET", jstr(t, "id_token"), NULL, &resp), 401);
    oidc_response_release(&resp);
    json_decref(t);

    /* Scope openid only: sub alone. Without openid: insufficient_scope. */
    t = web_exchange("openid");
    assert_int_equal(userinfo_call("GET", jstr(t, "access_token"), NULL, &resp), 200);
    u = body_json(&resp);
    assert_int_equal(json_object_size(u), 1);
    json_decref(u);
    oidc_response_release(&resp);
    json_decref(t);
    t = web_exchange("profile");
    assert_null(json_object_get(t, "id_token"));
    assert_int_equal(userinfo_call("GET", jstr(t, "access_token"), NULL, &resp), 403);
    assert_non_null(
        strstr(fx_resp_header(&resp, "www-authenticate"), "error=\"insufficient_scope\""));
    oidc_response_release(&resp);
    json_decref(t);

    /* A tampered JWT access token. */
    struct code_opts oj = {.client_id = "101", .scope = "openid"};
    char *code = put_code(&oj);
    char *body = exchange_body(code, "&client_id=101&client_secret=jwtsecret");
    token_call(NULL, body, &resp);
    t = body_json(&resp);
    oidc_response_release(&resp);
    char *jwt = strdup(jstr(t, "access_token"));
    assert_int_equal(userinfo_call("GET", jwt, NULL, &resp), 200);
    oidc_response_release(&resp);
    char *p = strchr(jwt, '.') + 5;
    *p = *p == 'x' ? 'y' : 'x';
    assert_int_equal(userinfo_call("GET", jwt, NULL, &resp), 401);
    oidc_response_release(&resp);
    free(jwt);
    json_decref(t);
    free(body);
    free(code);
}

/* Many presentations of one code at the same moment: at most one wins the compare-and-swap,
 * every other one is a replay, and the replays revoke what the winner got (the winner may even
 * fail, when a replay revoked its refresh family before it was written: fail closed). */
#define RACERS 8
struct racer {
    const char *body;
    pthread_barrier_t *start;
    struct oidc_response resp;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    pthread_barrier_wait(r->start);
    token_call("100%40proj:websecret", r->body, &r->resp);
    return NULL;
}

static void test_concurrent_exchange(void **state)
{
    (void)state;
    struct code_opts o = {.client_id = "100@proj"};
    char *code = put_code(&o);
    char *body = exchange_body(code, NULL);
    /* The secret is verified once first, so the racers meet at the code, not at bcrypt. */
    struct oidc_response warm;
    token_call("100%40proj:websecret", "grant_type=authorization_code&code=x&redirect_uri=y",
               &warm);
    expect_error(&warm, 400, "invalid_grant");
    oidc_response_release(&warm);

    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, RACERS);
    struct racer racers[RACERS];
    pthread_t th[RACERS];
    for (int i = 0; i < RACERS; i++) {
        racers[i] = (struct racer){.body = body, .start = &start};
        assert_int_equal(pthread_create(&th[i], NULL, race, &racers[i]), 0);
    }
    int wins = 0, winner = -1;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(th[i], NULL);
        if (racers[i].resp.status == 200) {
            wins++;
            winner = i;
        } else {
            expect_error(&racers[i].resp, 400, "invalid_grant");
        }
    }
    pthread_barrier_destroy(&start);
    assert_true(wins <= 1);
    if (wins == 1) {
        json_t *j = body_json(&racers[winner].resp);
        struct oidc_response resp;
        assert_int_equal(userinfo_call("GET", jstr(j, "access_token"), NULL, &resp), 401);
        oidc_response_release(&resp);
        json_decref(j);
    }
    /* Either way the code is spent. */
    struct oidc_response again;
    token_call("100%40proj:websecret", body, &again);
    expect_error(&again, 400, "invalid_grant");
    oidc_response_release(&again);
    for (int i = 0; i < RACERS; i++)
        oidc_response_release(&racers[i].resp);
    free(body);
    free(code);
}

/* v1's audience over a project with more apps than one scan page holds. */
static void test_audience_paging(void **state)
{
    (void)state;
    char ids[150][16];
    for (int i = 0; i < 150; i++) {
        snprintf(ids[i], sizeof ids[i], "p3-app-%03d", i);
        struct fx_client c = {.client_id = ids[i], .project_id = "p3", .auth_method = 2};
        assert_int_equal(fx_client_put(store, &c), 0);
    }
    Koderid__V2__Client *c = NULL;
    struct err e;
    assert_int_equal(repo_client_get(store, "p3-app-077", &c, &e), 0);
    json_t *aud = NULL;
    assert_int_equal(oidc_claims_audience(store, c, NULL, &aud, &e), 0);
    assert_int_equal(json_array_size(aud), 151);
    for (int i = 0; i < 150; i++)
        assert_string_equal(json_string_value(json_array_get(aud, (size_t)i)), ids[i]);
    assert_string_equal(json_string_value(json_array_get(aud, 150)), "p3");
    json_decref(aud);
    koderid__v2__client__free_unpacked(c, NULL);

    /* A client without a project: its own id only. */
    Koderid__V2__Client lone = KODERID__V2__CLIENT__INIT;
    lone.client_id = (char *)"lone";
    assert_int_equal(oidc_claims_audience(store, &lone, NULL, &aud, &e), 0);
    assert_int_equal(json_array_size(aud), 1);
    assert_string_equal(json_string_value(json_array_get(aud, 0)), "lone");
    json_decref(aud);

    /* Projects named by scope are added when they exist; the zitadel alias and unknown or
     * malformed ids are not. */
    Koderid__V2__Project p = KODERID__V2__PROJECT__INIT;
    p.id = (char *)"p9";
    p.org_id = (char *)"org1";
    char key[REPO_KEY_MAX];
    repo_key(key, "project/%s", p.id);
    assert_int_equal(repo_put(store, key, &p.base, 0, NULL, &e), 0);
    assert_int_equal(oidc_claims_audience(store, &lone,
                                          "openid urn:zitadel:iam:org:project:id:p9:aud "
                                          "urn:zitadel:iam:org:project:id:zitadel:aud "
                                          "urn:zitadel:iam:org:project:id:nope:aud "
                                          "urn:zitadel:iam:org:project:id:p9:x:aud "
                                          "urn:zitadel:iam:org:project:id::aud "
                                          "urn:zitadel:iam:org:project:id:p9:aud",
                                          &aud, &e),
                     0);
    assert_int_equal(json_array_size(aud), 2);
    assert_string_equal(json_string_value(json_array_get(aud, 0)), "p9");
    assert_string_equal(json_string_value(json_array_get(aud, 1)), "lone");
    json_decref(aud);
}

/* Access tokens signed with our own current key but wrong in their claims: each refused. */
static char *sign_with_ours(json_t *claims)
{
    EVP_PKEY *key = NULL;
    char kid[64], alg[8];
    struct err e = {0};
    char *tok = NULL;
    assert_int_equal(oidc_keys_current(ctx->keys, &key, kid, alg, &e), 0);
    assert_int_equal(oidc_jwt_sign(claims, key, kid, alg, &tok, &e), 0);
    EVP_PKEY_free(key);
    json_decref(claims);
    return tok;
}

static void test_userinfo_jwt_claims(void **state)
{
    (void)state;
    struct oidc_response resp;
    json_int_t now = store_now_ms() / 1000;
    const char *sub = "300000000000000001";
    struct {
        const char *what;
        json_t *claims;
        int status;
    } cases[] = {
        {"well-formed (control)",
         json_pack("{s:s,s:s,s:[s],s:I,s:I,s:I,s:s,s:s,s:s}", "iss", ISSUER, "sub", sub, "aud",
                   "101", "exp", now + 600, "iat", now, "nbf", now, "jti", "j-control", "client_id",
                   "101", "scope", "openid"),
         200},
        {"expired",
         json_pack("{s:s,s:s,s:I,s:I,s:s,s:s}", "iss", ISSUER, "sub", sub, "exp", now - 60, "iat",
                   now - 700, "jti", "j1", "scope", "openid"),
         401},
        {"not yet valid",
         json_pack("{s:s,s:s,s:I,s:I,s:s,s:s}", "iss", ISSUER, "sub", sub, "exp", now + 600, "nbf",
                   now + 300, "jti", "j2", "scope", "openid"),
         401},
        {"another issuer",
         json_pack("{s:s,s:s,s:I,s:s,s:s}", "iss", "https://evil.example", "sub", sub, "exp",
                   now + 600, "jti", "j3", "scope", "openid"),
         401},
        {"no exp",
         json_pack("{s:s,s:s,s:s,s:s}", "iss", ISSUER, "sub", sub, "jti", "j4", "scope", "openid"),
         401},
        {"no scope",
         json_pack("{s:s,s:s,s:I,s:s}", "iss", ISSUER, "sub", sub, "exp", now + 600, "jti", "j5"),
         401},
        {"no jti",
         json_pack("{s:s,s:s,s:I,s:s}", "iss", ISSUER, "sub", sub, "exp", now + 600, "scope",
                   "openid"),
         401},
        {"an ID token (azp)",
         json_pack("{s:s,s:s,s:I,s:s,s:s,s:s}", "iss", ISSUER, "sub", sub, "exp", now + 600, "jti",
                   "j6", "scope", "openid", "azp", "101"),
         401},
        {"a locked user",
         json_pack("{s:s,s:s,s:I,s:s,s:s}", "iss", ISSUER, "sub", "300000000000000002", "exp",
                   now + 600, "jti", "j7", "scope", "openid"),
         401},
        {"an unknown user",
         json_pack("{s:s,s:s,s:I,s:s,s:s}", "iss", ISSUER, "sub", "999", "exp", now + 600, "jti",
                   "j8", "scope", "openid"),
         401},
        {"exp not a number",
         json_pack("{s:s,s:s,s:s,s:s,s:s}", "iss", ISSUER, "sub", sub, "exp", "9999999999", "jti",
                   "j9", "scope", "openid"),
         401},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_non_null(cases[i].claims);
        char *tok = sign_with_ours(cases[i].claims);
        int status = userinfo_call("GET", tok, NULL, &resp);
        if (status != cases[i].status)
            fprintf(stderr, "case '%s': status %d\n", cases[i].what, status);
        assert_int_equal(status, cases[i].status);
        oidc_response_release(&resp);
        free(tok);
    }
    /* The control token stops working once its jti is deny-listed. */
    struct err e;
    assert_int_equal(oidc_deny_jti(ctx, "j-control", "101", now + 600, &e), 0);
    char *tok = sign_with_ours(json_pack("{s:s,s:s,s:I,s:s,s:s}", "iss", ISSUER, "sub", sub, "exp",
                                         now + 600, "jti", "j-control", "scope", "openid"));
    assert_int_equal(userinfo_call("GET", tok, NULL, &resp), 401);
    oidc_response_release(&resp);
    free(tok);
}

int main(void)
{
    cmocka_set_message_output(CM_OUTPUT_TAP);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exchange_opaque),     cmocka_unit_test(test_id_token_claims),
        cmocka_unit_test(test_jwt_access_token),    cmocka_unit_test(test_pkce),
        cmocka_unit_test(test_replay_revokes),      cmocka_unit_test(test_code_binding),
        cmocka_unit_test(test_request_checks),      cmocka_unit_test(test_userinfo),
        cmocka_unit_test(test_concurrent_exchange), cmocka_unit_test(test_audience_paging),
        cmocka_unit_test(test_userinfo_jwt_claims),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
