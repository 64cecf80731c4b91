/* SPDX-License-Identifier: Apache-2.0 */
/* RP-initiated logout: /oidc/v1/end_session and the logged-out page. */
#include "endsession.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "oidc/html.h"
#include "oidc/jwt.h"
#include "oidc/keys.h"
#include "oidc/params.h"
#include "oidc/redirect.h"
#include "oidc/respond.h"
#include "oidc/session.h"
#include "storage/repo.h"

#define HINT_MAX 8192
#define STATE_MAX 2048

/* Verifies the hint (signature, issuer, an ID token: azp present); exp is not checked. */
static int hint_verify(struct oidc_ctx *ctx, const char *hint, json_t **ret, struct err *e)
{
    json_t *claims = NULL;
    if (strlen(hint) > HINT_MAX)
        return err_set(e, -E_INVALID_REQUEST, "id_token_hint too long");
    int r = oidc_jwt_verify(hint, strlen(hint), oidc_ctx_own_key, ctx, NULL, &claims, e);
    if (r < 0)
        return err_set(e, -E_INVALID_REQUEST, "id_token_hint is not a token we issued");
    const json_t *iss = json_object_get(claims, "iss");
    if (!json_is_string(iss) || strcmp(json_string_value(iss), ctx->cfg.issuer) != 0 ||
        !json_is_string(json_object_get(claims, "azp"))) {
        json_decref(claims);
        return err_set(e, -E_INVALID_REQUEST, "id_token_hint is not an ID token we issued");
    }
    *ret = claims;
    return 0;
}

/* v1: post-logout URIs match like redirect URIs (exact; globs only in dev mode). */
static bool post_logout_allowed(const Koderid__V2__Client *c, const char *uri)
{
    Koderid__V2__Client copy = *c;
    copy.redirect_uris = c->post_logout_redirect_uris;
    copy.n_redirect_uris = c->n_post_logout_redirect_uris;
    copy.app_type = 0; /* no loopback-port leniency here */
    return oidc_redirect_allowed(&copy, uri);
}

static void end_browser_session(struct oidc_ctx *ctx, const struct oidc_request *req,
                                struct oidc_response *resp)
{
    oidc_session_end_current(ctx, req);
    oidc_cookie_set(ctx, resp, OIDC_SESSION_COOKIE, "", -1);
}

static void client_freep(Koderid__V2__Client **c)
{
    if (*c)
        koderid__v2__client__free_unpacked(*c, NULL);
}

void oidc_end_session_endpoint(struct oidc_ctx *ctx, const struct oidc_request *req,
                               struct oidc_response *resp)
{
    struct oidc_params params = {0};
    struct err e = {0};
    _cleanup_(json_decrefp) json_t *hint = NULL;
    _cleanup_(client_freep) Koderid__V2__Client *client = NULL;
    int r;

    if (strcmp(req->method, "GET") == 0) {
        r = oidc_params_parse(req->query, req->query ? req->query_len : 0, &params, &e);
    } else if (strcmp(req->method, "POST") == 0) {
        r = oidc_params_parse(req->body, req->body ? req->body_len : 0, &params, &e);
    } else {
        oidc_html_error(resp, 405, "Invalid request", "Use GET or POST.");
        oidc_response_header(resp, "allow", "GET, POST");
        return;
    }
    if (r < 0) {
        oidc_html_error(resp, 400, "Invalid request", e.msg);
        goto out;
    }
    const char *hint_s = oidc_params_get(&params, "id_token_hint");
    const char *client_id = oidc_params_get(&params, "client_id");
    const char *uri = oidc_params_get(&params, "post_logout_redirect_uri");
    const char *state = oidc_params_get(&params, "state");
#define REFUSE(msg, note)                                                                          \
    do {                                                                                           \
        oidc_html_error(resp, 400, "Invalid logout request", msg);                                 \
        oidc_response_note(resp, "error=invalid_request %s", note);                                \
        goto out;                                                                                  \
    } while (0)

    if (hint_s && *hint_s && hint_verify(ctx, hint_s, &hint, &e) < 0)
        REFUSE("The logout request carries a token this server did not issue.", e.msg);
    if (hint) {
        const char *azp = json_string_value(json_object_get(hint, "azp"));
        /* RP-Initiated Logout 1.0 section 2: the client the ID token was issued to, its azp
         * (its aud also names the other apps of the project, v1's audience rule). */
        if (client_id && *client_id && strcmp(client_id, azp ? azp : "") != 0)
            REFUSE("The logout request's token was issued to another application.",
                   "id_token_hint not issued to client_id");
        if (!client_id || !*client_id)
            client_id = azp;
    }
    if (client_id && *client_id) {
        r = repo_client_get(ctx->store, client_id, &client, &e);
        if (r < 0 && r != -E_NOTFOUND) {
            oidc_html_error(resp, 503, "Temporarily unavailable", "Please try again in a moment.");
            goto out;
        }
    }
    if (uri && *uri) {
        if (!client)
            REFUSE("The logout request names no known application for its redirect.",
                   "post_logout_redirect_uri without a known client");
        if (!post_logout_allowed(client, uri))
            REFUSE("The post_logout_redirect_uri is not registered for this application.",
                   "post_logout_redirect_uri not registered");
        if (state && strlen(state) > STATE_MAX)
            REFUSE("The state is too long.", "state too long");
    }

    end_browser_session(ctx, req, resp);
    {
        struct buf b = BUF_INIT;
        bool first = true;
        if (uri && *uri) {
            buf_addf(&b, "%s", uri);
            first = strchr(uri, '?') == NULL;
            if (state && *state) {
                buf_adds(&b, first ? "?state=" : "&state=");
                buf_add_urlenc(&b, state);
            }
        } else {
            buf_addf(&b, "%s", OIDC_LOGOUT_DONE_PATH);
        }
        size_t len = 0;
        _cleanup_free_ char *loc = buf_detach(&b, &len);
        oidc_respond_redirect(resp, 302, loc ? loc : OIDC_LOGOUT_DONE_PATH);
    }
    oidc_response_note(resp, "client_id=%.80s session ended%s", client ? client->client_id : "",
                       uri && *uri ? ", back to the client" : "");
#undef REFUSE
out:
    oidc_params_release(&params);
}

void oidc_logout_done_endpoint(struct oidc_ctx *ctx, const struct oidc_request *req,
                               struct oidc_response *resp)
{
    (void)ctx;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        oidc_html_error(resp, 405, "Invalid request", "Use GET.");
        oidc_response_header(resp, "allow", "GET");
        return;
    }
    struct buf b = BUF_INIT;
    oidc_html_begin(&b, "Signed out");
    buf_addf(&b, "<h1>Signed out</h1><p>You are signed out. You may close this window.</p>");
    oidc_html_end(&b);
    oidc_html_respond(resp, 200, NULL, &b);
}
