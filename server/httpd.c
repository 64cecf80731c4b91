/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The h2o front and the worker pool.
 *
 * Request lifetime. h2o 2.2.5 has no reference count on h2o_req_t: when the client goes away
 * (HTTP/1 close, HTTP/2 RST_STREAM) h2o disposes the request and clears its memory pool while
 * a worker may still be busy with it. So a request handed to the pool is copied whole into a
 * task (method, path, query, headers, body, client address): the worker only ever reads the
 * task. A small "guard" is allocated in the request's pool with a dispose callback; when h2o
 * clears the pool, the guard tells the task that its request is gone. Both run on the loop
 * thread that owns the request, as does the receipt of the finished task, so no lock is needed:
 * the finished task either finds its request alive (sends the answer, detaches the guard) or
 * gone (drops the answer).
 */
#include "httpd.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <h2o.h>
#include <h2o/socket/evloop.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/rand.h"
#include "oidc/cors.h"
#include "oidc/discovery.h"
#include "oidc/keys.h"
#include "oidc/oidc.h"
#include "server/ops.h"

#define REQ_HEADERS_MAX 64
#define REQ_HEADER_NAME_MAX 128
#define REQ_HEADER_VALUE_MAX 8192
#define REQ_HEADERS_TOTAL_MAX 32768
#define QUEUE_PER_THREAD 64

enum task_kind { TASK_OIDC, TASK_READYZ, TASK_METRICS };

struct loop;

struct guard {
    struct task *task;
};

struct task {
    h2o_multithread_message_t msg; /* worker -> loop */
    struct task *next;             /* pool queue */
    struct loop *loop;
    h2o_req_t *req;      /* NULL once h2o disposed the request */
    struct guard *guard; /* lives in the request's pool */
    enum task_kind kind;
    struct timespec start;
    char method[16];
    char client[64];
    char *path;
    char *query;
    char *body;
    size_t body_len; /* what body holds: wiped by task_free() whatever the request's fate */
    struct oidc_kv *headers;
    size_t nheaders;
    struct oidc_request oreq;
    struct oidc_response resp;
};

struct cached_body {
    char *body;
    size_t len;
    char etag[40];
};

struct loop {
    struct httpd *h;
    pthread_t tid;
    int fd;
    h2o_evloop_t *evloop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
    h2o_socket_t *listener;
    h2o_multithread_receiver_t done_rx;
    h2o_multithread_receiver_t ctl_rx;
    h2o_multithread_message_t stop_msg;
    bool stopping;
    int grace_ms;
    size_t inflight;
    uint64_t jwks_gen;
    struct cached_body jwks;
};

struct httpd {
    const struct config *cfg;
    struct oidc_ctx *oidc;
    struct store *store;
    h2o_globalconf_t gc;
    h2o_handler_t *handler;
    struct loop *loops;
    size_t nloops;
    char address[80];
    struct cached_body discovery;
    bool https;
    /* worker pool */
    pthread_t *workers;
    size_t nworkers;
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    struct task *qhead, *qtail;
    size_t qlen, qmax;
    bool qstop;
    /* start-up barrier */
    pthread_mutex_t slock;
    pthread_cond_t scond;
    size_t started;
};

/* The server object is kept reachable until exit: h2o's per-loop state is not torn down
 * (its contexts cannot be disposed with connections open), and keeping it reachable keeps
 * leak checkers quiet about what the process exit releases anyway. */
static struct httpd *the_httpd;

/* ---- small pure helpers ---- */

int httpd_etag_match(const char *inm, size_t inm_len, const char *etag)
{
    size_t elen = strlen(etag);
    if (!inm || !inm_len)
        return 0;
    for (size_t i = 0; i < inm_len;) {
        while (i < inm_len && (inm[i] == ' ' || inm[i] == ','))
            i++;
        size_t j = i;
        while (j < inm_len && inm[j] != ',')
            j++;
        size_t end = j;
        while (end > i && inm[end - 1] == ' ')
            end--;
        const char *tok = inm + i;
        size_t tlen = end - i;
        if (tlen >= 2 && tok[0] == 'W' && tok[1] == '/') {
            tok += 2;
            tlen -= 2;
        }
        if ((tlen == 1 && tok[0] == '*') || (tlen == elen && memcmp(tok, etag, elen) == 0))
            return 1;
        i = j;
    }
    return 0;
}

static void sockaddr_text(const struct sockaddr *sa, char *out, size_t n)
{
    const void *a = NULL;
    if (sa->sa_family == AF_INET)
        a = &((const struct sockaddr_in *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (!a || !inet_ntop(sa->sa_family, a, out, (socklen_t)n))
        snprintf(out, n, "-");
    /* Show an IPv4 peer on a v6 socket as plain IPv4. */
    if (strncmp(out, "::ffff:", 7) == 0 && strchr(out, '.'))
        memmove(out, out + 7, strlen(out + 7) + 1);
}

static bool trusted_text(const struct config *cfg, const char *ip)
{
    for (size_t i = 0; i < cfg->nproxies; i++)
        if (config_cidr_match_text(&cfg->proxies[i], ip))
            return true;
    return false;
}

void httpd_client_addr(const struct config *cfg, const struct sockaddr *peer, const char *xff,
                       size_t xff_len, char *out, size_t n)
{
    sockaddr_text(peer, out, n);
    if (!xff || !xff_len || !config_proxy_trusted(cfg, peer))
        return;
    /* Walk X-Forwarded-For from the right: each hop was appended by the proxy to its right.
     * Stop at the first hop that is not a trusted proxy; that is the client. */
    size_t end = xff_len;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        size_t a = start, b = end;
        while (a < b && (xff[a] == ' ' || xff[a] == '\t'))
            a++;
        while (b > a && (xff[b - 1] == ' ' || xff[b - 1] == '\t'))
            b--;
        char ip[INET6_ADDRSTRLEN + 1];
        unsigned char tmp[16];
        if (b - a == 0 || b - a >= sizeof ip)
            return; /* garbage: keep the last address we could trust */
        memcpy(ip, xff + a, b - a);
        ip[b - a] = '\0';
        if (inet_pton(AF_INET, ip, tmp) != 1 && inet_pton(AF_INET6, ip, tmp) != 1)
            return;
        snprintf(out, n, "%s", ip);
        if (!trusted_text(cfg, ip))
            return;
        if (start == 0)
            return;
        end = start - 1;
    }
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

/* ---- sending (loop thread) ---- */

static void access_log_ms(h2o_req_t *req, int status, double ms, const char *client,
                          const char *note)
{
    /* Every answered request passes here once: count it (server/ops.h). */
    ops_observe(req->method.base, req->method.len, req->path_normalized.base,
                req->path_normalized.len, req->entity.base, req->entity.base ? req->entity.len : 0,
                status, ms / 1e3);
    if (!log_enabled(LOG_LVL_INFO))
        return;
    size_t plen = req->path_normalized.len > 200 ? 200 : req->path_normalized.len;
    size_t mlen = req->method.len > 16 ? 16 : req->method.len;
    log_msg(LOG_LVL_INFO, "access: %.*s %.*s %d %.1fms %s%s%s", (int)mlen, req->method.base,
            (int)plen, req->path_normalized.base, status, ms, client, note && *note ? " " : "",
            note ? note : "");
}

static void access_log(h2o_req_t *req, int status, const struct timespec *start, const char *client,
                       const char *note)
{
    access_log_ms(req, status, ms_since(start), client, note);
}

static bool has_header(const struct oidc_response *resp, const char *name)
{
    for (size_t i = 0; i < resp->nheaders; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0)
            return true;
    return false;
}

static void add_header(h2o_req_t *req, const char *name, const char *value)
{
    size_t nlen = strlen(name), vlen = strlen(value);
    h2o_iovec_t n = h2o_strdup(&req->pool, name, nlen);
    for (size_t i = 0; i < nlen; i++)
        n.base[i] = (char)tolower((unsigned char)n.base[i]);
    h2o_iovec_t v = h2o_strdup(&req->pool, value, vlen);
    h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, nlen, 1, NULL, v.base, vlen);
}

/* A header from static strings (or bytes the request owns): only h2o's header list grows. */
static void add_static(h2o_req_t *req, const char *name, const char *value, size_t vlen)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, NULL, value, vlen);
}

/* The request's Origin when it may read this endpoint's answer (oidc/cors.h), else NULL. A
 * second Origin header is ambiguous: nothing is allowed then. */
static const h2o_iovec_t *cors_origin(struct httpd *h, h2o_req_t *req)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    if (i < 0 || h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), i) >= 0)
        return NULL;
    const h2o_iovec_t *v = &req->headers.entries[i].value;
    return oidc_cors_allowed(h->oidc->cors, v->base, v->len) ? v : NULL;
}

/* CORS on the endpoints that answer it, errors included (a browser app must be able to read
 * an invalid_grant): Vary: Origin always, so no cache gives one origin's answer to another;
 * the allow headers only for an allowed Origin, echoed byte for byte. Never "*", never
 * credentials: none of these endpoints reads a cookie. */
static void cors_headers(struct httpd *h, h2o_req_t *req)
{
    const struct oidc_cors_endpoint *ce =
        oidc_cors_endpoint(req->path_normalized.base, req->path_normalized.len);
    if (!ce)
        return;
    add_static(req, "vary", H2O_STRLIT("origin"));
    const h2o_iovec_t *o = cors_origin(h, req);
    if (!o)
        return;
    add_static(req, "access-control-allow-origin", o->base, o->len);
    if (ce->expose_headers)
        add_static(req, "access-control-expose-headers", ce->expose_headers,
                   strlen(ce->expose_headers));
}

/* Headers every answer carries unless the endpoint chose its own (a login page's CSP). */
static void security_headers(struct httpd *h, h2o_req_t *req, const struct oidc_response *r)
{
    cors_headers(h, req);
    static const struct {
        const char *name, *value;
    } defaults[] = {
        {"x-content-type-options", "nosniff"},
        {"x-frame-options", "DENY"},
        {"referrer-policy", "no-referrer"},
        {"content-security-policy", "default-src 'none'; frame-ancestors 'none'"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(defaults); i++)
        if (!r || !has_header(r, defaults[i].name))
            add_header(req, defaults[i].name, defaults[i].value);
    if (h->https && (!r || !has_header(r, "strict-transport-security")))
        add_header(req, "strict-transport-security", "max-age=31536000");
}

static void send_body(h2o_req_t *req, int status, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason_of(status);
    if (status == 304 || status == 204) {
        h2o_send_inline(req, "", 0);
        return;
    }
    req->res.content_length = len;
    h2o_send_inline(req, body ? body : "", len);
}

/* A preflight (OPTIONS on a CORS endpoint), answered here without a worker: 204, with the
 * methods, request headers and cache time only for an allowed Origin. A refused preflight is
 * the same 204 without them, which is what makes the browser refuse the request. */
static void send_preflight(struct httpd *h, h2o_req_t *req, const struct oidc_cors_endpoint *ce,
                           const struct timespec *start, const char *client)
{
    if (cors_origin(h, req)) {
        add_static(req, "access-control-allow-methods", ce->methods, strlen(ce->methods));
        if (ce->allow_headers)
            add_static(req, "access-control-allow-headers", ce->allow_headers,
                       strlen(ce->allow_headers));
        add_static(req, "access-control-max-age", H2O_STRLIT(OIDC_CORS_MAX_AGE));
    }
    security_headers(h, req, NULL);
    send_body(req, 204, NULL, 0);
    access_log(req, 204, start, client, NULL);
}

static void send_response(struct httpd *h, h2o_req_t *req, const struct oidc_response *r)
{
    for (size_t i = 0; i < r->nheaders; i++)
        add_header(req, r->headers[i].name, r->headers[i].value);
    security_headers(h, req, r);
    send_body(req, r->status ? r->status : 500, r->body, r->body_len);
}

/* A JSON answer made on the loop thread. */
static void send_json(struct httpd *h, h2o_req_t *req, int status, const char *json,
                      const struct timespec *start, const char *client)
{
    add_header(req, "content-type", "application/json");
    add_header(req, "cache-control", "no-store");
    security_headers(h, req, NULL);
    send_body(req, status, json, strlen(json));
    access_log(req, status, start, client, NULL);
}

static void send_error(struct httpd *h, h2o_req_t *req, int code, const char *desc,
                       const struct timespec *start, const char *client)
{
    char body[256];
    snprintf(body, sizeof body, "{\"error\":\"%s\",\"error_description\":\"%s\"}", err_oauth(code),
             desc);
    send_json(h, req, err_http_status(code), body, start, client);
}

static void send_cached(struct httpd *h, h2o_req_t *req, const struct cached_body *c,
                        const struct timespec *start, const char *client)
{
    add_header(req, "content-type", "application/json");
    char cc[48];
    snprintf(cc, sizeof cc, "public, max-age=%d", h->cfg->keys_jwks_max_age);
    add_header(req, "cache-control", cc);
    add_header(req, "etag", c->etag);
    security_headers(h, req, NULL);
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    int status = 200;
    if (i >= 0 && httpd_etag_match(req->headers.entries[i].value.base,
                                   req->headers.entries[i].value.len, c->etag))
        status = 304;
    send_body(req, status, c->body, c->len);
    access_log(req, status, start, client, NULL);
}

static int cached_set(struct cached_body *c, char *body)
{
    char hex[65];
    if (!body)
        return -1;
    free(c->body);
    c->body = body;
    c->len = strlen(body);
    sha256_hex(body, c->len, hex);
    snprintf(c->etag, sizeof c->etag, "\"%.32s\"", hex);
    return 0;
}

/* ---- tasks ---- */

static void task_free(struct task *t)
{
    if (!t)
        return;
    free(t->path);
    free(t->query);
    if (t->body) {
        OPENSSL_cleanse(t->body, t->body_len);
        free(t->body);
    }
    for (size_t i = 0; i < t->nheaders; i++) {
        free(t->headers[i].name);
        if (t->headers[i].value) {
            OPENSSL_cleanse(t->headers[i].value, strlen(t->headers[i].value));
            free(t->headers[i].value);
        }
    }
    free(t->headers);
    oidc_response_release(&t->resp);
    free(t);
}

static void guard_dispose(void *p)
{
    struct guard *g = p;
    if (g->task) {
        g->task->req = NULL;
        g->task->guard = NULL;
        g->task = NULL;
    }
}

/* Copies the headers, lower-cased and capped; cookies are joined into one header (HTTP/2
 * sends one per cookie). -E_TOOBIG when over the caps; -E_INVALID_REQUEST for a second
 * Authorization header (not a list, RFC 7230 3.2.2: the endpoints would read only the first,
 * while something in front of us might have read another). */
static int copy_headers(struct task *t, h2o_req_t *req)
{
    size_t total = 0, n = 0;
    bool seen_auth = false;
    t->headers = calloc(REQ_HEADERS_MAX, sizeof *t->headers);
    if (!t->headers)
        return -E_NOMEM;
    struct oidc_kv *cookie = NULL;
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *hd = &req->headers.entries[i];
        if (hd->name->len > REQ_HEADER_NAME_MAX || hd->value.len > REQ_HEADER_VALUE_MAX)
            return -E_TOOBIG;
        total += hd->name->len + hd->value.len;
        if (total > REQ_HEADERS_TOTAL_MAX)
            return -E_TOOBIG;
        if (hd->name->len == 13 && strncasecmp(hd->name->base, "authorization", 13) == 0) {
            if (seen_auth)
                return -E_INVALID_REQUEST;
            seen_auth = true;
        }
        bool is_cookie = hd->name->len == 6 && strncasecmp(hd->name->base, "cookie", 6) == 0;
        if (is_cookie && cookie) {
            size_t old = strlen(cookie->value);
            char *v = realloc(cookie->value, old + 2 + hd->value.len + 1);
            if (!v)
                return -E_NOMEM;
            memcpy(v + old, "; ", 2);
            memcpy(v + old + 2, hd->value.base, hd->value.len);
            v[old + 2 + hd->value.len] = '\0';
            cookie->value = v;
            continue;
        }
        if (n >= REQ_HEADERS_MAX)
            return -E_TOOBIG;
        struct oidc_kv *kv = &t->headers[n];
        kv->name = strndup(hd->name->base, hd->name->len);
        kv->value = strndup(hd->value.base, hd->value.len);
        t->nheaders = ++n;
        if (!kv->name || !kv->value)
            return -E_NOMEM;
        for (char *p = kv->name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        if (is_cookie)
            cookie = kv;
    }
    return 0;
}

static void pool_push(struct httpd *h, struct task *t)
{
    pthread_mutex_lock(&h->qlock);
    t->next = NULL;
    if (h->qtail)
        h->qtail->next = t;
    else
        h->qhead = t;
    h->qtail = t;
    h->qlen++;
    pthread_cond_signal(&h->qcond);
    pthread_mutex_unlock(&h->qlock);
}

static bool pool_full(struct httpd *h)
{
    pthread_mutex_lock(&h->qlock);
    bool full = h->qlen >= h->qmax;
    pthread_mutex_unlock(&h->qlock);
    return full;
}

static void dispatch(struct loop *l, h2o_req_t *req, enum task_kind kind,
                     const struct timespec *start, const char *client)
{
    struct httpd *h = l->h;
    if (req->entity.base && req->entity.len > h->cfg->max_body) {
        send_error(h, req, -E_TOOBIG, "request body too large", start, client);
        return;
    }
    if (pool_full(h)) {
        send_error(h, req, -E_UNAVAILABLE, "server busy", start, client);
        return;
    }
    struct task *t = calloc(1, sizeof *t);
    if (!t) {
        send_error(h, req, -E_NOMEM, "out of memory", start, client);
        return;
    }
    t->loop = l;
    t->kind = kind;
    t->start = *start;
    snprintf(t->client, sizeof t->client, "%s", client);
    snprintf(t->method, sizeof t->method, "%.*s",
             (int)(req->method.len < 15 ? req->method.len : 15), req->method.base);
    t->path = strndup(req->path_normalized.base, req->path_normalized.len);
    if (req->query_at != SIZE_MAX)
        t->query = strndup(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1);
    if (req->entity.base) {
        t->body = malloc(req->entity.len + 1);
        if (t->body) {
            memcpy(t->body, req->entity.base, req->entity.len);
            t->body[req->entity.len] = '\0';
            t->body_len = req->entity.len;
        }
    }
    int r = copy_headers(t, req);
    if (r == 0 &&
        (!t->path || (req->query_at != SIZE_MAX && !t->query) || (req->entity.base && !t->body)))
        r = -E_NOMEM;
    if (r < 0) {
        task_free(t);
        if (r == -E_TOOBIG) {
            add_header(req, "content-type", "application/json");
            security_headers(h, req, NULL);
            static const char body431[] =
                "{\"error\":\"invalid_request\",\"error_description\":\"headers too large\"}";
            send_body(req, 431, body431, sizeof body431 - 1);
            access_log(req, 431, start, client, NULL);
        } else if (r == -E_INVALID_REQUEST) {
            send_error(h, req, r, "repeated authorization header", start, client);
        } else {
            send_error(h, req, -E_NOMEM, "out of memory", start, client);
        }
        return;
    }
    t->oreq = (struct oidc_request){
        .method = t->method,
        .path = t->path,
        .query = t->query,
        .query_len = t->query ? strlen(t->query) : 0,
        .body = t->body,
        .body_len = t->body_len,
        .headers = t->headers,
        .nheaders = t->nheaders,
        .client_addr = t->client,
    };
    t->req = req;
    t->guard = h2o_mem_alloc_shared(&req->pool, sizeof *t->guard, guard_dispose);
    t->guard->task = t;
    l->inflight++;
    pool_push(h, t);
}

/* Worker thread. */
static void *worker_main(void *arg)
{
    struct httpd *h = arg;
    for (;;) {
        pthread_mutex_lock(&h->qlock);
        while (!h->qhead && !h->qstop)
            pthread_cond_wait(&h->qcond, &h->qlock);
        if (!h->qhead) {
            pthread_mutex_unlock(&h->qlock);
            return NULL;
        }
        struct task *t = h->qhead;
        h->qhead = t->next;
        if (!h->qhead)
            h->qtail = NULL;
        h->qlen--;
        pthread_mutex_unlock(&h->qlock);

        if (t->kind == TASK_READYZ) {
            struct err e = {0};
            if (store_ping(h->store, &e) == 0) {
                oidc_response_body(&t->resp, 200, "application/json",
                                   strdup("{\"status\":\"ready\"}"), 18);
            } else {
                oidc_response_body(&t->resp, 503, "application/json",
                                   strdup("{\"status\":\"unavailable\"}"), 24);
                oidc_response_note(&t->resp, "store: %s", e.msg);
            }
            oidc_response_header(&t->resp, "cache-control", "no-store");
        } else if (t->kind == TASK_METRICS) {
            ops_metrics_respond(&t->oreq, &t->resp);
        } else {
            oidc_handle(h->oidc, &t->oreq, &t->resp);
        }
        h2o_multithread_send_message(&t->loop->done_rx, &t->msg);
    }
}

/* Loop thread: finished tasks come back here. */
static void on_done(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages)
{
    struct loop *l = H2O_STRUCT_FROM_MEMBER(struct loop, done_rx, rx);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        struct task *t = H2O_STRUCT_FROM_MEMBER(struct task, msg, m);
        l->inflight--;
        if (t->req) {
            h2o_req_t *req = t->req;
            t->guard->task = NULL;
            t->guard = NULL;
            t->req = NULL;
            send_response(l->h, req, &t->resp);
            access_log(req, t->resp.status, &t->start, t->client, t->resp.log);
        } else if (log_enabled(LOG_LVL_INFO)) {
            log_msg(LOG_LVL_INFO, "access: %s %.200s %d %.1fms %s client gone%s%s", t->method,
                    t->path, t->resp.status, ms_since(&t->start), t->client,
                    *t->resp.log ? " " : "", t->resp.log);
        }
        task_free(t);
    }
}

/* ---- the handler (loop thread) ---- */

static bool method_is(h2o_req_t *req, const char *m)
{
    return req->method.len == strlen(m) && memcmp(req->method.base, m, req->method.len) == 0;
}

/* The client's address for logs and throttles: the peer, or X-Forwarded-For's when the peer
 * is a trusted proxy (httpd_client_addr()). */
static void client_of(struct httpd *h, h2o_req_t *req, char *client, size_t n)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss) == 0)
        ss.ss_family = AF_UNSPEC;
    /* Several X-Forwarded-For headers are one list, in order (RFC 7230 section 3.2.2); a
     * list longer than the buffer keeps its right end, the hops our proxies added. */
    char xff[1024];
    size_t xff_len = 0;
    for (ssize_t xi = -1;
         (xi = h2o_find_header(&req->headers, H2O_TOKEN_X_FORWARDED_FOR, xi)) >= 0;) {
        const h2o_iovec_t v = req->headers.entries[xi].value;
        size_t need = (xff_len ? 2 : 0) + v.len;
        if (need >= sizeof xff) {
            memcpy(xff, v.base + v.len - (sizeof xff - 1), sizeof xff - 1);
            xff_len = sizeof xff - 1;
            continue;
        }
        if (xff_len + need >= sizeof xff) {
            size_t drop = xff_len + need - (sizeof xff - 1);
            memmove(xff, xff + drop, xff_len - drop);
            xff_len -= drop;
        }
        if (xff_len) {
            memcpy(xff + xff_len, ", ", 2);
            xff_len += 2;
        }
        memcpy(xff + xff_len, v.base, v.len);
        xff_len += v.len;
    }
    httpd_client_addr(h->cfg, (struct sockaddr *)&ss, xff_len ? xff : NULL, xff_len, client, n);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct loop *l = H2O_STRUCT_FROM_MEMBER(struct loop, ctx, req->conn->ctx);
    struct httpd *h = l->h;
    struct timespec start;
    char client[64];

    (void)self;
    clock_gettime(CLOCK_MONOTONIC, &start);
    client_of(h, req, client, sizeof client);
    /* h2o decodes percent-escapes before routing (%2F is '/', %2E%2E a dot segment, resolved
     * and clamped at the root), so a request reaches the endpoint its decoded path names, and
     * that endpoint does all the checking: no access rule here depends on the raw path. A
     * decoded NUL would cut the path short in the task's copy (/token%00x would be /token),
     * so a control byte anywhere makes the path unknown. */
    const h2o_iovec_t p = req->path_normalized;
    for (size_t i = 0; i < p.len; i++) {
        if ((unsigned char)p.base[i] < 0x20 || p.base[i] == 0x7f) {
            send_error(h, req, -E_NOTFOUND, "not found", &start, client);
            return 0;
        }
    }
#define PATH_IS(s) (p.len == sizeof(s) - 1 && memcmp(p.base, s, sizeof(s) - 1) == 0)
    bool get = method_is(req, "GET") || method_is(req, "HEAD");
    const struct oidc_cors_endpoint *cors = oidc_cors_endpoint(p.base, p.len);
    if (cors && method_is(req, "OPTIONS")) {
        send_preflight(h, req, cors, &start, client);
    } else if (PATH_IS("/healthz")) {
        send_json(h, req, 200, "{\"status\":\"ok\"}", &start, client);
    } else if (PATH_IS("/readyz")) {
        dispatch(l, req, TASK_READYZ, &start, client);
    } else if (PATH_IS(OPS_PATH_METRICS)) {
        dispatch(l, req, TASK_METRICS, &start, client);
    } else if (PATH_IS(OIDC_PATH_DISCOVERY)) {
        if (get)
            send_cached(h, req, &h->discovery, &start, client);
        else
            send_error(h, req, -E_METHOD, "use GET", &start, client);
    } else if (PATH_IS(OIDC_PATH_JWKS)) {
        if (!get) {
            send_error(h, req, -E_METHOD, "use GET", &start, client);
        } else if (!h->oidc->keys) {
            send_error(h, req, -E_UNAVAILABLE, "no keys", &start, client);
        } else {
            uint64_t gen = oidc_keys_generation(h->oidc->keys);
            if (gen != l->jwks_gen || !l->jwks.body) {
                if (cached_set(&l->jwks, oidc_keys_jwks_json(h->oidc->keys, NULL)) == 0)
                    l->jwks_gen = gen;
            }
            if (l->jwks.body)
                send_cached(h, req, &l->jwks, &start, client);
            else
                send_error(h, req, -E_NOMEM, "out of memory", &start, client);
        }
    } else {
        dispatch(l, req, TASK_OIDC, &start, client);
    }
#undef PATH_IS
    return 0;
}

/* ---- h2o's own error answers ----
 *
 * h2o 2.2.5 refuses some requests before any handler runs: a body over
 * max_request_entity_size (413, lib/http1.c create_entity_reader() for Content-Length,
 * handle_chunked_entity_read() for chunked bodies, and the HTTP/2 DATA path), a broken
 * Content-Length or chunked encoding (400). It then answers with h2o_send_error_generic():
 * text/plain "request entity is too large", and the connection closes. It cannot hand such a
 * request to us: the body is read whole before the handler is called, and 2.2.5 has no
 * streaming request body (h2o_req_t.proceed_req / write_req came with 2.3). Raising
 * max_request_entity_size to check the size ourselves would make h2o buffer every oversized
 * body up to the raised limit. But h2o_send_error_generic() answers on the host's
 * fallback_path (no handler was chosen; our handler sits on "/", which every routed request
 * matches), so a filter and a logger there see exactly these answers: the filter swaps the
 * body for our JSON error with the usual headers, the logger writes the access line.
 * Over HTTP/2 (`http2`, off by default) h2o answers a DATA frame past the cap with
 * RST_STREAM(REFUSED_STREAM) and no HTTP response at all (lib/http2/connection.c,
 * handle_data_frame): nothing reaches a filter or a logger, so that case stays a reset. */

struct json_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
    bool sent;
};

static void json_ostream_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                              h2o_send_state_t state)
{
    struct json_ostream *o = (struct json_ostream *)self;
    (void)bufs;
    (void)bufcnt;
    bool head = method_is(req, "HEAD");
    size_t n = !o->sent && !head ? 1 : 0;
    o->sent = true;
    h2o_ostream_send_next(&o->super, req, n ? &o->body : NULL, n, state);
}

static void fallback_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    struct loop *l = H2O_STRUCT_FROM_MEMBER(struct loop, ctx, req->conn->ctx);
    (void)self;
    if (req->res.status >= 400) {
        int code = req->res.status == 413 ? -E_TOOBIG : -E_INVALID_REQUEST;
        const char *desc = req->res.status == 413 ? "request body too large" : "malformed request";
        char json[192];
        int len = snprintf(json, sizeof json, "{\"error\":\"%s\",\"error_description\":\"%s\"}",
                           err_oauth(code), desc);
        h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE,
                       H2O_STRLIT("application/json"), 1);
        add_header(req, "cache-control", "no-store");
        security_headers(l->h, req, NULL);
        struct json_ostream *o = (struct json_ostream *)h2o_add_ostream(req, sizeof *o, slot);
        o->super.do_send = json_ostream_send;
        o->body = h2o_strdup(&req->pool, json, (size_t)len);
        o->sent = false;
        req->res.content_length = (size_t)len;
        slot = &o->super.next;
    }
    h2o_setup_next_ostream(req, slot);
}

static void fallback_log_access(h2o_logger_t *self, h2o_req_t *req)
{
    struct loop *l = H2O_STRUCT_FROM_MEMBER(struct loop, ctx, req->conn->ctx);
    struct timeval now;
    char client[64];
    (void)self;
    gettimeofday(&now, NULL);
    const struct timeval *t0 = &req->timestamps.request_begin_at;
    double ms = t0->tv_sec ? (double)(now.tv_sec - t0->tv_sec) * 1e3 +
                                 (double)(now.tv_usec - t0->tv_usec) / 1e3
                           : 0;
    client_of(l->h, req, client, sizeof client);
    access_log_ms(req, req->res.status, ms < 0 ? 0 : ms, client, "refused by h2o");
}

/* ---- loops ---- */

static void on_accept(h2o_socket_t *listener, const char *err)
{
    struct loop *l = listener->data;
    if (err)
        return;
    for (int i = 0; i < 16; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (!sock)
            return;
        h2o_accept(&l->accept, sock);
    }
}

static void on_ctl(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages)
{
    struct loop *l = H2O_STRUCT_FROM_MEMBER(struct loop, ctl_rx, rx);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
    }
    if (l->stopping)
        return;
    l->stopping = true;
    if (l->listener) {
        h2o_socket_read_stop(l->listener);
        h2o_socket_close(l->listener);
        l->listener = NULL;
    }
    h2o_context_request_shutdown(&l->ctx);
}

static void *loop_main(void *arg)
{
    struct loop *l = arg;
    struct httpd *h = l->h;

    l->evloop = h2o_evloop_create();
    h2o_context_init(&l->ctx, l->evloop, &h->gc);
    l->accept.ctx = &l->ctx;
    l->accept.hosts = h->gc.hosts;
    h2o_multithread_register_receiver(l->ctx.queue, &l->done_rx, on_done);
    h2o_multithread_register_receiver(l->ctx.queue, &l->ctl_rx, on_ctl);
    l->listener = h2o_evloop_socket_create(l->evloop, l->fd, H2O_SOCKET_FLAG_DONT_READ);
    l->listener->data = l;
    h2o_socket_read_start(l->listener, on_accept);

    pthread_mutex_lock(&h->slock);
    h->started++;
    pthread_cond_broadcast(&h->scond);
    pthread_mutex_unlock(&h->slock);

    while (!l->stopping)
        h2o_evloop_run(l->evloop, INT32_MAX);
    /* Draining: answer what the workers still hold, then give the writes a moment. */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (l->inflight > 0 && ms_since(&t0) < l->grace_ms)
        h2o_evloop_run(l->evloop, 50);
    for (int i = 0; i < 3; i++)
        h2o_evloop_run(l->evloop, 10);
    return NULL;
}

/* Splits "host:port" / "[v6]:port" / "*:port". */
static int split_listen(const char *listen, char *host, size_t hn, char *port, size_t pn)
{
    const char *colon;
    if (*listen == '[') {
        const char *end = strchr(listen, ']');
        if (!end || end[1] != ':')
            return -1;
        snprintf(host, hn, "%.*s", (int)(end - listen - 1), listen + 1);
        colon = end + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon)
            return -1;
        snprintf(host, hn, "%.*s", (int)(colon - listen), listen);
    }
    snprintf(port, pn, "%s", colon + 1);
    if (strcmp(host, "*") == 0)
        host[0] = '\0';
    return 0;
}

static int bind_one(const struct addrinfo *ai, uint16_t port, struct err *e)
{
    struct sockaddr_storage ss;
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int on = 1;
    if (fd < 0)
        return err_set(e, -E_IO, "socket: %s", strerror(errno));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) < 0) {
        close(fd);
        return err_set(e, -E_IO, "setsockopt: %s", strerror(errno));
    }
    if (bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) < 0 || listen(fd, H2O_SOMAXCONN) < 0) {
        int saved = errno;
        close(fd);
        return err_set(e, -E_IO, "cannot listen: %s", strerror(saved));
    }
    return fd;
}

/*
 * SO_REUSEPORT lets a second process of the same user join the socket group of a running
 * serve and silently take part of its connections (two stores answering one port). A socket
 * without SO_REUSEPORT cannot bind a port that such a group listens on, so this probe turns
 * that case into "address in use". SO_REUSEADDR: connections in TIME_WAIT after a restart
 * are no conflict.
 */
static int probe_free(const struct addrinfo *ai, const char *listen_str, struct err *e)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd < 0)
        return err_set(e, -E_IO, "socket: %s", strerror(errno));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        int saved = errno;
        close(fd);
        return err_set(e, -E_IO, "cannot listen on %s: %s%s", listen_str, strerror(saved),
                       saved == EADDRINUSE ? " (another serve running?)" : "");
    }
    close(fd);
    return 0;
}

int httpd_start(const struct config *cfg, struct oidc_ctx *oidc, struct store *store,
                struct httpd **ret, struct err *e)
{
    struct httpd *h = calloc(1, sizeof *h);
    if (!h)
        return err_set(e, -E_NOMEM, "out of memory");
    h->cfg = cfg;
    h->oidc = oidc;
    h->store = store;
    h->https = strncmp(cfg->issuer, "https://", 8) == 0;
    pthread_mutex_init(&h->qlock, NULL);
    pthread_cond_init(&h->qcond, NULL);
    pthread_mutex_init(&h->slock, NULL);
    pthread_cond_init(&h->scond, NULL);
    if (cached_set(&h->discovery, oidc_discovery_json(cfg->issuer, e)) < 0)
        return err_set(e, -E_NOMEM, "discovery: out of memory");

    /* h2o's configuration: one host, one handler for every path. */
    h2o_config_init(&h->gc);
    h->gc.server_name = h2o_iovec_init(H2O_STRLIT("koder-id-v2"));
    h->gc.max_request_entity_size = cfg->max_body;
    h->gc.http1.upgrade_to_http2 = cfg->http2;
    h->gc.http2.max_concurrent_requests_per_connection = (size_t)cfg->http2_max_streams;
    h2o_hostconf_t *host =
        h2o_config_register_host(&h->gc, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h->handler = h2o_create_handler(path, sizeof *h->handler);
    h->handler->on_req = on_req;
    h2o_create_filter(&host->fallback_path, sizeof(h2o_filter_t))->on_setup_ostream =
        fallback_setup_ostream;
    h2o_create_logger(&host->fallback_path, sizeof(h2o_logger_t))->log_access = fallback_log_access;

    /* Sockets: one per loop, SO_REUSEPORT; port 0 takes the first socket's port. */
    char hostname[256], port[16];
    if (split_listen(cfg->listen, hostname, sizeof hostname, port, sizeof port) < 0)
        return err_set(e, -E_CONFIG, "listen '%s' is not host:port", cfg->listen);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *ai = NULL;
    int gr = getaddrinfo(*hostname ? hostname : NULL, port, &hints, &ai);
    if (gr != 0)
        return err_set(e, -E_CONFIG, "listen '%s': %s", cfg->listen, gai_strerror(gr));
    long n = cfg->workers > 0 ? cfg->workers : sysconf(_SC_NPROCESSORS_ONLN);
    h->nloops = n > 0 ? (size_t)n : 1;
    h->loops = calloc(h->nloops, sizeof *h->loops);
    if (!h->loops) {
        freeaddrinfo(ai);
        return err_set(e, -E_NOMEM, "out of memory");
    }
    uint16_t bound_port = (uint16_t)atoi(port);
    if (bound_port != 0 && probe_free(ai, cfg->listen, e) < 0) {
        freeaddrinfo(ai);
        return e->code;
    }
    for (size_t i = 0; i < h->nloops; i++) {
        int fd = bind_one(ai, bound_port, e);
        if (fd < 0) {
            for (size_t j = 0; j < i; j++)
                close(h->loops[j].fd);
            freeaddrinfo(ai);
            char why[sizeof e->msg]; /* e->msg cannot be both source and target of err_set() */
            snprintf(why, sizeof why, "%s", e->msg);
            return err_set(e, e->code, "listen %s: %s", cfg->listen, why);
        }
        if (bound_port == 0) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            getsockname(fd, (struct sockaddr *)&ss, &sl);
            bound_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                       : ((struct sockaddr_in6 *)&ss)->sin6_port);
        }
        h->loops[i].fd = fd;
        h->loops[i].h = h;
    }
    {
        char a[INET6_ADDRSTRLEN + 1];
        sockaddr_text(ai->ai_addr, a, sizeof a);
        snprintf(h->address, sizeof h->address, ai->ai_family == AF_INET6 ? "[%s]:%u" : "%s:%u", a,
                 bound_port);
    }
    freeaddrinfo(ai);

    /* Workers first, so the loops have somewhere to send work. */
    h->nworkers = (size_t)cfg->pool_threads;
    h->qmax = h->nworkers * QUEUE_PER_THREAD;
    h->workers = calloc(h->nworkers, sizeof *h->workers);
    if (!h->workers)
        return err_set(e, -E_NOMEM, "out of memory");
    for (size_t i = 0; i < h->nworkers; i++)
        if (pthread_create(&h->workers[i], NULL, worker_main, h) != 0)
            return err_set(e, -E_INTERNAL, "cannot start worker threads");
    for (size_t i = 0; i < h->nloops; i++)
        if (pthread_create(&h->loops[i].tid, NULL, loop_main, &h->loops[i]) != 0)
            return err_set(e, -E_INTERNAL, "cannot start event-loop threads");
    pthread_mutex_lock(&h->slock);
    while (h->started < h->nloops)
        pthread_cond_wait(&h->scond, &h->slock);
    pthread_mutex_unlock(&h->slock);
    the_httpd = h;
    *ret = h;
    return 0;
}

const char *httpd_address(const struct httpd *h)
{
    return h->address;
}

size_t httpd_loops(const struct httpd *h)
{
    return h->nloops;
}

void httpd_stop(struct httpd *h, int grace_ms)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->nloops; i++) {
        h->loops[i].grace_ms = grace_ms;
        h2o_multithread_send_message(&h->loops[i].ctl_rx, &h->loops[i].stop_msg);
    }
    for (size_t i = 0; i < h->nloops; i++)
        pthread_join(h->loops[i].tid, NULL);
    pthread_mutex_lock(&h->qlock);
    h->qstop = true;
    pthread_cond_broadcast(&h->qcond);
    pthread_mutex_unlock(&h->qlock);
    for (size_t i = 0; i < h->nworkers; i++)
        pthread_join(h->workers[i], NULL);
}
