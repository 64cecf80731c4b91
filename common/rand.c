/* SPDX-License-Identifier: Apache-2.0 */
/* Randomness (OpenSSL RAND_bytes), SHA-256 helpers and the time-ordered id generator. */
#include "rand.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "b64.h"
#include "err.h"

int rand_bytes(void *buf, size_t len)
{
    if (RAND_bytes(buf, (int)len) != 1)
        return -E_INTERNAL;
    return 0;
}

int rand_alnum(char *out, size_t len)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t o = 0;
    while (o < len) {
        unsigned char b[64];
        if (rand_bytes(b, sizeof b) < 0)
            return -E_INTERNAL;
        for (size_t i = 0; i < sizeof b && o < len; i++)
            if (b[i] < 248) /* 248 = 4 * 62: reject to keep the choice uniform */
                out[o++] = alpha[b[i] % 62];
    }
    out[len] = '\0';
    return 0;
}

int rand_token(char out[44])
{
    unsigned char b[32];
    if (rand_bytes(b, sizeof b) < 0)
        return -E_INTERNAL;
    b64url_encode(b, sizeof b, out);
    return 0;
}

void sha256_raw(const void *data, size_t len, unsigned char out[32])
{
    SHA256(data, len, out);
}

void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    SHA256(data, len, md);
    hex_encode(md, sizeof md, out);
}

/*
 * Sonyflake-like layout so new ids sort after v1's and look alike: 39 bits of 10 ms units since
 * 2019-04-29, 8 bits of sequence, 16 bits of machine id (random per process). v1's ids of
 * today are 18 digits; this stays 18 digits until the 2030s.
 */
#define ID_EPOCH_MS 1556496000000ULL

static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t id_last_tick;
static unsigned id_seq;
static unsigned id_machine;
static int id_machine_set;

void id_new(char out[21])
{
    struct timespec ts;
    uint64_t tick, v;

    pthread_mutex_lock(&id_lock);
    if (!id_machine_set) {
        unsigned char m[2] = {0, 0};
        (void)rand_bytes(m, 2);
        id_machine = (unsigned)m[0] << 8 | m[1];
        id_machine_set = 1;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    tick = ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 - ID_EPOCH_MS) / 10;
    if (tick <= id_last_tick) {
        tick = id_last_tick;
        if (++id_seq > 255) {
            id_seq = 0;
            tick++; /* borrow from the future rather than repeat */
        }
    } else {
        id_seq = 0;
    }
    id_last_tick = tick;
    v = tick << 24 | (uint64_t)id_seq << 16 | id_machine;
    pthread_mutex_unlock(&id_lock);
    snprintf(out, 21, "%llu", (unsigned long long)v);
}
