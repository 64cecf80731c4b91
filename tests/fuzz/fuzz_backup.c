/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the backup reader (storage/backup.c, store_import_backup()): a backup file is input
 * from outside, chosen by an operator. The first input byte picks the mode: bit 0 merge, bit 1
 * the stream is not seekable (the reader copies it to a temporary file first), bit 2 the last
 * 32 bytes are replaced by the right SHA-256 of what precedes them, so the fuzzer gets past
 * the checksum to the restoring pass. The store is an in-memory stand-in that checks what a
 * restore hands it: keys in range and strictly ascending, versions set, sizes within limits.
 */
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "storage/backup.h"

struct fuzz_store {
    struct store base;
    unsigned char last[STORE_KEY_MAX];
    size_t last_len;
    size_t restored;
};

static int fs_scan(struct store *s, const void *prefix, size_t plen, const void *start_after,
                   size_t salen, size_t limit, struct store_list *ret, struct err *e)
{
    memset(ret, 0, sizeof *ret);
    return 0;
}

static int fs_restore(struct store *s, const struct store_entry *items, size_t n,
                      bool keep_versions, struct err *e)
{
    struct fuzz_store *fs = (struct fuzz_store *)s;
    for (size_t i = 0; i < n; i++) {
        const struct store_entry *it = &items[i];
        FUZZ_CHECK(it->klen >= 1 && it->klen <= STORE_KEY_MAX && it->key[it->klen] == '\0');
        FUZZ_CHECK(it->value.len <= STORE_VALUE_MAX && (it->value.data || !it->value.len));
        FUZZ_CHECK(it->value.version > 0 && it->value.expires_at_ms >= 0);
        if (fs->last_len) {
            size_t m = fs->last_len < it->klen ? fs->last_len : it->klen;
            int c = memcmp(fs->last, it->key, m);
            FUZZ_CHECK(c < 0 || (c == 0 && fs->last_len < it->klen));
        }
        memcpy(fs->last, it->key, it->klen);
        fs->last_len = it->klen;
        fs->restored++;
    }
    return 0;
}

static const struct store_ops fuzz_store_ops = {
    .name = "fuzz",
    .scan = fs_scan,
    .restore = fs_restore,
};

/* A read-only stream without a seek function: what a pipe looks like to the reader. */
struct mem_stream {
    const uint8_t *data;
    size_t len, off;
};

static ssize_t ms_read(void *cookie, char *buf, size_t n)
{
    struct mem_stream *m = cookie;
    size_t left = m->len - m->off;
    if (n > left)
        n = left;
    memcpy(buf, m->data + m->off, n);
    m->off += n;
    return (ssize_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 256 * 1024)
        return 0;
    unsigned mode = data[0];
    size_t len = size - 1;
    uint8_t *file = malloc(len + 1);
    FUZZ_CHECK(file);
    memcpy(file, data + 1, len);
    if ((mode & 4) && len >= SHA256_DIGEST_LENGTH)
        SHA256(file, len - SHA256_DIGEST_LENGTH, file + len - SHA256_DIGEST_LENGTH);

    struct mem_stream ms = {.data = file, .len = len};
    FILE *f;
    if (mode & 2) {
        f = fopencookie(&ms, "r", (cookie_io_functions_t){.read = ms_read});
    } else {
        f = len ? fmemopen(file, len, "r")
                : fopencookie(&ms, "r", (cookie_io_functions_t){.read = ms_read});
    }
    FUZZ_CHECK(f);

    struct fuzz_store fs = {.base = {.ops = &fuzz_store_ops, .tenant = 1}};
    struct store_backup_stats st = {0};
    struct err e = {0};
    int r = store_import_backup(&fs.base, f, (mode & 1) ? STORE_IMPORT_MERGE : 0, &st, &e);
    if (r < 0) {
        FUZZ_CHECK(e.code == r && e.msg[0] != '\0');
    } else {
        /* Accepted: well framed, and every entry was either restored or skipped as expired. */
        FUZZ_CHECK(len >= sizeof STORE_BACKUP_MAGIC - 1 &&
                   memcmp(file, STORE_BACKUP_MAGIC, sizeof STORE_BACKUP_MAGIC - 1) == 0);
        FUZZ_CHECK(st.written + st.skipped == st.entries);
        FUZZ_CHECK(fs.restored == st.entries);
    }
    fclose(f);
    free(file);
    return 0;
}
