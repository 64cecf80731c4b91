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

/** The JWKS document (JSON) of every published key; caller frees. */
char *oidc_keys_jwks_json(struct oidc_keys *k, struct err *e);

/** Re-reads keys from the store (after rotation or import); any thread. */
int oidc_keys_reload(struct oidc_keys *k, struct err *e);

#endif
