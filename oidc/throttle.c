/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Failed-attempt throttling in a fixed-size table. A key is reduced to a 128-bit keyed hash
 * (HMAC-SHA-256 under a per-process random key), so an attacker cannot aim keys
 * at one bucket to evict a victim's entry, and the table never holds login names.
 */
#include "throttle.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/rand.h"

#define BUCKET_WAYS 8

struct entry {
    unsigned char id[16]; /* keyed hash of the key; all zero = free */
    unsigned failures;
    int64_t last_failure_ms;
    int64_t blocked_until_ms;
};

struct bucket {
    pthread_mutex_t lock;
    struct entry e[BUCKET_WAYS];
};

struct oidc_throttle {
    struct oidc_throttle_config cfg;
    size_t nbuckets;
    unsigned char hkey[32];
    struct bucket *buckets;
};

int64_t oidc_throttle_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int oidc_throttle_new(const struct oidc_throttle_config *cfg, struct oidc_throttle **ret,
                      struct err *e)
{
    struct oidc_throttle *t = calloc(1, sizeof *t);
    if (!t)
        return err_set(e, -E_NOMEM, "out of memory");
    if (cfg)
        t->cfg = *cfg;
    if (!t->cfg.slots)
        t->cfg.slots = 16384;
    if (!t->cfg.free_failures)
        t->cfg.free_failures = 5;
    if (t->cfg.base_delay_ms <= 0)
        t->cfg.base_delay_ms = 1000;
    if (t->cfg.max_delay_ms <= 0)
        t->cfg.max_delay_ms = 15 * 60 * 1000;
    if (t->cfg.forget_ms <= 0)
        t->cfg.forget_ms = 60 * 60 * 1000;
    t->nbuckets = (t->cfg.slots + BUCKET_WAYS - 1) / BUCKET_WAYS;
    t->buckets = calloc(t->nbuckets, sizeof *t->buckets);
    if (!t->buckets || rand_bytes(t->hkey, sizeof t->hkey) < 0) {
        free(t->buckets);
        free(t);
        return err_set(e, -E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < t->nbuckets; i++)
        pthread_mutex_init(&t->buckets[i].lock, NULL);
    *ret = t;
    return 0;
}

void oidc_throttle_free(struct oidc_throttle *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nbuckets; i++)
        pthread_mutex_destroy(&t->buckets[i].lock);
    free(t->buckets);
    OPENSSL_cleanse(t->hkey, sizeof t->hkey);
    free(t);
}

static struct bucket *locate(struct oidc_throttle *t, const char *key, unsigned char id[16])
{
    unsigned char mac[32];
    unsigned int maclen = sizeof mac;
    HMAC(EVP_sha256(), t->hkey, sizeof t->hkey, (const unsigned char *)key, strlen(key), mac,
         &maclen);
    memcpy(id, mac, 16);
    id[0] |= 1; /* never all zero, which marks a free entry */
    uint64_t h;
    memcpy(&h, mac + 16, sizeof h);
    return &t->buckets[h % t->nbuckets];
}

static bool is_free(const struct entry *en)
{
    static const unsigned char zero[16];
    return memcmp(en->id, zero, sizeof zero) == 0;
}

/* The entry for @id in @b, forgetting it when stale; NULL when absent. Caller holds the lock. */
static struct entry *find(struct oidc_throttle *t, struct bucket *b, const unsigned char id[16],
                          int64_t now_ms)
{
    for (int i = 0; i < BUCKET_WAYS; i++) {
        struct entry *en = &b->e[i];
        if (is_free(en) || memcmp(en->id, id, 16) != 0)
            continue;
        if (now_ms - en->last_failure_ms >= t->cfg.forget_ms && now_ms >= en->blocked_until_ms) {
            memset(en, 0, sizeof *en);
            return NULL;
        }
        return en;
    }
    return NULL;
}

bool oidc_throttle_check(struct oidc_throttle *t, const char *key, int64_t now_ms,
                         int64_t *ret_retry_ms)
{
    unsigned char id[16];
    struct bucket *b = locate(t, key, id);
    bool ok = true;
    int64_t left = 0;

    pthread_mutex_lock(&b->lock);
    struct entry *en = find(t, b, id, now_ms);
    if (en && en->blocked_until_ms > now_ms) {
        ok = false;
        left = en->blocked_until_ms - now_ms;
    }
    pthread_mutex_unlock(&b->lock);
    if (!ok && ret_retry_ms)
        *ret_retry_ms = left;
    return ok;
}

void oidc_throttle_failure(struct oidc_throttle *t, const char *key, int64_t now_ms)
{
    unsigned char id[16];
    struct bucket *b = locate(t, key, id);

    pthread_mutex_lock(&b->lock);
    struct entry *en = find(t, b, id, now_ms);
    if (!en) {
        /* A free way, else the one whose last failure is oldest: eviction only ever drops
         * the key an attacker has been quietest about. */
        struct entry *victim = NULL;
        for (int i = 0; i < BUCKET_WAYS; i++) {
            struct entry *c = &b->e[i];
            if (is_free(c)) {
                victim = c;
                break;
            }
            if (!victim || c->last_failure_ms < victim->last_failure_ms)
                victim = c;
        }
        memset(victim, 0, sizeof *victim);
        memcpy(victim->id, id, 16);
        en = victim;
    }
    if (en->failures < 1000000)
        en->failures++;
    en->last_failure_ms = now_ms;
    if (en->failures >= t->cfg.free_failures) {
        unsigned steps = en->failures - t->cfg.free_failures;
        int64_t delay = t->cfg.base_delay_ms;
        for (unsigned i = 0; i < steps && delay < t->cfg.max_delay_ms; i++)
            delay *= 2;
        if (delay > t->cfg.max_delay_ms)
            delay = t->cfg.max_delay_ms;
        en->blocked_until_ms = now_ms + delay;
    }
    pthread_mutex_unlock(&b->lock);
}

void oidc_throttle_success(struct oidc_throttle *t, const char *key)
{
    unsigned char id[16];
    struct bucket *b = locate(t, key, id);

    pthread_mutex_lock(&b->lock);
    for (int i = 0; i < BUCKET_WAYS; i++)
        if (!is_free(&b->e[i]) && memcmp(b->e[i].id, id, 16) == 0)
            memset(&b->e[i], 0, sizeof b->e[i]);
    pthread_mutex_unlock(&b->lock);
}

unsigned oidc_throttle_failures(struct oidc_throttle *t, const char *key, int64_t now_ms)
{
    unsigned char id[16];
    struct bucket *b = locate(t, key, id);
    unsigned n = 0;

    pthread_mutex_lock(&b->lock);
    struct entry *en = find(t, b, id, now_ms);
    if (en)
        n = en->failures;
    pthread_mutex_unlock(&b->lock);
    return n;
}
