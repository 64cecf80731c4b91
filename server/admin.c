/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers of the operator commands (machine, api, project, role, grant): see server/admin.h.
 * Public keys are parsed with OpenSSL here, once, so a key that the token endpoint could not
 * use (a private key, DSA, a curve other than P-256, a short RSA key) is refused when the
 * operator registers it rather than when a client first presents an assertion.
 */
#include "admin.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/rand.h"
#include "server/cli.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)

int admin_pubkey_read(const char *path, struct admin_pubkey *ret, struct err *e)
{
    _cleanup_(fclosep) FILE *f = fopen(path, "re");
    if (!f)
        return err_set(e, -E_IO, "'%.100s': %s", path, strerror(errno));
    _cleanup_free_ char *buf = malloc(ADMIN_PEM_MAX + 1);
    if (!buf)
        return err_set(e, -E_NOMEM, "out of memory");
    size_t n = fread(buf, 1, ADMIN_PEM_MAX + 1, f);
    if (n > ADMIN_PEM_MAX)
        return err_set(e, -E_INVALID, "'%.100s': larger than %d bytes", path, ADMIN_PEM_MAX);
    buf[n] = '\0';
    if (strstr(buf, "PRIVATE KEY-----")) {
        OPENSSL_cleanse(buf, n);
        return err_set(e, -E_INVALID,
                       "'%.100s' holds a private key: register the public one (openssl pkey "
                       "-in KEY -pubout)",
                       path);
    }
    _cleanup_(BIO_freep) BIO *in = BIO_new_mem_buf(buf, (int)n);
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = in ? PEM_read_bio_PUBKEY(in, NULL, NULL, NULL) : NULL;
    if (!k)
        return err_set(e, -E_INVALID,
                       "'%.100s' is not a PEM public key (-----BEGIN PUBLIC KEY-----)", path);
    const char *alg = NULL;
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA) {
        int bits = EVP_PKEY_get_bits(k);
        if (bits < 2048 || bits > 8192)
            return err_set(e, -E_INVALID, "'%.100s': an RSA key of %d bits (2048 to 8192 wanted)",
                           path, bits);
        alg = "RS256";
    } else if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC) {
        char group[64] = "";
        if (EVP_PKEY_get_group_name(k, group, sizeof group, NULL) != 1 ||
            (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0))
            return err_set(e, -E_INVALID, "'%.100s': an EC key on %s (P-256 wanted, for ES256)",
                           path, *group ? group : "an unknown curve");
        alg = "ES256";
    } else {
        return err_set(e, -E_INVALID, "'%.100s': not an RSA or EC P-256 key", path);
    }
    /* Stored re-encoded: the token endpoint reads exactly what OpenSSL wrote. */
    _cleanup_(BIO_freep) BIO *out = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len;
    if (!out || PEM_write_bio_PUBKEY(out, k) != 1 || (len = BIO_get_mem_data(out, &data)) <= 0)
        return err_set(e, -E_INTERNAL, "'%.100s': cannot re-encode the key", path);
    ret->pem = strndup(data, (size_t)len);
    if (!ret->pem)
        return err_set(e, -E_NOMEM, "out of memory");
    ret->len = (size_t)len;
    ret->alg = alg;
    return 0;
}

void admin_pubkey_release(struct admin_pubkey *k)
{
    free(k->pem);
    memset(k, 0, sizeof *k);
}

int admin_pubkey_store(struct store *s, const char *owner, int object_type,
                       const struct admin_pubkey *k, int64_t expires_at, char ret_kid[21],
                       struct err *e)
{
    char kid[21], key[REPO_KEY_MAX];
    id_new(kid);
    if (repo_key(key, "authnkey/%s/%s", owner, kid) < 0)
        return err_set(e, -E_INVALID, "owner id too long");
    Koderid__V2__AuthnKey ak = KODERID__V2__AUTHN_KEY__INIT;
    ak.id = kid;
    ak.object_id = (char *)owner;
    ak.object_type = object_type;
    ak.public_key.data = (uint8_t *)k->pem;
    ak.public_key.len = k->len;
    ak.expires_at = expires_at;
    ak.enabled = true;
    ak.source = "v2";
    int r = repo_cas(s, key, 0, &ak.base, 0, NULL, e);
    if (r < 0)
        return r;
    memcpy(ret_kid, kid, sizeof kid);
    return 0;
}

int admin_user_find(struct store *s, const char *id_or_login, int want_type,
                    Koderid__V2__User **ret, uint64_t *ret_version, struct err *e)
{
    char key[REPO_KEY_MAX];
    Koderid__V2__User *u = NULL;
    uint64_t version = 0;
    struct err ge = {0};
    int r = repo_key(key, "user/%s", id_or_login) < 0
                ? -E_NOTFOUND
                : repo_get(s, key, &koderid__v2__user__descriptor, (ProtobufCMessage **)&u,
                           &version, &ge);
    if (r == -E_NOTFOUND) {
        /* A login name: read the id, then the record with its version. */
        char lower[REPO_KEY_MAX];
        _cleanup_free_ char *id = NULL;
        repo_lower(id_or_login, lower, sizeof lower);
        r = repo_key(key, "login/%s", lower) < 0 ? -E_NOTFOUND : repo_get_str(s, key, &id, &ge);
        if (r == 0)
            r = repo_key(key, "user/%s", id) < 0 ? -E_NOTFOUND
                                                 : repo_get(s, key, &koderid__v2__user__descriptor,
                                                            (ProtobufCMessage **)&u, &version, &ge);
    }
    if (r == 0 && want_type && u->type != want_type) {
        koderid__v2__user__free_unpacked(u, NULL);
        return err_set(e, -E_NOTFOUND, "user '%.80s' is not a %s user", id_or_login,
                       want_type == 2 ? "machine" : "human");
    }
    if (r == -E_NOTFOUND)
        return err_set(e, r, "no user '%.80s' (by id or login name)", id_or_login);
    if (r < 0)
        return err_set(e, r, "%s", ge.msg);
    *ret = u;
    if (ret_version)
        *ret_version = version;
    return 0;
}

int admin_owner(struct store *s, const char *issuer, const char *org, const char *project,
                const char *flag, char **ret_org, char **ret_project, struct err *e)
{
    struct err ge = {0};
    int r;
    if (project) {
        Koderid__V2__Project *p = NULL;
        if ((r = repo_project_get(s, project, &p, &ge)) < 0)
            return err_set(e, r, "--project '%.60s': %s", project,
                           r == -E_NOTFOUND ? "no such project" : ge.msg);
        *ret_org = strdup(p->org_id ? p->org_id : "");
        *ret_project = strdup(project);
        koderid__v2__project__free_unpacked(p, NULL);
    } else if (org) {
        Koderid__V2__Org *o = NULL;
        if ((r = repo_org_get(s, org, &o, &ge)) < 0)
            return err_set(e, r, "--org '%.60s': %s", org,
                           r == -E_NOTFOUND ? "no such org" : ge.msg);
        koderid__v2__org__free_unpacked(o, NULL);
        *ret_org = strdup(org);
        *ret_project = NULL;
        if (!*ret_org)
            return err_set(e, -E_NOMEM, "out of memory");
        return 0;
    } else {
        return cli_default_org_project(s, issuer, flag, ret_org, ret_project, e);
    }
    if (!*ret_org || !*ret_project)
        return err_set(e, -E_NOMEM, "out of memory");
    return 0;
}

int admin_parse(const char *cmd, int *argcp, char **argv, const struct option *opts,
                struct admin_args *a)
{
    int r, c;
    if ((r = cli_common_args(cmd, argcp, argv, &a->co)) != 0)
        return r;
    int argc = *argcp;
    if ((r = cli_check_options(cmd, argc, argv, opts)) != 0)
        return r;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const struct option *o = opts;
        while (o->name && o->val != c)
            o++;
        if (c == '?' || !o->name || c < 0 || (size_t)c >= a->nvals)
            return cli_usage(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        const char *v = optarg ? optarg : "";
        if (c == a->multi) {
            if (a->nmulti >= a->multi_max)
                return cli_usage(cmd, "--%s: at most %zu", o->name, a->multi_max);
            a->multi_vals[a->nmulti++] = v;
        } else if (a->vals[c]) {
            return cli_usage(cmd, "--%s given twice", o->name);
        } else {
            a->vals[c] = v;
        }
    }
    if (optind < argc) /* no admin command takes operands */
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    return 0;
}

int admin_list(struct store *s, const char *prefix, admin_list_cb cb, bool json, const char *filter)
{
    _cleanup_(json_decrefp) json_t *arr = json_array();
    struct admin_list l = {s, arr, json, filter};
    struct err e = {0};
    if (!arr || cli_scan(s, prefix, cb, &l, &e) < 0)
        return cli_fail("store: %s", e.msg);
    if (json)
        cli_print_json(arr);
    return CLI_EXIT_OK;
}

int admin_parse_expires(const char *cmd, const char *s, int64_t *ret)
{
    if (cli_parse_time(s, ret) < 0)
        return cli_usage(cmd,
                         "--expires: '%.40s' is not YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or unix "
                         "seconds",
                         s);
    if (*ret <= (int64_t)time(NULL))
        return cli_usage(cmd, "--expires: '%.40s' is in the past", s);
    return 0;
}

/* One registered key, as `key list --json` and `machine list --json` show it. */
static json_t *key_json(const Koderid__V2__AuthnKey *k)
{
    json_t *o = json_object();
    json_object_set_new(o, "key_id", json_string(k->id ? k->id : ""));
    json_object_set_new(o, "expires_at", json_integer(k->expires_at));
    json_object_set_new(o, "enabled", json_boolean(k->enabled));
    json_object_set_new(o, "source", json_string(k->source ? k->source : ""));
    return o;
}

static int keys_cb(const struct store_entry *it, void *arg, struct err *e)
{
    Koderid__V2__AuthnKey *k = koderid__v2__authn_key__unpack(NULL, it->value.len, it->value.data);
    if (!k)
        return 0;
    json_t *o = key_json(k);
    koderid__v2__authn_key__free_unpacked(k, NULL);
    if (!o || json_array_append_new(arg, o) < 0)
        return err_set(e, -E_NOMEM, "out of memory");
    return 0;
}

json_t *admin_keys_of(struct store *s, const char *owner, struct err *e)
{
    char prefix[REPO_KEY_MAX];
    if (repo_key(prefix, "authnkey/%s/", owner) < 0) {
        err_set(e, -E_INVALID, "id too long");
        return NULL;
    }
    json_t *arr = json_array();
    if (!arr || cli_scan(s, prefix, keys_cb, arr, e) < 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static void print_time(int64_t t)
{
    char buf[32];
    struct tm tm;
    time_t tt = (time_t)t;
    if (t > 0 && gmtime_r(&tt, &tm) && strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm))
        printf("%s", buf);
    else
        printf("never");
}

enum { KEY_OWNER, KEY_FILE, KEY_EXPIRES, KEY_ID, KEY_JSON };

int admin_key_cmd(const struct admin_key_owner *o, int argc, char **argv)
{
    const char *CMD = o->cmd;
    const struct option add_opts[] = {
        {o->opt, required_argument, NULL, KEY_OWNER},
        {"public-key-file", required_argument, NULL, KEY_FILE},
        {"expires", required_argument, NULL, KEY_EXPIRES},
        {"json", no_argument, NULL, KEY_JSON},
        {NULL, 0, NULL, 0},
    };
    const struct option remove_opts[] = {
        {o->opt, required_argument, NULL, KEY_OWNER},
        {"key-id", required_argument, NULL, KEY_ID},
        {NULL, 0, NULL, 0},
    };
    const struct option list_opts[] = {
        {o->opt, required_argument, NULL, KEY_OWNER},
        {"json", no_argument, NULL, KEY_JSON},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2 || argv[1][0] == '-')
        return cli_usage(CMD, "key needs a subcommand (add, remove, list), which comes first");
    const char *sub = argv[1];
    const struct option *opts = strcmp(sub, "add") == 0      ? add_opts
                                : strcmp(sub, "remove") == 0 ? remove_opts
                                : strcmp(sub, "list") == 0   ? list_opts
                                                             : NULL;
    if (!opts)
        return cli_usage(CMD, "unknown key subcommand '%.40s'", sub);
    const char *v[KEY_JSON + 1] = {0};
    struct admin_args a = {.vals = v, .nvals = ARRAY_SIZE(v), .multi = -1};
    int r;
    int sub_argc = argc - 1;
    if ((r = admin_parse(CMD, &sub_argc, argv + 1, opts, &a)) != 0)
        return r;
    if (!v[KEY_OWNER])
        return cli_usage(CMD, "key %s needs %s", sub, o->opt_usage);
    int64_t expires = 0;
    struct admin_pubkey pk = {0};
    struct err e = {0};
    if (opts == add_opts) {
        if (!v[KEY_FILE])
            return cli_usage(CMD, "key add needs --public-key-file PEM");
        if (v[KEY_EXPIRES] && (r = admin_parse_expires(CMD, v[KEY_EXPIRES], &expires)) != 0)
            return r;
        /* Read before cli_open(), which may drop root's rights (server/privdrop.h). */
        if (admin_pubkey_read(v[KEY_FILE], &pk, &e) < 0)
            return cli_fail("--public-key-file: %s", e.msg);
    } else if (opts == remove_opts && !v[KEY_ID]) {
        return cli_usage(CMD, "key remove needs --key-id KID");
    }

    struct cli cl;
    if ((r = cli_open(&cl, &a.co, opts == list_opts ? CLI_STORE | CLI_READ_ONLY : CLI_STORE)) !=
        0) {
        admin_pubkey_release(&pk);
        return r;
    }
    _cleanup_free_ char *owner = NULL;
    int status = CLI_EXIT_FAIL;
    char kid[21], key[REPO_KEY_MAX];
    if (o->find(cl.store, v[KEY_OWNER], opts == add_opts, &owner, &e) < 0) {
        cli_fail("%s", e.msg);
    } else if (opts == add_opts) {
        if (admin_pubkey_store(cl.store, owner, o->object_type, &pk, expires, kid, &e) < 0) {
            cli_fail("store: %s", e.msg);
        } else {
            if (v[KEY_JSON]) {
                _cleanup_(json_decrefp) json_t *j = json_object();
                json_object_set_new(j, "key_id", json_string(kid));
                json_object_set_new(j, o->id_field, json_string(owner));
                json_object_set_new(j, "alg", json_string(pk.alg));
                json_object_set_new(j, "expires_at", json_integer(expires));
                cli_print_json(j);
            } else {
                printf("%s\n", kid);
            }
            status = CLI_EXIT_OK;
        }
    } else if (opts == remove_opts) {
        r = strchr(v[KEY_ID], '/') || repo_key(key, "authnkey/%s/%s", owner, v[KEY_ID]) < 0
                ? -E_NOTFOUND
                : store_del(cl.store, key, strlen(key), 0, &e);
        if (r == -E_NOTFOUND)
            cli_fail("%s has no key '%.40s'", v[KEY_OWNER], v[KEY_ID]);
        else if (r < 0)
            cli_fail("store: %s", e.msg);
        else
            status = CLI_EXIT_OK;
    } else {
        _cleanup_(json_decrefp) json_t *keys = admin_keys_of(cl.store, owner, &e);
        if (!keys) {
            cli_fail("store: %s", e.msg);
        } else if (v[KEY_JSON]) {
            cli_print_json(keys);
            status = CLI_EXIT_OK;
        } else {
            size_t i;
            json_t *k;
            json_array_foreach (keys, i, k) {
                printf("%s\t", json_string_value(json_object_get(k, "key_id")));
                print_time(json_integer_value(json_object_get(k, "expires_at")));
                printf("\n");
            }
            status = CLI_EXIT_OK;
        }
    }
    admin_pubkey_release(&pk);
    cli_close(&cl);
    return status;
}

int admin_new_client(struct store *s, const char *issuer, const char *project, const char *want_id,
                     char new_id[21], const char **ret_client_id, char **ret_org,
                     char **ret_project, struct err *e)
{
    int r = admin_owner(s, issuer, NULL, project, "--project ID", ret_org, ret_project, e);
    if (r < 0)
        return r;
    if (!want_id) {
        id_new(new_id);
        want_id = new_id;
    }
    _cleanup_(repo_msg_freep) Koderid__V2__Client *existing = NULL;
    r = repo_client_get(s, want_id, &existing, e);
    if (r == 0)
        return err_set(e, -E_CONFLICT, "client '%s' already exists", want_id);
    if (r != -E_NOTFOUND)
        return r;
    *ret_client_id = want_id;
    return 0;
}

void admin_client_init(Koderid__V2__Client *c, Koderid__V2__ClientKind kind, char app_id[21],
                       const char *client_id, const char *project_id, const char *org_id,
                       const char *name, char *hash, int auth_method)
{
    koderid__v2__client__init(c);
    id_new(app_id);
    c->client_id = (char *)client_id;
    c->app_id = app_id;
    c->project_id = (char *)project_id;
    c->org_id = (char *)org_id;
    c->name = (char *)name;
    c->kind = kind;
    c->state = 1;
    c->secret_hash = hash ? hash : (char *)"";
    c->auth_method = auth_method;
    c->created_at = c->changed_at = (int64_t)time(NULL);
    c->source = (char *)"v2";
}
