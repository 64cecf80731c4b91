/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The helpers every command shares: common flags, one-line errors, opening config + store +
 * protocol context, and the default org/project of a fresh install.
 */
#include "cli.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/rand.h"
#include "oidc/oidc.h"
#include "server/metrics.h"
#include "server/privdrop.h"
#include "storage/repo.h"

extern char **environ;

int cli_fail(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    fprintf(stderr, "%s: %s\n", CLI_PROG, msg);
    return CLI_EXIT_FAIL;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    fprintf(stderr, "%s %s: %s (see '%s help %s')\n", CLI_PROG, cmd, msg, CLI_PROG, cmd);
    return CLI_EXIT_USAGE;
}

int cli_common_args(const char *cmd, int *argc, char **argv, struct cli_opts *o)
{
    int out = 1;
    memset(o, 0, sizeof *o);
    for (int i = 1; i < *argc; i++) {
        char *a = argv[i];
        const char *val = NULL;
        bool is_config = false, is_set = false;

        if (strcmp(a, "--") == 0) {
            /* Everything after "--" belongs to the command. */
            for (; i < *argc; i++)
                argv[out++] = argv[i];
            break;
        }
        if (strcmp(a, "--config") == 0 || strcmp(a, "--set") == 0) {
            is_config = a[2] == 'c';
            is_set = !is_config;
            if (i + 1 >= *argc)
                return cli_usage(cmd, "%s needs a value", a);
            val = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            is_config = true;
            val = a + 9;
        } else if (strncmp(a, "--set=", 6) == 0) {
            is_set = true;
            val = a + 6;
        }
        if (is_config) {
            if (!*val)
                return cli_usage(cmd, "--config needs a file");
            o->config = val;
        } else if (is_set) {
            if (!strchr(val, '=') || o->nsets >= CLI_SETS_MAX)
                return cli_usage(cmd, "--set needs KEY=VALUE (at most %d)", CLI_SETS_MAX);
            o->sets[o->nsets++] = (char *)val;
        } else {
            argv[out++] = a;
        }
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

int cli_open(struct cli *c, const struct cli_opts *o, unsigned flags)
{
    struct err e = {0};
    int r;

    memset(c, 0, sizeof *c);
    r = config_load(&c->cfg, o->config, environ, o->sets, o->nsets, &e);
    if (r < 0) {
        cli_close(c);
        return cli_fail("config: %s", e.msg);
    }
    log_set_level((enum log_level)c->cfg.log_level);

    if (flags & (CLI_STORE | CLI_OIDC)) {
        struct store_config sc = {
            .backend = c->cfg.storage,
            .tenant = strcmp(c->cfg.storage, "kdbnext") == 0 ? c->cfg.kdbnext_tenant : 1,
            .data_dir = c->cfg.data_dir,
            .lmdb_map_size = (size_t)c->cfg.lmdb_map_size,
            .read_only = (flags & CLI_READ_ONLY) != 0,
            .kdb_address = c->cfg.kdbnext_address,
            .kdb_tls_ca_file = c->cfg.kdbnext_tls_ca_file,
            .kdb_tls_cert_file = c->cfg.kdbnext_tls_cert_file,
            .kdb_tls_key_file = c->cfg.kdbnext_tls_key_file,
            .kdb_token_file = c->cfg.kdbnext_token_file,
            .kdb_timeout_ms = c->cfg.kdbnext_timeout_ms,
            .kdb_plaintext = c->cfg.kdbnext_plaintext,
        };
        /* As root, become the owner of the store first, so nothing in it ends up root's
         * (server/privdrop.h). Files a command needs as root are opened before cli_open(). */
        if (strcmp(c->cfg.storage, "lmdb") == 0 &&
            privdrop_to_data_owner(c->cfg.data_dir, NULL, NULL, &e) < 0) {
            cli_close(c);
            return cli_fail("%s", e.msg);
        }
        r = store_open(&sc, &c->store, &e);
        if (r < 0) {
            cli_close(c);
            return cli_fail("store: %s", e.msg);
        }
        /* Every store call is timed into /metrics (server/metrics.h). */
        struct store *timed = NULL;
        if (metrics_store_wrap(c->store, &timed, &e) < 0) {
            cli_close(c);
            return cli_fail("store: %s", e.msg);
        }
        c->store = timed;
    }
    if (flags & CLI_OIDC) {
        struct oidc_config oc = {
            .issuer = c->cfg.issuer,
            .master_key_file = c->cfg.master_key_file,
            .create_master_key = (flags & CLI_CREATE_MASTER) != 0,
            .yescrypt_cost = c->cfg.password_yescrypt_cost,
            .hash_workers = c->cfg.password_hash_workers,
            .hash_queue_max = c->cfg.password_hash_queue_max,
            .worker_threads = c->cfg.pool_threads,
        };
        r = oidc_ctx_new(&oc, c->store, &c->oidc, &e);
        if (r < 0) {
            cli_close(c);
            return cli_fail("%s", e.msg);
        }
    }
    return 0;
}

void cli_close(struct cli *c)
{
    oidc_ctx_free(c->oidc);
    c->oidc = NULL;
    store_close(c->store);
    c->store = NULL;
    config_release(&c->cfg);
}

int cli_scan(struct store *s, const char *prefix,
             int (*fn)(const struct store_entry *it, void *arg, struct err *e), void *arg,
             struct err *e)
{
    _cleanup_free_ char *cursor = NULL;
    size_t clen = 0;
    for (;;) {
        struct store_list l = {0};
        int r = store_scan(s, prefix, strlen(prefix), cursor, clen, 500, &l, e);
        if (r < 0)
            return r;
        for (size_t i = 0; i < l.n && r == 0; i++)
            r = fn(&l.items[i], arg, e);
        bool more = r == 0 && l.more && l.n > 0;
        if (more) {
            free(cursor);
            clen = l.items[l.n - 1].klen;
            cursor = malloc(clen);
            if (!cursor)
                r = err_set(e, -E_NOMEM, "out of memory");
            else
                memcpy(cursor, l.items[l.n - 1].key, clen);
        }
        store_list_release(&l);
        if (r != 0)
            return r;
        if (!more)
            return 0;
    }
}

static int count_cb(const struct store_entry *it, void *arg, struct err *e)
{
    (void)it;
    (void)e;
    (*(size_t *)arg)++;
    return 0;
}

int cli_count_prefix(struct store *s, const char *prefix, size_t *ret_n, struct err *e)
{
    size_t n = 0;
    int r = cli_scan(s, prefix, count_cb, &n, e);
    if (r < 0)
        return r;
    *ret_n = n;
    return 0;
}

static int scan_options(const char *cmd, int argc, char **argv, const struct option *opts)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            return 0;
        if (a[0] != '-' || a[1] == '\0')
            continue; /* an argument, or "-" */
        if (a[1] != '-')
            return cli_usage(cmd, "unknown option '%.60s'", a);
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        const struct option *o = opts;
        for (; o->name; o++)
            if (strlen(o->name) == len && strncmp(o->name, a + 2, len) == 0)
                break;
        if (!o->name)
            return cli_usage(cmd, "unknown option '%.*s' (option names are never abbreviated)",
                             (int)(len > 60 ? 60 : len) + 2, a);
        if (o->has_arg == no_argument && eq)
            return cli_usage(cmd, "option '--%s' takes no value", o->name);
        if (o->has_arg == required_argument && !eq) {
            if (i + 1 >= argc)
                return cli_usage(cmd, "option '--%s' needs a value", o->name);
            i++; /* getopt_long takes the next word as the value, whatever it looks like */
        }
    }
    return 0;
}

int cli_check_options(const char *cmd, int argc, char **argv, const struct option *opts)
{
    int r = scan_options(cmd, argc, argv, opts);
    if (r == 0) {
        opterr = 0;
        optind = 1;
    }
    return r;
}

/*
 * Why bcrypt and not yescrypt: imported v1 secrets are bcrypt, so every secret goes through
 * one verifier with one known cost profile, and Zitadel-compatible tooling can still read the
 * hash. Why cost 10: a 64-character random secret (~380 bits) cannot be guessed at any cost,
 * so the cost only matters if the stored hashes leak together with a weak secret, which the
 * CLI never makes; the token endpoint rehashes to its own cost after the first successful
 * check (oidc/secret_rehash.c) and remembers a verified secret briefly.
 */
int cli_secret_new(char out[CLI_SECRET_LEN + 1], char **ret_hash)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd = calloc(1, sizeof *cd);
    char *res = NULL;
    if (!cd)
        return -1;
    if (rand_alnum(out, CLI_SECRET_LEN) == 0 &&
        crypt_gensalt_rn("$2b$", CLI_SECRET_BCRYPT_COST, NULL, 0, setting, sizeof setting)) {
        const char *h = crypt_rn(out, setting, cd, sizeof *cd);
        if (h && h[0] == '$')
            res = strdup(h);
    }
    OPENSSL_cleanse(cd, sizeof *cd);
    free(cd);
    if (!res) {
        OPENSSL_cleanse(out, CLI_SECRET_LEN + 1);
        return -1;
    }
    *ret_hash = res;
    return 0;
}

bool cli_valid_name(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > CLI_NAME_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

bool cli_valid_text(const char *s)
{
    if (strlen(s) > CLI_NAME_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

int cli_parse_time(const char *s, int64_t *ret)
{
    struct tm tm = {0};
    char tail = 0;
    int n = 0;
    if (strlen(s) > 32)
        return -1;
    if (strspn(s, "0123456789") == strlen(s) && *s && strlen(s) <= 12) {
        *ret = strtoll(s, NULL, 10);
        return 0;
    }
    if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) == 3 && n == 10 &&
        s[10] == '\0') {
        /* midnight UTC */
    } else if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                      &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &tail, &n) == 7 &&
               tail == 'Z' && n == 20 && s[20] == '\0') {
    } else {
        return -1;
    }
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_year < 1970)
        return -1;
    int mday = tm.tm_mday;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != mday) /* 2026-02-31 normalizes to March: refuse */
        return -1;
    *ret = (int64_t)t;
    return 0;
}

void cli_print_fields(bool json, const char *const (*fields)[2], size_t n)
{
    _cleanup_(json_decrefp) json_t *o = json ? json_object() : NULL;
    for (size_t i = 0; i < n; i++) {
        const char *name = fields[i][0], *val = fields[i][1];
        if (!val || !*val)
            continue;
        if (o)
            json_object_set_new(o, name, json_string(val));
        else
            printf("%s: %s\n", name, val);
        if (!o && strcmp(name, "client_secret") == 0)
            printf("(the secret is shown only now; it is stored as a hash)\n");
    }
    if (o)
        cli_print_json(o);
    fflush(stdout);
}

void cli_print_json(const json_t *j)
{
    _cleanup_free_ char *s = json_dumps(j, JSON_COMPACT);
    printf("%s\n", s ? s : "null");
    if (s)
        OPENSSL_cleanse(s, strlen(s)); /* it may hold a secret shown once */
}

static int create_defaults(struct store *s, const char *issuer, char **ret_org, char **ret_project,
                           struct err *e)
{
    char org_id[21], project_id[21], host[256], key[REPO_KEY_MAX];
    int64_t now = (int64_t)time(NULL);
    int r;

    if (config_issuer_host(issuer, host, sizeof host) < 0)
        return err_set(e, -E_CONFIG, "issuer '%s' has no host", issuer);
    id_new(org_id);
    id_new(project_id);

    Koderid__V2__Org org = KODERID__V2__ORG__INIT;
    org.id = org_id;
    org.name = host;
    org.primary_domain = host;
    org.state = 1;
    org.created_at = org.changed_at = now;
    org.source = "v2";
    Koderid__V2__Project p = KODERID__V2__PROJECT__INIT;
    p.id = project_id;
    p.org_id = org_id;
    p.name = "default";
    p.state = 1;
    p.created_at = p.changed_at = now;
    p.source = "v2";

    repo_key(key, "org/%s", org_id);
    if ((r = repo_put(s, key, &org.base, 0, NULL, e)) < 0)
        return r;
    repo_key(key, "project/%s", project_id);
    if ((r = repo_put(s, key, &p.base, 0, NULL, e)) < 0)
        return r;
    /* The marker is written last and only if absent: two commands racing on an empty store
     * agree on one default (the loser's org and project stay as unused records). */
    char both[64];
    snprintf(both, sizeof both, "%s/%s", org_id, project_id);
    r = store_cas(s, "meta/default", strlen("meta/default"), 0, both, strlen(both), 0, NULL, e);
    if (r == -E_CONFLICT) {
        repo_key(key, "project/%s", project_id);
        repo_del(s, key, NULL);
        repo_key(key, "org/%s", org_id);
        repo_del(s, key, NULL);
        err_clear(e);
        return 1; /* read the winner's */
    }
    if (r < 0)
        return r;
    *ret_org = strdup(org_id);
    *ret_project = strdup(project_id);
    if (!*ret_org || !*ret_project)
        return err_set(e, -E_NOMEM, "out of memory");
    return 0;
}

int cli_default_org_project(struct store *s, const char *issuer, const char *flag, char **ret_org,
                            char **ret_project, struct err *e)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        _cleanup_free_ char *both = NULL;
        int r = repo_get_str(s, "meta/default", &both, e);
        if (r == 0) {
            char *slash = strchr(both, '/');
            if (!slash)
                return err_set(e, -E_INTERNAL, "meta/default is malformed");
            *slash = '\0';
            *ret_org = strdup(both);
            *ret_project = strdup(slash + 1);
            if (!*ret_org || !*ret_project)
                return err_set(e, -E_NOMEM, "out of memory");
            return 0;
        }
        if (r != -E_NOTFOUND)
            return r;
        size_t norgs = 0;
        if ((r = cli_count_prefix(s, "org/", &norgs, e)) < 0)
            return r;
        if (norgs > 0)
            return err_set(e, -E_NOTFOUND,
                           "the store has orgs but no default one (imported from v1?): give %s "
                           "(ids: 'project list')",
                           flag);
        r = create_defaults(s, issuer, ret_org, ret_project, e);
        if (r <= 0)
            return r;
    }
    return err_set(e, -E_CONFLICT, "default org: concurrent creation did not settle");
}
