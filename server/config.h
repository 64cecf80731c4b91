/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configuration: one table of keys with their defaults, read from a `key = value` file
 * (`#` comments, dotted keys), then from the environment (`KODER_ID_V2_<KEY>`, upper case,
 * `.` and `-` as `_`), then from command-line flags. Later sources override earlier ones.
 * Unknown keys, duplicate keys in a file and bad values are errors naming the key and where it
 * came from (file:line, the variable, or the flag). Secrets are never values here: only the
 * paths of the files holding them.
 *
 * Adding a key: a field in struct config, a row in the table in config.c (name, type, bounds,
 * default, one line of help), and a line in README's configuration section.
 */
#ifndef SERVER_CONFIG_H
#define SERVER_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"

#define CONFIG_DEFAULT_FILE "/etc/koder-id-v2/gateway.conf"
#define CONFIG_ENV_PREFIX "KODER_ID_V2_"
#define CONFIG_PROXIES_MAX 64

/** One trusted proxy network (an address is a /32 or /128 network). */
struct config_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int prefix;
};

/** Every setting, parsed. Strings are owned (config_release() frees them). */
struct config {
    char *file; /* the file read, or NULL */

    char *issuer; /* scheme://host[:port], no path, no trailing slash */
    char *listen; /* host:port ([v6]:port) */
    char *data_dir;
    char *storage;          /* "lmdb" | "kdbnext" */
    uint64_t lmdb_map_size; /* bytes */
    char *master_key_file;
    int log_level;         /* enum log_level */
    char *log_file;        /* serve appends its log here instead of stderr; NULL = stderr */
    int workers;           /* event-loop threads; 0 = one per core */
    int pool_threads;      /* blocking request workers */
    char *trusted_proxies; /* as written; parsed into proxies[] */
    struct config_cidr proxies[CONFIG_PROXIES_MAX];
    size_t nproxies;
    bool http2;            /* offer HTTP/2 (h2c upgrade / prior knowledge); off by default */
    int http2_max_streams; /* concurrent streams per HTTP/2 connection */
    uint64_t max_body;     /* request body cap, bytes (413 above) */
    int purge_interval;    /* seconds between purges of expired store entries */
    int keys_rotate_every;    /* seconds a key signs before serve rotates it; 0 = never */
    int keys_publish_ahead;   /* seconds a new key is published before it signs */
    int keys_retire_margin;   /* seconds a retired key outlives its longest token */
    int keys_reload_interval; /* seconds between serve's re-reads of the keys */
    int keys_jwks_max_age;    /* Cache-Control max-age of JWKS and discovery */
    int password_yescrypt_cost;
    int password_hash_workers;
    int password_hash_queue_max;

    char *kdbnext_address;
    char *kdbnext_tls_ca_file;
    char *kdbnext_tls_cert_file;
    char *kdbnext_tls_key_file;
    char *kdbnext_token_file;
    uint64_t kdbnext_tenant;
    int kdbnext_timeout_ms;
    bool kdbnext_plaintext;

    /* private: which keys were set by the current file (duplicate detection) */
    unsigned char seen_[64];
};

/** Fills @c with the defaults. Release with config_release(). */
void config_init(struct config *c);

/** Frees what @c owns and zeroes it. */
void config_release(struct config *c);

/**
 * Sets @key (its dotted name, e.g. "lmdb.map_size") to @value, parsed and checked. @where
 * names the source for messages ("gateway.conf:12", "KODER_ID_V2_LISTEN", "--listen").
 * -E_NOTFOUND for an unknown key (with no message set), -E_CONFIG for a bad value.
 */
int config_set(struct config *c, const char *key, const char *value, const char *where,
               struct err *e);

/**
 * Reads the file at @path and applies its keys. A missing file, an unreadable line, an
 * unknown key, a key given twice or a bad value fail with -E_CONFIG and "PATH:LINE: ..." in @e.
 */
int config_load_file(struct config *c, const char *path, struct err *e);

/**
 * Applies every KODER_ID_V2_* variable of @envp (NULL-terminated "NAME=value" strings, e.g.
 * environ). An unknown KODER_ID_V2_ variable or a bad value is -E_CONFIG naming it.
 */
int config_load_env(struct config *c, char *const *envp, struct err *e);

/**
 * Checks what spans keys (kdbnext settings when storage is kdbnext, ...). Call once after
 * all sources were applied.
 */
int config_finish(struct config *c, struct err *e);

/**
 * The whole sequence: defaults, then @path (or CONFIG_DEFAULT_FILE when @path is NULL and it
 * exists), then @envp, then the @nflags "key=value" overrides of @flags, then config_finish().
 */
int config_load(struct config *c, const char *path, char *const *envp, char *const *flags,
                size_t nflags, struct err *e);

/**
 * The environment variable name of @key ("lmdb.map_size" -> "KODER_ID_V2_LMDB_MAP_SIZE")
 * into @out (size @n).
 */
void config_env_name(const char *key, char *out, size_t n);

/** True when @key is a configuration key (dotted name). */
bool config_key_known(const char *key);

/**
 * Maps a command-line flag name ("data-dir", "lmdb.map-size", "log_level") to its key; NULL
 * when it is not a configuration key. Returns a static string.
 */
const char *config_key_from_flag(const char *flag);

/** True when @addr (a struct sockaddr_in/in6) is inside one of the trusted proxy networks. */
bool config_proxy_trusted(const struct config *c, const struct sockaddr *addr);

/** Parses an IPv4/IPv6 address or CIDR into @ret; -1 when it is not one. */
int config_parse_cidr(const char *s, struct config_cidr *ret);

/** True when the textual address @ip is inside @net. */
bool config_cidr_match_text(const struct config_cidr *net, const char *ip);

/** The host part of the issuer ("id.koder.dev" from "https://id.koder.dev:8443"), into @out. */
int config_issuer_host(const char *issuer, char *out, size_t n);

/** Prints every key with its current value (one "key = value" line each) to @f. */
void config_dump(const struct config *c, FILE *f);

#endif
