/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the LMDB backend (storage/lmdb.c) tells beyond store.h: its group-commit counters, for
 * the benchmark, the tests and diagnostics. See lmdb.c's head for how writes are batched.
 * Not named lmdb.h: that is LMDB's own header, and storage/ is on the include path.
 */
#ifndef STORAGE_STORE_LMDB_H
#define STORAGE_STORE_LMDB_H

#include <stdint.h>

#include "store.h"

/** Group-commit counters of one LMDB environment (every store on its folder in the process). */
struct store_lmdb_stats {
    uint64_t batches;   /* write transactions that committed a whole batch (one fsync each) */
    uint64_t ops;       /* operations in those batches */
    uint64_t max_batch; /* most operations one of them held */
    uint64_t fallbacks; /* batches rerun one transaction per operation after a failure */
    uint64_t waiting;   /* operations queued now, the running batch's included */
};

/**
 * Copies the counters of @s's environment into *ret. -E_INVALID when @s is not an LMDB store
 * (a wrapped one, such as the metrics decorator, is not). Any thread.
 */
int store_lmdb_stats(struct store *s, struct store_lmdb_stats *ret, struct err *e);

#endif
