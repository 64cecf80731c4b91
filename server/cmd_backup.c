/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `export FILE` and `import-backup FILE`: a consistent dump of the store's tenant and its
 * restore (format and guarantees in storage/backup.h). The backup holds password and secret
 * hashes and encrypted keys, so export creates it 0600, never over an existing file, and only
 * gives it its name once it is complete and synced: a file under that name is always whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "server/cli.h"
#include "server/commands.h"
#include "storage/backup.h"

static void fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}

/* Syncs the folder holding @path so a rename into it survives a crash. */
static void sync_dir_of(const char *path)
{
    _cleanup_free_ char *copy = strdup(path);
    if (!copy)
        return;
    _cleanup_close_ int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0)
        fsync(fd);
}

static int export_to_path(struct store *s, const char *path, struct store_backup_stats *st,
                          struct err *e)
{
    struct stat sb;
    if (lstat(path, &sb) == 0)
        return err_set(e, -E_EXISTS, "'%.100s' exists: choose a new file name", path);
    size_t n = strlen(path);
    _cleanup_free_ char *tmp = malloc(n + 16);
    if (!tmp)
        return err_set(e, -E_NOMEM, "out of memory");
    snprintf(tmp, n + 16, "%s.part-XXXXXX", path);
    int fd = mkstemp(tmp); /* 0600 */
    if (fd < 0)
        return err_set(e, -E_IO, "'%.100s': %s", path, strerror(errno));
    _cleanup_(fclosep) FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return err_set(e, -E_IO, "'%.100s': %s", path, strerror(errno));
    }
    int r = store_export(s, f, st, e); /* flushes and fsyncs */
    if (r == 0 && fclose(TAKE_PTR(f)) != 0)
        r = err_set(e, -E_IO, "'%.100s': %s", path, strerror(errno));
    /* link() instead of rename(): never replaces a file that appeared meanwhile. */
    if (r == 0 && link(tmp, path) < 0)
        r = err_set(e, errno == EEXIST ? -E_EXISTS : -E_IO, "'%.100s': %s", path, strerror(errno));
    unlink(tmp);
    if (r == 0)
        sync_dir_of(path);
    return r;
}

int cmd_export(int argc, char **argv)
{
    struct cli_opts co;
    int r;

    if ((r = cli_common_args("export", &argc, argv, &co)) != 0)
        return r;
    if (argc < 2)
        return cli_usage("export", "missing FILE");
    if (argc > 2)
        return cli_usage("export", "unexpected argument '%s'", argv[2]);
    const char *path = argv[1];

    struct cli cl;
    if ((r = cli_open(&cl, &co, CLI_STORE | CLI_READ_ONLY)) != 0)
        return r;
    struct err e = {0};
    struct store_backup_stats st = {0};
    bool to_stdout = strcmp(path, "-") == 0;
    if (to_stdout)
        r = store_export(cl.store, stdout, &st, &e);
    else
        r = export_to_path(cl.store, path, &st, &e);
    int status = CLI_EXIT_OK;
    if (r < 0)
        status = cli_fail("export: %s", e.msg);
    else
        fprintf(to_stdout ? stderr : stdout,
                "exported %" PRIu64 " entries (%" PRIu64 " bytes) of tenant %" PRIu64 " to %s\n",
                st.entries, st.bytes, cl.store->tenant, to_stdout ? "stdout" : path);
    cli_close(&cl);
    return status;
}

int cmd_import_backup(int argc, char **argv)
{
    struct cli_opts co;
    int r;
    unsigned flags = 0;

    if ((r = cli_common_args("import-backup", &argc, argv, &co)) != 0)
        return r;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--merge") == 0)
            flags |= STORE_IMPORT_MERGE;
        else if (argv[i][0] == '-' && argv[i][1] != '\0')
            return cli_usage("import-backup", "unknown option '%s'", argv[i]);
        else if (path)
            return cli_usage("import-backup", "unexpected argument '%s'", argv[i]);
        else
            path = argv[i];
    }
    if (!path)
        return cli_usage("import-backup", "missing FILE");

    _cleanup_(fclosep) FILE *f = NULL;
    if (strcmp(path, "-") != 0 && !(f = fopen(path, "re")))
        return cli_fail("import-backup: '%s': %s", path, strerror(errno));

    struct cli cl;
    if ((r = cli_open(&cl, &co, CLI_STORE)) != 0)
        return r;
    struct err e = {0};
    struct store_backup_stats st = {0};
    int status = CLI_EXIT_OK;
    r = store_import_backup(cl.store, f ? f : stdin, flags, &st, &e);
    if (r < 0)
        status = cli_fail("import-backup: %s", e.msg);
    else
        printf("imported %" PRIu64 " entries into tenant %" PRIu64 " (%" PRIu64
               " skipped: expired since the export)\n",
               st.written, cl.store->tenant, st.skipped);
    cli_close(&cl);
    return status;
}
