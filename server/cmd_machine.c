/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `machine add|secret|list` and `machine key add|remove|list`: machine users (v1's service
 * accounts) for installs that do not come from v1. A machine user signs in at the token
 * endpoint with client_credentials (client_id = its username or login name, and a secret) or
 * with a JWT bearer assertion (RFC 7523, v1's "JWT profile") signed by a key registered here;
 * its access tokens are opaque or JWTs per its access_token_type, as in v1.
 *
 * The secret is generated (never chosen: it cannot be weak), printed once and stored only as
 * a bcrypt hash, like a client's (cli_secret_new()). `machine secret` replaces it with a
 * compare-and-swap, so a concurrent rehash by the token endpoint can never bring the old
 * secret back; the token endpoint's secret cache is keyed by the stored hash, so the old
 * secret stops working at once.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/rand.h"
#include "server/admin.h"
#include "server/cli.h"
#include "server/commands.h"

#define CMD "machine"

/* Without a secret, `machine add` prints the bare id (like `user add`), for scripts. */
static void secret_print(const char *user_id, const char *client_id, const char *secret, bool json)
{
    const char *const fields[][2] = {
        {"user_id", user_id}, {"client_id", client_id}, {"client_secret", secret}};
    if (json || secret)
        cli_print_fields(json, fields, ARRAY_SIZE(fields));
    else
        printf("%s\n", user_id);
}

enum { ADD_USERNAME, ADD_NAME, ADD_DESCRIPTION, ADD_ORG, ADD_ACCESS_TOKEN, ADD_SECRET, ADD_JSON };

static int machine_add(int argc, char **argv)
{
    static const struct option opts[] = {
        {"username", required_argument, NULL, ADD_USERNAME},
        {"name", required_argument, NULL, ADD_NAME},
        {"description", required_argument, NULL, ADD_DESCRIPTION},
        {"org", required_argument, NULL, ADD_ORG},
        {"access-token", required_argument, NULL, ADD_ACCESS_TOKEN},
        {"secret", no_argument, NULL, ADD_SECRET},
        {"json", no_argument, NULL, ADD_JSON},
        {NULL, 0, NULL, 0},
    };
    const char *v[ADD_JSON + 1] = {0};
    struct admin_args a = {.vals = v, .nvals = ARRAY_SIZE(v), .multi = -1};
    int r;
    if ((r = admin_parse(CMD, &argc, argv, opts, &a)) != 0)
        return r;
    const char *username = v[ADD_USERNAME], *name = v[ADD_NAME] ? v[ADD_NAME] : username;
    const char *desc = v[ADD_DESCRIPTION] ? v[ADD_DESCRIPTION] : "";
    const char *at = v[ADD_ACCESS_TOKEN] ? v[ADD_ACCESS_TOKEN] : "opaque";
    if (!username)
        return cli_usage(CMD, "add needs --username");
    if (!cli_valid_name(username) || strchr(username, '/') || strchr(username, '@'))
        return cli_usage(CMD,
                         "--username: 1 to %d characters, no spaces, '/', '@' or control "
                         "characters",
                         CLI_NAME_MAX);
    if (!*name || !cli_valid_text(name) || !cli_valid_text(desc))
        return cli_usage(CMD,
                         "--name/--description: at most %d characters, no control "
                         "characters",
                         CLI_NAME_MAX);
    if (strcmp(at, "jwt") != 0 && strcmp(at, "opaque") != 0)
        return cli_usage(CMD, "--access-token: '%.40s' is not jwt or opaque", at);

    struct cli cl;
    if ((r = cli_open(&cl, &a.co, CLI_STORE)) != 0)
        return r;
    struct err e = {0};
    _cleanup_free_ char *org_id = NULL;
    _cleanup_free_ char *project_id = NULL;
    _cleanup_free_ char *hash = NULL;
    _cleanup_free_ char *login = NULL;
    _cleanup_(repo_msg_freep) Koderid__V2__User *taken = NULL;
    Koderid__V2__Org *org = NULL;
    char secret[CLI_SECRET_LEN + 1] = "", id[21];
    int status = CLI_EXIT_FAIL;

    if (admin_owner(cl.store, cl.cfg.issuer, v[ADD_ORG], NULL, "--org ID", &org_id, &project_id,
                    &e) < 0) {
        cli_fail("%s", e.msg);
        goto out;
    }
    /* Where the org's domain policy says so, v1's login name is username@domain; the bare
     * username signs in too for machine users (storage/repo.c). */
    if (repo_org_get(cl.store, org_id, &org, &e) == 0 && org->must_be_domain &&
        org->primary_domain && *org->primary_domain) {
        if (asprintf(&login, "%s@%s", username, org->primary_domain) < 0)
            login = NULL;
    } else {
        login = strdup(username);
    }
    if (!login) {
        cli_fail("out of memory");
        goto out;
    }
    if (admin_user_find(cl.store, username, 0, &taken, NULL, &e) == 0 ||
        admin_user_find(cl.store, login, 0, &taken, NULL, &e) == 0) {
        cli_fail("username '%s' is already taken (user %s)", username, taken->id);
        goto out;
    }
    if (v[ADD_SECRET] && cli_secret_new(secret, &hash) < 0) {
        cli_fail("machine secret: generation or hashing failed");
        goto out;
    }
    id_new(id);
    int64_t now = (int64_t)time(NULL);
    char *login_names[1] = {login};
    Koderid__V2__User u = KODERID__V2__USER__INIT;
    u.id = id;
    u.org_id = org_id;
    u.username = (char *)username;
    u.login_name = login;
    u.n_login_names = 1;
    u.login_names = login_names;
    u.state = 1;
    u.type = 2;
    u.machine_name = (char *)name;
    u.display_name = (char *)name;
    u.description = (char *)desc;
    u.secret_hash = hash ? hash : "";
    u.access_token_type = strcmp(at, "jwt") == 0 ? 1 : 0;
    u.created_at = u.changed_at = now;
    u.source = "v2";
    if (repo_user_put(cl.store, &u, &e) < 0) {
        cli_fail("store: %s", e.msg);
        goto out;
    }
    secret_print(id, username, *secret ? secret : NULL, v[ADD_JSON] != NULL);
    status = CLI_EXIT_OK;
out:
    OPENSSL_cleanse(secret, sizeof secret);
    if (org)
        koderid__v2__org__free_unpacked(org, NULL);
    cli_close(&cl);
    return status;
}

enum { SEC_USER, SEC_JSON };

static int machine_secret(int argc, char **argv)
{
    static const struct option opts[] = {
        {"user", required_argument, NULL, SEC_USER},
        {"json", no_argument, NULL, SEC_JSON},
        {NULL, 0, NULL, 0},
    };
    const char *v[SEC_JSON + 1] = {0};
    struct admin_args a = {.vals = v, .nvals = ARRAY_SIZE(v), .multi = -1};
    int r;
    if ((r = admin_parse(CMD, &argc, argv, opts, &a)) != 0)
        return r;
    if (!v[SEC_USER])
        return cli_usage(CMD, "secret needs --user ID|USERNAME");

    struct cli cl;
    if ((r = cli_open(&cl, &a.co, CLI_STORE)) != 0)
        return r;
    struct err e = {0};
    _cleanup_(repo_msg_freep) Koderid__V2__User *u = NULL;
    _cleanup_free_ char *hash = NULL;
    char secret[CLI_SECRET_LEN + 1] = "", key[REPO_KEY_MAX];
    uint64_t version = 0;
    int status = CLI_EXIT_FAIL;

    if (admin_user_find(cl.store, v[SEC_USER], 2, &u, &version, &e) < 0) {
        cli_fail("%s", e.msg);
        goto out;
    }
    if (cli_secret_new(secret, &hash) < 0) {
        cli_fail("machine secret: generation or hashing failed");
        goto out;
    }
    char *old = u->secret_hash;
    u->secret_hash = hash;
    u->changed_at = (int64_t)time(NULL);
    repo_key(key, "user/%s", u->id);
    r = repo_cas(cl.store, key, version, &u->base, 0, NULL, &e);
    u->secret_hash = old;
    if (r < 0) {
        cli_fail("store: %s%s", e.msg,
                 r == -E_CONFLICT ? " (the user changed meanwhile: run it again)" : "");
        goto out;
    }
    secret_print(u->id, u->username ? u->username : u->id, secret, v[SEC_JSON] != NULL);
    status = CLI_EXIT_OK;
out:
    OPENSSL_cleanse(secret, sizeof secret);
    cli_close(&cl);
    return status;
}

static int find_machine(struct store *s, const char *name, bool for_add, char **ret_id,
                        struct err *e)
{
    _cleanup_(repo_msg_freep) Koderid__V2__User *u = NULL;
    (void)for_add;
    int r = admin_user_find(s, name, 2, &u, NULL, e);
    if (r < 0)
        return r;
    if (!(*ret_id = strdup(u->id)))
        return err_set(e, -E_NOMEM, "out of memory");
    return 0;
}

static const struct admin_key_owner machine_keys = {
    .cmd = CMD,
    .opt = "user",
    .opt_usage = "--user ID|USERNAME",
    .id_field = "user_id",
    .object_type = 1,
    .find = find_machine,
};

static int list_cb(const struct store_entry *it, void *arg, struct err *e)
{
    struct admin_list *l = arg;
    _cleanup_(repo_msg_freep) Koderid__V2__User *u =
        koderid__v2__user__unpack(NULL, it->value.len, it->value.data);
    if (!u || u->type != 2)
        return 0;
    const char *at = u->access_token_type == 1 ? "jwt" : "opaque";
    bool has_secret = u->secret_hash && *u->secret_hash;
    json_t *keys = admin_keys_of(l->s, u->id, e);
    if (!keys)
        return -1;
    if (!l->json) {
        printf("%s\t%s\t%s\t%s\t%zu key%s\t%s\n", u->id, u->username ? u->username : "", at,
               has_secret ? "secret" : "no-secret", json_array_size(keys),
               json_array_size(keys) == 1 ? "" : "s", u->display_name ? u->display_name : "");
        json_decref(keys);
        return 0;
    }
    json_t *o = json_object();
    json_object_set_new(o, "user_id", json_string(u->id));
    json_object_set_new(o, "username", json_string(u->username ? u->username : ""));
    json_object_set_new(o, "login_name", json_string(u->login_name ? u->login_name : ""));
    json_object_set_new(o, "name", json_string(u->display_name ? u->display_name : ""));
    json_object_set_new(o, "org_id", json_string(u->org_id ? u->org_id : ""));
    json_object_set_new(o, "access_token", json_string(at));
    json_object_set_new(o, "has_secret", json_boolean(has_secret));
    json_object_set_new(o, "state", json_string(u->state == 1 ? "active" : "inactive"));
    json_object_set_new(o, "keys", keys);
    json_object_set_new(o, "source", json_string(u->source ? u->source : ""));
    if (json_array_append_new(l->arr, o) < 0)
        return err_set(e, -E_NOMEM, "out of memory");
    return 0;
}

static int machine_list(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 0}, {NULL, 0, NULL, 0}};
    const char *v[1] = {0};
    struct admin_args a = {.vals = v, .nvals = ARRAY_SIZE(v), .multi = -1};
    int r;
    if ((r = admin_parse(CMD, &argc, argv, opts, &a)) != 0)
        return r;
    struct cli cl;
    if ((r = cli_open(&cl, &a.co, CLI_STORE | CLI_READ_ONLY)) != 0)
        return r;
    int status = admin_list(cl.store, "user/", list_cb, v[0] != NULL, NULL);
    cli_close(&cl);
    return status;
}

int cmd_machine(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return cli_usage(CMD, "missing subcommand (add, secret, key, list), which comes first");
    if (strcmp(argv[1], "add") == 0)
        return machine_add(argc - 1, argv + 1);
    if (strcmp(argv[1], "secret") == 0)
        return machine_secret(argc - 1, argv + 1);
    if (strcmp(argv[1], "key") == 0)
        return admin_key_cmd(&machine_keys, argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return machine_list(argc - 1, argv + 1);
    return cli_usage(CMD, "unknown subcommand '%.40s'", argv[1]);
}
