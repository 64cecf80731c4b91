/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the operator commands for machine users, API apps, projects, roles and grants share
 * (server/cmd_machine.c, cmd_api.c, cmd_project.c): finding a user by id or login name, the
 * org or project an option names (or the install's default), and public keys registered for
 * the JWT bearer grant and private_key_jwt (AuthnKey records).
 */
#ifndef SERVER_ADMIN_H
#define SERVER_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "server/cli.h"
#include "storage/repo.h"

#define ADMIN_PEM_MAX 16384

/** A public key read from a file, checked and re-encoded (SubjectPublicKeyInfo PEM). */
struct admin_pubkey {
    char *pem; /* NUL-terminated */
    size_t len;
    const char *alg; /* "RS256" or "ES256": what assertions signed by it must use */
};

/**
 * Reads @path (at most ADMIN_PEM_MAX bytes) as a PEM public key: RSA of 2048 to 8192 bits
 * (RS256) or EC P-256 (ES256), the algorithms oidc/jwt.c pins to a key. A private key is
 * refused with a hint rather than stored. Call it before cli_open() (which may drop root).
 * Release with admin_pubkey_release(). -E_INVALID or -E_IO with a message.
 */
int admin_pubkey_read(const char *path, struct admin_pubkey *ret, struct err *e);

void admin_pubkey_release(struct admin_pubkey *k);

/**
 * Stores @k as AuthnKey authnkey/@owner/<new kid> (@object_type 0 client, 1 machine user),
 * enabled, expiring at @expires_at (0 = never). Writes the new key id into @ret_kid.
 */
int admin_pubkey_store(struct store *s, const char *owner, int object_type,
                       const struct admin_pubkey *k, int64_t expires_at, char ret_kid[21],
                       struct err *e);

/**
 * The user @id_or_login names: by id first, then by login name (case-insensitive). With
 * @want_type (1 human, 2 machine; 0 any) another type is -E_NOTFOUND too. *@ret_version
 * (may be NULL) is the record's version for a compare-and-swap. Caller frees *@ret.
 */
int admin_user_find(struct store *s, const char *id_or_login, int want_type,
                    Koderid__V2__User **ret, uint64_t *ret_version, struct err *e);

/**
 * The org and project for a new record: @project (checked to exist; its org is returned),
 * else @org (checked to exist; *@ret_project is then the default project or NULL), else the
 * install's default ones (cli_default_org_project(), whose hint names @flag). Caller frees.
 */
int admin_owner(struct store *s, const char *issuer, const char *org, const char *project,
                const char *flag, char **ret_org, char **ret_project, struct err *e);

/**
 * The owner and client id of a new app (client add, api add): admin_owner() for @project,
 * then @want_id or a new id written into @new_id, refused (-E_CONFLICT, naming it) when a
 * client already has it. *ret_client_id points at @want_id or @new_id.
 */
int admin_new_client(struct store *s, const char *issuer, const char *project, const char *want_id,
                     char new_id[21], const char **ret_client_id, char **ret_org,
                     char **ret_project, struct err *e);

/**
 * Fills @c as a new active v2 app of @kind: a fresh app id written into @app_id, the ids and
 * name given, @hash as its secret hash (NULL: none), @auth_method, created and changed now.
 * The strings are borrowed: they must outlive @c.
 */
void admin_client_init(Koderid__V2__Client *c, Koderid__V2__ClientKind kind, char app_id[21],
                       const char *client_id, const char *project_id, const char *org_id,
                       const char *name, char *hash, int auth_method);

/** Where admin_parse() puts what it parsed. */
struct admin_args {
    struct cli_opts co;      /* --config, --set */
    const char **vals;       /* per option (index = its `val`): the value, "" for a flag */
    size_t nvals;            /* room in vals: every `val` is below it (and below '?') */
    int multi;               /* the index of the one repeatable option, or -1 */
    const char **multi_vals; /* its values */
    size_t nmulti, multi_max;
};

/**
 * Parses a subcommand's argv: the common flags (taken out: *@argc shrinks), then @opts
 * (exact names; each option's `val` is its index in a->vals). An option given
 * twice is a usage error unless it is a->multi; so is an operand (no admin command takes
 * one). On a usage error prints one line and returns
 * CLI_EXIT_USAGE; otherwise 0.
 */
int admin_parse(const char *cmd, int *argc, char **argv, const struct option *opts,
                struct admin_args *a);

/** What admin_list() hands its callback for each entry. */
struct admin_list {
    struct store *s;
    json_t *arr;        /* with --json: append one object per entry */
    bool json;          /* otherwise: print one line per entry */
    const char *filter; /* the command's filter (a project id), or NULL */
};

/** An admin_list() callback: @arg is the struct admin_list. */
typedef int (*admin_list_cb)(const struct store_entry *it, void *arg, struct err *e);

/**
 * Lists the entries under @prefix through @cb, which prints a line each or (@json) appends
 * an object to the array printed at the end. Returns an exit status (a store error is one
 * line on stderr).
 */
int admin_list(struct store *s, const char *prefix, admin_list_cb cb, bool json,
               const char *filter);

/**
 * Parses --expires (cli_parse_time()) into *@ret; a past time or another form is a usage error
 * (one line printed, CLI_EXIT_USAGE returned). 0 on success.
 */
int admin_parse_expires(const char *cmd, const char *s, int64_t *ret);

/** The registered keys of @owner as a JSON array (new reference), or NULL with @e set. */
json_t *admin_keys_of(struct store *s, const char *owner, struct err *e);

/** Whose keys `CMD key add|remove|list` manages, and how the owner option is resolved. */
struct admin_key_owner {
    const char *cmd;       /* "machine", "api" */
    const char *opt;       /* the option naming the owner: "user", "client-id" */
    const char *opt_usage; /* "--user ID|USERNAME" */
    const char *id_field;  /* the owner's field in `key add --json`: "user_id", "client_id" */
    int object_type;       /* AuthnKey.object_type: 0 client, 1 machine user */
    /* The AuthnKey object_id the option's value names (new string), or an error with a
     * message; @for_add: a key is about to be registered. */
    int (*find)(struct store *s, const char *name, bool for_add, char **ret_id, struct err *e);
};

/**
 * `CMD key add|remove|list`: @argv[0] is "key". add reads --public-key-file
 * (admin_pubkey_read()) and prints the new key id (--json: key_id, the owner's id, alg,
 * expires_at); remove deletes --key-id at once; list prints key id and expiry per line. Returns
 * an exit status.
 */
int admin_key_cmd(const struct admin_key_owner *o, int argc, char **argv);

#endif
