/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Password (and secret) hashes in crypt(3) format through libxcrypt: verification of v1's
 * bcrypt ($2a$/$2b$/$2y$), yescrypt ($y$) and the SHA-crypt/MD5-crypt formats ($5$/$6$/$1$),
 * new yescrypt hashes, and the decision whether an old hash should be upgraded.
 */
#ifndef OIDC_PASSWORD_H
#define OIDC_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

struct oidc_hashq;

#define OIDC_PASSWORD_MAX 1024    /* bytes; longer input never reaches a hash function */
#define OIDC_PASSWORD_MIN_CHARS 8 /* v1's default complexity policy's min_length */

/**
 * Checks @password against @hash. Returns 0 and *ret_match (true only on an exact match,
 * compared in constant time). A hash of an unknown or refused format (DES, empty, "*", "!")
 * gives 0 and false, as does a password over OIDC_PASSWORD_MAX. Runs the hash on the calling
 * thread: see oidc_password_verify_queued(). Any thread.
 */
int oidc_password_verify(const char *hash, const char *password, bool *ret_match, struct err *e);

/**
 * Like oidc_password_verify(), but an expensive hash (oidc_password_expensive()) runs on @q
 * (NULL = inline). -E_UNAVAILABLE when the queue is full or the wait exceeded @timeout_ms.
 */
int oidc_password_verify_queued(struct oidc_hashq *q, const char *hash, const char *password,
                                int timeout_ms, bool *ret_match, struct err *e);

/** Whether checking @hash costs more than a few milliseconds (bcrypt cost >= 8, yescrypt...). */
bool oidc_password_expensive(const char *hash);

/**
 * Whether a hash that just verified should be replaced by a yescrypt hash at @yescrypt_cost:
 * true for every other format and for yescrypt with a lower cost.
 */
bool oidc_password_needs_upgrade(const char *hash, int yescrypt_cost);

/**
 * Hashes @password with yescrypt at @yescrypt_cost (1..11; libxcrypt's default is 5) into a
 * new string (caller frees). -E_INVALID for a bad cost or an over-long password.
 */
int oidc_password_hash(const char *password, int yescrypt_cost, char **ret, struct err *e);

/**
 * The policy for a password a user or an operator sets: at least OIDC_PASSWORD_MIN_CHARS
 * characters (UTF-8 code points, not all spaces), at most OIDC_PASSWORD_MAX bytes, no control
 * characters. v1's complexity policy (character classes) is not imported. Returns 0, or
 * -E_INVALID with a sentence fit to show the user in e->msg. Any thread.
 */
int oidc_password_policy_check(const char *password, struct err *e);

#endif
