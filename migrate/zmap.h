/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mapping helpers for the Zitadel importer that need no database: PostgreSQL array literals,
 * password/secret hash formats, v1's enums, client_id forms, login names as v1's
 * login_names3 view computes them, and public key conversions (JWK, DER -> PEM).
 * All functions are pure and thread-safe.
 */
#ifndef MIGRATE_ZMAP_H
#define MIGRATE_ZMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/** A list of strings; an element may be NULL (an SQL NULL inside an array). */
struct zmap_strv {
    char **v;
    size_t n;
};

/** Frees every element and the list; zeroes @l. */
void zmap_strv_release(struct zmap_strv *l);

/**
 * Parses PostgreSQL's text output of a one-dimensional array (`{a,"b c",NULL,"x\"y"}`,
 * optionally with a `[lo:hi]=` bounds prefix) into *ret. Quoted elements are unescaped;
 * an unquoted NULL (any case) becomes a NULL element, a quoted "NULL" the string. NULL or ""
 * @lit (an SQL NULL column) gives an empty list. -E_INVALID for anything else (nested arrays,
 * unbalanced quotes, trailing text). *ret is set only on success.
 */
int zmap_parse_text_array(const char *lit, struct zmap_strv *ret, struct err *e);

/**
 * Parses a smallint[]/int[] literal into a new array (caller frees *ret_v; NULL when empty).
 * NULL elements and non-integers are -E_INVALID.
 */
int zmap_parse_int_array(const char *lit, int32_t **ret_v, size_t *ret_n, struct err *e);

/** Hash formats found in v1's columns and events. */
enum zmap_hash_fmt {
    ZMAP_HASH_NONE = 0,      /* empty: no secret / no password */
    ZMAP_HASH_BCRYPT,        /* $2a$ $2b$ $2y$ (Go's bcrypt writes $2a$) */
    ZMAP_HASH_YESCRYPT,      /* $y$ */
    ZMAP_HASH_GOST_YESCRYPT, /* $gy$ */
    ZMAP_HASH_SCRYPT7,       /* $7$ (libxcrypt's scrypt) */
    ZMAP_HASH_SHA512CRYPT,   /* $6$ */
    ZMAP_HASH_SHA256CRYPT,   /* $5$ */
    ZMAP_HASH_MD5CRYPT,      /* $1$ */
    /* recognized, but libxcrypt cannot verify them: */
    ZMAP_HASH_ARGON2,     /* $argon2i$ $argon2id$ $argon2d$ (PHC) */
    ZMAP_HASH_SCRYPT_PHC, /* $scrypt$ (passwap) */
    ZMAP_HASH_PBKDF2,     /* $pbkdf2$ $pbkdf2-sha256$ $pbkdf2-sha512$ (passlib style) */
    ZMAP_HASH_PHPASS,     /* $P$ $H$ */
    ZMAP_HASH_MD5PLAIN,   /* 32 hex digits (passwap md5plain) */
    ZMAP_HASH_UNKNOWN,    /* anything else, including malformed hashes of a known family */
};

/** Classifies @hash (NULL/"" is ZMAP_HASH_NONE). A malformed crypt string is UNKNOWN. */
enum zmap_hash_fmt zmap_hash_format(const char *hash);

/** True when v2 (libxcrypt crypt_rn) can verify a hash of @fmt; NONE counts as usable. */
bool zmap_hash_verifiable(enum zmap_hash_fmt fmt);

/** A short name for @fmt ("bcrypt", "argon2", ...); static. */
const char *zmap_hash_name(enum zmap_hash_fmt fmt);

/**
 * Decides what v2 stores for a hash read from v1: *ret_fmt is the format; returns 0 when
 * @hash is usable as is (or empty), or -E_INVALID with a reason in @e (never the hash) when
 * v2 cannot verify it.
 */
int zmap_hash_check(const char *hash, enum zmap_hash_fmt *ret_fmt, struct err *e);

/**
 * Extracts the hash from a legacy CryptoValue JSON object (`{"CryptoType":1,"Algorithm":
 * "bcrypt","KeyID":"","Crypted":"<std base64>"}`, Go field names): *ret is a new string.
 * -E_INVALID when it is not a hash (CryptoType 0 is encrypted under v1's master key) or does
 * not decode.
 */
int zmap_cryptovalue_hash(const char *json, char **ret, struct err *e);

/** Kinds of v1 enum (ZITADEL.md 1.11). */
enum zmap_enum {
    ZMAP_APP_TYPE,        /* 0 web, 1 user_agent, 2 native */
    ZMAP_AUTH_METHOD,     /* 0 basic, 1 post, 2 none, 3 private_key_jwt */
    ZMAP_API_AUTH_METHOD, /* 0 basic, 1 private_key_jwt */
    ZMAP_TOKEN_TYPE,      /* 0 bearer, 1 jwt */
    ZMAP_RESPONSE_TYPE,   /* 0 code, 1 id_token, 2 id_token token */
    ZMAP_GRANT_TYPE,      /* 0 authorization_code, 1 implicit, 2 refresh_token, 3 device_code, 4
                             token_exchange */
    ZMAP_APP_STATE,       /* 1 active, 2 inactive */
    ZMAP_USER_STATE,      /* 1 active, 2 inactive, 3 deleted, 4 locked, 5 suspend, 6 initial */
    ZMAP_USER_TYPE,       /* 1 human, 2 machine */
    ZMAP_ORG_STATE,       /* 1 active, 2 inactive */
    ZMAP_PROJECT_STATE,   /* 1 active, 2 inactive */
    ZMAP_GENDER,          /* 0 unspecified, 1 female, 2 male, 3 diverse */
    ZMAP_WEB_KEY_STATE,   /* 1 initial, 2 active, 3 inactive, 4 removed */
};

/** The name of value @v of @kind, or NULL when v1 does not define it (or v2 does not take it). */
const char *zmap_enum_name(enum zmap_enum kind, long long v);

/**
 * v1's API app auth method to v2's Client.auth_method: 0 basic -> 0, 1 private_key_jwt -> 3.
 * -1 for an unknown value.
 */
int zmap_api_auth_method(long long v1);

/** Client id forms. */
enum zmap_cid_form {
    ZMAP_CID_NUMERIC,    /* "250000000091973509" */
    ZMAP_CID_AT_PROJECT, /* "250000000080498240@koder_bull" */
    ZMAP_CID_OTHER,      /* any other printable string (imported byte for byte) */
    ZMAP_CID_INVALID,    /* empty, too long for a store key, or with control bytes */
};

enum zmap_cid_form zmap_client_id_form(const char *cid);

/** Go time.Duration nanoseconds to milliseconds / seconds (truncating; negative -> 0). */
int64_t zmap_ns_to_ms(long long ns);
int64_t zmap_ns_to_s(long long ns);

/** A verified domain of an org, as login_names3_domains holds it. */
struct zmap_domain {
    const char *name;
    bool is_primary;
};

/**
 * The login names v1's login_names3 view gives a user: `username@domain` for each of the
 * org's domains when @must_be_domain (the primary domain's name first, then the others in
 * the given order), otherwise the username alone (it may itself contain '@'). With
 * @must_be_domain and no domain, v1's concat() yields "username@", which nobody can type
 * usefully: the username alone is returned instead. Elements are new strings.
 */
int zmap_login_names(const char *username, bool must_be_domain, const struct zmap_domain *doms,
                     size_t ndoms, struct zmap_strv *ret, struct err *e);

/**
 * Decodes PostgreSQL's hex bytea output ("\\x0a1b...") into a new buffer (NUL-terminated for
 * convenience; caller frees). -E_INVALID on malformed input.
 */
int zmap_bytea_decode(const char *text, unsigned char **ret, size_t *ret_len, struct err *e);

/**
 * Normalizes a public key stored by v1 (PEM SubjectPublicKeyInfo, PKCS#1 RSA PEM, or DER) to
 * SubjectPublicKeyInfo PEM: *ret_pem is a new NUL-terminated string (length in *ret_len).
 * A PEM input that parses is returned byte for byte. -E_INVALID when it is not a public key.
 */
int zmap_pubkey_pem(const unsigned char *data, size_t len, char **ret_pem, size_t *ret_len,
                    struct err *e);

/**
 * Converts a public JWK (RSA n/e, or EC P-256/P-384/P-521 x/y) to SubjectPublicKeyInfo PEM.
 * *ret_alg gets the JWK's "alg" (or the one the key implies, RS256 / ES256 / ES384 / ES512) and
 * *ret_kid its "kid" ("" when absent); all three are new strings. -E_INVALID for other key
 * types (OKP/Ed25519 is not usable with v2's libraries) or malformed input.
 */
int zmap_jwk_to_pem(const char *jwk_json, char **ret_pem, char **ret_alg, char **ret_kid,
                    struct err *e);

#endif
