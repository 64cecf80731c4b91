/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Export and restore of one tenant: a length-prefixed dump with a SHA-256 trailer (format in
 * backup.h). Import reads the file twice: once to prove it whole, once to write it, so a
 * damaged file never leaves half a restore behind.
 */
#include "backup.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/cleanup.h"

#define REC_HDR 22 /* u16 klen, u32 vlen, u64 version, i64 expires */
#define DIGEST_LEN 32
#define LINE_MAX_ 256
#define BATCH_ITEMS 1000
#define BATCH_BYTES ((size_t)32 << 20)

static void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

static uint64_t get_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static int cmp_keys(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static void md_freep(EVP_MD_CTX **p)
{
    if (*p)
        EVP_MD_CTX_free(*p);
}

/* ---- export ---- */

struct writer {
    FILE *f;
    EVP_MD_CTX *md;
    uint64_t count;
    uint64_t bytes;
    bool failed;
};

static void w_bytes(struct writer *w, const void *p, size_t n)
{
    if (w->failed || n == 0)
        return;
    if (fwrite(p, 1, n, w->f) != n || EVP_DigestUpdate(w->md, p, n) != 1)
        w->failed = true;
    w->bytes += n;
}

static int export_entry(const void *key, size_t klen, const struct store_value *v, struct err *e,
                        void *cbdata)
{
    struct writer *w = cbdata;
    unsigned char hdr[1 + REC_HDR];
    hdr[0] = 'E';
    put_be(hdr + 1, klen, 2);
    put_be(hdr + 3, v->len, 4);
    put_be(hdr + 7, v->version, 8);
    put_be(hdr + 15, (uint64_t)v->expires_at_ms, 8);
    w_bytes(w, hdr, sizeof hdr);
    w_bytes(w, key, klen);
    w_bytes(w, v->data, v->len);
    w->count++;
    if (w->failed)
        return err_set(e, -E_IO, "writing the backup: %s", strerror(errno));
    return 0;
}

int store_export(struct store *s, FILE *out, struct store_backup_stats *ret_stats, struct err *e)
{
    _cleanup_(md_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        return err_set(e, -E_NOMEM, "sha256 init failed");
    struct writer w = {.f = out, .md = md};
    char line[LINE_MAX_];
    int n = snprintf(line, sizeof line, "tenant %" PRIu64 " created_ms %" PRId64 " backend %s\n",
                     s->tenant, store_now_ms(), s->ops->name);
    w_bytes(&w, STORE_BACKUP_MAGIC, strlen(STORE_BACKUP_MAGIC));
    w_bytes(&w, line, (size_t)n);
    if (w.failed)
        return err_set(e, -E_IO, "writing the backup: %s", strerror(errno));

    int r = store_each(s, export_entry, &w, e);
    if (r < 0)
        return r;

    unsigned char trailer[9], digest[DIGEST_LEN];
    unsigned int dlen = 0;
    trailer[0] = 'Z';
    put_be(trailer + 1, w.count, 8);
    w_bytes(&w, trailer, sizeof trailer);
    if (w.failed || EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen != DIGEST_LEN)
        return err_set(e, -E_IO, "writing the backup: %s", strerror(errno));
    if (fwrite(digest, 1, DIGEST_LEN, out) != DIGEST_LEN || fflush(out) != 0)
        return err_set(e, -E_IO, "writing the backup: %s", strerror(errno));
    w.bytes += DIGEST_LEN;
    struct stat st;
    if (fstat(fileno(out), &st) == 0 && S_ISREG(st.st_mode) && fsync(fileno(out)) < 0)
        return err_set(e, -E_IO, "syncing the backup: %s", strerror(errno));
    if (ret_stats) {
        memset(ret_stats, 0, sizeof *ret_stats);
        ret_stats->entries = w.count;
        ret_stats->bytes = w.bytes;
    }
    return 0;
}

/* ---- import ---- */

struct reader {
    FILE *f;
    EVP_MD_CTX *md;
    struct store *s; /* NULL on the checking pass */
    bool keep_versions;
    struct store_entry *batch;
    size_t n_batch;
    size_t batch_bytes;
    struct store_backup_stats stats;
};

/* Reads exactly @n bytes (hashed when @hash): -E_INVALID on a short file. */
static int r_bytes(struct reader *rd, void *p, size_t n, bool hash, struct err *e)
{
    if (n == 0)
        return 0;
    if (fread(p, 1, n, rd->f) != n) {
        if (ferror(rd->f))
            return err_set(e, -E_IO, "reading the backup: %s", strerror(errno));
        return err_set(e, -E_INVALID, "backup is truncated");
    }
    if (hash && EVP_DigestUpdate(rd->md, p, n) != 1)
        return err_set(e, -E_INTERNAL, "sha256 update failed");
    return 0;
}

static void batch_clear(struct reader *rd)
{
    for (size_t i = 0; i < rd->n_batch; i++) {
        free(rd->batch[i].key);
        store_value_release(&rd->batch[i].value);
    }
    rd->n_batch = 0;
    rd->batch_bytes = 0;
}

static int batch_flush(struct reader *rd, struct err *e)
{
    if (rd->n_batch == 0)
        return 0;
    int64_t now = store_now_ms();
    for (size_t i = 0; i < rd->n_batch; i++) {
        int64_t x = rd->batch[i].value.expires_at_ms;
        if (x && x <= now)
            rd->stats.skipped++;
        else
            rd->stats.written++;
    }
    int r = store_restore(rd->s, rd->batch, rd->n_batch, rd->keep_versions, e);
    batch_clear(rd);
    return r;
}

static int header_line(struct reader *rd, struct err *e)
{
    char magic[sizeof STORE_BACKUP_MAGIC - 1];
    int r = r_bytes(rd, magic, sizeof magic, true, e);
    if (r < 0)
        return r == -E_INVALID ? err_set(e, -E_INVALID, "not a koder-id-v2 backup") : r;
    if (memcmp(magic, STORE_BACKUP_MAGIC, sizeof magic) != 0)
        return err_set(e, -E_INVALID, "not a koder-id-v2 backup (or another format version)");
    char line[LINE_MAX_];
    size_t n = 0;
    for (;;) {
        if (n == sizeof line)
            return err_set(e, -E_INVALID, "backup header line too long");
        r = r_bytes(rd, &line[n], 1, true, e);
        if (r < 0)
            return r;
        if (line[n++] == '\n')
            break;
    }
    if (n < 8 || memcmp(line, "tenant ", 7) != 0)
        return err_set(e, -E_INVALID, "backup header line is malformed");
    return 0;
}

/* One pass over the file: checks everything; on the writing pass also restores. */
static int walk(struct reader *rd, struct err *e)
{
    unsigned char prev[STORE_KEY_MAX];
    size_t prev_len = 0;
    uint64_t count = 0;
    int r = header_line(rd, e);
    if (r < 0)
        return r;
    for (;;) {
        unsigned char tag;
        r = r_bytes(rd, &tag, 1, true, e);
        if (r < 0)
            return r;
        if (tag == 'Z')
            break;
        if (tag != 'E')
            return err_set(e, -E_INVALID, "backup entry %" PRIu64 " is damaged", count + 1);
        unsigned char h[REC_HDR];
        r = r_bytes(rd, h, sizeof h, true, e);
        if (r < 0)
            return r;
        size_t klen = get_be(h, 2), vlen = get_be(h + 2, 4);
        uint64_t version = get_be(h + 6, 8);
        int64_t exp = (int64_t)get_be(h + 14, 8);
        if (klen == 0 || klen > STORE_KEY_MAX || vlen > STORE_VALUE_MAX || exp < 0 || version == 0)
            return err_set(e, -E_INVALID, "backup entry %" PRIu64 " is out of range", count + 1);
        _cleanup_free_ char *key = malloc(klen + 1);
        unsigned char *val = malloc(vlen ? vlen : 1);
        if (!key || !val) {
            free(val);
            return err_set(e, -E_NOMEM, "out of memory");
        }
        r = r_bytes(rd, key, klen, true, e);
        if (r == 0)
            r = r_bytes(rd, val, vlen, true, e);
        if (r == 0 && prev_len && cmp_keys(prev, prev_len, key, klen) >= 0)
            r = err_set(e, -E_INVALID, "backup keys are out of order at entry %" PRIu64, count + 1);
        if (r < 0) {
            OPENSSL_cleanse(val, vlen);
            free(val);
            return r;
        }
        key[klen] = '\0';
        memcpy(prev, key, klen);
        prev_len = klen;
        count++;
        if (!rd->s) {
            OPENSSL_cleanse(val, vlen);
            free(val);
            continue;
        }
        struct store_entry *it = &rd->batch[rd->n_batch++];
        it->key = TAKE_PTR(key);
        it->klen = klen;
        it->value = (struct store_value){
            .data = val, .len = vlen, .version = version, .expires_at_ms = exp};
        rd->batch_bytes += klen + vlen;
        if (rd->n_batch == BATCH_ITEMS || rd->batch_bytes >= BATCH_BYTES) {
            r = batch_flush(rd, e);
            if (r < 0)
                return r;
        }
    }
    unsigned char cnt[8], want[DIGEST_LEN], got[DIGEST_LEN];
    unsigned int dlen = 0;
    r = r_bytes(rd, cnt, sizeof cnt, true, e);
    if (r == 0)
        r = r_bytes(rd, want, sizeof want, false, e);
    if (r < 0)
        return r;
    if (get_be(cnt, 8) != count)
        return err_set(e, -E_INVALID, "backup entry count does not match");
    if (EVP_DigestFinal_ex(rd->md, got, &dlen) != 1 || dlen != DIGEST_LEN)
        return err_set(e, -E_INTERNAL, "sha256 final failed");
    if (CRYPTO_memcmp(got, want, DIGEST_LEN) != 0)
        return err_set(e, -E_INVALID, "backup checksum does not match (damaged file)");
    if (fgetc(rd->f) != EOF)
        return err_set(e, -E_INVALID, "backup has bytes after its end");
    rd->stats.entries = count;
    return rd->s ? batch_flush(rd, e) : 0;
}

static int one_pass(FILE *f, off_t start, struct store *s, bool keep_versions,
                    struct store_backup_stats *ret, struct err *e)
{
    if (fseeko(f, start, SEEK_SET) != 0)
        return err_set(e, -E_IO, "rewinding the backup: %s", strerror(errno));
    _cleanup_(md_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        return err_set(e, -E_NOMEM, "sha256 init failed");
    _cleanup_free_ struct store_entry *batch = NULL;
    if (s && !(batch = calloc(BATCH_ITEMS, sizeof *batch)))
        return err_set(e, -E_NOMEM, "out of memory");
    struct reader rd = {.f = f, .md = md, .s = s, .keep_versions = keep_versions, .batch = batch};
    int r = walk(&rd, e);
    batch_clear(&rd);
    if (r == 0 && ret)
        *ret = rd.stats;
    return r;
}

int store_import_backup(struct store *s, FILE *in, unsigned flags,
                        struct store_backup_stats *ret_stats, struct err *e)
{
    _cleanup_(fclosep) FILE *copy = NULL;
    FILE *f = NULL;
    bool merge = flags & STORE_IMPORT_MERGE, replace = flags & STORE_IMPORT_REPLACE;
    if (merge && replace)
        return err_set(e, -E_INVALID, "merge and replace exclude each other");
    /*
     * Always read from a private, unlinked copy: the first pass verifies the whole file before
     * anything is written, and the second pass must read the very bytes the first verified,
     * even if someone rewrites the backup file (or it is a pipe) in between.
     */
    off_t start = 0;
    copy = tmpfile();
    if (!copy)
        return err_set(e, -E_IO, "temporary file: %s", strerror(errno));
    {
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0)
            if (fwrite(buf, 1, n, copy) != n)
                return err_set(e, -E_IO, "temporary file: %s", strerror(errno));
        if (ferror(in))
            return err_set(e, -E_IO, "reading the backup: %s", strerror(errno));
        if (fflush(copy) != 0)
            return err_set(e, -E_IO, "temporary file: %s", strerror(errno));
        f = copy;
    }
    struct store_backup_stats stats = {0};
    int r = one_pass(f, start, NULL, false, &stats, e);
    if (r < 0)
        return r;

    if (replace) {
        r = store_clear(s, e);
        if (r < 0)
            return r;
    } else if (!merge) {
        struct store_list l = {0};
        r = store_scan(s, NULL, 0, NULL, 0, 1, &l, e);
        if (r < 0)
            return r;
        size_t n = l.n;
        store_list_release(&l);
        if (n)
            return err_set(e, -E_EXISTS, "the store already holds data (tenant %" PRIu64 ")",
                           s->tenant);
    }
    r = one_pass(f, start, s, !merge, &stats, e);
    if (r < 0)
        return r;
    if (ret_stats)
        *ret_stats = stats;
    return 0;
}
