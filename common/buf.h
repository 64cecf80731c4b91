/* SPDX-License-Identifier: Apache-2.0 */
/* A growable byte buffer that stays NUL-terminated (git's strbuf idea). */
#ifndef COMMON_BUF_H
#define COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data; /* NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
};

#define BUF_INIT {NULL, 0, 0}

/** Appends @len bytes. Returns 0 or -E_NOMEM. */
int buf_add(struct buf *b, const void *data, size_t len);
/** Appends a C string. */
int buf_adds(struct buf *b, const char *s);
/** Appends formatted text. */
int buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Appends @s with HTML special characters escaped (&<>"'). */
int buf_add_html(struct buf *b, const char *s);
/** Appends @s percent-encoded for a URL query component (RFC 3986 unreserved kept). */
int buf_add_urlenc(struct buf *b, const char *s);
/** Hands the data out (caller frees; never NULL on success, "" for empty) and resets @b. */
char *buf_detach(struct buf *b, size_t *ret_len);
/** Frees the data (wiping it first) and resets @b. */
void buf_release(struct buf *b);

#endif
