/* SPDX-License-Identifier: Apache-2.0 */
/* Protobuf records over the key-value store; the key schema lives in repo.h. */
#include "repo.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"

int repo_key(char out[REPO_KEY_MAX], const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, REPO_KEY_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= REPO_KEY_MAX) {
        out[0] = '\0';
        return -E_INVALID;
    }
    return n;
}

/*
 * protobuf-c 1.4 accepts a field number of 0 or above 2^29-1 when the tag is written in more
 * bytes than needed, keeps it as an unknown field, and re-packs it as a different (or invalid)
 * tag: a record read this way and written back would no longer unpack. Such bytes are not
 * valid protobuf, so they are refused on read, in nested messages too.
 */
bool repo_pb_fields_valid(const ProtobufCMessage *m)
{
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0 || m->unknown_fields[i].tag > 0x1fffffff)
            return false;
    for (unsigned f = 0; f < m->descriptor->n_fields; f++) {
        const ProtobufCFieldDescriptor *fd = &m->descriptor->fields[f];
        const char *field = (const char *)m + fd->offset;
        const char *quantifier = (const char *)m + fd->quantifier_offset;
        if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *(const uint32_t *)quantifier != fd->id)
            continue;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            ProtobufCMessage *const *subs = *(ProtobufCMessage *const *const *)field;
            for (size_t k = 0; k < *(const size_t *)quantifier; k++)
                if (!repo_pb_fields_valid(subs[k]))
                    return false;
        } else {
            const ProtobufCMessage *sub = *(ProtobufCMessage *const *)field;
            if (sub && !repo_pb_fields_valid(sub))
                return false;
        }
    }
    return true;
}

int repo_get(struct store *s, const char *key, const ProtobufCMessageDescriptor *desc,
             ProtobufCMessage **ret_msg, uint64_t *ret_version, struct err *e)
{
    struct store_value v = {0};
    int r = store_get(s, key, strlen(key), &v, e);
    if (r < 0)
        return r;
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, v.len, v.data);
    uint64_t version = v.version;
    store_value_release(&v);
    if (m && !repo_pb_fields_valid(m)) {
        protobuf_c_message_free_unpacked(m, NULL);
        m = NULL;
    }
    if (!m)
        return err_set(e, -E_INTERNAL, "record '%.60s' does not unpack as %s", key, desc->name);
    *ret_msg = m;
    if (ret_version)
        *ret_version = version;
    return 0;
}

static int pack(const ProtobufCMessage *msg, unsigned char **ret, size_t *ret_len, struct err *e)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf)
        return err_set(e, -E_NOMEM, "out of memory");
    protobuf_c_message_pack(msg, buf);
    *ret = buf;
    *ret_len = len;
    return 0;
}

int repo_put(struct store *s, const char *key, const ProtobufCMessage *msg, int64_t ttl_ms,
             uint64_t *ret_version, struct err *e)
{
    _cleanup_free_ unsigned char *buf = NULL;
    size_t len = 0;
    int r = pack(msg, &buf, &len, e);
    if (r < 0)
        return r;
    return store_put(s, key, strlen(key), buf, len, ttl_ms, ret_version, e);
}

int repo_cas(struct store *s, const char *key, uint64_t expected_version,
             const ProtobufCMessage *msg, int64_t ttl_ms, uint64_t *ret_version, struct err *e)
{
    _cleanup_free_ unsigned char *buf = NULL;
    size_t len = 0;
    int r = pack(msg, &buf, &len, e);
    if (r < 0)
        return r;
    return store_cas(s, key, strlen(key), expected_version, buf, len, ttl_ms, ret_version, e);
}

int repo_put_str(struct store *s, const char *key, const char *val, int64_t ttl_ms, struct err *e)
{
    return store_put(s, key, strlen(key), val, strlen(val), ttl_ms, NULL, e);
}

int repo_get_str(struct store *s, const char *key, char **ret, struct err *e)
{
    struct store_value v = {0};
    int r = store_get(s, key, strlen(key), &v, e);
    if (r < 0)
        return r;
    char *str = strndup((const char *)v.data, v.len);
    store_value_release(&v);
    if (!str)
        return err_set(e, -E_NOMEM, "out of memory");
    *ret = str;
    return 0;
}

int repo_del(struct store *s, const char *key, struct err *e)
{
    int r = store_del(s, key, strlen(key), 0, e);
    if (r == -E_NOTFOUND) {
        err_clear(e);
        return 0;
    }
    return r;
}

void repo_lower(const char *in, char *out, size_t n)
{
    size_t i = 0;
    for (; in[i] && i + 1 < n; i++)
        out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] + 32) : in[i];
    out[i] = '\0';
}

#define TYPED_GET(fn, type, desc, fmt)                                                             \
    int fn(struct store *s, const char *id, type **ret, struct err *e)                             \
    {                                                                                              \
        char key[REPO_KEY_MAX];                                                                    \
        if (repo_key(key, fmt, id) < 0)                                                            \
            return err_set(e, -E_NOTFOUND, "id too long");                                         \
        return repo_get(s, key, &desc, (ProtobufCMessage **)ret, NULL, e);                         \
    }

TYPED_GET(repo_client_get, Koderid__V2__Client, koderid__v2__client__descriptor, "client/%s")
TYPED_GET(repo_user_get, Koderid__V2__User, koderid__v2__user__descriptor, "user/%s")
TYPED_GET(repo_org_get, Koderid__V2__Org, koderid__v2__org__descriptor, "org/%s")
TYPED_GET(repo_project_get, Koderid__V2__Project, koderid__v2__project__descriptor, "project/%s")

int repo_user_by_login(struct store *s, const char *login_name, Koderid__V2__User **ret,
                       struct err *e)
{
    char lower[REPO_KEY_MAX], key[REPO_KEY_MAX];
    _cleanup_free_ char *id = NULL;

    repo_lower(login_name, lower, sizeof lower);
    if (repo_key(key, "login/%s", lower) < 0)
        return err_set(e, -E_NOTFOUND, "login name too long");
    int r = repo_get_str(s, key, &id, e);
    if (r < 0)
        return r;
    return repo_user_get(s, id, ret, e);
}

/*
 * The i-th name @u signs in with, or NULL past the last. login_names is what v1's login_names3
 * computed (username@domain where the org's domain policy requires it); the bare username
 * counts only for a user without that list, so an org that requires the domain never lets a
 * person in by the bare name, as in v1. Machine users keep it: their client_id at the token
 * endpoint is the username v1's console shows, or the login name (ZITADEL.md 1.3).
 */
static const char *user_name_at(const Koderid__V2__User *u, size_t i)
{
    if (i < u->n_login_names)
        return u->login_names[i];
    i -= u->n_login_names;
    if (i == 0)
        return u->login_name ? u->login_name : "";
    if (i == 1)
        return (u->n_login_names == 0 || u->type == 2) && u->username ? u->username : "";
    return NULL;
}

static int has_name(const Koderid__V2__User *u, const char *lower)
{
    char l[REPO_KEY_MAX];
    const char *name;
    for (size_t i = 0; (name = user_name_at(u, i)); i++) {
        if (!*name)
            continue;
        repo_lower(name, l, sizeof l);
        if (strcmp(l, lower) == 0)
            return 1;
    }
    return 0;
}

/* Drops the index entries of @old's names that @keep (NULL: none) does not have, where they
 * still point at @old. */
static int unindex_names(struct store *s, const Koderid__V2__User *keep,
                         const Koderid__V2__User *old, struct err *e)
{
    char key[REPO_KEY_MAX], l[REPO_KEY_MAX];
    const char *name;
    for (size_t i = 0; (name = user_name_at(old, i)); i++) {
        if (!*name)
            continue;
        repo_lower(name, l, sizeof l);
        if ((keep && has_name(keep, l)) || repo_key(key, "login/%s", l) < 0)
            continue;
        _cleanup_free_ char *owner = NULL;
        if (repo_get_str(s, key, &owner, NULL) == 0 && strcmp(owner, old->id) == 0) {
            int r = repo_del(s, key, e);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

static int index_names(struct store *s, const Koderid__V2__User *u, const Koderid__V2__User *old,
                       struct err *e)
{
    char key[REPO_KEY_MAX], l[REPO_KEY_MAX];
    const char *name;
    for (size_t i = 0; (name = user_name_at(u, i)); i++) {
        if (!*name)
            continue;
        repo_lower(name, l, sizeof l);
        if (repo_key(key, "login/%s", l) < 0)
            return err_set(e, -E_INVALID, "login name too long");
        int r = repo_put_str(s, key, u->id, 0, e);
        if (r < 0)
            return r;
    }
    return old ? unindex_names(s, u, old, e) : 0;
}

int repo_user_put(struct store *s, const Koderid__V2__User *u, struct err *e)
{
    char key[REPO_KEY_MAX];
    Koderid__V2__User *old = NULL;
    int r;

    if (repo_key(key, "user/%s", u->id) < 0)
        return err_set(e, -E_INVALID, "user id too long");
    if (repo_user_get(s, u->id, &old, NULL) < 0)
        old = NULL;
    r = repo_put(s, key, &u->base, 0, NULL, e);
    if (r == 0)
        r = index_names(s, u, old, e);
    if (old)
        koderid__v2__user__free_unpacked(old, NULL);
    return r;
}

/* Deletes every entry under @prefix, a page at a time (each page's keys are gone before the
 * next scan, so it always starts from the beginning). */
static int del_prefix(struct store *s, const char *prefix, struct err *e)
{
    for (;;) {
        struct store_list l = {0};
        int r = store_scan(s, prefix, strlen(prefix), NULL, 0, 500, &l, e);
        for (size_t i = 0; r == 0 && i < l.n; i++) {
            r = store_del(s, l.items[i].key, l.items[i].klen, 0, e);
            if (r == -E_NOTFOUND) { /* expired or deleted meanwhile */
                err_clear(e);
                r = 0;
            }
        }
        bool more = l.n > 0;
        store_list_release(&l);
        if (r < 0 || !more)
            return r;
    }
}

int repo_user_del(struct store *s, const char *user_id, struct err *e)
{
    char key[REPO_KEY_MAX];
    Koderid__V2__User *u = NULL;
    int r = repo_user_get(s, user_id, &u, e);
    if (r < 0)
        return r;
    /* Dependants first, the record last: an interrupted removal can be run again by id. */
    if (repo_key(key, "grant/%s/", u->id) < 0 || strchr(u->id, '/'))
        r = err_set(e, -E_INVALID, "user id too long or with '/'");
    if (r == 0)
        r = del_prefix(s, key, e);
    if (r == 0 && repo_key(key, "authnkey/%s/", u->id) >= 0)
        r = del_prefix(s, key, e);
    if (r == 0)
        r = unindex_names(s, NULL, u, e);
    if (r == 0 && repo_key(key, "user/%s", u->id) >= 0)
        r = repo_del(s, key, e);
    koderid__v2__user__free_unpacked(u, NULL);
    return r;
}

int repo_client_put(struct store *s, const Koderid__V2__Client *c, struct err *e)
{
    char key[REPO_KEY_MAX];
    int r;

    if (repo_key(key, "client/%s", c->client_id) < 0)
        return err_set(e, -E_INVALID, "client id too long");
    r = repo_put(s, key, &c->base, 0, NULL, e);
    if (r < 0)
        return r;
    if (c->project_id && *c->project_id) {
        if (repo_key(key, "projclient/%s/%s", c->project_id, c->client_id) < 0)
            return err_set(e, -E_INVALID, "client id too long");
        r = repo_put_str(s, key, c->client_id, 0, e);
    }
    return r;
}
