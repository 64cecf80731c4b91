/* SPDX-License-Identifier: Apache-2.0 */
/* Browser sessions over the store, and the cookies that name them. */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/rand.h"
#include "storage/repo.h"
#include "storage/store.h"

static void cookie_name(const struct oidc_ctx *ctx, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s%s", ctx->issuer_https ? "__Host-" : "", name);
}

static bool token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static bool cookie_value_ok(const char *v, size_t vlen, size_t n)
{
    if (vlen == 0 || vlen >= n)
        return false;
    for (size_t i = 0; i < vlen; i++)
        if (!token_char(v[i]))
            return false;
    return true;
}

int oidc_cookie_get(const struct oidc_ctx *ctx, const struct oidc_request *req, const char *name,
                    char *out, size_t n)
{
    char full[64];
    cookie_name(ctx, name, full, sizeof full);
    size_t flen = strlen(full);

    for (size_t h = 0; h < req->nheaders; h++) {
        if (strcmp(req->headers[h].name, "cookie") != 0)
            continue;
        const char *p = req->headers[h].value;
        while (p && *p) {
            while (*p == ' ' || *p == '\t' || *p == ';')
                p++;
            const char *end = strchr(p, ';');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            if (len > flen && strncmp(p, full, flen) == 0 && p[flen] == '=') {
                size_t vlen = len - flen - 1;
                const char *v = p + flen + 1;
                while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                    vlen--;
                /* The first well-formed one: a browser sends the most specific cookie first,
                 * but a malformed one (set by a sibling subdomain or a script, or garbage
                 * planted to shadow ours) must not hide a good one that follows. */
                if (cookie_value_ok(v, vlen, n)) {
                    memcpy(out, v, vlen);
                    out[vlen] = '\0';
                    return 0;
                }
            }
            p = end;
        }
    }
    return -1;
}

int oidc_cookie_set(const struct oidc_ctx *ctx, struct oidc_response *resp, const char *name,
                    const char *value, int64_t max_age_s)
{
    char full[64], hdr[512], age[48] = "";

    cookie_name(ctx, name, full, sizeof full);
    if (max_age_s > 0)
        snprintf(age, sizeof age, "; Max-Age=%lld", (long long)max_age_s);
    else if (max_age_s < 0)
        snprintf(age, sizeof age, "; Max-Age=0");
    int len = snprintf(hdr, sizeof hdr, "%s=%s; Path=/; HttpOnly; SameSite=Lax%s%s", full,
                       max_age_s < 0 ? "" : value, ctx->issuer_https ? "; Secure" : "", age);
    if (len < 0 || (size_t)len >= sizeof hdr)
        return -E_TOOBIG;
    return oidc_response_header(resp, "set-cookie", hdr);
}

static int session_key(const char *cookie, char out[REPO_KEY_MAX])
{
    char hex[65];
    sha256_hex(cookie, strlen(cookie), hex);
    return snprintf(out, REPO_KEY_MAX, "sess/%s", hex) > 0 ? 0 : -1;
}

int oidc_session_load(struct oidc_ctx *ctx, const struct oidc_request *req,
                      Koderid__V2__Session **ret, uint64_t *ret_version, char ret_key[REPO_KEY_MAX],
                      struct err *e)
{
    char cookie[128], key[REPO_KEY_MAX];
    ProtobufCMessage *m = NULL;
    uint64_t version = 0;

    if (oidc_cookie_get(ctx, req, OIDC_SESSION_COOKIE, cookie, sizeof cookie) < 0)
        return err_set(e, -E_NOTFOUND, "no session cookie");
    session_key(cookie, key);
    int r = repo_get(ctx->store, key, &koderid__v2__session__descriptor, &m, &version, e);
    if (r < 0)
        return r;
    Koderid__V2__Session *s = (Koderid__V2__Session *)m;
    if (s->ended || (s->expires_at && s->expires_at <= store_now_ms() / 1000)) {
        koderid__v2__session__free_unpacked(s, NULL);
        return err_set(e, -E_NOTFOUND, "session ended");
    }
    *ret = s;
    if (ret_version)
        *ret_version = version;
    if (ret_key)
        memcpy(ret_key, key, sizeof key);
    return 0;
}

int oidc_session_create(struct oidc_ctx *ctx, const char *user_id, const char *amr,
                        const char *client_id, struct oidc_response *resp,
                        Koderid__V2__Session **ret, struct err *e)
{
    char cookie[44], key[REPO_KEY_MAX], id[21];
    int64_t now = store_now_ms() / 1000;
    int64_t life = ctx->session_lifetime > 0 ? ctx->session_lifetime : 12 * 3600;
    char *amrs[1] = {(char *)amr};
    char *clients[1] = {(char *)client_id};

    if (rand_token(cookie) < 0)
        return err_set(e, -E_INTERNAL, "no randomness");
    session_key(cookie, key);
    id_new(id);
    Koderid__V2__Session s = KODERID__V2__SESSION__INIT;
    s.id = id;
    s.user_id = (char *)user_id;
    s.auth_time = now;
    s.amr = amrs;
    s.n_amr = 1;
    s.created_at = now;
    s.expires_at = now + life;
    s.client_ids = clients;
    s.n_client_ids = client_id ? 1 : 0;
    int r = repo_cas(ctx->store, key, 0, &s.base, life * 1000, NULL, e);
    if (r < 0)
        return r;
    r = oidc_cookie_set(ctx, resp, OIDC_SESSION_COOKIE, cookie, 0);
    if (r < 0)
        return err_set(e, r, "cannot set the session cookie");
    /* a private copy for the caller */
    size_t len = koderid__v2__session__get_packed_size(&s);
    _cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return err_set(e, -E_NOMEM, "out of memory");
    koderid__v2__session__pack(&s, buf);
    Koderid__V2__Session *copy = koderid__v2__session__unpack(NULL, len, buf);
    if (!copy)
        return err_set(e, -E_NOMEM, "out of memory");
    *ret = copy;
    return 0;
}

void oidc_session_add_client(struct oidc_ctx *ctx, const char *key, uint64_t version,
                             const Koderid__V2__Session *s, const char *client_id)
{
    for (size_t i = 0; i < s->n_client_ids; i++)
        if (strcmp(s->client_ids[i], client_id) == 0)
            return;
    if (s->n_client_ids >= 256)
        return;
    Koderid__V2__Session n = *s;
    char **ids = malloc((s->n_client_ids + 1) * sizeof *ids);
    if (!ids)
        return;
    memcpy(ids, s->client_ids, s->n_client_ids * sizeof *ids);
    ids[s->n_client_ids] = (char *)client_id;
    n.client_ids = ids;
    n.n_client_ids = s->n_client_ids + 1;
    int64_t ttl = (s->expires_at - store_now_ms() / 1000) * 1000;
    if (ttl > 0)
        repo_cas(ctx->store, key, version, &n.base, ttl, NULL, NULL);
    free(ids);
}

void oidc_session_end_current(struct oidc_ctx *ctx, const struct oidc_request *req)
{
    char cookie[128], key[REPO_KEY_MAX];
    if (oidc_cookie_get(ctx, req, OIDC_SESSION_COOKIE, cookie, sizeof cookie) < 0)
        return;
    session_key(cookie, key);
    repo_del(ctx->store, key, NULL);
}
