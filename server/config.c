/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configuration loader: one table of keys drives the defaults, the file parser, the
 * environment names, the command-line flags and the dump, so a key cannot exist in one place
 * and be missing in another. Defaults go through the same parser as every other source.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/log.h"

enum config_type {
    CT_STR,    /* any non-empty string */
    CT_PATH,   /* a file or folder path (non-empty, no control characters) */
    CT_ISSUER, /* http(s)://host[:port] */
    CT_LISTEN, /* host:port */
    CT_ENUM,   /* one of values[] */
    CT_INT,    /* decimal int in [min, max] */
    CT_U64,    /* decimal uint64 in [min, max] */
    CT_SIZE,   /* bytes with an optional K/M/G/T suffix (powers of 1024) */
    CT_BOOL,   /* on/off, true/false, yes/no, 1/0 */
    CT_LOGLEVEL,
    CT_PROXIES, /* comma-separated addresses / CIDRs */
};

struct config_key {
    const char *name;
    enum config_type type;
    size_t offset;
    int64_t min, max;
    const char *def; /* NULL = unset (empty string / 0) */
    const char *values[4];
    const char *help;
};

#define OFF(f) offsetof(struct config, f)

/* One row per key; clang-format would put every field on its own line and hide the table. */
/* clang-format off */
static const struct config_key keys[] = {
    {"issuer", CT_ISSUER, OFF(issuer), 0, 0, "http://127.0.0.1:8190", {0},
     "the issuer: scheme://host[:port], no path, no trailing slash"},
    {"listen", CT_LISTEN, OFF(listen), 0, 0, "127.0.0.1:8190", {0}, "address:port to listen on"},
    {"data_dir", CT_PATH, OFF(data_dir), 0, 0, "/var/lib/koder-id-v2", {0},
     "folder of the embedded store"},
    {"storage", CT_ENUM, OFF(storage), 0, 0, "lmdb", {"lmdb", "kdbnext"}, "store backend"},
    {"lmdb.map_size", CT_SIZE, OFF(lmdb_map_size), 1 << 20, 0, "8G", {0},
     "largest size of the LMDB file (sparse)"},
    {"master_key_file", CT_PATH, OFF(master_key_file), 0, 0, "/etc/koder-id-v2/master.key", {0},
     "file of 32 random bytes encrypting the signing keys"},
    {"log_level", CT_LOGLEVEL, OFF(log_level), 0, 0, "info", {0}, "error|warn|info|debug"},
    {"log_file", CT_PATH, OFF(log_file), 0, 0, NULL, {0},
     "file serve appends its log to instead of stderr; reopened on SIGHUP"},
    {"workers", CT_INT, OFF(workers), 0, 256, "0", {0},
     "event-loop threads (one listening socket each); 0 = one per core"},
    {"pool_threads", CT_INT, OFF(pool_threads), 1, 1024, "64", {0},
     "threads answering requests that touch the store"},
    {"trusted_proxies", CT_PROXIES, OFF(trusted_proxies), 0, 0, NULL, {0},
     "comma-separated proxy addresses/CIDRs whose X-Forwarded-For is believed"},
    {"http2", CT_BOOL, OFF(http2), 0, 0, "off", {0}, "offer HTTP/2 (h2c); off by default"},
    {"http2.max_streams", CT_INT, OFF(http2_max_streams), 1, 256, "16", {0},
     "concurrent streams per HTTP/2 connection"},
    {"max_body", CT_SIZE, OFF(max_body), 1024, 16 << 20, "64K", {0},
     "largest request body; larger requests get 413"},
    {"purge_interval", CT_INT, OFF(purge_interval), 1, 86400, "60", {0},
     "seconds between purges of expired store entries"},
    {"keys.rotate_every", CT_INT, OFF(keys_rotate_every), 0, 3650 * 86400, "7776000", {0},
     "seconds a signing key signs before serve rotates it (0 = never; default 90 days)"},
    {"keys.publish_ahead", CT_INT, OFF(keys_publish_ahead), 1, 30 * 86400, "900", {0},
     "seconds a new key is in the JWKS before it signs (>= reload_interval + 2 x jwks_max_age)"},
    {"keys.retire_margin", CT_INT, OFF(keys_retire_margin), 0, 86400, "300", {0},
     "seconds a retired key stays published beyond the longest token lifetime"},
    {"keys.reload_interval", CT_INT, OFF(keys_reload_interval), 1, 3600, "30", {0},
     "seconds between serve's re-reads of the keys (picks up `keys rotate`)"},
    {"keys.jwks_max_age", CT_INT, OFF(keys_jwks_max_age), 0, 86400, "300", {0},
     "Cache-Control max-age of the JWKS and discovery answers, seconds"},
    {"password.yescrypt_cost", CT_INT, OFF(password_yescrypt_cost), 1, 11, "5", {0},
     "yescrypt cost of new and upgraded password hashes"},
    {"password.hash_workers", CT_INT, OFF(password_hash_workers), 1, 64, "2", {0},
     "threads for expensive password and secret checks"},
    {"password.hash_queue_max", CT_INT, OFF(password_hash_queue_max), 1, 100000, "64", {0},
     "pending expensive checks before new ones are refused"},
    {"kdbnext.address", CT_STR, OFF(kdbnext_address), 0, 0, NULL, {0},
     "kdb-next host:port (storage = kdbnext)"},
    {"kdbnext.tls_ca_file", CT_PATH, OFF(kdbnext_tls_ca_file), 0, 0, NULL, {0},
     "CA bundle verifying kdb-next's certificate"},
    {"kdbnext.tls_cert_file", CT_PATH, OFF(kdbnext_tls_cert_file), 0, 0, NULL, {0},
     "client certificate for kdb-next (mutual TLS)"},
    {"kdbnext.tls_key_file", CT_PATH, OFF(kdbnext_tls_key_file), 0, 0, NULL, {0},
     "client certificate's private key"},
    {"kdbnext.token_file", CT_PATH, OFF(kdbnext_token_file), 0, 0, NULL, {0},
     "file holding the bearer token for kdb-next"},
    {"kdbnext.tenant", CT_U64, OFF(kdbnext_tenant), 1000001, 0, NULL, {0},
     "tenant id on kdb-next (above 1000000)"},
    {"kdbnext.timeout_ms", CT_INT, OFF(kdbnext_timeout_ms), 1, 600000, "2000", {0},
     "deadline of one kdb-next call"},
    {"kdbnext.plaintext", CT_BOOL, OFF(kdbnext_plaintext), 0, 0, "off", {0},
     "talk to kdb-next without TLS (tests only)"},
};
/* clang-format on */

#define NKEYS ARRAY_SIZE(keys)
_Static_assert(NKEYS <= sizeof(((struct config *)0)->seen_) * 8, "seen_ too small");

static const struct config_key *key_find(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

bool config_key_known(const char *key)
{
    return key_find(key) != NULL;
}

void config_env_name(const char *key, char *out, size_t n)
{
    size_t o = 0;
    const char *p = CONFIG_ENV_PREFIX;
    for (; *p && o + 1 < n; p++)
        out[o++] = *p;
    for (p = key; *p && o + 1 < n; p++)
        out[o++] = (*p == '.' || *p == '-') ? '_' : (char)toupper((unsigned char)*p);
    if (n)
        out[o] = '\0';
}

const char *config_key_from_flag(const char *flag)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const char *a = keys[i].name, *b = flag;
        for (; *a && *b; a++, b++) {
            char cb = *b == '-' ? '_' : *b;
            if (*a != cb)
                break;
        }
        if (!*a && !*b)
            return keys[i].name;
    }
    return NULL;
}

static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static int parse_u64(const char *s, uint64_t *ret)
{
    char *end = NULL;
    if (!*s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *ret = v;
    return 0;
}

static int parse_size(const char *s, uint64_t *ret)
{
    char *end = NULL;
    if (!*s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    unsigned shift = 0;
    switch (toupper((unsigned char)*end)) {
    case '\0':
        break;
    case 'K':
        shift = 10;
        break;
    case 'M':
        shift = 20;
        break;
    case 'G':
        shift = 30;
        break;
    case 'T':
        shift = 40;
        break;
    default:
        return -1;
    }
    if (*end) {
        end++;
        if (strcasecmp(end, "ib") == 0 || strcasecmp(end, "b") == 0)
            end += strlen(end);
        if (*end)
            return -1;
    }
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *ret = (uint64_t)v << shift;
    return 0;
}

static int parse_bool(const char *s, bool *ret)
{
    static const char *yes[] = {"on", "true", "yes", "1"}, *no[] = {"off", "false", "no", "0"};
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *ret = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *ret = false;
            return 0;
        }
    }
    return -1;
}

int config_parse_cidr(const char *s, struct config_cidr *ret)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    struct config_cidr c = {0};

    if (alen == 0 || alen >= sizeof addr)
        return -1;
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    if (inet_pton(AF_INET, addr, c.addr) == 1) {
        c.family = AF_INET;
        c.prefix = 32;
    } else if (inet_pton(AF_INET6, addr, c.addr) == 1) {
        c.family = AF_INET6;
        c.prefix = 128;
    } else {
        return -1;
    }
    if (slash) {
        uint64_t p;
        if (parse_u64(slash + 1, &p) < 0 || p > (uint64_t)c.prefix || slash[1] == '\0')
            return -1;
        c.prefix = (int)p;
    }
    *ret = c;
    return 0;
}

static bool cidr_match(const struct config_cidr *net, int family, const unsigned char *a)
{
    /* An IPv4 peer on a v6 socket arrives as ::ffff:a.b.c.d; compare it as IPv4. */
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET6 && net->family == AF_INET && memcmp(a, v4mapped, 12) == 0) {
        family = AF_INET;
        a += 12;
    }
    if (family != net->family)
        return false;
    int full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(a, net->addr, (size_t)full) != 0)
        return false;
    if (rest) {
        unsigned char mask = (unsigned char)(0xff << (8 - rest));
        if ((a[full] & mask) != (net->addr[full] & mask))
            return false;
    }
    return true;
}

bool config_cidr_match_text(const struct config_cidr *net, const char *ip)
{
    unsigned char a[16];
    if (inet_pton(AF_INET, ip, a) == 1)
        return cidr_match(net, AF_INET, a);
    if (inet_pton(AF_INET6, ip, a) == 1)
        return cidr_match(net, AF_INET6, a);
    return false;
}

bool config_proxy_trusted(const struct config *c, const struct sockaddr *sa)
{
    const unsigned char *a;
    int family = sa->sa_family;
    if (family == AF_INET)
        a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    else if (family == AF_INET6)
        a = (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    else
        return false;
    for (size_t i = 0; i < c->nproxies; i++)
        if (cidr_match(&c->proxies[i], family, a))
            return true;
    return false;
}

static int parse_proxies(struct config *c, const char *s, const char *where, struct err *e)
{
    size_t n = 0;
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *end = p;
        while (*end && *end != ',' && *end != ' ' && *end != '\t')
            end++;
        char item[64];
        size_t len = (size_t)(end - p);
        if (len >= sizeof item || n >= CONFIG_PROXIES_MAX)
            return err_set(e, -E_CONFIG, "%s: trusted_proxies: too long an entry or over %d", where,
                           CONFIG_PROXIES_MAX);
        memcpy(item, p, len);
        item[len] = '\0';
        if (config_parse_cidr(item, &c->proxies[n]) < 0)
            return err_set(e, -E_CONFIG, "%s: trusted_proxies: '%s' is not an address or CIDR",
                           where, item);
        n++;
        p = end;
    }
    c->nproxies = n;
    return 0;
}

int config_issuer_host(const char *issuer, char *out, size_t n)
{
    const char *p = strstr(issuer, "://");
    if (!p)
        return -1;
    p += 3;
    const char *end;
    if (*p == '[') {
        end = strchr(p, ']');
        if (!end)
            return -1;
        p++;
    } else {
        end = p + strcspn(p, ":/");
    }
    size_t len = (size_t)(end - p);
    if (len == 0 || len >= n)
        return -1;
    memcpy(out, p, len);
    out[len] = '\0';
    return 0;
}

static int check_port(const char *s)
{
    uint64_t port;
    return parse_u64(s, &port) == 0 && port >= 1 && port <= 65535 ? 0 : -1;
}

/* `listen` may ask for port 0: the kernel picks a free one and serve logs it (tests). */
static int check_listen_port(const char *s)
{
    uint64_t port;
    return parse_u64(s, &port) == 0 && port <= 65535 ? 0 : -1;
}

static int check_issuer(const char *v)
{
    const char *host;
    if (strncmp(v, "https://", 8) == 0)
        host = v + 8;
    else if (strncmp(v, "http://", 7) == 0)
        host = v + 7;
    else
        return -1;
    if (!*host || strlen(v) > 200)
        return -1;
    if (*host == '[') {
        const char *end = strchr(host, ']');
        if (!end || end == host + 1)
            return -1;
        for (const char *p = host + 1; p < end; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                return -1;
        host = end + 1;
        if (*host == '\0')
            return 0;
        if (*host != ':')
            return -1;
        return check_port(host + 1);
    }
    const char *p = host;
    for (; *p && *p != ':'; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
            return -1;
    if (p == host)
        return -1;
    return *p == ':' ? check_port(p + 1) : 0;
}

static int check_listen(const char *v)
{
    const char *colon;
    if (*v == '[') {
        const char *end = strchr(v, ']');
        if (!end || end[1] != ':')
            return -1;
        char a[INET6_ADDRSTRLEN + 1];
        unsigned char buf[16];
        size_t len = (size_t)(end - v - 1);
        if (len == 0 || len >= sizeof a)
            return -1;
        memcpy(a, v + 1, len);
        a[len] = '\0';
        if (inet_pton(AF_INET6, a, buf) != 1)
            return -1;
        colon = end + 1;
    } else {
        colon = strrchr(v, ':');
        if (!colon || colon == v)
            return -1;
        for (const char *p = v; p < colon; p++)
            if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '*')
                return -1;
    }
    return check_listen_port(colon + 1);
}

static int apply(struct config *c, const struct config_key *k, const char *value, const char *where,
                 struct err *e)
{
    void *field = (char *)c + k->offset;

    switch (k->type) {
    case CT_STR:
    case CT_PATH:
    case CT_ISSUER:
    case CT_LISTEN:
    case CT_ENUM:
    case CT_PROXIES: {
        if (has_ctl(value))
            return err_set(e, -E_CONFIG, "%s: %s: control characters in the value", where, k->name);
        if (k->type == CT_ISSUER && check_issuer(value) < 0)
            return err_set(e, -E_CONFIG,
                           "%s: issuer: '%.80s' is not http(s)://host[:port] (no path, no "
                           "trailing slash)",
                           where, value);
        if (k->type == CT_LISTEN && check_listen(value) < 0)
            return err_set(e, -E_CONFIG, "%s: listen: '%.80s' is not address:port", where, value);
        if (k->type == CT_ENUM) {
            bool ok = false;
            for (size_t i = 0; i < ARRAY_SIZE(k->values) && k->values[i]; i++)
                ok = ok || strcmp(value, k->values[i]) == 0;
            if (!ok)
                return err_set(e, -E_CONFIG, "%s: %s: '%.80s' is not one of %s%s%s", where, k->name,
                               value, k->values[0], k->values[1] ? "|" : "",
                               k->values[1] ? k->values[1] : "");
        }
        if ((k->type == CT_PATH || k->type == CT_STR || k->type == CT_ISSUER ||
             k->type == CT_LISTEN) &&
            !*value)
            return err_set(e, -E_CONFIG, "%s: %s: empty value", where, k->name);
        if (k->type == CT_PROXIES) {
            int r = parse_proxies(c, value, where, e);
            if (r < 0)
                return r;
        }
        char *dup = strdup(value);
        if (!dup)
            return err_set(e, -E_NOMEM, "out of memory");
        free(*(char **)field);
        *(char **)field = dup;
        return 0;
    }
    case CT_INT:
    case CT_U64:
    case CT_SIZE: {
        uint64_t v;
        int r = k->type == CT_SIZE ? parse_size(value, &v) : parse_u64(value, &v);
        if (r < 0)
            return err_set(e, -E_CONFIG, "%s: %s: '%.40s' is not a %s", where, k->name, value,
                           k->type == CT_SIZE ? "size (e.g. 64K, 8G)" : "non-negative integer");
        if (k->name && strcmp(k->name, "kdbnext.tenant") == 0 && v <= 1000000)
            return err_set(e, -E_CONFIG,
                           "%s: kdbnext.tenant: %" PRIu64
                           " is refused: tenant ids up to 1,000,000 are kdb-next's preseeded "
                           "range",
                           where, v);
        if (v < (uint64_t)k->min || (k->max && v > (uint64_t)k->max)) {
            char max[24] = "";
            if (k->max)
                snprintf(max, sizeof max, "%" PRId64, k->max);
            return err_set(e, -E_CONFIG, "%s: %s: %" PRIu64 " is out of range %" PRId64 "..%s",
                           where, k->name, v, k->min, max);
        }
        if (k->type == CT_INT) {
            if (v > INT_MAX)
                return err_set(e, -E_CONFIG, "%s: %s: too large", where, k->name);
            *(int *)field = (int)v;
        } else {
            *(uint64_t *)field = v;
        }
        return 0;
    }
    case CT_BOOL: {
        bool b;
        if (parse_bool(value, &b) < 0)
            return err_set(e, -E_CONFIG, "%s: %s: '%.40s' is not on|off", where, k->name, value);
        *(bool *)field = b;
        return 0;
    }
    case CT_LOGLEVEL: {
        enum log_level lvl;
        if (log_level_parse(value, &lvl) < 0)
            return err_set(e, -E_CONFIG, "%s: log_level: '%.40s' is not error|warn|info|debug",
                           where, value);
        *(int *)field = (int)lvl;
        return 0;
    }
    }
    return err_set(e, -E_INTERNAL, "%s: %s: unhandled type", where, k->name);
}

int config_set(struct config *c, const char *key, const char *value, const char *where,
               struct err *e)
{
    const struct config_key *k = key_find(key);
    if (!k)
        return -E_NOTFOUND;
    return apply(c, k, value, where, e);
}

void config_init(struct config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NKEYS; i++) {
        if (!keys[i].def)
            continue;
        struct err e;
        int r = apply(c, &keys[i], keys[i].def, "default", &e);
        (void)r;
    }
}

void config_release(struct config *c)
{
    for (size_t i = 0; i < NKEYS; i++) {
        switch (keys[i].type) {
        case CT_STR:
        case CT_PATH:
        case CT_ISSUER:
        case CT_LISTEN:
        case CT_ENUM:
        case CT_PROXIES:
            free(*(char **)((char *)c + keys[i].offset));
            break;
        default:
            break;
        }
    }
    free(c->file);
    memset(c, 0, sizeof *c);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

int config_load_file(struct config *c, const char *path, struct err *e)
{
    _cleanup_(fclosep) FILE *f = fopen(path, "re");
    _cleanup_free_ char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0;

    if (!f)
        return err_set(e, -E_CONFIG, "%s: cannot open: %s", path, strerror(errno));
    memset(c->seen_, 0, sizeof c->seen_);
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len > 4095)
            return err_set(e, -E_CONFIG, "%s:%d: line too long", path, lineno);
        /* fgets/strlen would stop at a NUL and read the rest of the line as a new one. */
        if (memchr(line, '\0', (size_t)len))
            return err_set(e, -E_CONFIG, "%s:%d: NUL byte in line", path, lineno);
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq)
            return err_set(e, -E_CONFIG, "%s:%d: expected 'key = value'", path, lineno);
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        char where[300];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        const struct config_key *k = key_find(key);
        if (!k)
            return err_set(e, -E_CONFIG, "%s: unknown key '%.60s'", where, key);
        size_t idx = (size_t)(k - keys);
        if (c->seen_[idx / 8] & (1u << (idx % 8)))
            return err_set(e, -E_CONFIG, "%s: duplicate key '%s'", where, k->name);
        c->seen_[idx / 8] |= (unsigned char)(1u << (idx % 8));
        int r = apply(c, k, value, where, e);
        if (r < 0)
            return r;
    }
    if (ferror(f))
        return err_set(e, -E_CONFIG, "%s: read error", path);
    free(c->file);
    c->file = strdup(path);
    return 0;
}

int config_load_env(struct config *c, char *const *envp, struct err *e)
{
    size_t plen = strlen(CONFIG_ENV_PREFIX);
    for (char *const *p = envp; p && *p; p++) {
        if (strncmp(*p, CONFIG_ENV_PREFIX, plen) != 0)
            continue;
        const char *eq = strchr(*p, '=');
        if (!eq)
            continue;
        size_t nlen = (size_t)(eq - *p);
        const struct config_key *k = NULL;
        char name[128];
        for (size_t i = 0; i < NKEYS && !k; i++) {
            config_env_name(keys[i].name, name, sizeof name);
            if (strlen(name) == nlen && strncmp(name, *p, nlen) == 0)
                k = &keys[i];
        }
        if (!k)
            return err_set(e, -E_CONFIG, "environment: unknown variable '%.*s'",
                           (int)(nlen > 80 ? 80 : nlen), *p);
        config_env_name(k->name, name, sizeof name);
        int r = apply(c, k, eq + 1, name, e);
        if (r < 0)
            return r;
    }
    return 0;
}

int config_finish(struct config *c, struct err *e)
{
    if (strcmp(c->storage, "kdbnext") == 0) {
        if (!c->kdbnext_address)
            return err_set(e, -E_CONFIG, "kdbnext.address: required when storage = kdbnext");
        if (!c->kdbnext_tenant)
            return err_set(e, -E_CONFIG,
                           "kdbnext.tenant: required when storage = kdbnext (above 1000000)");
        if (!!c->kdbnext_tls_cert_file != !!c->kdbnext_tls_key_file)
            return err_set(e, -E_CONFIG,
                           "kdbnext.tls_cert_file and kdbnext.tls_key_file go together");
    }
    /* A relying party sees a new key at the latest reload_interval + jwks_max_age after
     * `keys rotate`; the same again is the margin before the key signs. */
    if ((int64_t)c->keys_publish_ahead <
        (int64_t)c->keys_reload_interval + 2 * (int64_t)c->keys_jwks_max_age)
        return err_set(e, -E_CONFIG,
                       "keys.publish_ahead: %d s is shorter than keys.reload_interval + 2 x "
                       "keys.jwks_max_age (%d s): relying parties could meet the new key "
                       "before their JWKS holds it",
                       c->keys_publish_ahead, c->keys_reload_interval + 2 * c->keys_jwks_max_age);
    return 0;
}

int config_load(struct config *c, const char *path, char *const *envp, char *const *flags,
                size_t nflags, struct err *e)
{
    struct stat st;
    int r;

    config_init(c);
    if (path) {
        r = config_load_file(c, path, e);
    } else if (stat(CONFIG_DEFAULT_FILE, &st) == 0) {
        r = config_load_file(c, CONFIG_DEFAULT_FILE, e);
    } else {
        r = 0;
    }
    if (r == 0)
        r = config_load_env(c, envp, e);
    for (size_t i = 0; r == 0 && i < nflags; i++) {
        const char *eq = strchr(flags[i], '=');
        char key[64], where[80];
        size_t klen = eq ? (size_t)(eq - flags[i]) : 0;
        if (!eq || klen == 0 || klen >= sizeof key)
            return err_set(e, -E_CONFIG, "--set '%.60s': expected KEY=VALUE", flags[i]);
        memcpy(key, flags[i], klen);
        key[klen] = '\0';
        const char *name = config_key_from_flag(key);
        if (!name)
            return err_set(e, -E_CONFIG, "--set %s: unknown key", key);
        /* apply() names the key after @where: "--set: workers: 9999 is out of range" */
        snprintf(where, sizeof where, "--set");
        r = config_set(c, name, eq + 1, where, e);
    }
    if (r == 0)
        r = config_finish(c, e);
    return r;
}

void config_dump(const struct config *c, FILE *f)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const struct config_key *k = &keys[i];
        const void *field = (const char *)c + k->offset;
        fprintf(f, "%s = ", k->name);
        switch (k->type) {
        case CT_INT:
            fprintf(f, "%d", *(const int *)field);
            break;
        case CT_U64:
        case CT_SIZE:
            fprintf(f, "%" PRIu64, *(const uint64_t *)field);
            break;
        case CT_BOOL:
            fputs(*(const bool *)field ? "on" : "off", f);
            break;
        case CT_LOGLEVEL: {
            int l = *(const int *)field;
            fputs(l == LOG_LVL_ERROR  ? "error"
                  : l == LOG_LVL_WARN ? "warn"
                  : l == LOG_LVL_INFO ? "info"
                                      : "debug",
                  f);
            break;
        }
        default: {
            const char *s = *(char *const *)field;
            fputs(s ? s : "", f);
        }
        }
        fputc('\n', f);
    }
}
