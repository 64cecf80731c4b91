/* SPDX-License-Identifier: Apache-2.0 */
/*
 * grant_type=authorization_code. The code is consumed with a compare-and-swap on its record,
 * and the record then remembers what was issued (refresh family, access token ids), so a
 * second presentation both fails and revokes those (RFC 6749 4.1.2 and 10.5). Checks that fail
 * on the code's own binding (client, redirect_uri, PKCE) do not consume it: they only tell an
 * attacker "no", and consuming would let anyone who saw a code void the real client's login.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/rand.h"
#include "oidc/claims.h"
#include "oidc/clientauth.h"
#include "oidc/grant.h"
#include "oidc/pkce.h"

int oidc_pkce_check(const char *challenge, const char *method, const char *verifier,
                    bool pkce_required, struct err *e)
{
    bool has_challenge = challenge && *challenge;
    bool has_verifier = verifier && *verifier;

    if (!has_challenge) {
        if (has_verifier)
            return err_set(e, -E_INVALID_GRANT,
                           "code_verifier given for a code issued without a challenge");
        if (pkce_required)
            return err_set(e, -E_INVALID_GRANT, "PKCE is required for this client");
        return 0;
    }
    if (!method || strcmp(method, "S256") != 0)
        return err_set(e, -E_INVALID_GRANT, "code_challenge_method not supported");
    if (!has_verifier)
        return err_set(e, -E_INVALID_GRANT, "code_verifier missing");
    if (!oidc_pkce_well_formed(verifier))
        return err_set(e, -E_INVALID_GRANT, "code_verifier malformed");
    if (!oidc_pkce_verify_s256(verifier, challenge))
        return err_set(e, -E_INVALID_GRANT, "code_verifier does not match the challenge");
    return 0;
}

/* A replayed code: revoke what its first exchange issued. Best effort, errors swallowed: the
 * answer is invalid_grant either way. */
static void revoke_issued(struct oidc_ctx *ctx, const Koderid__V2__AuthCode *code)
{
    struct err e;
    if (code->family_id && *code->family_id)
        oidc_revoke_family(ctx, code->family_id, code->client_id, code->user_id, &e);
    for (size_t i = 0; i < code->n_access_token_jtis; i++)
        oidc_deny_jti(ctx, code->access_token_jtis[i], code->client_id,
                      code->access_token_expires_at, &e);
}

static void reload_and_revoke(struct oidc_ctx *ctx, const char *key)
{
    Koderid__V2__AuthCode *code = NULL;
    struct err e;
    if (repo_get(ctx->store, key, &koderid__v2__auth_code__descriptor, (ProtobufCMessage **)&code,
                 NULL, &e) == 0) {
        if (code->used)
            revoke_issued(ctx, code);
        koderid__v2__auth_code__free_unpacked(code, NULL);
    }
}

static bool client_has_grant(const Koderid__V2__Client *c, int grant)
{
    for (size_t i = 0; i < c->n_grant_types; i++)
        if (c->grant_types[i] == grant)
            return true;
    return false;
}

int oidc_grant_authorization_code(struct oidc_ctx *ctx, const struct oidc_grant_req *g,
                                  json_t **ret_body, struct err *e)
{
    const Koderid__V2__Client *client = g->client;
    const char *code = oidc_params_get(g->form, "code");
    const char *redirect_uri = oidc_params_get(g->form, "redirect_uri");
    const char *verifier = oidc_params_get(g->form, "code_verifier");
    char hash[65], key[REPO_KEY_MAX];
    int r;

    if (!code)
        return err_set(e, -E_INVALID_REQUEST, "code missing");
    if (!redirect_uri)
        return err_set(e, -E_INVALID_REQUEST, "redirect_uri missing");
    if (strlen(code) > OIDC_TOKEN_MAX)
        return err_set(e, -E_INVALID_GRANT, "code unknown or expired");
    sha256_hex(code, strlen(code), hash);
    repo_key(key, "code/%s", hash);

    _cleanup_(repo_msg_freep) Koderid__V2__AuthCode *rec = NULL;
    uint64_t version = 0;
    struct err ge = {0};
    r = repo_get(ctx->store, key, &koderid__v2__auth_code__descriptor, (ProtobufCMessage **)&rec,
                 &version, &ge);
    if (r == -E_NOTFOUND)
        return err_set(e, -E_INVALID_GRANT, "code unknown or expired");
    if (r < 0)
        return err_set(e, r, "%s", ge.msg);

    if (rec->used) {
        revoke_issued(ctx, rec);
        return err_set(e, -E_INVALID_GRANT, "code already used; tokens issued for it revoked");
    }
    if (strcmp(rec->client_id, client->client_id) != 0)
        return err_set(e, -E_INVALID_GRANT, "code was issued to another client");
    if (rec->issued_at <= 0 || g->now >= rec->issued_at + OIDC_CODE_LIFETIME ||
        rec->issued_at > g->now + 5)
        return err_set(e, -E_INVALID_GRANT, "code expired");
    if (strcmp(rec->redirect_uri, redirect_uri) != 0)
        return err_set(e, -E_INVALID_GRANT, "redirect_uri differs from the authorization request");
    if ((r = oidc_pkce_check(rec->code_challenge, rec->code_challenge_method, verifier,
                             g->auth_method == OIDC_AUTH_NONE, e)) < 0)
        return r;

    _cleanup_(repo_msg_freep) Koderid__V2__User *user = NULL;
    r = repo_user_get(ctx->store, rec->user_id, &user, &ge);
    if (r == -E_NOTFOUND)
        return err_set(e, -E_INVALID_GRANT, "user of the code no longer exists");
    if (r < 0)
        return err_set(e, r, "%s", ge.msg);
    if (user->state != 1)
        return err_set(e, -E_INVALID_GRANT, "user is not active");

    /* Decide everything the exchange will issue, then consume the code recording it. */
    bool refresh = oidc_scope_has(rec->scope, "offline_access") && client_has_grant(client, 2);
    _cleanup_free_ char *scope =
        refresh ? strdup(rec->scope) : oidc_scope_without(rec->scope, "offline_access");
    if (!scope)
        return err_set(e, -E_NOMEM, "out of memory");
    char jti[21], family[21] = "";
    id_new(jti);
    if (refresh)
        id_new(family);
    int64_t at_exp = g->now + ctx->lifetimes.access_token;

    Koderid__V2__AuthCode upd = *rec;
    char *jtis[1] = {jti};
    upd.used = true;
    upd.family_id = family;
    upd.n_access_token_jtis = 1;
    upd.access_token_jtis = jtis;
    upd.access_token_expires_at = at_exp;
    int64_t keep = ctx->lifetimes.access_token;
    keep = keep < 600 ? 600 : keep > 86400 ? 86400 : keep;
    r = repo_cas(ctx->store, key, version, &upd.base, keep * 1000, NULL, &ge);
    if (r == -E_CONFLICT) {
        reload_and_revoke(ctx, key);
        return err_set(e, -E_INVALID_GRANT, "code already used; tokens issued for it revoked");
    }
    if (r < 0)
        return err_set(e, r, "%s", ge.msg);

    _cleanup_(json_decrefp) json_t *aud = NULL;
    if ((r = oidc_claims_audience(ctx->store, client, scope, &aud, e)) < 0)
        return r;
    struct oidc_issue in = {
        .client = client,
        .user = user,
        .scope = scope,
        .nonce = rec->nonce,
        .auth_time = rec->auth_time,
        .amr = rec->amr,
        .n_amr = rec->n_amr,
        .audience = aud,
        .jti = jti,
        .family_id = family,
        .session_id = rec->session_id,
        .now = g->now,
        .at_expires_at = at_exp,
    };
    _cleanup_(wipe_freep) char *refresh_token = NULL;
    if (refresh && (r = oidc_issue_refresh_token(ctx, &in, &refresh_token, e)) < 0)
        return r;
    return oidc_issue_tokens(ctx, &in, refresh_token, ret_body, e);
}
