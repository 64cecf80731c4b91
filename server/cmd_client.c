/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `client add|list|show`: OIDC clients for installs that do not come from v1.
 *
 * A confidential client's secret is 64 characters of [A-Za-z0-9] (like v1's), printed once
 * and stored only as a bcrypt hash (cli_secret_new() in server/cli.c says why bcrypt, cost 10).
 * API apps (`api add`, server/cmd_api.c) are listed and shown here too.
 */
#include <crypt.h>
#include <getopt.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/rand.h"
#include "oidc/cors.h"
#include "server/admin.h"
#include "server/cli.h"
#include "server/commands.h"
#include "storage/repo.h"

#define URIS_MAX 32
#define URI_MAX 2048

static const char *const app_types[] = {"web", "spa", "native"};
static const char *const auth_methods[] = {"basic", "post", "none", "private_key_jwt"};
/* v1's OIDCResponseType and OIDCGrantType (ZITADEL.md 1.11), by index. */
static const char *const response_type_names[] = {"code", "id_token", "id_token token"};
static const char *const grant_type_names[] = {"authorization_code", "implicit", "refresh_token",
                                               "device_code", "token_exchange"};

static int index_of(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

/* An absolute URI: a scheme, no fragment, no whitespace or control characters. */
static bool valid_uri(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > URI_MAX || strchr(s, '#'))
        return false;
    const char *colon = strchr(s, ':');
    if (!colon || colon == s)
        return false;
    for (const char *p = s; p < colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (p > s && ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.'))))
            return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    return colon[1] != '\0';
}

static bool valid_client_id(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 200)
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '/')
            return false;
    return true;
}

static json_t *client_json(const Koderid__V2__Client *c)
{
    json_t *o = json_object(), *ru = json_array(), *pl = json_array();
    json_object_set_new(o, "client_id", json_string(c->client_id));
    json_object_set_new(o, "name", json_string(c->name ? c->name : ""));
    json_object_set_new(o, "app_id", json_string(c->app_id ? c->app_id : ""));
    json_object_set_new(o, "project_id", json_string(c->project_id ? c->project_id : ""));
    json_object_set_new(o, "org_id", json_string(c->org_id ? c->org_id : ""));
    json_object_set_new(
        o, "kind", json_string(c->kind == KODERID__V2__CLIENT_KIND__CLIENT_API ? "api" : "oidc"));
    json_object_set_new(
        o, "type",
        json_string(c->app_type >= 0 && c->app_type < 3 ? app_types[c->app_type] : "unknown"));
    json_object_set_new(o, "auth_method",
                        json_string(c->auth_method >= 0 && c->auth_method < 4
                                        ? auth_methods[c->auth_method]
                                        : "unknown"));
    json_object_set_new(o, "access_token",
                        json_string(c->access_token_type == 1 ? "jwt" : "opaque"));
    json_object_set_new(o, "state", json_string(c->state == 1 ? "active" : "inactive"));
    json_object_set_new(o, "has_secret", json_boolean(c->secret_hash && *c->secret_hash));
    for (size_t i = 0; i < c->n_redirect_uris; i++)
        json_array_append_new(ru, json_string(c->redirect_uris[i]));
    for (size_t i = 0; i < c->n_post_logout_redirect_uris; i++)
        json_array_append_new(pl, json_string(c->post_logout_redirect_uris[i]));
    json_object_set_new(o, "redirect_uris", ru);
    json_object_set_new(o, "post_logout_redirect_uris", pl);
    json_t *rts = json_array(), *gts = json_array();
    for (size_t i = 0; i < c->n_response_types; i++)
        json_array_append_new(rts, json_string(c->response_types[i] >= 0 && c->response_types[i] < 3
                                                   ? response_type_names[c->response_types[i]]
                                                   : "unknown"));
    for (size_t i = 0; i < c->n_grant_types; i++)
        json_array_append_new(gts, json_string(c->grant_types[i] >= 0 && c->grant_types[i] < 5
                                                   ? grant_type_names[c->grant_types[i]]
                                                   : "unknown"));
    json_object_set_new(o, "response_types", rts);
    json_object_set_new(o, "grant_types", gts);
    json_t *ao = json_array();
    for (size_t i = 0; i < c->n_additional_origins; i++)
        json_array_append_new(ao, json_string(c->additional_origins[i]));
    json_object_set_new(o, "additional_origins", ao);
    json_object_set_new(o, "dev_mode", json_boolean(c->dev_mode));
    json_object_set_new(o, "source", json_string(c->source ? c->source : ""));
    return o;
}

static int client_add(int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"type", required_argument, NULL, 't'},
        {"redirect-uri", required_argument, NULL, 'r'},
        {"post-logout-uri", required_argument, NULL, 'l'},
        {"origin", required_argument, NULL, 'o'},
        {"auth-method", required_argument, NULL, 'a'},
        {"access-token", required_argument, NULL, 'k'},
        {"project", required_argument, NULL, 'p'},
        {"client-id", required_argument, NULL, 'i'},
        {"response-type", required_argument, NULL, 'R'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    const char *name = NULL, *type = NULL, *method = NULL, *at = "opaque", *project = NULL,
               *client_id = NULL;
    char *redirects[URIS_MAX], *logouts[URIS_MAX], *origins[URIS_MAX];
    char origin_buf[URIS_MAX][OIDC_CORS_ORIGIN_MAX];
    size_t nredirects = 0, nlogouts = 0, norigins = 0;
    bool json = false, rtype[3] = {false, false, false};
    struct cli_opts co;
    int r, c;

    if ((r = cli_common_args("client", &argc, argv, &co)) != 0)
        return r;
    if ((r = cli_check_options("client", argc, argv, opts)) != 0)
        return r;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            name = optarg;
            break;
        case 't':
            type = optarg;
            break;
        case 'r':
        case 'l':
            if (!valid_uri(optarg))
                return cli_usage("client", "%s: '%.80s' is not an absolute URI without a fragment",
                                 c == 'r' ? "--redirect-uri" : "--post-logout-uri", optarg);
            if ((c == 'r' ? nredirects : nlogouts) >= URIS_MAX)
                return cli_usage("client", "at most %d URIs of each kind", URIS_MAX);
            if (c == 'r')
                redirects[nredirects++] = optarg;
            else
                logouts[nlogouts++] = optarg;
            break;
        case 'o':
            /* Stored as the origin a browser sends (oidc/cors.h), so it matches byte for
             * byte; a path is dropped. */
            if (norigins >= URIS_MAX)
                return cli_usage("client", "at most %d URIs of each kind", URIS_MAX);
            if (oidc_cors_origin_of(optarg, origin_buf[norigins]) < 0)
                return cli_usage("client", "--origin: '%.80s' is not an http or https origin",
                                 optarg);
            origins[norigins] = origin_buf[norigins];
            norigins++;
            break;
        case 'a':
            method = optarg;
            break;
        case 'k':
            at = optarg;
            break;
        case 'p':
            project = optarg;
            break;
        case 'i':
            client_id = optarg;
            break;
        case 'R': {
            int t = index_of(response_type_names, 3, optarg);
            if (t < 0)
                return cli_usage("client",
                                 "--response-type: '%.40s' is not code, id_token or "
                                 "\"id_token token\"",
                                 optarg);
            rtype[t] = true;
            break;
        }
        case 'j':
            json = true;
            break;
        default:
            return cli_usage("client", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage("client", "unexpected argument '%s'", argv[optind]);
    if (!name || !type || nredirects == 0)
        return cli_usage("client", "add needs --name, --type and at least one --redirect-uri");
    if (!*name || strlen(name) > 200)
        return cli_usage("client", "--name: 1 to 200 characters");
    int app_type = index_of(app_types, 3, type);
    if (app_type < 0)
        return cli_usage("client", "--type: '%.40s' is not web, spa or native", type);
    int auth = method ? index_of(auth_methods, 3, method) : (app_type == 0 ? 0 : 2);
    if (auth < 0)
        return cli_usage("client", "--auth-method: '%.40s' is not basic, post or none", method);
    if (app_type != 0 && auth != 2)
        return cli_usage("client",
                         "a %s client is public: it cannot have a secret "
                         "(--auth-method none)",
                         type);
    if (strcmp(at, "jwt") != 0 && strcmp(at, "opaque") != 0)
        return cli_usage("client", "--access-token: '%.40s' is not jwt or opaque", at);
    if (client_id && !valid_client_id(client_id))
        return cli_usage("client", "--client-id: 1 to 200 characters, no spaces, '/' or "
                                   "control characters");

    struct cli cl;
    if ((r = cli_open(&cl, &co, CLI_STORE)) != 0)
        return r;
    struct err e = {0};
    _cleanup_free_ char *org_id = NULL;
    _cleanup_free_ char *project_id = NULL;
    _cleanup_free_ char *hash = NULL;
    char secret[CLI_SECRET_LEN + 1] = "", new_id[21], app_id[21];
    int status = CLI_EXIT_FAIL;

    if (admin_new_client(cl.store, cl.cfg.issuer, project, client_id, new_id, &client_id, &org_id,
                         &project_id, &e) < 0) {
        cli_fail("%s", e.msg);
        goto out;
    }
    if (auth != 2 && cli_secret_new(secret, &hash) < 0) {
        cli_fail("client secret: generation or hashing failed");
        goto out;
    }
    /* code (the default) brings authorization_code and refresh_token; an implicit type the
     * implicit grant, as v1's console sets them. */
    if (!rtype[0] && !rtype[1] && !rtype[2])
        rtype[0] = true;
    int32_t response_types[3], grant_types[3];
    size_t n_rt = 0, n_gt = 0;
    for (int32_t t = 0; t < 3; t++)
        if (rtype[t])
            response_types[n_rt++] = t;
    if (rtype[0])
        grant_types[n_gt++] = 0;
    if (rtype[1] || rtype[2])
        grant_types[n_gt++] = 1;
    if (rtype[0])
        grant_types[n_gt++] = 2;

    Koderid__V2__Client cr;
    admin_client_init(&cr, KODERID__V2__CLIENT_KIND__CLIENT_OIDC, app_id, client_id, project_id,
                      org_id, name, hash, auth);
    cr.n_redirect_uris = nredirects;
    cr.redirect_uris = redirects;
    cr.n_post_logout_redirect_uris = nlogouts;
    cr.post_logout_redirect_uris = logouts;
    cr.n_additional_origins = norigins;
    cr.additional_origins = origins;
    cr.n_response_types = n_rt;
    cr.response_types = response_types;
    cr.n_grant_types = n_gt;
    cr.grant_types = grant_types;
    cr.app_type = app_type;
    cr.access_token_type = strcmp(at, "jwt") == 0 ? 1 : 0;
    if (repo_client_put(cl.store, &cr, &e) < 0) {
        cli_fail("store: %s", e.msg);
        goto out;
    }
    const char *const fields[][2] = {{"client_id", client_id}, {"client_secret", secret}};
    cli_print_fields(json, fields, ARRAY_SIZE(fields));
    status = CLI_EXIT_OK;
out:
    OPENSSL_cleanse(secret, sizeof secret);
    cli_close(&cl);
    return status;
}

/* Parses the options of list/show: only --json. */
static int parse_json_flag(int argc, char **argv, bool *json, int *ret_optind)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
    int c, r;
    if ((r = cli_check_options("client", argc, argv, opts)) != 0)
        return r;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 'j')
            return cli_usage("client", "unknown option '%s'", argv[optind - 1]);
        *json = true;
    }
    *ret_optind = optind;
    return 0;
}

static int client_list(int argc, char **argv)
{
    struct cli_opts co;
    bool json = false;
    int r, oi;
    if ((r = cli_common_args("client", &argc, argv, &co)) != 0)
        return r;
    if ((r = parse_json_flag(argc, argv, &json, &oi)) != 0)
        return r;
    if (oi < argc)
        return cli_usage("client", "list takes no arguments");

    struct cli cl;
    if ((r = cli_open(&cl, &co, CLI_STORE | CLI_READ_ONLY)) != 0)
        return r;
    _cleanup_(json_decrefp) json_t *arr = json_array();
    char cursor[REPO_KEY_MAX];
    size_t clen = 0;
    struct err e = {0};
    int status = CLI_EXIT_OK;
    for (;;) {
        struct store_list l = {0};
        if (store_scan(cl.store, "client/", 7, clen ? cursor : NULL, clen, 500, &l, &e) < 0) {
            status = cli_fail("store: %s", e.msg);
            break;
        }
        for (size_t i = 0; i < l.n; i++) {
            Koderid__V2__Client *c =
                koderid__v2__client__unpack(NULL, l.items[i].value.len, l.items[i].value.data);
            if (!c)
                continue;
            if (json)
                json_array_append_new(arr, client_json(c));
            else
                printf("%s\t%s\t%s\t%s\n", c->client_id,
                       c->kind == KODERID__V2__CLIENT_KIND__CLIENT_API ? "api"
                       : c->app_type >= 0 && c->app_type < 3           ? app_types[c->app_type]
                                                                       : "?",
                       c->auth_method >= 0 && c->auth_method < 4 ? auth_methods[c->auth_method]
                                                                 : "?",
                       c->name ? c->name : "");
            koderid__v2__client__free_unpacked(c, NULL);
        }
        bool more = l.more && l.n > 0 && l.items[l.n - 1].klen < sizeof cursor;
        if (more) {
            clen = l.items[l.n - 1].klen;
            memcpy(cursor, l.items[l.n - 1].key, clen);
        }
        store_list_release(&l);
        if (!more)
            break;
    }
    if (status == CLI_EXIT_OK && json) {
        _cleanup_free_ char *s = json_dumps(arr, JSON_COMPACT);
        printf("%s\n", s ? s : "[]");
    }
    cli_close(&cl);
    return status;
}

static int client_show(int argc, char **argv)
{
    struct cli_opts co;
    bool json = false;
    int r, oi;
    if ((r = cli_common_args("client", &argc, argv, &co)) != 0)
        return r;
    if ((r = parse_json_flag(argc, argv, &json, &oi)) != 0)
        return r;
    if (oi + 1 != argc)
        return cli_usage("client", "show needs exactly one client id");
    const char *id = argv[oi];

    struct cli cl;
    if ((r = cli_open(&cl, &co, CLI_STORE | CLI_READ_ONLY)) != 0)
        return r;
    struct err e = {0};
    Koderid__V2__Client *c = NULL;
    if (repo_client_get(cl.store, id, &c, &e) < 0) {
        r = cli_fail("client '%.80s': %s", id, e.code == -E_NOTFOUND ? "not found" : e.msg);
        cli_close(&cl);
        return r;
    }
    _cleanup_(json_decrefp) json_t *o = client_json(c);
    koderid__v2__client__free_unpacked(c, NULL);
    if (json) {
        _cleanup_free_ char *s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
    } else {
        const char *k;
        json_t *v;
        json_object_foreach (o, k, v) {
            if (json_is_string(v)) {
                printf("%s: %s\n", k, json_string_value(v));
            } else if (json_is_boolean(v)) {
                printf("%s: %s\n", k, json_is_true(v) ? "yes" : "no");
            } else if (json_is_array(v)) {
                size_t i;
                json_t *item;
                printf("%s:", k);
                json_array_foreach (v, i, item)
                    printf(" %s", json_string_value(item));
                printf("\n");
            }
        }
    }
    cli_close(&cl);
    return CLI_EXIT_OK;
}

int cmd_client(int argc, char **argv)
{
    /* "client --config F add" would otherwise read as the unknown subcommand "--config". */
    if (argc < 2 || argv[1][0] == '-')
        return cli_usage("client", "missing subcommand (add, list, show), which comes first");
    if (strcmp(argv[1], "add") == 0)
        return client_add(argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return client_list(argc - 1, argv + 1);
    if (strcmp(argv[1], "show") == 0)
        return client_show(argc - 1, argv + 1);
    return cli_usage("client", "unknown subcommand '%.40s'", argv[1]);
}
