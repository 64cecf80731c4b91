/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes protobuf-c unpacking of stored records: every message of storage/proto/records.proto
 * (the list is generated from records.pb-c.h, see gen_descriptors.py). The first input byte
 * picks the message type, the rest is the stored value. The value goes through repo_get() over
 * a one-key in-memory store, the path every record read takes (an LMDB or kdb-next value is
 * just bytes by then), and then through protobuf_c_message_unpack() directly to check that
 * what unpacks passes protobuf_c_message_check() and re-packs to a stable encoding.
 */
#include <string.h>

#include "fuzz.h"
#include "storage/repo.h"

extern const ProtobufCMessageDescriptor *const fuzz_descriptors[];
extern const unsigned fuzz_ndescriptors;

/* A store that holds one value under any key: enough for repo_get(). */
struct fuzz_store {
    struct store base;
    const uint8_t *data;
    size_t len;
};

static int fs_get(struct store *s, const void *key, size_t klen, struct store_value *ret,
                  struct err *e)
{
    struct fuzz_store *fs = (struct fuzz_store *)s;
    unsigned char *copy = malloc(fs->len ? fs->len : 1);
    if (!copy)
        return err_set(e, -E_NOMEM, "out of memory");
    if (fs->len)
        memcpy(copy, fs->data, fs->len);
    ret->data = copy;
    ret->len = fs->len;
    ret->version = 7;
    ret->expires_at_ms = 0;
    return 0;
}

static const struct store_ops fuzz_store_ops = {
    .name = "fuzz",
    .get = fs_get,
};

static void check_repack(const ProtobufCMessageDescriptor *desc, const ProtobufCMessage *m)
{
    FUZZ_CHECK(protobuf_c_message_check(m));
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    FUZZ_CHECK(buf);
    FUZZ_CHECK(protobuf_c_message_pack(m, buf) == len);

    /* What we wrote must read back, and writing that again must give the same bytes. */
    ProtobufCMessage *again = protobuf_c_message_unpack(desc, NULL, len, buf);
    FUZZ_CHECK(again);
    size_t len2 = protobuf_c_message_get_packed_size(again);
    FUZZ_CHECK(len2 == len);
    uint8_t *buf2 = malloc(len2 ? len2 : 1);
    FUZZ_CHECK(buf2);
    FUZZ_CHECK(protobuf_c_message_pack(again, buf2) == len2);
    FUZZ_CHECK(memcmp(buf, buf2, len) == 0);
    protobuf_c_message_free_unpacked(again, NULL);
    free(buf2);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size - 1 > STORE_VALUE_MAX)
        return 0;
    const ProtobufCMessageDescriptor *desc = fuzz_descriptors[data[0] % fuzz_ndescriptors];
    struct fuzz_store fs = {
        .base = {.ops = &fuzz_store_ops, .tenant = 1}, .data = data + 1, .len = size - 1};
    struct err e = {0};

    ProtobufCMessage *m = NULL;
    uint64_t version = 0;
    int r = repo_get(&fs.base, "fuzz/key", desc, &m, &version, &e);
    if (r < 0) {
        FUZZ_CHECK(r == -E_INTERNAL && m == NULL && e.code == r);
    } else {
        FUZZ_CHECK(m && m->descriptor == desc && version == 7);
        check_repack(desc, m);
        protobuf_c_message_free_unpacked(m, NULL);
    }

    /* repo_get() refuses more than protobuf-c (see repo_pb_fields_valid()), never less. */
    m = protobuf_c_message_unpack(desc, NULL, size - 1, data + 1);
    FUZZ_CHECK(r < 0 || m != NULL);
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}
