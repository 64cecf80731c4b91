/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Authorization responses in the three response modes. The redirect_uri was checked against
 * the client's registration before anything reaches here; it never has a fragment of its own
 * (oidc_url_parse refuses '#'), so a fragment response is the URI, '#' and the parameters.
 */
#include "authresp.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "oidc/html.h"
#include "oidc/redirect.h"
#include "oidc/respond.h"

static const char *const mode_names[] = {"query", "fragment", "form_post"};

int oidc_resp_mode_parse(const char *s)
{
    for (size_t i = 0; s && i < ARRAY_SIZE(mode_names); i++)
        if (strcmp(s, mode_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *oidc_resp_mode_name(enum oidc_resp_mode mode)
{
    return (size_t)mode < ARRAY_SIZE(mode_names) ? mode_names[mode] : "query";
}

bool oidc_response_type_implicit(const char *rt)
{
    return rt && (strcmp(rt, "id_token") == 0 || strcmp(rt, "id_token token") == 0 ||
                  strcmp(rt, "token id_token") == 0);
}

enum oidc_resp_mode oidc_resp_mode_of(const char *response_type, const char *response_mode)
{
    int m = oidc_resp_mode_parse(response_mode);
    if (m >= 0)
        return (enum oidc_resp_mode)m;
    return oidc_response_type_implicit(response_type) ? OIDC_RESP_FRAGMENT : OIDC_RESP_QUERY;
}

void oidc_authresp_add(struct oidc_authresp *a, const char *name, const char *value)
{
    if (!value || !*value || a->n >= OIDC_AUTHRESP_PARAMS_MAX)
        return;
    a->names[a->n] = name;
    a->values[a->n] = value;
    a->n++;
}

/* The redirect_uri with the parameters in its query or fragment. */
static void send_redirect(const struct oidc_authresp *a, int status, struct oidc_response *resp)
{
    struct buf b = BUF_INIT;
    const char *uri = a->redirect_uri;
    size_t n = strlen(uri);
    bool first = true;

    buf_adds(&b, uri);
    if (a->mode == OIDC_RESP_FRAGMENT)
        buf_adds(&b, "#");
    else if (!strchr(uri, '?'))
        buf_adds(&b, "?");
    else
        first = uri[n - 1] == '?' || uri[n - 1] == '&';
    for (size_t i = 0; i < a->n; i++) {
        buf_adds(&b, first ? "" : "&");
        first = false;
        buf_adds(&b, a->names[i]);
        buf_adds(&b, "=");
        buf_add_urlenc(&b, a->values[i]);
    }
    size_t len = 0;
    char *loc = buf_detach(&b, &len);
    oidc_respond_redirect(resp, status, loc ? loc : "/");
    if (loc) {
        /* the location may hold a code or tokens: the response keeps its own copy */
        OPENSSL_cleanse(loc, len);
        free(loc);
    }
}

void oidc_authresp_send(struct oidc_ctx *ctx, struct oidc_authresp *a, int status,
                        struct oidc_response *resp)
{
    oidc_authresp_add(a, "iss", ctx->cfg.issuer);
    if (a->mode != OIDC_RESP_FORM_POST) {
        send_redirect(a, status, resp);
        return;
    }
    char origin[512];
    if (oidc_redirect_csp_source(a->redirect_uri, origin, sizeof origin) < 0)
        origin[0] = '\0';
    oidc_html_form_post(resp, a->redirect_uri, origin, a->names, a->values, a->n);
}
