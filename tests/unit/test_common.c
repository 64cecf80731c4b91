/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/: error table, base64url, ids, buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/b64.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/rand.h"

static void test_err_table(void **state)
{
    struct err e;
    (void)state;
    assert_int_equal(err_set(&e, -E_INVALID_CLIENT, "client '%s'", "x"), -E_INVALID_CLIENT);
    assert_string_equal(e.msg, "client 'x'");
    assert_string_equal(err_oauth(-E_INVALID_CLIENT), "invalid_client");
    assert_int_equal(err_http_status(-E_INVALID_CLIENT), 401);
    assert_int_equal(err_http_status(-E_UNAVAILABLE), 503);
    assert_string_equal(err_oauth(9999), "server_error");
}

static void test_b64url_roundtrip(void **state)
{
    (void)state;
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\xfd"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        char *enc = b64url_encode_alloc(in[i], strlen(in[i]));
        size_t n;
        unsigned char *dec = b64url_decode_alloc(enc, strlen(enc), false, &n);
        assert_non_null(dec);
        assert_int_equal(n, strlen(in[i]));
        assert_memory_equal(dec, in[i], n);
        free(enc);
        free(dec);
    }
}

static void test_b64url_rejects(void **state)
{
    size_t n;
    (void)state;
    assert_null(b64url_decode_alloc("a", 1, false, &n));
    assert_null(b64url_decode_alloc("ab+c", 4, false, &n));
    assert_null(b64url_decode_alloc("Zm9v=", 5, false, &n));
    assert_null(b64url_decode_alloc("Zh", 2, false, &n)); /* non-canonical trailing bits */
}

static void test_id_shape(void **state)
{
    char a[21], b[21];
    (void)state;
    id_new(a);
    id_new(b);
    assert_int_equal(strlen(a), 18);
    assert_true(strcmp(a, b) < 0);
    for (const char *p = a; *p; p++)
        assert_true(*p >= '0' && *p <= '9');
}

static void test_rand_alnum(void **state)
{
    char s[65];
    (void)state;
    assert_int_equal(rand_alnum(s, 64), 0);
    assert_int_equal(strlen(s), 64);
    for (const char *p = s; *p; p++)
        assert_true((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9'));
}

static void test_buf(void **state)
{
    struct buf b = BUF_INIT;
    (void)state;
    buf_adds(&b, "a<");
    buf_add_html(&b, "<\"'&>");
    buf_addf(&b, "%d", 42);
    buf_add_urlenc(&b, "a b/c");
    assert_string_equal(b.data, "a<&lt;&quot;&#39;&amp;&gt;42a%20b%2Fc");
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_table),   cmocka_unit_test(test_b64url_roundtrip),
        cmocka_unit_test(test_b64url_rejects), cmocka_unit_test(test_id_shape),
        cmocka_unit_test(test_rand_alnum),  cmocka_unit_test(test_buf),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
