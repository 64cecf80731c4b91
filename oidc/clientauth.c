/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Client authentication: which method a request used, whether it is the client's registered
 * one, and the secret check. A bcrypt check of a v1 secret may cost up to cost 14 (0.8 s), so a
 * success is remembered briefly under a keyed hash, and failures are throttled per client. The
 * cache is consulted before the throttle, so an attacker failing on purpose cannot lock out a
 * client whose secret was verified moments ago; a request that misses the cache meets the
 * throttle before it can cost a hash check.
 */
#include "clientauth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/b64.h"
#include "common/cleanup.h"
#include "common/rand.h"
#include "oidc/assertion.h"
#include "oidc/password.h"
#include "oidc/respond.h"
#include "oidc/throttle.h"

struct secret_slot {
    unsigned char mac[32];
    int64_t expires_ms; /* 0 = empty */
};

struct oidc_secret_cache {
    pthread_mutex_t lock;
    unsigned char key[32];
    unsigned nslots;
    struct secret_slot *slots;
};

int oidc_secret_cache_new(unsigned slots, struct oidc_secret_cache **ret, struct err *e)
{
    struct oidc_secret_cache *c = calloc(1, sizeof *c);
    if (!c)
        return err_set(e, -E_NOMEM, "out of memory");
    c->nslots = slots ? slots : 4096;
    c->slots = calloc(c->nslots, sizeof *c->slots);
    if (!c->slots || rand_bytes(c->key, sizeof c->key) < 0) {
        free(c->slots);
        free(c);
        return err_set(e, -E_INTERNAL, "cannot create the secret cache");
    }
    pthread_mutex_init(&c->lock, NULL);
    *ret = c;
    return 0;
}

void oidc_secret_cache_free(struct oidc_secret_cache *c)
{
    if (!c)
        return;
    OPENSSL_cleanse(c->key, sizeof c->key);
    OPENSSL_cleanse(c->slots, c->nslots * sizeof *c->slots);
    pthread_mutex_destroy(&c->lock);
    free(c->slots);
    free(c);
}

/* HMAC over length-prefixed fields, so no two (subject, secret, hash) triples collide. */
static int cache_mac(const struct oidc_secret_cache *c, const char *subject, const char *secret,
                     const char *hash, unsigned char out[32])
{
    const char *parts[3] = {subject, secret, hash};
    unsigned int outlen = 0;
    int ok = 0;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *m = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (m && EVP_MAC_init(m, c->key, sizeof c->key, params) == 1) {
        ok = 1;
        for (size_t i = 0; i < 3 && ok; i++) {
            uint64_t n = strlen(parts[i]);
            unsigned char len[8];
            for (int k = 0; k < 8; k++)
                len[k] = (unsigned char)(n >> (56 - 8 * k));
            ok = EVP_MAC_update(m, len, sizeof len) == 1 &&
                 EVP_MAC_update(m, (const unsigned char *)parts[i], n) == 1;
        }
        size_t ol = 0;
        ok = ok && EVP_MAC_final(m, out, &ol, 32) == 1 && ol == 32;
        outlen = (unsigned int)ol;
    }
    EVP_MAC_CTX_free(m);
    EVP_MAC_free(mac);
    return ok && outlen == 32 ? 0 : -E_INTERNAL;
}

static unsigned slot_of(const struct oidc_secret_cache *c, const unsigned char mac[32])
{
    uint32_t v = (uint32_t)mac[0] << 24 | (uint32_t)mac[1] << 16 | (uint32_t)mac[2] << 8 | mac[3];
    return v % c->nslots;
}

static bool cache_hit(struct oidc_secret_cache *c, const unsigned char mac[32], int64_t now)
{
    bool hit = false;
    pthread_mutex_lock(&c->lock);
    struct secret_slot *s = &c->slots[slot_of(c, mac)];
    if (s->expires_ms > now && CRYPTO_memcmp(s->mac, mac, 32) == 0)
        hit = true;
    pthread_mutex_unlock(&c->lock);
    return hit;
}

static void cache_put(struct oidc_secret_cache *c, const unsigned char mac[32], int64_t now)
{
    pthread_mutex_lock(&c->lock);
    struct secret_slot *s = &c->slots[slot_of(c, mac)];
    memcpy(s->mac, mac, 32);
    s->expires_ms = now + OIDC_SECRET_CACHE_TTL_MS;
    pthread_mutex_unlock(&c->lock);
}

/* The hash formats we check: v1's bcrypt at a cost that cannot stall a worker for long, and
 * yescrypt for secrets v2 set itself. */
static bool hash_supported(const char *hash)
{
    if (strncmp(hash, "$y$", 3) == 0)
        return true;
    if ((strncmp(hash, "$2a$", 4) == 0 || strncmp(hash, "$2b$", 4) == 0 ||
         strncmp(hash, "$2y$", 4) == 0) &&
        hash[4] >= '0' && hash[4] <= '9' && hash[5] >= '0' && hash[5] <= '9' && hash[6] == '$') {
        int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
        return cost >= 4 && cost <= 14;
    }
    return false;
}

bool oidc_secret_cached(struct oidc_ctx *ctx, const char *subject, const char *secret,
                        const char *hash)
{
    unsigned char mac[32];
    if (!ctx->secret_cache || !hash || !*hash || !secret || !*secret)
        return false;
    return cache_mac(ctx->secret_cache, subject, secret, hash, mac) == 0 &&
           cache_hit(ctx->secret_cache, mac, store_now_ms());
}

int oidc_secret_verify(struct oidc_ctx *ctx, const char *subject, const char *secret,
                       const char *hash, bool *ret_cached, struct err *e)
{
    if (!hash || !*hash)
        return err_set(e, -E_INVALID_CLIENT, "no secret registered");
    if (!hash_supported(hash))
        return err_set(e, -E_INVALID_CLIENT, "unsupported secret hash format");
    if (!secret || !*secret)
        return err_set(e, -E_INVALID_CLIENT, "empty secret");

    unsigned char mac[32];
    int64_t now = store_now_ms();
    bool have_mac =
        ctx->secret_cache && cache_mac(ctx->secret_cache, subject, secret, hash, mac) == 0;
    if (have_mac && cache_hit(ctx->secret_cache, mac, now)) {
        if (ret_cached)
            *ret_cached = true;
        return 0;
    }
    bool match = false;
    int r =
        oidc_password_verify_queued(ctx->hashq, hash, secret, OIDC_SECRET_QUEUE_WAIT_MS, &match, e);
    if (r < 0)
        return r;
    if (!match)
        return err_set(e, -E_INVALID_CLIENT, "secret does not match");
    if (have_mac)
        cache_put(ctx->secret_cache, mac, now);
    if (ret_cached)
        *ret_cached = false;
    return 0;
}

int oidc_basic_parse(const char *value, char **ret_id, char **ret_secret, struct err *e)
{
    if (!value || strncasecmp(value, "basic", 5) != 0 || (value[5] != ' ' && value[5] != '\t'))
        return -E_NOTFOUND;
    size_t total = strlen(value);
    if (total > OIDC_BASIC_HEADER_MAX)
        return err_set(e, -E_INVALID_REQUEST, "authorization header too long");
    const char *p = value + 5;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t len = strlen(p);
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    /* Strict: standard alphabet, padded to a multiple of four (RFC 7617 uses RFC 4648 4). */
    if (len == 0 || len % 4 != 0)
        return err_set(e, -E_INVALID_REQUEST, "malformed basic credentials");
    size_t n = 0;
    unsigned char *raw = b64_decode_alloc(p, len, &n);
    if (!raw)
        return err_set(e, -E_INVALID_REQUEST, "malformed basic credentials");
    if (memchr(raw, '\0', n)) {
        OPENSSL_cleanse(raw, n);
        free(raw);
        return err_set(e, -E_INVALID_REQUEST, "malformed basic credentials");
    }
    char *colon = memchr(raw, ':', n);
    if (!colon || colon == (char *)raw) {
        OPENSSL_cleanse(raw, n);
        free(raw);
        return err_set(e, -E_INVALID_REQUEST, "basic credentials without client id or colon");
    }
    size_t idlen = (size_t)(colon - (char *)raw);
    char *id = NULL, *secret = NULL;
    struct err de;
    int r = oidc_url_decode((const char *)raw, idlen, 1, &id, &de);
    if (r == 0)
        r = oidc_url_decode(colon + 1, n - idlen - 1, 1, &secret, &de);
    OPENSSL_cleanse(raw, n);
    free(raw);
    if (r < 0) {
        free(id);
        return err_set(e, -E_INVALID_REQUEST, "malformed encoding in basic credentials");
    }
    if (!*id) {
        free(id);
        OPENSSL_cleanse(secret, strlen(secret));
        free(secret);
        return err_set(e, -E_INVALID_REQUEST, "basic credentials without client id");
    }
    *ret_id = id;
    *ret_secret = secret;
    return 0;
}

void oidc_client_auth_release(struct oidc_client_auth *a)
{
    if (a->client)
        koderid__v2__client__free_unpacked(a->client, NULL);
    memset(a, 0, sizeof *a);
}

int oidc_client_authenticate(struct oidc_ctx *ctx, const struct oidc_request *req,
                             const struct oidc_params *form, struct oidc_client_auth *ret,
                             struct err *e)
{
    _cleanup_free_ char *basic_id = NULL;
    _cleanup_(wipe_freep) char *basic_secret = NULL;
    _cleanup_free_ char *assertion_iss = NULL;
    const char *authz = oidc_request_header(req, "authorization");
    int r;

    ret->client = NULL;
    ret->used_basic = false;
    if (authz) {
        r = oidc_basic_parse(authz, &basic_id, &basic_secret, e);
        if (r == 0 || r == -E_INVALID_REQUEST)
            ret->used_basic = true;
        if (r == -E_INVALID_REQUEST)
            return r;
    }
    const char *form_id = oidc_params_get(form, "client_id");
    const char *form_secret = oidc_params_get(form, "client_secret");
    const char *assertion = oidc_params_get(form, "client_assertion");
    const char *assertion_type = oidc_params_get(form, "client_assertion_type");

    int methods = (basic_id != NULL) + (form_secret != NULL) + (assertion || assertion_type);
    if (methods > 1)
        return err_set(e, -E_INVALID_REQUEST, "more than one client authentication method");

    const char *client_id;
    const char *secret = NULL;
    if (basic_id) {
        if (form_id && strcmp(form_id, basic_id) != 0)
            return err_set(e, -E_INVALID_REQUEST, "client_id differs from the authenticated one");
        client_id = basic_id;
        secret = basic_secret;
        ret->method = OIDC_AUTH_BASIC;
    } else if (form_secret) {
        if (!form_id)
            return err_set(e, -E_INVALID_CLIENT, "client_secret without client_id");
        client_id = form_id;
        secret = form_secret;
        ret->method = OIDC_AUTH_POST;
    } else if (assertion || assertion_type) {
        /* private_key_jwt: the client is the assertion's iss; oidc_assertion_verify() below
         * checks it once the client is known (oidc/assertion.h). */
        ret->method = OIDC_AUTH_PRIVATE_KEY_JWT;
        if (!assertion || !assertion_type ||
            strcmp(assertion_type, OIDC_CLIENT_ASSERTION_TYPE) != 0)
            return err_set(e, -E_INVALID_CLIENT, "client_assertion_type must be %s",
                           OIDC_CLIENT_ASSERTION_TYPE);
        if ((r = oidc_assertion_issuer(assertion, &assertion_iss, e)) < 0)
            return err_set(e, -E_INVALID_CLIENT, "%s", e->msg);
        if (form_id && strcmp(form_id, assertion_iss) != 0)
            return err_set(e, -E_INVALID_CLIENT, "client_id differs from the assertion's iss");
        client_id = assertion_iss;
    } else if (form_id) {
        client_id = form_id;
        ret->method = OIDC_AUTH_NONE;
    } else {
        return err_set(e, -E_INVALID_CLIENT, "no client authentication");
    }

    Koderid__V2__Client *c = NULL;
    struct err le = {0};
    r = repo_client_get(ctx->store, client_id, &c, &le);
    if (r == -E_NOTFOUND)
        return err_set(e, -E_INVALID_CLIENT, "client '%.80s' unknown", client_id);
    if (r < 0)
        return err_set(e, r, "%s", le.msg);
    _cleanup_(oidc_client_auth_release) struct oidc_client_auth tmp = {.client = c};

    if (c->state != 1)
        return err_set(e, -E_INVALID_CLIENT, "client '%.80s' is not active", client_id);
    if (c->auth_method != ret->method)
        return err_set(e, -E_INVALID_CLIENT,
                       "client '%.80s' is registered for another authentication method", client_id);
    if (ret->method == OIDC_AUTH_PRIVATE_KEY_JWT &&
        (r = oidc_assertion_verify(ctx, assertion, client_id, req->path, true,
                                   store_now_ms() / 1000, &le)) < 0)
        return err_set(e, r == -E_INVALID_TOKEN ? -E_INVALID_CLIENT : r, "client '%.80s': %s",
                       client_id, le.msg);
    if (secret) {
        char tkey[600];
        snprintf(tkey, sizeof tkey, "client:%s", client_id);
        /* A remembered success answers before the throttle is consulted (see the file
         * comment); anything else meets the throttle before it may cost a hash check. */
        if (!oidc_secret_cached(ctx, client_id, secret, c->secret_hash)) {
            int64_t tnow = oidc_throttle_now_ms(), retry = 0;
            if (ctx->client_throttle &&
                !oidc_throttle_check(ctx->client_throttle, tkey, tnow, &retry))
                return err_set(e, -E_INVALID_CLIENT,
                               "client '%.80s': too many failed attempts, retry in %lld s",
                               client_id, (long long)(retry + 999) / 1000);
            r = oidc_secret_verify(ctx, client_id, secret, c->secret_hash, NULL, &le);
            if (r == -E_INVALID_CLIENT) {
                if (ctx->client_throttle)
                    oidc_throttle_failure(ctx->client_throttle, tkey, oidc_throttle_now_ms());
                return err_set(e, r, "client '%.80s': %s", client_id, le.msg);
            }
            if (r < 0)
                return err_set(e, r, "%s", le.msg);
            if (ctx->client_throttle)
                oidc_throttle_success(ctx->client_throttle, tkey);
        }
    } else if (c->secret_hash && *c->secret_hash && ret->method == OIDC_AUTH_NONE) {
        /* A public client has no secret; one with a secret must present it. */
        return err_set(e, -E_INVALID_CLIENT, "client '%.80s' must authenticate", client_id);
    }
    if (secret)
        oidc_secret_rehash_client(ctx, c, secret);
    ret->client = TAKE_PTR(tmp.client);
    return 0;
}

void oidc_respond_client_error(struct oidc_ctx *ctx, struct oidc_response *resp,
                               const struct oidc_client_auth *a, int code, const char *desc)
{
    oidc_respond_error(resp, code, desc);
    if ((code == -E_INVALID_CLIENT || code == E_INVALID_CLIENT) && a && a->used_basic) {
        char v[400];
        /* The realm is the issuer, quoted; it never holds a quote or backslash in practice,
         * but drop them rather than break the header. */
        size_t o = 0;
        o += (size_t)snprintf(v, sizeof v, "Basic realm=\"");
        for (const char *p = ctx->cfg.issuer; *p && o + 3 < sizeof v; p++)
            if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
                v[o++] = *p;
        v[o++] = '"';
        v[o] = '\0';
        oidc_response_header(resp, "www-authenticate", v);
    }
}

int oidc_client_authenticate_endpoint(struct oidc_ctx *ctx, const struct oidc_request *req,
                                      const struct oidc_params *form, struct oidc_client_auth *ret,
                                      struct oidc_response *resp)
{
    struct err e = {0};
    int r = oidc_client_authenticate(ctx, req, form, ret, &e);
    if (r < 0) {
        oidc_respond_client_error(ctx, resp, ret, r, e.msg);
        return r;
    }
    oidc_response_note(resp, "client=%.80s", ret->client->client_id);
    return 0;
}
