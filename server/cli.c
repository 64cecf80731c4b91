/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The helpers every command shares: common flags, one-line errors, opening config + store +
 * protocol context, and the default org/project of a fresh install.
 */
#include "cli.h"

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

int cli_count_prefix(struct store *s, const char *prefix, size_t *ret_n, struct err *e)
{
    size_t n = 0;
    _cleanup_free_ char *cursor = NULL;
    size_t clen = 0;
    for (;;) {
        struct store_list l = {0};
        int r = store_scan(s, prefix, strlen(prefix), cursor, clen, 1000, &l, e);
        if (r < 0)
            return r;
        n += l.n;
        bool more = l.more && l.n > 0;
        if (more) {
            free(cursor);
            clen = l.items[l.n - 1].klen;
            cursor = malloc(clen);
            if (!cursor) {
                store_list_release(&l);
                return err_set(e, -E_NOMEM, "out of memory");
            }
            memcpy(cursor, l.items[l.n - 1].key, clen);
        }
        store_list_release(&l);
        if (!more)
            break;
    }
    *ret_n = n;
    return 0;
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

int cli_default_org_project(struct store *s, const char *issuer, char **ret_org, char **ret_project,
                            struct err *e)
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
                           "the store has orgs but no default one: give --org / --project");
        r = create_defaults(s, issuer, ret_org, ret_project, e);
        if (r <= 0)
            return r;
    }
    return err_set(e, -E_CONFLICT, "default org: concurrent creation did not settle");
}
