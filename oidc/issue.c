/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token issuance shared by every grant: access tokens (opaque or JWT), ID tokens, refresh
 * tokens and their family, the deny-list. Claim shapes follow v1 (zitadel/oidc's
 * NewAccessTokenClaims / NewIDTokenClaims): iat and nbf are moved back by the client's clock
 * skew, exp forward by it. JWT access tokens also carry `client_id` and `scope` (RFC 9068), which
 * v1 kept server-side; userinfo and introspection read them since JWTs are not stored.
 */
#include "grant.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/rand.h"
#include "oidc/claims.h"
#include "oidc/jwt.h"
#include "oidc/keys.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)

static int64_t skew_of(const Koderid__V2__Client *c)
{
    int64_t s = c->clock_skew_ms / 1000;
    return s < 0 ? 0 : s > 5 ? 5 : s;
}

static int sign_claims(struct oidc_ctx *ctx, const json_t *claims, char **ret,
                       char ret_alg[OIDC_JWT_ALG_MAX], struct err *e)
{
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
    char kid[64], alg[8];
    int r;
    if (!ctx->keys)
        return err_set(e, -E_INTERNAL, "no signing keys");
    if ((r = oidc_keys_current(ctx->keys, &key, kid, alg, e)) < 0)
        return r;
    if ((r = oidc_jwt_sign(claims, key, kid, alg, ret, e)) < 0)
        return r;
    if (ret_alg)
        snprintf(ret_alg, OIDC_JWT_ALG_MAX, "%s", alg);
    return 0;
}

static int64_t ttl_ms_until(int64_t expires_at, int64_t now)
{
    int64_t left = expires_at - now;
    return left > 0 ? left * 1000 : 0;
}

int oidc_issue_access_token(struct oidc_ctx *ctx, const struct oidc_issue *in, char **ret,
                            struct err *e)
{
    const Koderid__V2__Client *c = in->client;
    int64_t skew = skew_of(c);
    int r;

    if (c->access_token_type == 1) {
        _cleanup_(json_decrefp) json_t *claims = json_pack(
            "{s:s, s:s, s:O, s:I, s:I, s:I, s:s, s:s, s:s}", "iss", ctx->cfg.issuer, "sub",
            in->user->id, "aud", in->audience, "exp", (json_int_t)(in->at_expires_at + skew), "iat",
            (json_int_t)(in->now - skew), "nbf", (json_int_t)(in->now - skew), "jti", in->jti,
            "client_id", c->client_id, "scope", in->scope ? in->scope : "");
        if (!claims)
            return err_set(e, -E_INTERNAL, "cannot build access token claims");
        if ((r = oidc_claims_zitadel(ctx->store, c, in->user, in->scope, in->audience,
                                     OIDC_CLAIMS_ACCESS_TOKEN, claims, e)) < 0)
            return r;
        return sign_claims(ctx, claims, ret, NULL, e);
    }

    char token[44], hash[65], key[REPO_KEY_MAX];
    if (rand_token(token) < 0)
        return err_set(e, -E_INTERNAL, "no randomness");
    sha256_hex(token, strlen(token), hash);
    repo_key(key, "at/%s", hash);
    Koderid__V2__AccessToken at = KODERID__V2__ACCESS_TOKEN__INIT;
    at.jti = (char *)in->jti;
    at.client_id = c->client_id;
    at.user_id = in->user->id;
    at.scope = (char *)(in->scope ? in->scope : "");
    at.issued_at = in->now;
    at.expires_at = in->at_expires_at;
    at.family_id = (char *)(in->family_id ? in->family_id : "");
    at.auth_time = in->auth_time;
    size_t naud = json_array_size(in->audience);
    char **aud = calloc(naud ? naud : 1, sizeof *aud);
    if (!aud)
        return err_set(e, -E_NOMEM, "out of memory");
    for (size_t i = 0; i < naud; i++)
        aud[i] = (char *)json_string_value(json_array_get(in->audience, i));
    at.n_audience = naud;
    at.audience = aud;
    r = repo_put(ctx->store, key, &at.base, ttl_ms_until(in->at_expires_at, in->now), NULL, e);
    free(aud);
    if (r < 0) {
        OPENSSL_cleanse(token, sizeof token);
        return r;
    }
    *ret = strdup(token);
    OPENSSL_cleanse(token, sizeof token);
    return *ret ? 0 : err_set(e, -E_NOMEM, "out of memory");
}

int oidc_issue_id_token(struct oidc_ctx *ctx, const struct oidc_issue *in, const char *access_token,
                        char **ret, struct err *e)
{
    const Koderid__V2__Client *c = in->client;
    int64_t skew = skew_of(c);
    int r;

    _cleanup_(json_decrefp) json_t *claims = json_object();
    if (!claims)
        return err_set(e, -E_NOMEM, "out of memory");
    json_object_set_new(claims, "iss", json_string(ctx->cfg.issuer));
    json_object_set_new(claims, "sub", json_string(in->user->id));
    json_object_set(claims, "aud", (json_t *)in->audience);
    json_object_set_new(claims, "exp", json_integer(in->now + ctx->lifetimes.id_token + skew));
    json_object_set_new(claims, "iat", json_integer(in->now - skew));
    if (in->auth_time > 0)
        json_object_set_new(claims, "auth_time", json_integer(in->auth_time - skew));
    if (in->nonce && *in->nonce && json_object_set_new(claims, "nonce", json_string(in->nonce)))
        return err_set(e, -E_INVALID_REQUEST, "nonce is not valid utf-8");
    if (in->n_amr) {
        json_t *amr = json_array();
        for (size_t i = 0; i < in->n_amr; i++)
            json_array_append_new(amr, json_string(in->amr[i]));
        json_object_set_new(claims, "amr", amr);
    }
    json_object_set_new(claims, "azp", json_string(c->client_id));
    if (c->id_token_userinfo_assertion || !access_token) {
        if ((r = oidc_claims_userinfo(in->user, in->scope, claims, e)) < 0)
            return r;
        if ((r = oidc_claims_zitadel(ctx->store, c, in->user, in->scope, in->audience,
                                     OIDC_CLAIMS_ID_TOKEN, claims, e)) < 0)
            return r;
    } else if ((r = oidc_claims_zitadel(ctx->store, c, in->user, in->scope, in->audience,
                                        OIDC_CLAIMS_ID_TOKEN_ROLES, claims, e)) < 0) {
        return r;
    }

    /* at_hash depends on the signing algorithm; RS256 and ES256 both use SHA-256. */
    if (access_token) {
        char at_hash[44];
        if ((r = oidc_jwt_hash_claim(access_token, strlen(access_token), "RS256", at_hash, e)) < 0)
            return r;
        json_object_set_new(claims, "at_hash", json_string(at_hash));
    }
    char alg[OIDC_JWT_ALG_MAX];
    return sign_claims(ctx, claims, ret, alg, e);
}

int oidc_issue_refresh_token(struct oidc_ctx *ctx, const struct oidc_issue *in, char **ret,
                             struct err *e)
{
    char token[44], hash[65], key[REPO_KEY_MAX];
    int r;

    if (!in->family_id || !*in->family_id)
        return err_set(e, -E_INTERNAL, "refresh token without a family");
    if (rand_token(token) < 0)
        return err_set(e, -E_INTERNAL, "no randomness");
    sha256_hex(token, strlen(token), hash);

    Koderid__V2__RefreshFamily fam = KODERID__V2__REFRESH_FAMILY__INIT;
    fam.id = (char *)in->family_id;
    fam.client_id = in->client->client_id;
    fam.user_id = in->user->id;
    fam.created_at = in->now;
    fam.current_hash = hash;
    if (repo_key(key, "rtfam/%s", in->family_id) < 0)
        return err_set(e, -E_INTERNAL, "family id too long");
    struct err ce = {0};
    r = repo_cas(ctx->store, key, 0, &fam.base, ctx->lifetimes.refresh_absolute * 1000, NULL, &ce);
    if (r == -E_CONFLICT)
        return err_set(e, -E_INVALID_GRANT, "authorization code was replayed meanwhile");
    if (r < 0)
        return err_set(e, r, "%s", ce.msg);

    Koderid__V2__RefreshToken rt = KODERID__V2__REFRESH_TOKEN__INIT;
    rt.family_id = (char *)in->family_id;
    rt.client_id = in->client->client_id;
    rt.user_id = in->user->id;
    rt.scope = (char *)(in->scope ? in->scope : "");
    rt.auth_time = in->auth_time;
    rt.amr = (char **)in->amr;
    rt.n_amr = in->n_amr;
    rt.issued_at = in->now;
    rt.family_created_at = in->now;
    rt.session_id = (char *)(in->session_id ? in->session_id : "");
    rt.nonce = (char *)(in->nonce ? in->nonce : "");
    repo_key(key, "rt/%s", hash);
    int64_t idle = ctx->lifetimes.refresh_idle, abs = ctx->lifetimes.refresh_absolute;
    r = repo_put(ctx->store, key, &rt.base, (idle < abs ? idle : abs) * 1000, NULL, e);
    if (r < 0) {
        OPENSSL_cleanse(token, sizeof token);
        return r;
    }
    *ret = strdup(token);
    OPENSSL_cleanse(token, sizeof token);
    return *ret ? 0 : err_set(e, -E_NOMEM, "out of memory");
}

int oidc_deny_jti(struct oidc_ctx *ctx, const char *jti, const char *client_id, int64_t expires_at,
                  struct err *e)
{
    char key[REPO_KEY_MAX];
    int64_t now = store_now_ms() / 1000;
    if (!jti || !*jti || expires_at <= now)
        return 0;
    if (repo_key(key, "deny/%s", jti) < 0)
        return err_set(e, -E_INVALID, "jti too long");
    Koderid__V2__JtiMark m = KODERID__V2__JTI_MARK__INIT;
    m.expires_at = expires_at;
    m.client_id = (char *)(client_id ? client_id : "");
    /* A margin past expiry covers verifiers' clock skew. */
    return repo_put(ctx->store, key, &m.base, (expires_at - now + 60) * 1000, NULL, e);
}

bool oidc_jti_denied(struct oidc_ctx *ctx, const char *jti)
{
    char key[REPO_KEY_MAX];
    struct store_value v = {0};
    struct err e;
    if (!jti || !*jti)
        return false;
    if (repo_key(key, "deny/%s", jti) < 0)
        return true;
    int r = store_get(ctx->store, key, strlen(key), &v, &e);
    store_value_release(&v);
    return r != -E_NOTFOUND;
}

int oidc_revoke_family(struct oidc_ctx *ctx, const char *family_id, const char *client_id,
                       const char *user_id, struct err *e)
{
    char key[REPO_KEY_MAX];
    if (!family_id || !*family_id)
        return 0;
    if (repo_key(key, "rtfam/%s", family_id) < 0)
        return err_set(e, -E_INVALID, "family id too long");
    /* Read-modify-write under cas, so a concurrent rotation cannot un-revoke it. */
    for (int attempt = 0; attempt < 8; attempt++) {
        Koderid__V2__RefreshFamily *fam = NULL;
        uint64_t version = 0;
        struct err ge = {0};
        int r = repo_get(ctx->store, key, &koderid__v2__refresh_family__descriptor,
                         (ProtobufCMessage **)&fam, &version, &ge);
        if (r < 0 && r != -E_NOTFOUND)
            return err_set(e, r, "%s", ge.msg);
        Koderid__V2__RefreshFamily stub = KODERID__V2__REFRESH_FAMILY__INIT;
        stub.id = (char *)family_id;
        stub.client_id = (char *)(client_id ? client_id : "");
        stub.user_id = (char *)(user_id ? user_id : "");
        stub.created_at = store_now_ms() / 1000;
        Koderid__V2__RefreshFamily *w = fam ? fam : &stub;
        w->revoked = true;
        r = repo_cas(ctx->store, key, fam ? version : 0, &w->base,
                     ctx->lifetimes.refresh_absolute * 1000, NULL, e);
        if (fam)
            koderid__v2__refresh_family__free_unpacked(fam, NULL);
        if (r != -E_CONFLICT)
            return r;
    }
    return err_set(e, -E_CONFLICT, "refresh family keeps changing");
}

json_t *oidc_token_response(const struct oidc_issue *in, const char *access_token,
                            const char *id_token, const char *refresh_token)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "access_token", json_string(access_token));
    json_object_set_new(o, "token_type", json_string("Bearer"));
    int64_t expires_in = in->at_expires_at - in->now;
    json_object_set_new(o, "expires_in", json_integer(expires_in > 0 ? expires_in : 0));
    if (refresh_token)
        json_object_set_new(o, "refresh_token", json_string(refresh_token));
    if (id_token)
        json_object_set_new(o, "id_token", json_string(id_token));
    if (in->scope && *in->scope)
        json_object_set_new(o, "scope", json_string(in->scope));
    return o;
}

int oidc_issue_tokens(struct oidc_ctx *ctx, const struct oidc_issue *in, const char *refresh_token,
                      json_t **ret_body, struct err *e)
{
    int r;
    _cleanup_(wipe_freep) char *access_token = NULL;
    if ((r = oidc_issue_access_token(ctx, in, &access_token, e)) < 0)
        return r;
    _cleanup_free_ char *id_token = NULL;
    if (oidc_scope_has(in->scope, "openid") &&
        (r = oidc_issue_id_token(ctx, in, access_token, &id_token, e)) < 0)
        return r;
    json_t *body = oidc_token_response(in, access_token, id_token, refresh_token);
    if (!body)
        return err_set(e, -E_NOMEM, "out of memory");
    *ret_body = body;
    return 0;
}
