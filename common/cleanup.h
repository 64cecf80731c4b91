/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Scope-bound cleanup (systemd's idea): a local declared _cleanup_free_ is freed when it goes
 * out of scope; TAKE_PTR() hands ownership out. Every such local is initialised where declared.
 */
#ifndef COMMON_CLEANUP_H
#define COMMON_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p)
{
    free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}

/** Frees a string holding a secret (a token, a password), zeroing it first. */
static inline void wipe_freep(char **p)
{
    if (*p) {
        explicit_bzero(*p, strlen(*p));
        free(*p);
    }
}

/** Defines `name##p(type **)` calling @func on a non-NULL pointer. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
    static inline void func##p(type *p)                                                            \
    {                                                                                              \
        if (*p)                                                                                    \
            func(*p);                                                                              \
    }

#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) _tp_ = (p);                                                                  \
        (p) = NULL;                                                                                \
        _tp_;                                                                                      \
    })

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
