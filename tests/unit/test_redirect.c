/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for oidc/redirect.c and oidc/pkce.c: exact, loopback and glob matching, hostile
 * URLs, PKCE shapes and S256. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "oidc/pkce.h"
#include "oidc/redirect.h"

static Koderid__V2__Client mk(char **uris, size_t n, int app_type, bool dev)
{
    Koderid__V2__Client c = KODERID__V2__CLIENT__INIT;
    c.client_id = "c1";
    c.redirect_uris = uris;
    c.n_redirect_uris = n;
    c.app_type = app_type;
    c.dev_mode = dev;
    return c;
}

static void test_exact(void **state)
{
    (void)state;
    char *uris[] = {"https://good.com/cb", "com.example.app:/oauth", "https://good.com/cb?x=1"};
    Koderid__V2__Client c = mk(uris, 3, 0, false);
    assert_true(oidc_redirect_allowed(&c, "https://good.com/cb"));
    assert_true(oidc_redirect_allowed(&c, "com.example.app:/oauth"));
    assert_true(oidc_redirect_allowed(&c, "https://good.com/cb?x=1"));
    const char *bad[] = {
        "https://good.com/cb/",
        "https://good.com/cb?x=2",
        "https://good.com/cb#frag",
        "https://good.com/cb?x=1#",
        "HTTPS://good.com/cb",
        "https://GOOD.com/cb",
        "https://good.com./cb",
        "https://good.com:443/cb",
        "https://good.com@evil.com/cb",
        "https://good.com%40evil.com/cb",
        "https://evil.com\\@good.com/cb",
        "https://good.com\\cb",
        "https://good.com%2fcb",
        "https://good.com/cb ",
        " https://good.com/cb",
        "https://good.com/cb\r\nX: y",
        "https://good.com.evil.com/cb",
        "http://good.com/cb",
        "",
        "//good.com/cb",
        "https://good.com/CB",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (oidc_redirect_allowed(&c, bad[i]))
            fail_msg("allowed: '%s'", bad[i]);
    }
    assert_false(oidc_redirect_allowed(&c, NULL));
    assert_false(oidc_redirect_allowed(NULL, "https://good.com/cb"));
}

static void test_exact_registered_fragment_refused(void **state)
{
    (void)state;
    char *uris[] = {"https://good.com/cb#x"};
    Koderid__V2__Client c = mk(uris, 1, 0, false);
    assert_false(oidc_redirect_allowed(&c, "https://good.com/cb#x"));
}

static void test_loopback_native(void **state)
{
    (void)state;
    char *uris[] = {"http://127.0.0.1/callback", "http://localhost:8080/cb", "http://[::1]/cb"};
    Koderid__V2__Client c = mk(uris, 3, 2, false);
    assert_true(oidc_redirect_allowed(&c, "http://127.0.0.1/callback"));
    assert_true(oidc_redirect_allowed(&c, "http://127.0.0.1:51234/callback"));
    assert_true(oidc_redirect_allowed(&c, "http://127.0.0.1:1/callback"));
    assert_true(oidc_redirect_allowed(&c, "http://localhost:9999/cb"));
    assert_true(oidc_redirect_allowed(&c, "http://localhost/cb"));
    assert_true(oidc_redirect_allowed(&c, "http://[::1]:4000/cb"));
    const char *bad[] = {
        "http://127.0.0.1:51234/callback/",
        "http://127.0.0.1:51234/callbackx",
        "http://127.0.0.1:51234/callback?x=1",
        "http://127.0.0.1:51234/callback#x",
        "https://127.0.0.1:51234/callback",
        "http://127.0.0.1:0/callback",
        "http://127.0.0.1:65536/callback",
        "http://127.0.0.1:/callback",
        "http://127.0.0.1:80@evil.com/callback",
        "http://127.0.0.1@evil.com/callback",
        "http://evil.com@127.0.0.1:5000/callback",
        "http://127.0.0.1.evil.com/callback",
        "http://localhost.evil.com:9999/cb",
        "http://127.0.0.1\\@evil.com/callback",
        "http://127.0.0.1%2f@evil.com/callback",
        "http://localhost:9999/callback", /* path registered only for 127.0.0.1 */
        "http://127.0.0.1:9999/cb",       /* host must be the registered one */
        "http://[::1]:4000/callback",
        "http://[::2]:4000/cb",
        "http://[::1:4000/cb",
        "http://0x7f000001:5000/callback",
        "http://127.1:5000/callback",
        "http://127.0.0.1:5000x/callback",
        "http://127.0.0.1:005000000/callback",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (oidc_redirect_allowed(&c, bad[i]))
            fail_msg("allowed: '%s'", bad[i]);

    /* not a native app: exact match only */
    Koderid__V2__Client web = mk(uris, 3, 0, false);
    assert_false(oidc_redirect_allowed(&web, "http://127.0.0.1:51234/callback"));
    assert_true(oidc_redirect_allowed(&web, "http://127.0.0.1/callback"));
}

static void test_glob_dev_mode(void **state)
{
    (void)state;
    char *uris[] = {"https://*.preview.example.com/auth/callback", "http://localhost:*/app/**",
                    "https://dev.example.com/cb/*"};
    Koderid__V2__Client c = mk(uris, 3, 0, true);
    assert_true(oidc_redirect_allowed(&c, "https://pr-12.preview.example.com/auth/callback"));
    assert_true(oidc_redirect_allowed(&c, "http://localhost:3000/app/x/y/z"));
    assert_true(oidc_redirect_allowed(&c, "http://localhost/app/cb"));
    assert_true(oidc_redirect_allowed(&c, "https://dev.example.com/cb/one"));
    const char *bad[] = {
        "https://evil.com/.preview.example.com/auth/callback",
        "https://evil.com?.preview.example.com/auth/callback",
        "https://evil.com#.preview.example.com/auth/callback",
        "https://evil.com\\.preview.example.com/auth/callback",
        "https://evil.com@x.preview.example.com/auth/callback",
        "https://x.preview.example.com@evil.com/auth/callback",
        "https://x.preview.example.com.evil.com/auth/callback",
        "https://a.b.preview.example.com/auth/callback", /* '*' stays within one label */
        "https://x.preview.example.com/auth/callback?next=1",
        "https://x.preview.example.com/auth/callback/",
        "http://x.preview.example.com/auth/callback",
        "https://%65vil.preview.example.com/auth/callback",
        "https://dev.example.com/cb/one/two",
        "https://dev.example.com/cb/a%2fb",
        "https://dev.example.com/cb/%2e%2e",
        "https://dev.example.com/cb/..",
        "http://localhost:3000/app/../admin",
        "http://localhost:3000/app/%2f%2fevil.com",
        "http://localhost.evil.com:3000/app/x",
        "http://evil.com/localhost:3000/app/x",
        "https://dev.example.com/cb/one#x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (oidc_redirect_allowed(&c, bad[i]))
            fail_msg("allowed: '%s'", bad[i]);

    /* the same patterns are plain strings without dev mode */
    Koderid__V2__Client prod = mk(uris, 3, 0, false);
    assert_false(oidc_redirect_allowed(&prod, "https://pr-12.preview.example.com/auth/callback"));
    assert_false(oidc_redirect_allowed(&prod, "http://localhost:3000/app/x"));
}

static void test_glob_deep_mixed(void **state)
{
    (void)state;
    char *uris[] = {"https://dev.example.com/**/cb*"};
    Koderid__V2__Client c = mk(uris, 1, 0, true);
    assert_true(oidc_redirect_allowed(&c, "https://dev.example.com/a/b/c/cbx"));
    assert_true(oidc_redirect_allowed(&c, "https://dev.example.com/a/cb/x/cbz"));
    assert_false(oidc_redirect_allowed(&c, "https://dev.example.com/a/cb/x"));
}

static void test_csp_source(void **state)
{
    char out[300];
    (void)state;
    assert_int_equal(oidc_redirect_csp_source("https://rp.example:8443/cb?x=1", out, sizeof out),
                     0);
    assert_string_equal(out, "https://rp.example:8443");
    assert_int_equal(oidc_redirect_csp_source("com.example.app:/cb", out, sizeof out), 0);
    assert_string_equal(out, "com.example.app:");
    assert_int_equal(oidc_redirect_csp_source("http://[::1]:5000/cb", out, sizeof out), 0);
    assert_string_equal(out, "http://[::1]:5000");
    assert_int_equal(oidc_redirect_csp_source("https://a.b/c;d", out, sizeof out), 0);
    assert_string_equal(out, "https://a.b");
    assert_int_equal(oidc_redirect_csp_source("https://a b/", out, sizeof out), -1);
    assert_int_equal(oidc_redirect_csp_source("https://a.b/c", out, 5), -1);
}

static void test_pkce(void **state)
{
    (void)state;
    /* RFC 7636 appendix B */
    const char *verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const char *challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    assert_true(oidc_pkce_well_formed(challenge));
    assert_true(oidc_pkce_verify_s256(verifier, challenge));
    assert_false(oidc_pkce_verify_s256(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
    assert_false(oidc_pkce_verify_s256(challenge, challenge));
    assert_false(oidc_pkce_verify_s256("short", challenge));
    assert_false(oidc_pkce_verify_s256(NULL, challenge));
    assert_false(oidc_pkce_verify_s256(verifier, NULL));

    char s[200];
    memset(s, 'a', sizeof s);
    s[42] = '\0';
    assert_false(oidc_pkce_well_formed(s));
    s[42] = 'a';
    s[43] = '\0';
    assert_true(oidc_pkce_well_formed(s));
    s[43] = 'a';
    s[128] = '\0';
    assert_true(oidc_pkce_well_formed(s));
    s[128] = 'a';
    s[129] = '\0';
    assert_false(oidc_pkce_well_formed(s));
    assert_false(oidc_pkce_well_formed("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"));
    assert_false(oidc_pkce_well_formed("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw=cM"));
    assert_false(oidc_pkce_well_formed("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw cM"));
    assert_false(oidc_pkce_well_formed("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw/cM"));
    assert_true(oidc_pkce_well_formed("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw~c."));
    assert_false(oidc_pkce_well_formed(NULL));
    assert_false(oidc_pkce_well_formed(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact),
        cmocka_unit_test(test_exact_registered_fragment_refused),
        cmocka_unit_test(test_loopback_native),
        cmocka_unit_test(test_glob_dev_mode),
        cmocka_unit_test(test_glob_deep_mixed),
        cmocka_unit_test(test_csp_source),
        cmocka_unit_test(test_pkce),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
