/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A minimal gRPC client channel: unary calls over one HTTP/2 connection (nghttp2) on TLS
 * (OpenSSL, ALPN h2) or, when asked explicitly, cleartext HTTP/2 with prior knowledge.
 *
 * One I/O thread owns the socket, the TLS state and the nghttp2 session (none of which is
 * thread-safe). Any number of threads call grpc_channel_call(): the call is queued, the I/O
 * thread is woken (eventfd), sends it as one stream when the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS allows, and wakes the caller (a per-call condition variable)
 * when the response, an error or the deadline arrives.
 *
 * The channel connects lazily and reconnects by itself after GOAWAY, a reset, a TLS or socket
 * failure, with exponential backoff. While a reconnect is in backoff, calls fail at once with
 * -E_UNAVAILABLE (gRPC's "fail fast") rather than wait for their deadline.
 *
 * Messages are opaque bytes here (the caller packs protobuf); this module knows gRPC framing,
 * metadata and status only.
 */
#ifndef STORAGE_GRPC_H
#define STORAGE_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/** The largest message accepted from the server (gRPC's usual default). */
#define GRPC_MAX_RECV_MESSAGE (4 * 1024 * 1024)
/** The largest header block (all headers or all trailers of a response) accepted. */
#define GRPC_MAX_RECV_HEADERS (16 * 1024)

/* gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
enum grpc_status {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_NOT_FOUND = 5,
    GRPC_ALREADY_EXISTS = 6,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9,
    GRPC_ABORTED = 10,
    GRPC_OUT_OF_RANGE = 11,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
    GRPC_DATA_LOSS = 15,
    GRPC_UNAUTHENTICATED = 16,
};

struct grpc_channel;

/** How to reach the server. Strings are copied by grpc_channel_new(). */
struct grpc_channel_config {
    const char *address;   /* "host:port", "[v6addr]:port"; port defaults to default_port */
    int default_port;
    bool plaintext;        /* cleartext h2c with prior knowledge (loopback tests only) */
    const char *ca_file;   /* PEM CA bundle; NULL = the system's default trust store */
    const char *cert_file; /* optional client certificate (PEM), with key_file */
    const char *key_file;
    const char *token_file; /* optional: `authorization: Bearer <first line>`; re-read on connect */
    int connect_timeout_ms; /* TCP + TLS handshake; 0 = 3000 */
};

/** What a finished call reports besides its return code. */
struct grpc_call_info {
    int status;     /* the gRPC status received, or -1 when none was (transport failure) */
    bool not_sent;  /* the request provably never reached the server: safe to retry anything */
};

/**
 * Creates a channel and its I/O thread, and starts connecting in the background. Validates
 * the configuration (address, TLS files, token file) but does not wait for the server.
 * Returns 0 and the channel in *ret (free with grpc_channel_free()), -E_CONFIG with a reason
 * for a bad configuration, -E_NOMEM / -E_IO when a resource could not be created.
 */
int grpc_channel_new(const struct grpc_channel_config *cfg, struct grpc_channel **ret,
                     struct err *e);

/** Stops the I/O thread, closes the connection and frees @ch (NULL allowed). No call may be
 * in flight. */
void grpc_channel_free(struct grpc_channel *ch);

/**
 * Performs one unary call of @method ("/package.Service/Method") with the request message
 * @msg/@len, blocking the calling thread until it completes or @deadline_ms (CLOCK_MONOTONIC
 * milliseconds, see grpc_now_ms()) passes. Any thread may call it, concurrently.
 *
 * Returns 0 with the response message in *ret_msg and *ret_len (malloc'd, caller frees; never
 * NULL on success), or a negative store error with a one-line reason in @e:
 * -E_NOTFOUND, -E_CONFLICT (ABORTED), -E_INVALID, -E_PERMISSION (UNAUTHENTICATED,
 * PERMISSION_DENIED), -E_UNAVAILABLE (UNAVAILABLE, RESOURCE_EXHAUSTED, connection failures),
 * -E_DEADLINE (deadline passed), -E_IO (any other status or a malformed response).
 * @info (may be NULL) says which status came back and whether the request was never sent.
 */
int grpc_channel_call(struct grpc_channel *ch, const char *method, const void *msg, size_t len,
                      int64_t deadline_ms, unsigned char **ret_msg, size_t *ret_len,
                      struct grpc_call_info *info, struct err *e);

/** Maps a gRPC status to a store error code (0 for GRPC_OK). */
int grpc_status_to_err(int status);

/** CLOCK_MONOTONIC in milliseconds: the clock of call deadlines. */
int64_t grpc_now_ms(void);

#endif
