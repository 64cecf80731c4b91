/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Operations (see ops.h). The metrics registry itself is metrics.c; this file knows the
 * server's requests, its configuration and its keys, and turns them into metrics and reloads.
 */
#include "server/ops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "oidc/keys.h"
#include "oidc/params.h"
#include "server/metrics.h"

extern char **environ;

/* The decoded value of @name in the urlencoded @body (caller frees), or NULL. */
static char *form_value(const char *body, size_t len, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && body[j] != '&')
            j++;
        if (j - i > nlen && memcmp(body + i, name, nlen) == 0 && body[i + nlen] == '=') {
            char *v = NULL;
            if (oidc_url_decode(body + i + nlen + 1, j - i - nlen - 1, 1, &v, NULL) < 0)
                return NULL;
            return v;
        }
        i = j + 1;
    }
    return NULL;
}

void ops_observe(const char *method, size_t method_len, const char *path, size_t path_len,
                 const char *body, size_t body_len, int status, double seconds)
{
    enum metrics_endpoint ep = metrics_endpoint_of(path, path_len);
    metrics_request(ep, status, seconds);
    if (ep == METRICS_EP_TOKEN && status == 200 && body) {
        _cleanup_free_ char *grant =
            form_value(body, body_len > 65536 ? 65536 : body_len, "grant_type");
        metrics_token_issued(metrics_grant_of(grant));
    } else if (ep == METRICS_EP_LOGIN && (status == 401 || status == 429) && method_len == 4 &&
               memcmp(method, "POST", 4) == 0) {
        metrics_login_failure();
    }
}

void ops_metrics_respond(const struct oidc_request *req, struct oidc_response *resp)
{
    if (oidc_request_header(req, "x-forwarded-for") || oidc_request_header(req, "forwarded")) {
        oidc_response_body(resp, 404, "text/plain; charset=utf-8", strdup("not found\n"), 10);
        oidc_response_note(resp, "metrics refused through a proxy");
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        oidc_response_body(resp, 405, "text/plain; charset=utf-8", strdup("use GET\n"), 8);
        oidc_response_header(resp, "allow", "GET, HEAD");
        return;
    }
    struct buf b = BUF_INIT;
    if (metrics_render(&b) < 0) {
        buf_release(&b);
        oidc_response_body(resp, 500, "text/plain; charset=utf-8", strdup("out of memory\n"), 14);
        return;
    }
    size_t len = 0;
    char *text = buf_detach(&b, &len);
    oidc_response_body(resp, 200, METRICS_CONTENT_TYPE, text, text ? len : 0);
    oidc_response_header(resp, "cache-control", "no-store");
}

/* The creation time of the key that signs now, for /metrics (worker thread). */
static int64_t signing_key_created(void *cbdata)
{
    struct store *s = cbdata;
    _cleanup_free_ struct oidc_key_info *keys = NULL;
    size_t n = 0;
    int64_t created = 0;
    if (oidc_keys_list(s, &keys, &n, NULL) < 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (keys[i].signing && keys[i].created_at > created)
            created = keys[i].created_at;
    return created;
}

/* Opens @path for appending and puts it on stderr. */
static int log_file_open(const char *path, struct err *e)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0)
        return err_set(e, -E_IO, "log_file '%s': %s", path, strerror(errno));
    if (dup2(fd, STDERR_FILENO) < 0) {
        int saved = errno;
        close(fd);
        return err_set(e, -E_IO, "log_file '%s': %s", path, strerror(saved));
    }
    close(fd);
    return 0;
}

int ops_serve_begin(struct cli *cl)
{
    struct err e = {0};
    if (cl->cfg.log_file && log_file_open(cl->cfg.log_file, &e) < 0)
        return cli_fail("%s", e.msg);
    if (cl->store)
        metrics_set_key_created_cb(signing_key_created, cl->store);
    return 0;
}

/* config_dump() of @c as one string (caller frees). */
static char *dump(const struct config *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    config_dump(c, f);
    fclose(f);
    return text;
}

/* The line of @text that starts with "@key = " (borrowed into @out), or an empty string. */
static void line_of(const char *text, const char *key, size_t klen, char *out, size_t n)
{
    out[0] = '\0';
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t l = eol ? (size_t)(eol - p) : strlen(p);
        if (l > klen + 2 && memcmp(p, key, klen) == 0 && memcmp(p + klen, " = ", 3) == 0) {
            snprintf(out, n, "%.*s", (int)l, p);
            return;
        }
        p = eol ? eol + 1 : NULL;
    }
}

void ops_reload(struct cli *cl, const struct cli_opts *co)
{
    struct config fresh;
    struct err e = {0};

    if (cl->cfg.log_file && log_file_open(cl->cfg.log_file, &e) < 0)
        log_error("reload: %s", e.msg);
    if (config_load(&fresh, co->config, environ, co->sets, co->nsets, &e) < 0) {
        log_error("reload: configuration not reloaded: %s", e.msg);
        config_release(&fresh);
        return;
    }
    _cleanup_free_ char *before = dump(&cl->cfg);
    _cleanup_free_ char *after = dump(&fresh);
    size_t restart = 0;
    if (before && after) {
        /* Walk the keys of the fresh dump; each line is "key = value". */
        for (const char *p = after; *p;) {
            const char *eq = strstr(p, " = ");
            const char *eol = strchr(p, '\n');
            if (!eq || !eol || eq > eol)
                break;
            char key[64], was[512], now[512];
            size_t klen = (size_t)(eq - p);
            snprintf(key, sizeof key, "%.*s", (int)klen, p);
            line_of(before, key, klen, was, sizeof was);
            line_of(after, key, klen, now, sizeof now);
            if (strcmp(was, now) != 0 && strcmp(key, "log_level") != 0 &&
                strcmp(key, "log_file") != 0) {
                log_warn("reload: '%s' changed: restart to apply it", key);
                restart++;
            }
            p = eol + 1;
        }
    }
    if (fresh.log_level != cl->cfg.log_level) {
        log_set_level((enum log_level)fresh.log_level);
        cl->cfg.log_level = fresh.log_level;
        log_info("reload: log_level applied");
    }
    bool same_file =
        (!fresh.log_file && !cl->cfg.log_file) ||
        (fresh.log_file && cl->cfg.log_file && strcmp(fresh.log_file, cl->cfg.log_file) == 0);
    if (!same_file) {
        if (!fresh.log_file) {
            log_warn("reload: log_file removed: restart to log to stderr again");
        } else if (log_file_open(fresh.log_file, &e) < 0) {
            log_error("reload: %s", e.msg);
        } else {
            free(cl->cfg.log_file);
            cl->cfg.log_file = strdup(fresh.log_file);
            log_info("reload: logging to '%s'", fresh.log_file);
        }
    }
    log_info("reload: done (%zu changed setting%s need%s a restart)", restart,
             restart == 1 ? "" : "s", restart == 1 ? "s" : "");
    config_release(&fresh);
}
