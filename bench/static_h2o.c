/* SPDX-License-Identifier: Apache-2.0 */
/*
 * static_h2o: the yardstick for discovery and JWKS. A minimal h2o 2.2.5 evloop server with the
 * same shape as `serve` (N threads, one SO_REUSEPORT socket each, HTTP/1.1) that answers every
 * request with one fixed body read from a file, so the gateway's numbers can be read against
 * what h2o itself does on this machine. Built only as a benchmark target, never installed.
 *
 * usage: static_h2o PORT THREADS BODYFILE
 */
#include <errno.h>
#include <h2o.h>
#include <h2o/socket/evloop.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static h2o_globalconf_t config;
static char *body;
static size_t body_len;
static int port;

struct thread {
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
};

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = body_len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("public, max-age=300"));
    h2o_send_inline(req, body, body_len);
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    struct thread *t = listener->data;
    if (err)
        return;
    for (int i = 0; i < 16; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (!sock)
            return;
        h2o_accept(&t->accept, sock);
    }
}

static void *run(void *arg)
{
    struct thread *t = arg;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int on = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, H2O_SOMAXCONN)) {
        perror("static_h2o: listen");
        exit(1);
    }
    t->loop = h2o_evloop_create();
    h2o_context_init(&t->ctx, t->loop, &config);
    t->accept.ctx = &t->ctx;
    t->accept.hosts = config.hosts;
    h2o_socket_t *listener = h2o_evloop_socket_create(t->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    listener->data = t;
    h2o_socket_read_start(listener, on_accept);
    for (;;)
        h2o_evloop_run(t->loop, INT32_MAX);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: static_h2o PORT THREADS BODYFILE\n");
        return 2;
    }
    port = atoi(argv[1]);
    int n = atoi(argv[2]);
    FILE *f = fopen(argv[3], "rb");
    if (!f || n < 1) {
        fprintf(stderr, "static_h2o: cannot read %s\n", argv[3]);
        return 1;
    }
    body = malloc(1 << 20);
    body_len = fread(body, 1, 1 << 20, f);
    fclose(f);

    h2o_config_init(&config);
    h2o_hostconf_t *host =
        h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *h = h2o_create_handler(path, sizeof *h);
    h->on_req = on_req;

    struct thread *threads = calloc((size_t)n, sizeof *threads);
    pthread_t tid;
    for (int i = 1; i < n; i++)
        pthread_create(&tid, NULL, run, &threads[i]);
    run(&threads[0]);
    return 0;
}
