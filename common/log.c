/* SPDX-License-Identifier: Apache-2.0 */
/* stderr logging with syslog priority prefixes; one write(2) per line so lines never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int current = LOG_LVL_INFO;

void log_set_level(enum log_level lvl)
{
    __atomic_store_n(&current, (int)lvl, __ATOMIC_RELAXED);
}

int log_level_parse(const char *s, enum log_level *ret_lvl)
{
    static const struct {
        const char *name;
        enum log_level lvl;
    } names[] = {{"error", LOG_LVL_ERROR},
                 {"warn", LOG_LVL_WARN},
                 {"info", LOG_LVL_INFO},
                 {"debug", LOG_LVL_DEBUG}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) {
            *ret_lvl = names[i].lvl;
            return 0;
        }
    return -1;
}

int log_enabled(enum log_level lvl)
{
    return (int)lvl <= __atomic_load_n(&current, __ATOMIC_RELAXED);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    char line[2048];
    int n;
    va_list ap;

    if (!log_enabled(lvl))
        return;
    n = snprintf(line, sizeof line, "<%d>", (int)lvl);
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    /* Control characters from user values would forge log lines. */
    for (int i = 3; i < n; i++)
        if ((unsigned char)line[i] < 0x20)
            line[i] = '?';
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, line, (size_t)n);
}
