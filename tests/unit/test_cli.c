/* SPDX-License-Identifier: Apache-2.0 */
/* server/cli.c and server/admin.c: exact option names, dates for --expires, names, generated
 * secrets and their hashes, and the public keys the operator commands accept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <crypt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/cleanup.h"
#include "server/admin.h"
#include "server/cli.h"

static const struct option opts[] = {
    {"username", required_argument, NULL, 'u'},
    {"json", no_argument, NULL, 'j'},
    {NULL, 0, NULL, 0},
};

/* cli_check_options() over a NULL-terminated word list (argv[0] is the command). */
static int check(const char *first, ...)
{
    char *argv[16] = {(char *)"cmd"};
    int argc = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 15; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    return cli_check_options("cmd", argc, argv, opts);
}

static void test_exact_option_names(void **state)
{
    (void)state;
    assert_int_equal(check("--username", "a", "--json", NULL), 0);
    assert_int_equal(check("--username=a", NULL), 0);
    assert_int_equal(check("operand", "-", NULL), 0);
    /* the value of a required option is skipped whatever it looks like */
    assert_int_equal(check("--username", "--user", NULL), 0);
    /* after "--" everything is an operand */
    assert_int_equal(check("--", "--user", "-x", NULL), 0);
    /* what getopt_long would have taken */
    assert_int_equal(check("--user", "a", NULL), CLI_EXIT_USAGE);
    assert_int_equal(check("--js", NULL), CLI_EXIT_USAGE);
    assert_int_equal(check("--user=a", NULL), CLI_EXIT_USAGE);
    assert_int_equal(check("--usernames", "a", NULL), CLI_EXIT_USAGE);
    assert_int_equal(check("-j", NULL), CLI_EXIT_USAGE);
    assert_int_equal(check("--json=1", NULL), CLI_EXIT_USAGE);
    assert_int_equal(check("--username", NULL), CLI_EXIT_USAGE);
    assert_int_equal(check("--", NULL), 0);
    assert_int_equal(check("---", NULL), CLI_EXIT_USAGE);
}

static void test_parse_time(void **state)
{
    int64_t t = 0;
    (void)state;
    assert_int_equal(cli_parse_time("2030-01-02", &t), 0);
    assert_int_equal(t, 1893542400);
    assert_int_equal(cli_parse_time("2030-01-02T03:04:05Z", &t), 0);
    assert_int_equal(t, 1893542400 + 3 * 3600 + 4 * 60 + 5);
    assert_int_equal(cli_parse_time("1893542400", &t), 0);
    assert_int_equal(t, 1893542400);
    assert_int_equal(cli_parse_time("2028-02-29", &t), 0);
    static const char *const bad[] = {
        "",         "2030-02-31",  "2027-02-29",           "2030-13-01",
        "2030-1-2", "2030-01-02 ", "2030-01-02T03:04:05",  "2030-01-02T03:04:05+01:00",
        "tomorrow", "1969-12-31",  "2030-01-02T24:00:00Z", "12345678901234567890",
        "-5",       "2030-01-02x",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        t = 42;
        assert_int_equal(cli_parse_time(bad[i], &t), -1);
        assert_int_equal(t, 42);
    }
}

static void test_names(void **state)
{
    char long_name[CLI_NAME_MAX + 2];
    (void)state;
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_true(cli_valid_name("svc-orders@shop"));
    assert_false(cli_valid_name(""));
    assert_false(cli_valid_name("a b"));
    assert_false(cli_valid_name("a\tb"));
    assert_false(cli_valid_name(long_name));
    long_name[CLI_NAME_MAX] = '\0';
    assert_true(cli_valid_name(long_name));
    assert_true(cli_valid_text(""));
    assert_true(cli_valid_text("Orders API (prod)"));
    assert_false(cli_valid_text("a\nb"));
    assert_false(cli_valid_text("a\x7f"));
}

static void test_secret(void **state)
{
    char s1[CLI_SECRET_LEN + 1], s2[CLI_SECRET_LEN + 1];
    _cleanup_free_ char *h1 = NULL;
    _cleanup_free_ char *h2 = NULL;
    (void)state;
    assert_int_equal(cli_secret_new(s1, &h1), 0);
    assert_int_equal(cli_secret_new(s2, &h2), 0);
    assert_int_equal(strlen(s1), CLI_SECRET_LEN);
    assert_int_equal(strspn(s1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
                     CLI_SECRET_LEN);
    assert_string_not_equal(s1, s2);
    assert_memory_equal(h1, "$2b$10$", 7);
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    const char *again = crypt_rn(s1, h1, &cd, sizeof cd);
    assert_non_null(again);
    assert_string_equal(again, h1);
    again = crypt_rn(s2, h1, &cd, sizeof cd);
    assert_true(!again || strcmp(again, h1) != 0);
}

/* Writes a new key of @type/@param as PEM (public, or private) into a temporary file. */
static void write_key(char path[64], const char *type, const char *param, bool public)
{
    EVP_PKEY *k = strcmp(type, "RSA") == 0
                      ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)atoi(param))
                  : param ? EVP_PKEY_Q_keygen(NULL, NULL, type, param)
                          : EVP_PKEY_Q_keygen(NULL, NULL, type);
    assert_non_null(k);
    snprintf(path, 64, "/tmp/test_cli_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(
        public ? PEM_write_PUBKEY(f, k) : PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    EVP_PKEY_free(k);
}

static void test_public_keys(void **state)
{
    char path[64];
    struct admin_pubkey k = {0};
    struct err e = {0};
    (void)state;

    write_key(path, "RSA", "2048", true);
    assert_int_equal(admin_pubkey_read(path, &k, &e), 0);
    assert_string_equal(k.alg, "RS256");
    assert_non_null(strstr(k.pem, "-----BEGIN PUBLIC KEY-----"));
    assert_int_equal(strlen(k.pem), k.len);
    admin_pubkey_release(&k);
    unlink(path);

    write_key(path, "EC", "P-256", true);
    assert_int_equal(admin_pubkey_read(path, &k, &e), 0);
    assert_string_equal(k.alg, "ES256");
    admin_pubkey_release(&k);
    unlink(path);

    struct {
        const char *type, *param;
        bool public;
        const char *says;
    } bad[] = {
        {"EC", "P-256", false, "private key"},
        {"RSA", "2048", false, "private key"},
        {"RSA", "1024", true, "1024 bits"},
        {"EC", "P-384", true, "P-256 wanted"},
        {"ED25519", NULL, true, "not an RSA or EC P-256 key"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        write_key(path, bad[i].type, bad[i].param, bad[i].public);
        assert_int_equal(admin_pubkey_read(path, &k, &e), -E_INVALID);
        assert_non_null(strstr(e.msg, bad[i].says));
        assert_null(strstr(e.msg, "BEGIN"));
        assert_null(k.pem);
        unlink(path);
    }

    /* not PEM; too large; missing */
    snprintf(path, sizeof path, "/tmp/test_cli_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hello\n", 6), 6);
    assert_int_equal(admin_pubkey_read(path, &k, &e), -E_INVALID);
    char *big = malloc(ADMIN_PEM_MAX + 1);
    assert_non_null(big);
    memset(big, 'A', ADMIN_PEM_MAX + 1);
    assert_int_equal(write(fd, big, ADMIN_PEM_MAX + 1), ADMIN_PEM_MAX + 1);
    free(big);
    close(fd);
    assert_int_equal(admin_pubkey_read(path, &k, &e), -E_INVALID);
    assert_non_null(strstr(e.msg, "larger than"));
    unlink(path);
    assert_int_equal(admin_pubkey_read(path, &k, &e), -E_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_option_names),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_secret),
        cmocka_unit_test(test_public_keys),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
