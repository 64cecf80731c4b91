/* SPDX-License-Identifier: Apache-2.0 */
/* Cryptographic randomness, hashing helpers and v1-shaped id generation. */
#ifndef COMMON_RAND_H
#define COMMON_RAND_H

#include <stddef.h>
#include <stdint.h>

/** Fills @buf with @len bytes from OpenSSL's CSPRNG. Returns 0, or -E_INTERNAL. */
int rand_bytes(void *buf, size_t len);

/**
 * Writes @len random characters of [A-Za-z0-9] (v1's client-secret alphabet) and a NUL into
 * @out (room for len+1), without modulo bias. Returns 0 or -E_INTERNAL.
 */
int rand_alnum(char *out, size_t len);

/** A new random token: 32 bytes as unpadded base64url (43 chars + NUL) in @out. */
int rand_token(char out[44]);

/** SHA-256 of @len bytes as 64 lower-case hex chars + NUL in @out. */
void sha256_hex(const void *data, size_t len, char out[65]);

/** SHA-256 of @len bytes into @out. */
void sha256_raw(const void *data, size_t len, unsigned char out[32]);

/**
 * A new id shaped like v1's (a decimal string of 18 digits, time-ordered: milliseconds since
 * 2019-04-29 in the high bits, a per-process sequence and random machine bits below).
 * Thread-safe. Writes into @out (room for 21 bytes).
 */
void id_new(char out[21]);

#endif
