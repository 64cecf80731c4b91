/* SPDX-License-Identifier: Apache-2.0 */
/*
 * grant_type=refresh_token (RFC 6749 section 6, rotation per RFC 9700 4.14.2). Every use
 * rotates. Concurrent refreshes of one token are decided at a single point: a
 * compare-and-swap on the family record moving its live hash to the new token. Of any
 * number of concurrent refreshes exactly one wins; the others, which read the family before
 * the swap, get invalid_grant and end nothing. Presenting a token that is no longer the
 * family's live one (read after the swap, or any time later) is reuse: the whole family is
 * revoked, the twin's fresh token included, and the reuse is logged (family id and client,
 * never the token). Idle expiry counts from the token's issue, absolute expiry from the
 * family's creation (ctx->lifetimes). The scope may only narrow; the new refresh token keeps
 * the original grant's scope (RFC 6749 6). A user who is no longer active (UserState != 1:
 * deactivated, locked, deleted) ends the family.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/rand.h"
#include "oidc/claims.h"
#include "oidc/grant.h"

/* Whether every scope in @want is in @granted. */
static bool scope_subset(const char *want, const char *granted)
{
    const char *p = want;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *end = p;
        while (*end && *end != ' ')
            end++;
        if (end > p) {
            char one[512];
            size_t n = (size_t)(end - p);
            if (n >= sizeof one)
                return false;
            memcpy(one, p, n);
            one[n] = '\0';
            if (!oidc_scope_has(granted, one))
                return false;
        }
        p = end;
    }
    return true;
}

static void reuse_detected(struct oidc_ctx *ctx, const Koderid__V2__RefreshToken *rt)
{
    struct err e = {0};
    log_warn("refresh token reuse: family %.40s of client %.80s revoked", rt->family_id,
             rt->client_id);
    if (oidc_revoke_family(ctx, rt->family_id, rt->client_id, rt->user_id, &e) < 0)
        log_error("refresh family %.40s: revocation failed: %s", rt->family_id, e.msg);
}

int oidc_grant_refresh_token(struct oidc_ctx *ctx, const struct oidc_grant_req *g,
                             json_t **ret_body, struct err *e)
{
    const Koderid__V2__Client *client = g->client;
    const char *token = oidc_params_get(g->form, "refresh_token");
    const char *want_scope = oidc_params_get(g->form, "scope");
    char hash[65], key[REPO_KEY_MAX], fkey[REPO_KEY_MAX];
    struct err ge = {0};
    int r;

    if (!token)
        return err_set(e, -E_INVALID_REQUEST, "refresh_token missing");
    if (strlen(token) > OIDC_TOKEN_MAX)
        return err_set(e, -E_INVALID_GRANT, "refresh token unknown or expired");
    sha256_hex(token, strlen(token), hash);
    repo_key(key, "rt/%s", hash);

    _cleanup_(repo_msg_freep) Koderid__V2__RefreshToken *rt = NULL;
    r = repo_get(ctx->store, key, &koderid__v2__refresh_token__descriptor, (ProtobufCMessage **)&rt,
                 NULL, &ge);
    if (r == -E_NOTFOUND)
        return err_set(e, -E_INVALID_GRANT, "refresh token unknown or expired");
    if (r < 0)
        return err_set(e, r, "%s", ge.msg);
    /* Another client's token tells it nothing and spends nothing (RFC 6749 6). */
    if (strcmp(rt->client_id, client->client_id) != 0)
        return err_set(e, -E_INVALID_GRANT, "refresh token was issued to another client");

    if (repo_key(fkey, "rtfam/%s", rt->family_id) < 0)
        return err_set(e, -E_INVALID_GRANT, "refresh token unknown or expired");
    _cleanup_(repo_msg_freep) Koderid__V2__RefreshFamily *fam = NULL;
    uint64_t fam_version = 0;
    r = repo_get(ctx->store, fkey, &koderid__v2__refresh_family__descriptor,
                 (ProtobufCMessage **)&fam, &fam_version, &ge);
    if (r == -E_NOTFOUND)
        return err_set(e, -E_INVALID_GRANT, "refresh token expired");
    if (r < 0)
        return err_set(e, r, "%s", ge.msg);
    if (fam->revoked)
        return err_set(e, -E_INVALID_GRANT, "refresh token revoked");
    if (rt->spent || strcmp(fam->current_hash, hash) != 0) {
        reuse_detected(ctx, rt);
        return err_set(e, -E_INVALID_GRANT, "refresh token already used; its family is revoked");
    }
    if (rt->issued_at + ctx->lifetimes.refresh_idle <= g->now)
        return err_set(e, -E_INVALID_GRANT, "refresh token expired (idle)");
    int64_t family_end = rt->family_created_at + ctx->lifetimes.refresh_absolute;
    if (family_end <= g->now)
        return err_set(e, -E_INVALID_GRANT, "refresh token expired");

    _cleanup_(repo_msg_freep) Koderid__V2__User *user = NULL;
    r = repo_user_get(ctx->store, rt->user_id, &user, &ge);
    if (r < 0 && r != -E_NOTFOUND)
        return err_set(e, r, "%s", ge.msg);
    if (r == -E_NOTFOUND || user->state != 1) {
        oidc_revoke_family(ctx, rt->family_id, rt->client_id, rt->user_id, &ge);
        return err_set(e, -E_INVALID_GRANT, "user is not active; refresh tokens ended");
    }

    if (want_scope && !scope_subset(want_scope, rt->scope))
        return err_set(e, -E_INVALID_SCOPE, "scope exceeds the original grant");
    _cleanup_free_ char *scope = strdup(want_scope ? want_scope : rt->scope);
    if (!scope)
        return err_set(e, -E_NOMEM, "out of memory");

    /* The single decision point: move the family's live hash to a new token. */
    int64_t keep = family_end - g->now;
    char newtok[44], newhash[65];
    if (rand_token(newtok) < 0)
        return err_set(e, -E_INTERNAL, "no randomness");
    sha256_hex(newtok, strlen(newtok), newhash);
    Koderid__V2__RefreshFamily nf = *fam;
    nf.current_hash = newhash;
    r = repo_cas(ctx->store, fkey, fam_version, &nf.base, keep * 1000, NULL, &ge);
    if (r < 0) {
        OPENSSL_cleanse(newtok, sizeof newtok);
        if (r == -E_CONFLICT)
            return err_set(e, -E_INVALID_GRANT, "refresh token already used");
        return err_set(e, r, "%s", ge.msg);
    }
    /* Keep the spent token until the family ends, so that its reuse is recognised even
     * after its idle lifetime. A failure here loses nothing: the family no longer names it. */
    Koderid__V2__RefreshToken spent = *rt;
    spent.spent = true;
    if (repo_put(ctx->store, key, &spent.base, keep * 1000, NULL, &ge) < 0)
        log_warn("refresh family %.40s: marking the spent token failed: %s", rt->family_id, ge.msg);
    Koderid__V2__RefreshToken nrt = *rt;
    nrt.spent = false;
    nrt.issued_at = g->now;
    char nkey[REPO_KEY_MAX];
    repo_key(nkey, "rt/%s", newhash);
    int64_t ttl = ctx->lifetimes.refresh_idle < keep ? ctx->lifetimes.refresh_idle : keep;
    r = repo_put(ctx->store, nkey, &nrt.base, ttl * 1000, NULL, &ge);
    if (r < 0) {
        OPENSSL_cleanse(newtok, sizeof newtok);
        return err_set(e, r, "%s", ge.msg);
    }
    _cleanup_(wipe_freep) char *refresh_token = strdup(newtok);
    OPENSSL_cleanse(newtok, sizeof newtok);
    if (!refresh_token)
        return err_set(e, -E_NOMEM, "out of memory");

    _cleanup_(json_decrefp) json_t *aud = NULL;
    if ((r = oidc_claims_audience(ctx->store, client, scope, &aud, e)) < 0)
        return r;
    char jti[21];
    id_new(jti);
    struct oidc_issue in = {
        .client = client,
        .user = user,
        .scope = scope,
        .nonce = NULL, /* no nonce on refresh (OIDC Core 12.2 allows leaving it out) */
        .auth_time = rt->auth_time,
        .amr = rt->amr,
        .n_amr = rt->n_amr,
        .audience = aud,
        .jti = jti,
        .family_id = rt->family_id,
        .session_id = rt->session_id,
        .now = g->now,
        .at_expires_at = g->now + ctx->lifetimes.access_token,
    };
    return oidc_issue_tokens(ctx, &in, refresh_token, ret_body, e);
}
