/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The login form. GET renders it for a pending AuthRequest (binding a fresh CSRF token to the
 * request and to the browser's CSRF cookie); POST checks CSRF, the throttles, the login name
 * and the password, then consumes the AuthRequest, starts a session and issues the code. When
 * the user's password must change, a second POST with the new password (twice) comes first.
 *
 * Unknown login names, users without a password and machine users get the same message as a
 * wrong password, after a check against a dummy hash of the configured cost, so neither the
 * page nor (for upgraded hashes) the timing tells who exists. Only someone who knows the
 * password learns that an account is locked or inactive.
 */
#include "login.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/rand.h"
#include "oidc/authorize.h"
#include "oidc/hashq.h"
#include "oidc/html.h"
#include "oidc/params.h"
#include "oidc/password.h"
#include "oidc/redirect.h"
#include "oidc/session.h"
#include "oidc/throttle.h"
#include "storage/repo.h"
#include "storage/store.h"

#define LOGIN_NAME_MAX 256
#define HASH_WAIT_MS 15000

static const char msg_wrong[] = "Wrong login name or password.";

struct pending {
    Koderid__V2__AuthRequest *ar;
    uint64_t version;
    char key[REPO_KEY_MAX];
};

static void pending_release(struct pending *p)
{
    if (p->ar)
        koderid__v2__auth_request__free_unpacked(p->ar, NULL);
    p->ar = NULL;
}

static bool id_ok(const char *id)
{
    size_t n = 0;
    for (; id && id[n]; n++) {
        char c = id[n];
        if (n >= 64 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return n > 0;
}

static int pending_load(struct oidc_ctx *ctx, const char *id, struct pending *p, struct err *e)
{
    ProtobufCMessage *m = NULL;
    if (!id_ok(id))
        return err_set(e, -E_NOTFOUND, "no such auth request");
    repo_key(p->key, "authreq/%s", id);
    int r =
        repo_get(ctx->store, p->key, &koderid__v2__auth_request__descriptor, &m, &p->version, e);
    if (r < 0)
        return r;
    p->ar = (Koderid__V2__AuthRequest *)m;
    if (p->ar->created_at + ctx->auth_request_ttl <= store_now_ms() / 1000) {
        pending_release(p);
        return err_set(e, -E_NOTFOUND, "auth request expired");
    }
    return 0;
}

static void expired_page(struct oidc_response *resp)
{
    oidc_html_error(resp, 400, "Sign-in expired",
                    "This sign-in link has expired or was already used. Go back to the "
                    "application and start again.");
}

/* Rebinds the request's CSRF token to this browser (setting the cookie when it has none).
 * The new token is written into @token. The password-change step (@change_user and
 * @change_binding: NULL keeps it, "" clears it, a value sets it) survives only when the browser
 * is the one it was earned in: another browser holding the authRequestID starts at the
 * password again. *ret_change tells whether the step is open afterwards. */
static int bind_csrf(struct oidc_ctx *ctx, const struct oidc_request *req,
                     struct oidc_response *resp, struct pending *p, const char *change_user,
                     const char *change_binding, char token[44], bool *ret_change, struct err *e)
{
    char browser[128], hash[65];
    bool fresh = oidc_cookie_get(ctx, req, OIDC_CSRF_COOKIE, browser, sizeof browser) < 0;
    if (fresh && rand_token(browser) < 0)
        return err_set(e, -E_INTERNAL, "no randomness");
    if (rand_token(token) < 0)
        return err_set(e, -E_INTERNAL, "no randomness");
    sha256_hex(browser, strlen(browser), hash);
    bool same = p->ar->csrf_binding && strcmp(p->ar->csrf_binding, hash) == 0;
    Koderid__V2__AuthRequest copy = *p->ar;
    copy.csrf = token;
    copy.csrf_binding = hash;
    if (change_user) {
        copy.pwd_change_user_id = (char *)change_user;
        copy.pwd_change_binding = (char *)(change_binding ? change_binding : "");
    }
    if (!same || !copy.pwd_change_user_id || !copy.pwd_change_binding) {
        copy.pwd_change_user_id = "";
        copy.pwd_change_binding = "";
    }
    int64_t ttl_ms = (p->ar->created_at + ctx->auth_request_ttl) * 1000 - store_now_ms();
    if (ttl_ms <= 0)
        return err_set(e, -E_NOTFOUND, "auth request expired");
    int r = repo_cas(ctx->store, p->key, p->version, &copy.base, ttl_ms, &p->version, e);
    if (r < 0)
        return r;
    if (fresh)
        oidc_cookie_set(ctx, resp, OIDC_CSRF_COOKIE, browser, 0);
    *ret_change = *copy.pwd_change_user_id && *copy.pwd_change_binding;
    return 0;
}

static bool csrf_ok(struct oidc_ctx *ctx, const struct oidc_request *req,
                    const Koderid__V2__AuthRequest *ar, const char *form_token)
{
    char browser[128], hash[65];
    if (!form_token || !ar->csrf || !*ar->csrf || !ar->csrf_binding || !*ar->csrf_binding)
        return false;
    if (oidc_cookie_get(ctx, req, OIDC_CSRF_COOKIE, browser, sizeof browser) < 0)
        return false;
    sha256_hex(browser, strlen(browser), hash);
    size_t n = strlen(ar->csrf);
    bool token_ok = strlen(form_token) == n && CRYPTO_memcmp(form_token, ar->csrf, n) == 0;
    bool bound_ok =
        strlen(ar->csrf_binding) == 64 && CRYPTO_memcmp(hash, ar->csrf_binding, 64) == 0;
    return token_ok && bound_ok;
}

/* The page's top: title, the application, the message; then the form's opening and its
 * hidden fields. */
static void form_begin(struct buf *b, const char *title, const struct pending *p, const char *csrf,
                       const char *app_name, const char *message)
{
    oidc_html_begin(b, title);
    buf_adds(b, "<h1>");
    buf_add_html(b, title);
    buf_adds(b, "</h1>");
    if (app_name && *app_name) {
        buf_adds(b, "<p class=\"app\">to continue to <b>");
        buf_add_html(b, app_name);
        buf_adds(b, "</b></p>");
    }
    if (message) {
        buf_adds(b, "<p class=\"error\" id=\"error\" role=\"alert\">");
        buf_add_html(b, message);
        buf_adds(b, "</p>");
    }
    buf_addf(b, "<form method=\"post\" action=\"%s\">", OIDC_LOGIN_PATH);
    buf_adds(b, "<input type=\"hidden\" name=\"authRequestID\" value=\"");
    buf_add_html(b, p->ar->id);
    buf_adds(b, "\"><input type=\"hidden\" name=\"csrf\" value=\"");
    buf_add_html(b, csrf);
    buf_adds(b, "\">");
}

static void form_respond(struct oidc_response *resp, int status, const struct pending *p,
                         struct buf *b)
{
    char action[600];
    if (oidc_redirect_csp_source(p->ar->redirect_uri, action, sizeof action) < 0)
        action[0] = '\0';
    oidc_html_end(b);
    oidc_html_respond(resp, status, action, b);
}

/* The login form, with an optional message. */
static void render_form(struct oidc_response *resp, int status, const struct pending *p,
                        const char *csrf, const char *app_name, const char *login_name,
                        const char *message)
{
    struct buf b = BUF_INIT;

    form_begin(&b, "Sign in", p, csrf, app_name, message);
    buf_adds(&b, "<label for=\"loginName\">Login name</label>"
                 "<input id=\"loginName\" name=\"loginName\" type=\"text\" "
                 "autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" "
                 "required");
    if (login_name && *login_name) {
        buf_adds(&b, " value=\"");
        buf_add_html(&b, login_name);
        buf_adds(&b, "\"");
    } else {
        buf_adds(&b, " autofocus");
    }
    buf_adds(&b, "><label for=\"password\">Password</label>"
                 "<input id=\"password\" name=\"password\" type=\"password\" "
                 "autocomplete=\"current-password\" required");
    if (login_name && *login_name)
        buf_adds(&b, " autofocus");
    buf_adds(&b, "><button type=\"submit\">Sign in</button></form>");
    form_respond(resp, status, p, &b);
}

/* The form for a new password, shown once the current one was proven (v1's
 * password_change_required). The current password is not asked again. */
static void render_change_form(struct oidc_response *resp, int status, const struct pending *p,
                               const char *csrf, const char *app_name, const char *message)
{
    struct buf b = BUF_INIT;

    form_begin(&b, "Change your password", p, csrf, app_name, message);
    buf_addf(&b,
             "<p>Your administrator asks you to choose a new password before you continue. "
             "It needs at least %d characters.</p>"
             "<label for=\"newPassword\">New password</label>"
             "<input id=\"newPassword\" name=\"newPassword\" type=\"password\" "
             "autocomplete=\"new-password\" minlength=\"%d\" required autofocus>"
             "<label for=\"confirmPassword\">New password again</label>"
             "<input id=\"confirmPassword\" name=\"confirmPassword\" type=\"password\" "
             "autocomplete=\"new-password\" minlength=\"%d\" required>"
             "<button type=\"submit\">Change password and continue</button></form>",
             OIDC_PASSWORD_MIN_CHARS, OIDC_PASSWORD_MIN_CHARS, OIDC_PASSWORD_MIN_CHARS);
    form_respond(resp, status, p, &b);
}

/* Renders the page again with a freshly bound CSRF token (the change form while that step is
 * open for this browser, else the login form), or the expired page. @change_user and
 * @change_binding as for bind_csrf(). */
static void rerender_step(struct oidc_ctx *ctx, const struct oidc_request *req,
                          struct oidc_response *resp, int status, struct pending *p,
                          const char *change_user, const char *change_binding, const char *app_name,
                          const char *login_name, const char *message)
{
    char csrf[44];
    bool change = false;
    struct err e = {0};
    if (bind_csrf(ctx, req, resp, p, change_user, change_binding, csrf, &change, &e) < 0) {
        if (e.code == -E_NOTFOUND || e.code == -E_CONFLICT)
            expired_page(resp);
        else
            oidc_html_error(resp, 503, "Temporarily unavailable",
                            "Sign-in is temporarily unavailable. Please try again in a moment.");
        return;
    }
    if (change)
        render_change_form(resp, status, p, csrf, app_name, message);
    else
        render_form(resp, status, p, csrf, app_name, login_name, message);
}

/* The login form again (the password-change step is closed). */
static void rerender(struct oidc_ctx *ctx, const struct oidc_request *req,
                     struct oidc_response *resp, int status, struct pending *p,
                     const char *app_name, const char *login_name, const char *message)
{
    rerender_step(ctx, req, resp, status, p, "", "", app_name, login_name, message);
}

static char *client_name(struct oidc_ctx *ctx, const char *client_id, bool *ret_active)
{
    Koderid__V2__Client *c = NULL;
    *ret_active = false;
    if (repo_client_get(ctx->store, client_id, &c, NULL) < 0)
        return NULL;
    *ret_active = c->state == 1 && c->kind == KODERID__V2__CLIENT_KIND__CLIENT_OIDC;
    char *name = strdup(c->name ? c->name : "");
    koderid__v2__client__free_unpacked(c, NULL);
    return name;
}

/* Parses the form or query @data into @params and loads the pending request it names, with
 * its active client's name into *ret_app (caller frees). Returns false after answering with an
 * error page. */
static bool form_load(struct oidc_ctx *ctx, const char *data, size_t len,
                      struct oidc_params *params, struct pending *p, char **ret_app,
                      struct oidc_response *resp)
{
    struct err e = {0};
    bool active = false;
    if (oidc_params_parse(data, data ? len : 0, params, &e) < 0) {
        oidc_html_error(resp, 400, "Invalid request", "The sign-in form could not be read.");
        return false;
    }
    if (pending_load(ctx, oidc_params_get(params, "authRequestID"), p, &e) < 0) {
        expired_page(resp);
        return false;
    }
    *ret_app = client_name(ctx, p->ar->client_id, &active);
    if (!active) {
        oidc_html_error(resp, 400, "Unknown application",
                        "The application asking you to sign in is not known or not active.");
        return false;
    }
    return true;
}

static void login_get(struct oidc_ctx *ctx, const struct oidc_request *req,
                      struct oidc_response *resp)
{
    struct oidc_params params = {0};
    struct pending p = {0};
    _cleanup_free_ char *app = NULL;

    if (form_load(ctx, req->query, req->query_len, &params, &p, &app, resp))
        rerender_step(ctx, req, resp, 200, &p, NULL, NULL, app, p.ar->login_hint, NULL);
    pending_release(&p);
    oidc_params_release(&params);
}

/* Copies @in without leading/trailing spaces into @out (@n bytes). */
static void trim_copy(const char *in, char *out, size_t n)
{
    while (*in == ' ' || *in == '\t')
        in++;
    size_t len = strlen(in);
    while (len && (in[len - 1] == ' ' || in[len - 1] == '\t'))
        len--;
    if (len >= n)
        len = n - 1;
    memcpy(out, in, len);
    out[len] = '\0';
}

struct hash_job {
    const char *password;
    int cost;
    char *hash;
};

static void hash_job_run(void *cbdata)
{
    struct hash_job *j = cbdata;
    oidc_password_hash(j->password, j->cost, &j->hash, NULL);
}

/* After a successful check: replaces an old hash by yescrypt at the configured cost, with a
 * cas on the user record so a concurrent change (a new password) always wins. Best effort. */
static void upgrade_hash(struct oidc_ctx *ctx, const char *user_id, const char *verified_hash,
                         const char *password)
{
    char key[REPO_KEY_MAX];
    ProtobufCMessage *m = NULL;
    uint64_t version = 0;

    if (!oidc_password_needs_upgrade(verified_hash, ctx->cfg.yescrypt_cost))
        return;
    struct hash_job j = {.password = password, .cost = ctx->cfg.yescrypt_cost};
    if (oidc_hashq_run(ctx->hashq, hash_job_run, &j, HASH_WAIT_MS, NULL) < 0 || !j.hash)
        return;
    repo_key(key, "user/%s", user_id);
    if (repo_get(ctx->store, key, &koderid__v2__user__descriptor, &m, &version, NULL) == 0) {
        Koderid__V2__User *u = (Koderid__V2__User *)m;
        if (u->password_hash && strcmp(u->password_hash, verified_hash) == 0) {
            Koderid__V2__User copy = *u;
            copy.password_hash = j.hash; /* v1_password_hash stays: the importer sees the upgrade */
            copy.changed_at = store_now_ms() / 1000;
            repo_cas(ctx->store, key, version, &copy.base, 0, NULL, NULL);
        }
        koderid__v2__user__free_unpacked(u, NULL);
    }
    free(j.hash);
}

static void retry_after(struct oidc_response *resp, int64_t ms)
{
    char v[24];
    snprintf(v, sizeof v, "%lld", (long long)((ms + 999) / 1000));
    oidc_response_header(resp, "retry-after", v);
}

/* The end of a successful sign-in: consumes the request (it is single-use), replaces the
 * browser's session and sends it back to the client with a code. @password, when set, is the
 * one just verified against @verified_hash, for the hash upgrade. */
static void complete_signin(struct oidc_ctx *ctx, const struct oidc_request *req,
                            struct oidc_response *resp, struct pending *p, const char *user_id,
                            const char *verified_hash, const char *password)
{
    Koderid__V2__Session *sess = NULL;
    struct err e = {0};

    int r = store_del(ctx->store, p->key, strlen(p->key), p->version, &e);
    if (r < 0) {
        expired_page(resp);
        return;
    }
    if (password)
        upgrade_hash(ctx, user_id, verified_hash, password);
    oidc_session_end_current(ctx, req);
    r = oidc_session_create(ctx, user_id, "pwd", p->ar->client_id, resp, &sess, &e);
    if (r == 0)
        r = oidc_authorize_issue(ctx, p->ar, user_id, sess->auth_time, sess->amr, sess->n_amr,
                                 sess->id, 303, resp, &e);
    if (sess)
        koderid__v2__session__free_unpacked(sess, NULL);
    if (r < 0) {
        oidc_html_error(resp, 503, "Temporarily unavailable",
                        "Sign-in is temporarily unavailable. Please try again in a moment.");
        oidc_response_note(resp, "client_id=%s login: %s", p->ar->client_id, e.msg);
    }
}

/* The login form's answer: login name and password. */
static void password_step(struct oidc_ctx *ctx, const struct oidc_request *req,
                          struct oidc_response *resp, struct pending *p,
                          const struct oidc_params *params, const char *app)
{
    struct err e = {0};
    Koderid__V2__User *user = NULL;
    char login_name[LOGIN_NAME_MAX + 1], lower[LOGIN_NAME_MAX + 1];
    char acct_key[LOGIN_NAME_MAX + 16], addr_key[128];

    const char *name_in = oidc_params_get(params, "loginName");
    const char *password = oidc_params_get(params, "password");
    trim_copy(name_in ? name_in : "", login_name, sizeof login_name);
    if (!*login_name || !password || (name_in && strlen(name_in) > LOGIN_NAME_MAX) ||
        strlen(password) > OIDC_PASSWORD_MAX) {
        rerender(ctx, req, resp, 400, p, app, login_name, "Enter your login name and password.");
        goto out;
    }

    /* The account is throttled by user id, so its several login names (username,
     * username@domain, any case) share one budget; unknown names by the name itself. The
     * throttles come before the hash: a refused attempt costs no hashing. */
    int r = repo_user_by_login(ctx->store, login_name, &user, &e);
    if (r < 0 && r != -E_NOTFOUND) {
        rerender(ctx, req, resp, 503, p, app, login_name,
                 "Sign-in is temporarily unavailable. Please try again in a moment.");
        goto out;
    }
    repo_lower(login_name, lower, sizeof lower);
    if (user)
        snprintf(acct_key, sizeof acct_key, "acct:id:%.100s", user->id);
    else
        snprintf(acct_key, sizeof acct_key, "acct:name:%s", lower);
    snprintf(addr_key, sizeof addr_key, "addr:%.100s", req->client_addr ? req->client_addr : "-");
    int64_t now = oidc_throttle_now_ms(), wait_a = 0, wait_b = 0;
    bool ok_a = oidc_throttle_check(ctx->login_throttle, acct_key, now, &wait_a);
    bool ok_b = oidc_throttle_check(ctx->login_addr_throttle, addr_key, now, &wait_b);
    if (!ok_a || !ok_b) {
        int64_t wait = wait_a > wait_b ? wait_a : wait_b;
        char msg[160];
        snprintf(msg, sizeof msg, "Too many failed attempts. Please try again in %lld seconds.",
                 (long long)((wait + 999) / 1000));
        rerender(ctx, req, resp, 429, p, app, login_name, msg);
        retry_after(resp, wait);
        oidc_response_note(resp, "client_id=%s login throttled", p->ar->client_id);
        goto out;
    }

    bool real = user && user->type == 1 && user->password_hash && *user->password_hash;
    bool match = false;
    r = oidc_password_verify_queued(ctx->hashq, real ? user->password_hash : ctx->dummy_hash,
                                    password, HASH_WAIT_MS, &match, &e);
    if (r < 0) {
        rerender(ctx, req, resp, 503, p, app, login_name,
                 "The server is busy. Please try again in a moment.");
        retry_after(resp, 5000);
        oidc_response_note(resp, "client_id=%s login: %s", p->ar->client_id, e.msg);
        goto out;
    }
    if (!real || !match) {
        oidc_throttle_failure(ctx->login_throttle, acct_key, now);
        oidc_throttle_failure(ctx->login_addr_throttle, addr_key, now);
        rerender(ctx, req, resp, 401, p, app, login_name, msg_wrong);
        oidc_response_note(resp, "client_id=%s login failed%s%s", p->ar->client_id,
                           user ? " sub=" : "", user ? user->id : "");
        goto out;
    }
    if (user->state != 1) {
        oidc_html_error(resp, 403, "Cannot sign in",
                        user->state == 4 ? "This account is locked. Contact your administrator."
                                         : "This account is not active. Contact your "
                                           "administrator.");
        oidc_response_note(resp, "client_id=%s sub=%s login refused: user state %d",
                           p->ar->client_id, user->id, user->state);
        goto out;
    }
    oidc_throttle_success(ctx->login_throttle, acct_key);

    if (user->password_change_required) {
        /* v1's rule: a new password before the sign-in completes. The request stays pending,
         * marked for this user, this browser and the hash that just verified. */
        char binding[65];
        sha256_hex(user->password_hash, strlen(user->password_hash), binding);
        rerender_step(ctx, req, resp, 200, p, user->id, binding, app, NULL, NULL);
        oidc_response_note(resp, "client_id=%s sub=%s password change required", p->ar->client_id,
                           user->id);
        goto out;
    }
    complete_signin(ctx, req, resp, p, user->id, user->password_hash, password);
out:
    if (user)
        koderid__v2__user__free_unpacked(user, NULL);
}

/* The change form's answer: the new password twice, after the password step marked the
 * request (the current password is not asked again). */
static void change_step(struct oidc_ctx *ctx, const struct oidc_request *req,
                        struct oidc_response *resp, struct pending *p,
                        const struct oidc_params *params, const char *app)
{
    struct err e = {0};
    char key[REPO_KEY_MAX], binding[65];
    ProtobufCMessage *m = NULL;
    uint64_t version = 0;
    Koderid__V2__User *user = NULL;
    Koderid__V2__PasswordPolicy *policy = NULL;
    const char *cid = p->ar->client_id;

    if (!p->ar->pwd_change_user_id || !*p->ar->pwd_change_user_id || !p->ar->pwd_change_binding ||
        !*p->ar->pwd_change_binding) {
        /* A new password without the current one: the step was skipped. */
        rerender(ctx, req, resp, 403, p, app, NULL, "Sign in with your current password first.");
        oidc_response_note(resp, "client_id=%s password change refused: no password step", cid);
        return;
    }
    repo_key(key, "user/%s", p->ar->pwd_change_user_id);
    int r = repo_get(ctx->store, key, &koderid__v2__user__descriptor, &m, &version, &e);
    if (r < 0 && r != -E_NOTFOUND) {
        rerender_step(ctx, req, resp, 503, p, NULL, NULL, app, NULL,
                      "Sign-in is temporarily unavailable. Please try again in a moment.");
        return;
    }
    user = (Koderid__V2__User *)m;
    if (user && user->password_hash)
        sha256_hex(user->password_hash, strlen(user->password_hash), binding);
    if (!user || user->type != 1 || user->state != 1 || !user->password_hash ||
        !*user->password_hash || strcmp(binding, p->ar->pwd_change_binding) != 0) {
        /* Reset, locked or removed since the password step: that proof is void. */
        rerender(ctx, req, resp, 403, p, app, NULL,
                 "Your account changed in the meantime. Please sign in again.");
        oidc_response_note(resp, "client_id=%s sub=%s password change refused: account changed",
                           cid, p->ar->pwd_change_user_id);
        goto out;
    }

    const char *pw = oidc_params_get(params, "newPassword");
    const char *again = oidc_params_get(params, "confirmPassword");
    const char *problem = NULL;
    int status = 400;
    if (!pw || !*pw || !again || !*again)
        problem = "Enter the new password twice.";
    else if (strlen(pw) != strlen(again) || CRYPTO_memcmp(pw, again, strlen(pw)) != 0)
        problem = "The two passwords are not the same.";
    else if (oidc_password_policy_load(ctx->store, user->org_id, &policy, &e) < 0) {
        status = 503;
        problem = "Sign-in is temporarily unavailable. Please try again in a moment.";
    } else if (oidc_password_policy_check(pw, policy, &e) < 0)
        problem = e.msg;
    if (problem) {
        rerender_step(ctx, req, resp, status, p, NULL, NULL, app, NULL, problem);
        oidc_response_note(resp, "client_id=%s sub=%s password change refused: policy", cid,
                           user->id);
        goto out;
    }

    struct hash_job j = {.password = pw, .cost = ctx->cfg.yescrypt_cost};
    if (oidc_hashq_run(ctx->hashq, hash_job_run, &j, HASH_WAIT_MS, NULL) < 0 || !j.hash) {
        free(j.hash);
        rerender_step(ctx, req, resp, 503, p, NULL, NULL, app, NULL,
                      "The server is busy. Please try again in a moment.");
        retry_after(resp, 5000);
        goto out;
    }
    int64_t now = store_now_ms() / 1000;
    Koderid__V2__User copy = *user;
    copy.password_hash = j.hash; /* v1_password_hash stays: the importer sees a v2 change */
    copy.password_change_required = false;
    copy.password_changed_at = now;
    copy.changed_at = now;
    r = repo_cas(ctx->store, key, version, &copy.base, 0, NULL, &e);
    OPENSSL_cleanse(j.hash, strlen(j.hash));
    free(j.hash);
    if (r < 0) {
        rerender_step(ctx, req, resp, r == -E_CONFLICT ? 409 : 503, p, NULL, NULL, app, NULL,
                      "Your password could not be changed. Please try again.");
        oidc_response_note(resp, "client_id=%s sub=%s password change: %s", cid, user->id, e.msg);
        goto out;
    }
    oidc_response_note(resp, "client_id=%s sub=%s password changed", cid, user->id);
    complete_signin(ctx, req, resp, p, user->id, NULL, NULL);
out:
    if (policy)
        koderid__v2__password_policy__free_unpacked(policy, NULL);
    if (user)
        koderid__v2__user__free_unpacked(user, NULL);
}

static void login_post(struct oidc_ctx *ctx, const struct oidc_request *req,
                       struct oidc_response *resp)
{
    struct oidc_params params = {0};
    struct pending p = {0};
    _cleanup_free_ char *app = NULL;

    const char *ct = oidc_request_header(req, "content-type");
    if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
        oidc_html_error(resp, 400, "Invalid request", "The sign-in form was not sent as a form.");
        goto out;
    }
    if (!form_load(ctx, req->body, req->body_len, &params, &p, &app, resp))
        goto out;
    bool changing = oidc_params_get(&params, "newPassword") != NULL;
    if (!csrf_ok(ctx, req, p.ar, oidc_params_get(&params, "csrf"))) {
        char login_name[LOGIN_NAME_MAX + 1];
        const char *name_in = oidc_params_get(&params, "loginName");
        trim_copy(name_in ? name_in : "", login_name, sizeof login_name);
        oidc_response_note(resp, "client_id=%s login: csrf check failed", p.ar->client_id);
        /* The same browser keeps an earned password-change step; another one loses it. */
        rerender_step(ctx, req, resp, 403, &p, NULL, NULL, app, login_name,
                      changing ? "Your form expired. Please enter the new password again."
                               : "Your sign-in form expired. Please enter your password again.");
        goto out;
    }
    if (changing)
        change_step(ctx, req, resp, &p, &params, app);
    else
        password_step(ctx, req, resp, &p, &params, app);
out:
    pending_release(&p);
    oidc_params_release(&params);
}

void oidc_login_endpoint(struct oidc_ctx *ctx, const struct oidc_request *req,
                         struct oidc_response *resp)
{
    if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0) {
        login_get(ctx, req, resp);
    } else if (strcmp(req->method, "POST") == 0) {
        login_post(ctx, req, resp);
    } else {
        oidc_html_error(resp, 405, "Invalid request", "Use GET or POST.");
        oidc_response_header(resp, "allow", "GET, POST");
    }
}
