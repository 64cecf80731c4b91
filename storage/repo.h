/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Records over the store: the key schema in one place, and get/put/cas of protobuf-c
 * messages (storage/proto/records.proto) by key.
 *
 * Key schema (all under the store's tenant):
 *   org/<id>                     Org
 *   project/<id>                 Project
 *   role/<project_id>/<key>      ProjectRole
 *   grant/<user_id>/<grant_id>   UserGrant (scan by user)
 *   client/<client_id>           Client (OIDC and API apps)
 *   projclient/<project>/<cid>   index: the clients of a project (value: client_id)
 *   user/<id>                    User
 *   login/<lower(login name)>    index: login name -> user id (value: the id)
 *   authnkey/<object_id>/<kid>   AuthnKey
 *   sigkey/<kid>                 SigningKey
 *   authreq/<id>                 AuthRequest (TTL)
 *   code/<sha256 hex>            AuthCode (TTL)
 *   rt/<sha256 hex>              RefreshToken (TTL)
 *   rtfam/<family id>            RefreshFamily (TTL)
 *   at/<sha256 hex>              AccessToken (TTL)
 *   sess/<sha256 hex>            Session (TTL)
 *   deny/<jti>                   JtiMark: revoked JWT access token (TTL)
 *   ajti/<client_id>/<jti>       JtiMark: used client assertion id (TTL)
 *   settings/oidc                OidcSettings
 *   pwpolicy/default             PasswordPolicy: the instance default
 *   pwpolicy/org/<org_id>        PasswordPolicy: an org's own
 *   meta/<name>                  raw bytes (schema version, import marks, ...)
 */
#ifndef STORAGE_REPO_H
#define STORAGE_REPO_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "storage/records.pb-c.h"
#include "storage/store.h"

#define REPO_KEY_MAX (STORE_KEY_MAX + 1)

/**
 * Formats a key into @out (REPO_KEY_MAX bytes). Returns its length, or -E_INVALID when it
 * would not fit (a hostile id must never truncate into another key).
 */
int repo_key(char out[REPO_KEY_MAX], const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** For _cleanup_(repo_msg_freep) on any record pointer repo_get() filled (or NULL). */
static inline void repo_msg_freep(void *p)
{
    ProtobufCMessage **m = p;
    if (*m)
        protobuf_c_message_free_unpacked(*m, NULL);
}

/**
 * Reads @key and unpacks it as @desc. *ret_msg is the caller's (free with
 * protobuf_c_message_free_unpacked(msg, NULL)); *ret_version may be NULL.
 * -E_NOTFOUND when absent; -E_INTERNAL when the bytes do not unpack.
 */
int repo_get(struct store *s, const char *key, const ProtobufCMessageDescriptor *desc,
             ProtobufCMessage **ret_msg, uint64_t *ret_version, struct err *e);

/**
 * False when @m (or a message nested in it) holds an unknown field numbered 0 or above
 * 2^29-1: protobuf-c 1.4 accepts such over-long tags but re-packs them as other tags, so they
 * are refused wherever bytes from outside are unpacked. repo_get() applies it.
 */
bool repo_pb_fields_valid(const ProtobufCMessage *m);

/** Packs @msg and writes it under @key (ttl_ms 0 = no expiry). */
int repo_put(struct store *s, const char *key, const ProtobufCMessage *msg, int64_t ttl_ms,
             uint64_t *ret_version, struct err *e);

/** Packs @msg and writes it only if @key's version is @expected_version (0 = absent). */
int repo_cas(struct store *s, const char *key, uint64_t expected_version,
             const ProtobufCMessage *msg, int64_t ttl_ms, uint64_t *ret_version, struct err *e);

/** Writes a raw string value (indexes: login/, projclient/). */
int repo_put_str(struct store *s, const char *key, const char *val, int64_t ttl_ms, struct err *e);

/** Reads a raw string value into a new string (caller frees). -E_NOTFOUND when absent. */
int repo_get_str(struct store *s, const char *key, char **ret, struct err *e);

/** Deletes @key; absent is not an error here. */
int repo_del(struct store *s, const char *key, struct err *e);

/* Typed convenience: the message is the caller's to free with the matching __free_unpacked. */
int repo_client_get(struct store *s, const char *client_id, Koderid__V2__Client **ret,
                    struct err *e);
int repo_user_get(struct store *s, const char *user_id, Koderid__V2__User **ret, struct err *e);
/** Finds a user by login name (case-insensitive). */
int repo_user_by_login(struct store *s, const char *login_name, Koderid__V2__User **ret,
                       struct err *e);
int repo_org_get(struct store *s, const char *org_id, Koderid__V2__Org **ret, struct err *e);
int repo_project_get(struct store *s, const char *project_id, Koderid__V2__Project **ret,
                     struct err *e);

/**
 * Writes @u and its login-name indexes (u->login_names and u->login_name; u->username only
 * when login_names is empty or @u is a machine user), removing
 * index entries of names the previous version had and @u no longer has.
 */
int repo_user_put(struct store *s, const Koderid__V2__User *u, struct err *e);

/**
 * Deletes user @user_id for good: its grants (grant/<id>/), its registered keys
 * (authnkey/<id>/), the login-name indexes that point at it, then the record, so its login
 * names can be taken again. -E_NOTFOUND when there is no such user.
 */
int repo_user_del(struct store *s, const char *user_id, struct err *e);

/** Writes @c and its project index entry. */
int repo_client_put(struct store *s, const Koderid__V2__Client *c, struct err *e);

/** Lower-cases ASCII of @in into @out (size @n). Login names compare this way. */
void repo_lower(const char *in, char *out, size_t n);

#endif
