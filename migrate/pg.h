/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A read-only PostgreSQL session (libpq), the only place libpq is used. pg_open() connects with
 * a libpq connection string or URI (PG* environment variables and ~/.pgpass apply as libpq
 * makes them apply) and starts one REPEATABLE READ READ ONLY transaction: every query sees the
 * same snapshot, and nothing can be written to the source database. Results are text.
 *
 * Error messages name the host, port and database, never the password or the full DSN.
 * One session belongs to one thread.
 */
#ifndef MIGRATE_PG_H
#define MIGRATE_PG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

struct pg;
struct pg_result;

/**
 * Connects to @dsn and begins the read-only snapshot transaction. Returns 0 and the session in
 * *ret_pg, or -E_INVALID (a DSN libpq cannot parse; no detail from the DSN is echoed) or
 * -E_UNAVAILABLE (cannot connect or begin) with one line in @e naming host/port/database.
 */
int pg_open(const char *dsn, struct pg **ret_pg, struct err *e);

/** Rolls the transaction back, disconnects and frees @pg (NULL allowed). */
void pg_close(struct pg *pg);

/** "host:port/dbname" of the connection (borrowed, valid until pg_close). */
const char *pg_where(const struct pg *pg);

/** The server's database name (borrowed). */
const char *pg_dbname(const struct pg *pg);

/**
 * Runs @sql with @nparams text parameters ($1...; NULL entries are SQL NULL) and returns the
 * rows in *ret (free with pg_result_free()). -E_IO with the server's first message line on
 * failure (the SQL text is not repeated).
 */
int pg_query(struct pg *pg, const char *sql, int nparams, const char *const *params,
             struct pg_result **ret, struct err *e);

/** Frees @r (NULL allowed). */
void pg_result_free(struct pg_result *r);

size_t pg_nrows(const struct pg_result *r);

/**
 * The text of row @row, column @col; NULL for SQL NULL or out-of-range indexes. Borrowed until
 * pg_result_free().
 */
const char *pg_value(const struct pg_result *r, size_t row, int col);

/** Like pg_value(), but "" for NULL: for columns where v1 writes '' in one install and NULL in
 * another. */
const char *pg_text(const struct pg_result *r, size_t row, int col);

/** True when the value is SQL NULL (or out of range). */
bool pg_isnull(const struct pg_result *r, size_t row, int col);

/** Boolean column ('t'/'f'); NULL reads as false. */
bool pg_bool(const struct pg_result *r, size_t row, int col);

/** Integer column; NULL or unparsable reads as @dflt. */
long long pg_int(const struct pg_result *r, size_t row, int col, long long dflt);

#endif
