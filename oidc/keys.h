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

/**
 * A key's place in its life at a given time. Own keys go PENDING (published, not signing yet)
 * -> SIGNING -> RETIRED (no longer signs, still published so the tokens it signed verify) ->
 * EXPIRED (past publish_until: out of the JWKS; `serve` deletes the record). v1's keys are
 * IMPORTED (published, never sign) until their publish_until, then EXPIRED.
 */
enum oidc_key_state {
    OIDC_KEY_PENDING,
    OIDC_KEY_SIGNING,
    OIDC_KEY_RETIRED,
    OIDC_KEY_IMPORTED,
    OIDC_KEY_EXPIRED,
};

/** "pending", "signing", "retired", "imported", "expired". */
const char *oidc_key_state_name(enum oidc_key_state s);

/** What `keys list` and `check` show about one stored key (no secrets). */
struct oidc_key_info {
    char kid[64];
    char alg[8];
    char source[16];
    int64_t created_at, sign_from, sign_until, publish_until;
    bool has_private; /* v2's own key (else an imported verify-only key) */
    bool signing;     /* the key that signs now */
    bool published;   /* in the JWKS now */
    enum oidc_key_state state;
    uint64_t version; /* the record's store version */
};

/**
 * Lists the stored keys (sigkey/<kid>) without decrypting anything, classified as of now;
 * *ret is an array of *ret_n (caller frees). Works on a read-only store.
 */
int oidc_keys_list(struct store *s, struct oidc_key_info **ret, size_t *ret_n, struct err *e);

/* ---- rotation ----
 * The pure parts take the time as @now (unix seconds) so the state machine is tested without
 * waiting; oidc_keys_rotate() and oidc_keys_remove_expired() apply them to the store. */

/**
 * Sets state, signing and published of each of @n keys as of @now. The signer is chosen as
 * oidc_keys_current() does: of the own keys inside their signing window, the latest sign_from
 * (then the latest created_at).
 */
void oidc_keys_classify(struct oidc_key_info *keys, size_t n, int64_t now);

/** How a rotation places the new key and retires the old ones (seconds). */
struct oidc_rotate_policy {
    int64_t publish_ahead; /* the new key is published this long before it signs (0: at once) */
    int64_t verify_for;    /* a retired key stays published this long after it stops signing */
    bool force;            /* rotate even when a key is already pending */
};

/**
 * How long a retired key must stay published: the longest lifetime of a token it can have
 * signed (access and ID tokens, seconds) plus @margin (relying parties' clock leeway and JWKS
 * caches).
 */
int64_t oidc_keys_verify_window(int64_t access_token_lifetime, int64_t id_token_lifetime,
                                int64_t margin);

/**
 * Plans a rotation at @now over @keys (classified here): the new key signs from
 * *ret_sign_from = now + publish_ahead; every own key that would still sign at or after that
 * moment gets sign_until = *ret_sign_from and publish_until = sign_until + verify_for
 * (changed in @keys, and changed[i] set; @changed has @n entries). -E_CONFLICT naming the
 * pending key when one is pending and !force.
 */
int oidc_keys_plan_rotation(struct oidc_key_info *keys, size_t n, int64_t now,
                            const struct oidc_rotate_policy *p, bool *changed,
                            int64_t *ret_sign_from, struct err *e);

/**
 * True when a scheduled rotation is due at @now: @every > 0, no key is pending, and the signer
 * has signed for @every seconds or more (or no key signs). Classifies @keys.
 */
bool oidc_keys_rotation_due(struct oidc_key_info *keys, size_t n, int64_t now, int64_t every);

/** What oidc_keys_rotate() did. kid is empty when a scheduled rotation was not due. */
struct oidc_rotate_result {
    char kid[64];      /* the new key */
    int64_t sign_from; /* when it starts signing */
    char old_kid[64];  /* the key that signed at @now ("" when none) */
    int64_t old_publish_until;
};

/**
 * Rotates the keys of @k's store at @now following @p (oidc_keys_plan_rotation), generating the
 * new key with @k's master key, then reloads @k. With @scheduled_every > 0 only rotates when
 * oidc_keys_rotation_due(); then "already pending" and "another process is rotating" are not
 * errors (nothing done, ret->kid empty). Several processes on one store never rotate at once:
 * each claims the rotation with a compare-and-swap on meta/key_rotation first (naming the
 * signer being replaced and the time), and a claim younger than 10 minutes on the same signer
 * refuses another (-E_CONFLICT, unless @p->force).
 */
int oidc_keys_rotate(struct oidc_keys *k, int64_t now, const struct oidc_rotate_policy *p,
                     int64_t scheduled_every, struct oidc_rotate_result *ret, struct err *e);

/**
 * Deletes the key records whose publish_until has passed at @now (they are out of the JWKS
 * and verify nothing any more; a retired private key kept around is only a liability). Safe
 * with several processes (each delete is conditional on the version read). *ret_removed may
 * be NULL.
 */
int oidc_keys_remove_expired(struct store *s, int64_t now, size_t *ret_removed, struct err *e);

/**
 * Reloads @k when a signing or publication window opened or closed since the last load (a
 * pending key's sign_from passed, a retired key's publish_until passed). Returns 1 when it
 * reloaded, 0 when nothing was due. For a background thread: it reads the store.
 */
int oidc_keys_refresh(struct oidc_keys *k, int64_t now, struct err *e);

#endif
