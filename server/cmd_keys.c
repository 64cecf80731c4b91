/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `keys list`: the signing keys as stored, without decrypting anything. `keys rotate`: a new
 * key, published now, signing after keys.publish_ahead (or at once with --now). And what
 * serve's housekeeping thread does with keys: re-read them when a window opens or closes,
 * rotate on schedule, delete the expired.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "oidc/keys.h"
#include "oidc/oidc.h"
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

/* The shared flags, then @opts: each an on/off flag set through its `flag` pointer. No
 * arguments besides. 0, or the usage exit status (the line is printed). */
static int keys_args(const char *sub, int argc, char **argv, const struct option *opts,
                     struct cli_opts *co)
{
    int r, c;
    if ((r = cli_common_args("keys", &argc, argv, co)) != 0)
        return r;
    if ((r = cli_check_options("keys", argc, argv, opts)) != 0)
        return r;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
        if (c != 0)
            return cli_usage("keys", "unknown option '%s'", argv[optind - 1]);
    if (optind < argc)
        return cli_usage("keys", "%s takes no arguments", sub);
    return 0;
}

static int keys_list(int argc, char **argv)
{
    int json = 0, r;
    const struct option opts[] = {{"json", no_argument, &json, 1}, {NULL, 0, NULL, 0}};
    struct cli_opts co;
    if ((r = keys_args("list", argc, argv, opts, &co)) != 0)
        return r;

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
            json_object_set_new(o, "state", json_string(oidc_key_state_name(keys[i].state)));
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
            const char *state = oidc_key_state_name(keys[i].state);
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

/* The rotation policy of @cl's configuration and token lifetimes. */
static struct oidc_rotate_policy policy_of(const struct cli *cl, bool emergency, bool force)
{
    return (struct oidc_rotate_policy){
        .publish_ahead = emergency ? 0 : cl->cfg.keys_publish_ahead,
        .verify_for =
            oidc_keys_verify_window(cl->oidc->lifetimes.access_token, cl->oidc->lifetimes.id_token,
                                    cl->cfg.keys_retire_margin),
        .force = force,
    };
}

static int keys_rotate(int argc, char **argv)
{
    int emergency = 0, force = 0, json = 0, r;
    const struct option opts[] = {{"now", no_argument, &emergency, 1},
                                  {"force", no_argument, &force, 1},
                                  {"json", no_argument, &json, 1},
                                  {NULL, 0, NULL, 0}};
    struct cli_opts co;
    if ((r = keys_args("rotate", argc, argv, opts, &co)) != 0)
        return r;

    struct cli cl;
    if ((r = cli_open(&cl, &co, CLI_STORE | CLI_OIDC)) != 0)
        return r;
    struct err e = {0};
    struct oidc_rotate_policy p = policy_of(&cl, emergency, force);
    struct oidc_rotate_result res;
    int64_t now = (int64_t)time(NULL);
    if (oidc_keys_rotate(cl.oidc->keys, now, &p, 0, &res, &e) < 0) {
        cli_close(&cl);
        return cli_fail("keys rotate: %s", e.msg);
    }
    cli_close(&cl);

    char a[32], b[32];
    if (json) {
        _cleanup_(json_decrefp) json_t *o = json_object();
        json_object_set_new(o, "kid", json_string(res.kid));
        json_object_set_new(o, "sign_from", json_integer(res.sign_from));
        json_object_set_new(o, "old_kid", json_string(res.old_kid));
        json_object_set_new(o, "old_publish_until", json_integer(res.old_publish_until));
        json_object_set_new(o, "emergency", json_boolean(emergency));
        _cleanup_free_ char *s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
    } else {
        printf("new key %s: published now, signs from %s (in %lld s)\n", res.kid,
               fmt_time(res.sign_from, a, sizeof a), (long long)(res.sign_from - now));
        if (res.old_kid[0])
            printf("key %s stops signing then and stays published until %s\n", res.old_kid,
                   fmt_time(res.old_publish_until, b, sizeof b));
    }
    if (emergency)
        fprintf(stderr,
                "%s: warning: --now is for a compromised key: the new key signs at once, so a "
                "relying party that does not re-fetch the JWKS on an unknown key id can fail "
                "until its cached JWKS expires (keys.jwks_max_age); key %s no longer signs and "
                "stays published only until the tokens it signed expire\n",
                CLI_PROG, res.old_kid[0] ? res.old_kid : "-");
    return CLI_EXIT_OK;
}

void keys_housekeeping(struct cli *cl, bool interval_due)
{
    struct oidc_keys *k = cl->oidc ? cl->oidc->keys : NULL;
    struct err e = {0};
    int64_t now = (int64_t)time(NULL);
    if (!k)
        return;
    if (!interval_due) {
        /* Every tick: a pending key's sign_from or a retired key's publish_until passed. */
        if (oidc_keys_refresh(k, now, &e) < 0)
            log_error("keys: reload failed: %s", e.msg);
        return;
    }
    size_t removed = 0;
    if (oidc_keys_remove_expired(cl->store, now, &removed, &e) < 0)
        log_error("keys: removing expired keys failed: %s", e.msg);
    else if (removed)
        log_info("keys: %zu key(s) past their publication window removed", removed);
    err_clear(&e);
    if (cl->cfg.keys_rotate_every > 0) {
        struct oidc_rotate_policy p = policy_of(cl, false, false);
        struct oidc_rotate_result res;
        if (oidc_keys_rotate(k, now, &p, cl->cfg.keys_rotate_every, &res, &e) < 0)
            log_error("keys: scheduled rotation failed: %s", e.msg);
        else if (res.kid[0])
            log_info("keys: scheduled rotation: key %s published, signs from %lld; key %s "
                     "published until %lld",
                     res.kid, (long long)res.sign_from, res.old_kid[0] ? res.old_kid : "-",
                     (long long)res.old_publish_until);
        err_clear(&e);
    }
    if (oidc_keys_reload(k, &e) < 0)
        log_error("keys: reload failed: %s", e.msg);
}

int cmd_keys(int argc, char **argv)
{
    /* "keys --config F add" would otherwise read as the unknown subcommand "--config". */
    if (argc < 2 || argv[1][0] == '-')
        return cli_usage("keys", "missing subcommand (list or rotate), which comes first");
    if (strcmp(argv[1], "list") == 0)
        return keys_list(argc - 1, argv + 1);
    if (strcmp(argv[1], "rotate") == 0)
        return keys_rotate(argc - 1, argv + 1);
    return cli_usage("keys", "unknown subcommand '%.40s' (list or rotate)", argv[1]);
}
