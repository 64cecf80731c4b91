/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `check`: like `nginx -t`. Validates the configuration, opens the store (read-only when the
 * backend can), checks the master key opens every stored signing key, and prints what is
 * there. Any problem is one line on stderr and exit status 1.
 */
#include <errno.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "oidc/keys.h"
#include "server/cli.h"
#include "server/commands.h"

int cmd_check(int argc, char **argv)
{
    struct cli_opts co;
    int r;

    if ((r = cli_common_args("check", &argc, argv, &co)) != 0)
        return r;
    int first = argc > 1 && strcmp(argv[1], "--") == 0 ? 2 : 1; /* "--" ends options */
    if (argc > first)
        return cli_usage("check", "unexpected argument '%s'", argv[first]);

    struct cli cl;
    if ((r = cli_open(&cl, &co, CLI_STORE | CLI_READ_ONLY)) != 0)
        return r;
    struct err e = {0};
    int status = CLI_EXIT_FAIL;
    size_t counts[4] = {0};
    static const char *const prefixes[4] = {"org/", "project/", "client/", "user/"};
    static const char *const names[4] = {"orgs", "projects", "clients", "users"};
    _cleanup_free_ struct oidc_key_info *keys = NULL;
    size_t nkeys = 0, nown = 0, checked = 0;
    unsigned char master[OIDC_MASTER_KEY_LEN];
    const char *master_state = "ok";

    if (store_ping(cl.store, &e) < 0) {
        cli_fail("store: %s", e.msg);
        goto out;
    }
    for (size_t i = 0; i < 4; i++)
        if (cli_count_prefix(cl.store, prefixes[i], &counts[i], &e) < 0) {
            cli_fail("store: %s", e.msg);
            goto out;
        }
    if (oidc_keys_list(cl.store, &keys, &nkeys, &e) < 0) {
        cli_fail("keys: %s", e.msg);
        goto out;
    }
    for (size_t i = 0; i < nkeys; i++)
        nown += keys[i].has_private;

    r = oidc_keys_master_load(cl.cfg.master_key_file, false, master, &e);
    if (r == -E_NOTFOUND && nown == 0) {
        /* serve creates it, but only where it may write. */
        _cleanup_free_ char *dir = strdup(cl.cfg.master_key_file);
        if (!dir || access(dirname(dir), W_OK) != 0) {
            cli_fail("%s, and serve cannot create it (folder not writable)", e.msg);
            goto out;
        }
        master_state = "missing (serve will create it)";
    } else if (r < 0) {
        cli_fail("%s", e.msg);
        goto out;
    } else {
        r = oidc_keys_verify_master(cl.store, master, &checked, &e);
        OPENSSL_cleanse(master, sizeof master);
        if (r < 0) {
            cli_fail("%s", e.msg);
            goto out;
        }
    }

    printf("config: %s\n", cl.cfg.file ? cl.cfg.file : "(defaults and environment)");
    printf("issuer: %s\n", cl.cfg.issuer);
    printf("listen: %s\n", cl.cfg.listen);
    if (strcmp(cl.cfg.storage, "lmdb") == 0)
        printf("storage: lmdb in %s\n", cl.cfg.data_dir);
    else
        /* store_ping() above proved both: a kdb-next Get that the token was allowed to make */
        printf("storage: kdbnext at %s, tenant %llu (answers, token accepted)\n",
               cl.cfg.kdbnext_address, (unsigned long long)cl.cfg.kdbnext_tenant);
    printf("master key: %s (%s)\n", cl.cfg.master_key_file, master_state);
    for (size_t i = 0; i < 4; i++)
        printf("%s: %zu\n", names[i], counts[i]);
    printf("keys: %zu", nkeys);
    if (nkeys == 0)
        printf(" (serve creates the first)");
    printf("\n");
    for (size_t i = 0; i < nkeys; i++)
        printf("key: %s %s %s%s\n", keys[i].kid, keys[i].alg,
               keys[i].signing     ? "signing"
               : keys[i].published ? "published"
                                   : "retired",
               keys[i].has_private ? "" : " (imported)");
    printf("ok\n");
    status = CLI_EXIT_OK;
out:
    OPENSSL_cleanse(master, sizeof master);
    cli_close(&cl);
    return status;
}
