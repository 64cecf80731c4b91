/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Temporary folders for unit tests: one base folder per test program (on /dev/shm when it is
 * writable, so store tests do not wait on a disk), removed with everything in it at the end.
 * Header-only so each test stays one executable.
 */
#ifndef TESTS_FIXTURE_TMP_H
#define TESTS_FIXTURE_TMP_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int fx_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes @dir and everything below it (no symlink is followed). */
static inline void fx_rm_rf(const char *dir)
{
    nftw(dir, fx_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* The test program's base folder, made by fx_tmp_setup(). */
static char fx_tmpbase[256];

/* Makes a fresh base folder named after @name; 0 or -1 (cmocka group setup). */
static inline int fx_tmp_setup(const char *name)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fx_tmpbase, sizeof fx_tmpbase, "%s/koder-%s-XXXXXX", base, name);
    return mkdtemp(fx_tmpbase) ? 0 : -1;
}

/* cmocka group teardown: removes the base folder. */
static inline int fx_tmp_teardown(void **state)
{
    (void)state;
    fx_rm_rf(fx_tmpbase);
    return 0;
}

#endif
