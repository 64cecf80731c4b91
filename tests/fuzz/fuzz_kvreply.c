/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes protobuf-c unpacking of kdb-next messages (storage/proto/kdbnext/v1/kv.proto): the
 * replies storage/kdbnext.c unpacks from the network (GetResponse, ScanResponse, ...) and the
 * requests, every message of kv.pb-c.h (the list is generated, see gen_descriptors.py). The
 * first input byte picks the message type. What unpacks must pass protobuf_c_message_check(),
 * carry only valid field numbers (protobuf-c keeps 0 and >2^29-1 from overlong tags, see
 * storage/repo.c) or be refused, and re-pack to bytes that unpack and re-pack identically.
 */
#include <protobuf-c/protobuf-c.h>
#include <string.h>

#include "fuzz.h"
#include "storage/grpc.h"
#include "storage/repo.h"

extern const ProtobufCMessageDescriptor *const fuzz_descriptors[];
extern const unsigned fuzz_ndescriptors;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size - 1 > GRPC_MAX_RECV_MESSAGE)
        return 0;
    const ProtobufCMessageDescriptor *desc = fuzz_descriptors[data[0] % fuzz_ndescriptors];
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, size - 1, data + 1);
    if (!m)
        return 0;
    FUZZ_CHECK(m->descriptor == desc && protobuf_c_message_check(m));
    if (!repo_pb_fields_valid(m)) {
        protobuf_c_message_free_unpacked(m, NULL);
        return 0;
    }
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    FUZZ_CHECK(buf && protobuf_c_message_pack(m, buf) == len);
    ProtobufCMessage *again = protobuf_c_message_unpack(desc, NULL, len, buf);
    FUZZ_CHECK(again);
    size_t len2 = protobuf_c_message_get_packed_size(again);
    uint8_t *buf2 = malloc(len2 ? len2 : 1);
    FUZZ_CHECK(buf2 && len2 == len && protobuf_c_message_pack(again, buf2) == len);
    FUZZ_CHECK(memcmp(buf, buf2, len) == 0);
    protobuf_c_message_free_unpacked(again, NULL);
    protobuf_c_message_free_unpacked(m, NULL);
    free(buf2);
    free(buf);
    return 0;
}
