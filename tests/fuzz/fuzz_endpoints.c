/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes whole requests through oidc_handle(): the token, userinfo, authorize and login
 * endpoints with a real context over an LMDB store (in /dev/shm, so commits cost no disk
 * syncs) holding a confidential client (100@proj, Basic, secret "websecret"), a public one
 * (200, none), a client_secret_post one (300, "postsecret") and a user "ada" (password
 * "correct horse"). This reaches every parser behind an endpoint in the order a request
 * meets them: form/query, Basic header, cookies, redirect_uri, PKCE, client assertions.
 *
 * Input: a flags byte (bits 0-2 the path, bit 3 POST), then '\n'-separated lines: the query,
 * the body, then up to 6 headers "name:value". Properties: a status in 200..599 that is never
 * 500 (an internal error reached from a request is a bug), and no response header with a CR,
 * LF or NUL in it (header injection).
 */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "oidc/oidc.h"
#include "oidc/password.h"
#include "tests/unit/fixture_token.h"

#define HEADERS_MAX 6

static const char *const paths[8] = {
    "/oauth/v2/token", "/oidc/v1/userinfo", "/oauth/v2/authorize", "/ui/login/login",
    "/ui/login",       "/oauth/v2/token",   "/oauth/v2/authorize", "/nope",
};

static char dir[64];
static struct store *store;
static struct oidc_ctx *ctx;

static void cleanup(void)
{
    oidc_ctx_free(ctx);
    store_close(store);
    if (dir[0])
        fx_rm_rf(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct err e = {0};
    snprintf(dir, sizeof dir, "/dev/shm/koder-fuzz-XXXXXX");
    if (!mkdtemp(dir)) {
        snprintf(dir, sizeof dir, "/tmp/koder-fuzz-XXXXXX");
        FUZZ_CHECK(mkdtemp(dir));
    }
    struct store_config sc = {.backend = "lmdb", .data_dir = dir, .lmdb_map_size = (size_t)1 << 30};
    FUZZ_CHECK(store_open(&sc, &store, &e) == 0);
    atexit(cleanup);
    char master[128];
    snprintf(master, sizeof master, "%s/master.key", dir);
    struct oidc_config cfg = {.issuer = "https://id.example.com",
                              .master_key_file = master,
                              .create_master_key = true,
                              .hash_workers = 1};
    if (oidc_ctx_new(&cfg, store, &ctx, &e) < 0) {
        fprintf(stderr, "oidc_ctx_new: %s\n", e.msg);
        abort();
    }
    const struct fx_client clients[] = {
        {.client_id = "100@proj",
         .project_id = "p1",
         .auth_method = 0,
         .secret = "websecret",
         .refresh = true},
        {.client_id = "200", .project_id = "p1", .auth_method = 2, .refresh = true},
        {.client_id = "300",
         .project_id = "p1",
         .auth_method = 1,
         .secret = "postsecret",
         .access_token_type = 1},
    };
    for (size_t i = 0; i < sizeof clients / sizeof clients[0]; i++)
        FUZZ_CHECK(fx_client_put(store, &clients[i]) == 0);

    Koderid__V2__User u = KODERID__V2__USER__INIT;
    char *hash = fx_bcrypt("correct horse");
    FUZZ_CHECK(hash);
    u.id = "u1";
    u.org_id = "org1";
    u.username = "ada";
    u.login_name = "ada";
    u.state = 1;
    u.type = 1;
    u.email = "ada@example.com";
    u.password_hash = hash;
    FUZZ_CHECK(repo_user_put(store, &u, &e) == 0);
    free(hash);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    char *buf = malloc(size);
    FUZZ_CHECK(buf);
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';

    char *lines[2 + HEADERS_MAX];
    size_t n = 0;
    for (char *p = buf; p && n < 2 + HEADERS_MAX;) {
        lines[n++] = p;
        char *nl = strchr(p, '\n');
        if (nl)
            *nl++ = '\0';
        p = nl;
    }
    struct oidc_kv headers[HEADERS_MAX];
    size_t nh = 0;
    for (size_t i = 2; i < n; i++) {
        char *colon = strchr(lines[i], ':');
        if (!colon || colon == lines[i])
            continue;
        *colon = '\0';
        for (char *p = lines[i]; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        headers[nh].name = lines[i];
        headers[nh].value = colon + 1;
        nh++;
    }
    struct oidc_request req = {
        .method = data[0] & 8 ? "POST" : "GET",
        .path = paths[data[0] & 7],
        .query = n > 0 && lines[0][0] ? lines[0] : NULL,
        .query_len = n > 0 ? strlen(lines[0]) : 0,
        .body = n > 1 ? lines[1] : NULL,
        .body_len = n > 1 ? strlen(lines[1]) : 0,
        .headers = headers,
        .nheaders = nh,
        .client_addr = "192.0.2.7",
    };
    struct oidc_response resp = {0};
    oidc_handle(ctx, &req, &resp);

    if (resp.status == 500)
        fprintf(stderr, "500: %.*s\n", (int)(resp.body_len > 300 ? 300 : resp.body_len),
                resp.body ? resp.body : "");
    FUZZ_CHECK(resp.status >= 200 && resp.status <= 599 && resp.status != 500);
    FUZZ_CHECK(resp.nheaders <= OIDC_RESP_HEADERS_MAX);
    for (size_t i = 0; i < resp.nheaders; i++) {
        const char *v = resp.headers[i].value;
        FUZZ_CHECK(resp.headers[i].name && v);
        FUZZ_CHECK(strpbrk(v, "\r\n") == NULL);
    }
    for (const char *p = resp.log; *p; p++)
        FUZZ_CHECK((unsigned char)*p >= 0x20);
    oidc_response_release(&resp);
    free(buf);
    return 0;
}
