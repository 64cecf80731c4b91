/* SPDX-License-Identifier: Apache-2.0 */
/* base64 and base64url (unpadded) codecs, and hex. */
#ifndef COMMON_B64_H
#define COMMON_B64_H

#include <stdbool.h>
#include <stddef.h>

/** Length of the unpadded base64url text for @len bytes (without the NUL). */
size_t b64url_encoded_len(size_t len);

/** Encodes @len bytes into @out (room for b64url_encoded_len()+1); NUL-terminates. Returns length. */
size_t b64url_encode(const void *data, size_t len, char *out);

/** Encodes into a new string; caller frees. NULL on allocation failure. */
char *b64url_encode_alloc(const void *data, size_t len);

/**
 * Decodes unpadded base64url (padding '=' tolerated at the end only when @allow_pad). Returns
 * a new buffer (caller frees, NUL-terminated for convenience) and its length in *ret_len, or
 * NULL on any invalid character or length.
 */
unsigned char *b64url_decode_alloc(const char *s, size_t slen, bool allow_pad, size_t *ret_len);

/** Standard base64 (with padding) decode; NULL on invalid input. Caller frees. */
unsigned char *b64_decode_alloc(const char *s, size_t slen, size_t *ret_len);

/** Standard base64 (with padding) encode; caller frees. */
char *b64_encode_alloc(const void *data, size_t len);

/** Lower-case hex of @len bytes into @out (room for 2*len+1). */
void hex_encode(const void *data, size_t len, char *out);

/** The value of hex digit @c (either case), or -1. */
int hex_digit(char c);

#endif
