/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the token lifecycle beyond the code exchange: refresh_token rotation and reuse
 * detection, client_credentials and jwt-bearer for machine users, private_key_jwt client
 * authentication, introspection, revocation, secret rehashing and discovery. Endpoints are
 * called through oidc_handle() with plain request structs over a temporary LMDB store and real
 * signing keys. Test keys for assertions are generated here with OpenSSL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <pthread.h>

#include "common/rand.h"
#include "fixture_token.h"
#include "oidc/clientauth.h"
#include "oidc/discovery.h"
#include "oidc/grant.h"
#include "oidc/jwt.h"
#include "oidc/oidc.h"

#define ISSUER "http://127.0.0.1:8191"
#define ADA "300000000000000001"
#define MACHINE "400000000000000001"
#define MACHINE_JWT "400000000000000002"
#define MACHINE_KEY "400000000000000003"
#define PKJ_CLIENT "500@proj" /* OIDC app, private_key_jwt, RSA key */
#define API_PKJ "501"         /* API app, private_key_jwt, EC key */
#define API_BASIC "502"       /* API app of project p1, basic */
#define API_OTHER "503"       /* API app of project p9, basic */

static char dir[64];
static struct store *store;
static struct oidc_ctx *ctx;
static EVP_PKEY *rsa_key, *ec_key, *machine_key;

static EVP_PKEY *gen_key(bool rsa)
{
    EVP_PKEY *k = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static void put_authnkey(const char *owner, const char *kid, EVP_PKEY *k, int type,
                         int64_t expires_at, bool enabled)
{
    struct err e = {0};
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
    char *pem = NULL;
    long n = BIO_get_mem_data(b, &pem);
    Koderid__V2__AuthnKey ak = KODERID__V2__AUTHN_KEY__INIT;
    ak.id = (char *)kid;
    ak.object_id = (char *)owner;
    ak.object_type = type;
    ak.public_key.data = (uint8_t *)pem;
    ak.public_key.len = (size_t)n;
    ak.expires_at = expires_at;
    ak.enabled = enabled;
    char key[REPO_KEY_MAX];
    repo_key(key, "authnkey/%s/%s", owner, kid);
    assert_int_equal(repo_put(store, key, &ak.base, 0, NULL, &e), 0);
    BIO_free(b);
}

static char *bcrypt_cost(const char *secret, int cost)
{
    char setting[64];
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    assert_non_null(crypt_gensalt_rn("$2a$", cost, NULL, 0, setting, sizeof setting));
    const char *h = crypt_rn(secret, setting, &cd, sizeof cd);
    assert_true(h && h[0] == '$');
    return strdup(h);
}

static void put_machine(const char *id, const char *username, const char *login, int att,
                        const char *secret, int cost, int state)
{
    struct err e = {0};
    Koderid__V2__User u = KODERID__V2__USER__INIT;
    char *names[1] = {(char *)login};
    char *hash = secret ? bcrypt_cost(secret, cost) : NULL;
    u.id = (char *)id;
    u.org_id = (char *)"org1";
    u.username = (char *)username;
    u.login_name = (char *)login;
    u.n_login_names = 1;
    u.login_names = names;
    u.state = state;
    u.type = 2;
    u.machine_name = (char *)username;
    u.display_name = (char *)username;
    u.secret_hash = hash ? hash : (char *)"";
    u.access_token_type = att;
    assert_int_equal(repo_user_put(store, &u, &e), 0);
    free(hash);
}

static int setup(void **state)
{
    (void)state;
    struct err e = {0};
    if (fx_ctx_open(ISSUER, dir, &store, &ctx) < 0)
        return -1;
    const struct fx_client clients[] = {
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
        {.client_id = "200",
         .project_id = "p2",
         .auth_method = 0,
         .secret = "other",
         .refresh = true},
        {.client_id = PKJ_CLIENT, .project_id = "p1", .auth_method = 3, .refresh = true},
        {.client_id = API_PKJ, .project_id = "p1", .auth_method = 3, .kind = 1},
        {.client_id = API_BASIC,
         .project_id = "p1",
         .auth_method = 0,
         .secret = "apisecret",
         .kind = 1},
        {.client_id = API_OTHER,
         .project_id = "p9",
         .auth_method = 0,
         .secret = "apisecret",
         .kind = 1},
        {.client_id = "504",
         .project_id = "p1",
         .auth_method = 1,
         .secret = "postsecret",
         .kind = 0},
    };
    for (size_t i = 0; i < sizeof clients / sizeof clients[0]; i++)
        if (fx_client_put(store, &clients[i]) < 0)
            return -1;
    if (fx_user_put(store, ADA, "ada", 1) < 0)
        return -1;
    put_machine(MACHINE, "svc-opaque", "svc-opaque@org1.example", 0, "machinesecret", 4, 1);
    put_machine(MACHINE_JWT, "svc-jwt", "svc-jwt@org1.example", 1, "jwtmachinesecret", 4, 1);
    put_machine(MACHINE_KEY, "svc-key", "svc-key@org1.example", 1, NULL, 4, 1);
    put_machine("400000000000000004", "svc-off", "svc-off@org1.example", 0, "offsecret", 4, 2);
    Koderid__V2__Project p1 = KODERID__V2__PROJECT__INIT;
    p1.id = (char *)"p1";
    p1.org_id = (char *)"org1";
    p1.state = 1;
    if (repo_put(store, "project/p1", &p1.base, 0, NULL, &e) < 0)
        return -1;
    rsa_key = gen_key(true);
    ec_key = gen_key(false);
    machine_key = gen_key(false);
    put_authnkey(PKJ_CLIENT, "k-rsa", rsa_key, 0, 0, true);
    put_authnkey(API_PKJ, "k-ec", ec_key, 0, 0, true);
    put_authnkey(API_PKJ, "k-old", ec_key, 0, 1000, true);
    put_authnkey(MACHINE_KEY, "k-m", machine_key, 1, 0, true);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    oidc_ctx_free(ctx);
    store_close(store);
    fx_rm_rf(dir);
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(machine_key);
    return 0;
}

/* ---- helpers ---- */

static void call(const char *path, const char *basic, const char *body, struct oidc_response *resp)
{
    struct fx_req f;
    fx_req_form(&f, "POST", path, body);
    if (basic)
        fx_req_basic(&f, basic);
    memset(resp, 0, sizeof *resp);
    oidc_handle(ctx, &f.req, resp);
    fx_req_release(&f);
}

static json_t *body_json(const struct oidc_response *resp)
{
    json_t *j = json_loadb(resp->body, resp->body_len, 0, NULL);
    assert_non_null(j);
    return j;
}

static const char *jstr(const json_t *o, const char *name)
{
    return json_string_value(json_object_get(o, name));
}

static void expect(const char *path, const char *basic, const char *body, int status,
                   const char *error)
{
    struct oidc_response resp;
    call(path, basic, body, &resp);
    if (resp.status != status)
        fprintf(stderr, "%s: status %d body %.*s\n", path, resp.status, (int)resp.body_len,
                resp.body ? resp.body : "");
    assert_int_equal(resp.status, status);
    if (error) {
        json_t *j = body_json(&resp);
        assert_string_equal(jstr(j, "error"), error);
        json_decref(j);
    }
    oidc_response_release(&resp);
}

/* A 200 JSON answer of @path. */
static json_t *ok(const char *path, const char *basic, const char *body)
{
    struct oidc_response resp;
    call(path, basic, body, &resp);
    if (resp.status != 200)
        fprintf(stderr, "%s: status %d body %.*s\n", path, resp.status, (int)resp.body_len,
                resp.body ? resp.body : "");
    assert_int_equal(resp.status, 200);
    json_t *j = body_json(&resp);
    oidc_response_release(&resp);
    return j;
}

/* Writes an AuthCode and exchanges it for @client; the token response. */
static json_t *tokens_for(const char *client, const char *basic, const char *extra,
                          const char *scope, const char *user)
{
    char code[44], hash[65], key[REPO_KEY_MAX];
    struct err e = {0};
    assert_int_equal(rand_token(code), 0);
    sha256_hex(code, strlen(code), hash);
    repo_key(key, "code/%s", hash);
    Koderid__V2__AuthCode c = KODERID__V2__AUTH_CODE__INIT;
    char *amr[1] = {(char *)"pwd"};
    c.client_id = (char *)client;
    c.user_id = (char *)(user ? user : ADA);
    c.redirect_uri = (char *)"https://app.example/cb";
    c.scope = (char *)scope;
    c.auth_time = store_now_ms() / 1000 - 100;
    c.n_amr = 1;
    c.amr = amr;
    c.issued_at = store_now_ms() / 1000;
    c.session_id = (char *)"sess1";
    assert_int_equal(repo_put(store, key, &c.base, 60000, NULL, &e), 0);
    char body[8192];
    snprintf(body, sizeof body,
             "grant_type=authorization_code&code=%s&redirect_uri=https%%3A%%2F%%2Fapp.example"
             "%%2Fcb%s",
             code, extra ? extra : "");
    return ok("/oauth/v2/token", basic, body);
}

static json_t *web_tokens(const char *scope)
{
    return tokens_for("100@proj", "100%40proj:websecret", NULL, scope, NULL);
}

static char *refresh_body(const char *rt, const char *extra)
{
    char *b = malloc(1024);
    snprintf(b, 1024, "grant_type=refresh_token&refresh_token=%s%s", rt, extra ? extra : "");
    return b;
}

static char *b64u(const void *d, size_t n)
{
    return b64url_encode_alloc(d, n);
}

/* Signs @claims with @key (alg from the key) and header kid @kid. */
static char *sign(json_t *claims, EVP_PKEY *key, const char *kid)
{
    struct err e = {0};
    char alg[OIDC_JWT_ALG_MAX];
    assert_int_equal(oidc_jwt_key_alg(key, alg, &e), 0);
    char *tok = NULL;
    assert_int_equal(oidc_jwt_sign(claims, key, kid, alg, &tok, &e), 0);
    json_decref(claims);
    return tok;
}

/* An unsigned or HMAC token with a hand-made header (alg confusion). */
static char *forge(json_t *claims, const char *alg, const char *kid, const void *hkey,
                   size_t hkeylen)
{
    json_t *h = json_pack("{s:s, s:s, s:s}", "alg", alg, "kid", kid, "typ", "JWT");
    char *hs = json_dumps(h, JSON_COMPACT), *cs = json_dumps(claims, JSON_COMPACT);
    char *h64 = b64u(hs, strlen(hs)), *c64 = b64u(cs, strlen(cs));
    char *out = malloc(strlen(h64) + strlen(c64) + 200);
    sprintf(out, "%s.%s.", h64, c64);
    if (hkey) {
        unsigned char mac[32];
        unsigned int ml = 0;
        HMAC(EVP_sha256(), hkey, (int)hkeylen, (unsigned char *)out, strlen(out) - 1, mac, &ml);
        char *s64 = b64u(mac, ml);
        strcat(out, s64);
        free(s64);
    }
    free(hs);
    free(cs);
    free(h64);
    free(c64);
    json_decref(h);
    json_decref(claims);
    return out;
}

static json_t *assertion_claims(const char *owner, const char *aud, int64_t exp_in, const char *jti)
{
    int64_t now = store_now_ms() / 1000;
    json_t *c = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", owner, "sub", owner, "aud", aud,
                          "iat", (json_int_t)now, "exp", (json_int_t)(now + exp_in));
    if (jti)
        json_object_set_new(c, "jti", json_string(jti));
    return c;
}

static char *fresh_jti(void)
{
    char id[21];
    id_new(id);
    return strdup(id);
}

static char *pkj_body(const char *assertion, const char *rest)
{
    char *b = malloc(strlen(assertion) + strlen(rest) + 200);
    sprintf(b,
            "%sclient_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-assertion-type"
            "%%3Ajwt-bearer&client_assertion=%s",
            rest, assertion);
    return b;
}

static json_t *introspect_basic(const char *basic, const char *token)
{
    char body[8192];
    snprintf(body, sizeof body, "token=%s", token);
    return ok("/oauth/v2/introspect", basic, body);
}

static bool active_for(const char *basic, const char *token)
{
    json_t *j = introspect_basic(basic, token);
    bool a = json_is_true(json_object_get(j, "active"));
    if (!a)
        assert_int_equal(json_object_size(j), 1); /* nothing but active:false */
    json_decref(j);
    return a;
}

/* ---- refresh_token ---- */

static void test_refresh_rotation(void **state)
{
    (void)state;
    json_t *t = web_tokens("openid profile offline_access");
    const char *rt1 = jstr(t, "refresh_token");
    assert_non_null(rt1);
    char *b = refresh_body(rt1, NULL);
    json_t *t2 = ok("/oauth/v2/token", "100%40proj:websecret", b);
    const char *rt2 = jstr(t2, "refresh_token");
    assert_non_null(rt2);
    assert_string_not_equal(rt1, rt2);
    assert_non_null(jstr(t2, "access_token"));
    assert_non_null(jstr(t2, "id_token"));
    assert_string_equal(jstr(t2, "scope"), "openid profile offline_access");
    /* narrowing: the access token gets less, the next refresh token keeps the grant */
    char *b2 = refresh_body(rt2, "&scope=openid");
    json_t *t3 = ok("/oauth/v2/token", "100%40proj:websecret", b2);
    assert_string_equal(jstr(t3, "scope"), "openid");
    char *b3 = refresh_body(jstr(t3, "refresh_token"), "&scope=openid%20email");
    expect("/oauth/v2/token", "100%40proj:websecret", b3, 400, "invalid_scope");
    char *b4 = refresh_body(jstr(t3, "refresh_token"), "&scope=openid%20profile");
    json_t *t4 = ok("/oauth/v2/token", "100%40proj:websecret", b4);
    assert_string_equal(jstr(t4, "scope"), "openid profile");
    free(b);
    free(b2);
    free(b3);
    free(b4);
    json_decref(t);
    json_decref(t2);
    json_decref(t3);
    json_decref(t4);
}

static void test_refresh_reuse_revokes_family(void **state)
{
    (void)state;
    json_t *t = web_tokens("openid offline_access");
    char *b1 = refresh_body(jstr(t, "refresh_token"), NULL);
    json_t *t2 = ok("/oauth/v2/token", "100%40proj:websecret", b1);
    /* the spent token again: refused, and the live one dies with its family */
    expect("/oauth/v2/token", "100%40proj:websecret", b1, 400, "invalid_grant");
    char *b2 = refresh_body(jstr(t2, "refresh_token"), NULL);
    expect("/oauth/v2/token", "100%40proj:websecret", b2, 400, "invalid_grant");
    free(b1);
    free(b2);
    json_decref(t);
    json_decref(t2);
}

static void test_refresh_bound_to_client(void **state)
{
    (void)state;
    json_t *t = web_tokens("openid offline_access");
    char *b = refresh_body(jstr(t, "refresh_token"), NULL);
    expect("/oauth/v2/token", "200:other", b, 400, "invalid_grant");
    /* the rightful client can still use it */
    json_t *t2 = ok("/oauth/v2/token", "100%40proj:websecret", b);
    free(b);
    json_decref(t);
    json_decref(t2);
    /* no refresh token without offline_access */
    json_t *t3 = web_tokens("openid");
    assert_null(json_object_get(t3, "refresh_token"));
    json_decref(t3);
    expect("/oauth/v2/token", "100%40proj:websecret", "grant_type=refresh_token&refresh_token=nope",
           400, "invalid_grant");
    expect("/oauth/v2/token", "100%40proj:websecret", "grant_type=refresh_token", 400,
           "invalid_request");
}

/* Rewrites the stored refresh token @rt with issued_at / family_created_at moved back. */
static void age_refresh(const char *rt, int64_t issued_back, int64_t created_back)
{
    char hash[65], key[REPO_KEY_MAX];
    struct err e = {0};
    sha256_hex(rt, strlen(rt), hash);
    repo_key(key, "rt/%s", hash);
    Koderid__V2__RefreshToken *r = NULL;
    assert_int_equal(repo_get(store, key, &koderid__v2__refresh_token__descriptor,
                              (ProtobufCMessage **)&r, NULL, &e),
                     0);
    r->issued_at -= issued_back;
    r->family_created_at -= created_back;
    assert_int_equal(repo_put(store, key, &r->base, 0, NULL, &e), 0);
    koderid__v2__refresh_token__free_unpacked(r, NULL);
}

static void test_refresh_expiry(void **state)
{
    (void)state;
    json_t *t = web_tokens("openid offline_access");
    age_refresh(jstr(t, "refresh_token"), 30 * 86400 + 1, 30 * 86400 + 1);
    char *b = refresh_body(jstr(t, "refresh_token"), NULL);
    expect("/oauth/v2/token", "100%40proj:websecret", b, 400, "invalid_grant");
    free(b);
    json_decref(t);
    /* used daily, but the family is older than 90 days */
    t = web_tokens("openid offline_access");
    age_refresh(jstr(t, "refresh_token"), 3600, 90 * 86400 + 1);
    b = refresh_body(jstr(t, "refresh_token"), NULL);
    expect("/oauth/v2/token", "100%40proj:websecret", b, 400, "invalid_grant");
    free(b);
    json_decref(t);
    /* idle 29 days, family 89 days: still good */
    t = web_tokens("openid offline_access");
    age_refresh(jstr(t, "refresh_token"), 29 * 86400, 89 * 86400);
    b = refresh_body(jstr(t, "refresh_token"), NULL);
    json_decref(ok("/oauth/v2/token", "100%40proj:websecret", b));
    free(b);
    json_decref(t);
}

static void test_refresh_user_locked(void **state)
{
    (void)state;
    fx_user_put(store, "300000000000000009", "bob", 1);
    json_t *t = tokens_for("100@proj", "100%40proj:websecret", NULL, "openid offline_access",
                           "300000000000000009");
    fx_user_put(store, "300000000000000009", "bob", 4); /* locked */
    char *b = refresh_body(jstr(t, "refresh_token"), NULL);
    expect("/oauth/v2/token", "100%40proj:websecret", b, 400, "invalid_grant");
    fx_user_put(store, "300000000000000009", "bob", 1); /* unlocked: the family stays ended */
    expect("/oauth/v2/token", "100%40proj:websecret", b, 400, "invalid_grant");
    free(b);
    json_decref(t);
}

struct race {
    const char *body;
    int status;
};

static void *race_thread(void *arg)
{
    struct race *r = arg;
    struct oidc_response resp;
    call("/oauth/v2/token", "100%40proj:websecret", r->body, &resp);
    r->status = resp.status;
    oidc_response_release(&resp);
    return NULL;
}

static void test_refresh_concurrent(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        json_t *t = web_tokens("openid offline_access");
        char *b = refresh_body(jstr(t, "refresh_token"), NULL);
        struct race r[8];
        pthread_t th[8];
        for (int i = 0; i < 8; i++) {
            r[i].body = b;
            r[i].status = 0;
            assert_int_equal(pthread_create(&th[i], NULL, race_thread, &r[i]), 0);
        }
        int wins = 0, refused = 0;
        for (int i = 0; i < 8; i++) {
            pthread_join(th[i], NULL);
            wins += r[i].status == 200;
            refused += r[i].status == 400;
        }
        free(b);
        json_decref(t);
        /* counted first, asserted after the frees: a failure reports, it does not leak */
        assert_int_equal(refused, 7);
        assert_int_equal(wins, 1);
    }
}

/* ---- client_credentials ---- */

static void test_client_credentials(void **state)
{
    (void)state;
    json_t *t = ok("/oauth/v2/token", "svc-opaque:machinesecret",
                   "grant_type=client_credentials&scope=openid%20profile%20offline_access");
    const char *at = jstr(t, "access_token");
    assert_non_null(at);
    assert_null(strchr(at, '.'));
    assert_null(json_object_get(t, "id_token"));
    assert_null(json_object_get(t, "refresh_token"));
    assert_string_equal(jstr(t, "scope"), "openid profile");
    assert_string_equal(jstr(t, "token_type"), "Bearer");
    /* the login name works too, and form credentials */
    json_t *t2 = ok("/oauth/v2/token", NULL,
                    "grant_type=client_credentials&client_id=svc-opaque%40org1.example"
                    "&client_secret=machinesecret");
    /* JWT access token: sub = the machine user's id */
    json_t *t3 = ok("/oauth/v2/token", "svc-jwt:jwtmachinesecret",
                    "grant_type=client_credentials&scope=openid%20"
                    "urn%3Azitadel%3Aiam%3Aorg%3Aproject%3Aid%3Ap1%3Aaud");
    const char *jwt = jstr(t3, "access_token");
    const char *d1 = strchr(jwt, '.');
    assert_non_null(d1);
    size_t n = 0;
    unsigned char *raw =
        b64url_decode_alloc(d1 + 1, (size_t)(strchr(d1 + 1, '.') - d1 - 1), false, &n);
    json_t *claims = json_loadb((char *)raw, n, 0, NULL);
    free(raw);
    assert_string_equal(jstr(claims, "sub"), MACHINE_JWT);
    assert_string_equal(jstr(claims, "iss"), ISSUER);
    assert_string_equal(json_string_value(json_array_get(json_object_get(claims, "aud"), 0)), "p1");
    json_decref(claims);
    /* introspected by the API app of p1: active, sub = the machine user, username */
    json_t *ij = introspect_basic(API_BASIC ":apisecret", jwt);
    assert_true(json_is_true(json_object_get(ij, "active")));
    assert_string_equal(jstr(ij, "sub"), MACHINE_JWT);
    assert_string_equal(jstr(ij, "username"), "svc-jwt@org1.example");
    json_decref(ij);

    expect("/oauth/v2/token", "svc-opaque:wrong", "grant_type=client_credentials", 401,
           "invalid_client");
    expect("/oauth/v2/token", "ada:whatever", "grant_type=client_credentials", 401,
           "invalid_client");
    expect("/oauth/v2/token", "nobody:x", "grant_type=client_credentials", 401, "invalid_client");
    expect("/oauth/v2/token", "svc-off:offsecret", "grant_type=client_credentials", 401,
           "invalid_client");
    expect("/oauth/v2/token", NULL, "grant_type=client_credentials&client_id=svc-opaque", 401,
           "invalid_client");
    /* an app client is not a machine user */
    expect("/oauth/v2/token", "100%40proj:websecret", "grant_type=client_credentials", 401,
           "invalid_client");
    json_decref(t);
    json_decref(t2);
    json_decref(t3);
}

static void test_machine_throttle(void **state)
{
    (void)state;
    put_machine("400000000000000007", "svc-thr", "svc-thr@org1.example", 0, "thrsecret", 4, 1);
    for (int i = 0; i < 8; i++)
        expect("/oauth/v2/token", "svc-thr:bad", "grant_type=client_credentials", 401,
               "invalid_client");
    /* throttled now: even the right secret is refused until the delay passes */
    expect("/oauth/v2/token", "svc-thr:thrsecret", "grant_type=client_credentials", 401,
           "invalid_client");
}

/* ---- secrets: cache, change, rehash ---- */

static void test_secret_cache_and_rehash(void **state)
{
    (void)state;
    struct err e = {0};
    /* a machine user with a cost-10 hash, as v1's legacy secrets */
    put_machine("400000000000000008", "svc-old", "svc-old@org1.example", 0, "oldsecret", 10, 1);
    json_decref(ok("/oauth/v2/token", "svc-old:oldsecret", "grant_type=client_credentials"));
    Koderid__V2__User *u = NULL;
    assert_int_equal(repo_user_get(store, "400000000000000008", &u, &e), 0);
    assert_memory_equal(u->secret_hash, "$2b$04$", 7);
    bool cached = true;
    assert_int_equal(oidc_secret_verify(ctx, u->id, "oldsecret", u->secret_hash, &cached, &e), 0);
    assert_false(cached); /* a new hash: the old cache entry does not apply */
    assert_int_equal(oidc_secret_verify(ctx, u->id, "oldsecret", u->secret_hash, &cached, &e), 0);
    assert_true(cached);
    assert_int_equal(oidc_secret_verify(ctx, u->id, "wrong", u->secret_hash, &cached, &e),
                     -E_INVALID_CLIENT);
    koderid__v2__user__free_unpacked(u, NULL);
    json_decref(ok("/oauth/v2/token", "svc-old:oldsecret", "grant_type=client_credentials"));
    /* a secret change forgets at once, though the old one was just verified */
    put_machine("400000000000000008", "svc-old", "svc-old@org1.example", 0, "newsecret", 4, 1);
    expect("/oauth/v2/token", "svc-old:oldsecret", "grant_type=client_credentials", 401,
           "invalid_client");
    json_decref(ok("/oauth/v2/token", "svc-old:newsecret", "grant_type=client_credentials"));

    /* an app client's cost-10 hash is rehashed too */
    Koderid__V2__Client c = KODERID__V2__CLIENT__INIT;
    int32_t grants[1] = {0};
    c.client_id = (char *)"600";
    c.project_id = (char *)"p1";
    c.state = 1;
    c.kind = 1;
    c.secret_hash = bcrypt_cost("s600", 10);
    c.n_grant_types = 1;
    c.grant_types = grants;
    assert_int_equal(repo_client_put(store, &c, &e), 0);
    free(c.secret_hash);
    assert_false(active_for("600:s600", "unknown-token"));
    Koderid__V2__Client *c2 = NULL;
    assert_int_equal(repo_client_get(store, "600", &c2, &e), 0);
    assert_memory_equal(c2->secret_hash, "$2b$04$", 7);
    koderid__v2__client__free_unpacked(c2, NULL);
    assert_false(active_for("600:s600", "unknown-token"));
    expect("/oauth/v2/introspect", "600:wrong", "token=x", 401, "invalid_client");
    assert_true(oidc_secret_needs_rehash("$2a$14$abcdefghijklmnopqrstuv"));
    assert_false(oidc_secret_needs_rehash("$2a$04$abcdefghijklmnopqrstuv"));
    assert_false(oidc_secret_needs_rehash("$y$j9T$abc"));
}

/* ---- jwt-bearer ---- */

static void test_jwt_bearer(void **state)
{
    (void)state;
    char body[8192];
    char *jti = fresh_jti();
    char *a = sign(assertion_claims(MACHINE_KEY, ISSUER, 300, jti), machine_key, "k-m");
    snprintf(body, sizeof body,
             "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer"
             "&scope=openid&assertion=%s",
             a);
    json_t *t = ok("/oauth/v2/token", NULL, body);
    assert_non_null(jstr(t, "access_token"));
    assert_null(json_object_get(t, "id_token"));
    json_decref(t);
    /* the same jti again */
    expect("/oauth/v2/token", NULL, body, 400, "invalid_grant");
    free(a);
    free(jti);

    struct {
        json_t *claims;
        const char *kid;
        int how; /* 0 sign with machine key, 1 alg none, 2 HS256 keyed with the PEM, 3 other key */
    } bad[] = {
        {assertion_claims(MACHINE_KEY, "https://elsewhere.example", 300, NULL), "k-m", 0},
        {assertion_claims(MACHINE_KEY, ISSUER, -120, NULL), "k-m", 0},
        {assertion_claims(MACHINE_KEY, ISSUER, 7 * 86400, NULL), "k-m", 0},
        {assertion_claims(MACHINE_KEY, ISSUER, 300, NULL), "nokid", 0},
        {assertion_claims(MACHINE_KEY, ISSUER, 300, NULL), "k-m", 1},
        {assertion_claims(MACHINE_KEY, ISSUER, 300, NULL), "k-m", 2},
        {assertion_claims(MACHINE_KEY, ISSUER, 300, NULL), "k-m", 3},
        {assertion_claims(MACHINE, ISSUER, 300, NULL), "k-m", 0}, /* another user's iss */
        {assertion_claims(ADA, ISSUER, 300, NULL), "k-m", 0},     /* a human */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *tok;
        if (bad[i].how == 0)
            tok = sign(bad[i].claims, machine_key, bad[i].kid);
        else if (bad[i].how == 3)
            tok = sign(bad[i].claims, ec_key, bad[i].kid);
        else if (bad[i].how == 1)
            tok = forge(bad[i].claims, "none", bad[i].kid, NULL, 0);
        else {
            BIO *b = BIO_new(BIO_s_mem());
            PEM_write_bio_PUBKEY(b, machine_key);
            char *pem;
            long n = BIO_get_mem_data(b, &pem);
            tok = forge(bad[i].claims, "HS256", bad[i].kid, pem, (size_t)n);
            BIO_free(b);
        }
        snprintf(body, sizeof body,
                 "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer"
                 "&assertion=%s",
                 tok);
        expect("/oauth/v2/token", NULL, body, 400, "invalid_grant");
        free(tok);
    }
    expect("/oauth/v2/token", NULL,
           "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c", 400,
           "invalid_grant");
    expect("/oauth/v2/token", NULL,
           "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer", 400,
           "invalid_request");
}

/* ---- private_key_jwt ---- */

static void test_private_key_jwt(void **state)
{
    (void)state;
    json_t *t = web_tokens("openid profile");
    const char *at = jstr(t, "access_token");
    char rest[4096];
    snprintf(rest, sizeof rest, "token=%s&", at);

    /* API app with an EC key, aud = the issuer */
    char *jti = fresh_jti();
    char *a = sign(assertion_claims(API_PKJ, ISSUER, 60, jti), ec_key, "k-ec");
    char *b = pkj_body(a, rest);
    json_t *j = ok("/oauth/v2/introspect", NULL, b);
    assert_true(json_is_true(json_object_get(j, "active")));
    json_decref(j);
    /* replayed jti */
    expect("/oauth/v2/introspect", NULL, b, 401, "invalid_client");
    free(a);
    free(b);
    free(jti);
    /* aud = the endpoint URL works too */
    jti = fresh_jti();
    a = sign(assertion_claims(API_PKJ, ISSUER "/oauth/v2/introspect", 60, jti), ec_key, "k-ec");
    b = pkj_body(a, rest);
    json_decref(ok("/oauth/v2/introspect", NULL, b));
    free(a);
    free(b);
    free(jti);
    /* OIDC app with an RSA key at the token endpoint: exchange, then refresh */
    jti = fresh_jti();
    a = sign(assertion_claims(PKJ_CLIENT, ISSUER "/oauth/v2/token", 60, jti), rsa_key, "k-rsa");
    b = pkj_body(a, "&");
    json_t *pt = tokens_for(PKJ_CLIENT, NULL, b, "openid offline_access", NULL);
    free(a);
    free(b);
    free(jti);
    jti = fresh_jti();
    a = sign(assertion_claims(PKJ_CLIENT, ISSUER, 60, jti), rsa_key, "k-rsa");
    char rr[4096];
    snprintf(rr, sizeof rr, "grant_type=refresh_token&refresh_token=%s&",
             jstr(pt, "refresh_token"));
    b = pkj_body(a, rr);
    json_decref(ok("/oauth/v2/token", NULL, b));
    /* its RSA key cannot be used with another client's identity, nor ES256 with RSA */
    free(a);
    free(b);
    free(jti);
    json_decref(pt);

    struct {
        json_t *claims;
        const char *kid;
        int how; /* 0 EC key, 1 none, 2 HS256 with the PEM, 3 wrong key */
        const char *extra;
    } bad[] = {
        {assertion_claims(API_PKJ, "https://evil.example", 60, "j1"), "k-ec", 0, ""},
        {assertion_claims(API_PKJ, ISSUER, -60, "j2"), "k-ec", 0, ""},
        {assertion_claims(API_PKJ, ISSUER, 3 * 3600, "j3"), "k-ec", 0, ""},
        {assertion_claims(API_PKJ, ISSUER, 60, NULL), "k-ec", 0, ""},
        {assertion_claims(API_PKJ, ISSUER, 60, "j5"), "k-old", 0, ""}, /* expired key */
        {assertion_claims(API_PKJ, ISSUER, 60, "j6"), "k-ec", 1, ""},
        {assertion_claims(API_PKJ, ISSUER, 60, "j7"), "k-ec", 2, ""},
        {assertion_claims(API_PKJ, ISSUER, 60, "j8"), "k-ec", 3, ""},
        {assertion_claims(API_PKJ, ISSUER, 60, "j9"), "k-ec", 0, "client_id=" API_BASIC "&"},
        {assertion_claims(API_BASIC, ISSUER, 60, "j10"), "k-ec", 0, ""}, /* basic client */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *tok;
        if (bad[i].how == 0)
            tok = sign(bad[i].claims, ec_key, bad[i].kid);
        else if (bad[i].how == 3)
            tok = sign(bad[i].claims, machine_key, bad[i].kid);
        else if (bad[i].how == 1)
            tok = forge(bad[i].claims, "none", bad[i].kid, NULL, 0);
        else {
            BIO *bio = BIO_new(BIO_s_mem());
            PEM_write_bio_PUBKEY(bio, ec_key);
            char *pem;
            long n = BIO_get_mem_data(bio, &pem);
            tok = forge(bad[i].claims, "HS256", bad[i].kid, pem, (size_t)n);
            BIO_free(bio);
        }
        char r2[4200];
        snprintf(r2, sizeof r2, "%s%s", bad[i].extra, rest);
        char *bb = pkj_body(tok, r2);
        expect("/oauth/v2/introspect", NULL, bb, 401, "invalid_client");
        free(bb);
        free(tok);
    }
    /* a wrong assertion type */
    expect("/oauth/v2/introspect", NULL,
           "token=x&client_assertion_type=urn%3Afoo&client_assertion=a.b.c", 401, "invalid_client");
    json_decref(t);
}

/* ---- introspection ---- */

static void expire_opaque(const char *token)
{
    char hash[65], key[REPO_KEY_MAX];
    struct err e = {0};
    sha256_hex(token, strlen(token), hash);
    repo_key(key, "at/%s", hash);
    Koderid__V2__AccessToken *a = NULL;
    assert_int_equal(repo_get(store, key, &koderid__v2__access_token__descriptor,
                              (ProtobufCMessage **)&a, NULL, &e),
                     0);
    a->expires_at = store_now_ms() / 1000 - 1;
    assert_int_equal(repo_put(store, key, &a->base, 0, NULL, &e), 0);
    koderid__v2__access_token__free_unpacked(a, NULL);
}

static void test_introspect(void **state)
{
    (void)state;
    json_t *t = web_tokens("openid profile email");
    const char *at = jstr(t, "access_token");
    json_t *j = introspect_basic(API_BASIC ":apisecret", at);
    assert_true(json_is_true(json_object_get(j, "active")));
    assert_string_equal(jstr(j, "client_id"), "100@proj");
    assert_string_equal(jstr(j, "sub"), ADA);
    assert_string_equal(jstr(j, "username"), "ada");
    assert_string_equal(jstr(j, "iss"), ISSUER);
    assert_string_equal(jstr(j, "token_type"), "Bearer");
    assert_string_equal(jstr(j, "scope"), "openid profile email");
    assert_string_equal(jstr(j, "email"), "ada@example.com");
    assert_string_equal(jstr(j, "given_name"), "Ada");
    assert_non_null(jstr(j, "jti"));
    assert_true(json_integer_value(json_object_get(j, "exp")) > store_now_ms() / 1000);
    assert_true(json_integer_value(json_object_get(j, "iat")) > 0);
    assert_true(json_is_array(json_object_get(j, "aud")));
    json_decref(j);
    /* a JWT access token */
    json_t *tj = tokens_for("101", NULL, "&client_id=101&client_secret=jwtsecret", "openid", NULL);
    assert_non_null(strchr(jstr(tj, "access_token"), '.'));
    json_t *jj = introspect_basic(API_BASIC ":apisecret", jstr(tj, "access_token"));
    assert_true(json_is_true(json_object_get(jj, "active")));
    assert_string_equal(jstr(jj, "client_id"), "101");
    assert_string_equal(jstr(jj, "sub"), ADA);
    json_decref(jj);
    json_decref(tj);

    /* an API app of another project: not in the audience */
    assert_false(active_for(API_OTHER ":apisecret", at));
    /* unknown, truncated, garbage */
    assert_false(active_for(API_BASIC ":apisecret", "unknown"));
    char trunc[64];
    snprintf(trunc, sizeof trunc, "%.20s", at);
    assert_false(active_for(API_BASIC ":apisecret", trunc));
    assert_false(active_for(API_BASIC ":apisecret", "a.b.c"));
    /* expired */
    json_t *t2 = web_tokens("openid");
    expire_opaque(jstr(t2, "access_token"));
    assert_false(active_for(API_BASIC ":apisecret", jstr(t2, "access_token")));
    json_decref(t2);
    /* client checks */
    expect("/oauth/v2/introspect", API_BASIC ":wrong", "token=x", 401, "invalid_client");
    expect("/oauth/v2/introspect", NULL, "token=x&client_id=504&client_secret=postsecret", 401,
           "invalid_client");
    expect("/oauth/v2/introspect", NULL, "token=x", 401, "invalid_client");
    expect("/oauth/v2/introspect", API_BASIC ":apisecret", "", 400, "invalid_request");
    struct fx_req f;
    struct oidc_response resp = {0};
    fx_req_init(&f, "GET", "/oauth/v2/introspect", NULL);
    oidc_handle(ctx, &f.req, &resp);
    assert_int_equal(resp.status, 405);
    oidc_response_release(&resp);
    fx_req_release(&f);
    json_decref(t);
}

/* ---- revocation ---- */

static int userinfo_status(const char *token)
{
    struct fx_req f;
    struct oidc_response resp = {0};
    char v[4200];
    snprintf(v, sizeof v, "Bearer %s", token);
    fx_req_init(&f, "GET", "/oidc/v1/userinfo", NULL);
    fx_req_header(&f, "authorization", v);
    oidc_handle(ctx, &f.req, &resp);
    int s = resp.status;
    oidc_response_release(&resp);
    fx_req_release(&f);
    return s;
}

static void test_revoke(void **state)
{
    (void)state;
    char body[8192];
    /* a JWT access token: deny-listed */
    json_t *t = tokens_for("101", NULL, "&client_id=101&client_secret=jwtsecret",
                           "openid offline_access", NULL);
    const char *at = jstr(t, "access_token");
    assert_non_null(strchr(at, '.'));
    assert_int_equal(userinfo_status(at), 200);
    /* another client's token: refused, and it stays valid */
    snprintf(body, sizeof body, "token=%s", at);
    expect("/oauth/v2/revoke", "100%40proj:websecret", body, 400, "invalid_request");
    assert_int_equal(userinfo_status(at), 200);
    assert_true(active_for(API_BASIC ":apisecret", at));
    /* a wrong hint still finds it */
    snprintf(body, sizeof body,
             "token=%s&token_type_hint=refresh_token&client_id=101&client_secret=jwtsecret", at);
    expect("/oauth/v2/revoke", NULL, body, 200, NULL);
    assert_int_equal(userinfo_status(at), 401);
    assert_false(active_for(API_BASIC ":apisecret", at));
    /* its refresh token: another client cannot, the owner can, and the family ends */
    snprintf(body, sizeof body, "token=%s&token_type_hint=refresh_token", jstr(t, "refresh_token"));
    expect("/oauth/v2/revoke", "100%40proj:websecret", body, 400, "invalid_request");
    snprintf(body, sizeof body,
             "token=%s&token_type_hint=refresh_token&client_id=101&client_secret=jwtsecret",
             jstr(t, "refresh_token"));
    expect("/oauth/v2/revoke", NULL, body, 200, NULL);
    char *rb = refresh_body(jstr(t, "refresh_token"), "&client_id=101&client_secret=jwtsecret");
    expect("/oauth/v2/token", NULL, rb, 400, "invalid_grant");
    free(rb);
    json_decref(t);
}

static void test_revoke_opaque_and_refresh(void **state)
{
    (void)state;
    char body[8192];
    json_t *t = web_tokens("openid offline_access");
    snprintf(body, sizeof body, "token=%s", jstr(t, "access_token"));
    expect("/oauth/v2/revoke", "100%40proj:websecret", body, 200, NULL);
    assert_int_equal(userinfo_status(jstr(t, "access_token")), 401);
    /* revoking again, unknown tokens: 200 */
    expect("/oauth/v2/revoke", "100%40proj:websecret", body, 200, NULL);
    expect("/oauth/v2/revoke", "100%40proj:websecret", "token=unknown-token", 200, NULL);
    expect("/oauth/v2/revoke", "100%40proj:websecret", "token=a.b.c", 200, NULL);
    /* refresh token without hint: found after the access token lookup */
    char *rb = refresh_body(jstr(t, "refresh_token"), NULL);
    snprintf(body, sizeof body, "token=%s&token_type_hint=access_token", jstr(t, "refresh_token"));
    expect("/oauth/v2/revoke", "200:other", body, 400, "invalid_request");
    json_t *t2 = ok("/oauth/v2/token", "100%40proj:websecret", rb); /* still valid */
    free(rb);
    snprintf(body, sizeof body, "token=%s", jstr(t2, "refresh_token"));
    expect("/oauth/v2/revoke", "100%40proj:websecret", body, 200, NULL);
    rb = refresh_body(jstr(t2, "refresh_token"), NULL);
    expect("/oauth/v2/token", "100%40proj:websecret", rb, 400, "invalid_grant");
    free(rb);
    /* request checks */
    expect("/oauth/v2/revoke", "100%40proj:websecret", "token=x&token_type_hint=id_token", 400,
           "unsupported_token_type");
    expect("/oauth/v2/revoke", "100%40proj:websecret", "token_type_hint=access_token", 400,
           "invalid_request");
    expect("/oauth/v2/revoke", "100%40proj:wrong", "token=x", 401, "invalid_client");
    json_decref(t);
    json_decref(t2);
}

static void test_discovery(void **state)
{
    (void)state;
    struct err e = {0};
    char *d = oidc_discovery_json(ISSUER, &e);
    assert_non_null(d);
    json_t *j = json_loads(d, 0, NULL);
    free(d);
    assert_string_equal(jstr(j, "introspection_endpoint"), ISSUER "/oauth/v2/introspect");
    assert_string_equal(jstr(j, "revocation_endpoint"), ISSUER "/oauth/v2/revoke");
    const char *grants[] = {"authorization_code", "implicit", "refresh_token",
                            "client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer"};
    json_t *g = json_object_get(j, "grant_types_supported");
    assert_int_equal(json_array_size(g), 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(json_string_value(json_array_get(g, i)), grants[i]);
    /* exactly what authorize answers (v1 lists the same) */
    const char *rtypes[] = {"code", "id_token", "id_token token"};
    json_t *rt = json_object_get(j, "response_types_supported");
    assert_int_equal(json_array_size(rt), 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(json_string_value(json_array_get(rt, i)), rtypes[i]);
    const char *modes[] = {"query", "fragment", "form_post"};
    json_t *rm = json_object_get(j, "response_modes_supported");
    assert_int_equal(json_array_size(rm), 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(json_string_value(json_array_get(rm, i)), modes[i]);
    assert_true(json_is_true(json_object_get(j, "authorization_response_iss_parameter_supported")));
    json_t *m = json_object_get(j, "token_endpoint_auth_methods_supported");
    assert_string_equal(json_string_value(json_array_get(m, 3)), "private_key_jwt");
    json_t *im = json_object_get(j, "introspection_endpoint_auth_methods_supported");
    assert_int_equal(json_array_size(im), 2);
    json_decref(j);
}

int main(void)
{
    cmocka_set_message_output(CM_OUTPUT_TAP);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refresh_rotation),
        cmocka_unit_test(test_refresh_reuse_revokes_family),
        cmocka_unit_test(test_refresh_bound_to_client),
        cmocka_unit_test(test_refresh_expiry),
        cmocka_unit_test(test_refresh_user_locked),
        cmocka_unit_test(test_refresh_concurrent),
        cmocka_unit_test(test_client_credentials),
        cmocka_unit_test(test_machine_throttle),
        cmocka_unit_test(test_secret_cache_and_rehash),
        cmocka_unit_test(test_jwt_bearer),
        cmocka_unit_test(test_private_key_jwt),
        cmocka_unit_test(test_introspect),
        cmocka_unit_test(test_revoke),
        cmocka_unit_test(test_revoke_opaque_and_refresh),
        cmocka_unit_test(test_discovery),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
