/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rehashing of client and machine-user secrets after a successful check, as v1's passwap
 * Swapper does: a bcrypt hash whose cost is above the configured one (v1's legacy secrets
 * were hashed at the old password cost, likely 14) is replaced by one at cost 4, so a cache
 * miss costs about a millisecond instead of most of a second. The write is a compare-and-swap
 * against the hash that was verified, so a secret changed meanwhile is never overwritten.
 */
#include <crypt.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/rand.h"
#include "oidc/clientauth.h"

bool oidc_secret_needs_rehash(const char *hash)
{
    if (!hash || (strncmp(hash, "$2a$", 4) != 0 && strncmp(hash, "$2b$", 4) != 0 &&
                  strncmp(hash, "$2y$", 4) != 0))
        return false;
    if (hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9' || hash[6] != '$')
        return false;
    return (hash[4] - '0') * 10 + (hash[5] - '0') > OIDC_SECRET_BCRYPT_COST;
}

/* A new bcrypt hash of @secret at OIDC_SECRET_BCRYPT_COST, or NULL. */
static char *bcrypt_new(const char *secret)
{
    char setting[64];
    unsigned char salt[16];
    struct crypt_data *cd = calloc(1, sizeof *cd);
    char *out = NULL;
    if (!cd || rand_bytes(salt, sizeof salt) < 0) {
        free(cd);
        return NULL;
    }
    if (crypt_gensalt_rn("$2b$", OIDC_SECRET_BCRYPT_COST, (const char *)salt, sizeof salt,
                         setting, sizeof setting)) {
        const char *h = crypt_rn(secret, setting, cd, sizeof *cd);
        if (h && h[0] == '$')
            out = strdup(h);
    }
    OPENSSL_cleanse(cd, sizeof *cd);
    free(cd);
    return out;
}

/* Re-reads @key as @desc, checks the hash field still equals @old_hash, swaps in a new one. */
static int rehash_record(struct oidc_ctx *ctx, const char *key,
                         const ProtobufCMessageDescriptor *desc, size_t hash_offset,
                         const char *old_hash, const char *secret, struct err *e)
{
    ProtobufCMessage *m = NULL;
    uint64_t version = 0;
    int r = repo_get(ctx->store, key, desc, &m, &version, e);
    if (r < 0)
        return r;
    char **field = (char **)((char *)m + hash_offset);
    if (!*field || strcmp(*field, old_hash) != 0) {
        protobuf_c_message_free_unpacked(m, NULL);
        return 0; /* changed meanwhile: leave it */
    }
    char *nh = bcrypt_new(secret);
    if (!nh) {
        protobuf_c_message_free_unpacked(m, NULL);
        return err_set(e, -E_INTERNAL, "cannot hash");
    }
    char *saved = *field;
    *field = nh;
    r = repo_cas(ctx->store, key, version, m, 0, NULL, e);
    *field = saved;
    free(nh);
    protobuf_c_message_free_unpacked(m, NULL);
    return r == -E_CONFLICT ? 0 : r;
}

void oidc_secret_rehash_client(struct oidc_ctx *ctx, const Koderid__V2__Client *c,
                               const char *secret)
{
    char key[REPO_KEY_MAX];
    struct err e = {0};
    if (!oidc_secret_needs_rehash(c->secret_hash) || repo_key(key, "client/%s", c->client_id) < 0)
        return;
    if (rehash_record(ctx, key, &koderid__v2__client__descriptor,
                      offsetof(Koderid__V2__Client, secret_hash), c->secret_hash, secret,
                      &e) < 0)
        log_warn("client %.80s: secret rehash failed: %s", c->client_id, e.msg);
    else
        log_info("client %.80s: secret rehashed to bcrypt cost %d", c->client_id,
                 OIDC_SECRET_BCRYPT_COST);
}

void oidc_secret_rehash_user(struct oidc_ctx *ctx, const Koderid__V2__User *u,
                             const char *secret)
{
    char key[REPO_KEY_MAX];
    struct err e = {0};
    if (!oidc_secret_needs_rehash(u->secret_hash) || repo_key(key, "user/%s", u->id) < 0)
        return;
    if (rehash_record(ctx, key, &koderid__v2__user__descriptor,
                      offsetof(Koderid__V2__User, secret_hash), u->secret_hash, secret, &e) < 0)
        log_warn("machine user %.40s: secret rehash failed: %s", u->id, e.msg);
    else
        log_info("machine user %.40s: secret rehashed to bcrypt cost %d", u->id,
                 OIDC_SECRET_BCRYPT_COST);
}
