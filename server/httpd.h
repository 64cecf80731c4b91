/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP front: h2o event loops (one per thread, each with its own SO_REUSEPORT listening
 * socket) answer the cheap, storage-free requests themselves (discovery, JWKS, /healthz) and
 * hand everything else as a plain struct oidc_request to a pool of worker threads that call
 * oidc_handle(); the answer comes back to the loop that owns the request through h2o's
 * multithread queue. Workers never touch h2o objects.
 */
#ifndef SERVER_HTTPD_H
#define SERVER_HTTPD_H

#include <stddef.h>
#include <sys/socket.h>

#include "common/err.h"
#include "server/config.h"
#include "storage/store.h"

struct httpd;
struct oidc_ctx;

/**
 * Binds the listening sockets (all before returning, so a busy port is reported here),
 * starts the loop and worker threads and returns. @cfg, @oidc and @store are borrowed and
 * must outlive httpd_stop(). Call with SIGTERM/SIGINT/SIGPIPE blocked so the threads
 * inherit the mask.
 */
int httpd_start(const struct config *cfg, struct oidc_ctx *oidc, struct store *store,
                struct httpd **ret, struct err *e);

/** The bound address as "host:port" (the real port when `listen` asked for port 0). */
const char *httpd_address(const struct httpd *h);

/** The number of event-loop threads running. */
size_t httpd_loops(const struct httpd *h);

/**
 * Stops accepting, lets requests in flight finish (at most @grace_ms), stops the threads.
 * After it returns no thread uses @oidc or @store any more.
 */
void httpd_stop(struct httpd *h, int grace_ms);

/**
 * The client's address: the peer's, or, when the peer is a trusted proxy, the rightmost
 * address of X-Forwarded-For (@xff, @xff_len; may be NULL) that is not itself a trusted
 * proxy. Writes text into @out (size @n).
 */
void httpd_client_addr(const struct config *cfg, const struct sockaddr *peer, const char *xff,
                       size_t xff_len, char *out, size_t n);

/** True when the If-None-Match value @inm (may be NULL) matches @etag (a quoted string). */
int httpd_etag_match(const char *inm, size_t inm_len, const char *etag);

#endif
