/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Backups of one tenant of a store: `export FILE` and `import-backup FILE`.
 *
 * File format, version 1 (integers big-endian):
 *   "koder-id-v2 backup 1\n"
 *   "tenant <decimal> created_ms <decimal> backend <name>\n"       (informational)
 *   per entry, in strictly ascending key order:
 *     'E', u16 key length (1..511), u32 value length (0..1 MiB), u64 version,
 *     i64 expires_at_ms (unix ms, 0 = never), key bytes, value bytes
 *   trailer: 'Z', u64 entry count, then the 32-byte SHA-256 of every byte before it (the two
 *   header lines, all entries, 'Z' and the count); the file ends right there.
 * Only live entries are written. The file holds password and secret hashes, encrypted signing
 * keys and token hashes: keep it like the data dir (the CLI creates it 0600).
 */
#ifndef STORAGE_BACKUP_H
#define STORAGE_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "storage/store.h"

#define STORE_BACKUP_MAGIC "koder-id-v2 backup 1\n"

struct store_backup_stats {
    uint64_t entries; /* entries in the file */
    uint64_t written; /* import: entries written (live ones) */
    uint64_t skipped; /* import: entries that had expired since the export */
    uint64_t bytes;   /* export: bytes written */
};

/**
 * Writes every live entry of @s's tenant to @out (see the format above), then flushes it and,
 * for a regular file, fsyncs it. With LMDB the dump is one read transaction: a consistent
 * snapshot taken while the server keeps running. @ret_stats may be NULL. -E_IO when writing
 * fails; the file is then incomplete and an import refuses it.
 */
int store_export(struct store *s, FILE *out, struct store_backup_stats *ret_stats, struct err *e);

/** Let import-backup write into a tenant that already has data (keys in the file win). */
#define STORE_IMPORT_MERGE 0x1u
/** Empty the tenant first (after the file was verified): the store becomes the backup. */
#define STORE_IMPORT_REPLACE 0x2u

/**
 * Restores a file written by store_export() into @s's tenant. The whole file is checked first
 * (structure, limits, key order, count, checksum, nothing after the trailer): a corrupt or
 * truncated file gives -E_INVALID and nothing is written. By default a tenant that holds any
 * live key is refused (-E_EXISTS). STORE_IMPORT_REPLACE empties it first (store_clear());
 * STORE_IMPORT_MERGE writes over it, entries getting new versions; both at once is -E_INVALID.
 * Otherwise entries keep their versions and expiry (where the backend supports it, see
 * store_restore()). Not atomic: a failure while writing (disk full) leaves part of the file
 * written; run it again with STORE_IMPORT_REPLACE.
 * Entries that expired since the export are skipped. @in must be seekable or is first copied
 * to a temporary file. @ret_stats may be NULL.
 */
int store_import_backup(struct store *s, FILE *in, unsigned flags,
                        struct store_backup_stats *ret_stats, struct err *e);

#endif
