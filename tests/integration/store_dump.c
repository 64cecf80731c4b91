/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A test helper for the importer's integration tests: reads (and for set-password writes) the
 * store a gateway configuration names, opened the way the gateway's commands open it
 * (server/cli.h cli_open: the config file, then KODER_ID_V2_* variables, then --set flags), so
 * the same calls read LMDB or kdb-next. Every form takes --config FILE [--set KEY=VALUE ...]:
 *
 *   store_dump                     one JSON line per key: key, version, record (decoded by key
 *                                  prefix) or raw value
 *   store_dump raw                 one JSON line per key: key, version, expires_at_ms and the
 *                                  value's bytes in base64 (two stores print the same lines
 *                                  when they hold the same bytes at the same versions)
 *   store_dump check-password ID   reads a password line on stdin; exit 0 when user ID's
 *                                  password_hash verifies it (crypt_rn)
 *   store_dump check-secret CID    same for client CID's secret_hash
 *   store_dump check-machine ID    same for machine user ID's secret_hash
 *   store_dump set-password ID     reads a password on stdin and stores a new yescrypt
 *                                  password_hash for user ID, the way v2 upgrades a hash at
 *                                  sign-in (v1_password_hash kept)
 *
 * Exit 0 / 1 (mismatch) / 2 (usage or store error).
 */
#include <crypt.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "server/cli.h"
#include "storage/repo.h"

static const struct {
    const char *prefix;
    const ProtobufCMessageDescriptor *desc;
} kinds[] = {
    {"org/", &koderid__v2__org__descriptor},
    {"project/", &koderid__v2__project__descriptor},
    {"role/", &koderid__v2__project_role__descriptor},
    {"grant/", &koderid__v2__user_grant__descriptor},
    {"client/", &koderid__v2__client__descriptor},
    {"user/", &koderid__v2__user__descriptor},
    {"authnkey/", &koderid__v2__authn_key__descriptor},
    {"sigkey/", &koderid__v2__signing_key__descriptor},
    {"settings/oidc", &koderid__v2__oidc_settings__descriptor},
    {"pwpolicy/", &koderid__v2__password_policy__descriptor},
};

static json_t *scalar(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return json_integer((json_int_t) * (const int64_t *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_STRING:
        return json_string(*(char *const *)p ? *(char *const *)p : "");
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        if (b->len == 0)
            return json_string("");
        json_t *s = json_stringn((const char *)b->data, b->len); /* NULL unless UTF-8 */
        if (s)
            return s;
        char *enc = b64_encode_alloc(b->data, b->len);
        s = json_pack("{ss}", "base64", enc ? enc : "");
        free(enc);
        return s;
    }
    default:
        return json_null();
    }
}

static size_t type_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
}

static json_t *to_json(const ProtobufCMessage *m)
{
    json_t *o = json_object();
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            const char *arr = *(const char *const *)base;
            json_t *a = json_array();
            for (size_t k = 0; k < n; k++)
                json_array_append_new(a, scalar(f, arr + k * type_size(f)));
            json_object_set_new(o, f->name, a);
        } else {
            json_object_set_new(o, f->name, scalar(f, base));
        }
    }
    return o;
}

static int verify(const char *hash, const char *label)
{
    char line[1024];
    if (!fgets(line, sizeof line, stdin))
        return 2;
    line[strcspn(line, "\n")] = '\0';
    if (!hash || !*hash) {
        fprintf(stderr, "%s: no hash stored\n", label);
        return 1;
    }
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    const char *out = crypt_rn(line, hash, &cd, sizeof cd);
    OPENSSL_cleanse(line, sizeof line);
    if (!out || out[0] == '*' || strlen(out) != strlen(hash) ||
        CRYPTO_memcmp(out, hash, strlen(hash)) != 0)
        return 1;
    return 0;
}

/* The record of @it decoded by its key prefix; NULL when it is not one. */
static json_t *decoded(const struct store_entry *it)
{
    const ProtobufCMessageDescriptor *d = NULL;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        if (strncmp(it->key, kinds[k].prefix, strlen(kinds[k].prefix)) == 0)
            d = kinds[k].desc;
    ProtobufCMessage *m =
        d ? protobuf_c_message_unpack(d, NULL, it->value.len, it->value.data) : NULL;
    if (m) {
        json_t *j = to_json(m);
        protobuf_c_message_free_unpacked(m, NULL);
        return j;
    }
    return NULL;
}

/* Runs what argv asks on @s (argv[1] COMMAND, argv[2] ID, or nothing); the exit status. */
static int dump(struct store *s, int argc, char **argv)
{
    struct err e = {0};
    int rc = 0;
    if (argc == 3) {
        if (strcmp(argv[1], "check-secret") == 0) {
            Koderid__V2__Client *c = NULL;
            if (repo_client_get(s, argv[2], &c, &e) < 0) {
                fprintf(stderr, "client: %s\n", e.msg);
                rc = 2;
            } else {
                rc = verify(c->secret_hash, argv[2]);
                koderid__v2__client__free_unpacked(c, NULL);
            }
        } else if (strcmp(argv[1], "set-password") == 0) {
            Koderid__V2__User *u = NULL;
            char line[256], setting[CRYPT_GENSALT_OUTPUT_SIZE];
            struct crypt_data cd;
            memset(&cd, 0, sizeof cd);
            if (repo_user_get(s, argv[2], &u, &e) < 0 || !fgets(line, sizeof line, stdin) ||
                !crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof setting)) {
                fprintf(stderr, "set-password: %s\n", e.msg);
                rc = 2;
            } else {
                line[strcspn(line, "\n")] = '\0';
                char *h = crypt_rn(line, setting, &cd, sizeof cd);
                char *old = u->password_hash;
                u->password_hash = h;
                rc = repo_user_put(s, u, &e) < 0 ? 2 : 0;
                u->password_hash = old;
            }
            if (u)
                koderid__v2__user__free_unpacked(u, NULL);
        } else {
            Koderid__V2__User *u = NULL;
            if (repo_user_get(s, argv[2], &u, &e) < 0) {
                fprintf(stderr, "user: %s\n", e.msg);
                rc = 2;
            } else {
                rc = verify(strcmp(argv[1], "check-machine") == 0 ? u->secret_hash
                                                                  : u->password_hash,
                            argv[2]);
                koderid__v2__user__free_unpacked(u, NULL);
            }
        }
        return rc;
    }
    bool raw = argc == 2 && strcmp(argv[1], "raw") == 0;
    if (argc == 2 && !raw) {
        fprintf(stderr, "store_dump: unknown command %s\n", argv[1]);
        return 2;
    }
    char *after = NULL;
    size_t alen = 0;
    for (;;) {
        struct store_list l = {0};
        if (store_scan(s, "", 0, after, alen, 1000, &l, &e) < 0) {
            fprintf(stderr, "scan: %s\n", e.msg);
            rc = 2;
            break;
        }
        for (size_t i = 0; i < l.n; i++) {
            struct store_entry *it = &l.items[i];
            json_t *o = json_object(), *rec;
            json_object_set_new(o, "key", json_stringn(it->key, it->klen));
            json_object_set_new(o, "version", json_integer((json_int_t)it->value.version));
            if (raw) {
                char *enc = b64_encode_alloc(it->value.data, it->value.len);
                json_object_set_new(o, "expires_at_ms", json_integer(it->value.expires_at_ms));
                json_object_set_new(o, "value", json_string(enc ? enc : ""));
                free(enc);
            } else if ((rec = decoded(it))) {
                json_object_set_new(o, "record", rec);
            } else {
                json_t *v = json_stringn((const char *)it->value.data, it->value.len);
                json_object_set_new(o, "raw", v ? v : json_string("(binary)"));
            }
            char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
            puts(line);
            free(line);
            json_decref(o);
        }
        free(after);
        after = NULL;
        bool more = l.more && l.n > 0;
        if (more) {
            alen = l.items[l.n - 1].klen;
            after = malloc(alen);
            memcpy(after, l.items[l.n - 1].key, alen);
        }
        store_list_release(&l);
        if (!more)
            break;
    }
    free(after);
    return rc;
}

int main(int argc, char **argv)
{
    struct cli_opts o;
    if (cli_common_args("store_dump", &argc, argv, &o) != 0 || !o.config ||
        argc > 3) {
        fprintf(stderr, "usage: store_dump --config FILE [--set KEY=VALUE...] "
                        "[raw | check-password|check-secret|check-machine|set-password ID]\n");
        return 2;
    }
    bool writes = argc == 3 && strcmp(argv[1], "set-password") == 0;
    struct cli c;
    if (cli_open(&c, &o, CLI_STORE | (writes ? 0 : CLI_READ_ONLY)) != 0)
        return 2;
    int rc = dump(c.store, argc, argv);
    cli_close(&c);
    return rc;
}
