/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every command shares: exit codes, one-line errors, the common flags (--config FILE,
 * --set KEY=VALUE), and "load the config, open the store, make the protocol context".
 *
 * Adding a command: write server/cmd_NAME.c with `int cmd_NAME(int argc, char **argv)`
 * (argv[0] is the command's name, options follow), declare it in server/commands.h, add a
 * row (name, function, one-line summary, usage text) to the table in server/main.c and the
 * file to server_sources in server/meson.build. A command parses its own options after
 * cli_common_args() took the shared ones, prints errors with cli_fail()/cli_usage(), and
 * returns CLI_EXIT_*.
 */
#ifndef SERVER_CLI_H
#define SERVER_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "server/config.h"
#include "storage/store.h"

#define CLI_PROG "koder-id-v2-gateway"
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2
#define CLI_SETS_MAX 32
#define CLI_SECRET_LEN 64 /* generated client secrets: [A-Za-z0-9], like v1's */
#define CLI_SECRET_BCRYPT_COST 10
#define CLI_NAME_MAX 200

struct oidc_ctx;

/** The shared flags a command was given. */
struct cli_opts {
    const char *config;       /* --config FILE, or NULL */
    char *sets[CLI_SETS_MAX]; /* --set KEY=VALUE (borrowed from argv) */
    size_t nsets;
};

enum cli_open_flags {
    CLI_STORE = 1 << 0,         /* open the store */
    CLI_READ_ONLY = 1 << 1,     /* ... read-only */
    CLI_OIDC = 1 << 2,          /* create the protocol context (opens the signing keys) */
    CLI_CREATE_MASTER = 1 << 3, /* create the master key file when missing (serve) */
};

/** An opened environment for a command. */
struct cli {
    struct config cfg;
    struct store *store;   /* when CLI_STORE */
    struct oidc_ctx *oidc; /* when CLI_OIDC */
};

/**
 * Takes --config FILE / --config=FILE and --set KEY=VALUE / --set=KEY=VALUE out of @argv
 * (compacting it and updating *@argc) into @o. On a malformed flag prints one line and
 * returns CLI_EXIT_USAGE; otherwise 0.
 */
int cli_common_args(const char *cmd, int *argc, char **argv, struct cli_opts *o);

/**
 * Loads the configuration (defaults < file < environment < --set flags), sets the log
 * level, then opens what @flags ask for. On failure prints one line on stderr and returns
 * CLI_EXIT_FAIL (everything opened so far is closed); 0 on success.
 */
int cli_open(struct cli *c, const struct cli_opts *o, unsigned flags);

/** Closes what cli_open() opened (safe on a zeroed struct). */
void cli_close(struct cli *c);

/** Prints "koder-id-v2-gateway: MESSAGE" on stderr and returns CLI_EXIT_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * Prints "koder-id-v2-gateway CMD: MESSAGE (see 'koder-id-v2-gateway help CMD')" on stderr and
 * returns CLI_EXIT_USAGE.
 */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Prints the usage text of @name (a command, or "user add" style) on @f; -1 if unknown. */
int cli_print_help(const char *name, FILE *f);

/**
 * The default org and project of an install that does not come from v1: read from
 * meta/default_org and meta/default_project; created (org domain = the issuer's host) when the
 * store holds no org at all. -E_NOTFOUND with a message when the store has orgs but no
 * default (an imported store): its message tells to give @flag ("--org ID", "--project ID").
 * Returns new strings (caller frees).
 */
int cli_default_org_project(struct store *s, const char *issuer, const char *flag, char **ret_org,
                            char **ret_project, struct err *e);

/** Counts the live records under @prefix (scans page by page). */
int cli_count_prefix(struct store *s, const char *prefix, size_t *ret_n, struct err *e);

/**
 * Calls @fn for every live entry under @prefix, in key order, page by page. A non-zero return
 * of @fn stops the scan and is returned (a negative one should have set @e).
 */
int cli_scan(struct store *s, const char *prefix,
             int (*fn)(const struct store_entry *it, void *arg, struct err *e), void *arg,
             struct err *e);

/**
 * Refuses what getopt_long() would otherwise accept: an abbreviated long option ("--user" for
 * "--username"), a short option, or "--flag=value" for a flag. Walks @argv[1..] up to "--"
 * with @opts' names (exact matches only, values skipped as getopt_long takes them). Call it
 * before the getopt_long() loop; on a bad option prints one usage line and returns
 * CLI_EXIT_USAGE, otherwise 0 with getopt reset for a fresh scan (optind 1, opterr 0).
 */
int cli_check_options(const char *cmd, int argc, char **argv, const struct option *opts);

/**
 * A new client secret (CLI_SECRET_LEN characters of [A-Za-z0-9]) into @out and its bcrypt
 * hash at cost CLI_SECRET_BCRYPT_COST into *@ret_hash (caller wipes and frees). -1 when the
 * random source or crypt fails.
 */
int cli_secret_new(char out[CLI_SECRET_LEN + 1], char **ret_hash);

/** A name or identifier: 1 to CLI_NAME_MAX bytes, no spaces or control characters. */
bool cli_valid_name(const char *s);

/** Free text: at most CLI_NAME_MAX bytes, no control characters (may be empty). */
bool cli_valid_text(const char *s);

/**
 * Parses a date for an option: YYYY-MM-DD (midnight UTC), YYYY-MM-DDTHH:MM:SSZ, or unix
 * seconds. -1 when it is none of those.
 */
int cli_parse_time(const char *s, int64_t *ret);

/** Prints @j compactly on stdout with a newline (wiping the text: it may hold a secret). */
void cli_print_json(const json_t *j);

/**
 * Prints what an add command made: @n name/value pairs (a NULL or empty value is left out) as
 * one JSON object (@json) or as "name: value" lines, where a client_secret line is followed by
 * the note that it is shown only now. Flushes stdout.
 */
void cli_print_fields(bool json, const char *const (*fields)[2], size_t n);

#endif
