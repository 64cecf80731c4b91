/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `user add`: a human user for installs that do not come from v1; `user password`: a new
 * password for a human user (imported or not), optionally to be changed at the next sign-in.
 * The password comes from stdin (never from argv, which other users of the machine can read)
 * and is stored only as a yescrypt hash.
 */
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/rand.h"
#include "oidc/password.h"
#include "server/cli.h"
#include "server/commands.h"
#include "storage/repo.h"

#define PASSWORD_MAX 1024

/* Reads one line from stdin without echoing it anywhere; strips "\n" or "\r\n". */
static int read_line(char *out, size_t n)
{
    if (!fgets(out, (int)n, stdin))
        return -1;
    size_t len = strlen(out);
    if (len == n - 1 && out[len - 1] != '\n')
        return -2; /* longer than the cap */
    if (len && out[len - 1] == '\n')
        out[--len] = '\0';
    if (len && out[len - 1] == '\r')
        out[--len] = '\0';
    return len ? 0 : -1;
}

/* The password line from stdin into @out (PASSWORD_MAX + 2 bytes). Returns 0, or prints one
 * line, wipes @out and returns CLI_EXIT_FAIL. */
static int read_password(char *out, size_t n)
{
    int r = read_line(out, n);
    if (r == 0)
        return 0;
    OPENSSL_cleanse(out, n);
    return cli_fail(r == -2 ? "password: longer than %d bytes"
                            : "password: expected one non-empty line on stdin",
                    PASSWORD_MAX);
}

/* Checks @password against the policy of @org_id's users (the org's, else the instance
 * default, else the built-in one). Returns 0, or prints one line and returns CLI_EXIT_FAIL. */
static int check_policy(struct store *st, const char *org_id, const char *password)
{
    struct err e = {0};
    Koderid__V2__PasswordPolicy *p = NULL;
    if (oidc_password_policy_load(st, org_id, &p, &e) < 0)
        return cli_fail("store: %s", e.msg);
    int r = oidc_password_policy_check(password, p, &e);
    if (p)
        koderid__v2__password_policy__free_unpacked(p, NULL);
    return r < 0 ? cli_fail("password: %s", e.msg) : 0;
}

static bool valid_email(const char *s)
{
    const char *at = strchr(s, '@');
    return cli_valid_name(s) && strlen(s) <= 254 && at && at != s && at[1] && !strchr(at + 1, '@');
}

static int user_add(int argc, char **argv)
{
    static const struct option opts[] = {
        {"username", required_argument, NULL, 'u'},   {"email", required_argument, NULL, 'e'},
        {"given-name", required_argument, NULL, 'g'}, {"family-name", required_argument, NULL, 'f'},
        {"org", required_argument, NULL, 'o'},        {"email-verified", no_argument, NULL, 'v'},
        {"password-stdin", no_argument, NULL, 'p'},   {NULL, 0, NULL, 0},
    };
    const char *username = NULL, *email = NULL, *given = "", *family = "", *org = NULL;
    bool pw_stdin = false, verified = false;
    struct cli_opts co;
    int r, c;

    if ((r = cli_common_args("user", &argc, argv, &co)) != 0)
        return r;
    if ((r = cli_check_options("user", argc, argv, opts)) != 0)
        return r;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            username = optarg;
            break;
        case 'e':
            email = optarg;
            break;
        case 'g':
            given = optarg;
            break;
        case 'f':
            family = optarg;
            break;
        case 'o':
            org = optarg;
            break;
        case 'v':
            verified = true;
            break;
        case 'p':
            pw_stdin = true;
            break;
        default:
            return cli_usage("user", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage("user", "unexpected argument '%s'", argv[optind]);
    if (!username || !email)
        return cli_usage("user", "add needs --username and --email");
    if (!pw_stdin)
        return cli_usage("user", "add needs --password-stdin (passwords never go on the "
                                 "command line)");
    if (!cli_valid_name(username))
        return cli_usage("user",
                         "--username: 1 to %d characters, no spaces or control "
                         "characters",
                         CLI_NAME_MAX);
    if (!valid_email(email))
        return cli_usage("user", "--email: '%.80s' is not an email address", email);
    if (!cli_valid_text(given) || !cli_valid_text(family))
        return cli_usage("user",
                         "--given-name/--family-name: at most %d characters, no "
                         "control characters",
                         CLI_NAME_MAX);

    char password[PASSWORD_MAX + 2];
    if ((r = read_password(password, sizeof password)) != 0)
        return r;

    struct cli cl;
    if ((r = cli_open(&cl, &co, CLI_STORE)) != 0) {
        OPENSSL_cleanse(password, sizeof password);
        return r;
    }
    struct err e = {0};
    _cleanup_free_ char *org_id = NULL;
    _cleanup_free_ char *project_id = NULL;
    _cleanup_free_ char *hash = NULL;
    Koderid__V2__User *existing = NULL;
    Koderid__V2__Org *o = NULL;
    char id[21];
    int status = CLI_EXIT_FAIL;

    if (org) {
        if (repo_org_get(cl.store, org, &o, &e) < 0) {
            cli_fail("--org '%.60s': %s", org, e.code == -E_NOTFOUND ? "no such org" : e.msg);
            goto out;
        }
        org_id = strdup(org);
    } else if (cli_default_org_project(cl.store, cl.cfg.issuer, "--org ID", &org_id, &project_id,
                                       &e) < 0) {
        cli_fail("%s", e.msg);
        goto out;
    }
    if (repo_user_by_login(cl.store, username, &existing, &e) == 0) {
        cli_fail("username '%s' is already taken (user %s)", username, existing->id);
        goto out;
    }
    r = oidc_password_hash(password, cl.cfg.password_yescrypt_cost, &hash, &e);
    OPENSSL_cleanse(password, sizeof password);
    if (r < 0) {
        cli_fail("password: %s", e.msg);
        goto out;
    }

    id_new(id);
    int64_t now = (int64_t)time(NULL);
    char display[2 * CLI_NAME_MAX + 2];
    if (*given || *family)
        snprintf(display, sizeof display, "%s%s%s", given, *given && *family ? " " : "", family);
    else
        snprintf(display, sizeof display, "%s", username);
    char *login_names[1] = {(char *)username};

    Koderid__V2__User u = KODERID__V2__USER__INIT;
    u.id = id;
    u.org_id = org_id;
    u.username = (char *)username;
    u.login_name = (char *)username;
    u.state = 1;
    u.type = 1;
    u.first_name = (char *)given;
    u.last_name = (char *)family;
    u.display_name = display;
    u.email = (char *)email;
    u.email_verified = verified;
    u.password_hash = hash;
    u.password_changed_at = now;
    u.created_at = u.changed_at = now;
    u.source = "v2";
    u.n_login_names = 1;
    u.login_names = login_names;
    if (repo_user_put(cl.store, &u, &e) < 0) {
        cli_fail("store: %s", e.msg);
        goto out;
    }
    printf("%s\n", id);
    status = CLI_EXIT_OK;
out:
    if (hash)
        OPENSSL_cleanse(hash, strlen(hash));
    if (existing)
        koderid__v2__user__free_unpacked(existing, NULL);
    if (o)
        koderid__v2__org__free_unpacked(o, NULL);
    OPENSSL_cleanse(password, sizeof password);
    cli_close(&cl);
    return status;
}

/* The human user named by @who: an id, else a login name. */
static int find_human(struct store *st, const char *who, Koderid__V2__User **ret, struct err *e)
{
    Koderid__V2__User *u = NULL;
    int r = repo_user_get(st, who, &u, e);
    if (r == -E_NOTFOUND)
        r = repo_user_by_login(st, who, &u, e);
    if (r < 0)
        return r;
    if (u->type != 1) {
        koderid__v2__user__free_unpacked(u, NULL);
        return err_set(e, -E_INVALID, "user '%.60s' is a machine user (no password)", who);
    }
    *ret = u;
    return 0;
}

static int user_password(int argc, char **argv)
{
    static const struct option opts[] = {
        {"user", required_argument, NULL, 'u'},
        {"password-stdin", no_argument, NULL, 'p'},
        {"change-required", no_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    const char *who = NULL;
    bool pw_stdin = false, change_required = false;
    struct cli_opts co;
    int r, c;

    if ((r = cli_common_args("user", &argc, argv, &co)) != 0)
        return r;
    if ((r = cli_check_options("user", argc, argv, opts)) != 0)
        return r;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            who = optarg;
            break;
        case 'p':
            pw_stdin = true;
            break;
        case 'c':
            change_required = true;
            break;
        default:
            return cli_usage("user", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage("user", "unexpected argument '%s'", argv[optind]);
    if (!who || !cli_valid_name(who))
        return cli_usage("user", "password needs --user ID|LOGIN_NAME");
    if (!pw_stdin)
        return cli_usage("user", "password needs --password-stdin (passwords never go on the "
                                 "command line)");

    char password[PASSWORD_MAX + 2];
    struct err e = {0};
    if ((r = read_password(password, sizeof password)) != 0)
        return r;

    struct cli cl;
    if ((r = cli_open(&cl, &co, CLI_STORE)) != 0) {
        OPENSSL_cleanse(password, sizeof password);
        return r;
    }
    _cleanup_free_ char *hash = NULL;
    Koderid__V2__User *u = NULL;
    int status = CLI_EXIT_FAIL;

    if (find_human(cl.store, who, &u, &e) < 0) {
        cli_fail("--user '%.60s': %s", who, e.code == -E_NOTFOUND ? "no such user" : e.msg);
        goto out;
    }
    if (check_policy(cl.store, u->org_id, password) != 0)
        goto out;
    r = oidc_password_hash(password, cl.cfg.password_yescrypt_cost, &hash, &e);
    OPENSSL_cleanse(password, sizeof password);
    if (r < 0) {
        cli_fail("password: %s", e.msg);
        goto out;
    }
    /* A compare-and-swap on the record: a login's hash upgrade or a change made meanwhile is
     * not overwritten with stale fields; a few retries, then an error. */
    for (int attempt = 0; attempt < 5; attempt++) {
        char key[REPO_KEY_MAX];
        ProtobufCMessage *m = NULL;
        uint64_t version = 0;
        if (u)
            koderid__v2__user__free_unpacked(u, NULL);
        u = NULL;
        if (find_human(cl.store, who, &u, &e) < 0) {
            cli_fail("--user '%.60s': %s", who, e.code == -E_NOTFOUND ? "no such user" : e.msg);
            goto out;
        }
        repo_key(key, "user/%s", u->id);
        if (repo_get(cl.store, key, &koderid__v2__user__descriptor, &m, &version, &e) < 0) {
            cli_fail("store: %s", e.msg);
            goto out;
        }
        koderid__v2__user__free_unpacked(u, NULL);
        u = (Koderid__V2__User *)m;
        int64_t now = (int64_t)time(NULL);
        Koderid__V2__User copy = *u;
        copy.password_hash = hash; /* v1_password_hash stays: the importer sees a v2 change */
        copy.password_change_required = change_required;
        copy.password_changed_at = now;
        copy.changed_at = now;
        r = repo_cas(cl.store, key, version, &copy.base, 0, NULL, &e);
        if (r == 0) {
            printf("%s\n", u->id);
            status = CLI_EXIT_OK;
            goto out;
        }
        if (r != -E_CONFLICT)
            break;
    }
    cli_fail("store: %s", e.msg);
out:
    if (hash)
        OPENSSL_cleanse(hash, strlen(hash));
    if (u)
        koderid__v2__user__free_unpacked(u, NULL);
    OPENSSL_cleanse(password, sizeof password);
    cli_close(&cl);
    return status;
}

int cmd_user(int argc, char **argv)
{
    /* "user --config F add" would otherwise read as the unknown subcommand "--config". */
    if (argc < 2 || argv[1][0] == '-')
        return cli_usage("user", "missing subcommand (add, password, lock, unlock, deactivate, "
                                 "reactivate, remove), which comes first");
    if (strcmp(argv[1], "add") == 0)
        return user_add(argc - 1, argv + 1);
    if (strcmp(argv[1], "password") == 0)
        return user_password(argc - 1, argv + 1);
    int r = cmd_user_state(argc - 1, argv + 1);
    if (r >= 0)
        return r;
    return cli_usage("user", "unknown subcommand '%.40s'", argv[1]);
}
