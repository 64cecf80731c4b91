/* SPDX-License-Identifier: Apache-2.0 */
/* server/config.c: file syntax, precedence, env names, errors naming key and line; and the
 * small HTTP helpers of server/httpd.c (client address behind proxies, ETag matching). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "common/log.h"
#include "server/config.h"
#include "server/httpd.h"

static char tmpl[64];

/* Writes @text to a new temporary file; returns its path (static buffer). */
static const char *write_conf(const char *text)
{
    snprintf(tmpl, sizeof tmpl, "/tmp/test_config_XXXXXX");
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return tmpl;
}

static void test_defaults(void **state)
{
    struct config c;
    struct err e = {0};
    char *env[] = {NULL};
    (void)state;
    assert_int_equal(config_load(&c, "/dev/null", env, NULL, 0, &e), 0);
    assert_string_equal(c.issuer, "http://127.0.0.1:8190");
    assert_string_equal(c.listen, "127.0.0.1:8190");
    assert_string_equal(c.data_dir, "/var/lib/koder-id-v2");
    assert_string_equal(c.storage, "lmdb");
    assert_string_equal(c.master_key_file, "/etc/koder-id-v2/master.key");
    assert_int_equal(c.log_level, LOG_LVL_INFO);
    assert_int_equal(c.lmdb_map_size, 8ULL << 30);
    assert_int_equal(c.max_body, 64 * 1024);
    assert_int_equal(c.pool_threads, 64);
    assert_false(c.http2);
    assert_int_equal(c.nproxies, 0);
    config_release(&c);
}

static void test_file_env_flags_precedence(void **state)
{
    struct config c;
    struct err e = {0};
    (void)state;
    const char *path = write_conf("# a comment\n"
                                  "\n"
                                  "  issuer = https://id.example.com  \n"
                                  "listen=127.0.0.1:9000\n"
                                  "lmdb.map_size = 1G\n"
                                  "log_level = debug\n"
                                  "workers = 3\n"
                                  "http2 = on\n");
    char *env[] = {"PATH=/usr/bin", "KODER_ID_V2_LISTEN=127.0.0.1:9001",
                   "KODER_ID_V2_LMDB_MAP_SIZE=2G", "KODER_ID_V2_WORKERS=5", NULL};
    char *flags[] = {"workers=7", "log-level=warn"};
    assert_int_equal(config_load(&c, path, env, flags, 2, &e), 0);
    assert_string_equal(c.issuer, "https://id.example.com"); /* file */
    assert_string_equal(c.listen, "127.0.0.1:9001");         /* env over file */
    assert_int_equal(c.lmdb_map_size, 2ULL << 30);           /* env over file */
    assert_int_equal(c.workers, 7);                          /* flag over env */
    assert_int_equal(c.log_level, LOG_LVL_WARN);             /* flag over file */
    assert_true(c.http2);
    assert_string_equal(c.file, path);
    config_release(&c);
    unlink(path);
}

static void expect_file_error(const char *text, const char *needle1, const char *needle2)
{
    struct config c;
    struct err e = {0};
    char *env[] = {NULL};
    const char *path = write_conf(text);
    assert_int_equal(config_load(&c, path, env, NULL, 0, &e), -E_CONFIG);
    if (!strstr(e.msg, needle1) || (needle2 && !strstr(e.msg, needle2)))
        fail_msg("message '%s' lacks '%s' / '%s'", e.msg, needle1, needle2 ? needle2 : "");
    config_release(&c);
    unlink(path);
}

static void test_file_errors_name_key_and_line(void **state)
{
    (void)state;
    expect_file_error("issuer = http://a\nbogus.key = 1\n", ":2:", "bogus.key");
    expect_file_error("listen = 127.0.0.1:1\n# c\nlisten = 127.0.0.1:2\n",
                      ":3:", "duplicate key 'listen'");
    expect_file_error("workers = many\n", ":1:", "workers");
    expect_file_error("\n\nworkers = 100000\n", ":3:", "out of range");
    expect_file_error("issuer = http://x/path/\n", ":1:", "issuer");
    expect_file_error("issuer = ftp://x\n", ":1:", "issuer");
    expect_file_error("storage = sqlite\n", ":1:", "storage");
    expect_file_error("log_level = loud\n", ":1:", "log_level");
    expect_file_error("http2 = maybe\n", ":1:", "http2");
    expect_file_error("lmdb.map_size = 12Q\n", ":1:", "lmdb.map_size");
    expect_file_error("just words\n", ":1:", "key = value");
    expect_file_error("trusted_proxies = 10.0.0.0/8, nonsense\n", ":1:", "nonsense");
    expect_file_error("listen = nocolon\n", ":1:", "listen");
    expect_file_error("kdbnext.tenant = 1000000\n", ":1:", "preseeded range");
    expect_file_error("kdbnext.tenant = 5\n", "kdbnext.tenant", "1,000,000");
}

static void test_env_errors_and_names(void **state)
{
    struct config c;
    struct err e = {0};
    char name[80];
    (void)state;
    config_env_name("lmdb.map_size", name, sizeof name);
    assert_string_equal(name, "KODER_ID_V2_LMDB_MAP_SIZE");
    config_env_name("kdbnext.tls_ca_file", name, sizeof name);
    assert_string_equal(name, "KODER_ID_V2_KDBNEXT_TLS_CA_FILE");
    config_env_name("password.yescrypt_cost", name, sizeof name);
    assert_string_equal(name, "KODER_ID_V2_PASSWORD_YESCRYPT_COST");

    char *bad_name[] = {"KODER_ID_V2_LISTN=1", NULL};
    assert_int_equal(config_load(&c, "/dev/null", bad_name, NULL, 0, &e), -E_CONFIG);
    assert_non_null(strstr(e.msg, "KODER_ID_V2_LISTN"));
    config_release(&c);

    char *bad_value[] = {"KODER_ID_V2_WORKERS=-1", NULL};
    assert_int_equal(config_load(&c, "/dev/null", bad_value, NULL, 0, &e), -E_CONFIG);
    assert_non_null(strstr(e.msg, "KODER_ID_V2_WORKERS"));
    config_release(&c);

    char *ok[] = {"KODER_ID_V2_KDBNEXT_TENANT=1000001", "KODER_ID_V2_STORAGE=kdbnext",
                  "KODER_ID_V2_KDBNEXT_ADDRESS=127.0.0.1:18090", NULL};
    assert_int_equal(config_load(&c, "/dev/null", ok, NULL, 0, &e), 0);
    assert_int_equal(c.kdbnext_tenant, 1000001);
    config_release(&c);

    /* kdbnext without its address is caught by the cross-key check. */
    char *missing[] = {"KODER_ID_V2_STORAGE=kdbnext", "KODER_ID_V2_KDBNEXT_TENANT=2000000", NULL};
    assert_int_equal(config_load(&c, "/dev/null", missing, NULL, 0, &e), -E_CONFIG);
    assert_non_null(strstr(e.msg, "kdbnext.address"));
    config_release(&c);

    /* a flag that is not a key */
    char *env[] = {NULL};
    char *flags[] = {"no-such-key=1"};
    assert_int_equal(config_load(&c, "/dev/null", env, flags, 1, &e), -E_CONFIG);
    assert_non_null(strstr(e.msg, "no-such-key"));
    config_release(&c);

    /* a missing file */
    assert_int_equal(config_load(&c, "/nonexistent/gw.conf", env, NULL, 0, &e), -E_CONFIG);
    assert_non_null(strstr(e.msg, "/nonexistent/gw.conf"));
    config_release(&c);
}

static void test_sizes_and_bools(void **state)
{
    struct config c;
    struct err e = {0};
    (void)state;
    config_init(&c);
    assert_int_equal(config_set(&c, "max_body", "1M", "t", &e), 0);
    assert_int_equal(c.max_body, 1 << 20);
    assert_int_equal(config_set(&c, "max_body", "4096", "t", &e), 0);
    assert_int_equal(c.max_body, 4096);
    assert_int_equal(config_set(&c, "lmdb.map_size", "16GiB", "t", &e), 0);
    assert_int_equal(c.lmdb_map_size, 16ULL << 30);
    assert_int_equal(config_set(&c, "max_body", "100M", "t", &e), -E_CONFIG); /* over cap */
    assert_int_equal(config_set(&c, "http2", "yes", "t", &e), 0);
    assert_true(c.http2);
    assert_int_equal(config_set(&c, "http2", "0", "t", &e), 0);
    assert_false(c.http2);
    assert_int_equal(config_set(&c, "nope", "1", "t", &e), -E_NOTFOUND);
    assert_string_equal(config_key_from_flag("data-dir"), "data_dir");
    assert_string_equal(config_key_from_flag("lmdb.map-size"), "lmdb.map_size");
    assert_null(config_key_from_flag("data--dir"));
    config_release(&c);
}

/* The keys.* settings: defaults, and publish_ahead never below what relying parties need. */
static void test_key_rotation_settings(void **state)
{
    struct config c;
    struct err e = {0};
    char *env[] = {NULL};
    (void)state;
    assert_int_equal(config_load(&c, "/dev/null", env, NULL, 0, &e), 0);
    assert_int_equal(c.keys_rotate_every, 90 * 86400);
    assert_int_equal(c.keys_publish_ahead, 900);
    assert_int_equal(c.keys_retire_margin, 300);
    assert_int_equal(c.keys_reload_interval, 30);
    assert_int_equal(c.keys_jwks_max_age, 300);
    config_release(&c);

    char *fast[] = {"keys.publish_ahead=3", "keys.reload-interval=1", "keys.jwks_max_age=1",
                    "keys.rotate_every=0"};
    assert_int_equal(config_load(&c, "/dev/null", env, fast, 4, &e), 0);
    assert_int_equal(c.keys_publish_ahead, 3);
    assert_int_equal(c.keys_rotate_every, 0);
    config_release(&c);

    char *short_ahead[] = {"keys.publish_ahead=629"}; /* 30 + 2 x 300 = 630 */
    assert_int_equal(config_load(&c, "/dev/null", env, short_ahead, 1, &e), -E_CONFIG);
    assert_non_null(strstr(e.msg, "keys.publish_ahead"));
    assert_non_null(strstr(e.msg, "630"));
    config_release(&c);
    char *long_cache[] = {"keys.jwks_max_age=600"};
    assert_int_equal(config_load(&c, "/dev/null", env, long_cache, 1, &e), -E_CONFIG);
    config_release(&c);
    char *neg[] = {"keys.rotate_every=-1"};
    assert_int_equal(config_load(&c, "/dev/null", env, neg, 1, &e), -E_CONFIG);
    config_release(&c);
}

static void test_issuer_host(void **state)
{
    char host[64];
    (void)state;
    assert_int_equal(config_issuer_host("https://id.koder.dev", host, sizeof host), 0);
    assert_string_equal(host, "id.koder.dev");
    assert_int_equal(config_issuer_host("http://127.0.0.1:8190", host, sizeof host), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(config_issuer_host("http://[::1]:8190", host, sizeof host), 0);
    assert_string_equal(host, "::1");
}

static struct sockaddr_in v4(const char *ip)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    return sa;
}

static void test_client_addr(void **state)
{
    struct config c;
    struct err e = {0};
    char out[64];
    (void)state;
    config_init(&c);
    assert_int_equal(config_set(&c, "trusted_proxies", "127.0.0.1, 10.0.0.0/8", "t", &e), 0);
    assert_int_equal(c.nproxies, 2);

    struct sockaddr_in proxy = v4("127.0.0.1"), stranger = v4("192.0.2.7"), inner = v4("10.1.2.3");
    const char *xff = "198.51.100.1, 203.0.113.9, 10.9.9.9";

    /* An untrusted peer's X-Forwarded-For is ignored. */
    httpd_client_addr(&c, (struct sockaddr *)&stranger, xff, strlen(xff), out, sizeof out);
    assert_string_equal(out, "192.0.2.7");
    /* A trusted peer: the rightmost hop that is not a trusted proxy. */
    httpd_client_addr(&c, (struct sockaddr *)&proxy, xff, strlen(xff), out, sizeof out);
    assert_string_equal(out, "203.0.113.9");
    httpd_client_addr(&c, (struct sockaddr *)&inner, "198.51.100.1", 12, out, sizeof out);
    assert_string_equal(out, "198.51.100.1");
    /* No header: the peer. */
    httpd_client_addr(&c, (struct sockaddr *)&proxy, NULL, 0, out, sizeof out);
    assert_string_equal(out, "127.0.0.1");
    /* Garbage stops the walk at the last address a trusted proxy vouched for. */
    const char *junk = "<script>, 203.0.113.9";
    httpd_client_addr(&c, (struct sockaddr *)&proxy, junk, strlen(junk), out, sizeof out);
    assert_string_equal(out, "203.0.113.9");
    const char *junk2 = "203.0.113.9, bogus";
    httpd_client_addr(&c, (struct sockaddr *)&proxy, junk2, strlen(junk2), out, sizeof out);
    assert_string_equal(out, "127.0.0.1");
    /* Everyone trusted: the leftmost. */
    const char *all = "10.0.0.1, 10.0.0.2";
    httpd_client_addr(&c, (struct sockaddr *)&proxy, all, strlen(all), out, sizeof out);
    assert_string_equal(out, "10.0.0.1");
    /* IPv6 networks. */
    struct config_cidr net;
    assert_int_equal(config_parse_cidr("2001:db8::/32", &net), 0);
    assert_true(config_cidr_match_text(&net, "2001:db8::1"));
    assert_false(config_cidr_match_text(&net, "2001:db9::1"));
    assert_int_equal(config_parse_cidr("10.0.0.0/33", &net), -1);
    config_release(&c);
}

static void test_etag_match(void **state)
{
    (void)state;
    const char *etag = "\"abc\"";
    assert_true(httpd_etag_match("\"abc\"", 5, etag));
    assert_true(httpd_etag_match("W/\"abc\"", 7, etag));
    assert_true(httpd_etag_match("\"x\", \"abc\"", 10, etag));
    assert_true(httpd_etag_match("*", 1, etag));
    assert_false(httpd_etag_match("\"abcd\"", 6, etag));
    assert_false(httpd_etag_match("\"ab\"", 4, etag));
    assert_false(httpd_etag_match(NULL, 0, etag));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file_env_flags_precedence),
        cmocka_unit_test(test_file_errors_name_key_and_line),
        cmocka_unit_test(test_env_errors_and_names),
        cmocka_unit_test(test_sizes_and_bools),
        cmocka_unit_test(test_key_rotation_settings),
        cmocka_unit_test(test_issuer_host),
        cmocka_unit_test(test_client_addr),
        cmocka_unit_test(test_etag_match),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
