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
#include "storage/records.pb-c.h"

struct oidc_hashq;
struct store;

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
 * Checks a password a user or an operator sets against @policy (NULL = the built-in default:
 * at least OIDC_PASSWORD_MIN_CHARS characters and no class required). Always: at most
 * OIDC_PASSWORD_MAX bytes, no control characters, not all spaces. Then, as v1 does: at least
 * policy->min_length characters (UTF-8 code points; 0 counts as 1), and when required one
 * ASCII lower-case letter, one upper-case letter, one digit, one symbol (any character other
 * than an ASCII letter or digit). Returns 0, or -E_INVALID with a sentence naming the rule,
 * fit to show the user, in e->msg. Any thread.
 */
int oidc_password_policy_check(const char *password, const Koderid__V2__PasswordPolicy *policy,
                               struct err *e);

/**
 * The password policy that applies to a user of @org_id ("" or NULL: none): the org's own
 * (pwpolicy/org/<org_id>), else the instance default (pwpolicy/default). *ret is NULL when
 * neither exists (the built-in default applies), else the caller's to free with
 * koderid__v2__password_policy__free_unpacked(). Store errors are returned as they are.
 */
int oidc_password_policy_load(struct store *s, const char *org_id,
                              Koderid__V2__PasswordPolicy **ret, struct err *e);

#endif
