/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Error codes and the caller-owned error detail every fallible function takes last.
 *
 * One X-macro table yields the enum, the OAuth `error` string and the HTTP status, so an
 * endpoint never invents them (libuv's UV_ERRNO_MAP idea).
 */
#ifndef COMMON_ERR_H
#define COMMON_ERR_H

#include <stdarg.h>
#include <stddef.h>

/* X(name, oauth error string, http status) */
#define ERR_MAP(X)                                                                                 \
    X(E_OK, "", 200)                                                                               \
    X(E_INVALID, "invalid_request", 400)                                                           \
    X(E_NOMEM, "server_error", 500)                                                                \
    X(E_IO, "server_error", 500)                                                                   \
    X(E_INTERNAL, "server_error", 500)                                                             \
    X(E_NOTFOUND, "not_found", 404)                                                                \
    X(E_EXISTS, "already_exists", 409)                                                             \
    X(E_CONFLICT, "version_conflict", 409)                                                         \
    X(E_UNAVAILABLE, "temporarily_unavailable", 503)                                               \
    X(E_DEADLINE, "temporarily_unavailable", 503)                                                  \
    X(E_PERMISSION, "server_error", 500)                                                           \
    X(E_TOOBIG, "invalid_request", 413)                                                            \
    X(E_CONFIG, "server_error", 500)                                                               \
    X(E_USAGE, "invalid_request", 400)                                                             \
    X(E_INVALID_REQUEST, "invalid_request", 400)                                                   \
    X(E_INVALID_CLIENT, "invalid_client", 401)                                                     \
    X(E_INVALID_GRANT, "invalid_grant", 400)                                                       \
    X(E_UNAUTHORIZED_CLIENT, "unauthorized_client", 400)                                           \
    X(E_UNSUPPORTED_GRANT_TYPE, "unsupported_grant_type", 400)                                     \
    X(E_UNSUPPORTED_RESPONSE_TYPE, "unsupported_response_type", 400)                               \
    X(E_INVALID_SCOPE, "invalid_scope", 400)                                                       \
    X(E_ACCESS_DENIED, "access_denied", 403)                                                       \
    X(E_LOGIN_REQUIRED, "login_required", 400)                                                     \
    X(E_INVALID_TOKEN, "invalid_token", 401)                                                       \
    X(E_INSUFFICIENT_SCOPE, "insufficient_scope", 403)                                             \
    X(E_UNSUPPORTED_TOKEN_TYPE, "unsupported_token_type", 400)                                     \
    X(E_SLOW_DOWN, "slow_down", 429)                                                               \
    X(E_REQUEST_NOT_SUPPORTED, "request_not_supported", 400)                                       \
    X(E_REQUEST_URI_NOT_SUPPORTED, "request_uri_not_supported", 400)                               \
    X(E_METHOD, "invalid_request", 405)

enum err_code {
#define ERR_ENUM_(name, s, st) name,
    ERR_MAP(ERR_ENUM_)
#undef ERR_ENUM_
        E__COUNT
};

/** Error detail filled by a failing function; owned by the caller, usually on its stack. */
struct err {
    int code;      /* negative err_code, or 0 */
    char msg[192]; /* one line, lower case, never a secret */
};

/**
 * Record @code (negative or positive err_code) and a printf-style message in @e (which may be
 * NULL). Returns the negative code so callers can `return err_set(e, -E_X, "...")`.
 */
int err_set(struct err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** Clears @e (may be NULL). */
void err_clear(struct err *e);

/** The OAuth `error` string for @code (sign ignored); a static string. */
const char *err_oauth(int code);

/** The HTTP status for @code (sign ignored). */
int err_http_status(int code);

/** The symbolic name ("E_INVALID") for @code; a static string. */
const char *err_name(int code);

#endif
