/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /oauth/v2/authorize. Read top to bottom: parse, find the client, check the redirect_uri
 * (page errors up to here), then the rest of the request (redirected errors), then either a
 * code from the browser's session or a pending AuthRequest and the login page.
 */
#include "authorize.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/rand.h"
#include "oidc/authresp.h"
#include "oidc/claims.h"
#include "oidc/grant.h"
#include "oidc/html.h"
#include "oidc/params.h"
#include "oidc/pkce.h"
#include "oidc/redirect.h"
#include "oidc/respond.h"
#include "oidc/session.h"
#include "storage/repo.h"
#include "storage/store.h"

#define STATE_MAX 2048
#define NONCE_MAX 1024
#define LOGIN_HINT_MAX 256
#define SCOPES_MAX 64
#define SCOPE_LEN_MAX 256

static inline void client_free_(Koderid__V2__Client **c)
{
    if (*c)
        koderid__v2__client__free_unpacked(*c, NULL);
}

static inline void user_free_(Koderid__V2__User **u)
{
    if (*u)
        koderid__v2__user__free_unpacked(*u, NULL);
}

static void wipe_free_(char **p)
{
    if (*p) {
        OPENSSL_cleanse(*p, strlen(*p));
        free(*p);
    }
}

void oidc_authorize_redirect_error(struct oidc_ctx *ctx, const char *redirect_uri,
                                   enum oidc_resp_mode mode, const char *state, int code,
                                   const char *description, int status,
                                   struct oidc_response *resp)
{
    struct oidc_authresp a = {.redirect_uri = redirect_uri, .mode = mode};
    oidc_authresp_add(&a, "error", err_oauth(code));
    oidc_authresp_add(&a, "error_description", description);
    oidc_authresp_add(&a, "state", state);
    oidc_authresp_send(ctx, &a, status, resp);
    oidc_response_note(resp, "error=%s", err_oauth(code));
}

/*
 * The implicit flow's answer (OIDC Core 3.2.2.5): an ID token, and with "id_token token" an
 * access token of the client's type beside it (at_hash in the ID token); no refresh token, so
 * offline_access is dropped. With no access token the ID token carries the userinfo claims
 * (issue.c), as v1 does.
 */
static int issue_tokens(struct oidc_ctx *ctx, const Koderid__V2__AuthRequest *ar,
                        const Koderid__V2__Client *cl, const Koderid__V2__User *u,
                        int64_t auth_time, char **amr, size_t n_amr, const char *session_id,
                        enum oidc_resp_mode mode, int status, struct oidc_response *resp,
                        struct err *e)
{
    bool with_at = strcmp(ar->response_type, "id_token") != 0;
    int r;

    _cleanup_free_ char *scope = oidc_scope_without(ar->scope, "offline_access");
    if (!scope)
        return err_set(e, -E_NOMEM, "out of memory");
    _cleanup_(json_decrefp) json_t *aud = NULL;
    if ((r = oidc_claims_audience(ctx->store, cl, scope, &aud, e)) < 0)
        return r;
    char jti[21];
    id_new(jti);
    int64_t now = store_now_ms() / 1000;
    struct oidc_issue in = {
        .client = cl,
        .user = u,
        .scope = scope,
        .nonce = ar->nonce,
        .auth_time = auth_time,
        .amr = amr,
        .n_amr = n_amr,
        .audience = aud,
        .jti = jti,
        .family_id = "",
        .session_id = session_id,
        .now = now,
        .at_expires_at = now + ctx->lifetimes.access_token,
    };
    _cleanup_(wipe_free_) char *access_token = NULL;
    if (with_at && (r = oidc_issue_access_token(ctx, &in, &access_token, e)) < 0)
        return r;
    _cleanup_free_ char *id_token = NULL;
    struct err ie = {0};
    r = oidc_issue_id_token(ctx, &in, access_token, &id_token, &ie);
    if (r == -E_INVALID_REQUEST) { /* something of the request's own, e.g. a nonce */
        oidc_authorize_redirect_error(ctx, ar->redirect_uri, mode, ar->state, r, ie.msg, status,
                                      resp);
        return 0;
    }
    if (r < 0)
        return err_set(e, r, "%s", ie.msg);

    char expires_in[24];
    snprintf(expires_in, sizeof expires_in, "%lld",
             (long long)(in.at_expires_at > now ? in.at_expires_at - now : 0));
    struct oidc_authresp a = {.redirect_uri = ar->redirect_uri, .mode = mode};
    if (access_token) {
        oidc_authresp_add(&a, "access_token", access_token);
        oidc_authresp_add(&a, "token_type", "Bearer");
        oidc_authresp_add(&a, "expires_in", expires_in);
    }
    oidc_authresp_add(&a, "id_token", id_token);
    oidc_authresp_add(&a, "state", ar->state);
    oidc_authresp_send(ctx, &a, status, resp);
    oidc_response_note(resp, "client_id=%s sub=%s response_type=%s tokens issued%s%s",
                       ar->client_id, u->id, ar->response_type, access_token ? " jti=" : "",
                       access_token ? jti : "");
    return 0;
}

int oidc_authorize_issue(struct oidc_ctx *ctx, const Koderid__V2__AuthRequest *ar,
                         const char *user_id, int64_t auth_time, char **amr, size_t n_amr,
                         const char *session_id, int status, struct oidc_response *resp,
                         struct err *e)
{
    char code[44], hex[65], key[REPO_KEY_MAX];
    enum oidc_resp_mode mode = oidc_resp_mode_of(ar->response_type, ar->response_mode);

    /* v1's checks after login: org restriction scopes, project_role_check, has_project_check. */
    _cleanup_(client_free_) Koderid__V2__Client *cl = NULL;
    _cleanup_(user_free_) Koderid__V2__User *u = NULL;
    struct err ce = {0};
    int cr = repo_client_get(ctx->store, ar->client_id, &cl, &ce);
    if (cr == 0)
        cr = repo_user_get(ctx->store, user_id, &u, &ce);
    if (cr == 0)
        cr = oidc_claims_signin_check(ctx->store, cl, u, ar->scope, &ce);
    if (cr == -E_ACCESS_DENIED) {
        /*
         * v1 keeps the browser on its login UI with the reason (Errors.User.GrantRequired,
         * Errors.User.ProjectRequired) and never returns to the app; prompt=none allows
         * no page, so only then does the client hear access_denied.
         */
        bool silent = false;
        for (size_t i = 0; i < ar->n_prompt; i++)
            silent = silent || strcmp(ar->prompt[i], "none") == 0;
        if (silent)
            oidc_authorize_redirect_error(ctx, ar->redirect_uri, mode, ar->state, cr, ce.msg,
                                          status, resp);
        else
            oidc_html_error(resp, 403, "Login not possible", ce.msg);
        oidc_response_note(resp, "client_id=%s sub=%s sign-in denied: %s", ar->client_id,
                           user_id, ce.msg);
        return 0;
    }
    if (cr < 0)
        return err_set(e, cr, "%s", ce.msg);

    if (oidc_response_type_implicit(ar->response_type))
        return issue_tokens(ctx, ar, cl, u, auth_time, amr, n_amr, session_id, mode, status, resp,
                            e);

    if (rand_token(code) < 0)
        return err_set(e, -E_INTERNAL, "no randomness");
    sha256_hex(code, strlen(code), hex);
    repo_key(key, "code/%s", hex);

    Koderid__V2__AuthCode c = KODERID__V2__AUTH_CODE__INIT;
    c.client_id = ar->client_id;
    c.user_id = (char *)user_id;
    c.redirect_uri = ar->redirect_uri;
    c.scope = ar->scope;
    c.nonce = ar->nonce;
    c.code_challenge = ar->code_challenge;
    c.code_challenge_method = ar->code_challenge_method;
    c.auth_time = auth_time;
    c.amr = amr;
    c.n_amr = n_amr;
    c.issued_at = store_now_ms() / 1000;
    c.session_id = (char *)(session_id ? session_id : "");
    int r = repo_cas(ctx->store, key, 0, &c.base, ctx->code_ttl * 1000, NULL, e);
    if (r < 0)
        return r;

    struct oidc_authresp a = {.redirect_uri = ar->redirect_uri, .mode = mode};
    oidc_authresp_add(&a, "code", code);
    oidc_authresp_add(&a, "state", ar->state);
    oidc_authresp_send(ctx, &a, status, resp);
    OPENSSL_cleanse(code, sizeof code);
    oidc_response_note(resp, "client_id=%s sub=%s code issued", ar->client_id, user_id);
    return 0;
}

static bool has_int(const int32_t *v, size_t n, int32_t want)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == want)
            return true;
    return false;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* v1's IsScopeAllowed (ZITADEL.md 4.4): standard scopes, Zitadel's prefixed ones, and role
 * scopes for roles the client's project defines. */
static bool scope_allowed(struct oidc_ctx *ctx, const Koderid__V2__Client *c, const char *s)
{
    static const char *const standard[] = {"openid", "profile", "email", "phone", "address"};
    static const char *const exact[] = {"urn:zitadel:iam:user:metadata",
                                        "urn:zitadel:iam:user:resourceowner",
                                        "urn:zitadel:iam:org:projects:roles"};
    static const char *const prefixes[] = {
        "urn:zitadel:iam:org:domain:primary:", "urn:zitadel:iam:org:id:",
        "urn:zitadel:iam:org:project:id:", "urn:zitadel:iam:org:idp:id:",
        "urn:zitadel:iam:org:roles:id:"};
    static const char role_prefix[] = "urn:zitadel:iam:org:project:role:";

    for (size_t i = 0; i < ARRAY_SIZE(standard); i++)
        if (strcmp(s, standard[i]) == 0)
            return true;
    if (strcmp(s, "offline_access") == 0)
        return has_int(c->grant_types, c->n_grant_types, 2); /* refresh_token */
    for (size_t i = 0; i < ARRAY_SIZE(exact); i++)
        if (strcmp(s, exact[i]) == 0)
            return true;
    for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
        if (starts_with(s, prefixes[i]) && s[strlen(prefixes[i])])
            return true;
    if (starts_with(s, role_prefix) && s[sizeof role_prefix - 1] && c->project_id &&
        *c->project_id) {
        char key[REPO_KEY_MAX];
        struct store_value v = {0};
        if (repo_key(key, "role/%s/%s", c->project_id, s + sizeof role_prefix - 1) < 0)
            return false;
        int r = store_get(ctx->store, key, strlen(key), &v, NULL);
        store_value_release(&v);
        return r == 0;
    }
    return false;
}

/* Filters @scope to what the client may ask for, in request order, without duplicates.
 * Returns the new string (caller frees) or NULL with @e. */
static char *filter_scope(struct oidc_ctx *ctx, const Koderid__V2__Client *c, const char *scope,
                          struct err *e)
{
    struct buf out = BUF_INIT;
    size_t count = 0;
    const char *p = scope;

    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (++count > SCOPES_MAX || len > SCOPE_LEN_MAX) {
            buf_release(&out);
            err_set(e, -E_INVALID_SCOPE, "too many or too long scopes");
            return NULL;
        }
        char one[SCOPE_LEN_MAX + 1];
        memcpy(one, p, len);
        one[len] = '\0';
        p += len;
        if (!scope_allowed(ctx, c, one))
            continue;
        /* skip duplicates */
        bool dup = false;
        for (const char *q = out.data; q && *q && !dup;) {
            const char *qe = strchr(q, ' ');
            size_t ql = qe ? (size_t)(qe - q) : strlen(q);
            dup = ql == len && memcmp(q, one, len) == 0;
            q = qe ? qe + 1 : q + ql;
        }
        if (dup)
            continue;
        if (out.len)
            buf_adds(&out, " ");
        buf_adds(&out, one);
    }
    size_t n;
    return buf_detach(&out, &n);
}

static bool scope_has(const char *scope, const char *want)
{
    size_t wl = strlen(want);
    for (const char *p = scope; p && *p;) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == wl && memcmp(p, want, wl) == 0)
            return true;
        p = end ? end + 1 : p + len;
    }
    return false;
}

static const char *const prompt_values[] = {"none", "login", "consent", "select_account", "create"};

/* Splits @prompt into @out (at most 5 known, distinct values); unknown values are ignored
 * (OIDC Core 3.1.2.1, and v1). Returns how many values there were, unknown ones included. */
static size_t parse_prompt(const char *prompt, char *out[5], size_t *ret_n)
{
    size_t n = 0, all = 0;
    for (const char *p = prompt; p && *p;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *known = NULL;
        for (size_t i = 0; i < ARRAY_SIZE(prompt_values); i++)
            if (strlen(prompt_values[i]) == len && memcmp(p, prompt_values[i], len) == 0)
                known = prompt_values[i];
        bool dup = !known;
        for (size_t i = 0; i < n; i++)
            dup = dup || out[i] == known;
        if (!dup)
            out[n++] = (char *)known;
        all++;
        p += len;
    }
    *ret_n = n;
    return all;
}

static bool prompt_has(char *const *prompts, size_t n, const char *want)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(prompts[i], want) == 0)
            return true;
    return false;
}

/* Parses max_age: decimal seconds, at most 10 digits. -1 on a malformed value. */
static int64_t parse_max_age(const char *s)
{
    int64_t v = 0;
    size_t n = strlen(s);
    if (n == 0 || n > 10)
        return -2;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -2;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static bool form_content_type(const struct oidc_request *req)
{
    const char *ct = oidc_request_header(req, "content-type");
    static const char want[] = "application/x-www-form-urlencoded";
    if (!ct || strncasecmp(ct, want, sizeof want - 1) != 0)
        return false;
    char next = ct[sizeof want - 1];
    return next == '\0' || next == ';' || next == ' ';
}

/* Whether the user behind a session may still be signed in without a new login. A user whose
 * password must change (set by an operator after the session began) goes through the login
 * page, which asks for the new password before any code is issued. */
static bool user_can_sign_in(struct oidc_ctx *ctx, const char *user_id)
{
    Koderid__V2__User *u = NULL;
    if (repo_user_get(ctx->store, user_id, &u, NULL) < 0)
        return false;
    bool ok = u->state == 1 && u->type == 1 && !u->password_change_required;
    koderid__v2__user__free_unpacked(u, NULL);
    return ok;
}

void oidc_authorize_endpoint(struct oidc_ctx *ctx, const struct oidc_request *req,
                             struct oidc_response *resp)
{
    struct oidc_params params = {0};
    struct err e = {0};
    _cleanup_(client_free_) Koderid__V2__Client *client = NULL;
    _cleanup_free_ char *scope = NULL;
    int r;

    /* 1. The request itself: until the redirect_uri is validated, errors are pages. */
    if (strcmp(req->method, "GET") == 0) {
        r = oidc_params_parse(req->query, req->query ? req->query_len : 0, &params, &e);
    } else if (strcmp(req->method, "POST") == 0) {
        if (!form_content_type(req)) {
            oidc_html_error(
                resp, 400, "Invalid request",
                "The sign-in request must be a form (application/x-www-form-urlencoded).");
            return;
        }
        r = oidc_params_parse(req->body, req->body ? req->body_len : 0, &params, &e);
    } else {
        oidc_html_error(resp, 405, "Invalid request", "Use GET or POST.");
        oidc_response_header(resp, "allow", "GET, POST");
        return;
    }
    if (r < 0) {
        oidc_html_error(resp, 400, "Invalid request", e.msg);
        oidc_response_note(resp, "error=invalid_request %s", e.msg);
        goto out;
    }

    const char *client_id = oidc_params_get(&params, "client_id");
    const char *redirect_uri = oidc_params_get(&params, "redirect_uri");
    if (!client_id) {
        oidc_html_error(resp, 400, "Invalid request", "The request has no client_id.");
        oidc_response_note(resp, "error=invalid_request no client_id");
        goto out;
    }
    r = repo_client_get(ctx->store, client_id, &client, &e);
    if (r == -E_NOTFOUND ||
        (r == 0 && (client->kind != KODERID__V2__CLIENT_KIND__CLIENT_OIDC || client->state != 1))) {
        oidc_html_error(resp, 400, "Unknown application",
                        "The application asking you to sign in is not known or not active.");
        oidc_response_note(resp, "error=invalid_client client '%.80s' unknown or inactive",
                           client_id);
        goto out;
    }
    if (r < 0) {
        oidc_html_error(resp, 503, "Temporarily unavailable",
                        "Sign-in is temporarily unavailable. Please try again in a moment.");
        oidc_response_note(resp, "error=server_error client lookup: %s", e.msg);
        goto out;
    }
    if (!redirect_uri) {
        oidc_html_error(resp, 400, "Invalid request", "The request has no redirect_uri.");
        oidc_response_note(resp, "client_id=%s error=invalid_request no redirect_uri",
                           client->client_id);
        goto out;
    }
    if (!oidc_redirect_allowed(client, redirect_uri)) {
        oidc_html_error(resp, 400, "Invalid request",
                        "The redirect_uri is not registered for this application.");
        oidc_response_note(resp, "client_id=%s error=invalid_request redirect_uri not registered",
                           client->client_id);
        goto out;
    }

    /* 2. From here on, errors go back to the client, in the response mode it asked for when
     * that is one we answer in (else the default of its response_type). */
    const char *state = oidc_params_get(&params, "state");
    const char *response_type = oidc_params_get(&params, "response_type");
    const char *response_mode = oidc_params_get(&params, "response_mode");
    bool implicit = oidc_response_type_implicit(response_type);
    enum oidc_resp_mode mode = oidc_resp_mode_of(response_type, NULL);
    int asked_mode = response_mode ? oidc_resp_mode_parse(response_mode) : (int)mode;
    /* tokens never travel in a query (OAuth 2.0 Multiple Response Type Encoding Practices) */
    bool mode_ok = asked_mode >= 0 && !(implicit && asked_mode == OIDC_RESP_QUERY);
    if (mode_ok)
        mode = (enum oidc_resp_mode)asked_mode;
    if (state && strlen(state) > STATE_MAX) {
        oidc_authorize_redirect_error(ctx, redirect_uri, mode, NULL, -E_INVALID_REQUEST,
                                      "state too long", 302, resp);
        goto out;
    }
#define FAIL(code, desc)                                                                           \
    do {                                                                                           \
        oidc_authorize_redirect_error(ctx, redirect_uri, mode, state, code, desc, 302, resp);      \
        oidc_response_note(resp, "client_id=%s", client->client_id);                               \
        goto out;                                                                                  \
    } while (0)

    if (!mode_ok)
        FAIL(-E_INVALID_REQUEST, asked_mode < 0 ? "response_mode must be query, fragment or "
                                                  "form_post"
                                                : "response_mode=query cannot carry tokens");
    if (oidc_params_get(&params, "request"))
        FAIL(-E_REQUEST_NOT_SUPPORTED, "request objects are not supported");
    if (oidc_params_get(&params, "request_uri"))
        FAIL(-E_REQUEST_URI_NOT_SUPPORTED, "request_uri is not supported");
    if (!response_type)
        FAIL(-E_INVALID_REQUEST, "response_type missing");
    /* v1's response types (ZITADEL.md 1.5): 0 code, 1 id_token, 2 "id_token token"; the
     * implicit ones also need the implicit grant type (1). */
    int rt_index = strcmp(response_type, "code") == 0       ? 0
                   : strcmp(response_type, "id_token") == 0 ? 1
                   : implicit                               ? 2
                                                            : -1;
    if (rt_index < 0)
        FAIL(-E_UNSUPPORTED_RESPONSE_TYPE,
             "response_type must be code, id_token or \"id_token token\"");
    if (!has_int(client->response_types, client->n_response_types, rt_index) ||
        !has_int(client->grant_types, client->n_grant_types, rt_index == 0 ? 0 : 1))
        FAIL(-E_UNAUTHORIZED_CLIENT, rt_index == 0
                                         ? "the client may not use the authorization code flow"
                                         : "the client may not use this response_type");
    if (rt_index == 2)
        response_type = "id_token token"; /* one spelling from here on */

    const char *scope_in = oidc_params_get(&params, "scope");
    if (!scope_in)
        FAIL(-E_INVALID_REQUEST, "scope missing");
    scope = filter_scope(ctx, client, scope_in, &e);
    if (!scope)
        FAIL(e.code ? e.code : -E_INVALID_SCOPE, e.msg);
    if (!scope_has(scope, "openid"))
        FAIL(-E_INVALID_SCOPE, "the scope openid is missing");

    const char *challenge = oidc_params_get(&params, "code_challenge");
    const char *method = oidc_params_get(&params, "code_challenge_method");
    if (method && strcmp(method, "S256") != 0)
        FAIL(-E_INVALID_REQUEST, "code_challenge_method must be S256");
    if (challenge && !method)
        FAIL(-E_INVALID_REQUEST, "code_challenge_method must be S256 (plain is not allowed)");
    if (method && !challenge)
        FAIL(-E_INVALID_REQUEST, "code_challenge missing");
    if (challenge && !oidc_pkce_well_formed(challenge))
        FAIL(-E_INVALID_REQUEST, "code_challenge must be 43-128 unreserved characters");
    if (!challenge && client->auth_method == 2 && !implicit)
        FAIL(-E_INVALID_REQUEST, "code_challenge required (PKCE) for public clients");
    if (challenge && implicit)
        FAIL(-E_INVALID_REQUEST, "code_challenge belongs to the code flow");

    const char *nonce = oidc_params_get(&params, "nonce");
    if (nonce && strlen(nonce) > NONCE_MAX)
        FAIL(-E_INVALID_REQUEST, "nonce too long");
    if (implicit && (!nonce || !*nonce)) /* OIDC Core 3.2.2.1 */
        FAIL(-E_INVALID_REQUEST, "nonce is required with response_type id_token");
    const char *login_hint = oidc_params_get(&params, "login_hint");
    if (login_hint && strlen(login_hint) > LOGIN_HINT_MAX)
        login_hint = NULL; /* a hint only: ignore rather than fail */
    char *prompts[5];
    size_t n_prompts = 0;
    const char *prompt = oidc_params_get(&params, "prompt");
    size_t n_prompt_values = prompt ? parse_prompt(prompt, prompts, &n_prompts) : 0;
    if (prompt_has(prompts, n_prompts, "none") && n_prompt_values > 1)
        FAIL(-E_INVALID_REQUEST, "prompt=none cannot be combined with other values");
    int64_t max_age = -1;
    const char *max_age_s = oidc_params_get(&params, "max_age");
    if (max_age_s && (max_age = parse_max_age(max_age_s)) < 0)
        FAIL(-E_INVALID_REQUEST, "max_age must be a number of seconds");

    Koderid__V2__AuthRequest ar = KODERID__V2__AUTH_REQUEST__INIT;
    char id[44];
    if (rand_token(id) < 0)
        FAIL(-E_INTERNAL, "internal error");
    ar.id = id;
    ar.client_id = client->client_id;
    ar.redirect_uri = (char *)redirect_uri;
    ar.scope = scope;
    ar.state = (char *)(state ? state : "");
    ar.nonce = (char *)(nonce ? nonce : "");
    ar.response_type = (char *)response_type;
    ar.response_mode = (char *)oidc_resp_mode_name(mode);
    ar.code_challenge = (char *)(challenge ? challenge : "");
    ar.code_challenge_method = (char *)(method ? method : "");
    ar.prompt = prompts;
    ar.n_prompt = n_prompts;
    ar.max_age = max_age;
    ar.login_hint = (char *)(login_hint ? login_hint : "");
    ar.created_at = store_now_ms() / 1000;

    /* 3. A live session answers at once, unless the client wants a fresh login: prompt=login,
     * an elapsed max_age, or (as v1's login, which has no consent or account chooser pages of
     * its own, ZITADEL.md 4.4) consent, select_account and create, which show the login page. */
    Koderid__V2__Session *sess = NULL;
    uint64_t sess_version = 0;
    char sess_key[REPO_KEY_MAX];
    r = oidc_session_load(ctx, req, &sess, &sess_version, sess_key, &e);
    if (r < 0 && r != -E_NOTFOUND)
        FAIL(-E_UNAVAILABLE, "sign-in is temporarily unavailable");
    bool need_login = !sess || (n_prompts && !prompt_has(prompts, n_prompts, "none")) ||
                      (max_age >= 0 && ar.created_at - sess->auth_time >= max_age) ||
                      !user_can_sign_in(ctx, sess->user_id);
    if (!need_login) {
        r = oidc_authorize_issue(ctx, &ar, sess->user_id, sess->auth_time, sess->amr, sess->n_amr,
                                 sess->id, 302, resp, &e);
        if (r == 0)
            oidc_session_add_client(ctx, sess_key, sess_version, sess, client->client_id);
        koderid__v2__session__free_unpacked(sess, NULL);
        if (r < 0)
            FAIL(-E_UNAVAILABLE, "sign-in is temporarily unavailable");
        goto out;
    }
    if (sess)
        koderid__v2__session__free_unpacked(sess, NULL);
    if (prompt_has(prompts, n_prompts, "none"))
        FAIL(-E_LOGIN_REQUIRED, "the user is not signed in");

    /* 4. Keep the request and send the browser to the login page. */
    char key[REPO_KEY_MAX];
    repo_key(key, "authreq/%s", id);
    r = repo_cas(ctx->store, key, 0, &ar.base, ctx->auth_request_ttl * 1000, NULL, &e);
    if (r < 0)
        FAIL(-E_UNAVAILABLE, "sign-in is temporarily unavailable");
    char login[128];
    snprintf(login, sizeof login, "%s?authRequestID=%s", OIDC_LOGIN_PATH, id);
    oidc_respond_redirect(resp, 302, login);
    oidc_response_note(resp, "client_id=%s login required", client->client_id);
#undef FAIL
out:
    oidc_params_release(&params);
}
