/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What running the service needs besides answering OIDC: recording every answered request
 * into the metrics, the /metrics answer itself, the signing key's age, the log file, and
 * SIGHUP (reload what is safe, reopen the log).
 */
#ifndef SERVER_OPS_H
#define SERVER_OPS_H

#include <stddef.h>

#include "oidc/http.h"
#include "server/cli.h"

#define OPS_PATH_METRICS "/metrics"

/**
 * Records one answered request into the metrics: its endpoint (from @path), @status and
 * @seconds since it arrived; a token answer 200 by the grant_type of its form @body; a login
 * POST answered 401 (wrong name or password) or 429 (throttled) as a login failure. Reads only
 * the grant_type parameter of @body, nothing else of it. Any thread; never blocks.
 */
void ops_observe(const char *method, size_t method_len, const char *path, size_t path_len,
                 const char *body, size_t body_len, int status, double seconds);

/**
 * Answers GET /metrics (Prometheus text) in @resp. A request that came through a proxy (it
 * carries X-Forwarded-For or Forwarded) gets 404: /metrics is for this machine's monitoring,
 * not for the internet that koder-jet serves. Worker thread (the key age reads the store).
 */
void ops_metrics_respond(const struct oidc_request *req, struct oidc_response *resp);

/**
 * Called by serve once cli_open() succeeded, before the threads start: opens `log_file`
 * (when set) onto stderr, and lets /metrics report the signing key's age from @cl's store.
 * Returns 0 or CLI_EXIT_FAIL after printing one line.
 */
int ops_serve_begin(struct cli *cl);

/**
 * SIGHUP: reopens `log_file` (after logrotate moved it), reads the configuration again from
 * the sources serve started with (@co: the same file, environment and --set flags), applies
 * log_level and log_file at once, and logs each other key whose value changed as needing a
 * restart; the running settings are not touched otherwise. A configuration that no longer
 * loads is reported and changes nothing. Main thread.
 */
void ops_reload(struct cli *cl, const struct cli_opts *co);

#endif
