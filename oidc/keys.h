/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signing keys: v2's own RSA-2048 keys (RS256), private parts encrypted with AES-256-GCM under
 * the master key, and v1's imported public keys (verify only). Publishes the JWKS.
 */
#ifndef OIDC_KEYS_H
#define OIDC_KEYS_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "storage/store.h"

struct oidc_keys;

/**
 * Loads the keys from @store; creates the first key when none can sign. @master_key_file
 * holds 32 random bytes; with @create_master it is created (0600) when missing.
 */
int oidc_keys_open(struct store *store, const char *master_key_file, bool create_master,
                   struct oidc_keys **ret, struct err *e);

void oidc_keys_free(struct oidc_keys *k);

/**
 * The key to sign with now. *ret_key gets a new reference (caller EVP_PKEY_free()s it); @kid
 * and @alg are filled (NUL-terminated). Any thread.
 */
int oidc_keys_current(struct oidc_keys *k, EVP_PKEY **ret_key, char kid[64], char alg[8],
                      struct err *e);

/**
 * A published public key by @kid (v2's or an imported v1 key), for verifying our own tokens
 * (id_token_hint, JWT access tokens). *ret_key is a new reference; @alg the key's algorithm.
 * -E_NOTFOUND for an unknown kid.
 */
int oidc_keys_public(struct oidc_keys *k, const char *kid, EVP_PKEY **ret_key, char alg[8],
                     struct err *e);

/**
 * The JWKS document (JSON) of every published key as of the last load; caller frees. Never
 * touches the store (safe on an event loop); call oidc_keys_reload() periodically so keys
 * whose publication window closed drop out.
 */
char *oidc_keys_jwks_json(struct oidc_keys *k, struct err *e);

/** Re-reads keys from the store (after rotation or import); any thread. */
int oidc_keys_reload(struct oidc_keys *k, struct err *e);

/**
 * A counter that changes whenever the loaded key set (and so the JWKS) changes. Lets the
 * server rebuild its prebuilt JWKS answer cheaply. Any thread.
 */
uint64_t oidc_keys_generation(struct oidc_keys *k);

/* Lower-level pieces: the `keys` and `check` commands, key rotation and the unit tests. */

#define OIDC_MASTER_KEY_LEN 32

/**
 * Reads the master key at @path into @out. The file must be a regular file of exactly 32
 * bytes that others cannot read (-E_CONFIG otherwise, naming the problem). When it is missing
 * and @create is set, creates it (0600, 32 random bytes); a folder that is not writable is
 * -E_IO. -E_NOTFOUND when missing and not @create.
 */
int oidc_keys_master_load(const char *path, bool create, unsigned char out[OIDC_MASTER_KEY_LEN],
                          struct err *e);

/**
 * Encrypts @len bytes with AES-256-GCM under @master, bound to @kid (associated data): a new
 * buffer nonce(12) || ciphertext || tag(16) in *ret (caller frees). 0 or -E_INTERNAL.
 */
int oidc_keys_seal(const unsigned char master[OIDC_MASTER_KEY_LEN], const char *kid,
                   const void *plain, size_t len, unsigned char **ret, size_t *ret_len,
                   struct err *e);

/**
 * Reverses oidc_keys_seal(). A wrong master key, a different @kid or any changed byte is
 * -E_PERMISSION ("does not decrypt"). *ret is NUL-terminated; the caller wipes and frees it.
 */
int oidc_keys_open_sealed(const unsigned char master[OIDC_MASTER_KEY_LEN], const char *kid,
                          const unsigned char *sealed, size_t len, unsigned char **ret,
                          size_t *ret_len, struct err *e);

/**
 * Generates a new RSA-2048 RS256 key, stores it under sigkey/<kid> (private part sealed under
 * @master) signing from @sign_from (unix seconds; later = published first, signs later).
 * Writes the new kid into @ret_kid.
 */
int oidc_keys_generate(struct store *s, const unsigned char master[OIDC_MASTER_KEY_LEN],
                       int64_t sign_from, char ret_kid[64], struct err *e);

/** One published key for oidc_jwks_build(). */
struct oidc_jwk_in {
    EVP_PKEY *key; /* public (or private) key; only the public part is written */
    const char *kid;
    const char *alg; /* "RS256" needs an RSA key, "ES256" an EC P-256 key */
};

/**
 * The JWKS JSON {"keys":[...]} of @n keys: kid, kty, use "sig", alg, and n/e (RSA) or
 * crv/x/y (EC) as unpadded base64url. Keys whose type does not match their alg are skipped.
 * Returns a new string (caller frees) or NULL with @e.
 */
char *oidc_jwks_build(const struct oidc_jwk_in *keys, size_t n, struct err *e);

/**
 * Decrypts every stored v2 key with @master and checks it matches its public key (what
 * `check` runs). Sets *ret_checked to the number of keys checked. -E_PERMISSION naming the
 * first key the master key does not open.
 */
int oidc_keys_verify_master(struct store *s, const unsigned char master[OIDC_MASTER_KEY_LEN],
                            size_t *ret_checked, struct err *e);

/** What `keys list` and `check` show about one stored key (no secrets). */
struct oidc_key_info {
    char kid[64];
    char alg[8];
    char source[16];
    int64_t created_at, sign_from, sign_until, publish_until;
    bool has_private; /* v2's own key (else an imported verify-only key) */
    bool signing;     /* the key that signs now */
    bool published;   /* in the JWKS now */
};

/**
 * Lists the stored keys (sigkey/<kid>) without decrypting anything; *ret is an array of *ret_n
 * (caller frees). Works on a read-only store.
 */
int oidc_keys_list(struct store *s, struct oidc_key_info **ret, size_t *ret_n, struct err *e);

#endif
