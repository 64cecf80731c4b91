/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The authorization endpoint and the login form, called through oidc_handle() with request
 * structs over a temporary LMDB store: parameter validation, page vs redirect errors, the
 * form flow (GET -> POST with CSRF -> AuthCode record), CSRF failure, wrong password, locked
 * and machine users, throttling, sessions, the hash upgrade; the implicit flow (id_token,
 * "id_token token") and the response modes (fragment, form_post, refusals), prompt, max_age and
 * auth_time against an aged session.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <crypt.h>
#include <ftw.h>
#include <unistd.h>

#include "common/b64.h"
#include "common/buf.h"
#include "common/rand.h"
#include "oidc/jwt.h"
#include "oidc/keys.h"
#include "oidc/oidc.h"
#include "oidc/params.h"
#include "oidc/session.h"
#include "storage/repo.h"
#include "storage/store.h"
#include "fixture_tmp.h"

#define ISSUER "https://id.example.com"
#define RP_CB "https://rp.example.com/cb"
#define CHALLENGE "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

static char tmpdir[256];
static char master[300];
static struct store *store;
static struct oidc_ctx *ctx;
static char bcrypt_hash[128];

static void put_client(const char *id, int app_type, int auth_method, int state, char **uris,
                       size_t nuris, bool refresh)
{
    Koderid__V2__Client c = KODERID__V2__CLIENT__INIT;
    int32_t rt[] = {0}, gt[] = {0, 2};
    struct err e = {0};
    c.client_id = (char *)id;
    c.name = "Test App";
    c.project_id = "p1";
    c.state = state;
    c.redirect_uris = uris;
    c.n_redirect_uris = nuris;
    c.response_types = rt;
    c.n_response_types = 1;
    c.grant_types = gt;
    c.n_grant_types = refresh ? 2 : 1;
    c.app_type = app_type;
    c.auth_method = auth_method;
    if (repo_client_put(store, &c, &e) < 0)
        fail_msg("client put: %s", e.msg);
}

static void put_client_types(const char *id, char **uris, size_t nuris, int32_t *rt, size_t nrt,
                             int32_t *gt, size_t ngt, int access_token_type)
{
    Koderid__V2__Client c = KODERID__V2__CLIENT__INIT;
    struct err e = {0};
    c.client_id = (char *)id;
    c.name = "Legacy App";
    c.project_id = "p1";
    c.state = 1;
    c.redirect_uris = uris;
    c.n_redirect_uris = nuris;
    c.response_types = rt;
    c.n_response_types = nrt;
    c.grant_types = gt;
    c.n_grant_types = ngt;
    c.app_type = 1;
    c.auth_method = 2;
    c.access_token_type = access_token_type;
    if (repo_client_put(store, &c, &e) < 0)
        fail_msg("client put: %s", e.msg);
}

static void put_user(const char *id, const char *username, int type, int state, const char *hash)
{
    Koderid__V2__User u = KODERID__V2__USER__INIT;
    char domain_name[128];
    char *names[2] = {(char *)username, domain_name};
    struct err e = {0};
    snprintf(domain_name, sizeof domain_name, "%s@example.com", username);
    u.id = (char *)id;
    u.org_id = "o1";
    u.username = (char *)username;
    u.login_name = domain_name;
    u.login_names = names;
    u.n_login_names = 2;
    u.state = state;
    u.type = type;
    u.password_hash = (char *)hash;
    u.v1_password_hash = (char *)hash;
    if (repo_user_put(store, &u, &e) < 0)
        fail_msg("user put: %s", e.msg);
}

static int setup(void **state)
{
    (void)state;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/koder-authz-test-XXXXXX", base);
    if (!mkdtemp(tmpdir))
        return -1;
    struct store_config cfg = {
        .backend = "lmdb", .data_dir = tmpdir, .lmdb_map_size = (size_t)64 << 20};
    struct err e = {0};
    if (store_open(&cfg, &store, &e) < 0) {
        fprintf(stderr, "store_open: %s\n", e.msg);
        return -1;
    }
    snprintf(master, sizeof master, "%s/master.key", tmpdir);
    struct oidc_config oc = {.issuer = ISSUER,
                             .yescrypt_cost = 1,
                             .hash_workers = 2,
                             .hash_queue_max = 16,
                             .master_key_file = master,
                             .create_master_key = true};
    if (oidc_ctx_new(&oc, store, &ctx, &e) < 0) {
        fprintf(stderr, "oidc_ctx_new: %s\n", e.msg);
        return -1;
    }

    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    crypt_gensalt_rn("$2b$", 4, NULL, 0, setting, sizeof setting);
    snprintf(bcrypt_hash, sizeof bcrypt_hash, "%s", crypt_rn("s3cret pw", setting, &cd, sizeof cd));
    bcrypt_hash[2] = 'a'; /* as Go's bcrypt (v1) writes it */

    char *web[] = {RP_CB, "https://rp.example.com/other?x=1"};
    char *spa[] = {"https://spa.example.com/"};
    char *nat[] = {"http://127.0.0.1/cb", "com.example.app:/oauth"};
    put_client("web1@proj", 0, 0, 1, web, 2, true);
    put_client("spa1", 1, 2, 1, spa, 1, false);
    put_client("nat1", 2, 2, 1, nat, 2, false);
    put_client("off1", 0, 0, 2, web, 2, false);
    /* implicit clients: id_token and "id_token token" with the implicit grant (v1's 1 and 2) */
    int32_t imp_rt[] = {1, 2}, imp_gt[] = {1}, all_rt[] = {0, 1, 2}, code_gt[] = {0};
    put_client_types("imp1", web, 2, imp_rt, 2, imp_gt, 1, 0);
    put_client_types("impjwt", web, 2, imp_rt, 2, imp_gt, 1, 1);
    put_client_types("nogrant", web, 2, all_rt, 3, code_gt, 1, 0); /* types, not the grant */
    put_user("100", "alice", 1, 1, bcrypt_hash);
    put_user("101", "bob", 1, 4, bcrypt_hash);   /* locked */
    put_user("102", "carol", 1, 6, bcrypt_hash); /* initial */
    put_user("103", "robot", 2, 1, bcrypt_hash); /* machine */
    put_user("104", "dave", 1, 1, bcrypt_hash);
    put_user("105", "erin", 1, 1, bcrypt_hash);
    Koderid__V2__ProjectRole role = KODERID__V2__PROJECT_ROLE__INIT;
    role.project_id = "p1";
    role.key = "admin";
    repo_put(store, "role/p1/admin", &role.base, 0, NULL, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    oidc_ctx_free(ctx);
    store_close(store);
    fx_rm_rf(tmpdir);
    return 0;
}

/* One call through the router. */
static void call(struct oidc_response *resp, const char *method, const char *path,
                 const char *query, const char *body, const char *cookie)
{
    struct oidc_kv headers[2];
    size_t nh = 0;
    if (body)
        headers[nh++] = (struct oidc_kv){"content-type", "application/x-www-form-urlencoded"};
    if (cookie)
        headers[nh++] = (struct oidc_kv){"cookie", (char *)cookie};
    struct oidc_request req = {.method = method,
                               .path = path,
                               .query = query,
                               .query_len = query ? strlen(query) : 0,
                               .body = body,
                               .body_len = body ? strlen(body) : 0,
                               .headers = headers,
                               .nheaders = nh,
                               .client_addr = "192.0.2.10"};
    memset(resp, 0, sizeof *resp);
    oidc_handle(ctx, &req, resp);
}

static const char *hdr(const struct oidc_response *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static bool body_has(const struct oidc_response *r, const char *s)
{
    return r->body && memmem(r->body, r->body_len, s, strlen(s)) != NULL;
}

/* The parameters of a Location's query, parsed. */
static void location_params(const struct oidc_response *r, const char *prefix,
                            struct oidc_params *p)
{
    const char *loc = hdr(r, "location");
    assert_non_null(loc);
    if (strncmp(loc, prefix, strlen(prefix)) != 0)
        fail_msg("location '%s' does not start with '%s'", loc, prefix);
    const char *q = strchr(loc, '#'); /* fragment responses */
    if (!q)
        q = strchr(loc, '?');
    assert_non_null(q);
    struct err e = {0};
    assert_int_equal(oidc_params_parse(q + 1, strlen(q + 1), p, &e), 0);
}

/* "name=value" of a Set-Cookie for @name (with prefix), into @out. */
static bool cookie_from(const struct oidc_response *r, const char *name, char *out, size_t n)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        if (strcmp(r->headers[i].name, "set-cookie") != 0)
            continue;
        const char *v = r->headers[i].value;
        if (strncmp(v, name, strlen(name)) == 0 && v[strlen(name)] == '=') {
            size_t len = strcspn(v, ";");
            assert_true(len < n);
            memcpy(out, v, len);
            out[len] = '\0';
            return true;
        }
    }
    return false;
}

static void hidden_value(const struct oidc_response *r, const char *name, char *out, size_t n)
{
    char needle[64];
    snprintf(needle, sizeof needle, "name=\"%s\" value=\"", name);
    const char *p = memmem(r->body, r->body_len, needle, strlen(needle));
    assert_non_null(p);
    p += strlen(needle);
    size_t len = strcspn(p, "\"");
    assert_true(len < n);
    memcpy(out, p, len);
    out[len] = '\0';
}

static void assert_page_error(const char *query)
{
    struct oidc_response r;
    call(&r, "GET", "/oauth/v2/authorize", query, NULL, NULL);
    if (r.status != 400 || hdr(&r, "location"))
        fail_msg("query '%s': status %d location %s", query, r.status,
                 hdr(&r, "location") ? hdr(&r, "location") : "-");
    assert_string_equal(hdr(&r, "content-type"), "text/html; charset=utf-8");
    oidc_response_release(&r);
}

/* An error redirected to RP_CB in the query (@sep "?") or the fragment ("#"). */
static void assert_redirect_error_in(const char *query, const char *error, const char *state,
                                     const char *sep)
{
    struct oidc_response r;
    struct oidc_params p = {0};
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s%s", RP_CB, sep);
    call(&r, "GET", "/oauth/v2/authorize", query, NULL, NULL);
    if (r.status != 302)
        fail_msg("query '%s': status %d", query, r.status);
    location_params(&r, prefix, &p);
    const char *got = oidc_params_get(&p, "error");
    if (!got || strcmp(got, error) != 0)
        fail_msg("query '%s': error %s, want %s", query, got ? got : "-", error);
    assert_string_equal(oidc_params_get(&p, "iss"), ISSUER);
    if (state)
        assert_string_equal(oidc_params_get(&p, "state"), state);
    assert_null(oidc_params_get(&p, "code"));
    assert_null(oidc_params_get(&p, "id_token"));
    assert_null(oidc_params_get(&p, "access_token"));
    oidc_params_release(&p);
    oidc_response_release(&r);
}

static void assert_redirect_error(const char *query, const char *error, const char *state)
{
    assert_redirect_error_in(query, error, state, "?");
}

#define Q_BASE "client_id=web1%40proj&redirect_uri=https%3A%2F%2Frp.example.com%2Fcb"

static void test_page_errors(void **state)
{
    (void)state;
    assert_page_error("response_type=code&scope=openid");
    assert_page_error("client_id=nope&redirect_uri=https%3A%2F%2Frp.example.com%2Fcb&response_type="
                      "code&scope=openid");
    assert_page_error("client_id=off1&redirect_uri=https%3A%2F%2Frp.example.com%2Fcb&response_type="
                      "code&scope=openid");
    assert_page_error("client_id=web1%40proj&response_type=code&scope=openid");
    assert_page_error("client_id=web1%40proj&redirect_uri=https%3A%2F%2Fevil.com%2Fcb&response_"
                      "type=code&scope=openid");
    assert_page_error("client_id=web1%40proj&redirect_uri=https%3A%2F%2Frp.example.com%40evil.com%"
                      "2Fcb&response_type=code&scope=openid");
    assert_page_error("client_id=web1%40proj&redirect_uri=https%3A%2F%2Frp.example.com%2Fcb%23x&"
                      "response_type=code&scope=openid");
    /* duplicate parameter: refused before anything is trusted */
    assert_page_error(Q_BASE "&response_type=code&scope=openid&state=a&state=b");
    assert_page_error(
        Q_BASE "&redirect_uri=https%3A%2F%2Frp.example.com%2Fcb&response_type=code&scope=openid");
    /* a public client's unregistered loopback port is fine only for native apps */
    assert_page_error("client_id=spa1&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2F&response_type="
                      "code&scope=openid");

    struct oidc_response r;
    call(&r, "PUT", "/oauth/v2/authorize", NULL, NULL, NULL);
    assert_int_equal(r.status, 405);
    oidc_response_release(&r);
}

static void test_redirect_errors(void **state)
{
    (void)state;
    assert_redirect_error(Q_BASE "&response_type=token&scope=openid&state=s1",
                          "unsupported_response_type", "s1");
    assert_redirect_error(Q_BASE "&response_type=code+id_token&scope=openid&state=s1",
                          "unsupported_response_type", "s1");
    /* implicit for a client not configured for it: refused, in the fragment */
    assert_redirect_error_in(Q_BASE "&response_type=id_token&scope=openid&nonce=n&state=s1",
                             "unauthorized_client", "s1", "#");
    assert_redirect_error(Q_BASE "&scope=openid&state=s2", "invalid_request", "s2");
    assert_redirect_error(Q_BASE "&response_type=code&scope=profile+email&state=s3",
                          "invalid_scope", "s3");
    assert_redirect_error(Q_BASE "&response_type=code&state=s3", "invalid_request", "s3");
    assert_redirect_error(Q_BASE "&response_type=code&scope=openid&code_challenge=" CHALLENGE
                                 "&code_challenge_method=plain",
                          "invalid_request", NULL);
    assert_redirect_error(Q_BASE "&response_type=code&scope=openid&code_challenge=" CHALLENGE,
                          "invalid_request", NULL);
    assert_redirect_error(Q_BASE "&response_type=code&scope=openid&code_challenge=short"
                                 "&code_challenge_method=S256",
                          "invalid_request", NULL);
    assert_redirect_error(Q_BASE "&response_type=code&scope=openid&code_challenge_method=S256",
                          "invalid_request", NULL);
    assert_redirect_error(Q_BASE "&response_type=code&scope=openid&prompt=none&state=s4",
                          "login_required", "s4");
    assert_redirect_error(Q_BASE "&response_type=code&scope=openid&prompt=none+login",
                          "invalid_request", NULL);
    assert_redirect_error(Q_BASE "&response_type=code&scope=openid&prompt=none+bogus",
                          "invalid_request", NULL);
    assert_redirect_error(Q_BASE "&response_type=code&scope=openid&max_age=-1", "invalid_request",
                          NULL);
    assert_redirect_error(Q_BASE "&response_type=code&scope=openid&response_mode=bogus&state=s5",
                          "invalid_request", "s5");
    assert_redirect_error(Q_BASE "&response_type=code&scope=openid&response_mode=Query",
                          "invalid_request", NULL);
    assert_redirect_error_in(Q_BASE "&response_type=code&response_mode=fragment&state=s6",
                             "invalid_request", "s6", "#");
    /* OpenID Connect Core 3.1.2.6: the errors for what discovery says is not supported. */
    assert_redirect_error(Q_BASE "&response_type=code&scope=openid&request=eyJ",
                          "request_not_supported", NULL);
    assert_redirect_error(Q_BASE "&response_type=code&scope=openid&request_uri=https%3A%2F%2Fx",
                          "request_uri_not_supported", NULL);

    /* public client without PKCE: redirected error at its own redirect_uri */
    struct oidc_response r;
    struct oidc_params p = {0};
    call(&r, "GET", "/oauth/v2/authorize",
         "client_id=spa1&redirect_uri=https%3A%2F%2Fspa.example.com%2F&response_type=code"
         "&scope=openid&state=z",
         NULL, NULL);
    assert_int_equal(r.status, 302);
    location_params(&r, "https://spa.example.com/?", &p);
    assert_string_equal(oidc_params_get(&p, "error"), "invalid_request");
    assert_string_equal(oidc_params_get(&p, "state"), "z");
    oidc_params_release(&p);
    oidc_response_release(&r);

    /* a registered URI with a query keeps it, the error parameters are appended */
    call(&r, "GET", "/oauth/v2/authorize",
         "client_id=web1%40proj&redirect_uri=https%3A%2F%2Frp.example.com%2Fother%3Fx%3D1"
         "&response_type=code",
         NULL, NULL);
    assert_int_equal(r.status, 302);
    assert_non_null(strstr(hdr(&r, "location"), "https://rp.example.com/other?x=1&error="));
    oidc_response_release(&r);
}

/* Starts an authorization; returns the authRequestID from the login redirect. */
static void start(const char *query, const char *cookie, char id[64])
{
    struct oidc_response r;
    struct oidc_params p = {0};
    call(&r, "GET", "/oauth/v2/authorize", query, NULL, cookie);
    if (r.status != 302)
        fail_msg("authorize '%s': status %d", query, r.status);
    location_params(&r, "/ui/login/login?", &p);
    const char *v = oidc_params_get(&p, "authRequestID");
    assert_non_null(v);
    snprintf(id, 64, "%s", v);
    oidc_params_release(&p);
    oidc_response_release(&r);
}

static Koderid__V2__AuthRequest *load_authreq(const char *id)
{
    char key[REPO_KEY_MAX];
    ProtobufCMessage *m = NULL;
    repo_key(key, "authreq/%s", id);
    if (repo_get(store, key, &koderid__v2__auth_request__descriptor, &m, NULL, NULL) < 0)
        return NULL;
    return (Koderid__V2__AuthRequest *)m;
}

static void test_pending_request_stored(void **state)
{
    (void)state;
    char id[64];
    start(Q_BASE "&response_type=code&scope=openid+profile+bogus+offline_access+openid"
                 "+urn%3Azitadel%3Aiam%3Aorg%3Aproject%3Arole%3Aadmin"
                 "+urn%3Azitadel%3Aiam%3Aorg%3Aproject%3Arole%3Anope"
                 "&state=st&nonce=n0&login_hint=alice&max_age=300&prompt=consent"
                 "&code_challenge=" CHALLENGE "&code_challenge_method=S256",
          NULL, id);
    assert_int_equal(strlen(id), 43);
    Koderid__V2__AuthRequest *ar = load_authreq(id);
    assert_non_null(ar);
    assert_string_equal(ar->client_id, "web1@proj");
    assert_string_equal(ar->redirect_uri, RP_CB);
    assert_string_equal(ar->scope,
                        "openid profile offline_access urn:zitadel:iam:org:project:role:admin");
    assert_string_equal(ar->state, "st");
    assert_string_equal(ar->nonce, "n0");
    assert_string_equal(ar->login_hint, "alice");
    assert_int_equal(ar->max_age, 300);
    assert_int_equal(ar->n_prompt, 1);
    assert_string_equal(ar->prompt[0], "consent");
    assert_string_equal(ar->code_challenge, CHALLENGE);
    assert_string_equal(ar->code_challenge_method, "S256");
    koderid__v2__auth_request__free_unpacked(ar, NULL);

    /* offline_access is dropped for a client without the refresh_token grant */
    start("client_id=nat1&redirect_uri=http%3A%2F%2F127.0.0.1%3A43123%2Fcb&response_type=code"
          "&scope=openid+offline_access&code_challenge=" CHALLENGE "&code_challenge_method=S256",
          NULL, id);
    ar = load_authreq(id);
    assert_non_null(ar);
    assert_string_equal(ar->scope, "openid");
    assert_string_equal(ar->redirect_uri, "http://127.0.0.1:43123/cb");
    koderid__v2__auth_request__free_unpacked(ar, NULL);

    /* POST to the authorization endpoint works the same */
    struct oidc_response r;
    call(&r, "POST", "/oauth/v2/authorize", NULL, Q_BASE "&response_type=code&scope=openid", NULL);
    assert_int_equal(r.status, 302);
    assert_non_null(strstr(hdr(&r, "location"), "/ui/login/login?authRequestID="));
    oidc_response_release(&r);
}

struct form {
    char id[64];
    char csrf[64];
    char csrf_cookie[128];
};

/* GET of the login page: checks the headers and returns the form's values. */
static void get_form(const char *id, const char *cookie, struct form *f, const char *prefill)
{
    struct oidc_response r;
    char q[128];
    snprintf(q, sizeof q, "authRequestID=%s", id);
    call(&r, "GET", "/ui/login/login", q, NULL, cookie);
    assert_int_equal(r.status, 200);
    assert_string_equal(hdr(&r, "content-type"), "text/html; charset=utf-8");
    const char *csp = hdr(&r, "content-security-policy");
    assert_non_null(csp);
    assert_non_null(strstr(csp, "default-src 'none'"));
    assert_non_null(strstr(csp, "frame-ancestors 'none'"));
    assert_non_null(strstr(csp, "style-src 'sha256-"));
    assert_non_null(strstr(csp, "form-action 'self' https://rp.example.com;"));
    assert_string_equal(hdr(&r, "x-content-type-options"), "nosniff");
    assert_string_equal(hdr(&r, "x-frame-options"), "DENY");
    assert_string_equal(hdr(&r, "referrer-policy"), "no-referrer");
    assert_string_equal(hdr(&r, "cache-control"), "no-store");
    assert_true(body_has(&r, "<form method=\"post\" action=\"/ui/login/login\">"));
    assert_true(body_has(&r, "Test App") || body_has(&r, "Legacy App"));
    if (prefill) {
        char want[128];
        snprintf(want, sizeof want, "value=\"%s\"", prefill);
        assert_true(body_has(&r, want));
    }
    snprintf(f->id, sizeof f->id, "%s", id);
    hidden_value(&r, "csrf", f->csrf, sizeof f->csrf);
    assert_int_equal(strlen(f->csrf), 43);
    if (cookie) {
        if (cookie != f->csrf_cookie)
            snprintf(f->csrf_cookie, sizeof f->csrf_cookie, "%s", cookie);
    } else {
        assert_true(cookie_from(&r, "__Host-koder_csrf", f->csrf_cookie, sizeof f->csrf_cookie));
        const char *sc = hdr(&r, "set-cookie");
        assert_non_null(strstr(sc, "; Path=/; HttpOnly; SameSite=Lax; Secure"));
    }
    oidc_response_release(&r);
}

static void post_form(struct oidc_response *r, const struct form *f, const char *login,
                      const char *password, const char *cookie)
{
    char body[512];
    snprintf(body, sizeof body, "authRequestID=%s&csrf=%s&loginName=%s&password=%s", f->id, f->csrf,
             login, password);
    call(r, "POST", "/ui/login/login", NULL, body, cookie ? cookie : f->csrf_cookie);
}

static Koderid__V2__AuthCode *load_code(const char *code)
{
    char hex[65], key[REPO_KEY_MAX];
    ProtobufCMessage *m = NULL;
    sha256_hex(code, strlen(code), hex);
    repo_key(key, "code/%s", hex);
    if (repo_get(store, key, &koderid__v2__auth_code__descriptor, &m, NULL, NULL) < 0)
        return NULL;
    return (Koderid__V2__AuthCode *)m;
}

static Koderid__V2__User *load_user(const char *id)
{
    Koderid__V2__User *u = NULL;
    assert_int_equal(repo_user_get(store, id, &u, NULL), 0);
    return u;
}

static void test_login_flow(void **state)
{
    (void)state;
    char id[64], session_cookie[128];
    struct form f;
    struct oidc_response r;
    struct oidc_params p = {0};

    start(Q_BASE "&response_type=code&scope=openid+email&state=xyz&nonce=abc&login_hint=alice"
                 "&code_challenge=" CHALLENGE "&code_challenge_method=S256",
          NULL, id);
    get_form(id, NULL, &f, "alice");
    int64_t before = store_now_ms() / 1000;
    post_form(&r, &f, "alice%40example.com", "s3cret+pw", NULL);
    if (r.status != 303)
        fail_msg("login POST status %d: %.*s", r.status, (int)r.body_len, r.body ? r.body : "");
    location_params(&r, RP_CB "?code=", &p);
    assert_string_equal(oidc_params_get(&p, "state"), "xyz");
    assert_string_equal(oidc_params_get(&p, "iss"), ISSUER);
    assert_non_null(strstr(hdr(&r, "location"), "&iss=https%3A%2F%2Fid.example.com"));
    assert_true(cookie_from(&r, "__Host-koder_session", session_cookie, sizeof session_cookie));
    for (size_t i = 0; i < r.nheaders; i++)
        if (strcmp(r.headers[i].name, "set-cookie") == 0 &&
            strncmp(r.headers[i].value, "__Host-koder_session=", 21) == 0)
            assert_non_null(strstr(r.headers[i].value, "; Path=/; HttpOnly; SameSite=Lax; Secure"));

    Koderid__V2__AuthCode *c = load_code(oidc_params_get(&p, "code"));
    assert_non_null(c);
    assert_string_equal(c->client_id, "web1@proj");
    assert_string_equal(c->user_id, "100");
    assert_string_equal(c->redirect_uri, RP_CB);
    assert_string_equal(c->scope, "openid email");
    assert_string_equal(c->nonce, "abc");
    assert_string_equal(c->code_challenge, CHALLENGE);
    assert_string_equal(c->code_challenge_method, "S256");
    assert_true(c->auth_time >= before && c->auth_time <= before + 5);
    assert_int_equal(c->n_amr, 1);
    assert_string_equal(c->amr[0], "pwd");
    assert_int_equal(strlen(c->session_id), 18);
    assert_false(c->used);
    char sid[32];
    snprintf(sid, sizeof sid, "%s", c->session_id);
    int64_t auth_time = c->auth_time;
    koderid__v2__auth_code__free_unpacked(c, NULL);
    oidc_params_release(&p);
    oidc_response_release(&r);

    /* the request was consumed: posting it again fails */
    post_form(&r, &f, "alice", "s3cret+pw", NULL);
    assert_int_equal(r.status, 400);
    assert_null(hdr(&r, "location"));
    oidc_response_release(&r);
    assert_null(load_authreq(id));

    /* the bcrypt hash was upgraded to yescrypt; v1's hash is kept beside it */
    Koderid__V2__User *u = load_user("100");
    assert_memory_equal(u->password_hash, "$y$", 3);
    assert_string_equal(u->v1_password_hash, bcrypt_hash);
    koderid__v2__user__free_unpacked(u, NULL);

    /* the session answers the next authorization at once, with the same auth_time */
    call(&r, "GET", "/oauth/v2/authorize", Q_BASE "&response_type=code&scope=openid&state=2", NULL,
         session_cookie);
    assert_int_equal(r.status, 302);
    location_params(&r, RP_CB "?code=", &p);
    c = load_code(oidc_params_get(&p, "code"));
    assert_non_null(c);
    assert_string_equal(c->user_id, "100");
    assert_string_equal(c->session_id, sid);
    assert_int_equal(c->auth_time, auth_time);
    assert_string_equal(c->code_challenge, "");
    koderid__v2__auth_code__free_unpacked(c, NULL);
    oidc_params_release(&p);
    oidc_response_release(&r);

    /* prompt=none with a session: a code; prompt=login and max_age=0: the login page */
    call(&r, "GET", "/oauth/v2/authorize", Q_BASE "&response_type=code&scope=openid&prompt=none",
         NULL, session_cookie);
    assert_int_equal(r.status, 302);
    assert_non_null(strstr(hdr(&r, "location"), RP_CB "?code="));
    oidc_response_release(&r);
    start(Q_BASE "&response_type=code&scope=openid&prompt=login", session_cookie, id);
    start(Q_BASE "&response_type=code&scope=openid&max_age=0", session_cookie, id);
    assert_redirect_error(Q_BASE "&response_type=code&scope=openid&prompt=none&max_age=0",
                          "login_required", NULL);

    /* the upgraded hash still signs in (and the new session replaces the old one) */
    start(Q_BASE "&response_type=code&scope=openid", NULL, id);
    get_form(id, NULL, &f, NULL);
    post_form(&r, &f, "ALICE", "s3cret+pw", NULL);
    assert_int_equal(r.status, 303);
    oidc_response_release(&r);
}

static void test_csrf_failures(void **state)
{
    (void)state;
    char id[64];
    struct form f, other;
    struct oidc_response r;

    start(Q_BASE "&response_type=code&scope=openid", NULL, id);
    get_form(id, NULL, &f, NULL);

    /* wrong token */
    struct form bad = f;
    bad.csrf[0] = bad.csrf[0] == 'A' ? 'B' : 'A';
    post_form(&r, &bad, "alice", "s3cret+pw", NULL);
    assert_int_equal(r.status, 403);
    assert_null(hdr(&r, "location"));
    assert_true(body_has(&r, "Your sign-in form expired"));
    oidc_response_release(&r);

    /* right token, no cookie (a cross-site post, or another browser) */
    get_form(id, f.csrf_cookie, &f, NULL);
    call(&r, "POST", "/ui/login/login", NULL, "x=1", NULL);
    oidc_response_release(&r);
    char body[512];
    snprintf(body, sizeof body, "authRequestID=%s&csrf=%s&loginName=alice&password=s3cret+pw", f.id,
             f.csrf);
    call(&r, "POST", "/ui/login/login", NULL, body, NULL);
    assert_int_equal(r.status, 403);
    assert_null(hdr(&r, "location"));
    oidc_response_release(&r);

    /* right token, another browser's cookie */
    get_form(id, f.csrf_cookie, &f, NULL);
    char id2[64];
    start(Q_BASE "&response_type=code&scope=openid", NULL, id2);
    get_form(id2, NULL, &other, NULL);
    post_form(&r, &f, "alice", "s3cret+pw", other.csrf_cookie);
    assert_int_equal(r.status, 403);
    oidc_response_release(&r);

    /* a token from an earlier rendering is dead once the form was rendered again */
    get_form(id, f.csrf_cookie, &f, NULL);
    struct form stale = f;
    get_form(id, f.csrf_cookie, &f, NULL);
    post_form(&r, &stale, "alice", "s3cret+pw", NULL);
    assert_int_equal(r.status, 403);

    /* a failed post renders the form again with a new token, which works */
    assert_true(body_has(&r, "name=\"csrf\""));
    char fresh[64];
    hidden_value(&r, "csrf", fresh, sizeof fresh);
    assert_string_not_equal(fresh, f.csrf);
    snprintf(f.csrf, sizeof f.csrf, "%s", fresh);
    oidc_response_release(&r);
    post_form(&r, &f, "alice", "s3cret+pw", NULL);
    assert_int_equal(r.status, 303);
    oidc_response_release(&r);

    /* unknown or malformed auth request ids get the expired page */
    call(&r, "GET", "/ui/login/login", "authRequestID=nope", NULL, NULL);
    assert_int_equal(r.status, 400);
    assert_true(body_has(&r, "expired"));
    oidc_response_release(&r);
    call(&r, "GET", "/ui/login/login", "authRequestID=..%2F..%2Fuser%2F100", NULL, NULL);
    assert_int_equal(r.status, 400);
    oidc_response_release(&r);
}

static void assert_wrong(const char *login, const char *password, const char *user_id)
{
    char id[64];
    struct form f;
    struct oidc_response r;
    start(Q_BASE "&response_type=code&scope=openid", NULL, id);
    get_form(id, NULL, &f, NULL);
    post_form(&r, &f, login, password, NULL);
    if (r.status != 401)
        fail_msg("login '%s': status %d", login, r.status);
    assert_null(hdr(&r, "location"));
    assert_true(body_has(&r, "Wrong login name or password."));
    assert_false(cookie_from(&r, "__Host-koder_session", (char[128]){0}, 128));
    /* the form is there again, with a new token, and the login name kept */
    assert_true(body_has(&r, "name=\"csrf\""));
    oidc_response_release(&r);
    (void)user_id;
}

static void test_wrong_password_and_users(void **state)
{
    (void)state;
    assert_wrong("dave", "wrong", "104");
    assert_wrong("nobody", "s3cret+pw", NULL);
    assert_wrong("robot", "s3cret+pw", "103"); /* machine users never use the form */
    assert_wrong("bob", "wrong", "101");       /* locked, wrong password: nothing revealed */

    /* locked and initial users with the right password: refused, and told why */
    const char *who[] = {"bob", "carol"};
    for (size_t i = 0; i < 2; i++) {
        char id[64];
        struct form f;
        struct oidc_response r;
        start(Q_BASE "&response_type=code&scope=openid", NULL, id);
        get_form(id, NULL, &f, NULL);
        post_form(&r, &f, who[i], "s3cret+pw", NULL);
        assert_int_equal(r.status, 403);
        assert_null(hdr(&r, "location"));
        assert_true(body_has(&r, i == 0 ? "locked" : "not active"));
        oidc_response_release(&r);
        Koderid__V2__AuthRequest *ar = load_authreq(id);
        assert_non_null(ar); /* nothing was consumed */
        koderid__v2__auth_request__free_unpacked(ar, NULL);
    }
    /* their hashes were not upgraded */
    Koderid__V2__User *u = load_user("101");
    assert_string_equal(u->password_hash, bcrypt_hash);
    koderid__v2__user__free_unpacked(u, NULL);
}

static void test_throttle(void **state)
{
    (void)state;
    char id[64];
    struct form f;
    struct oidc_response r;

    /* one budget per account, whichever of its login names is typed */
    const char *names[] = {"erin", "erin%40example.com", "ERIN", "Erin%40Example.com", "erin"};
    for (int i = 0; i < 5; i++)
        assert_wrong(names[i], "wrong", "105");
    start(Q_BASE "&response_type=code&scope=openid", NULL, id);
    get_form(id, NULL, &f, NULL);
    post_form(&r, &f, "erin%40example.com", "s3cret+pw", NULL); /* even the right password waits */
    assert_int_equal(r.status, 429);
    assert_non_null(hdr(&r, "retry-after"));
    assert_true(atoi(hdr(&r, "retry-after")) >= 1);
    assert_true(body_has(&r, "Too many failed attempts"));
    assert_null(hdr(&r, "location"));
    oidc_response_release(&r);
    /* another account from the same address is not affected yet */
    get_form(id, f.csrf_cookie, &f, NULL);
    post_form(&r, &f, "dave", "s3cret+pw", NULL);
    assert_int_equal(r.status, 303);
    oidc_response_release(&r);
}

static void test_native_and_routes(void **state)
{
    (void)state;
    char id[64];
    struct form f;
    struct oidc_response r;
    struct oidc_params p = {0};

    start("client_id=nat1&redirect_uri=http%3A%2F%2F127.0.0.1%3A43123%2Fcb&response_type=code"
          "&scope=openid&code_challenge=" CHALLENGE "&code_challenge_method=S256&state=n",
          NULL, id);
    struct oidc_response g;
    char q[128];
    snprintf(q, sizeof q, "authRequestID=%s", id);
    call(&g, "GET", "/ui/login", q, NULL, NULL);
    assert_int_equal(g.status, 200);
    assert_non_null(
        strstr(hdr(&g, "content-security-policy"), "form-action 'self' http://127.0.0.1:43123;"));
    hidden_value(&g, "csrf", f.csrf, sizeof f.csrf);
    assert_true(cookie_from(&g, "__Host-koder_csrf", f.csrf_cookie, sizeof f.csrf_cookie));
    snprintf(f.id, sizeof f.id, "%s", id);
    oidc_response_release(&g);
    post_form(&r, &f, "dave", "s3cret+pw", NULL);
    assert_int_equal(r.status, 303);
    location_params(&r, "http://127.0.0.1:43123/cb?code=", &p);
    assert_string_equal(oidc_params_get(&p, "state"), "n");
    oidc_params_release(&p);
    oidc_response_release(&r);
}

static void test_session_user_deactivated(void **state)
{
    (void)state;
    char id[64], cookie[128];
    struct form f;
    struct oidc_response r;

    put_user("106", "frank", 1, 1, bcrypt_hash);
    start(Q_BASE "&response_type=code&scope=openid", NULL, id);
    get_form(id, NULL, &f, NULL);
    post_form(&r, &f, "frank", "s3cret+pw", NULL);
    assert_int_equal(r.status, 303);
    assert_true(cookie_from(&r, "__Host-koder_session", cookie, sizeof cookie));
    oidc_response_release(&r);

    /* the session works ... */
    call(&r, "GET", "/oauth/v2/authorize", Q_BASE "&response_type=code&scope=openid&prompt=none",
         NULL, cookie);
    assert_non_null(strstr(hdr(&r, "location"), RP_CB "?code="));
    oidc_response_release(&r);

    /* ... until the user is locked: then it is no longer a sign-in */
    Koderid__V2__User *u = load_user("106");
    u->state = 4;
    assert_int_equal(repo_user_put(store, u, NULL), 0);
    koderid__v2__user__free_unpacked(u, NULL);
    assert_redirect_error(Q_BASE "&response_type=code&scope=openid&prompt=none&state=q",
                          "login_required", "q");
    call(&r, "GET", "/oauth/v2/authorize", Q_BASE "&response_type=code&scope=openid&prompt=none",
         NULL, cookie);
    assert_non_null(strstr(hdr(&r, "location"), "error=login_required"));
    oidc_response_release(&r);

    /* a forged or unknown cookie is no session */
    call(&r, "GET", "/oauth/v2/authorize", Q_BASE "&response_type=code&scope=openid&prompt=none",
         NULL, "__Host-koder_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_non_null(strstr(hdr(&r, "location"), "error=login_required"));
    oidc_response_release(&r);
    /* nor is the cookie without its __Host- prefix on an https issuer */
    call(&r, "GET", "/oauth/v2/authorize", Q_BASE "&response_type=code&scope=openid&prompt=none",
         NULL, cookie + strlen("__Host-"));
    assert_non_null(strstr(hdr(&r, "location"), "error=login_required"));
    oidc_response_release(&r);
}


/* ---- implicit flow, response modes, prompt / max_age / auth_time ---- */

#define Q_IMP "client_id=imp1&redirect_uri=https%3A%2F%2Frp.example.com%2Fcb"

static int key_cb(const char *kid, EVP_PKEY **ret_key, char alg[OIDC_JWT_ALG_MAX], void *cbdata,
                  struct err *e)
{
    (void)cbdata;
    char a[8];
    int r = oidc_keys_public(ctx->keys, kid, ret_key, a, e);
    if (r == 0)
        snprintf(alg, OIDC_JWT_ALG_MAX, "%s", a);
    return r;
}

/* Verifies @jwt's signature with the published keys; returns its claims. */
static json_t *verified_claims(const char *jwt)
{
    json_t *h = NULL, *c = NULL;
    struct err e = {0};
    if (oidc_jwt_verify(jwt, strlen(jwt), key_cb, NULL, &h, &c, &e) < 0)
        fail_msg("token does not verify: %s", e.msg);
    json_decref(h);
    return c;
}

static const char *cstr(const json_t *o, const char *name)
{
    return json_string_value(json_object_get(o, name));
}

static bool aud_has(const json_t *claims, const char *want)
{
    json_t *aud = json_object_get(claims, "aud");
    for (size_t i = 0; i < json_array_size(aud); i++)
        if (strcmp(json_string_value(json_array_get(aud, i)), want) == 0)
            return true;
    return false;
}

/* A fragment response at RP_CB: its parameters, after the checks every one gets. */
static void fragment_params(const struct oidc_response *r, struct oidc_params *p)
{
    const char *loc = hdr(r, "location");
    assert_non_null(loc);
    assert_null(strchr(loc, '?')); /* nothing in the query */
    location_params(r, RP_CB "#", p);
    assert_string_equal(oidc_params_get(p, "iss"), ISSUER);
    assert_string_equal(hdr(r, "cache-control"), "no-store");
    assert_string_equal(hdr(r, "referrer-policy"), "no-referrer");
}

/* Logs in as @user through a started request @query; returns the final response in @r and the
 * session cookie in @cookie. */
static void login_as(const char *query, const char *user, struct oidc_response *r, char *cookie,
                     size_t n)
{
    char id[64];
    struct form f;
    start(query, NULL, id);
    get_form(id, NULL, &f, NULL);
    post_form(r, &f, user, "s3cret+pw", NULL);
    if (r->status != 303 && r->status != 200)
        fail_msg("login status %d", r->status);
    if (cookie)
        assert_true(cookie_from(r, "__Host-koder_session", cookie, n));
}

static void test_implicit_errors(void **state)
{
    (void)state;
    /* nonce is required (OIDC Core 3.2.2.1), the error goes to the fragment */
    assert_redirect_error_in(Q_IMP "&response_type=id_token&scope=openid&state=s1",
                             "invalid_request", "s1", "#");
    assert_redirect_error_in(Q_IMP "&response_type=id_token+token&scope=openid&nonce=&state=s1",
                             "invalid_request", "s1", "#");
    /* tokens never in a query: refused, and the refusal is not in the query either */
    assert_redirect_error_in(
        Q_IMP "&response_type=id_token&scope=openid&nonce=n&response_mode=query&state=s2",
        "invalid_request", "s2", "#");
    assert_redirect_error_in(
        Q_IMP "&response_type=id_token&scope=openid&nonce=n&response_mode=bogus&state=s3",
        "invalid_request", "s3", "#");
    /* the types the client has, not others; and the grant type too */
    assert_redirect_error(Q_IMP "&response_type=code&scope=openid&state=s4", "unauthorized_client",
                          "s4");
    assert_redirect_error_in("client_id=nogrant&redirect_uri=https%3A%2F%2Frp.example.com%2Fcb"
                             "&response_type=id_token&scope=openid&nonce=n&state=s5",
                             "unauthorized_client", "s5", "#");
    assert_redirect_error(Q_IMP "&response_type=token&scope=openid&nonce=n",
                          "unsupported_response_type", NULL);
    assert_redirect_error_in(Q_IMP "&response_type=id_token&scope=openid&nonce=n&code_challenge=" CHALLENGE
                                   "&code_challenge_method=S256",
                             "invalid_request", NULL, "#");
    assert_redirect_error_in(Q_IMP "&response_type=id_token&nonce=n", "invalid_request", NULL,
                             "#");
    /* prompt=none without a session: login_required, in the fragment */
    assert_redirect_error_in(Q_IMP "&response_type=id_token&scope=openid&nonce=n&prompt=none",
                             "login_required", NULL, "#");

    /* an error in form_post: a page posting error, state and iss, all escaped */
    struct oidc_response r;
    call(&r, "GET", "/oauth/v2/authorize",
         Q_IMP "&response_type=id_token&scope=openid&response_mode=form_post"
               "&state=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E",
         NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_null(hdr(&r, "location"));
    assert_true(body_has(&r, "<form method=\"post\" action=\"https://rp.example.com/cb\">"));
    assert_true(body_has(&r, "name=\"error\" value=\"invalid_request\""));
    assert_true(body_has(&r, "name=\"state\" value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""));
    assert_false(body_has(&r, "\"><script>alert"));
    assert_true(body_has(&r, "name=\"iss\" value=\"https://id.example.com\""));
    oidc_response_release(&r);
}

/* The form_post page's fields, with the page's own checks. */
static void form_post_params(const struct oidc_response *r, struct oidc_params *p)
{
    assert_int_equal(r->status, 200);
    assert_null(hdr(r, "location"));
    assert_string_equal(hdr(r, "content-type"), "text/html; charset=utf-8");
    assert_string_equal(hdr(r, "cache-control"), "no-store");
    const char *csp = hdr(r, "content-security-policy");
    assert_non_null(csp);
    assert_non_null(strstr(csp, "default-src 'none'"));
    assert_non_null(strstr(csp, "form-action 'self' https://rp.example.com;"));
    assert_non_null(strstr(csp, "frame-ancestors 'none'"));
    /* the only script is the constant auto-submit, allowed by its hash */
    static const char js[] = "document.forms[0].submit()";
    unsigned char d[32];
    sha256_raw(js, strlen(js), d);
    char *b64 = b64_encode_alloc(d, sizeof d);
    char want[128];
    snprintf(want, sizeof want, "script-src 'sha256-%s';", b64);
    free(b64);
    assert_non_null(strstr(csp, want));
    assert_null(strstr(csp, "unsafe-inline"));
    assert_true(body_has(r, "<script>document.forms[0].submit()</script>"));
    assert_true(body_has(r, "<button type=\"submit\">Continue</button>"));
    assert_true(body_has(r, "<form method=\"post\" action=\"https://rp.example.com/cb\">"));

    /* hidden fields -> "name=value&..." -> params (values are html-escaped, none needs it here
     * but state, which the caller checks raw) */
    struct buf q = BUF_INIT;
    const char *at = r->body, *end = r->body + r->body_len;
    static const char tag[] = "<input type=\"hidden\" name=\"";
    while ((at = memmem(at, (size_t)(end - at), tag, sizeof tag - 1))) {
        at += sizeof tag - 1;
        const char *ne = memchr(at, '"', (size_t)(end - at));
        assert_non_null(ne);
        const char *v = ne + strlen("\" value=\"");
        const char *ve = memchr(v, '"', (size_t)(end - v));
        assert_non_null(ve);
        char name[64], value[4096];
        snprintf(name, sizeof name, "%.*s", (int)(ne - at), at);
        snprintf(value, sizeof value, "%.*s", (int)(ve - v), v);
        if (q.len)
            buf_adds(&q, "&");
        buf_adds(&q, name);
        buf_adds(&q, "=");
        buf_add_urlenc(&q, value);
        at = ve;
    }
    size_t n;
    char *qs = buf_detach(&q, &n);
    struct err e = {0};
    assert_int_equal(oidc_params_parse(qs, n, p, &e), 0);
    free(qs);
}

static void test_implicit_flow(void **state)
{
    (void)state;
    struct oidc_response r;
    struct oidc_params p = {0};
    char cookie[128];

    put_user("110", "ivy", 1, 1, bcrypt_hash);
    Koderid__V2__User *u = load_user("110");
    char *old_email = u->email;
    u->email = "ivy@example.com";
    u->email_verified = true;
    assert_int_equal(repo_user_put(store, u, NULL), 0);
    u->email = old_email;
    koderid__v2__user__free_unpacked(u, NULL);

    /* "id_token token" after the login form: 303 to the fragment */
    login_as(Q_IMP "&response_type=id_token+token&scope=openid+email+offline_access&nonce=n-1"
                   "&state=st1",
             "ivy", &r, cookie, sizeof cookie);
    assert_int_equal(r.status, 303);
    fragment_params(&r, &p);
    const char *at = oidc_params_get(&p, "access_token");
    const char *idt = oidc_params_get(&p, "id_token");
    assert_non_null(at);
    assert_non_null(idt);
    assert_string_equal(oidc_params_get(&p, "token_type"), "Bearer");
    assert_int_equal(atoi(oidc_params_get(&p, "expires_in")), 12 * 3600);
    assert_string_equal(oidc_params_get(&p, "state"), "st1");
    assert_null(oidc_params_get(&p, "refresh_token"));
    assert_null(oidc_params_get(&p, "code"));
    json_t *c = verified_claims(idt);
    assert_string_equal(cstr(c, "iss"), ISSUER);
    assert_string_equal(cstr(c, "sub"), "110");
    assert_string_equal(cstr(c, "nonce"), "n-1");
    assert_string_equal(cstr(c, "azp"), "imp1");
    assert_true(aud_has(c, "imp1"));
    char want_hash[44];
    struct err e = {0};
    assert_int_equal(oidc_jwt_hash_claim(at, strlen(at), "RS256", want_hash, &e), 0);
    assert_string_equal(cstr(c, "at_hash"), want_hash);
    assert_null(json_object_get(c, "c_hash"));
    assert_null(json_object_get(c, "email")); /* an access token goes with it: userinfo has it */
    assert_true(json_is_integer(json_object_get(c, "auth_time")));
    json_decref(c);
    /* the opaque access token is stored as for the code flow, without offline_access */
    char hex[65], key[REPO_KEY_MAX];
    ProtobufCMessage *m = NULL;
    sha256_hex(at, strlen(at), hex);
    repo_key(key, "at/%s", hex);
    assert_int_equal(repo_get(store, key, &koderid__v2__access_token__descriptor, &m, NULL, NULL),
                     0);
    Koderid__V2__AccessToken *rec = (Koderid__V2__AccessToken *)m;
    assert_string_equal(rec->client_id, "imp1");
    assert_string_equal(rec->user_id, "110");
    assert_string_equal(rec->scope, "openid email");
    koderid__v2__access_token__free_unpacked(rec, NULL);
    oidc_params_release(&p);
    oidc_response_release(&r);

    /* "id_token" alone from the session: no access token, so the profile claims are in it */
    call(&r, "GET", "/oauth/v2/authorize",
         Q_IMP "&response_type=id_token&scope=openid+email&nonce=n-2&state=st2", NULL, cookie);
    assert_int_equal(r.status, 302);
    fragment_params(&r, &p);
    assert_null(oidc_params_get(&p, "access_token"));
    assert_null(oidc_params_get(&p, "token_type"));
    assert_null(oidc_params_get(&p, "expires_in"));
    c = verified_claims(oidc_params_get(&p, "id_token"));
    assert_string_equal(cstr(c, "nonce"), "n-2");
    assert_string_equal(cstr(c, "email"), "ivy@example.com");
    assert_null(json_object_get(c, "at_hash"));
    json_decref(c);
    oidc_params_release(&p);
    oidc_response_release(&r);

    /* a JWT access token for a client of that type, at_hash over it */
    call(&r, "GET", "/oauth/v2/authorize",
         "client_id=impjwt&redirect_uri=https%3A%2F%2Frp.example.com%2Fcb"
         "&response_type=token+id_token&scope=openid&nonce=n-3",
         NULL, cookie);
    fragment_params(&r, &p);
    at = oidc_params_get(&p, "access_token");
    json_t *atc = verified_claims(at);
    assert_string_equal(cstr(atc, "sub"), "110");
    assert_string_equal(cstr(atc, "client_id"), "impjwt");
    json_decref(atc);
    c = verified_claims(oidc_params_get(&p, "id_token"));
    assert_int_equal(oidc_jwt_hash_claim(at, strlen(at), "RS256", want_hash, &e), 0);
    assert_string_equal(cstr(c, "at_hash"), want_hash);
    json_decref(c);
    oidc_params_release(&p);
    oidc_response_release(&r);

    /* form_post: the tokens and a hostile state go in an escaped, auto-submitted form */
    call(&r, "GET", "/oauth/v2/authorize",
         Q_IMP "&response_type=id_token+token&scope=openid&nonce=n-4&response_mode=form_post"
               "&state=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E",
         NULL, cookie);
    assert_false(body_has(&r, "\"><script>alert"));
    assert_true(body_has(&r, "value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""));
    form_post_params(&r, &p);
    assert_non_null(oidc_params_get(&p, "access_token"));
    assert_string_equal(oidc_params_get(&p, "token_type"), "Bearer");
    assert_string_equal(oidc_params_get(&p, "iss"), ISSUER);
    c = verified_claims(oidc_params_get(&p, "id_token"));
    assert_string_equal(cstr(c, "nonce"), "n-4");
    json_decref(c);
    oidc_params_release(&p);
    oidc_response_release(&r);

    /* the code flow in form_post and in the fragment */
    call(&r, "GET", "/oauth/v2/authorize",
         Q_BASE "&response_type=code&scope=openid&response_mode=form_post&state=c1", NULL, cookie);
    form_post_params(&r, &p);
    Koderid__V2__AuthCode *code = load_code(oidc_params_get(&p, "code"));
    assert_non_null(code);
    assert_string_equal(code->user_id, "110");
    koderid__v2__auth_code__free_unpacked(code, NULL);
    assert_string_equal(oidc_params_get(&p, "state"), "c1");
    assert_string_equal(oidc_params_get(&p, "iss"), ISSUER);
    oidc_params_release(&p);
    oidc_response_release(&r);
    call(&r, "GET", "/oauth/v2/authorize",
         Q_BASE "&response_type=code&scope=openid&response_mode=fragment&state=c2", NULL, cookie);
    fragment_params(&r, &p);
    assert_non_null(oidc_params_get(&p, "code"));
    assert_string_equal(oidc_params_get(&p, "state"), "c2");
    oidc_params_release(&p);
    oidc_response_release(&r);

    /* a form_post request through the login form: the login POST answers with the page */
    login_as(Q_IMP "&response_type=id_token&scope=openid&nonce=n-5&response_mode=form_post",
             "ivy", &r, NULL, 0);
    form_post_params(&r, &p);
    assert_non_null(oidc_params_get(&p, "id_token"));
    oidc_params_release(&p);
    oidc_response_release(&r);
}

/* Moves the session behind @cookie back @secs seconds in auth_time; returns the new one. */
static int64_t age_session(const char *cookie, int64_t secs)
{
    const char *tok = strchr(cookie, '=') + 1;
    char hex[65], key[REPO_KEY_MAX];
    ProtobufCMessage *m = NULL;
    sha256_hex(tok, strlen(tok), hex);
    repo_key(key, "sess/%s", hex);
    assert_int_equal(repo_get(store, key, &koderid__v2__session__descriptor, &m, NULL, NULL), 0);
    Koderid__V2__Session *s = (Koderid__V2__Session *)m;
    s->auth_time -= secs;
    int64_t at = s->auth_time;
    assert_int_equal(repo_put(store, key, &s->base, 3600 * 1000, NULL, NULL), 0);
    koderid__v2__session__free_unpacked(s, NULL);
    return at;
}

/* An implicit request from the session answered silently: the ID token's auth_time. */
static int64_t silent_auth_time(const char *extra, const char *cookie)
{
    struct oidc_response r;
    struct oidc_params p = {0};
    char q[512];
    snprintf(q, sizeof q, "%s&response_type=id_token&scope=openid&nonce=n%s", Q_IMP, extra);
    call(&r, "GET", "/oauth/v2/authorize", q, NULL, cookie);
    if (r.status != 302 || !hdr(&r, "location") || !strstr(hdr(&r, "location"), "#id_token="))
        fail_msg("'%s': status %d location %s", extra, r.status,
                 hdr(&r, "location") ? hdr(&r, "location") : "-");
    fragment_params(&r, &p);
    json_t *c = verified_claims(oidc_params_get(&p, "id_token"));
    json_t *v = json_object_get(c, "auth_time");
    assert_true(json_is_integer(v));
    int64_t t = json_integer_value(v);
    json_decref(c);
    oidc_params_release(&p);
    oidc_response_release(&r);
    return t;
}

static void test_prompt_max_age_auth_time(void **state)
{
    (void)state;
    struct oidc_response r;
    struct oidc_params p = {0};
    char cookie[128], id[64];

    put_user("111", "jack", 1, 1, bcrypt_hash);
    int64_t before = store_now_ms() / 1000;
    login_as(Q_IMP "&response_type=id_token&scope=openid&nonce=n", "jack", &r, cookie,
             sizeof cookie);
    fragment_params(&r, &p);
    json_t *c = verified_claims(oidc_params_get(&p, "id_token"));
    int64_t first = json_integer_value(json_object_get(c, "auth_time"));
    assert_true(first >= before && first <= before + 5);
    json_decref(c);
    oidc_params_release(&p);
    oidc_response_release(&r);

    /* the session is an hour old: silent answers keep its auth_time exactly */
    int64_t sess_time = age_session(cookie, 3600);
    assert_int_equal(silent_auth_time("", cookie), sess_time);
    assert_int_equal(silent_auth_time("&prompt=none", cookie), sess_time);
    assert_int_equal(silent_auth_time("&max_age=7200", cookie), sess_time); /* auth_time given */
    assert_int_equal(silent_auth_time("&prompt=bogus", cookie), sess_time); /* unknown: ignored */

    /* an elapsed max_age, max_age=0 and the prompts that want a page: the login page */
    start(Q_IMP "&response_type=id_token&scope=openid&nonce=n&max_age=600", cookie, id);
    start(Q_IMP "&response_type=id_token&scope=openid&nonce=n&max_age=0", cookie, id);
    start(Q_IMP "&response_type=id_token&scope=openid&nonce=n&prompt=login", cookie, id);
    start(Q_IMP "&response_type=id_token&scope=openid&nonce=n&prompt=consent", cookie, id);
    start(Q_IMP "&response_type=id_token&scope=openid&nonce=n&prompt=select_account", cookie, id);
    start(Q_IMP "&response_type=id_token&scope=openid&nonce=n&prompt=create", cookie, id);
    start(Q_IMP "&response_type=id_token&scope=openid&nonce=n&prompt=login+bogus", cookie, id);
    /* ... which prompt=none cannot show */
    call(&r, "GET", "/oauth/v2/authorize",
         Q_IMP "&response_type=id_token&scope=openid&nonce=n&prompt=none&max_age=600&state=m",
         NULL, cookie);
    fragment_params(&r, &p);
    assert_string_equal(oidc_params_get(&p, "error"), "login_required");
    assert_string_equal(oidc_params_get(&p, "state"), "m");
    oidc_params_release(&p);
    oidc_response_release(&r);
    call(&r, "GET", "/oauth/v2/authorize",
         Q_IMP "&response_type=id_token&scope=openid&nonce=n&prompt=none+consent", NULL, cookie);
    fragment_params(&r, &p);
    assert_string_equal(oidc_params_get(&p, "error"), "invalid_request");
    oidc_params_release(&p);
    oidc_response_release(&r);
    /* the session was not touched by any of these */
    assert_int_equal(silent_auth_time("&prompt=none", cookie), sess_time);

    /* prompt=login: a new login, a new session, a new auth_time */
    char fresh[128];
    struct form f;
    start(Q_IMP "&response_type=id_token&scope=openid&nonce=n&prompt=login", cookie, id);
    get_form(id, NULL, &f, NULL);
    post_form(&r, &f, "jack", "s3cret+pw", NULL);
    assert_int_equal(r.status, 303);
    assert_true(cookie_from(&r, "__Host-koder_session", fresh, sizeof fresh));
    fragment_params(&r, &p);
    c = verified_claims(oidc_params_get(&p, "id_token"));
    int64_t second = json_integer_value(json_object_get(c, "auth_time"));
    assert_true(second >= first && second != sess_time);
    json_decref(c);
    oidc_params_release(&p);
    oidc_response_release(&r);
    assert_int_equal(silent_auth_time("&prompt=none&max_age=600", fresh), second);
}

/* oidc_cookie_get with several cookies of one name: malformed values are skipped. */
static void cookie_case(const char *header1, const char *header2, int want_r, const char *want)
{
    struct oidc_kv headers[2] = {{"cookie", (char *)header1}, {"cookie", (char *)header2}};
    struct oidc_request req = {
        .method = "GET", .path = "/", .headers = headers, .nheaders = header2 ? 2 : 1};
    char out[48] = "untouched";
    int r = oidc_cookie_get(ctx, &req, OIDC_SESSION_COOKIE, out, sizeof out);
    if (r != want_r || (want && strcmp(out, want) != 0))
        fail_msg("cookie '%s' / '%s': r=%d value '%s', want %d '%s'", header1,
                 header2 ? header2 : "-", r, out, want_r, want ? want : "-");
}

static void test_cookie_get(void **state)
{
    (void)state;
    cookie_case("__Host-koder_session=good_1", NULL, 0, "good_1");
    cookie_case("__Host-koder_session=bad!v; __Host-koder_session=good_2", NULL, 0, "good_2");
    cookie_case("__Host-koder_session=; __Host-koder_session=good_3", NULL, 0, "good_3");
    cookie_case("__Host-koder_session=\"q\";__Host-koder_session=good_4 ", NULL, 0, "good_4");
    cookie_case("a=b; __Host-koder_session=%41", "__Host-koder_session=good_5", 0, "good_5");
    /* over the caller's buffer (48 bytes), then a good one */
    cookie_case("__Host-koder_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA;"
                "__Host-koder_session=good_6",
                NULL, 0, "good_6");
    /* the first good one wins; prefix-less and longer names are other cookies */
    cookie_case("koder_session=nope; __Host-koder_session2=nope; __Host-koder_session=g7; "
                "__Host-koder_session=g8",
                NULL, 0, "g7");
    cookie_case("__Host-koder_session=bad value; __Host-koder_session=b@d", NULL, -1, NULL);
    cookie_case("koder_session=good", "x=1", -1, NULL);
    cookie_case("__Host-koder_session", ";;;", -1, NULL);

    /* end to end: a garbage session cookie in front of the real one still signs in */
    char id[64], cookie[128], both[300];
    struct form f;
    struct oidc_response r;
    put_user("107", "gina", 1, 1, bcrypt_hash);
    start(Q_BASE "&response_type=code&scope=openid", NULL, id);
    get_form(id, NULL, &f, NULL);
    post_form(&r, &f, "gina", "s3cret+pw", NULL);
    assert_int_equal(r.status, 303);
    assert_true(cookie_from(&r, "__Host-koder_session", cookie, sizeof cookie));
    oidc_response_release(&r);
    snprintf(both, sizeof both, "__Host-koder_session=gar/bage; %s", cookie);
    call(&r, "GET", "/oauth/v2/authorize", Q_BASE "&response_type=code&scope=openid&prompt=none",
         NULL, both);
    assert_int_equal(r.status, 302);
    assert_non_null(strstr(hdr(&r, "location"), RP_CB "?code="));
    oidc_response_release(&r);
}

/* The change form's POST: newPassword and confirmPassword (NULL leaves one out). */
static void post_change(struct oidc_response *r, const struct form *f, const char *csrf,
                        const char *pw, const char *again, const char *cookie)
{
    char body[512];
    int n = snprintf(body, sizeof body, "authRequestID=%s", f->id);
    if (csrf)
        n += snprintf(body + n, sizeof body - (size_t)n, "&csrf=%s", csrf);
    if (pw)
        n += snprintf(body + n, sizeof body - (size_t)n, "&newPassword=%s", pw);
    if (again)
        snprintf(body + n, sizeof body - (size_t)n, "&confirmPassword=%s", again);
    call(r, "POST", "/ui/login/login", NULL, body, cookie ? cookie : f->csrf_cookie);
}

static void set_change_required(const char *id, bool on)
{
    Koderid__V2__User *u = load_user(id);
    u->password_change_required = on;
    assert_int_equal(repo_user_put(store, u, NULL), 0);
    koderid__v2__user__free_unpacked(u, NULL);
}

/* A 4xx answer that is the change form again (with a fresh token) and issues nothing. */
static void assert_change_form(struct oidc_response *r, int status, const char *message,
                               struct form *f)
{
    if (r->status != status)
        fail_msg("status %d, want %d: %.*s", r->status, status, (int)r->body_len,
                 r->body ? r->body : "");
    assert_null(hdr(r, "location"));
    assert_false(cookie_from(r, "__Host-koder_session", (char[128]){0}, 128));
    assert_true(body_has(r, "Change your password"));
    assert_true(body_has(r, "name=\"newPassword\" type=\"password\" "
                            "autocomplete=\"new-password\" minlength=\"8\""));
    assert_true(body_has(r, "name=\"confirmPassword\""));
    assert_false(body_has(r, "name=\"password\""));
    if (message)
        assert_true(body_has(r, message));
    hidden_value(r, "csrf", f->csrf, sizeof f->csrf);
    oidc_response_release(r);
}

/* Password step for hank (password_change_required): the change form, nothing issued. */
static void hank_password_step(char id[64], struct form *f)
{
    struct oidc_response r;
    start(Q_BASE "&response_type=code&scope=openid&state=pc", NULL, id);
    get_form(id, NULL, f, NULL);
    post_form(&r, f, "hank", "s3cret+pw", NULL);
    assert_change_form(&r, 200, "choose a new password", f);
}

static void test_password_change(void **state)
{
    (void)state;
    char id[64], id2[64], session_cookie[128];
    struct form f, f2;
    struct oidc_response r;
    struct oidc_params p = {0};

    put_user("108", "hank", 1, 1, bcrypt_hash);
    set_change_required("108", true);

    hank_password_step(id, &f);
    Koderid__V2__AuthRequest *ar = load_authreq(id);
    assert_non_null(ar); /* pending, marked for hank */
    assert_string_equal(ar->pwd_change_user_id, "108");
    assert_int_equal(strlen(ar->pwd_change_binding), 64);
    koderid__v2__auth_request__free_unpacked(ar, NULL);
    Koderid__V2__User *u = load_user("108");
    assert_string_equal(u->password_hash, bcrypt_hash); /* not upgraded: it is being replaced */
    assert_true(u->password_change_required);
    koderid__v2__user__free_unpacked(u, NULL);
    /* no session: prompt=none gets no code */
    assert_redirect_error(Q_BASE "&response_type=code&scope=openid&prompt=none&state=q",
                          "login_required", "q");

    /* reloading the page in the same browser shows the change form again */
    struct oidc_response g;
    char q[128];
    snprintf(q, sizeof q, "authRequestID=%s", id);
    call(&g, "GET", "/ui/login/login", q, NULL, f.csrf_cookie);
    assert_change_form(&g, 200, NULL, &f);

    /* hostile and mistaken answers: the change form again, nothing changed or issued */
    post_change(&r, &f, f.csrf, "n3w+passw0rd", "n3w+passw0rD", NULL);
    assert_change_form(&r, 400, "The two passwords are not the same.", &f);
    post_change(&r, &f, f.csrf, "short", "short", NULL);
    assert_change_form(&r, 400, "at least 8 characters", &f);
    post_change(&r, &f, f.csrf, "%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9",
                "%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9", NULL); /* 7 chars, 14 bytes */
    assert_change_form(&r, 400, "at least 8 characters", &f);
    post_change(&r, &f, f.csrf, "n3w%0Apassw0rd", "n3w%0Apassw0rd", NULL);
    assert_change_form(&r, 400, "control characters", &f);
    post_change(&r, &f, f.csrf, "n3w+passw0rd", NULL, NULL);
    assert_change_form(&r, 400, "Enter the new password twice.", &f);
    post_change(&r, &f, NULL, "n3w+passw0rd", "n3w+passw0rd", NULL); /* no CSRF token */
    assert_change_form(&r, 403, "Your form expired", &f);
    struct form stale = f;
    stale.csrf[0] = stale.csrf[0] == 'A' ? 'B' : 'A';
    post_change(&r, &f, stale.csrf, "n3w+passw0rd", "n3w+passw0rd", NULL);
    assert_change_form(&r, 403, "Your form expired", &f);
    u = load_user("108");
    assert_string_equal(u->password_hash, bcrypt_hash);
    assert_true(u->password_change_required);
    koderid__v2__user__free_unpacked(u, NULL);

    /* the step skipped: a new password on a request whose password step never passed */
    start(Q_BASE "&response_type=code&scope=openid", NULL, id2);
    get_form(id2, NULL, &f2, NULL);
    post_change(&r, &f2, f2.csrf, "n3w+passw0rd", "n3w+passw0rd", NULL);
    assert_int_equal(r.status, 403);
    assert_null(hdr(&r, "location"));
    assert_true(body_has(&r, "Sign in with your current password first."));
    assert_true(body_has(&r, "name=\"password\""));
    oidc_response_release(&r);

    /* another browser (no cookie, or its own) with the right token: refused, and the step is
     * gone for everyone: the password must be proven again */
    post_change(&r, &f, f.csrf, "n3w+passw0rd", "n3w+passw0rd", f2.csrf_cookie);
    assert_int_equal(r.status, 403);
    assert_null(hdr(&r, "location"));
    assert_false(body_has(&r, "name=\"newPassword\""));
    oidc_response_release(&r);
    get_form(id, f.csrf_cookie, &f, NULL);
    post_change(&r, &f, f.csrf, "n3w+passw0rd", "n3w+passw0rd", NULL);
    assert_int_equal(r.status, 403);
    assert_true(body_has(&r, "Sign in with your current password first."));
    oidc_response_release(&r);

    /* a reset by an operator between the two steps voids the first */
    hank_password_step(id, &f);
    u = load_user("108");
    char *saved = u->password_hash;
    u->password_hash = "$y$j9T$reset$0000000000000000000000000000000000000000000";
    assert_int_equal(repo_user_put(store, u, NULL), 0);
    u->password_hash = saved;
    post_change(&r, &f, f.csrf, "n3w+passw0rd", "n3w+passw0rd", NULL);
    assert_int_equal(r.status, 403);
    assert_true(body_has(&r, "Your account changed in the meantime."));
    oidc_response_release(&r);
    assert_int_equal(repo_user_put(store, u, NULL), 0);
    koderid__v2__user__free_unpacked(u, NULL);

    /* the real thing: the new password is stored, the flag cleared, the code issued */
    hank_password_step(id, &f);
    int64_t before = store_now_ms() / 1000;
    post_change(&r, &f, f.csrf, "n3w+passw0rd", "n3w+passw0rd", NULL);
    if (r.status != 303)
        fail_msg("change POST status %d: %.*s", r.status, (int)r.body_len, r.body ? r.body : "");
    location_params(&r, RP_CB "?code=", &p);
    assert_string_equal(oidc_params_get(&p, "state"), "pc");
    Koderid__V2__AuthCode *c = load_code(oidc_params_get(&p, "code"));
    assert_non_null(c);
    assert_string_equal(c->user_id, "108");
    koderid__v2__auth_code__free_unpacked(c, NULL);
    oidc_params_release(&p);
    assert_true(cookie_from(&r, "__Host-koder_session", session_cookie, sizeof session_cookie));
    oidc_response_release(&r);
    assert_null(load_authreq(id)); /* consumed */
    u = load_user("108");
    assert_false(u->password_change_required);
    assert_memory_equal(u->password_hash, "$y$", 3);
    assert_true(u->password_changed_at >= before && u->password_changed_at <= before + 5);
    assert_string_equal(u->v1_password_hash, bcrypt_hash);
    koderid__v2__user__free_unpacked(u, NULL);
    /* the form cannot be answered twice */
    post_change(&r, &f, f.csrf, "other+passw0rd", "other+passw0rd", NULL);
    assert_int_equal(r.status, 400);
    assert_true(body_has(&r, "expired"));
    oidc_response_release(&r);

    /* the session works; the new password signs in at once, the old one no more */
    call(&r, "GET", "/oauth/v2/authorize", Q_BASE "&response_type=code&scope=openid&prompt=none",
         NULL, session_cookie);
    assert_non_null(strstr(hdr(&r, "location"), RP_CB "?code="));
    oidc_response_release(&r);
    assert_wrong("hank", "s3cret+pw", "108");
    start(Q_BASE "&response_type=code&scope=openid", NULL, id);
    get_form(id, NULL, &f, NULL);
    post_form(&r, &f, "hank", "n3w+passw0rd", NULL);
    assert_int_equal(r.status, 303);
    oidc_response_release(&r);

    /* an operator requiring a change ends what the session could do without a login */
    set_change_required("108", true);
    call(&r, "GET", "/oauth/v2/authorize", Q_BASE "&response_type=code&scope=openid&prompt=none",
         NULL, session_cookie);
    assert_non_null(strstr(hdr(&r, "location"), "error=login_required"));
    oidc_response_release(&r);
    start(Q_BASE "&response_type=code&scope=openid", session_cookie, id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_errors),
        cmocka_unit_test(test_redirect_errors),
        cmocka_unit_test(test_pending_request_stored),
        cmocka_unit_test(test_login_flow),
        cmocka_unit_test(test_csrf_failures),
        cmocka_unit_test(test_wrong_password_and_users),
        cmocka_unit_test(test_throttle),
        cmocka_unit_test(test_native_and_routes),
        cmocka_unit_test(test_session_user_deactivated),
        cmocka_unit_test(test_cookie_get),
        cmocka_unit_test(test_password_change),
        cmocka_unit_test(test_implicit_errors),
        cmocka_unit_test(test_implicit_flow),
        cmocka_unit_test(test_prompt_max_age_auth_time),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, setup, teardown);
}
