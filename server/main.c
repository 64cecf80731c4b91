/* SPDX-License-Identifier: Apache-2.0 */
/*
 * koder-id-v2-gateway: the command line. Git-style commands from one table; exit status 0
 * success, 1 failure at run time, 2 usage error; errors are one line on stderr; help goes to
 * stdout.
 */
#include <stdio.h>
#include <string.h>

#include "common/cleanup.h"
#include "server/cli.h"
#include "server/commands.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *usage; /* full help: usage lines, then a description */
};

#define COMMON_OPTS                                                                                \
    "  --config FILE      configuration file (default " CONFIG_DEFAULT_FILE " when it exists)\n"   \
    "  --set KEY=VALUE    override one configuration key (repeatable)\n"

static const struct command commands[] = {
    {"serve", cmd_serve, "run the OpenID Connect provider (foreground)",
     "usage: " CLI_PROG " serve [--config FILE] [--set KEY=VALUE ...]\n"
     "\n"
     "Runs the provider in the foreground: opens the store, creates the master key (when\n"
     "missing and its folder is writable) and the first signing key, and serves HTTP on\n"
     "`listen` until SIGTERM or SIGINT. Logs go to stderr.\n"
     "\n" COMMON_OPTS},
    {"check", cmd_check, "validate the configuration and show what the store holds",
     "usage: " CLI_PROG " check [--config FILE] [--set KEY=VALUE ...]\n"
     "\n"
     "Validates the configuration, opens the store (read-only when it can), checks the\n"
     "master key against the stored signing keys and prints a summary: issuer, store, counts\n"
     "of orgs, projects, clients and users, and the key ids. Exits 1 with one line on any\n"
     "problem.\n"
     "\n" COMMON_OPTS},
    {"user", cmd_user, "add users, set passwords, lock, deactivate or remove users",
     "usage: " CLI_PROG " user add --username NAME --email EMAIL [--given-name G]\n"
     "           [--family-name F] [--org ID] [--email-verified] --password-stdin\n"
     "       " CLI_PROG " user password --user ID|LOGIN_NAME --password-stdin\n"
     "           [--change-required]\n"
     "       " CLI_PROG " user lock|unlock|deactivate|reactivate|remove --user ID|LOGIN_NAME\n"
     "\n"
     "add: adds a human user whose password is read as one line from stdin (the newline is\n"
     "not part of it) and hashed with yescrypt. Prints the new user id (its `sub`). Without\n"
     "--org the default org is used (created on an empty store).\n"
     "password: sets a human user's password the same way (at least 8 characters) and prints\n"
     "the user id; --change-required makes the user choose a new one at the next sign-in\n"
     "(without it, a pending requirement is cleared).\n"
     "lock, unlock, deactivate, reactivate: change a user's state (human or machine) and\n"
     "print its id. A user that is not active cannot sign in, refresh tokens, use\n"
     "client_credentials or a JWT bearer assertion, and its tokens introspect as inactive;\n"
     "it takes effect at once. lock: an active user; unlock: a locked one; deactivate: an\n"
     "active or locked one; reactivate: an inactive one. A user already in that state is a\n"
     "no-op (exit 0, a note on stderr); another state is exit 1.\n"
     "remove: deletes the user, its grants and keys; its login names can be taken again.\n"
     "\n" COMMON_OPTS},
    {"client", cmd_client, "add, list and show OIDC clients",
     "usage: " CLI_PROG " client add --name NAME --type web|spa|native --redirect-uri URI [...]\n"
     "           [--post-logout-uri URI ...] [--origin URL ...] [--auth-method basic|post|none]\n"
     "           [--access-token jwt|opaque] [--project ID] [--client-id ID]\n"
     "           [--response-type code|id_token|'id_token token' ...] [--json]\n"
     "       " CLI_PROG " client list [--json]\n"
     "       " CLI_PROG " client show ID [--json]\n"
     "\n"
     "add: the auth method defaults to basic for web clients and none for spa and native\n"
     "clients (which cannot have a secret). A confidential client's secret (64 characters of\n"
     "[A-Za-z0-9]) is shown once and stored only as a bcrypt hash. --json prints\n"
     "{\"client_id\": ..., \"client_secret\": ...}. --origin adds an origin allowed for CORS\n"
     "besides those of the redirect URIs. --response-type (repeatable) defaults to code\n"
     "(with the refresh_token grant); id_token and 'id_token token' enable the implicit\n"
     "flow for legacy apps.\n"
     "\n" COMMON_OPTS},
    {"machine", cmd_machine, "add machine users, their secrets and keys",
     "usage: " CLI_PROG " machine add --username NAME [--name DISPLAY] [--description TEXT]\n"
     "           [--org ID] [--access-token jwt|opaque] [--secret] [--json]\n"
     "       " CLI_PROG " machine secret --user ID|USERNAME [--json]\n"
     "       " CLI_PROG " machine key add --user ID|USERNAME --public-key-file PEM\n"
     "           [--expires DATE] [--json]\n"
     "       " CLI_PROG " machine key remove --user ID|USERNAME --key-id KID\n"
     "       " CLI_PROG " machine key list --user ID|USERNAME [--json]\n"
     "       " CLI_PROG " machine list [--json]\n"
     "\n"
     "A machine user (v1's service account) gets tokens with client_credentials (client_id =\n"
     "its username, and its secret) or with a JWT bearer assertion (v1's JWT profile: iss and\n"
     "sub = its user id, kid = a registered key id). Its access tokens are opaque (default)\n"
     "or JWTs. add prints the user id; with --secret it generates a secret (64 characters of\n"
     "[A-Za-z0-9]) shown only then and stored as a bcrypt hash. secret makes a new one: the\n"
     "old one stops working at once. key add registers an RS256 (RSA 2048+) or ES256 (P-256)\n"
     "public key and prints its key id; DATE is YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ (UTC) or\n"
     "unix seconds. Without --org the default org is used (created on an empty store).\n"
     "\n" COMMON_OPTS},
    {"api", cmd_api, "add API apps (resource servers that introspect tokens), their keys",
     "usage: " CLI_PROG
     " api add --name NAME [--project ID] [--auth-method basic|private_key_jwt]\n"
     "           [--public-key-file PEM [--expires DATE]] [--client-id ID] [--json]\n"
     "       " CLI_PROG " api key add --client-id ID --public-key-file PEM [--expires DATE]\n"
     "           [--json]\n"
     "       " CLI_PROG " api key remove --client-id ID --key-id KID\n"
     "       " CLI_PROG " api key list --client-id ID [--json]\n"
     "\n"
     "An API app authenticates at /oauth/v2/introspect; it gets no user tokens. basic\n"
     "(default): a secret is generated, shown only now and stored as a bcrypt hash.\n"
     "private_key_jwt: --public-key-file registers an RS256 or ES256 public key; its key id is\n"
     "printed. Without --project the default project is used. 'client list' and 'client show'\n"
     "show API apps too. --json prints {\"client_id\", \"client_secret\" or \"key_id\"}.\n"
     "key add/remove/list manage the keys of a private_key_jwt client (rotation: add the new\n"
     "key, switch the app to it, remove the old one); as for 'machine key'.\n"
     "\n" COMMON_OPTS},
    {"project", cmd_project, "add and list projects",
     "usage: " CLI_PROG " project add --name NAME [--org ID] [--role-assertion] [--role-check]\n"
     "           [--has-project-check] [--json]\n"
     "       " CLI_PROG " project list [--json]\n"
     "\n"
     "add prints the new project id. --role-assertion puts the user's roles into userinfo and\n"
     "tokens even when not requested; --role-check refuses sign-in to the project's clients\n"
     "without a grant on it; --has-project-check refuses users of other orgs (v1's flags).\n"
     "Without --org the default org is used. list shows id, org, flags and name.\n"
     "\n" COMMON_OPTS},
    {"role", cmd_role, "add and list a project's roles",
     "usage: " CLI_PROG " role add --project ID --key KEY [--display-name TEXT] [--group TEXT]\n"
     "       " CLI_PROG " role list --project ID [--json]\n"
     "\n"
     "A role key is what the role claims carry (urn:zitadel:iam:org:project:roles).\n"
     "\n" COMMON_OPTS},
    {"grant", cmd_grant, "give users roles on projects (user grants)",
     "usage: " CLI_PROG " grant add --user ID|LOGIN --project ID --role KEY [--role KEY ...]\n"
     "           [--json]\n"
     "       " CLI_PROG " grant remove --user ID|LOGIN --project ID [--role KEY ...]\n"
     "       " CLI_PROG " grant list --user ID|LOGIN [--project ID] [--json]\n"
     "\n"
     "A user has one grant per project, as in v1: add creates it or adds roles to it and\n"
     "prints its id; the roles must exist on the project. remove takes roles away, or the\n"
     "whole grant without --role.\n"
     "\n" COMMON_OPTS},
    {"keys", cmd_keys, "list or rotate signing keys",
     "usage: " CLI_PROG " keys list [--json]\n"
     "       " CLI_PROG " keys rotate [--now] [--force] [--json]\n"
     "\n"
     "list: the signing keys: id, algorithm, state (pending, signing, retired, imported,\n"
     "expired), whether v2's own or an imported v1 key, and its windows.\n"
     "rotate: a new key, in the JWKS at once, signing from now + keys.publish_ahead; the key\n"
     "signing now stops then and stays published for the longest token lifetime +\n"
     "keys.retire_margin. Refused while a rotation is pending (--force rotates again).\n"
     "--now (a compromised key): the new key signs at once and the old one stops at once.\n"
     "A running serve picks the change up within keys.reload_interval.\n"
     "\n" COMMON_OPTS},
    {"import-zitadel", cmd_import_zitadel, "import v1's (Zitadel's) PostgreSQL database",
     "usage: " CLI_PROG " import-zitadel --dsn DSN [--instance ID] [--dry-run] [--report FILE]\n"
     "           [--config FILE] [--set KEY=VALUE ...]\n"
     "\n"
     "Reads v1's PostgreSQL database (one read-only snapshot; v1 is never written) and writes\n"
     "its orgs, projects, roles, grants, apps, users, public keys and token lifetimes into the\n"
     "store. DSN is a libpq connection string or URI; PG* variables and ~/.pgpass apply, so\n"
     "the password need not be on the command line. Re-running is safe: only what changed in\n"
     "v1 is written, and records created in v2 are never touched.\n"
     "\n"
     "  --dsn DSN          v1's database (libpq connection string or URI)\n"
     "  --instance ID      the v1 instance, when the database holds several\n"
     "  --dry-run          print the plan (create / update / unchanged / delete); write nothing\n"
     "  --report FILE      also write the report as JSON (shape: README, "
     "import-zitadel)\n" COMMON_OPTS "\n"
     "Exit status 0 when every org, project, app and user was imported, 1 when some were not\n"
     "(listed as skipped) or on a failure, 2 for a usage error.\n"},
    {"export", cmd_export, "dump the whole store",
     "usage: " CLI_PROG " export [--config FILE] [--set KEY=VALUE ...] FILE\n"
     "\n"
     "Writes a consistent dump of the store (the configured tenant) to FILE, or to stdout\n"
     "for -. FILE is created 0600 and never overwritten; it gets its name only once it is\n"
     "complete and synced. On lmdb the dump is one read transaction, taken while serve keeps\n"
     "running. It holds password hashes and encrypted keys: keep it like the data dir.\n"
     "\n" COMMON_OPTS},
    {"import-backup", cmd_import_backup, "restore a dump made by export",
     "usage: " CLI_PROG " import-backup [--replace | --merge] [--config FILE]\n"
     "           [--set KEY=VALUE ...] FILE\n"
     "\n"
     "Restores a dump made by export (from stdin for -). The whole file is verified first\n"
     "(structure, checksum): a damaged or truncated file is refused before anything is\n"
     "written. A store that already holds data is refused unless --replace (the store is\n"
     "emptied, then becomes the dump) or --merge (the keys in the dump are written over it,\n"
     "the others stay). Entries keep their expiry times (and, on lmdb without --merge, their\n"
     "versions); those that expired since the export are skipped. Stop serve first.\n"
     "\n"
     "  --replace          empty the store first: what a disaster restore wants\n"
     "  --merge            write over a store that holds data, keeping its other "
     "keys\n" COMMON_OPTS},
};

/* Placeholders for commands other files provide; the real definitions win at link time. */
#define WEAK_PLACEHOLDER(fn, name)                                                                 \
    __attribute__((weak)) int fn(int argc, char **argv)                                            \
    {                                                                                              \
        (void)argc;                                                                                \
        (void)argv;                                                                                \
        return cli_fail("%s is not built into this binary yet", name);                             \
    }
WEAK_PLACEHOLDER(cmd_import_zitadel, "import-zitadel")
WEAK_PLACEHOLDER(cmd_export, "export")
WEAK_PLACEHOLDER(cmd_import_backup, "import-backup")

static const struct command *find(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int cli_print_help(const char *name, FILE *f)
{
    const struct command *c = find(name);
    if (!c)
        return -1;
    fputs(c->usage, f);
    return 0;
}

static void usage(FILE *f)
{
    fputs("usage: " CLI_PROG " [--version] [--help] COMMAND [ARGS]\n"
          "\n"
          "An OpenID Connect provider, drop-in for Koder's v1 identity server.\n"
          "\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        fprintf(f, "  %-15s %s\n", commands[i].name, commands[i].summary);
    fputs("\n'" CLI_PROG " help COMMAND' shows a command's options.\n", f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        /* An error is one line on stderr; the command list is what --help is for. */
        fprintf(stderr, "%s: missing command (see '%s --help')\n", CLI_PROG, CLI_PROG);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("%s %s\n", CLI_PROG, KODER_ID_VERSION);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "help") == 0) {
        if (argc == 2) {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        if (cli_print_help(argv[2], stdout) < 0) {
            fprintf(stderr, "%s: unknown command '%.60s' (see --help)\n", CLI_PROG, argv[2]);
            return CLI_EXIT_USAGE;
        }
        return CLI_EXIT_OK;
    }
    const struct command *c = find(argv[1]);
    if (!c) {
        fprintf(stderr, "%s: unknown command '%.60s' (see --help)\n", CLI_PROG, argv[1]);
        return CLI_EXIT_USAGE;
    }
    /* "COMMAND --help" anywhere among its options (before "--") shows its help. */
    for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(c->usage, stdout);
            return CLI_EXIT_OK;
        }
    return c->run(argc - 1, argv + 1);
}
