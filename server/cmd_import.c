/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `import-zitadel --dsn DSN [--instance ID] [--dry-run] [--report FILE] [--config FILE]`:
 * moves what v1 (Zitadel on PostgreSQL) knows into the store configured by --config (see
 * migrate/zitadel.h and README "import-zitadel"). Exit status 0 when every org, project, app
 * and user was imported, 1 otherwise or on a failure at run time, 2 for a usage error.
 * The DSN is never printed: libpq reads passwords from PGPASSWORD or ~/.pgpass just as well.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "migrate/pg.h"
#include "migrate/zitadel.h"
#include "server/cli.h"
#include "server/commands.h"

#define CMD "import-zitadel"

/*
 * A dry run against an LMDB data dir that holds no store yet plans against this empty,
 * read-only store instead of creating one: a dry run leaves no file behind.
 */
static int empty_get(struct store *s, const void *key, size_t klen, struct store_value *ret,
                     struct err *e)
{
    return err_set(e, -E_NOTFOUND, "not found");
}

static int empty_put(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
                     int64_t ttl_ms, uint64_t *ret_version, struct err *e)
{
    return err_set(e, -E_PERMISSION, "dry run: the store is read-only");
}

static int empty_cas(struct store *s, const void *key, size_t klen, uint64_t expected_version,
                     const void *val, size_t vlen, int64_t ttl_ms, uint64_t *ret_version,
                     struct err *e)
{
    return err_set(e, -E_PERMISSION, "dry run: the store is read-only");
}

static int empty_del(struct store *s, const void *key, size_t klen, uint64_t expected_version,
                     struct err *e)
{
    return err_set(e, -E_PERMISSION, "dry run: the store is read-only");
}

static int empty_scan(struct store *s, const void *prefix, size_t plen, const void *start_after,
                      size_t salen, size_t limit, struct store_list *ret, struct err *e)
{
    memset(ret, 0, sizeof *ret);
    return 0;
}

static int empty_ping(struct store *s, struct err *e)
{
    return 0;
}

static int empty_purge(struct store *s, size_t *ret_purged, struct err *e)
{
    if (ret_purged)
        *ret_purged = 0;
    return 0;
}

static void empty_close(struct store *s)
{
}

static const struct store_ops empty_ops = {
    "empty",    empty_get,  empty_put,   empty_cas,   empty_del,
    empty_scan, empty_ping, empty_purge, empty_close,
};

static bool lmdb_store_exists(const struct config *cfg)
{
    char path[4096];
    struct stat st;
    if (!cfg->storage || strcmp(cfg->storage, "lmdb") != 0 || !cfg->data_dir)
        return true; /* other backends: let them answer */
    snprintf(path, sizeof path, "%s/data.mdb", cfg->data_dir);
    return stat(path, &st) == 0;
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]; advances *i over a separate value. */
static int opt_value(const char *name, int argc, char **argv, int *i, const char **ret)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *ret = a + n + 1;
    } else if (a[n] == '\0') {
        if (*i + 1 >= argc)
            return -1;
        *ret = argv[++*i];
    } else {
        return 0;
    }
    return **ret ? 1 : -1;
}

int cmd_import_zitadel(int argc, char **argv)
{
    struct cli_opts co;
    const char *dsn = NULL, *instance = NULL, *report = NULL;
    bool dry_run = false;
    int r;

    if ((r = cli_common_args(CMD, &argc, argv, &co)) != 0)
        return r;
    for (int i = 1; i < argc; i++) {
        int m;
        if (strcmp(argv[i], "--") == 0) { /* the end of options: it takes no arguments */
            if (i + 1 < argc)
                return cli_usage(CMD, "unexpected argument '%s'", argv[i + 1]);
            break;
        }
        if (strcmp(argv[i], "--dry-run") == 0) {
            dry_run = true;
            continue;
        }
        if ((m = opt_value("--dsn", argc, argv, &i, &dsn)) ||
            (m = opt_value("--instance", argc, argv, &i, &instance)) ||
            (m = opt_value("--report", argc, argv, &i, &report))) {
            if (m < 0)
                return cli_usage(CMD, "%s needs a value", argv[i]);
            continue;
        }
        if (strncmp(argv[i], "-", 1) == 0)
            return cli_usage(CMD, "unknown option '%s'", argv[i]);
        return cli_usage(CMD, "unexpected argument '%s'", argv[i]);
    }
    if (!dsn)
        return cli_usage(CMD, "--dsn is required (a libpq connection string or URI)");

    /*
     * What root may read or write but the data dir's owner may not (~/.pgpass, a report under
     * /root) is opened before cli_open(), which may switch to that owner (server/privdrop.h).
     */
    _cleanup_(fclosep) FILE *report_f = NULL;
    if (report) {
        int fd = open(report, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || !(report_f = fdopen(fd, "w"))) {
            if (fd >= 0)
                close(fd);
            return cli_fail("%s: cannot create report '%s': %s", CMD, report, strerror(errno));
        }
    }
    struct err pe = {0};
    struct pg *pg = NULL;
    if ((r = pg_open(dsn, &pg, &pe)) < 0)
        return cli_fail("%s: %s", CMD, pe.msg);

    struct cli cl;
    struct store empty = {&empty_ops, 0};
    struct store *store;
    if ((r = cli_open(&cl, &co, 0)) != 0) {
        pg_close(pg);
        return r;
    }
    if (dry_run && !lmdb_store_exists(&cl.cfg)) {
        store = &empty;
    } else {
        cli_close(&cl);
        if ((r = cli_open(&cl, &co, CLI_STORE | (dry_run ? CLI_READ_ONLY : 0))) != 0) {
            pg_close(pg);
            return r;
        }
        store = cl.store;
    }

    struct zitadel_options opt = {dsn, instance, dry_run, stdout, pg};
    struct zitadel_report *rep = NULL;
    struct err e = {0};
    int status;
    r = zitadel_import(store, &opt, &rep, &e);
    fflush(stdout);
    if (r == -E_USAGE)
        status = cli_usage(CMD, "%s", e.msg);
    else if (r < 0)
        status = cli_fail("%s: %s", CMD, e.msg);
    else if (!zitadel_report_complete(rep))
        status = cli_fail("%s: not every org, project, app and user was imported (see the "
                          "skipped objects above%s)",
                          CMD, report ? " and in the report" : "");
    else
        status = CLI_EXIT_OK;
    if (rep && report) {
        struct err re = {0};
        if (zitadel_report_write(rep, report_f, &re) < 0)
            status = cli_fail("%s: %s", CMD, re.msg);
    }
    zitadel_report_free(rep);
    pg_close(pg);
    cli_close(&cl);
    return status;
}
