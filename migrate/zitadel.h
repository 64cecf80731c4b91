/* SPDX-License-Identifier: Apache-2.0 */
/*
 * import-zitadel: reads v1's (Zitadel's) PostgreSQL database in one read-only snapshot, maps
 * it to v2's records and writes them through storage/repo.h.
 *
 * Phases: (1) detect the projection table versions and the instance, stop on anything unknown;
 * (2) read every table into records in memory (nothing written yet); (3) plan each record
 * against the store: create / update / unchanged, delete for what an earlier import wrote and
 * v1 no longer has, conflict for a key a v2-created record holds (never touched); (4) unless
 * a dry run, write in dependency order (orgs, projects, roles, clients, users, grants, keys,
 * settings), then deletions, then repair indexes. Re-running with the same input writes
 * nothing; an import killed half way completes when run again.
 */
#ifndef MIGRATE_ZITADEL_H
#define MIGRATE_ZITADEL_H

#include <stdbool.h>
#include <stdio.h>

#include "common/err.h"
#include "storage/store.h"

struct pg;

struct zitadel_options {
    const char *dsn;      /* libpq connection string or URI (never logged) */
    const char *instance; /* v1 instance id; NULL = the only one */
    bool dry_run;         /* plan only, write nothing */
    FILE *out;            /* where the summary and plan lines go (stdout), NULL = nowhere */
    struct pg *pg;        /* an open session to read instead of connecting to dsn (borrowed) */
};

/** The outcome of one run; see README "import-zitadel" for the JSON shape. */
struct zitadel_report;

/**
 * Runs the import into @store (which a dry run only reads). *ret_report is set whenever a
 * report exists, also on failure (e.g. it names an unknown table version); free it with
 * zitadel_report_free(). Returns 0 when the run finished (check zitadel_report_complete() for
 * whether everything was imported), or a negative code: -E_UNAVAILABLE / -E_INVALID for the
 * database connection, -E_CONFIG when the database is not a v1 this importer understands
 * (nothing was written), -E_CONFLICT when the store holds an import of another instance,
 * -E_IO for a store or query failure.
 */
int zitadel_import(struct store *store, const struct zitadel_options *opt,
                   struct zitadel_report **ret_report, struct err *e);

/** True when every org, project, app and user v1 has is in the store (or would be, dry run). */
bool zitadel_report_complete(const struct zitadel_report *r);

/** Writes the report as JSON (one document, indented) to @f, which the caller opened. */
int zitadel_report_write(const struct zitadel_report *r, FILE *f, struct err *e);

/** The report as a JSON string (caller frees). NULL on allocation failure. */
char *zitadel_report_json(const struct zitadel_report *r);

void zitadel_report_free(struct zitadel_report *r);

#endif
