/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the configuration parser (server/config.c): the input is a config file, loaded with
 * config_load_file() (through a memfd, so no disk I/O) and checked with config_finish(); its
 * lines are also tried as environment variables, as trusted-proxy CIDRs and as issuers.
 *
 * Properties: a file holding a NUL byte is refused (it would hide the rest of its line); a
 * CIDR that parses has the prefix its text says, within its family's width; and what
 * config_dump() prints of a loaded configuration (its keys that differ from the defaults)
 * loads again to the same dump.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "server/config.h"

static char *dump(const struct config *c)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    FUZZ_CHECK(f);
    config_dump(c, f);
    FUZZ_CHECK(fclose(f) == 0);
    return s;
}

/*
 * Keeps only the lines of dump @d that differ from the defaults' dump @def (in place; returns
 * the new length): a default may be a sentinel no file can spell (an unset string, tenant 0).
 */
static size_t without_defaults(char *d, const char *def)
{
    char *out = d;
    for (char *line = d; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
        bool dflt = false;
        for (const char *q = def; *q && !dflt;) {
            const char *qn = strchr(q, '\n');
            size_t qlen = qn ? (size_t)(qn - q) + 1 : strlen(q);
            dflt = qlen == len && memcmp(q, line, len) == 0;
            q += qlen;
        }
        if (!dflt) {
            memmove(out, line, len);
            out += len;
        }
        line += len;
    }
    *out = '\0';
    return (size_t)(out - d);
}

/* Loads @len bytes of @text as a config file into @c. */
static int load(struct config *c, const void *text, size_t len, struct err *e)
{
    int fd = memfd_create("fuzz-config", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(write(fd, text, len) == (ssize_t)len);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int r = config_load_file(c, path, e);
    close(fd);
    return r;
}

static void check_cidr(const char *s)
{
    struct config_cidr net;
    if (config_parse_cidr(s, &net) < 0)
        return;
    FUZZ_CHECK(net.family == AF_INET || net.family == AF_INET6);
    int width = net.family == AF_INET ? 32 : 128;
    FUZZ_CHECK(net.prefix >= 0 && net.prefix <= width);
    const char *slash = strchr(s, '/');
    if (slash) {
        /* The prefix is the number written, not that number wrapped into an int. */
        FUZZ_CHECK(strlen(slash + 1) > 0);
        char *end = NULL;
        unsigned long long v = strtoull(slash + 1, &end, 10);
        FUZZ_CHECK(*end == '\0' && v == (unsigned long long)net.prefix);
    } else {
        FUZZ_CHECK(net.prefix == width);
    }
    config_cidr_match_text(&net, "192.0.2.1");
    config_cidr_match_text(&net, "::ffff:192.0.2.1");
    config_cidr_match_text(&net, "2001:db8::1");
}

static void check_lines(const char *text, size_t len)
{
    char *buf = strndup(text, len);
    FUZZ_CHECK(buf);
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        check_cidr(line);
        char host[256];
        if (config_issuer_host(line, host, sizeof host) == 0)
            FUZZ_CHECK(host[0] != '\0' && strlen(host) < sizeof host && strstr(line, host));

        /* As an environment variable (KODER_ID_V2_<line>). */
        char env[300];
        snprintf(env, sizeof env, "%s%s", CONFIG_ENV_PREFIX, line);
        char *envp[] = {env, NULL};
        struct config c;
        struct err e = {0};
        config_init(&c);
        if (config_load_env(&c, envp, &e) < 0)
            FUZZ_CHECK(e.code < 0 && e.msg[0] != '\0');
        config_release(&c);
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    struct config c;
    struct err e = {0};
    config_init(&c);
    int r = load(&c, data, size, &e);
    if (r == 0)
        r = config_finish(&c, &e);
    if (r < 0) {
        FUZZ_CHECK(e.code == r && e.msg[0] != '\0');
    } else {
        FUZZ_CHECK(memchr(data, '\0', size) == NULL);
        /* What `check` prints loads again, to the same thing. */
        char *d1 = dump(&c);
        struct config c0;
        config_init(&c0);
        char *d0 = dump(&c0);
        config_release(&c0);
        char *changed = strdup(d1);
        FUZZ_CHECK(changed);
        size_t clen = without_defaults(changed, d0);
        struct config c2;
        struct err e2 = {0};
        config_init(&c2);
        int r2 = load(&c2, changed, clen, &e2);
        if (r2 == 0)
            r2 = config_finish(&c2, &e2);
        if (r2 < 0)
            fprintf(stderr, "the dump does not load again: %s\n", e2.msg);
        FUZZ_CHECK(r2 == 0);
        char *d2 = dump(&c2);
        FUZZ_CHECK(strcmp(d1, d2) == 0);
        free(d2);
        free(changed);
        free(d0);
        free(d1);
        config_release(&c2);
    }
    config_release(&c);
    check_lines((const char *)data, size);
    return 0;
}
