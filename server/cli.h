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

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/err.h"
#include "server/config.h"
#include "storage/store.h"

#define CLI_PROG "koder-id-v2-gateway"
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2
#define CLI_SETS_MAX 32

struct oidc_ctx;

/** The shared flags a command was given. */
struct cli_opts {
    const char *config;            /* --config FILE, or NULL */
    char *sets[CLI_SETS_MAX];      /* --set KEY=VALUE (borrowed from argv) */
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
 * default (an imported store: give --org / --project). Returns new strings (caller frees).
 */
int cli_default_org_project(struct store *s, const char *issuer, char **ret_org,
                            char **ret_project, struct err *e);

/** Counts the live records under @prefix (scans page by page). */
int cli_count_prefix(struct store *s, const char *prefix, size_t *ret_n, struct err *e);

#endif
