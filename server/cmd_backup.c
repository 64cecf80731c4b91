/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `export FILE` and `import-backup FILE`: a consistent dump of the store's tenant and its
 * restore (format and guarantees in storage/backup.h). The backup holds password and secret
 * hashes and encrypted keys, so export creates it 0600 and never over an existing file. A
 * failed export empties and removes what it wrote; a partial file could not be imported anyway
 * (no trailer, no checksum).
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

/*
 * The backup file is created before cli_open(): that may switch the process to the data dir's
 * owner (server/privdrop.h), who cannot write where root keeps backups. O_EXCL: never over an
 * existing file. The folder is opened now too, to sync the new name later.
 */
static int create_backup_file(const char *path, int *ret_fd, int *ret_dirfd, struct err *e)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return err_set(e, errno == EEXIST ? -E_EXISTS : -E_IO, "'%.100s': %s%s", path,
                       strerror(errno), errno == EEXIST ? ": choose a new file name" : "");
    _cleanup_free_ char *copy = strdup(path);
    *ret_dirfd = copy ? open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    *ret_fd = fd;
    return 0;
}

int cmd_export(int argc, char **argv)
{
    struct cli_opts co;
    int r;

    if ((r = cli_common_args("export", &argc, argv, &co)) != 0)
        return r;
    /* Not a file named "--frob": export has no options of its own ("-" is stdout); after
     * "--" every word is a file name. */
    const char *path = NULL;
    bool operands = false;
    for (int i = 1; i < argc; i++) {
        if (!operands && strcmp(argv[i], "--") == 0)
            operands = true;
        else if (!operands && argv[i][0] == '-' && argv[i][1])
            return cli_usage("export", "unknown option '%.40s'", argv[i]);
        else if (path)
            return cli_usage("export", "unexpected argument '%s'", argv[i]);
        else
            path = argv[i];
    }
    if (!path)
        return cli_usage("export", "missing FILE");

    struct err e = {0};
    bool to_stdout = strcmp(path, "-") == 0;
    if (to_stdout && isatty(STDOUT_FILENO))
        return cli_usage("export", "not writing a binary dump to a terminal");
    _cleanup_close_ int dirfd = -1;
    int fd = -1;
    if (!to_stdout && create_backup_file(path, &fd, &dirfd, &e) < 0)
        return cli_fail("export: %s", e.msg);
    _cleanup_(fclosep) FILE *f = to_stdout ? NULL : fdopen(fd, "w");
    if (!to_stdout && !f) {
        close(fd);
        unlink(path);
        return cli_fail("export: '%s': %s", path, strerror(errno));
    }

    struct cli cl;
    if ((r = cli_open(&cl, &co, CLI_STORE | CLI_READ_ONLY)) != 0) {
        if (f && ftruncate(fileno(f), 0) == 0)
            unlink(path);
        return r;
    }
    struct store_backup_stats st = {0};
    r = store_export(cl.store, to_stdout ? stdout : f, &st, &e); /* flushes and fsyncs */
    if (r == 0 && f && fclose(TAKE_PTR(f)) != 0)
        r = err_set(&e, -E_IO, "'%.100s': %s", path, strerror(errno));
    int status = CLI_EXIT_OK;
    if (r < 0) {
        /* Empty what was written (an import would refuse it anyway: no trailer). */
        if (f)
            (void)ftruncate(fileno(f), 0);
        if (!to_stdout && unlink(path) < 0)
            status =
                cli_fail("export: %s (the incomplete '%s' is left empty: remove it)", e.msg, path);
        else
            status = cli_fail("export: %s", e.msg);
    } else {
        if (dirfd >= 0)
            fsync(dirfd);
        fprintf(to_stdout ? stderr : stdout,
                "exported %" PRIu64 " entries (%" PRIu64 " bytes) of tenant %" PRIu64 " to %s\n",
                st.entries, st.bytes, cl.store->tenant, to_stdout ? "stdout" : path);
    }
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
    bool operands = false;
    for (int i = 1; i < argc; i++) {
        if (!operands && strcmp(argv[i], "--") == 0)
            operands = true;
        else if (!operands && strcmp(argv[i], "--merge") == 0)
            flags |= STORE_IMPORT_MERGE;
        else if (!operands && strcmp(argv[i], "--replace") == 0)
            flags |= STORE_IMPORT_REPLACE;
        else if (!operands && argv[i][0] == '-' && argv[i][1] != '\0')
            return cli_usage("import-backup", "unknown option '%s'", argv[i]);
        else if (path)
            return cli_usage("import-backup", "unexpected argument '%s'", argv[i]);
        else
            path = argv[i];
    }
    if (!path)
        return cli_usage("import-backup", "missing FILE");
    if ((flags & STORE_IMPORT_MERGE) && (flags & STORE_IMPORT_REPLACE))
        return cli_usage("import-backup", "--merge and --replace exclude each other");

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
