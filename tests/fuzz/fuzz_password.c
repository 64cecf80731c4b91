/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the crypt(3) hash handling of oidc/password.c with hostile hashes (v1's imported
 * hashes are input from outside): the format allow-list, the cost parsing behind
 * oidc_password_expensive() and oidc_password_needs_upgrade(), and verification. Input: one
 * byte of yescrypt cost, then "<hash>\n<password>".
 *
 * What a hash that oidc_password_expensive() calls cheap costs is checked too: it runs on a
 * worker thread instead of the bounded hash queue, so one that takes long would let a flood
 * of logins hold every worker. Such hashes fail here (over 250 ms of CPU), and libFuzzer's -timeout
 * catches the rest. Expensive hashes are never run (a bcrypt cost of 31 takes days).
 */
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "fuzz.h"
#include "oidc/password.h"

/* CPU time of this thread: wall time on a loaded machine would blame the hash for the load. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 2048)
        return 0;
    int cost = 1 + data[0] % 11;
    char *buf = malloc(size);
    FUZZ_CHECK(buf);
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    char *hash = buf, *password = "";
    char *nl = strchr(buf, '\n');
    if (nl) {
        *nl = '\0';
        password = nl + 1;
    }

    bool expensive = oidc_password_expensive(hash);
    bool upgrade = oidc_password_needs_upgrade(hash, cost);
    /* Only the allow-listed formats are ever verified, so only they are ever upgraded. */
    bool allowed = strncmp(hash, "$2a$", 4) == 0 || strncmp(hash, "$2b$", 4) == 0 ||
                   strncmp(hash, "$2y$", 4) == 0 || strncmp(hash, "$y$", 3) == 0 ||
                   strncmp(hash, "$5$", 3) == 0 || strncmp(hash, "$6$", 3) == 0 ||
                   strncmp(hash, "$1$", 3) == 0;
    if (!allowed)
        FUZZ_CHECK(!expensive && !upgrade);

    if (!expensive) {
        struct err e = {0};
        bool match = true;
        double t0 = now_s();
        int r = oidc_password_verify(hash, password, &match, &e);
        double dt = now_s() - t0;
        FUZZ_CHECK(r == 0);
        if (dt > 0.25) {
            fprintf(stderr, "hash called cheap took %.3f s of CPU\n", dt);
            FUZZ_CHECK(dt <= 0.25);
        }
        if (!allowed)
            FUZZ_CHECK(!match);
        /* A hash never matches by being a failure token or a prefix of the computed one. */
        if (match)
            FUZZ_CHECK(hash[0] == '$' && strlen(hash) > 3);
    }
    OPENSSL_cleanse(buf, size);
    free(buf);
    return 0;
}
