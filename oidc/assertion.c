/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JWT assertions signed by a registered key: private_key_jwt and the JWT bearer grant. The
 * signature check is oidc/jwt.c's, whose key callback here reads the owner's AuthnKey by kid;
 * the rest (issuer, subject, audience, lifetime, replay) is checked here.
 */
#include "assertion.h"

#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/cleanup.h"
#include "oidc/jwt.h"
#include "storage/repo.h"

struct key_lookup {
    struct oidc_ctx *ctx;
    const char *owner;
    int64_t now;
};

static int owner_key(const char *kid, EVP_PKEY **ret_key, char alg[OIDC_JWT_ALG_MAX],
                     void *cbdata, struct err *e)
{
    struct key_lookup *l = cbdata;
    char key[REPO_KEY_MAX];
    if (!kid || !*kid)
        return err_set(e, -E_NOTFOUND, "assertion without kid");
    if (repo_key(key, "authnkey/%s/%s", l->owner, kid) < 0 || strchr(kid, '/'))
        return err_set(e, -E_NOTFOUND, "unknown kid");
    Koderid__V2__AuthnKey *k = NULL;
    struct err ge = {0};
    int r = repo_get(l->ctx->store, key, &koderid__v2__authn_key__descriptor,
                     (ProtobufCMessage **)&k, NULL, &ge);
    if (r == -E_NOTFOUND)
        return err_set(e, -E_NOTFOUND, "unknown kid");
    if (r < 0)
        return err_set(e, r, "%s", ge.msg);
    r = 0;
    if (!k->enabled)
        r = err_set(e, -E_NOTFOUND, "key disabled");
    else if (k->expires_at > 0 && k->expires_at <= l->now)
        r = err_set(e, -E_NOTFOUND, "key expired");
    EVP_PKEY *pk = NULL;
    if (r == 0) {
        BIO *b = BIO_new_mem_buf(k->public_key.data, (int)k->public_key.len);
        pk = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        if (!pk)
            r = err_set(e, -E_NOTFOUND, "registered key does not parse");
    }
    koderid__v2__authn_key__free_unpacked(k, NULL);
    if (r < 0)
        return r;
    alg[0] = '\0'; /* jwt.c derives it from the key type: RS256 or ES256, nothing else */
    *ret_key = pk;
    return 0;
}

int oidc_assertion_issuer(const char *assertion, char **ret, struct err *e)
{
    if (!assertion || strlen(assertion) > OIDC_JWT_MAX)
        return err_set(e, -E_INVALID_TOKEN, "assertion missing or too large");
    const char *d1 = strchr(assertion, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || (size_t)(d2 - d1 - 1) > OIDC_JWT_CLAIMS_MAX * 2)
        return err_set(e, -E_INVALID_TOKEN, "assertion is not a compact JWS");
    size_t n = 0;
    _cleanup_free_ unsigned char *raw = b64url_decode_alloc(d1 + 1, (size_t)(d2 - d1 - 1),
                                                             false, &n);
    if (!raw)
        return err_set(e, -E_INVALID_TOKEN, "assertion claims are not base64url");
    _cleanup_(json_decrefp) json_t *claims = json_loadb((const char *)raw, n,
                                                        JSON_REJECT_DUPLICATES, NULL);
    const json_t *iss = json_object_get(claims, "iss");
    if (!json_is_string(iss) || !*json_string_value(iss) ||
        strlen(json_string_value(iss)) > 256)
        return err_set(e, -E_INVALID_TOKEN, "assertion without a usable iss");
    *ret = strdup(json_string_value(iss));
    return *ret ? 0 : err_set(e, -E_NOMEM, "out of memory");
}

static bool aud_matches(const json_t *aud, const char *issuer, const char *endpoint_url)
{
    if (json_is_string(aud)) {
        const char *a = json_string_value(aud);
        return strcmp(a, issuer) == 0 || (endpoint_url && strcmp(a, endpoint_url) == 0);
    }
    if (json_is_array(aud)) {
        size_t i;
        const json_t *v;
        json_array_foreach(aud, i, v)
            if (aud_matches(v, issuer, endpoint_url))
                return true;
    }
    return false;
}

int oidc_assertion_verify(struct oidc_ctx *ctx, const char *assertion, const char *owner,
                          const char *endpoint_path, bool require_jti, int64_t now,
                          struct err *e)
{
    if (!assertion || !owner || !*owner)
        return err_set(e, -E_INVALID_TOKEN, "assertion missing");
    struct key_lookup l = {.ctx = ctx, .owner = owner, .now = now};
    _cleanup_(json_decrefp) json_t *claims = NULL;
    struct err ve = {0};
    int r = oidc_jwt_verify(assertion, strlen(assertion), owner_key, &l, NULL, &claims, &ve);
    if (r < 0)
        return err_set(e, r == -E_INVALID_TOKEN || r == -E_NOTFOUND ? -E_INVALID_TOKEN : r,
                       "assertion: %s", ve.msg);
    const json_t *iss = json_object_get(claims, "iss"), *sub = json_object_get(claims, "sub");
    if (!json_is_string(iss) || strcmp(json_string_value(iss), owner) != 0)
        return err_set(e, -E_INVALID_TOKEN, "assertion iss is not its owner");
    if (!json_is_string(sub) || strcmp(json_string_value(sub), owner) != 0)
        return err_set(e, -E_INVALID_TOKEN, "assertion sub is not its owner");

    char url[1024];
    bool have_url = endpoint_path &&
                    (size_t)snprintf(url, sizeof url, "%s%s", ctx->cfg.issuer, endpoint_path) <
                        sizeof url;
    if (!aud_matches(json_object_get(claims, "aud"), ctx->cfg.issuer, have_url ? url : NULL))
        return err_set(e, -E_INVALID_TOKEN, "assertion aud names neither issuer nor endpoint");

    if ((r = oidc_jwt_check_time(claims, now, OIDC_ASSERTION_SKEW, true, &ve)) < 0)
        return err_set(e, -E_INVALID_TOKEN, "assertion: %s", ve.msg);
    int64_t exp = json_integer_value(json_object_get(claims, "exp"));
    if (exp > now + OIDC_ASSERTION_MAX_AHEAD + OIDC_ASSERTION_SKEW)
        return err_set(e, -E_INVALID_TOKEN, "assertion exp too far ahead (at most %d s)",
                       OIDC_ASSERTION_MAX_AHEAD);

    const json_t *jti = json_object_get(claims, "jti");
    if (jti && (!json_is_string(jti) || !*json_string_value(jti)))
        return err_set(e, -E_INVALID_TOKEN, "assertion jti is not a string");
    if (!jti) {
        if (require_jti)
            return err_set(e, -E_INVALID_TOKEN, "assertion without jti");
        return 0;
    }
    char key[REPO_KEY_MAX];
    if (repo_key(key, "ajti/%s/%s", owner, json_string_value(jti)) < 0)
        return err_set(e, -E_INVALID_TOKEN, "assertion jti too long");
    Koderid__V2__JtiMark m = KODERID__V2__JTI_MARK__INIT;
    m.expires_at = exp;
    m.client_id = (char *)owner;
    struct err ce = {0};
    /* Create-only: of two requests with one jti, exactly one creates the mark. */
    r = repo_cas(ctx->store, key, 0, &m.base, (exp - now + OIDC_ASSERTION_SKEW + 60) * 1000,
                 NULL, &ce);
    if (r == -E_CONFLICT || r == -E_EXISTS)
        return err_set(e, -E_INVALID_TOKEN, "assertion jti already used");
    if (r < 0)
        return err_set(e, r, "%s", ce.msg);
    return 0;
}
