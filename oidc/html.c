/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTML shell of the login pages. The stylesheet is inline and allowed by its SHA-256 in
 * the CSP, so the policy can stay `default-src 'none'` with no static files to serve. The one
 * script (the form_post page's auto-submit) is a constant allowed the same way.
 */
#include "html.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/rand.h"

static const char css[] =
    "*{box-sizing:border-box}"
    "body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "background:#f4f5f7;color:#1d2330}"
    "main{max-width:24rem;margin:8vh auto;padding:2rem 1.5rem;background:#fff;"
    "border-radius:10px;box-shadow:0 1px 4px rgba(0,0,0,.12)}"
    "h1{font-size:1.5rem;margin:0 0 .25rem}"
    ".app{margin:0 0 1.5rem;color:#5b6475}"
    "label{display:block;font-weight:600;margin:1rem 0 .25rem}"
    "input{width:100%;padding:.65rem .75rem;font:inherit;border:1px solid #b9c0cc;"
    "border-radius:6px}"
    "input:focus{outline:2px solid #3060d0;border-color:#3060d0}"
    "button{width:100%;margin-top:1.5rem;padding:.75rem;font:inherit;font-weight:600;"
    "color:#fff;background:#3060d0;border:0;border-radius:6px;cursor:pointer}"
    ".error{padding:.75rem;border-radius:6px;background:#fdecec;color:#8a1c1c;"
    "border:1px solid #f3b9b9}"
    "@media (max-width:30rem){main{margin:0;min-height:100vh;border-radius:0;box-shadow:none}}"
    "@media (prefers-color-scheme:dark){body{background:#15181e;color:#e4e7ec}"
    "main{background:#1f232b}input{background:#15181e;color:inherit;border-color:#454c59}"
    ".app{color:#9aa3b2}.error{background:#3a1d1d;color:#ffc9c9;border-color:#6b2a2a}}";

/* Submits the form_post page's form once loaded (OAuth 2.0 Form Post Response Mode). */
static const char autosubmit_js[] = "document.forms[0].submit()";

static char style_src[64], script_src[64];
static pthread_once_t style_once = PTHREAD_ONCE_INIT;

static void csp_hash(const char *text, char out[64])
{
    unsigned char d[32];
    sha256_raw(text, strlen(text), d);
    char *b64 = b64_encode_alloc(d, sizeof d);
    snprintf(out, 64, "'sha256-%s'", b64 ? b64 : "");
    free(b64);
}

static void style_init(void)
{
    csp_hash(css, style_src);
    csp_hash(autosubmit_js, script_src);
}

int oidc_html_begin(struct buf *b, const char *title)
{
    int r = buf_adds(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                        "<meta name=\"referrer\" content=\"no-referrer\"><title>");
    if (r >= 0)
        r = buf_add_html(b, title);
    if (r >= 0)
        r = buf_addf(b, "</title><style>%s</style></head><body><main>", css);
    return r;
}

int oidc_html_end(struct buf *b)
{
    return buf_adds(b, "</main></body></html>\n");
}

/* The page in @b with the security headers; @script allows the auto-submit script. */
static void respond(struct oidc_response *resp, int status, const char *form_action, bool script,
                    struct buf *b)
{
    char csp[1024];
    size_t len = 0;
    char *body = buf_detach(b, &len);

    pthread_once(&style_once, style_init);
    snprintf(csp, sizeof csp,
             "default-src 'none'; style-src %s; %s%s%sform-action %s%s%s; frame-ancestors 'none'; "
             "base-uri 'none'",
             style_src, script ? "script-src " : "", script ? script_src : "", script ? "; " : "",
             form_action ? "'self'" : "'none'", form_action && *form_action ? " " : "",
             form_action ? form_action : "");
    oidc_response_body(resp, status, "text/html; charset=utf-8", body, body ? len : 0);
    oidc_response_header(resp, "content-security-policy", csp);
    oidc_response_header(resp, "x-content-type-options", "nosniff");
    oidc_response_header(resp, "x-frame-options", "DENY");
    oidc_response_header(resp, "referrer-policy", "no-referrer");
    oidc_response_header(resp, "cache-control", "no-store");
    oidc_response_header(resp, "pragma", "no-cache");
}

void oidc_html_respond(struct oidc_response *resp, int status, const char *form_action,
                       struct buf *b)
{
    respond(resp, status, form_action, false, b);
}

void oidc_html_form_post(struct oidc_response *resp, const char *action, const char *form_action,
                         const char *const *names, const char *const *values, size_t n)
{
    struct buf b = BUF_INIT;
    oidc_html_begin(&b, "Signing in");
    buf_adds(&b, "<h1>Signing in</h1><form method=\"post\" action=\"");
    buf_add_html(&b, action);
    buf_adds(&b, "\">");
    for (size_t i = 0; i < n; i++) {
        buf_adds(&b, "<input type=\"hidden\" name=\"");
        buf_add_html(&b, names[i]);
        buf_adds(&b, "\" value=\"");
        buf_add_html(&b, values[i]);
        buf_adds(&b, "\">");
    }
    buf_addf(&b,
             "<noscript><p>JavaScript is off: press Continue to finish signing in.</p></noscript>"
             "<button type=\"submit\">Continue</button></form><script>%s</script>",
             autosubmit_js);
    oidc_html_end(&b);
    respond(resp, 200, form_action, true, &b);
}

void oidc_html_error(struct oidc_response *resp, int status, const char *title, const char *message)
{
    struct buf b = BUF_INIT;
    oidc_html_begin(&b, title);
    buf_adds(&b, "<h1>");
    buf_add_html(&b, title);
    buf_adds(&b, "</h1><p class=\"error\" role=\"alert\">");
    buf_add_html(&b, message);
    buf_adds(&b, "</p>");
    oidc_html_end(&b);
    oidc_html_respond(resp, status, NULL, &b);
}
