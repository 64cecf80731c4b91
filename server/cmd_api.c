/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `api add`: an API app (v1's resource server) for installs that do not come from v1. An API
 * app gets no user tokens; it authenticates at /oauth/v2/introspect with HTTP basic (a
 * generated secret, shown once, stored as a bcrypt hash) or private_key_jwt (an assertion
 * signed by the public key registered here). `client list` and `client show` show API apps.
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

#define CMD "api"

/* Client.auth_method values (records.proto): API apps have basic or private_key_jwt. */
#define AUTH_BASIC 0
#define AUTH_PRIVATE_KEY_JWT 3

enum { NAME, PROJECT, AUTH_METHOD, KEY_FILE, EXPIRES, CLIENT_ID, JSON };

static int api_add(int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, NAME},
        {"project", required_argument, NULL, PROJECT},
        {"auth-method", required_argument, NULL, AUTH_METHOD},
        {"public-key-file", required_argument, NULL, KEY_FILE},
        {"expires", required_argument, NULL, EXPIRES},
        {"client-id", required_argument, NULL, CLIENT_ID},
        {"json", no_argument, NULL, JSON},
        {NULL, 0, NULL, 0},
    };
    const char *v[JSON + 1] = {0};
    struct admin_args a = {.vals = v, .nvals = ARRAY_SIZE(v), .multi = -1};
    int r;
    if ((r = admin_parse(CMD, &argc, argv, opts, &a)) != 0)
        return r;
    const char *name = v[NAME], *method = v[AUTH_METHOD] ? v[AUTH_METHOD] : "basic";
    if (!name)
        return cli_usage(CMD, "add needs --name");
    if (!*name || !cli_valid_text(name))
        return cli_usage(CMD, "--name: 1 to %d characters, no control characters", CLI_NAME_MAX);
    int auth = strcmp(method, "basic") == 0             ? AUTH_BASIC
               : strcmp(method, "private_key_jwt") == 0 ? AUTH_PRIVATE_KEY_JWT
                                                        : -1;
    if (auth < 0)
        return cli_usage(CMD, "--auth-method: '%.40s' is not basic or private_key_jwt", method);
    if (auth == AUTH_PRIVATE_KEY_JWT && !v[KEY_FILE])
        return cli_usage(CMD, "--auth-method private_key_jwt needs --public-key-file PEM");
    if (auth == AUTH_BASIC && (v[KEY_FILE] || v[EXPIRES]))
        return cli_usage(CMD, "--public-key-file and --expires go with --auth-method "
                              "private_key_jwt");
    if (v[CLIENT_ID] && (!cli_valid_name(v[CLIENT_ID]) || strchr(v[CLIENT_ID], '/')))
        return cli_usage(CMD,
                         "--client-id: 1 to %d characters, no spaces, '/' or control "
                         "characters",
                         CLI_NAME_MAX);
    int64_t expires = 0;
    if (v[EXPIRES] && (r = admin_parse_expires(CMD, v[EXPIRES], &expires)) != 0)
        return r;
    struct admin_pubkey pk = {0};
    struct err e = {0};
    /* Read before cli_open(), which may drop root's rights (server/privdrop.h). */
    if (v[KEY_FILE] && admin_pubkey_read(v[KEY_FILE], &pk, &e) < 0)
        return cli_fail("--public-key-file: %s", e.msg);

    struct cli cl;
    if ((r = cli_open(&cl, &a.co, CLI_STORE)) != 0) {
        admin_pubkey_release(&pk);
        return r;
    }
    _cleanup_free_ char *org_id = NULL;
    _cleanup_free_ char *project_id = NULL;
    _cleanup_free_ char *hash = NULL;
    char secret[CLI_SECRET_LEN + 1] = "", new_id[21], app_id[21], kid[21] = "";
    const char *client_id = v[CLIENT_ID];
    int status = CLI_EXIT_FAIL;

    if (admin_new_client(cl.store, cl.cfg.issuer, v[PROJECT], client_id, new_id, &client_id,
                         &org_id, &project_id, &e) < 0) {
        cli_fail("%s", e.msg);
        goto out;
    }
    if (auth == AUTH_BASIC && cli_secret_new(secret, &hash) < 0) {
        cli_fail("api secret: generation or hashing failed");
        goto out;
    }
    /* The key first: an app that exists is usable at once. */
    if (auth == AUTH_PRIVATE_KEY_JWT &&
        admin_pubkey_store(cl.store, client_id, 0, &pk, expires, kid, &e) < 0) {
        cli_fail("store: %s", e.msg);
        goto out;
    }
    Koderid__V2__Client c;
    admin_client_init(&c, KODERID__V2__CLIENT_KIND__CLIENT_API, app_id, client_id, project_id,
                      org_id, name, hash, auth);
    if (repo_client_put(cl.store, &c, &e) < 0) {
        cli_fail("store: %s", e.msg);
        goto out;
    }
    const char *const fields[][2] = {{"client_id", client_id},
                                     {"project_id", project_id},
                                     {"key_id", kid},
                                     {"client_secret", secret}};
    cli_print_fields(v[JSON] != NULL, fields, ARRAY_SIZE(fields));
    status = CLI_EXIT_OK;
out:
    OPENSSL_cleanse(secret, sizeof secret);
    admin_pubkey_release(&pk);
    cli_close(&cl);
    return status;
}

/* The keys of a private_key_jwt client (API apps; imported OIDC apps too). */
static int find_client(struct store *s, const char *client_id, bool for_add, char **ret_id,
                       struct err *e)
{
    _cleanup_(repo_msg_freep) Koderid__V2__Client *c = NULL;
    struct err ge = {0};
    int r = repo_client_get(s, client_id, &c, &ge);
    if (r == -E_NOTFOUND)
        return err_set(e, r, "no client '%.80s'", client_id);
    if (r < 0)
        return err_set(e, r, "%s", ge.msg);
    if (for_add && c->auth_method != AUTH_PRIVATE_KEY_JWT)
        return err_set(e, -E_INVALID, "client '%.80s' does not authenticate with private_key_jwt",
                       client_id);
    if (!(*ret_id = strdup(c->client_id)))
        return err_set(e, -E_NOMEM, "out of memory");
    return 0;
}

static const struct admin_key_owner api_keys = {
    .cmd = CMD,
    .opt = "client-id",
    .opt_usage = "--client-id ID",
    .id_field = "client_id",
    .object_type = 0,
    .find = find_client,
};

int cmd_api(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return cli_usage(CMD, "missing subcommand (add, key), which comes first");
    if (strcmp(argv[1], "add") == 0)
        return api_add(argc - 1, argv + 1);
    if (strcmp(argv[1], "key") == 0)
        return admin_key_cmd(&api_keys, argc - 1, argv + 1);
    return cli_usage(CMD, "unknown subcommand '%.40s'", argv[1]);
}
