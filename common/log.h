/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging to stderr with syslog priority prefixes ("<3>"), which journald understands.
 * Never pass a secret, code, token, cookie or password to these functions.
 */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

enum log_level { LOG_LVL_ERROR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/** Sets the most verbose level printed. Thread-safe (a relaxed atomic store). */
void log_set_level(enum log_level lvl);

/** Parses "error|warn|info|debug"; returns 0 and sets *ret_lvl, or -1. */
int log_level_parse(const char *s, enum log_level *ret_lvl);

/** True when @lvl would be printed. */
int log_enabled(enum log_level lvl);

/** Prints one line (a trailing newline is added); any thread. */
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_LVL_DEBUG))                                                            \
            log_msg(LOG_LVL_DEBUG, __VA_ARGS__);                                                   \
    } while (0)

#endif
