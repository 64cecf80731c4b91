/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared setup for the token-side unit tests (test_clientauth, test_token): a temporary LMDB
 * store, clients and users written as records, and plain request structs. Header-only so each
 * test stays one executable.
 */
#ifndef TESTS_FIXTURE_TOKEN_H
#define TESTS_FIXTURE_TOKEN_H

#include <crypt.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/buf.h"
#include "fixture_tmp.h"
#include "oidc/http.h"
#include "oidc/oidc.h"
#include "storage/repo.h"
#include "storage/store.h"

/* Opens a new LMDB store in a fresh temporary folder written into @dir (room for 64). */
static inline struct store *fx_store_open(char dir[64])
{
    struct err e = {0};
    struct store *s = NULL;
    snprintf(dir, 64, "/tmp/koder-test-token-XXXXXX");
    if (!mkdtemp(dir))
        return NULL;
    struct store_config cfg = {
        .backend = "lmdb", .data_dir = dir, .lmdb_map_size = (size_t)64 << 20};
    if (store_open(&cfg, &s, &e) < 0) {
        fprintf(stderr, "store_open: %s\n", e.msg);
        return NULL;
    }
    return s;
}

/*
 * A new store (fx_store_open) and a protocol context for @issuer over it, whose signing key's
 * master key is created in @dir. 0, or -1 with the reason on stderr.
 */
static inline int fx_ctx_open(const char *issuer, char dir[64], struct store **ret_store,
                              struct oidc_ctx **ret_ctx)
{
    struct err e = {0};
    char master[128];
    if (!(*ret_store = fx_store_open(dir)))
        return -1;
    snprintf(master, sizeof master, "%s/master.key", dir);
    struct oidc_config cfg = {
        .issuer = issuer, .master_key_file = master, .create_master_key = true};
    if (oidc_ctx_new(&cfg, *ret_store, ret_ctx, &e) < 0) {
        fprintf(stderr, "oidc_ctx_new: %s\n", e.msg);
        return -1;
    }
    return 0;
}

/* A bcrypt $2a$ cost 4 hash of @secret, as v1 stores client secrets. Caller frees. */
static inline char *fx_bcrypt(const char *secret)
{
    char setting[64];
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    if (!crypt_gensalt_rn("$2a$", 4, NULL, 0, setting, sizeof setting))
        return NULL;
    const char *h = crypt_rn(secret, setting, &cd, sizeof cd);
    return h && h[0] != '*' ? strdup(h) : NULL;
}

struct fx_client {
    const char *client_id;
    const char *project_id;
    int auth_method;    /* 0 basic, 1 post, 2 none, 3 private_key_jwt */
    const char *secret; /* NULL = none */
    int access_token_type;
    int state;    /* 0 means active (1) here */
    bool refresh; /* grant type 2 besides 0 */
    bool userinfo_in_id_token;
    int kind;
};

static inline int fx_client_put(struct store *s, const struct fx_client *f)
{
    struct err e = {0};
    Koderid__V2__Client c = KODERID__V2__CLIENT__INIT;
    char *hash = f->secret ? fx_bcrypt(f->secret) : NULL;
    int32_t grants[2] = {0, 2};
    char *redirects[2] = {(char *)"https://app.example/cb", (char *)"http://127.0.0.1/cb"};
    c.client_id = (char *)f->client_id;
    c.project_id = (char *)(f->project_id ? f->project_id : "");
    c.org_id = (char *)"org1";
    c.kind = f->kind;
    c.state = f->state ? f->state : 1;
    c.secret_hash = hash ? hash : (char *)"";
    c.auth_method = f->auth_method;
    c.access_token_type = f->access_token_type;
    c.n_grant_types = f->refresh ? 2 : 1;
    c.grant_types = grants;
    c.n_redirect_uris = 2;
    c.redirect_uris = redirects;
    c.id_token_userinfo_assertion = f->userinfo_in_id_token;
    int r = repo_client_put(s, &c, &e);
    if (r < 0)
        fprintf(stderr, "repo_client_put: %s\n", e.msg);
    free(hash);
    return r;
}

static inline int fx_user_put(struct store *s, const char *id, const char *login, int state)
{
    struct err e = {0};
    Koderid__V2__User u = KODERID__V2__USER__INIT;
    u.id = (char *)id;
    u.org_id = (char *)"org1";
    u.username = (char *)login;
    u.login_name = (char *)login;
    u.state = state;
    u.type = 1;
    u.first_name = (char *)"Ada";
    u.last_name = (char *)"Lovelace";
    u.display_name = (char *)"Ada Lovelace";
    u.nick_name = (char *)"ada";
    u.preferred_language = (char *)"en";
    u.gender = 1;
    u.email = (char *)"ada@example.com";
    u.email_verified = true;
    u.phone = (char *)"+15550100";
    u.changed_at = 1700000000;
    int r = repo_user_put(s, &u, &e);
    if (r < 0)
        fprintf(stderr, "repo_user_put: %s\n", e.msg);
    return r;
}

/* A request with up to 4 headers; strings are borrowed. */
struct fx_req {
    struct oidc_request req;
    struct oidc_kv headers[4];
    char *owned[4];
};

static inline void fx_req_init(struct fx_req *f, const char *method, const char *path,
                               const char *body)
{
    memset(f, 0, sizeof *f);
    f->req.method = method;
    f->req.path = path;
    f->req.body = body;
    f->req.body_len = body ? strlen(body) : 0;
    f->req.headers = f->headers;
    f->req.client_addr = "127.0.0.1";
}

static inline void fx_req_header(struct fx_req *f, const char *name, const char *value)
{
    size_t i = f->req.nheaders++;
    f->owned[i] = strdup(value);
    f->headers[i].name = (char *)name;
    f->headers[i].value = f->owned[i];
}

static inline void fx_req_form(struct fx_req *f, const char *method, const char *path,
                               const char *body)
{
    fx_req_init(f, method, path, body);
    fx_req_header(f, "content-type", "application/x-www-form-urlencoded");
}

/* Adds "authorization: Basic base64(@userpass)" (@userpass already form-encoded). */
static inline void fx_req_basic(struct fx_req *f, const char *userpass)
{
    char *b = b64_encode_alloc(userpass, strlen(userpass));
    char v[1024];
    snprintf(v, sizeof v, "Basic %s", b);
    free(b);
    fx_req_header(f, "authorization", v);
}

static inline void fx_req_release(struct fx_req *f)
{
    for (size_t i = 0; i < 4; i++)
        free(f->owned[i]);
    memset(f, 0, sizeof *f);
}

static inline const char *fx_resp_header(const struct oidc_response *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

#endif
