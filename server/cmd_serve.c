/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `serve`: opens everything, starts the HTTP front and a background thread (purging expired
 * store entries, re-reading, rotating and expiring signing keys: keys_housekeeping(), re-reading
 * the allowed CORS origins), then waits for SIGTERM or SIGINT and shuts down in order: stop
 * accepting, finish what is in flight, stop the threads, close the store.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "oidc/cors.h"
#include "oidc/keys.h"
#include "oidc/oidc.h"
#include "server/cli.h"
#include "server/commands.h"
#include "server/httpd.h"
#include "server/ops.h"

/* A client added or changed by the CLI while serve runs gets CORS within this time (or at
 * once on SIGHUP). Rebuilding reads every client record: cheap next to this period. */
#define CORS_RELOAD_S 10
#define GRACE_MS 10000

struct housekeeper {
    pthread_t tid;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    struct cli *cl;
};

static void cors_reload(struct cli *cl)
{
    struct err e = {0};
    if (oidc_cors_reload(cl->oidc->cors, cl->store, NULL, &e) < 0)
        log_error("cors: reloading the allowed origins failed: %s", e.msg);
}

static void *housekeeping(void *arg)
{
    struct housekeeper *hk = arg;
    struct timespec last_purge, last_keys, last_cors, now;
    clock_gettime(CLOCK_MONOTONIC, &last_purge);
    last_keys = last_cors = last_purge;
    pthread_mutex_lock(&hk->lock);
    while (!hk->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&hk->cond, &hk->lock, &until);
        if (hk->stop)
            break;
        pthread_mutex_unlock(&hk->lock);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - last_purge.tv_sec >= hk->cl->cfg.purge_interval) {
            struct err e = {0};
            size_t n = 0;
            if (store_purge_expired(hk->cl->store, &n, &e) < 0)
                log_error("purge: %s", e.msg);
            else if (n)
                log_debug("purge: %zu expired entries removed", n);
            last_purge = now;
        }
        bool keys_due = now.tv_sec - last_keys.tv_sec >= hk->cl->cfg.keys_reload_interval;
        keys_housekeeping(hk->cl, keys_due);
        if (keys_due)
            last_keys = now;
        if (now.tv_sec - last_cors.tv_sec >= CORS_RELOAD_S) {
            cors_reload(hk->cl);
            last_cors = now;
        }
        pthread_mutex_lock(&hk->lock);
    }
    pthread_mutex_unlock(&hk->lock);
    return NULL;
}

int cmd_serve(int argc, char **argv)
{
    struct cli_opts co;
    int r;

    if ((r = cli_common_args("serve", &argc, argv, &co)) != 0)
        return r;
    int first = argc > 1 && strcmp(argv[1], "--") == 0 ? 2 : 1; /* "--" ends options */
    if (argc > first)
        return cli_usage("serve", "unexpected argument '%s'", argv[first]);

    /* Every thread inherits this mask; the main thread takes the signals with sigwait(). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct cli cl;
    if ((r = cli_open(&cl, &co, CLI_STORE | CLI_OIDC | CLI_CREATE_MASTER)) != 0)
        return r;
    if ((r = ops_serve_begin(&cl)) != 0) {
        cli_close(&cl);
        return r;
    }

    struct err e = {0};
    struct httpd *h = NULL;
    if (httpd_start(&cl.cfg, cl.oidc, cl.store, &h, &e) < 0) {
        cli_close(&cl);
        return cli_fail("%s", e.msg);
    }
    struct housekeeper hk = {
        .cl = &cl, .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    pthread_create(&hk.tid, NULL, housekeeping, &hk);

    log_info("serve: %s %s listening on http://%s (issuer %s, storage %s, %zu loop threads, "
             "%d workers)",
             CLI_PROG, KODER_ID_VERSION, httpd_address(h), cl.cfg.issuer, cl.cfg.storage,
             httpd_loops(h), cl.cfg.pool_threads);

    int sig = 0;
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            log_info("serve: SIGHUP received, reloading");
            ops_reload(&cl, &co);
            cors_reload(&cl);
            continue;
        }
        break;
    }
    log_info("serve: %s received, finishing requests in flight",
             sig == SIGTERM ? "SIGTERM" : "SIGINT");
    httpd_stop(h, GRACE_MS);
    pthread_mutex_lock(&hk.lock);
    hk.stop = true;
    pthread_cond_signal(&hk.cond);
    pthread_mutex_unlock(&hk.lock);
    pthread_join(hk.tid, NULL);
    cli_close(&cl);
    log_info("serve: stopped");
    return CLI_EXIT_OK;
}
