/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Throttling of failed attempts (passwords, client secrets), keyed by any string: an account
 * ("acct:alice"), a client address ("addr:192.0.2.1"), a client_id. After a few free failures
 * each further failure doubles a delay during which the key is refused, up to a cap; a key
 * with no failure for a while is forgotten.
 *
 * Memory is bounded: a fixed table of buckets, each holding a few keys (stored as a keyed hash,
 * never the key itself); a full bucket evicts its stalest entry. Thread-safe (a lock per
 * bucket). Nothing is persisted: a restart forgets everything, which only helps an attacker
 * by one restart's worth of attempts.
 */
#ifndef OIDC_THROTTLE_H
#define OIDC_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

struct oidc_throttle;

struct oidc_throttle_config {
    unsigned slots;         /* keys remembered at most (rounded up to a bucket); default 16384 */
    unsigned free_failures; /* failures before any delay; default 5 */
    int64_t base_delay_ms;  /* delay after the first counted failure; default 1000 */
    int64_t max_delay_ms;   /* cap of the doubling; default 15 min */
    int64_t forget_ms;      /* a key with no failure for this long starts afresh; default 1 h */
};

/**
 * Creates a throttle with @cfg (NULL or zero fields = the defaults above). Returns 0 and *ret,
 * or -E_NOMEM with @e.
 */
int oidc_throttle_new(const struct oidc_throttle_config *cfg, struct oidc_throttle **ret,
                      struct err *e);

/** Frees @t (NULL allowed). No call may be in flight. */
void oidc_throttle_free(struct oidc_throttle *t);

/**
 * Is an attempt for @key allowed at @now_ms (any clock that only moves forward; see
 * oidc_throttle_now_ms())? When not, returns false and sets *ret_retry_ms (may be NULL) to
 * the time left. Does not count anything. Any thread.
 */
bool oidc_throttle_check(struct oidc_throttle *t, const char *key, int64_t now_ms,
                         int64_t *ret_retry_ms);

/** Counts a failed attempt for @key at @now_ms. Any thread. */
void oidc_throttle_failure(struct oidc_throttle *t, const char *key, int64_t now_ms);

/** Forgets @key's failures (a successful attempt). Any thread. */
void oidc_throttle_success(struct oidc_throttle *t, const char *key);

/** Failures currently counted for @key (tests, metrics). */
unsigned oidc_throttle_failures(struct oidc_throttle *t, const char *key, int64_t now_ms);

/** A monotonic clock in milliseconds, what the server passes as now_ms. */
int64_t oidc_throttle_now_ms(void);

#endif
