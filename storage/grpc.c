/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gRPC unary calls over one HTTP/2 connection: the only user of nghttp2 (and of OpenSSL's TLS
 * client) in the tree.
 *
 * Threads: callers put a `struct call` (on their own stack) on the submit queue under
 * ch->lock, poke the eventfd and sleep on the call's condition variable. The I/O thread owns
 * everything else: the socket, the SSL object, the nghttp2 session, the list of calls waiting
 * for a stream ("pending") and the open streams. It completes every call exactly once (by
 * the call's deadline at the latest), and never touches a call after completing it, since
 * the caller's stack frame may be gone by then. Open streams refer to their call through a
 * heap `struct stream` whose call pointer is cleared on completion, so nghttp2 callbacks
 * arriving for a cancelled stream find nothing.
 *
 * Connection states: IDLE (no socket; connect when a call waits), CONNECTING (TCP),
 * HANDSHAKE (TLS), READY, BACKOFF (the last attempt failed; calls fail fast until it ends).
 */
#include "grpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/cleanup.h"

#define TOKEN_MAX 4096
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000
#define REFUSED_RETRIES_MAX 5
#define STREAM_WINDOW (4 * 1024 * 1024)
#define CONN_WINDOW (16 * 1024 * 1024)
#define MAX_STREAMS_CAP 1000
#define PING_TIMEOUT_MS 1000

enum conn_state { ST_IDLE, ST_CONNECTING, ST_HANDSHAKE, ST_READY, ST_BACKOFF };

struct call {
    struct call *next;
    /* request (read-only for the I/O thread) */
    const char *method;
    const unsigned char *req; /* 5-byte gRPC prefix + message */
    size_t req_len;
    int64_t deadline_ms;
    /* completion, under ch->lock */
    pthread_cond_t cond;
    bool done;
    /* result, written by the I/O thread before `done` */
    int transport_rc; /* 0 = a response (status below), else a negative store error */
    bool not_sent;
    char transport_msg[160];
    int http_status;
    int grpc_status; /* -1 until seen */
    char grpc_msg[128];
    bool content_type_ok;
    unsigned char *resp;
    size_t resp_len, resp_cap;
    /* I/O thread bookkeeping */
    size_t req_off;
    size_t hdr_bytes;
    const char *local_error; /* why we reset the stream ourselves */
    int refused;             /* REFUSED_STREAM transparent retries so far */
};

struct stream {
    struct stream *prev, *next;
    struct call *call; /* NULL once the call was completed (e.g. its deadline passed) */
    int32_t id;
    bool headers_sent;
};

struct grpc_channel {
    /* configuration, immutable after grpc_channel_new() */
    char *host;
    char port[16];
    char *authority;
    char *token_file;
    bool plaintext;
    bool host_is_ip;
    int connect_timeout_ms;
    SSL_CTX *ssl_ctx;

    /* shared with callers */
    pthread_mutex_t lock;
    struct call *submit_head, *submit_tail;
    bool stopping;
    int wake_fd;
    pthread_t thread;

    /* I/O thread only */
    enum conn_state state;
    int fd;
    SSL *ssl;
    nghttp2_session *h2;
    struct addrinfo *ai_list, *ai_next;
    int64_t state_deadline; /* connect timeout, or end of backoff */
    int backoff_ms;
    char last_error[200];
    bool want_connect;
    bool goaway;
    int64_t ping_deadline; /* a liveness PING is out: its ACK must arrive by then (0 = none) */
    struct call *pending_head, *pending_tail;
    struct stream *streams; /* open streams */
    size_t n_streams;
    unsigned char *out;
    size_t out_len, out_off, out_cap;
    char *auth; /* "Bearer <token>", wiped on free */
    size_t auth_len;
};

int64_t grpc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int grpc_status_to_err(int status)
{
    switch (status) {
    case GRPC_OK:
        return 0;
    case GRPC_NOT_FOUND:
        return -E_NOTFOUND;
    case GRPC_ABORTED:
        return -E_CONFLICT;
    case GRPC_INVALID_ARGUMENT:
    case GRPC_OUT_OF_RANGE:
        return -E_INVALID;
    case GRPC_UNAUTHENTICATED:
    case GRPC_PERMISSION_DENIED:
        return -E_PERMISSION;
    case GRPC_UNAVAILABLE:
    case GRPC_RESOURCE_EXHAUSTED:
        return -E_UNAVAILABLE;
    case GRPC_DEADLINE_EXCEEDED:
        return -E_DEADLINE;
    default:
        return -E_IO;
    }
}

static const char *status_name(int s)
{
    static const char *const names[] = {
        "OK",        "CANCELLED",          "UNKNOWN",           "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED", "NOT_FOUND",  "ALREADY_EXISTS",    "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL",       "UNAVAILABLE",       "DATA_LOSS",
        "UNAUTHENTICATED"};
    return s >= 0 && s < (int)ARRAY_SIZE(names) ? names[s] : "status";
}

/* ---- token ------------------------------------------------------------------------------- */

/* Reads the first line of @path as a bearer token into a fresh "Bearer <token>" string. */
static int token_load(const char *path, char **ret, size_t *ret_len, struct err *e)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return err_set(e, -E_CONFIG, "kdbnext token file '%s': %s", path, strerror(errno));
    char buf[TOKEN_MAX + 2];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *nl = strpbrk(buf, "\r\n");
    if (nl)
        *nl = 0;
    n = strlen(buf);
    while (n && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        buf[--n] = 0;
    int rc = 0;
    if (n == 0 || n > TOKEN_MAX)
        rc = err_set(e, -E_CONFIG, "kdbnext token file '%s' is empty or too long", path);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if ((unsigned char)buf[i] < 0x21 || (unsigned char)buf[i] > 0x7e)
            rc = err_set(e, -E_CONFIG, "kdbnext token file '%s' has characters not allowed in "
                                       "a header", path);
    if (rc == 0) {
        size_t len = 7 + n;
        char *s = malloc(len + 1);
        if (!s) {
            rc = err_set(e, -E_NOMEM, "out of memory");
        } else {
            memcpy(s, "Bearer ", 7);
            memcpy(s + 7, buf, n + 1);
            *ret = s;
            *ret_len = len;
        }
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

static void auth_free(struct grpc_channel *ch)
{
    if (ch->auth) {
        OPENSSL_cleanse(ch->auth, ch->auth_len);
        free(ch->auth);
    }
    ch->auth = NULL;
    ch->auth_len = 0;
}

/* ---- completing calls (I/O thread) -------------------------------------------------------- */

static void call_complete(struct grpc_channel *ch, struct call *c)
{
    pthread_mutex_lock(&ch->lock);
    c->done = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&ch->lock);
}

static void call_fail(struct grpc_channel *ch, struct call *c, int rc, bool not_sent,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void call_fail(struct grpc_channel *ch, struct call *c, int rc, bool not_sent,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->transport_msg, sizeof c->transport_msg, fmt, ap);
    va_end(ap);
    c->transport_rc = rc;
    c->not_sent = not_sent;
    call_complete(ch, c);
}

static void pending_push_back(struct grpc_channel *ch, struct call *c)
{
    c->next = NULL;
    if (ch->pending_tail)
        ch->pending_tail->next = c;
    else
        ch->pending_head = c;
    ch->pending_tail = c;
}

static void pending_push_front(struct grpc_channel *ch, struct call *c)
{
    c->next = ch->pending_head;
    ch->pending_head = c;
    if (!ch->pending_tail)
        ch->pending_tail = c;
}

static struct call *pending_pop(struct grpc_channel *ch)
{
    struct call *c = ch->pending_head;
    if (c) {
        ch->pending_head = c->next;
        if (!ch->pending_head)
            ch->pending_tail = NULL;
        c->next = NULL;
    }
    return c;
}

static void fail_pending(struct grpc_channel *ch, int rc, const char *why)
{
    struct call *c;
    while ((c = pending_pop(ch)))
        call_fail(ch, c, rc, true, "%s", why);
}

/* Resets what one attempt accumulated, so a refused call can be sent again. */
static void call_reset_response(struct call *c)
{
    c->resp_len = 0;
    c->req_off = 0;
    c->hdr_bytes = 0;
    c->http_status = 0;
    c->grpc_status = -1;
    c->grpc_msg[0] = 0;
    c->content_type_ok = false;
    c->local_error = NULL;
}

static void stream_unlink(struct grpc_channel *ch, struct stream *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        ch->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    ch->n_streams--;
    free(s);
}

/* A stream the server refused without processing it: send it again, on this or the next
 * connection, while its deadline allows. */
static void call_requeue_refused(struct grpc_channel *ch, struct call *c)
{
    if (++c->refused > REFUSED_RETRIES_MAX) {
        call_fail(ch, c, -E_UNAVAILABLE, true, "kdb-next refused the call %d times",
                  c->refused);
        return;
    }
    call_reset_response(c);
    pending_push_front(ch, c);
}

/* ---- connection teardown ------------------------------------------------------------------ */

static void conn_close(struct grpc_channel *ch, const char *why)
{
    /* Every open stream dies with the connection. A request whose HEADERS never left us is
     * provably unprocessed: it goes back to pending. Any other may have been applied. */
    struct stream *s = ch->streams;
    while (s) {
        struct stream *next = s->next;
        struct call *c = s->call;
        if (c) {
            if (!s->headers_sent) {
                call_reset_response(c);
                pending_push_front(ch, c);
            } else {
                call_fail(ch, c, -E_UNAVAILABLE, false, "connection to kdb-next lost: %s", why);
            }
        }
        free(s);
        s = next;
    }
    ch->streams = NULL;
    ch->n_streams = 0;
    if (ch->h2) {
        nghttp2_session_del(ch->h2);
        ch->h2 = NULL;
    }
    if (ch->ssl) {
        SSL_free(ch->ssl);
        ch->ssl = NULL;
    }
    if (ch->fd >= 0) {
        close(ch->fd);
        ch->fd = -1;
    }
    ch->out_len = ch->out_off = 0;
    ch->goaway = false;
    ch->ping_deadline = 0;
    if (why != ch->last_error)
        snprintf(ch->last_error, sizeof ch->last_error, "%s", why);
}

static void enter_backoff(struct grpc_channel *ch, int64_t now)
{
    /* jitter: 75%..125% of the current step */
    unsigned j = (unsigned)(now * 2654435761u) % 51u;
    int wait = ch->backoff_ms * (75 + (int)j) / 100;
    ch->state = ST_BACKOFF;
    ch->state_deadline = now + wait;
    ch->backoff_ms = ch->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ch->backoff_ms * 2;
    char why[256];
    snprintf(why, sizeof why, "kdb-next at %.60s unreachable: %.120s", ch->authority, ch->last_error);
    fail_pending(ch, -E_UNAVAILABLE, why);
}

/* The established connection ended (GOAWAY drained, EOF, error): reconnect on demand. */
static void conn_lost(struct grpc_channel *ch, const char *why)
{
    conn_close(ch, why);
    ch->state = ST_IDLE;
}

/* ---- connecting --------------------------------------------------------------------------- */

static void connect_failed(struct grpc_channel *ch, int64_t now, const char *why);

static void try_next_address(struct grpc_channel *ch, int64_t now)
{
    while (ch->ai_next) {
        struct addrinfo *ai = ch->ai_next;
        ch->ai_next = ai->ai_next;
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            snprintf(ch->last_error, sizeof ch->last_error, "socket: %s", strerror(errno));
            continue;
        }
        int one = 1, idle = 30, intvl = 10, cnt = 3;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
            snprintf(ch->last_error, sizeof ch->last_error, "connect: %s", strerror(errno));
            close(fd);
            continue;
        }
        ch->fd = fd;
        ch->state = ST_CONNECTING;
        return;
    }
    connect_failed(ch, now, ch->last_error);
}

static void connect_start(struct grpc_channel *ch, int64_t now)
{
    ch->want_connect = false;
    if (ch->token_file) {
        /* Pick up a rotated token; keep the old one if the file cannot be read now. */
        char *auth = NULL;
        size_t len = 0;
        struct err e;
        if (token_load(ch->token_file, &auth, &len, &e) == 0) {
            auth_free(ch);
            ch->auth = auth;
            ch->auth_len = len;
        }
    }
    if (ch->ai_list) {
        freeaddrinfo(ch->ai_list);
        ch->ai_list = ch->ai_next = NULL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int r = getaddrinfo(ch->host, ch->port, &hints, &ch->ai_list);
    if (r != 0) {
        ch->ai_list = NULL;
        snprintf(ch->last_error, sizeof ch->last_error, "resolving '%s': %s", ch->host,
                 gai_strerror(r));
        enter_backoff(ch, now);
        return;
    }
    ch->ai_next = ch->ai_list;
    ch->state_deadline = now + ch->connect_timeout_ms;
    try_next_address(ch, now);
}

static void connect_failed(struct grpc_channel *ch, int64_t now, const char *why)
{
    char msg[128];
    snprintf(msg, sizeof msg, "%s", why);
    conn_close(ch, msg);
    if (ch->ai_next && now < ch->state_deadline) {
        try_next_address(ch, now);
        return;
    }
    enter_backoff(ch, now);
}

/* nghttp2 callbacks, defined below */
static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *frame, void *ud);
static int on_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud);
static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *ud);
static int on_stream_close(nghttp2_session *h2, int32_t stream_id, uint32_t error_code,
                           void *ud);
static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *ud);
static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *frame, void *ud);

static int session_start(struct grpc_channel *ch)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return -1;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return -1;
    }
    nghttp2_option_set_peer_max_concurrent_streams(opt, 100);
    nghttp2_option_set_max_reserved_remote_streams(opt, 0);
    int r = nghttp2_session_client_new2(&ch->h2, cbs, ch, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (r != 0) {
        ch->h2 = NULL;
        return -1;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, GRPC_MAX_RECV_HEADERS},
    };
    if (nghttp2_submit_settings(ch->h2, NGHTTP2_FLAG_NONE, iv, ARRAY_SIZE(iv)) != 0 ||
        nghttp2_session_set_local_window_size(ch->h2, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0)
        return -1;
    return 0;
}

static void conn_ready(struct grpc_channel *ch, int64_t now)
{
    if (session_start(ch) < 0) {
        connect_failed(ch, now, "cannot create the HTTP/2 session");
        return;
    }
    ch->state = ST_READY;
    ch->backoff_ms = BACKOFF_MIN_MS;
    ch->last_error[0] = 0;
}

static const char *ssl_error_text(char *buf, size_t len)
{
    unsigned long code = ERR_get_error();
    if (!code)
        return "connection closed";
    ERR_error_string_n(code, buf, len);
    ERR_clear_error();
    return buf;
}

static void handshake_step(struct grpc_channel *ch, int64_t now)
{
    ERR_clear_error();
    int r = SSL_connect(ch->ssl);
    if (r == 1) {
        const unsigned char *alpn = NULL;
        unsigned alpn_len = 0;
        SSL_get0_alpn_selected(ch->ssl, &alpn, &alpn_len);
        if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
            connect_failed(ch, now, "TLS: the server did not select ALPN h2");
            return;
        }
        conn_ready(ch, now);
        return;
    }
    int err = SSL_get_error(ch->ssl, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        return;
    char buf[120], msg[200];
    long vr = SSL_get_verify_result(ch->ssl);
    if (vr != X509_V_OK)
        snprintf(msg, sizeof msg, "TLS: certificate verification failed: %s",
                 X509_verify_cert_error_string(vr));
    else
        snprintf(msg, sizeof msg, "TLS handshake: %s", ssl_error_text(buf, sizeof buf));
    ERR_clear_error();
    connect_failed(ch, now, msg);
}

static void connect_step(struct grpc_channel *ch, int64_t now)
{
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(ch->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        soerr = errno;
    if (soerr) {
        char msg[128];
        snprintf(msg, sizeof msg, "connect: %s", strerror(soerr));
        connect_failed(ch, now, msg);
        return;
    }
    if (ch->plaintext) {
        conn_ready(ch, now);
        return;
    }
    ch->ssl = SSL_new(ch->ssl_ctx);
    if (!ch->ssl || SSL_set_fd(ch->ssl, ch->fd) != 1) {
        connect_failed(ch, now, "TLS: cannot create the connection object");
        return;
    }
    if (ch->host_is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ch->ssl), ch->host);
    } else {
        SSL_set_tlsext_host_name(ch->ssl, ch->host);
        SSL_set_hostflags(ch->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        SSL_set1_host(ch->ssl, ch->host);
    }
    ch->state = ST_HANDSHAKE;
    handshake_step(ch, now);
}

/* ---- socket I/O (READY) ------------------------------------------------------------------- */

/* Returns > 0 bytes, 0 when it would block, -1 on EOF or error (reason in last_error). */
static ssize_t conn_read(struct grpc_channel *ch, void *buf, size_t len)
{
    if (!ch->ssl) {
        ssize_t n = recv(ch->fd, buf, len, 0);
        if (n > 0)
            return n;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return 0;
        snprintf(ch->last_error, sizeof ch->last_error, "%s",
                 n == 0 ? "server closed the connection" : strerror(errno));
        return -1;
    }
    ERR_clear_error();
    int n = SSL_read(ch->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0)
        return n;
    int err = SSL_get_error(ch->ssl, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        return 0;
    char b[120];
    snprintf(ch->last_error, sizeof ch->last_error, "%s",
             err == SSL_ERROR_ZERO_RETURN ? "server closed the connection"
             : err == SSL_ERROR_SYSCALL   ? "connection reset"
                                          : ssl_error_text(b, sizeof b));
    ERR_clear_error();
    return -1;
}

static ssize_t conn_write(struct grpc_channel *ch, const void *buf, size_t len)
{
    if (!ch->ssl) {
        ssize_t n = send(ch->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        snprintf(ch->last_error, sizeof ch->last_error, "send: %s", strerror(errno));
        return -1;
    }
    ERR_clear_error();
    int n = SSL_write(ch->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0)
        return n;
    int err = SSL_get_error(ch->ssl, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        return 0;
    char b[120];
    snprintf(ch->last_error, sizeof ch->last_error, "TLS write: %s",
             err == SSL_ERROR_SYSCALL ? "connection reset" : ssl_error_text(b, sizeof b));
    ERR_clear_error();
    return -1;
}

/* Moves nghttp2's output to the socket. Returns -1 when the connection broke. */
static int conn_flush(struct grpc_channel *ch)
{
    for (;;) {
        if (ch->out_off < ch->out_len) {
            ssize_t n = conn_write(ch, ch->out + ch->out_off, ch->out_len - ch->out_off);
            if (n < 0)
                return -1;
            if (n == 0)
                return 0; /* wait for POLLOUT */
            ch->out_off += (size_t)n;
            continue;
        }
        ch->out_len = ch->out_off = 0;
        /* gather up to 64 KiB of frames before writing */
        while (ch->out_len < 65536) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(ch->h2, &data);
            if (n < 0) {
                snprintf(ch->last_error, sizeof ch->last_error, "HTTP/2: %s",
                         nghttp2_strerror((int)n));
                return -1;
            }
            if (n == 0)
                break;
            if (ch->out_len + (size_t)n > ch->out_cap) {
                size_t cap = ch->out_cap ? ch->out_cap : 65536;
                while (cap < ch->out_len + (size_t)n)
                    cap *= 2;
                unsigned char *p = realloc(ch->out, cap);
                if (!p) {
                    snprintf(ch->last_error, sizeof ch->last_error, "out of memory");
                    return -1;
                }
                ch->out = p;
                ch->out_cap = cap;
            }
            memcpy(ch->out + ch->out_len, data, (size_t)n);
            ch->out_len += (size_t)n;
        }
        if (ch->out_len == 0)
            return 0;
    }
}

static int conn_read_all(struct grpc_channel *ch)
{
    unsigned char buf[32768];
    for (int rounds = 0; rounds < 64; rounds++) {
        ssize_t n = conn_read(ch, buf, sizeof buf);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        ssize_t r = nghttp2_session_mem_recv(ch->h2, buf, (size_t)n);
        if (r < 0) {
            snprintf(ch->last_error, sizeof ch->last_error, "HTTP/2: %s",
                     nghttp2_strerror((int)r));
            return -1;
        }
    }
    return 0;
}

/* ---- streams ------------------------------------------------------------------------------ */

static ssize_t data_read(nghttp2_session *h2, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *ud)
{
    struct stream *s = nghttp2_session_get_stream_user_data(h2, stream_id);
    if (!s || !s->call)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    struct call *c = s->call;
    size_t n = c->req_len - c->req_off;
    if (n > length)
        n = length;
    memcpy(buf, c->req + c->req_off, n);
    c->req_off += n;
    if (c->req_off == c->req_len)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

#define NV(n, v, f)                                                                                \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), (f)                              \
    }

static void submit_call(struct grpc_channel *ch, struct call *c, int64_t now)
{
    char timeout[24];
    snprintf(timeout, sizeof timeout, "%lldm", (long long)(c->deadline_ms - now));
    nghttp2_nv nva[] = {
        NV(":method", "POST", NGHTTP2_NV_FLAG_NONE),
        NV(":scheme", ch->plaintext ? "http" : "https", NGHTTP2_NV_FLAG_NONE),
        NV(":path", c->method, NGHTTP2_NV_FLAG_NONE),
        NV(":authority", ch->authority, NGHTTP2_NV_FLAG_NONE),
        NV("te", "trailers", NGHTTP2_NV_FLAG_NONE),
        NV("content-type", "application/grpc", NGHTTP2_NV_FLAG_NONE),
        NV("user-agent", "koder-id-v2-gateway/" KODER_ID_VERSION " grpc-c-nghttp2",
           NGHTTP2_NV_FLAG_NONE),
        NV("grpc-timeout", timeout, NGHTTP2_NV_FLAG_NO_INDEX),
        NV("authorization", ch->auth ? ch->auth : "", NGHTTP2_NV_FLAG_NO_INDEX),
    };
    size_t nnv = ch->auth ? ARRAY_SIZE(nva) : ARRAY_SIZE(nva) - 1;
    struct stream *s = calloc(1, sizeof *s);
    if (!s) {
        call_fail(ch, c, -E_NOMEM, true, "out of memory");
        return;
    }
    s->call = c;
    nghttp2_data_provider prd = {.source.ptr = NULL, .read_callback = data_read};
    int32_t id = nghttp2_submit_request(ch->h2, NULL, nva, nnv, &prd, s);
    if (id < 0) {
        free(s);
        call_fail(ch, c, -E_IO, true, "HTTP/2 submit: %s", nghttp2_strerror(id));
        return;
    }
    s->id = id;
    s->next = ch->streams;
    if (ch->streams)
        ch->streams->prev = s;
    ch->streams = s;
    ch->n_streams++;
}

static size_t max_streams(struct grpc_channel *ch)
{
    uint32_t m = nghttp2_session_get_remote_settings(ch->h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return m > MAX_STREAMS_CAP ? MAX_STREAMS_CAP : m;
}

static void submit_pending(struct grpc_channel *ch, int64_t now)
{
    while (ch->pending_head && !ch->goaway && ch->n_streams < max_streams(ch)) {
        struct call *c = pending_pop(ch);
        submit_call(ch, c, now);
    }
}

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *frame, void *ud)
{
    struct stream *s = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
    if (s && s->call)
        s->call->hdr_bytes = 0;
    return 0;
}

static void percent_decode(char *out, size_t cap, const uint8_t *in, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < cap; i++) {
        unsigned v = in[i];
        if (v == '%' && i + 2 < len) {
            char hex[3] = {(char)in[i + 1], (char)in[i + 2], 0};
            char *end;
            unsigned long x = strtoul(hex, &end, 16);
            if (*end == 0) {
                v = (unsigned)x;
                i += 2;
            }
        }
        out[o++] = (v >= 0x20 && v < 0x7f) ? (char)v : '?';
    }
    out[o] = 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud)
{
    struct stream *s = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
    if (!s || !s->call)
        return 0;
    struct call *c = s->call;
    c->hdr_bytes += namelen + valuelen + 32;
    if (c->hdr_bytes > GRPC_MAX_RECV_HEADERS) {
        c->local_error = "response headers over the size limit";
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
#define IS(lit) (namelen == sizeof(lit) - 1 && memcmp(name, lit, namelen) == 0)
    if (IS(":status")) {
        int st = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            st = st * 10 + (value[i] >= '0' && value[i] <= '9' ? value[i] - '0' : 0);
        c->http_status = st;
    } else if (IS("content-type")) {
        c->content_type_ok = valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
                             (valuelen == 16 || value[16] == '+' || value[16] == ';');
    } else if (IS("grpc-status")) {
        int st = 0;
        bool ok = valuelen > 0 && valuelen <= 3;
        for (size_t i = 0; ok && i < valuelen; i++) {
            if (value[i] < '0' || value[i] > '9')
                ok = false;
            else
                st = st * 10 + (value[i] - '0');
        }
        c->grpc_status = ok ? st : GRPC_UNKNOWN;
    } else if (IS("grpc-message")) {
        percent_decode(c->grpc_msg, sizeof c->grpc_msg, value, valuelen);
    }
#undef IS
    return 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *ud)
{
    struct stream *s = nghttp2_session_get_stream_user_data(h2, stream_id);
    if (!s || !s->call || s->call->local_error)
        return 0;
    struct call *c = s->call;
    if (c->resp_len + len > GRPC_MAX_RECV_MESSAGE + 5) {
        c->local_error = "response message over the 4 MiB limit";
        nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
        return 0;
    }
    if (c->resp_len + len > c->resp_cap) {
        size_t cap = c->resp_cap ? c->resp_cap : 1024;
        while (cap < c->resp_len + len)
            cap *= 2;
        unsigned char *p = realloc(c->resp, cap);
        if (!p) {
            c->local_error = "out of memory";
            nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
            return 0;
        }
        c->resp = p;
        c->resp_cap = cap;
    }
    memcpy(c->resp + c->resp_len, data, len);
    c->resp_len += len;
    return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t stream_id, uint32_t error_code,
                           void *ud)
{
    struct grpc_channel *ch = ud;
    struct stream *s = nghttp2_session_get_stream_user_data(h2, stream_id);
    if (!s)
        return 0;
    struct call *c = s->call;
    bool sent = s->headers_sent;
    stream_unlink(ch, s);
    if (!c)
        return 0;
    if (c->local_error)
        call_fail(ch, c, -E_IO, false, "%s", c->local_error);
    else if (error_code == NGHTTP2_REFUSED_STREAM || !sent)
        call_requeue_refused(ch, c);
    else if (error_code != NGHTTP2_NO_ERROR || c->grpc_status < 0)
        call_fail(ch, c, -E_UNAVAILABLE, false, "kdb-next reset the call (%s)",
                  error_code ? nghttp2_http2_strerror(error_code) : "no grpc-status");
    else
        call_complete(ch, c);
    return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *ud)
{
    struct grpc_channel *ch = ud;
    if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK)) {
        ch->ping_deadline = 0;
    } else if (frame->hd.type == NGHTTP2_GOAWAY) {
        ch->goaway = true;
        snprintf(ch->last_error, sizeof ch->last_error, "server sent GOAWAY (%s)",
                 nghttp2_http2_strerror(frame->goaway.error_code));
    }
    return 0;
}

static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *frame, void *ud)
{
    if (frame->hd.type == NGHTTP2_HEADERS) {
        struct stream *s = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
        if (s)
            s->headers_sent = true;
    }
    return 0;
}

/* ---- the I/O thread ----------------------------------------------------------------------- */

static void expire_calls(struct grpc_channel *ch, int64_t now)
{
    /* pending: never sent */
    struct call **pp = &ch->pending_head, *last = NULL;
    while (*pp) {
        struct call *c = *pp;
        if (c->deadline_ms <= now) {
            *pp = c->next;
            call_fail(ch, c, -E_DEADLINE, true, "kdb-next call timed out before it was sent%s%s",
                      ch->last_error[0] ? ": " : "", ch->last_error);
        } else {
            last = c;
            pp = &c->next;
        }
    }
    ch->pending_tail = last;
    for (struct stream *s = ch->streams; s; s = s->next) {
        struct call *c = s->call;
        if (c && c->deadline_ms <= now) {
            s->call = NULL;
            if (ch->h2) {
                nghttp2_submit_rst_stream(ch->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
                /* Slow server or dead connection? A PING tells: no ACK in time, and the
                 * connection is dropped rather than left to swallow every later call. */
                if (!ch->ping_deadline &&
                    nghttp2_submit_ping(ch->h2, NGHTTP2_FLAG_NONE, NULL) == 0)
                    ch->ping_deadline = now + PING_TIMEOUT_MS;
            }
            call_fail(ch, c, -E_DEADLINE, !s->headers_sent, "kdb-next did not answer in time");
        }
    }
}

static int64_t next_wakeup(struct grpc_channel *ch)
{
    int64_t t = INT64_MAX;
    for (struct call *c = ch->pending_head; c; c = c->next)
        if (c->deadline_ms < t)
            t = c->deadline_ms;
    for (struct stream *s = ch->streams; s; s = s->next)
        if (s->call && s->call->deadline_ms < t)
            t = s->call->deadline_ms;
    if ((ch->state == ST_CONNECTING || ch->state == ST_HANDSHAKE || ch->state == ST_BACKOFF) &&
        ch->state_deadline < t)
        t = ch->state_deadline;
    if (ch->state == ST_READY && ch->ping_deadline && ch->ping_deadline < t)
        t = ch->ping_deadline;
    return t;
}

static void *io_thread(void *arg)
{
    struct grpc_channel *ch = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* SIGPIPE from SSL_write, and the server's signals */

    for (;;) {
        /* take new calls */
        pthread_mutex_lock(&ch->lock);
        bool stopping = ch->stopping;
        struct call *head = ch->submit_head;
        ch->submit_head = ch->submit_tail = NULL;
        pthread_mutex_unlock(&ch->lock);
        while (head) {
            struct call *next = head->next;
            pending_push_back(ch, head);
            head = next;
        }
        if (stopping)
            break;

        int64_t now = grpc_now_ms();
        expire_calls(ch, now);

        switch (ch->state) {
        case ST_BACKOFF:
            if (now >= ch->state_deadline) {
                ch->state = ST_IDLE;
            } else if (ch->pending_head) {
                char why[256];
                snprintf(why, sizeof why, "kdb-next at %.60s unreachable: %.120s", ch->authority,
                         ch->last_error);
                fail_pending(ch, -E_UNAVAILABLE, why);
            }
            break;
        case ST_CONNECTING:
        case ST_HANDSHAKE:
            if (now >= ch->state_deadline) {
                ch->ai_next = NULL;
                connect_failed(ch, now, "connect timed out");
            }
            break;
        default:
            break;
        }
        if (ch->state == ST_IDLE && (ch->pending_head || ch->want_connect))
            connect_start(ch, now);

        if (ch->state == ST_READY && ch->ping_deadline && now >= ch->ping_deadline) {
            conn_lost(ch, "no answer to a PING: connection presumed dead");
            continue;
        }
        if (ch->state == ST_READY) {
            submit_pending(ch, now);
            if (conn_flush(ch) < 0) {
                conn_lost(ch, ch->last_error);
                continue;
            }
            if ((ch->goaway && ch->n_streams == 0) ||
                (!nghttp2_session_want_read(ch->h2) && !nghttp2_session_want_write(ch->h2))) {
                conn_lost(ch, ch->last_error[0] ? ch->last_error : "connection closed");
                continue;
            }
        }

        struct pollfd pfd[2] = {{.fd = ch->wake_fd, .events = POLLIN}, {.fd = -1}};
        nfds_t nfds = 1;
        if (ch->state == ST_CONNECTING) {
            pfd[1] = (struct pollfd){.fd = ch->fd, .events = POLLOUT};
            nfds = 2;
        } else if (ch->state == ST_HANDSHAKE) {
            pfd[1] = (struct pollfd){.fd = ch->fd, .events = POLLIN | POLLOUT};
            if (SSL_want_read(ch->ssl))
                pfd[1].events = POLLIN;
            else if (SSL_want_write(ch->ssl))
                pfd[1].events = POLLOUT;
            nfds = 2;
        } else if (ch->state == ST_READY) {
            pfd[1] = (struct pollfd){.fd = ch->fd, .events = POLLIN};
            if (ch->out_off < ch->out_len)
                pfd[1].events |= POLLOUT;
            nfds = 2;
        }
        int timeout = -1;
        int64_t wake = next_wakeup(ch);
        if (ch->ssl && SSL_pending(ch->ssl) > 0)
            wake = now;
        if (wake != INT64_MAX) {
            int64_t d = wake - now;
            timeout = d < 0 ? 0 : d > 60000 ? 60000 : (int)d;
        }
        int r = poll(pfd, nfds, timeout);
        if (r < 0 && errno != EINTR)
            break;
        if (pfd[0].revents & POLLIN) {
            uint64_t v;
            if (read(ch->wake_fd, &v, sizeof v) < 0) {
                /* EAGAIN: another wakeup already drained it */
            }
        }
        now = grpc_now_ms();
        if (nfds == 2 && (pfd[1].revents || (ch->ssl && SSL_pending(ch->ssl) > 0))) {
            if (ch->state == ST_CONNECTING) {
                connect_step(ch, now);
            } else if (ch->state == ST_HANDSHAKE) {
                handshake_step(ch, now);
            } else if (ch->state == ST_READY) {
                if (conn_read_all(ch) < 0 || conn_flush(ch) < 0)
                    conn_lost(ch, ch->last_error);
            }
        }
    }

    /* stopping */
    conn_close(ch, "channel closed");
    fail_pending(ch, -E_UNAVAILABLE, "kdb-next channel closed");
    return NULL;
}

/* ---- public ------------------------------------------------------------------------------- */

static int parse_address(struct grpc_channel *ch, const char *addr, int default_port,
                         struct err *e)
{
    if (!addr || !*addr || strlen(addr) > 255)
        return err_set(e, -E_CONFIG, "kdbnext.address is missing or too long");
    const char *port = NULL;
    size_t hlen;
    const char *h = addr;
    if (addr[0] == '[') {
        const char *close_br = strchr(addr, ']');
        if (!close_br)
            return err_set(e, -E_CONFIG, "kdbnext.address '%s': missing ']'", addr);
        h = addr + 1;
        hlen = (size_t)(close_br - h);
        if (close_br[1] == ':')
            port = close_br + 2;
        else if (close_br[1])
            return err_set(e, -E_CONFIG, "kdbnext.address '%s': expected host:port", addr);
    } else {
        const char *colon = strrchr(addr, ':');
        if (colon && strchr(addr, ':') != colon)
            return err_set(e, -E_CONFIG, "kdbnext.address '%s': write IPv6 as [addr]:port",
                           addr);
        hlen = colon ? (size_t)(colon - addr) : strlen(addr);
        port = colon ? colon + 1 : NULL;
    }
    if (hlen == 0)
        return err_set(e, -E_CONFIG, "kdbnext.address '%s': empty host", addr);
    long p = default_port;
    if (port) {
        char *end;
        errno = 0;
        p = strtol(port, &end, 10);
        if (!*port || *end || errno || p < 1 || p > 65535)
            return err_set(e, -E_CONFIG, "kdbnext.address '%s': bad port", addr);
    }
    ch->host = strndup(h, hlen);
    if (!ch->host)
        return err_set(e, -E_NOMEM, "out of memory");
    snprintf(ch->port, sizeof ch->port, "%ld", p);
    unsigned char tmp[16];
    ch->host_is_ip = inet_pton(AF_INET, ch->host, tmp) == 1 || inet_pton(AF_INET6, ch->host, tmp) == 1;
    size_t alen = hlen + 16;
    ch->authority = malloc(alen);
    if (!ch->authority)
        return err_set(e, -E_NOMEM, "out of memory");
    if (strchr(ch->host, ':'))
        snprintf(ch->authority, alen, "[%s]:%ld", ch->host, p);
    else
        snprintf(ch->authority, alen, "%s:%ld", ch->host, p);
    return 0;
}

static int tls_setup(struct grpc_channel *ch, const struct grpc_channel_config *cfg,
                     struct err *e)
{
    char buf[160];
    ch->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!ch->ssl_ctx)
        return err_set(e, -E_IO, "TLS: %s", ssl_error_text(buf, sizeof buf));
    SSL_CTX_set_min_proto_version(ch->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ch->ssl_ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ch->ssl_ctx,
                     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(ch->ssl_ctx, SSL_VERIFY_PEER, NULL);
    if (cfg->ca_file && *cfg->ca_file) {
        if (SSL_CTX_load_verify_locations(ch->ssl_ctx, cfg->ca_file, NULL) != 1)
            return err_set(e, -E_CONFIG, "kdbnext.tls_ca_file '%s': %s", cfg->ca_file,
                           ssl_error_text(buf, sizeof buf));
    } else if (SSL_CTX_set_default_verify_paths(ch->ssl_ctx) != 1) {
        return err_set(e, -E_CONFIG, "TLS: cannot load the system trust store");
    }
    bool has_cert = cfg->cert_file && *cfg->cert_file;
    bool has_key = cfg->key_file && *cfg->key_file;
    if (has_cert != has_key)
        return err_set(e, -E_CONFIG,
                       "kdbnext.tls_cert_file and kdbnext.tls_key_file go together");
    if (has_cert) {
        if (SSL_CTX_use_certificate_chain_file(ch->ssl_ctx, cfg->cert_file) != 1)
            return err_set(e, -E_CONFIG, "kdbnext.tls_cert_file '%s': %s", cfg->cert_file,
                           ssl_error_text(buf, sizeof buf));
        if (SSL_CTX_use_PrivateKey_file(ch->ssl_ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ch->ssl_ctx) != 1)
            return err_set(e, -E_CONFIG, "kdbnext.tls_key_file '%s': %s", cfg->key_file,
                           ssl_error_text(buf, sizeof buf));
    }
    static const unsigned char alpn[] = {2, 'h', '2'};
    if (SSL_CTX_set_alpn_protos(ch->ssl_ctx, alpn, sizeof alpn) != 0)
        return err_set(e, -E_IO, "TLS: cannot set ALPN");
    return 0;
}

int grpc_channel_new(const struct grpc_channel_config *cfg, struct grpc_channel **ret,
                     struct err *e)
{
    struct grpc_channel *ch = calloc(1, sizeof *ch);
    if (!ch)
        return err_set(e, -E_NOMEM, "out of memory");
    ch->fd = -1;
    ch->wake_fd = -1;
    ch->plaintext = cfg->plaintext;
    ch->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 3000;
    ch->backoff_ms = BACKOFF_MIN_MS;
    ch->state = ST_IDLE;
    ch->want_connect = true;
    pthread_mutex_init(&ch->lock, NULL);
    int r = parse_address(ch, cfg->address, cfg->default_port, e);
    if (r == 0 && !cfg->plaintext)
        r = tls_setup(ch, cfg, e);
    if (r == 0 && cfg->token_file && *cfg->token_file) {
        ch->token_file = strdup(cfg->token_file);
        if (!ch->token_file)
            r = err_set(e, -E_NOMEM, "out of memory");
        else
            r = token_load(ch->token_file, &ch->auth, &ch->auth_len, e);
    }
    if (r == 0) {
        ch->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (ch->wake_fd < 0)
            r = err_set(e, -E_IO, "eventfd: %s", strerror(errno));
    }
    if (r == 0 && pthread_create(&ch->thread, NULL, io_thread, ch) != 0)
        r = err_set(e, -E_IO, "cannot start the kdb-next I/O thread");
    if (r < 0) {
        if (ch->wake_fd >= 0)
            close(ch->wake_fd);
        ch->wake_fd = -1;
        auth_free(ch);
        if (ch->ssl_ctx)
            SSL_CTX_free(ch->ssl_ctx);
        free(ch->host);
        free(ch->authority);
        free(ch->token_file);
        pthread_mutex_destroy(&ch->lock);
        free(ch);
        return r;
    }
    *ret = ch;
    return 0;
}

static void wake(struct grpc_channel *ch)
{
    uint64_t one = 1;
    if (write(ch->wake_fd, &one, sizeof one) < 0) {
        /* EAGAIN: the counter is already non-zero, the thread will wake */
    }
}

void grpc_channel_free(struct grpc_channel *ch)
{
    if (!ch)
        return;
    pthread_mutex_lock(&ch->lock);
    ch->stopping = true;
    pthread_mutex_unlock(&ch->lock);
    wake(ch);
    pthread_join(ch->thread, NULL);
    if (ch->ai_list)
        freeaddrinfo(ch->ai_list);
    close(ch->wake_fd);
    auth_free(ch);
    if (ch->ssl_ctx)
        SSL_CTX_free(ch->ssl_ctx);
    free(ch->out);
    free(ch->host);
    free(ch->authority);
    free(ch->token_file);
    pthread_mutex_destroy(&ch->lock);
    free(ch);
}

int grpc_channel_call(struct grpc_channel *ch, const char *method, const void *msg, size_t len,
                      int64_t deadline_ms, unsigned char **ret_msg, size_t *ret_len,
                      struct grpc_call_info *info, struct err *e)
{
    if (info)
        *info = (struct grpc_call_info){.status = -1, .not_sent = true};
    if (len > GRPC_MAX_RECV_MESSAGE)
        return err_set(e, -E_TOOBIG, "request message of %zu bytes over the 4 MiB limit", len);
    if (deadline_ms <= grpc_now_ms())
        return err_set(e, -E_DEADLINE, "kdb-next call deadline already passed");
    _cleanup_free_ unsigned char *framed = malloc(len + 5);
    if (!framed)
        return err_set(e, -E_NOMEM, "out of memory");
    framed[0] = 0;
    framed[1] = (unsigned char)(len >> 24);
    framed[2] = (unsigned char)(len >> 16);
    framed[3] = (unsigned char)(len >> 8);
    framed[4] = (unsigned char)len;
    if (len)
        memcpy(framed + 5, msg, len);

    struct call c = {.method = method, .req = framed, .req_len = len + 5,
                     .deadline_ms = deadline_ms, .grpc_status = -1};
    pthread_cond_init(&c.cond, NULL);
    pthread_mutex_lock(&ch->lock);
    if (ch->stopping) {
        pthread_mutex_unlock(&ch->lock);
        pthread_cond_destroy(&c.cond);
        return err_set(e, -E_UNAVAILABLE, "kdb-next channel closed");
    }
    if (ch->submit_tail)
        ch->submit_tail->next = &c;
    else
        ch->submit_head = &c;
    ch->submit_tail = &c;
    pthread_mutex_unlock(&ch->lock);
    wake(ch);
    pthread_mutex_lock(&ch->lock);
    while (!c.done)
        pthread_cond_wait(&c.cond, &ch->lock);
    pthread_mutex_unlock(&ch->lock);
    pthread_cond_destroy(&c.cond);
    _cleanup_free_ unsigned char *resp = c.resp;

    if (c.transport_rc < 0) {
        if (info)
            info->not_sent = c.not_sent;
        return err_set(e, c.transport_rc, "%s", c.transport_msg);
    }
    if (info) {
        info->not_sent = false;
        info->status = c.grpc_status;
    }
    if (c.grpc_status < 0) {
        /* no gRPC status at all: map the HTTP status as gRPC clients do */
        int st = c.http_status;
        int rc = st == 401                                         ? -E_PERMISSION
                 : st == 403                                       ? -E_PERMISSION
                 : (st == 429 || st == 502 || st == 503 || st == 504) ? -E_UNAVAILABLE
                                                                   : -E_IO;
        return err_set(e, rc, "kdb-next answered HTTP %d without a gRPC status", st);
    }
    if (c.grpc_status != GRPC_OK) {
        int rc = grpc_status_to_err(c.grpc_status);
        return err_set(e, rc, "kdb-next: %s%s%s", status_name(c.grpc_status),
                       c.grpc_msg[0] ? ": " : "", c.grpc_msg);
    }
    if (c.http_status != 200 || !c.content_type_ok)
        return err_set(e, -E_IO, "kdb-next answered HTTP %d with a non-gRPC content type",
                       c.http_status);
    if (c.resp_len < 5)
        return err_set(e, -E_IO, "kdb-next answered OK without a message");
    if (c.resp[0] != 0)
        return err_set(e, -E_IO, "kdb-next sent a compressed message (not negotiated)");
    size_t mlen = ((size_t)c.resp[1] << 24) | ((size_t)c.resp[2] << 16) |
                  ((size_t)c.resp[3] << 8) | c.resp[4];
    if (mlen > GRPC_MAX_RECV_MESSAGE || mlen + 5 != c.resp_len)
        return err_set(e, -E_IO, "kdb-next sent a malformed unary response");
    memmove(resp, resp + 5, mlen);
    if (mlen == 0) {
        /* never hand out NULL on success */
        unsigned char *one = realloc(TAKE_PTR(resp), 1);
        if (!one)
            return err_set(e, -E_NOMEM, "out of memory");
        resp = one;
    }
    *ret_msg = TAKE_PTR(resp);
    *ret_len = mlen;
    return 0;
}
