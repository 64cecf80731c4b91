/* SPDX-License-Identifier: Apache-2.0 */
/* `keys list`: the signing keys as stored, without decrypting anything. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "oidc/keys.h"
#include "server/cli.h"
#include "server/commands.h"

/* "2026-12-03T13:45:00Z", or "-" for 0. */
static const char *fmt_time(int64_t t, char *out, size_t n)
{
    if (t == 0) {
        snprintf(out, n, "-");
        return out;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return out;
}

static int keys_list(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
    struct cli_opts co;
    bool json = false;
    int r, c;

    if ((r = cli_common_args("keys", &argc, argv, &co)) != 0)
        return r;
    if ((r = cli_check_options("keys", argc, argv, opts)) != 0)
        return r;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 'j')
            return cli_usage("keys", "unknown option '%s'", argv[optind - 1]);
        json = true;
    }
    if (optind < argc)
        return cli_usage("keys", "list takes no arguments");

    struct cli cl;
    if ((r = cli_open(&cl, &co, CLI_STORE | CLI_READ_ONLY)) != 0)
        return r;
    struct err e = {0};
    _cleanup_free_ struct oidc_key_info *keys = NULL;
    size_t n = 0;
    if (oidc_keys_list(cl.store, &keys, &n, &e) < 0) {
        cli_close(&cl);
        return cli_fail("keys: %s", e.msg);
    }
    if (json) {
        _cleanup_(json_decrefp) json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *o = json_object();
            json_object_set_new(o, "kid", json_string(keys[i].kid));
            json_object_set_new(o, "alg", json_string(keys[i].alg));
            json_object_set_new(o, "source", json_string(keys[i].source));
            json_object_set_new(o, "own", json_boolean(keys[i].has_private));
            json_object_set_new(o, "signing", json_boolean(keys[i].signing));
            json_object_set_new(o, "published", json_boolean(keys[i].published));
            json_object_set_new(o, "created_at", json_integer(keys[i].created_at));
            json_object_set_new(o, "sign_from", json_integer(keys[i].sign_from));
            json_object_set_new(o, "sign_until", json_integer(keys[i].sign_until));
            json_object_set_new(o, "publish_until", json_integer(keys[i].publish_until));
            json_array_append_new(arr, o);
        }
        _cleanup_free_ char *s = json_dumps(arr, JSON_COMPACT);
        printf("%s\n", s ? s : "[]");
    } else {
        printf("KID\tALG\tSTATE\tSOURCE\tSIGN_FROM\tSIGN_UNTIL\tPUBLISH_UNTIL\n");
        for (size_t i = 0; i < n; i++) {
            char a[32], b[32], d[32];
            const char *state = keys[i].signing     ? "signing"
                                : keys[i].published ? "published"
                                                    : "retired";
            printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\n", keys[i].kid, keys[i].alg, state,
                   keys[i].has_private ? "v2" : "imported",
                   fmt_time(keys[i].sign_from, a, sizeof a),
                   fmt_time(keys[i].sign_until, b, sizeof b),
                   fmt_time(keys[i].publish_until, d, sizeof d));
        }
    }
    cli_close(&cl);
    return CLI_EXIT_OK;
}

int cmd_keys(int argc, char **argv)
{
    /* "keys --config F add" would otherwise read as the unknown subcommand "--config". */
    if (argc < 2 || argv[1][0] == '-')
        return cli_usage("keys", "missing subcommand (list), which comes first");
    if (strcmp(argv[1], "list") == 0)
        return keys_list(argc - 1, argv + 1);
    return cli_usage("keys", "unknown subcommand '%.40s'", argv[1]);
}
