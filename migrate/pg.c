/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libpq wrapper for the importer: one connection, one read-only REPEATABLE READ transaction,
 * text results. Kept small so a libpq change touches this file only.
 */
#include "pg.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"

struct pg {
    PGconn *conn;
    char where[256];
    char dbname[128];
};

struct pg_result {
    PGresult *res;
    size_t nrows;
    int ncols;
};

/* The first line of a libpq message without libpq's "connection to server ... failed: " lead
 * (pg_where() already names the server). */
static void first_line(const char *msg, char *out, size_t n)
{
    if (!msg)
        msg = "";
    const char *nl = strchr(msg, '\n');
    size_t len = nl ? (size_t)(nl - msg) : strlen(msg);
    const char *f = NULL;
    for (const char *p = msg; p && p < msg + len; p = strstr(p + 1, "failed: "))
        if (strncmp(p, "failed: ", 8) == 0)
            f = p;
    if (f && f < msg + len) {
        len -= (size_t)(f + 8 - msg);
        msg = f + 8;
    }
    snprintf(out, n, "%.*s", (int)len, msg);
}

static void describe(struct pg *pg)
{
    const char *host = PQhost(pg->conn);
    const char *port = PQport(pg->conn);
    const char *db = PQdb(pg->conn);
    snprintf(pg->where, sizeof pg->where, "%s:%s/%s", host && *host ? host : "localhost",
             port && *port ? port : "5432", db ? db : "");
    snprintf(pg->dbname, sizeof pg->dbname, "%s", db ? db : "");
}

int pg_open(const char *dsn, struct pg **ret_pg, struct err *e)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn ? dsn : "", &perr);
    if (!opts) {
        /* libpq's parse messages can quote pieces of the DSN, password included. */
        PQfreemem(perr);
        return err_set(e, -E_INVALID, "--dsn is not a libpq connection string or URI");
    }
    PQconninfoFree(opts);

    struct pg *pg = calloc(1, sizeof *pg);
    if (!pg)
        return err_set(e, -E_NOMEM, "out of memory");
    const char *const keys[] = {"dbname", "fallback_application_name", NULL};
    const char *const vals[] = {dsn, "koder-id-v2-import-zitadel", NULL};
    pg->conn = PQconnectdbParams(keys, vals, 1);
    if (!pg->conn) {
        free(pg);
        return err_set(e, -E_NOMEM, "out of memory");
    }
    describe(pg);
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        char line[160];
        first_line(PQerrorMessage(pg->conn), line, sizeof line);
        err_set(e, -E_UNAVAILABLE, "cannot connect to PostgreSQL %.80s: %s", pg->where, line);
        pg_close(pg);
        return -E_UNAVAILABLE;
    }
    PGresult *res = PQexec(pg->conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        char line[160];
        first_line(PQerrorMessage(pg->conn), line, sizeof line);
        PQclear(res);
        err_set(e, -E_UNAVAILABLE, "PostgreSQL %.80s: cannot begin a read-only transaction: %s",
                pg->where, line);
        pg_close(pg);
        return -E_UNAVAILABLE;
    }
    PQclear(res);
    *ret_pg = pg;
    return 0;
}

void pg_close(struct pg *pg)
{
    if (!pg)
        return;
    if (pg->conn) {
        if (PQstatus(pg->conn) == CONNECTION_OK && PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
            PQclear(PQexec(pg->conn, "ROLLBACK"));
        PQfinish(pg->conn);
    }
    free(pg);
}

const char *pg_where(const struct pg *pg)
{
    return pg->where;
}

const char *pg_dbname(const struct pg *pg)
{
    return pg->dbname;
}

int pg_query(struct pg *pg, const char *sql, int nparams, const char *const *params,
             struct pg_result **ret, struct err *e)
{
    PGresult *res = PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        char line[160];
        const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        first_line(m ? m : PQerrorMessage(pg->conn), line, sizeof line);
        PQclear(res);
        return err_set(e, -E_IO, "PostgreSQL %.80s: %s", pg->where, line);
    }
    struct pg_result *r = calloc(1, sizeof *r);
    if (!r) {
        PQclear(res);
        return err_set(e, -E_NOMEM, "out of memory");
    }
    r->res = res;
    r->nrows = (size_t)PQntuples(res);
    r->ncols = PQnfields(res);
    *ret = r;
    return 0;
}

void pg_result_free(struct pg_result *r)
{
    if (!r)
        return;
    PQclear(r->res);
    free(r);
}

size_t pg_nrows(const struct pg_result *r)
{
    return r->nrows;
}

bool pg_isnull(const struct pg_result *r, size_t row, int col)
{
    if (row >= r->nrows || col < 0 || col >= r->ncols)
        return true;
    return PQgetisnull(r->res, (int)row, col) != 0;
}

const char *pg_value(const struct pg_result *r, size_t row, int col)
{
    if (pg_isnull(r, row, col))
        return NULL;
    return PQgetvalue(r->res, (int)row, col);
}

const char *pg_text(const struct pg_result *r, size_t row, int col)
{
    const char *v = pg_value(r, row, col);
    return v ? v : "";
}

bool pg_bool(const struct pg_result *r, size_t row, int col)
{
    const char *v = pg_value(r, row, col);
    return v && (v[0] == 't' || v[0] == 'T');
}

long long pg_int(const struct pg_result *r, size_t row, int col, long long dflt)
{
    const char *v = pg_value(r, row, col);
    if (!v || !*v)
        return dflt;
    char *end = NULL;
    long long x = strtoll(v, &end, 10);
    return (end && *end == '\0') ? x : dflt;
}
