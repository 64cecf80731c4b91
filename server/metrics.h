/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Process-wide metrics, served at /metrics in the Prometheus text format (version 0.0.4):
 * requests by endpoint and status, request latency histograms, tokens issued by grant, login
 * failures, store call latency and errors (through a timing decorator around the store), and
 * the age of the signing key.
 *
 * One registry per process (there is one /metrics), so recording needs no handle. Every
 * label has a fixed, small set of values (endpoints, grants and store operations are enums;
 * statuses are 100..599), so the memory is preallocated and recording is a few relaxed atomic
 * additions: callable from any thread, never blocks, never allocates. oidc/ does not call
 * this module (dependencies point server -> oidc): the server records what it sees of each
 * request and answer, and what oidc/ reports through its event callback.
 */
#ifndef SERVER_METRICS_H
#define SERVER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "storage/store.h"

enum metrics_endpoint {
    METRICS_EP_DISCOVERY,
    METRICS_EP_JWKS,
    METRICS_EP_AUTHORIZE,
    METRICS_EP_LOGIN,
    METRICS_EP_TOKEN,
    METRICS_EP_USERINFO,
    METRICS_EP_INTROSPECT,
    METRICS_EP_REVOKE,
    METRICS_EP_END_SESSION,
    METRICS_EP_DEVICE,
    METRICS_EP_HEALTH,
    METRICS_EP_METRICS,
    METRICS_EP_OTHER,
    METRICS_EP__COUNT
};

enum metrics_grant {
    METRICS_GRANT_AUTHORIZATION_CODE,
    METRICS_GRANT_REFRESH_TOKEN,
    METRICS_GRANT_CLIENT_CREDENTIALS,
    METRICS_GRANT_JWT_BEARER,
    METRICS_GRANT_TOKEN_EXCHANGE,
    METRICS_GRANT_DEVICE_CODE,
    METRICS_GRANT_OTHER,
    METRICS_GRANT__COUNT
};

enum metrics_store_op {
    METRICS_STORE_GET,
    METRICS_STORE_PUT,
    METRICS_STORE_CAS,
    METRICS_STORE_DEL,
    METRICS_STORE_SCAN,
    METRICS_STORE_PING,
    METRICS_STORE_PURGE,
    METRICS_STORE__COUNT
};

/** Which endpoint a request path (without its query) belongs to; any path is accepted. */
enum metrics_endpoint metrics_endpoint_of(const char *path, size_t len);

/** The label value of @ep ("token", ...); a static string. */
const char *metrics_endpoint_name(enum metrics_endpoint ep);

/** The grant of a token request's grant_type value (NULL or unknown: METRICS_GRANT_OTHER). */
enum metrics_grant metrics_grant_of(const char *grant_type);

/**
 * Records one answered request: its endpoint, HTTP status (outside 100..599 counts as 0) and
 * how long it took from arrival to answer, in seconds. Any thread.
 */
void metrics_request(enum metrics_endpoint ep, int status, double seconds);

/** Records one token response that issued tokens, by grant. Any thread. */
void metrics_token_issued(enum metrics_grant grant);

/** Records one failed sign-in attempt (wrong password, unknown user, throttled). Any thread. */
void metrics_login_failure(void);

/**
 * Records one store call: its latency in seconds and its outcome (0, or the negative error
 * code; -E_NOTFOUND and -E_CONFLICT are answers, not errors). Any thread.
 */
void metrics_store_call(enum metrics_store_op op, double seconds, int result);

/**
 * The signing key's age is read when /metrics is rendered: @cb returns the creation time of
 * the key that signs now (unix seconds; 0 when there is none). @cb may be NULL. Called from
 * the thread that renders; set it before serving.
 */
typedef int64_t (*metrics_key_created_cb)(void *cbdata);
void metrics_set_key_created_cb(metrics_key_created_cb cb, void *cbdata);

/** Appends the whole registry to @out in the Prometheus text format. -E_NOMEM. Any thread. */
int metrics_render(struct buf *out);

/** The content type of what metrics_render() writes. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/** Zeroes every metric (tests). */
void metrics_reset(void);

/**
 * Wraps @inner in a store that times every call into the store metrics and forwards it.
 * The wrapper owns @inner: closing it closes @inner. On failure (-E_NOMEM) @inner is left
 * open and untouched. Call before the store is shared.
 */
int metrics_store_wrap(struct store *inner, struct store **ret, struct err *e);

#endif
