/* SPDX-License-Identifier: Apache-2.0 */
/*
 * import-zitadel: v1's PostgreSQL database -> records -> plan -> store (see zitadel.h).
 *
 * Records built here live in an arena (struct zctx.arena) freed at the end, so building a
 * protobuf message is a handful of assignments; records read back from the store are unpacked
 * by protobuf-c and freed with free_unpacked.
 *
 * Determinism: nothing time-of-import goes into a record. The only clock reads decide whether
 * a v1 signing key is still worth publishing (an expired one is not imported).
 */
#include "zitadel.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "migrate/pg.h"
#include "migrate/zmap.h"
#include "storage/repo.h"

#define SOURCE "zitadel"
#define META_INSTANCE_KEY "meta/import-zitadel.instance"
/* Web keys have no expiry: published until the last token v1 could have signed with them
 * expires, counted from v1's last recorded activity (see README "import-zitadel"). */
#define WEB_KEY_MARGIN_S 3600
#define DEFAULT_TOKEN_LIFETIME_S (12 * 3600)
/* A password policy's min_length beyond this could never be met (OIDC_PASSWORD_MAX bytes). */
#define PW_MIN_LENGTH_MAX 1024

/* ---------------------------------------------------------------------------------------- */
/* arena */

struct arena_node {
    struct arena_node *next;
    max_align_t data[];
};

/* ---------------------------------------------------------------------------------------- */
/* record kinds, in write order */

enum zkind {
    ZK_ORG,
    ZK_PROJECT,
    ZK_ROLE,
    ZK_CLIENT,
    ZK_USER,
    ZK_GRANT,
    ZK_AUTHNKEY,
    ZK_SIGKEY,
    ZK_SETTINGS,
    ZK_PWPOLICY,
    ZK__N
};

static const struct {
    const char *name;
    const char *prefix;
    const ProtobufCMessageDescriptor *desc;
} kinds[ZK__N] = {
    [ZK_ORG] = {"org", "org/", &koderid__v2__org__descriptor},
    [ZK_PROJECT] = {"project", "project/", &koderid__v2__project__descriptor},
    [ZK_ROLE] = {"role", "role/", &koderid__v2__project_role__descriptor},
    [ZK_CLIENT] = {"client", "client/", &koderid__v2__client__descriptor},
    [ZK_USER] = {"user", "user/", &koderid__v2__user__descriptor},
    [ZK_GRANT] = {"grant", "grant/", &koderid__v2__user_grant__descriptor},
    [ZK_AUTHNKEY] = {"authn_key", "authnkey/", &koderid__v2__authn_key__descriptor},
    [ZK_SIGKEY] = {"signing_key", "sigkey/", &koderid__v2__signing_key__descriptor},
    [ZK_SETTINGS] = {"settings", "settings/", &koderid__v2__oidc_settings__descriptor},
    [ZK_PWPOLICY] = {"password_policy", "pwpolicy/", &koderid__v2__password_policy__descriptor},
};

enum zact { ZA_CREATE, ZA_UPDATE, ZA_UNCHANGED, ZA_DELETE, ZA_CONFLICT, ZA__N };
static const char *const act_names[ZA__N] = {"create", "update", "unchanged", "delete", "conflict"};

struct zrec {
    enum zkind kind;
    const char *id;        /* for the plan and report */
    const char *key;       /* store key */
    ProtobufCMessage *msg; /* the record to write (arena) */
    ProtobufCMessage *old; /* the stored record (unpacked; delete and update) */
    long parent[2];        /* indexes of records this one needs, -1 = none */
    enum zact act;
    const char *why; /* conflict reason */
};

/* ---------------------------------------------------------------------------------------- */
/* projection tables */

enum zt {
    T_USERS,
    T_APPS,
    T_ORGS,
    T_PROJECTS,
    T_ROLES,
    T_GRANTS,
    T_AUTHN,
    T_PATS,
    T_OIDCSET,
    T_KEYS,
    T_WEBKEYS,
    T_LOGIN,
    T_PWCOMPLEX,
    T__N
};

static const struct {
    const char *base;
    const char *suffix; /* the versioned name is base<N>suffix */
    int supported;
    bool required;
} ztab[T__N] = {
    [T_USERS] = {"users", "", 14, true},
    [T_APPS] = {"apps", "", 7, true},
    [T_ORGS] = {"orgs", "", 1, true},
    [T_PROJECTS] = {"projects", "", 4, true},
    [T_ROLES] = {"project_roles", "", 4, false},
    [T_GRANTS] = {"user_grants", "", 5, false},
    [T_AUTHN] = {"authn_keys", "", 2, false},
    [T_PATS] = {"personal_access_tokens", "", 3, false},
    [T_OIDCSET] = {"oidc_settings", "", 2, false},
    [T_KEYS] = {"keys", "", 4, false},
    [T_WEBKEYS] = {"web_keys", "", 1, false},
    [T_LOGIN] = {"login_names", "_users", 3, true},
    [T_PWCOMPLEX] = {"password_complexity_policies", "", 2, false},
};

/* ---------------------------------------------------------------------------------------- */
/* lookups */

struct idpair {
    const char *k;
    long idx; /* record index, -1 when skipped */
    void *p;
};

struct idmap {
    struct idpair *v;
    size_t n, cap;
    bool sorted;
};

struct zorg {
    const char *id;
    bool must_be_domain;
    struct zmap_domain *doms;
    size_t ndoms;
};

struct zctx {
    struct pg *pg;
    struct store *store;
    const struct zitadel_options *opt;
    const char *instance;
    int64_t now;
    struct arena_node *arena;
    bool oom;

    struct zmap_strv tables; /* every table and view name in schema projections */
    int tv[T__N];            /* chosen version, 0 = not present */
    char tn[T__N][64];       /* chosen name without schema */

    json_t *root, *skipped, *warnings, *plan;

    struct zrec *recs;
    size_t n, cap;
    bool read_kind[ZK__N];

    /* completeness: v1 objects of the four kinds that must all arrive */
    int found_org, found_project, found_app, found_user;
    int lost_org, lost_project, lost_app, lost_user;
    int n_oidc, n_api, n_human, n_machine, n_pat;
    int cid_forms[4];

    struct idmap orgs;     /* org id -> struct zorg (p), record idx */
    struct idmap projects; /* project id -> record idx */
    struct idmap apps;     /* app id -> record idx (p = client_id) */
    struct idmap users;    /* user id -> record idx (p = preferred login name) */
    struct idmap pwd;      /* user id -> hash text (p) */

    int64_t token_lifetime_s; /* max(access, id token) lifetime, for web keys */
    int64_t last_activity;    /* newest event in the instance (unix s) */
};

static void *zalloc(struct zctx *c, size_t n)
{
    struct arena_node *a = calloc(1, sizeof *a + n);
    if (!a) {
        c->oom = true;
        return NULL;
    }
    a->next = c->arena;
    c->arena = a;
    return a->data;
}

static char *zdup(struct zctx *c, const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    char *d = zalloc(c, n + 1);
    if (!d)
        return (char *)protobuf_c_empty_string;
    memcpy(d, s, n + 1);
    return d;
}

static char *zprintf(struct zctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *zprintf(struct zctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return (char *)protobuf_c_empty_string;
    char *d = zalloc(c, (size_t)n + 1);
    if (!d)
        return (char *)protobuf_c_empty_string;
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}

/* Copies the non-NULL elements of @l into the arena. */
static char **zdupv(struct zctx *c, const struct zmap_strv *l, size_t *ret_n)
{
    *ret_n = 0;
    if (!l->n)
        return NULL;
    char **v = zalloc(c, l->n * sizeof *v);
    if (!v)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i])
            v[k++] = zdup(c, l->v[i]);
    *ret_n = k;
    return v;
}

static void arena_free(struct zctx *c)
{
    while (c->arena) {
        struct arena_node *n = c->arena->next;
        free(c->arena);
        c->arena = n;
    }
}

static int idcmp(const void *a, const void *b)
{
    return strcmp(((const struct idpair *)a)->k, ((const struct idpair *)b)->k);
}

static void idmap_add(struct zctx *c, struct idmap *m, const char *k, long idx, void *p)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        struct idpair *v = realloc(m->v, cap * sizeof *v);
        if (!v) {
            c->oom = true;
            return;
        }
        m->v = v;
        m->cap = cap;
    }
    m->v[m->n++] = (struct idpair){zdup(c, k), idx, p};
    m->sorted = false;
}

static struct idpair *idmap_get(struct idmap *m, const char *k)
{
    if (!k || !m->n)
        return NULL;
    if (!m->sorted) {
        qsort(m->v, m->n, sizeof *m->v, idcmp);
        m->sorted = true;
    }
    struct idpair key = {k, 0, NULL};
    return bsearch(&key, m->v, m->n, sizeof *m->v, idcmp);
}

static void idmap_release(struct idmap *m)
{
    free(m->v);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------------------------------- */
/* report helpers */

static void jset(struct zctx *c, json_t *o, const char *k, json_t *v)
{
    if (!v || json_object_set_new(o, k, v) < 0)
        c->oom = true;
}

static void jpush(struct zctx *c, json_t *a, json_t *v)
{
    if (!v || json_array_append_new(a, v) < 0)
        c->oom = true;
}

static void warn(struct zctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct zctx *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    jpush(c, c->warnings, json_string(msg));
}

/* Reports an object v1 has and v2 will not get (or gets only in part, e.g. a password). */
static json_t *skip(struct zctx *c, const char *kind, const char *id, const char *name,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static json_t *skip(struct zctx *c, const char *kind, const char *id, const char *name,
                    const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *o = json_object();
    if (!o) {
        c->oom = true;
        return NULL;
    }
    jset(c, o, "kind", json_string(kind));
    jset(c, o, "id", json_string(id ? id : ""));
    if (name)
        jset(c, o, "name", json_string(name));
    jset(c, o, "reason", json_string(msg));
    jpush(c, c->skipped, o);
    if (strcmp(kind, "org") == 0)
        c->lost_org++;
    else if (strcmp(kind, "project") == 0)
        c->lost_project++;
    else if (strcmp(kind, "app") == 0)
        c->lost_app++;
    else if (strcmp(kind, "user") == 0)
        c->lost_user++;
    return o;
}

static long add_rec(struct zctx *c, enum zkind kind, const char *id, const char *key,
                    ProtobufCMessage *msg, long p0, long p1)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        struct zrec *v = realloc(c->recs, cap * sizeof *v);
        if (!v) {
            c->oom = true;
            return -1;
        }
        c->recs = v;
        c->cap = cap;
    }
    c->recs[c->n] =
        (struct zrec){kind, zdup(c, id), zdup(c, key), msg, NULL, {p0, p1}, ZA_CREATE, NULL};
    return (long)c->n++;
}

/* A store key for a record, or NULL (reported) when an id is too long for one. */
static const char *mkkey(struct zctx *c, const char *kind, const char *id, const char *prefix,
                         const char *a, const char *b)
{
    char key[REPO_KEY_MAX];
    if (repo_key(key, "%s%s%s%s", prefix, a, b ? "/" : "", b ? b : "") < 0) {
        skip(c, kind, id, NULL, "id too long for a store key");
        return NULL;
    }
    return zdup(c, key);
}

/* ---------------------------------------------------------------------------------------- */
/* reading */

static int query(struct zctx *c, const char *sql, struct pg_result **ret, struct err *e)
{
    const char *params[1] = {c->instance};
    return pg_query(c->pg, sql, c->instance ? 1 : 0, c->instance ? params : NULL, ret, e);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct pg_result *, pg_result_free)

/*
 * SELECT @cols FROM projections.<table @t> WHERE instance_id = $1 ORDER BY @order into *r,
 * marking @kind as read (ZK__N: nothing to mark). False when there is nothing to read: v1's
 * database lacks the table, or the query failed (*rc < 0, @e says why).
 */
static bool select_rows(struct zctx *c, enum zt t, int kind, const char *cols, const char *order,
                        struct pg_result **r, struct err *e, int *rc)
{
    if (!c->tv[t])
        return false;
    const char *sql = zprintf(c, "SELECT %s FROM projections.%s WHERE instance_id = $1 ORDER BY %s",
                              cols, c->tn[t], order);
    if ((*rc = query(c, sql, r, e)) < 0)
        return false;
    if (kind < ZK__N)
        c->read_kind[kind] = true;
    return true;
}

static bool has_table(struct zctx *c, const char *name)
{
    for (size_t i = 0; i < c->tables.n; i++)
        if (c->tables.v[i] && strcmp(c->tables.v[i], name) == 0)
            return true;
    return false;
}

/* The version N when @name is base<N>suffix, else 0. */
static int table_version(const char *name, const char *base, const char *suffix)
{
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) != 0)
        return 0;
    const char *p = name + bl;
    size_t d = strspn(p, "0123456789");
    if (d == 0 || d > 6 || strcmp(p + d, suffix) != 0)
        return 0;
    return atoi(p);
}

static int detect_tables(struct zctx *c, struct err *e)
{
    _cleanup_(pg_result_freep) struct pg_result *r = NULL;
    int rc = pg_query(c->pg,
                      "SELECT table_name::text FROM information_schema.tables "
                      "WHERE table_schema = 'projections' ORDER BY 1",
                      0, NULL, &r, e);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < pg_nrows(r); i++) {
        char **v = realloc(c->tables.v, (c->tables.n + 1) * sizeof *v);
        char *s = strdup(pg_text(r, i, 0));
        if (!v || !s) {
            free(s);
            if (v)
                c->tables.v = v;
            return err_set(e, -E_NOMEM, "out of memory");
        }
        c->tables.v = v;
        c->tables.v[c->tables.n++] = s;
    }

    json_t *t = json_object(), *used = json_array(), *stale = json_array(), *newer = json_array(),
           *missing = json_array();
    jset(c, c->root, "tables", t);
    jset(c, t, "used", used);
    jset(c, t, "stale", stale);
    jset(c, t, "newer", newer);
    jset(c, t, "missing", missing);
    if (c->oom)
        return err_set(e, -E_NOMEM, "out of memory");

    struct buf unknown = BUF_INIT;
    for (int k = 0; k < T__N; k++) {
        int best = 0;
        for (size_t i = 0; i < c->tables.n; i++) {
            int v = table_version(c->tables.v[i], ztab[k].base, ztab[k].suffix);
            if (v == ztab[k].supported)
                best = v;
        }
        for (size_t i = 0; i < c->tables.n; i++) {
            int v = table_version(c->tables.v[i], ztab[k].base, ztab[k].suffix);
            if (!v || v == ztab[k].supported)
                continue;
            char full[160];
            snprintf(full, sizeof full, "projections.%s", c->tables.v[i]);
            if (best && v < best) {
                jpush(c, stale, json_string(full));
            } else if (best) {
                jpush(c, newer, json_string(full));
                warn(c,
                     "%s is newer than the supported %s%d%s: v1 may be a newer Zitadel than "
                     "this importer knows; read from %s%d%s, which v1 may no longer update",
                     full, ztab[k].base, ztab[k].supported, ztab[k].suffix, ztab[k].base,
                     ztab[k].supported, ztab[k].suffix);
            } else {
                buf_addf(&unknown, "%s%s (supported: %s%d%s)", unknown.len ? ", " : "", full,
                         ztab[k].base, ztab[k].supported, ztab[k].suffix);
            }
        }
        if (best) {
            c->tv[k] = best;
            snprintf(c->tn[k], sizeof c->tn[k], "%s%d", ztab[k].base, best);
            char full[160];
            snprintf(full, sizeof full, "projections.%s%s", c->tn[k], ztab[k].suffix);
            jpush(c, used, json_string(full));
        } else {
            bool any = false;
            for (size_t i = 0; i < c->tables.n; i++)
                any |= table_version(c->tables.v[i], ztab[k].base, ztab[k].suffix) != 0;
            if (!any) {
                char full[160];
                snprintf(full, sizeof full, "projections.%s%d%s", ztab[k].base, ztab[k].supported,
                         ztab[k].suffix);
                jpush(c, missing, json_string(full));
                if (ztab[k].required)
                    buf_addf(&unknown, "%s%s missing", unknown.len ? ", " : "", full);
                else
                    warn(c, "%s does not exist: nothing of it is imported", full);
            }
        }
    }
    /* Companion tables of the chosen versions. */
    static const struct {
        enum zt t;
        const char *suffix;
    } parts[] = {{T_USERS, "_humans"},     {T_USERS, "_machines"}, {T_APPS, "_oidc_configs"},
                 {T_APPS, "_api_configs"}, {T_KEYS, "_public"},    {T_LOGIN, "_domains"},
                 {T_LOGIN, "_policies"}};
    for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
        if (!c->tv[parts[i].t])
            continue;
        char name[128];
        snprintf(name, sizeof name, "%s%s", c->tn[parts[i].t], parts[i].suffix);
        if (!has_table(c, name))
            buf_addf(&unknown, "%sprojections.%s missing", unknown.len ? ", " : "", name);
    }
    /* Passwords live only in the event store. */
    {
        _cleanup_(pg_result_freep) struct pg_result *ev = NULL;
        rc = pg_query(c->pg,
                      "SELECT 1 FROM information_schema.tables WHERE table_schema = 'eventstore' "
                      "AND table_name = 'events2'",
                      0, NULL, &ev, e);
        if (rc < 0) {
            buf_release(&unknown);
            return rc;
        }
        if (pg_nrows(ev) == 0)
            buf_addf(&unknown, "%seventstore.events2 missing", unknown.len ? ", " : "");
    }
    if (unknown.len) {
        jset(c, t, "unknown", json_string(unknown.data));
        err_set(e, -E_CONFIG, "v1 database not understood, nothing written: %.150s", unknown.data);
        buf_release(&unknown);
        return -E_CONFIG;
    }
    buf_release(&unknown);
    return c->oom ? err_set(e, -E_NOMEM, "out of memory") : 0;
}

static int pick_instance(struct zctx *c, struct err *e)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT DISTINCT instance_id COLLATE \"C\" FROM projections.%s ORDER BY 1",
             c->tn[T_ORGS]);
    _cleanup_(pg_result_freep) struct pg_result *r = NULL;
    int rc = pg_query(c->pg, sql, 0, NULL, &r, e);
    if (rc < 0)
        return rc;
    size_t n = pg_nrows(r);
    if (c->opt->instance) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(pg_text(r, i, 0), c->opt->instance) == 0) {
                c->instance = zdup(c, c->opt->instance);
                return 0;
            }
        return err_set(e, -E_CONFIG, "instance '%.40s' not found in %s", c->opt->instance,
                       pg_where(c->pg));
    }
    if (n == 1) {
        c->instance = zdup(c, pg_text(r, 0, 0));
        return 0;
    }
    if (n == 0)
        return err_set(e, -E_CONFIG, "no v1 instance (no org) in %s", pg_where(c->pg));
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < n && i < 8; i++)
        buf_addf(&b, "%s%s", i ? ", " : "", pg_text(r, i, 0));
    err_set(e, -E_USAGE, "%zu instances found (%s%s): choose one with --instance", n,
            b.data ? b.data : "", n > 8 ? ", ..." : "");
    buf_release(&b);
    return -E_USAGE;
}

#define EPOCH(col) "floor(extract(epoch from " col "))::bigint"

static void read_settings(struct zctx *c, struct err *e, int *rc)
{
    c->token_lifetime_s = DEFAULT_TOKEN_LIFETIME_S;
    if (!c->tv[T_OIDCSET])
        return;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT access_token_lifetime, id_token_lifetime, refresh_token_idle_expiration, "
             "refresh_token_expiration, aggregate_id FROM projections.%s WHERE instance_id = $1 "
             "ORDER BY (aggregate_id = $1) DESC, aggregate_id COLLATE \"C\" LIMIT 1",
             c->tn[T_OIDCSET]);
    _cleanup_(pg_result_freep) struct pg_result *r = NULL;
    if ((*rc = query(c, sql, &r, e)) < 0)
        return;
    c->read_kind[ZK_SETTINGS] = true;
    if (pg_nrows(r) == 0) {
        warn(c, "projections.%s has no row for the instance: v2 keeps its defaults",
             c->tn[T_OIDCSET]);
        c->read_kind[ZK_SETTINGS] = false;
        return;
    }
    Koderid__V2__OidcSettings *s = zalloc(c, sizeof *s);
    if (!s)
        return;
    koderid__v2__oidc_settings__init(s);
    s->access_token_lifetime = zmap_ns_to_s(pg_int(r, 0, 0, 0));
    s->id_token_lifetime = zmap_ns_to_s(pg_int(r, 0, 1, 0));
    s->refresh_token_idle_expiration = zmap_ns_to_s(pg_int(r, 0, 2, 0));
    s->refresh_token_expiration = zmap_ns_to_s(pg_int(r, 0, 3, 0));
    s->source = SOURCE;
    if (s->access_token_lifetime > 0 || s->id_token_lifetime > 0)
        c->token_lifetime_s = s->access_token_lifetime > s->id_token_lifetime
                                  ? s->access_token_lifetime
                                  : s->id_token_lifetime;
    add_rec(c, ZK_SETTINGS, "oidc", "settings/oidc", &s->base, -1, -1);
}

static void read_orgs(struct zctx *c, struct err *e, int *rc)
{
    char sql[768];
    _cleanup_(pg_result_freep) struct pg_result *pol = NULL;
    _cleanup_(pg_result_freep) struct pg_result *dom = NULL;
    _cleanup_(pg_result_freep) struct pg_result *r = NULL;

    snprintf(sql, sizeof sql,
             "SELECT resource_owner, must_be_domain, is_default FROM projections.%s_policies "
             "WHERE instance_id = $1",
             c->tn[T_LOGIN]);
    if ((*rc = query(c, sql, &pol, e)) < 0)
        return;
    snprintf(sql, sizeof sql,
             "SELECT resource_owner, name, is_primary FROM projections.%s_domains "
             "WHERE instance_id = $1 ORDER BY resource_owner COLLATE \"C\", is_primary DESC, "
             "name COLLATE \"C\"",
             c->tn[T_LOGIN]);
    if ((*rc = query(c, sql, &dom, e)) < 0)
        return;
    snprintf(sql, sizeof sql,
             "SELECT id, name, primary_domain, org_state, " EPOCH("creation_date") ", " EPOCH(
                 "change_date") " FROM projections.%s WHERE instance_id = $1 "
                                "ORDER BY id COLLATE \"C\"",
             c->tn[T_ORGS]);
    if ((*rc = query(c, sql, &r, e)) < 0)
        return;
    c->read_kind[ZK_ORG] = true;

    bool have_default = false, dflt = false;
    for (size_t i = 0; i < pg_nrows(pol); i++)
        if (pg_bool(pol, i, 2)) {
            have_default = true;
            dflt = pg_bool(pol, i, 1);
        }
    for (size_t i = 0; i < pg_nrows(r); i++) {
        c->found_org++;
        const char *id = pg_text(r, i, 0);
        Koderid__V2__Org *o = zalloc(c, sizeof *o);
        struct zorg *zo = zalloc(c, sizeof *zo);
        if (!o || !zo)
            return;
        koderid__v2__org__init(o);
        o->id = zdup(c, id);
        o->name = zdup(c, pg_text(r, i, 1));
        o->primary_domain = zdup(c, pg_text(r, i, 2));
        o->state = (int32_t)pg_int(r, i, 3, 0);
        o->created_at = pg_int(r, i, 4, 0);
        o->changed_at = pg_int(r, i, 5, 0);
        o->source = SOURCE;
        /* v1's login_names3: the org's own policy, else the instance default. */
        bool mbd = dflt, own = false;
        for (size_t k = 0; k < pg_nrows(pol); k++)
            if (!pg_bool(pol, k, 2) && strcmp(pg_text(pol, k, 0), id) == 0) {
                mbd = pg_bool(pol, k, 1);
                own = true;
            }
        if (!own && !have_default)
            warn(c, "org %s: no domain policy found; login names are the bare usernames", id);
        o->must_be_domain = mbd;
        zo->id = o->id;
        zo->must_be_domain = mbd;
        for (size_t k = 0; k < pg_nrows(dom); k++)
            if (strcmp(pg_text(dom, k, 0), id) == 0)
                zo->ndoms++;
        zo->doms = zo->ndoms ? zalloc(c, zo->ndoms * sizeof *zo->doms) : NULL;
        size_t d = 0;
        for (size_t k = 0; k < pg_nrows(dom) && zo->doms; k++)
            if (strcmp(pg_text(dom, k, 0), id) == 0)
                zo->doms[d++] =
                    (struct zmap_domain){zdup(c, pg_text(dom, k, 1)), pg_bool(dom, k, 2)};
        if (!zmap_enum_name(ZMAP_ORG_STATE, o->state))
            warn(c, "org %s: state %d is not active/inactive; imported as is", id, o->state);
        const char *key = mkkey(c, "org", id, "org/", id, NULL);
        if (!key) {
            idmap_add(c, &c->orgs, id, -1, zo);
            continue;
        }
        long idx = add_rec(c, ZK_ORG, id, key, &o->base, -1, -1);
        idmap_add(c, &c->orgs, id, idx, zo);
    }
}

/* v1's password complexity policies: the instance default (is_default) and orgs' own. */
static void read_pw_policies(struct zctx *c, struct err *e, int *rc)
{
    _cleanup_(pg_result_freep) struct pg_result *r = NULL;
    if (!select_rows(c, T_PWCOMPLEX, ZK_PWPOLICY,
                     "resource_owner, is_default, min_length, has_lowercase, has_uppercase, "
                     "has_number, has_symbol, owner_removed",
                     "is_default DESC, resource_owner COLLATE \"C\"", &r, e, rc))
        return;
    bool have_default = false;
    for (size_t i = 0; i < pg_nrows(r); i++) {
        const char *owner = pg_text(r, i, 0);
        bool def = pg_bool(r, i, 1);
        const char *id = def ? "default" : zprintf(c, "org/%s", owner);
        long parent = -1;
        if (pg_bool(r, i, 7))
            continue; /* its org was removed: v1 no longer applies it */
        if (def && have_default) {
            warn(c, "more than one default password complexity policy; the first is used");
            continue;
        }
        if (!def) {
            struct idpair *op = idmap_get(&c->orgs, owner);
            if (!op || op->idx < 0) {
                skip(c, "password_policy", owner, NULL, "its org %s is not imported", owner);
                continue;
            }
            parent = op->idx;
        }
        long long min = pg_int(r, i, 2, 0);
        if (min < 0 || min > PW_MIN_LENGTH_MAX) {
            warn(c, "password policy %s: min_length %lld is out of range 0..%d; %d is used", id,
                 min, PW_MIN_LENGTH_MAX, PW_MIN_LENGTH_MAX);
            min = PW_MIN_LENGTH_MAX;
        }
        Koderid__V2__PasswordPolicy *p = zalloc(c, sizeof *p);
        if (!p)
            return;
        koderid__v2__password_policy__init(p);
        p->org_id = def ? (char *)protobuf_c_empty_string : zdup(c, owner);
        p->min_length = (uint32_t)min;
        p->has_lowercase = pg_bool(r, i, 3);
        p->has_uppercase = pg_bool(r, i, 4);
        p->has_number = pg_bool(r, i, 5);
        p->has_symbol = pg_bool(r, i, 6);
        p->source = SOURCE;
        const char *key = def ? "pwpolicy/default"
                              : mkkey(c, "password_policy", owner, "pwpolicy/org/", owner, NULL);
        if (key)
            add_rec(c, ZK_PWPOLICY, id, key, &p->base, parent, -1);
        have_default |= def;
    }
}

static void read_projects(struct zctx *c, struct err *e, int *rc)
{
    _cleanup_(pg_result_freep) struct pg_result *r = NULL;
    if (!select_rows(c, T_PROJECTS, ZK_PROJECT,
                     "id, resource_owner, name, state, project_role_assertion, "
                     "project_role_check, has_project_check, private_labeling_setting, " EPOCH(
                         "creation_date") ", " EPOCH("change_date"),
                     "id COLLATE \"C\"", &r, e, rc))
        return;
    for (size_t i = 0; i < pg_nrows(r); i++) {
        c->found_project++;
        const char *id = pg_text(r, i, 0), *org = pg_text(r, i, 1), *name = pg_text(r, i, 2);
        struct idpair *op = idmap_get(&c->orgs, org);
        if (!op || op->idx < 0) {
            skip(c, "project", id, name, "its org %s is not imported", org);
            idmap_add(c, &c->projects, id, -1, NULL);
            continue;
        }
        Koderid__V2__Project *p = zalloc(c, sizeof *p);
        if (!p)
            return;
        koderid__v2__project__init(p);
        p->id = zdup(c, id);
        p->org_id = zdup(c, org);
        p->name = zdup(c, name);
        p->state = (int32_t)pg_int(r, i, 3, 0);
        p->project_role_assertion = pg_bool(r, i, 4);
        p->project_role_check = pg_bool(r, i, 5);
        p->has_project_check = pg_bool(r, i, 6);
        p->private_labeling_setting = (int32_t)pg_int(r, i, 7, 0);
        p->created_at = pg_int(r, i, 8, 0);
        p->changed_at = pg_int(r, i, 9, 0);
        p->source = SOURCE;
        const char *key = mkkey(c, "project", id, "project/", id, NULL);
        long idx = key ? add_rec(c, ZK_PROJECT, id, key, &p->base, op->idx, -1) : -1;
        idmap_add(c, &c->projects, id, idx, p);
    }
}

static void read_roles(struct zctx *c, struct err *e, int *rc)
{
    _cleanup_(pg_result_freep) struct pg_result *r = NULL;
    if (!select_rows(c, T_ROLES, ZK_ROLE,
                     "project_id, role_key, display_name, group_name, resource_owner",
                     "project_id COLLATE \"C\", role_key COLLATE \"C\"", &r, e, rc))
        return;
    for (size_t i = 0; i < pg_nrows(r); i++) {
        const char *pid = pg_text(r, i, 0), *rk = pg_text(r, i, 1);
        char *id = zprintf(c, "%s/%s", pid, rk);
        struct idpair *pp = idmap_get(&c->projects, pid);
        if (!pp || pp->idx < 0) {
            skip(c, "role", id, NULL, "its project %s is not imported", pid);
            continue;
        }
        Koderid__V2__ProjectRole *ro = zalloc(c, sizeof *ro);
        if (!ro)
            return;
        koderid__v2__project_role__init(ro);
        ro->project_id = zdup(c, pid);
        ro->key = zdup(c, rk);
        ro->display_name = zdup(c, pg_text(r, i, 2));
        ro->group_name = zdup(c, pg_text(r, i, 3));
        ro->org_id = zdup(c, pg_text(r, i, 4));
        ro->source = SOURCE;
        const char *key = mkkey(c, "role", id, "role/", pid, rk);
        if (key)
            add_rec(c, ZK_ROLE, id, key, &ro->base, pp->idx, -1);
    }
}

/* A hash for v2 from a v1 column (encoded hash text, or a legacy CryptoValue JSON). Returns
 * the arena copy to store ("" when none or unusable, which is then reported). */
static char *import_hash(struct zctx *c, const char *kind, const char *id, const char *name,
                         const char *what, const char *stored, char **ret_raw)
{
    _cleanup_free_ char *legacy = NULL;
    struct err he = {0};
    if (ret_raw)
        *ret_raw = (char *)protobuf_c_empty_string;
    if (!stored || !*stored)
        return (char *)protobuf_c_empty_string;
    if (stored[0] == '{') {
        if (zmap_cryptovalue_hash(stored, &legacy, &he) < 0) {
            skip(c, kind, id, name, "%s not imported: %s", what, he.msg);
            return (char *)protobuf_c_empty_string;
        }
        stored = legacy;
    }
    if (ret_raw)
        *ret_raw = zdup(c, stored);
    enum zmap_hash_fmt fmt;
    if (zmap_hash_check(stored, &fmt, &he) < 0) {
        skip(c, kind, id, name, "%s not imported: %s", what, he.msg);
        return (char *)protobuf_c_empty_string;
    }
    return zdup(c, stored);
}

static bool enums_ok(struct zctx *c, const char *id, const char *name, enum zmap_enum kind,
                     const int32_t *v, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!zmap_enum_name(kind, v[i])) {
            skip(c, "app", id, name, "unknown %s value %d", what, v[i]);
            return false;
        }
    return true;
}

static void read_apps(struct zctx *c, struct err *e, int *rc)
{
    char sql[3072];
    char login_version[128] = "NULL::smallint";
    char saml_join[256] = "";
    char saml_cols[64] = "NULL::text, NULL::text";
    _cleanup_(pg_result_freep) struct pg_result *cols = NULL;
    _cleanup_(pg_result_freep) struct pg_result *r = NULL;
    const char *a = c->tn[T_APPS];

    const char *cp[1] = {zprintf(c, "%s_oidc_configs", a)};
    if ((*rc = pg_query(c->pg,
                        "SELECT 1 FROM information_schema.columns WHERE table_schema = "
                        "'projections' AND table_name = $1 AND column_name = 'login_version'",
                        1, cp, &cols, e)) < 0)
        return;
    if (pg_nrows(cols))
        snprintf(login_version, sizeof login_version, "o.login_version");
    char saml[96];
    snprintf(saml, sizeof saml, "%s_saml_configs", a);
    if (has_table(c, saml)) {
        snprintf(saml_join, sizeof saml_join,
                 "LEFT JOIN projections.%s s ON s.instance_id = a.instance_id AND s.app_id = a.id",
                 saml);
        snprintf(saml_cols, sizeof saml_cols, "s.app_id, s.entity_id");
    }
    snprintf(
        sql, sizeof sql,
        "SELECT a.id, a.name, a.project_id, a.resource_owner, a.state, " EPOCH(
            "a.creation_date") ", " EPOCH("a.change_date") ", "
                                                           "o.app_id, o.client_id, "
                                                           "o.client_secret, o.redirect_uris, "
                                                           "o.response_types, "
                                                           "o.grant_types, o.application_type, "
                                                           "o.auth_method_type, "
                                                           "o.post_logout_redirect_uris, "
                                                           "o.is_dev_mode, o.access_token_type, "
                                                           "o.access_token_role_assertion, "
                                                           "o.id_token_role_assertion, "
                                                           "o.id_token_userinfo_assertion, "
                                                           "o.clock_skew, o.additional_origins, "
                                                           "o.skip_native_app_success_page, "
                                                           "o.back_channel_logout_uri, %s, "
                                                           "o.version, "
                                                           "p.app_id, p.client_id, "
                                                           "p.client_secret, p.auth_method, %s "
                                                           "FROM projections.%s a "
                                                           "LEFT JOIN projections.%s_oidc_configs "
                                                           "o ON o.instance_id = a.instance_id AND "
                                                           "o.app_id = a.id "
                                                           "LEFT JOIN projections.%s_api_configs p "
                                                           "ON p.instance_id = a.instance_id AND "
                                                           "p.app_id = a.id "
                                                           "%s WHERE a.instance_id = $1 ORDER BY "
                                                           "a.id COLLATE \"C\"",
        login_version, saml_cols, a, a, a, saml_join);
    if ((*rc = query(c, sql, &r, e)) < 0)
        return;
    c->read_kind[ZK_CLIENT] = true;

    for (size_t i = 0; i < pg_nrows(r); i++) {
        c->found_app++;
        const char *id = pg_text(r, i, 0), *name = pg_text(r, i, 1), *pid = pg_text(r, i, 2);
        bool is_oidc = !pg_isnull(r, i, 7), is_api = !pg_isnull(r, i, 27),
             is_saml = !pg_isnull(r, i, 31);
        struct idpair *pp = idmap_get(&c->projects, pid);
        if (is_saml && !is_oidc && !is_api) {
            skip(c, "app", id, name, "SAML application (entity id '%.200s'): v2 serves OIDC only",
                 pg_text(r, i, 32));
            idmap_add(c, &c->apps, id, -1, NULL);
            continue;
        }
        if (!is_oidc && !is_api) {
            skip(c, "app", id, name, "application without an OIDC, API or SAML configuration");
            idmap_add(c, &c->apps, id, -1, NULL);
            continue;
        }
        if (!pp || pp->idx < 0) {
            skip(c, "app", id, name, "its project %s is not imported", pid);
            idmap_add(c, &c->apps, id, -1, NULL);
            continue;
        }
        const char *cid = pg_text(r, i, is_oidc ? 8 : 28);
        enum zmap_cid_form form = zmap_client_id_form(cid);
        if (form == ZMAP_CID_INVALID) {
            skip(c, "app", id, name, "client_id empty, too long or with control characters");
            idmap_add(c, &c->apps, id, -1, NULL);
            continue;
        }
        Koderid__V2__Client *cl = zalloc(c, sizeof *cl);
        if (!cl)
            return;
        koderid__v2__client__init(cl);
        cl->client_id = zdup(c, cid);
        cl->app_id = zdup(c, id);
        cl->project_id = zdup(c, pid);
        cl->org_id = zdup(c, pg_text(r, i, 3));
        cl->name = zdup(c, name);
        long long st = pg_int(r, i, 4, 0);
        if (!zmap_enum_name(ZMAP_APP_STATE, st))
            warn(c, "app %s: state %lld is neither active nor inactive: imported disabled", id, st);
        cl->state = st == 1 ? 1 : 2; /* anything but active is refused */
        cl->created_at = pg_int(r, i, 5, 0);
        cl->changed_at = pg_int(r, i, 6, 0);
        cl->source = SOURCE;

        if (is_oidc) {
            struct err pe = {0};
            struct zmap_strv ru = {0}, plu = {0}, ao = {0};
            int32_t *rt = NULL, *gt = NULL;
            size_t nrt = 0, ngt = 0;
            bool ok = true;
            if (pg_int(r, i, 26, 0) != 0) {
                skip(c, "app", id, name, "unknown OIDC config version %lld", pg_int(r, i, 26, 0));
                ok = false;
            }
            if (ok && (zmap_parse_text_array(pg_value(r, i, 10), &ru, &pe) < 0 ||
                       zmap_parse_int_array(pg_value(r, i, 11), &rt, &nrt, &pe) < 0 ||
                       zmap_parse_int_array(pg_value(r, i, 12), &gt, &ngt, &pe) < 0 ||
                       zmap_parse_text_array(pg_value(r, i, 15), &plu, &pe) < 0 ||
                       zmap_parse_text_array(pg_value(r, i, 22), &ao, &pe) < 0)) {
                skip(c, "app", id, name, "%s", pe.msg);
                ok = false;
            }
            for (size_t k = 0; ok && k < ru.n; k++)
                if (!ru.v[k]) {
                    skip(c, "app", id, name, "NULL in redirect_uris");
                    ok = false;
                }
            int32_t at = (int32_t)pg_int(r, i, 13, -1), am = (int32_t)pg_int(r, i, 14, -1),
                    tt = (int32_t)pg_int(r, i, 17, -1);
            ok = ok && enums_ok(c, id, name, ZMAP_RESPONSE_TYPE, rt, nrt, "response_type") &&
                 enums_ok(c, id, name, ZMAP_GRANT_TYPE, gt, ngt, "grant_type") &&
                 enums_ok(c, id, name, ZMAP_APP_TYPE, &at, 1, "application_type") &&
                 enums_ok(c, id, name, ZMAP_AUTH_METHOD, &am, 1, "auth_method_type") &&
                 enums_ok(c, id, name, ZMAP_TOKEN_TYPE, &tt, 1, "access_token_type");
            if (ok) {
                cl->kind = KODERID__V2__CLIENT_KIND__CLIENT_OIDC;
                cl->secret_hash = import_hash(c, "client_secret", cid, name, "client secret",
                                              pg_value(r, i, 9), NULL);
                cl->redirect_uris = zdupv(c, &ru, &cl->n_redirect_uris);
                cl->post_logout_redirect_uris = zdupv(c, &plu, &cl->n_post_logout_redirect_uris);
                cl->additional_origins = zdupv(c, &ao, &cl->n_additional_origins);
                if (nrt) {
                    cl->response_types = zalloc(c, nrt * sizeof *rt);
                    if (cl->response_types)
                        memcpy(cl->response_types, rt, nrt * sizeof *rt);
                    cl->n_response_types = nrt;
                }
                if (ngt) {
                    cl->grant_types = zalloc(c, ngt * sizeof *gt);
                    if (cl->grant_types)
                        memcpy(cl->grant_types, gt, ngt * sizeof *gt);
                    cl->n_grant_types = ngt;
                }
                cl->app_type = at;
                cl->auth_method = am;
                cl->dev_mode = pg_bool(r, i, 16);
                cl->access_token_type = tt;
                cl->access_token_role_assertion = pg_bool(r, i, 18);
                cl->id_token_role_assertion = pg_bool(r, i, 19);
                cl->id_token_userinfo_assertion = pg_bool(r, i, 20);
                cl->clock_skew_ms = zmap_ns_to_ms(pg_int(r, i, 21, 0));
                cl->skip_native_app_success_page = pg_bool(r, i, 23);
                cl->back_channel_logout_uri = zdup(c, pg_text(r, i, 24));
                cl->login_version = (int32_t)pg_int(r, i, 25, 0);
                if ((am == 0 || am == 1) && !*cl->secret_hash)
                    warn(c, "client %s uses client_secret_%s but has no usable secret", cid,
                         am == 0 ? "basic" : "post");
                c->n_oidc++;
            }
            zmap_strv_release(&ru);
            zmap_strv_release(&plu);
            zmap_strv_release(&ao);
            free(rt);
            free(gt);
            if (!ok) {
                idmap_add(c, &c->apps, id, -1, NULL);
                continue;
            }
        } else {
            long long v1m = pg_int(r, i, 30, -1);
            int am = zmap_api_auth_method(v1m);
            if (am < 0) {
                skip(c, "app", id, name, "unknown API auth_method %lld", v1m);
                idmap_add(c, &c->apps, id, -1, NULL);
                continue;
            }
            cl->kind = KODERID__V2__CLIENT_KIND__CLIENT_API;
            cl->auth_method = am;
            cl->secret_hash = import_hash(c, "client_secret", cid, name, "client secret",
                                          pg_value(r, i, 29), NULL);
            if (am == 0 && !*cl->secret_hash)
                warn(c, "API client %s uses basic auth but has no usable secret", cid);
            c->n_api++;
        }
        c->cid_forms[form]++;
        const char *key = mkkey(c, "app", id, "client/", cid, NULL);
        long idx = key ? add_rec(c, ZK_CLIENT, cid, key, &cl->base, pp->idx, -1) : -1;
        idmap_add(c, &c->apps, id, idx, cl->client_id);
    }
}

static void read_passwords(struct zctx *c, struct err *e, int *rc)
{
    _cleanup_(pg_result_freep) struct pg_result *r = NULL;
    /* The last password-bearing event per user (ZITADEL.md 2.2). */
    if ((*rc = query(c,
                     "SELECT DISTINCT ON (aggregate_id) aggregate_id, event_type, "
                     "payload->>'encodedHash', (payload->'secret')::text "
                     "FROM eventstore.events2 WHERE instance_id = $1 AND aggregate_type = 'user' "
                     "AND event_type IN ('user.human.added', 'user.human.registered', "
                     "'user.added', 'user.selfregistered', 'user.human.password.changed', "
                     "'user.password.changed', 'user.human.password.hash.updated') "
                     "AND (coalesce(payload->>'encodedHash', '') <> '' "
                     "OR jsonb_typeof(payload->'secret') = 'object') "
                     "ORDER BY aggregate_id, sequence DESC",
                     &r, e)) < 0)
        return;
    for (size_t i = 0; i < pg_nrows(r); i++) {
        const char *h = pg_text(r, i, 2);
        if (*h)
            idmap_add(c, &c->pwd, pg_text(r, i, 0), 0, zdup(c, h));
        else
            idmap_add(c, &c->pwd, pg_text(r, i, 0), 0, zdup(c, pg_text(r, i, 3)));
    }
}

static void read_users(struct zctx *c, struct err *e, int *rc)
{
    char sql[3072];
    _cleanup_(pg_result_freep) struct pg_result *r = NULL;
    const char *u = c->tn[T_USERS];
    snprintf(
        sql, sizeof sql,
        "SELECT u.id, u.resource_owner, u.username, u.state, u.type, " EPOCH(
            "u.creation_date") ", " EPOCH("u.change_date") ", "
                                                           "h.user_id, h.first_name, h.last_name, "
                                                           "h.nick_name, h.display_name, "
                                                           "h.preferred_language, h.gender, "
                                                           "h.email, h.is_email_verified, h.phone, "
                                                           "h.is_phone_verified, "
                                                           "h.password_change_required, " EPOCH(
                                                               "h.password_changed") ", "
                                                                                     "m.user_id, "
                                                                                     "m.name, "
                                                                                     "m."
                                                                                     "description, "
                                                                                     "m.secret, "
                                                                                     "m.access_"
                                                                                     "token_type, "
                                                                                     "ln.user_name "
                                                                                     "FROM "
                                                                                     "projections.%"
                                                                                     "s u "
                                                                                     "LEFT JOIN "
                                                                                     "projections.%"
                                                                                     "s_humans h "
                                                                                     "ON "
                                                                                     "h.instance_"
                                                                                     "id = "
                                                                                     "u.instance_"
                                                                                     "id AND "
                                                                                     "h.user_id = "
                                                                                     "u.id "
                                                                                     "LEFT JOIN "
                                                                                     "projections.%"
                                                                                     "s_machines m "
                                                                                     "ON "
                                                                                     "m.instance_"
                                                                                     "id = "
                                                                                     "u.instance_"
                                                                                     "id AND "
                                                                                     "m.user_id = "
                                                                                     "u.id "
                                                                                     "LEFT JOIN "
                                                                                     "projections.%"
                                                                                     "s_users ln "
                                                                                     "ON "
                                                                                     "ln.instance_"
                                                                                     "id = "
                                                                                     "u.instance_"
                                                                                     "id AND ln.id "
                                                                                     "= u.id "
                                                                                     "WHERE "
                                                                                     "u.instance_"
                                                                                     "id = $1 "
                                                                                     "ORDER BY "
                                                                                     "u.id COLLATE "
                                                                                     "\"C\"",
        u, u, u, c->tn[T_LOGIN]);
    if ((*rc = query(c, sql, &r, e)) < 0)
        return;
    c->read_kind[ZK_USER] = true;

    for (size_t i = 0; i < pg_nrows(r); i++) {
        c->found_user++;
        const char *id = pg_text(r, i, 0), *org = pg_text(r, i, 1), *uname = pg_text(r, i, 2);
        long long type = pg_int(r, i, 4, 0);
        bool human = !pg_isnull(r, i, 7), machine = !pg_isnull(r, i, 20);
        struct idpair *op = idmap_get(&c->orgs, org);
        if (!op || op->idx < 0) {
            skip(c, "user", id, uname, "its org %s is not imported", org);
            idmap_add(c, &c->users, id, -1, NULL);
            continue;
        }
        if (!(type == 1 && human) && !(type == 2 && machine)) {
            skip(c, "user", id, uname, "user type %lld without its %s row", type,
                 type == 1   ? "human"
                 : type == 2 ? "machine"
                             : "known");
            idmap_add(c, &c->users, id, -1, NULL);
            continue;
        }
        Koderid__V2__User *us = zalloc(c, sizeof *us);
        if (!us)
            return;
        koderid__v2__user__init(us);
        us->id = zdup(c, id);
        us->org_id = zdup(c, org);
        us->username = zdup(c, uname);
        us->state = (int32_t)pg_int(r, i, 3, 0);
        us->type = (int32_t)type;
        us->created_at = pg_int(r, i, 5, 0);
        us->changed_at = pg_int(r, i, 6, 0);
        us->source = SOURCE;
        if (!zmap_enum_name(ZMAP_USER_STATE, us->state))
            warn(c, "user %s: unknown state %d, imported as is (cannot sign in)", id, us->state);

        /* Login names as login_names3 computes them. */
        const struct zorg *zo = op->p;
        const char *lname = pg_isnull(r, i, 25) ? uname : pg_text(r, i, 25);
        struct zmap_strv names = {0};
        struct err le = {0};
        if (zmap_login_names(lname, zo->must_be_domain, zo->doms, zo->ndoms, &names, &le) < 0) {
            skip(c, "user", id, uname, "no login name: %s", le.msg);
            idmap_add(c, &c->users, id, -1, NULL);
            continue;
        }
        us->login_names = zdupv(c, &names, &us->n_login_names);
        us->login_name = us->n_login_names ? us->login_names[0] : us->username;
        zmap_strv_release(&names);

        if (human) {
            c->n_human++;
            us->first_name = zdup(c, pg_text(r, i, 8));
            us->last_name = zdup(c, pg_text(r, i, 9));
            us->nick_name = zdup(c, pg_text(r, i, 10));
            us->display_name = zdup(c, pg_text(r, i, 11));
            us->preferred_language = zdup(c, pg_text(r, i, 12));
            long long g = pg_int(r, i, 13, 0);
            us->gender = zmap_enum_name(ZMAP_GENDER, g) ? (int32_t)g : 0;
            us->email = zdup(c, pg_text(r, i, 14));
            us->email_verified = pg_bool(r, i, 15);
            us->phone = zdup(c, pg_text(r, i, 16));
            us->phone_verified = pg_bool(r, i, 17);
            us->password_change_required = pg_bool(r, i, 18);
            us->password_changed_at = pg_int(r, i, 19, 0);
            struct idpair *pw = idmap_get(&c->pwd, id);
            char *raw = NULL;
            us->password_hash = import_hash(c, "password", id, us->login_name, "password hash",
                                            pw ? pw->p : NULL, &raw);
            us->v1_password_hash = raw;
        } else {
            c->n_machine++;
            us->machine_name = zdup(c, pg_text(r, i, 21));
            us->description = zdup(c, pg_text(r, i, 22));
            us->secret_hash = import_hash(c, "machine_secret", id, us->login_name, "machine secret",
                                          pg_value(r, i, 23), NULL);
            long long tt = pg_int(r, i, 24, 0);
            if (!zmap_enum_name(ZMAP_TOKEN_TYPE, tt)) {
                warn(c, "user %s: unknown access_token_type %lld, bearer used", id, tt);
                tt = 0;
            }
            us->access_token_type = (int32_t)tt;
        }
        const char *key = mkkey(c, "user", id, "user/", id, NULL);
        long idx = key ? add_rec(c, ZK_USER, id, key, &us->base, op->idx, -1) : -1;
        idmap_add(c, &c->users, id, idx, us);
    }
}

static void read_grants(struct zctx *c, struct err *e, int *rc)
{
    _cleanup_(pg_result_freep) struct pg_result *r = NULL;
    if (!select_rows(c, T_GRANTS, ZK_GRANT,
                     "id, user_id, project_id, resource_owner, roles, state, grant_id",
                     "user_id COLLATE \"C\", id COLLATE \"C\"", &r, e, rc))
        return;
    for (size_t i = 0; i < pg_nrows(r); i++) {
        const char *id = pg_text(r, i, 0), *uid = pg_text(r, i, 1), *pid = pg_text(r, i, 2);
        struct idpair *up = idmap_get(&c->users, uid), *pp = idmap_get(&c->projects, pid);
        if (!up || up->idx < 0 || !pp || pp->idx < 0) {
            skip(c, "grant", id, NULL, "its %s is not imported",
                 (!up || up->idx < 0) ? "user" : "project");
            continue;
        }
        struct zmap_strv roles = {0};
        struct err pe = {0};
        if (zmap_parse_text_array(pg_value(r, i, 4), &roles, &pe) < 0) {
            skip(c, "grant", id, NULL, "roles: %s", pe.msg);
            continue;
        }
        Koderid__V2__UserGrant *g = zalloc(c, sizeof *g);
        if (!g) {
            zmap_strv_release(&roles);
            return;
        }
        koderid__v2__user_grant__init(g);
        g->id = zdup(c, id);
        g->user_id = zdup(c, uid);
        g->project_id = zdup(c, pid);
        g->org_id = zdup(c, pg_text(r, i, 3));
        g->roles = zdupv(c, &roles, &g->n_roles);
        zmap_strv_release(&roles);
        g->state = (int32_t)pg_int(r, i, 5, 0);
        g->project_grant_id = zdup(c, pg_text(r, i, 6));
        g->source = SOURCE;
        const char *key = mkkey(c, "grant", id, "grant/", uid, id);
        if (key)
            add_rec(c, ZK_GRANT, id, key, &g->base, up->idx, pp->idx);
    }
}

static void read_authn_keys(struct zctx *c, struct err *e, int *rc)
{
    _cleanup_(pg_result_freep) struct pg_result *r = NULL;
    if (!select_rows(c, T_AUTHN, ZK_AUTHNKEY,
                     "id, object_id, encode(public_key, 'hex'), " EPOCH("expiration") ", enabled",
                     "id COLLATE \"C\"", &r, e, rc))
        return;
    for (size_t i = 0; i < pg_nrows(r); i++) {
        const char *kid = pg_text(r, i, 0), *obj = pg_text(r, i, 1);
        struct idpair *ap = idmap_get(&c->apps, obj), *up = idmap_get(&c->users, obj);
        const char *owner = NULL;
        long pidx = -1;
        int type = 0;
        if (ap && ap->idx >= 0) {
            owner = ap->p; /* the app's client_id */
            pidx = ap->idx;
        } else if (up && up->idx >= 0) {
            const Koderid__V2__User *us = up->p;
            if (us->type != 2) {
                skip(c, "authn_key", kid, NULL, "owner %s is not a machine user", obj);
                continue;
            }
            owner = us->id;
            pidx = up->idx;
            type = 1;
        } else {
            skip(c, "authn_key", kid, NULL, "its owner %s (app or machine user) is not imported",
                 obj);
            continue;
        }
        _cleanup_free_ unsigned char *raw = NULL;
        _cleanup_free_ char *pem = NULL;
        size_t rawlen = 0, pemlen = 0;
        _cleanup_free_ char *hex = NULL;
        struct err ke = {0};
        hex = malloc(strlen(pg_text(r, i, 2)) + 3);
        if (!hex) {
            c->oom = true;
            return;
        }
        sprintf(hex, "\\x%s", pg_text(r, i, 2));
        if (zmap_bytea_decode(hex, &raw, &rawlen, &ke) < 0 ||
            zmap_pubkey_pem(raw, rawlen, &pem, &pemlen, &ke) < 0) {
            skip(c, "authn_key", kid, NULL, "%s", ke.msg);
            continue;
        }
        Koderid__V2__AuthnKey *k = zalloc(c, sizeof *k);
        unsigned char *pk = zalloc(c, pemlen + 1);
        if (!k || !pk)
            return;
        koderid__v2__authn_key__init(k);
        k->id = zdup(c, kid);
        k->object_id = zdup(c, owner);
        k->object_type = type;
        memcpy(pk, pem, pemlen);
        k->public_key.data = pk;
        k->public_key.len = pemlen;
        k->expires_at = pg_int(r, i, 3, 0);
        k->enabled = pg_bool(r, i, 4);
        k->source = SOURCE;
        const char *key = mkkey(c, "authn_key", kid, "authnkey/", owner, kid);
        if (key)
            add_rec(c, ZK_AUTHNKEY, kid, key, &k->base, pidx, -1);
    }
}

static void read_pats(struct zctx *c, struct err *e, int *rc)
{
    _cleanup_(pg_result_freep) struct pg_result *r = NULL;
    if (!select_rows(
            c, T_PATS, ZK__N,
            "id, user_id, to_char(expiration AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), " EPOCH("expiration") ", scopes, owner_removed",
            "id COLLATE \"C\"", &r, e, rc))
        return;
    for (size_t i = 0; i < pg_nrows(r); i++) {
        c->n_pat++;
        const char *id = pg_text(r, i, 0), *uid = pg_text(r, i, 1);
        struct idpair *up = idmap_get(&c->users, uid);
        const Koderid__V2__User *us = up ? up->p : NULL;
        bool expired = pg_int(r, i, 3, 0) <= c->now;
        json_t *o =
            skip(c, "personal_access_token", id, NULL, "%s",
                 pg_bool(r, i, 5) ? "its owner was removed; not carried over"
                 : expired        ? "expired; not carried over"
                           : "not carried over (v1 stores no hash of it and only v1's master "
                             "key could read it): issue a new one");
        if (!o)
            continue;
        jset(c, o, "user_id", json_string(uid));
        jset(c, o, "login_name", json_string(us ? us->login_name : ""));
        jset(c, o, "expires", json_string(pg_text(r, i, 2)));
        jset(c, o, "expired", json_boolean(expired));
        struct zmap_strv sc = {0};
        json_t *ja = json_array();
        if (zmap_parse_text_array(pg_value(r, i, 4), &sc, NULL) == 0)
            for (size_t k = 0; k < sc.n; k++)
                if (sc.v[k])
                    jpush(c, ja, json_string(sc.v[k]));
        zmap_strv_release(&sc);
        jset(c, o, "scopes", ja);
    }
}

static void add_sigkey(struct zctx *c, const char *kid, const char *alg, const char *pem,
                       size_t pemlen, int64_t created, int64_t publish_until)
{
    Koderid__V2__SigningKey *k = zalloc(c, sizeof *k);
    unsigned char *pk = zalloc(c, pemlen + 1);
    if (!k || !pk)
        return;
    koderid__v2__signing_key__init(k);
    k->kid = zdup(c, kid);
    k->alg = zdup(c, alg);
    memcpy(pk, pem, pemlen);
    k->public_pem.data = pk;
    k->public_pem.len = pemlen;
    /* private_enc stays empty: an imported key verifies, it never signs. */
    k->created_at = created;
    k->publish_until = publish_until;
    k->source = SOURCE;
    const char *key = mkkey(c, "signing_key", kid, "sigkey/", kid, NULL);
    if (key)
        add_rec(c, ZK_SIGKEY, kid, key, &k->base, -1, -1);
}

static void read_keys(struct zctx *c, struct err *e, int *rc)
{
    char sql[768];
    if (!c->tv[T_KEYS] && !c->tv[T_WEBKEYS])
        return;
    c->read_kind[ZK_SIGKEY] = true;
    if (c->tv[T_KEYS]) {
        _cleanup_(pg_result_freep) struct pg_result *r = NULL;
        snprintf(sql, sizeof sql,
                 "SELECT k.id, k.algorithm, encode(p.key, 'hex'), " EPOCH("p.expiry") ", " EPOCH(
                     "k.creation_date") ", "
                                        "to_char(p.expiry AT TIME ZONE 'UTC', "
                                        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                                        "FROM projections.%s k JOIN projections.%s_public p "
                                        "ON p.instance_id = k.instance_id AND p.id = k.id "
                                        "WHERE k.instance_id = $1 AND k.use = 0 ORDER BY k.id "
                                        "COLLATE \"C\"",
                 c->tn[T_KEYS], c->tn[T_KEYS]);
        if ((*rc = query(c, sql, &r, e)) < 0)
            return;
        for (size_t i = 0; i < pg_nrows(r); i++) {
            const char *kid = pg_text(r, i, 0), *alg = pg_text(r, i, 1);
            int64_t expiry = pg_int(r, i, 3, 0);
            if (expiry <= c->now) {
                skip(c, "signing_key", kid, NULL,
                     "expired %s: v1 no longer publishes it, no token it signed is valid",
                     pg_text(r, i, 5));
                continue;
            }
            if (!*alg)
                alg = "RS256";
            if (strcmp(alg, "RS256") && strcmp(alg, "RS384") && strcmp(alg, "RS512") &&
                strcmp(alg, "ES256") && strcmp(alg, "ES384") && strcmp(alg, "ES512")) {
                skip(c, "signing_key", kid, NULL, "algorithm '%.20s' not supported", alg);
                continue;
            }
            _cleanup_free_ char *hex = NULL;
            _cleanup_free_ unsigned char *raw = NULL;
            _cleanup_free_ char *pem = NULL;
            size_t rawlen = 0, pemlen = 0;
            struct err ke = {0};
            if (asprintf(&hex, "\\x%s", pg_text(r, i, 2)) < 0) {
                hex = NULL;
                c->oom = true;
                return;
            }
            if (zmap_bytea_decode(hex, &raw, &rawlen, &ke) < 0 ||
                zmap_pubkey_pem(raw, rawlen, &pem, &pemlen, &ke) < 0) {
                skip(c, "signing_key", kid, NULL, "%s", ke.msg);
                continue;
            }
            add_sigkey(c, kid, alg, pem, pemlen, pg_int(r, i, 4, 0), expiry);
        }
    }
    if (c->tv[T_WEBKEYS]) {
        _cleanup_(pg_result_freep) struct pg_result *r = NULL;
        _cleanup_(pg_result_freep) struct pg_result *act = NULL;
        if ((*rc = query(
                 c,
                 "SELECT " EPOCH("max(created_at)") ", to_char(max(created_at) AT TIME "
                                                    "ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                                                    "FROM eventstore.events2 "
                                                    "WHERE instance_id = $1",
                 &act, e)) < 0)
            return;
        c->last_activity = pg_int(act, 0, 0, 0);
        int64_t until = c->last_activity + c->token_lifetime_s + WEB_KEY_MARGIN_S;
        jset(c, c->root, "v1_last_activity", json_string(pg_text(act, 0, 1)));
        snprintf(sql, sizeof sql,
                 "SELECT key_id, state, public_key::text, " EPOCH(
                     "creation_date") " FROM projections.%s WHERE instance_id = $1 "
                                      "ORDER BY key_id COLLATE \"C\"",
                 c->tn[T_WEBKEYS]);
        if ((*rc = query(c, sql, &r, e)) < 0)
            return;
        for (size_t i = 0; i < pg_nrows(r); i++) {
            const char *kid = pg_text(r, i, 0);
            long long st = pg_int(r, i, 1, 0);
            if (st != 2 && st != 3) {
                const char *sn = zmap_enum_name(ZMAP_WEB_KEY_STATE, st);
                skip(c, "signing_key", kid, NULL, "web key in state %s: %s", sn ? sn : "unknown",
                     st == 1 ? "never signed a token" : "v1 does not publish it");
                continue;
            }
            if (until <= c->now) {
                skip(c, "signing_key", kid, NULL,
                     "web key: no token it signed can still be valid (v1's last activity "
                     "plus the longest token lifetime has passed)");
                continue;
            }
            _cleanup_free_ char *pem = NULL;
            _cleanup_free_ char *alg = NULL;
            _cleanup_free_ char *jkid = NULL;
            struct err ke = {0};
            if (zmap_jwk_to_pem(pg_text(r, i, 2), &pem, &alg, &jkid, &ke) < 0) {
                skip(c, "signing_key", kid, NULL, "web key: %s", ke.msg);
                continue;
            }
            if (*jkid && strcmp(jkid, kid) != 0)
                warn(c, "web key %s: its JWK names kid '%.60s'; the JWK's kid is used", kid, jkid);
            add_sigkey(c, *jkid ? jkid : kid, alg, pem, strlen(pem), pg_int(r, i, 3, 0), until);
        }
    }
}

/* What v1 holds that cannot move without its master key, counted for the report. */
static void read_not_carried(struct zctx *c, struct err *e, int *rc)
{
    json_t *nc = json_object();
    jset(c, c->root, "not_carried", nc);
    if (!nc)
        return;
    struct {
        const char *name;
        const char *sql;
    } q[4] = {
        {"opaque_access_tokens",
         "SELECT count(*) FROM auth.tokens WHERE instance_id = $1 AND NOT is_pat "
         "AND (expiration IS NULL OR expiration > now())"},
        {"refresh_tokens", "SELECT count(*) FROM auth.refresh_tokens WHERE instance_id = $1 "
                           "AND (expiration IS NULL OR expiration > now())"},
        {"oidc_sessions", "SELECT count(DISTINCT aggregate_id) FROM eventstore.events2 "
                          "WHERE instance_id = $1 AND aggregate_type = 'oidc_session'"},
        {"sessions", NULL},
    };
    char sess_sql[256];
    int best = 0;
    for (size_t i = 0; i < c->tables.n; i++) {
        int v = table_version(c->tables.v[i], "sessions", "");
        if (v > best)
            best = v;
    }
    if (best) {
        snprintf(sess_sql, sizeof sess_sql,
                 "SELECT count(*) FROM projections.sessions%d WHERE instance_id = $1", best);
        q[3].sql = sess_sql;
    }
    _cleanup_(pg_result_freep) struct pg_result *ex = NULL;
    if ((*rc = pg_query(c->pg,
                        "SELECT table_name::text FROM information_schema.tables WHERE "
                        "table_schema = 'auth' AND table_name IN ('tokens', 'refresh_tokens')",
                        0, NULL, &ex, e)) < 0)
        return;
    for (size_t i = 0; i < ARRAY_SIZE(q); i++) {
        if (!q[i].sql)
            continue;
        bool present = i >= 2;
        for (size_t k = 0; k < pg_nrows(ex) && !present; k++)
            present = strcmp(pg_text(ex, k, 0), i == 0 ? "tokens" : "refresh_tokens") == 0;
        if (!present)
            continue;
        _cleanup_(pg_result_freep) struct pg_result *r = NULL;
        if ((*rc = query(c, q[i].sql, &r, e)) < 0)
            return;
        jset(c, nc, q[i].name, json_integer(pg_int(r, 0, 0, 0)));
    }
    jset(c, nc, "note",
         json_string("v1's opaque access and refresh tokens, sessions and personal access "
                     "tokens are encrypted under v1's master key and are not carried over: "
                     "users sign in once more after cutover; v1's JWTs keep verifying through "
                     "the imported public keys"));
}

/* ---------------------------------------------------------------------------------------- */
/* planning */

static const char *msg_source(const ProtobufCMessage *m)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "source");
    if (!f || f->type != PROTOBUF_C_TYPE_STRING)
        return "";
    const char *s = *(const char *const *)((const char *)m + f->offset);
    return s ? s : "";
}

static int pack_alloc(const ProtobufCMessage *m, unsigned char **ret, size_t *ret_len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    unsigned char *b = malloc(n ? n : 1);
    if (!b)
        return -E_NOMEM;
    protobuf_c_message_pack(m, b);
    *ret = b;
    *ret_len = n;
    return 0;
}

/* v1 wins, except a password v2 changed (or upgraded) while v1's stayed what it was. */
static void merge_user(struct zctx *c, Koderid__V2__User *nu, const Koderid__V2__User *old)
{
    if (!*old->password_hash || strcmp(old->v1_password_hash, nu->v1_password_hash) != 0 ||
        strcmp(old->password_hash, nu->password_hash) == 0)
        return;
    nu->password_hash = zdup(c, old->password_hash);
    nu->password_change_required = old->password_change_required;
    nu->password_changed_at = old->password_changed_at;
}

/* Every name repo_user_put() indexes for @u. */
static size_t user_names(const Koderid__V2__User *u, const char **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < u->n_login_names && n < max; i++)
        out[n++] = u->login_names[i];
    if (n < max && u->username && *u->username)
        out[n++] = u->username;
    if (n < max && u->login_name && *u->login_name)
        out[n++] = u->login_name;
    return n;
}

#define MAX_NAMES 64

/* A login name of @u that a record not written by an import already signs in with. */
static int login_conflict(struct zctx *c, const Koderid__V2__User *u, char *why, size_t whylen,
                          struct err *e)
{
    const char *names[MAX_NAMES];
    size_t n = user_names(u, names, MAX_NAMES);
    for (size_t i = 0; i < n; i++) {
        char lower[REPO_KEY_MAX], key[REPO_KEY_MAX];
        repo_lower(names[i], lower, sizeof lower);
        if (repo_key(key, "login/%s", lower) < 0)
            continue;
        _cleanup_free_ char *owner = NULL;
        int r = repo_get_str(c->store, key, &owner, e);
        if (r == -E_NOTFOUND) {
            err_clear(e);
            continue;
        }
        if (r < 0)
            return r;
        if (strcmp(owner, u->id) == 0)
            continue;
        Koderid__V2__User *ou = NULL;
        r = repo_user_get(c->store, owner, &ou, e);
        if (r == -E_NOTFOUND) {
            err_clear(e);
            continue;
        }
        if (r < 0)
            return r;
        bool ours = strcmp(ou->source, SOURCE) == 0;
        koderid__v2__user__free_unpacked(ou, NULL);
        if (!ours) {
            snprintf(why, whylen, "login name '%s' belongs to user %s created in v2", names[i],
                     owner);
            return 1;
        }
    }
    return 0;
}

static int plan_one(struct zctx *c, struct zrec *rc, struct err *e)
{
    for (int k = 0; k < 2; k++) {
        long p = rc->parent[k];
        if (p >= 0 && c->recs[p].act == ZA_CONFLICT) {
            rc->act = ZA_CONFLICT;
            rc->why = zprintf(c, "depends on %s %s, which is not imported",
                              kinds[c->recs[p].kind].name, c->recs[p].id);
            return 0;
        }
    }
    struct store_value v = {0};
    int r = store_get(c->store, rc->key, strlen(rc->key), &v, e);
    if (r == -E_NOTFOUND) {
        err_clear(e);
        rc->act = ZA_CREATE;
    } else if (r < 0) {
        return r;
    } else {
        ProtobufCMessage *old =
            protobuf_c_message_unpack(kinds[rc->kind].desc, NULL, v.len, v.data);
        if (!old) {
            store_value_release(&v);
            rc->act = ZA_CONFLICT;
            rc->why = zprintf(c, "the stored record at '%s' does not unpack", rc->key);
            return 0;
        }
        if (strcmp(msg_source(old), SOURCE) != 0) {
            rc->act = ZA_CONFLICT;
            rc->why = zprintf(c, "a record created in v2 (source '%s') holds '%s'", msg_source(old),
                              rc->key);
            protobuf_c_message_free_unpacked(old, NULL);
            store_value_release(&v);
            return 0;
        }
        if (rc->kind == ZK_USER)
            merge_user(c, (Koderid__V2__User *)rc->msg, (const Koderid__V2__User *)old);
        _cleanup_free_ unsigned char *packed = NULL;
        size_t plen = 0;
        if (pack_alloc(rc->msg, &packed, &plen) < 0) {
            protobuf_c_message_free_unpacked(old, NULL);
            store_value_release(&v);
            return err_set(e, -E_NOMEM, "out of memory");
        }
        rc->act = (plen == v.len && memcmp(packed, v.data, plen) == 0) ? ZA_UNCHANGED : ZA_UPDATE;
        rc->old = old;
        store_value_release(&v);
    }
    if (rc->kind == ZK_USER) {
        char why[256];
        r = login_conflict(c, (const Koderid__V2__User *)rc->msg, why, sizeof why, e);
        if (r < 0)
            return r;
        if (r > 0) {
            rc->act = ZA_CONFLICT;
            rc->why = zdup(c, why);
        }
    }
    return 0;
}

static int keycmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Records an earlier import wrote that v1 no longer has: planned as deletions. */
static int plan_deletions(struct zctx *c, struct err *e)
{
    const char **keys = malloc((c->n ? c->n : 1) * sizeof *keys);
    if (!keys)
        return err_set(e, -E_NOMEM, "out of memory");
    size_t nk = c->n;
    for (size_t i = 0; i < c->n; i++)
        keys[i] = c->recs[i].key;
    qsort(keys, nk, sizeof *keys, keycmp);

    int r = 0;
    for (int k = 0; k < ZK__N && r == 0; k++) {
        if (!c->read_kind[k])
            continue;
        const char *prefix = kinds[k].prefix;
        _cleanup_free_ char *after = NULL;
        size_t alen = 0;
        for (;;) {
            struct store_list l = {0};
            r = store_scan(c->store, prefix, strlen(prefix), after, alen, 500, &l, e);
            if (r < 0)
                break;
            for (size_t i = 0; i < l.n; i++) {
                const char *key = l.items[i].key;
                if (bsearch(&key, keys, nk, sizeof *keys, keycmp))
                    continue;
                if (k == ZK_SETTINGS && strcmp(key, "settings/oidc") != 0)
                    continue;
                ProtobufCMessage *old = protobuf_c_message_unpack(
                    kinds[k].desc, NULL, l.items[i].value.len, l.items[i].value.data);
                if (!old)
                    continue;
                if (strcmp(msg_source(old), SOURCE) != 0) {
                    protobuf_c_message_free_unpacked(old, NULL);
                    continue;
                }
                long idx = add_rec(c, (enum zkind)k, key + strlen(prefix), key, NULL, -1, -1);
                if (idx < 0) {
                    protobuf_c_message_free_unpacked(old, NULL);
                    r = err_set(e, -E_NOMEM, "out of memory");
                    break;
                }
                c->recs[idx].act = ZA_DELETE;
                c->recs[idx].old = old;
            }
            bool more = l.more && l.n > 0;
            if (more) {
                free(after);
                alen = l.items[l.n - 1].klen;
                after = malloc(alen);
                if (after)
                    memcpy(after, l.items[l.n - 1].key, alen);
                else
                    r = err_set(e, -E_NOMEM, "out of memory");
            }
            store_list_release(&l);
            if (!more || r < 0)
                break;
        }
    }
    free(keys);
    return r;
}

static int check_instance_mark(struct zctx *c, struct err *e)
{
    _cleanup_free_ char *prev = NULL;
    int r = repo_get_str(c->store, META_INSTANCE_KEY, &prev, e);
    if (r == -E_NOTFOUND) {
        err_clear(e);
        return 0;
    }
    if (r < 0)
        return r;
    if (strcmp(prev, c->instance) != 0)
        return err_set(e, -E_CONFLICT,
                       "the store holds an import of v1 instance %.40s, not %.40s: refusing to "
                       "mix two instances",
                       prev, c->instance);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* writing */

static int put_index(struct zctx *c, const char *key, const char *val, struct err *e)
{
    _cleanup_free_ char *cur = NULL;
    int r = repo_get_str(c->store, key, &cur, e);
    if (r == 0 && strcmp(cur, val) == 0)
        return 0;
    if (r < 0 && r != -E_NOTFOUND)
        return r;
    err_clear(e);
    return repo_put_str(c->store, key, val, 0, e);
}

static int write_one(struct zctx *c, struct zrec *rc, struct err *e)
{
    if (rc->act == ZA_CREATE || rc->act == ZA_UPDATE) {
        if (rc->kind == ZK_USER)
            return repo_user_put(c->store, (const Koderid__V2__User *)rc->msg, e);
        if (rc->kind == ZK_CLIENT)
            return repo_client_put(c->store, (const Koderid__V2__Client *)rc->msg, e);
        return repo_put(c->store, rc->key, rc->msg, 0, NULL, e);
    }
    if (rc->act == ZA_UNCHANGED && rc->kind == ZK_CLIENT) {
        /* An import killed between a client and its index entry left the entry out. */
        const Koderid__V2__Client *cl = (const Koderid__V2__Client *)rc->msg;
        char key[REPO_KEY_MAX];
        if (*cl->project_id &&
            repo_key(key, "projclient/%s/%s", cl->project_id, cl->client_id) >= 0)
            return put_index(c, key, cl->client_id, e);
    }
    return 0;
}

static int delete_one(struct zctx *c, struct zrec *rc, struct err *e)
{
    char key[REPO_KEY_MAX];
    int r = repo_del(c->store, rc->key, e);
    if (r < 0)
        return r;
    if (rc->kind == ZK_CLIENT) {
        const Koderid__V2__Client *cl = (const Koderid__V2__Client *)rc->old;
        if (*cl->project_id &&
            repo_key(key, "projclient/%s/%s", cl->project_id, cl->client_id) >= 0)
            return repo_del(c->store, key, e);
    }
    if (rc->kind == ZK_USER) {
        const Koderid__V2__User *u = (const Koderid__V2__User *)rc->old;
        const char *names[MAX_NAMES];
        size_t n = user_names(u, names, MAX_NAMES);
        for (size_t i = 0; i < n; i++) {
            char lower[REPO_KEY_MAX];
            repo_lower(names[i], lower, sizeof lower);
            if (repo_key(key, "login/%s", lower) < 0)
                continue;
            _cleanup_free_ char *owner = NULL;
            if (repo_get_str(c->store, key, &owner, NULL) == 0 && strcmp(owner, u->id) == 0) {
                r = repo_del(c->store, key, e);
                if (r < 0)
                    return r;
            }
        }
    }
    return 0;
}

struct name_owner {
    char *name; /* lower case */
    const char *owner;
};

static int nocmp(const void *a, const void *b)
{
    return strcmp(((const struct name_owner *)a)->name, ((const struct name_owner *)b)->name);
}

/*
 * The login names every imported user signs in with, lower-cased, with the user that holds
 * each (the later user in id order when two share one, as the writes leave it). Sorted.
 */
static int name_owners(struct zctx *c, struct name_owner **ret, size_t *ret_n, bool warn_dups,
                       struct err *e)
{
    struct name_owner *v = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < c->n; i++) {
        struct zrec *rc = &c->recs[i];
        if (rc->kind != ZK_USER || rc->act == ZA_CONFLICT || rc->act == ZA_DELETE)
            continue;
        const Koderid__V2__User *u = (const Koderid__V2__User *)rc->msg;
        const char *names[MAX_NAMES];
        size_t nn = user_names(u, names, MAX_NAMES);
        for (size_t k = 0; k < nn; k++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                struct name_owner *nv = realloc(v, cap * sizeof *v);
                if (!nv)
                    goto oom;
                v = nv;
            }
            char lower[REPO_KEY_MAX];
            repo_lower(names[k], lower, sizeof lower);
            v[n].name = zdup(c, lower);
            v[n].owner = u->id;
            n++;
        }
    }
    /* Among users sharing a name, the one written last (the greatest id) holds it. */
    if (n)
        qsort(v, n, sizeof *v, nocmp);
    size_t out = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        const char *owner = v[i].owner;
        bool dup = false;
        while (j < n && strcmp(v[j].name, v[i].name) == 0) {
            if (strcmp(v[j].owner, owner) != 0) {
                dup = true;
                if (strcmp(v[j].owner, owner) > 0)
                    owner = v[j].owner;
            }
            j++;
        }
        if (dup && warn_dups)
            warn(c, "login name '%s' is shared by several v1 users; it signs in user %s", v[i].name,
                 owner);
        v[out].name = v[i].name;
        v[out].owner = owner;
        out++;
        i = j;
    }
    *ret = v;
    *ret_n = out;
    return c->oom ? err_set(e, -E_NOMEM, "out of memory") : 0;
oom:
    free(v);
    return err_set(e, -E_NOMEM, "out of memory");
}

/* Makes login/ agree with the imported users: each name points at its final owner, and a
 * name an imported user no longer has stops pointing at it. */
static int reconcile_logins(struct zctx *c, struct err *e)
{
    struct name_owner *no = NULL;
    size_t nno = 0;
    int r = name_owners(c, &no, &nno, false, e);
    if (r < 0)
        return r;
    for (size_t i = 0; i < nno && r == 0; i++) {
        char key[REPO_KEY_MAX];
        if (repo_key(key, "login/%s", no[i].name) >= 0)
            r = put_index(c, key, no[i].owner, e);
    }
    _cleanup_free_ char *after = NULL;
    size_t alen = 0;
    while (r == 0) {
        struct store_list l = {0};
        r = store_scan(c->store, "login/", 6, after, alen, 500, &l, e);
        if (r < 0)
            break;
        for (size_t i = 0; i < l.n && r == 0; i++) {
            struct name_owner k = {l.items[i].key + 6, NULL};
            if (bsearch(&k, no, nno, sizeof *no, nocmp))
                continue;
            _cleanup_free_ char *owner =
                strndup((const char *)l.items[i].value.data, l.items[i].value.len);
            if (!owner) {
                r = err_set(e, -E_NOMEM, "out of memory");
                break;
            }
            struct idpair *up = idmap_get(&c->users, owner);
            if (up && up->idx >= 0 && c->recs[up->idx].act != ZA_CONFLICT)
                r = repo_del(c->store, l.items[i].key, e);
        }
        bool more = l.more && l.n > 0;
        if (more) {
            free(after);
            alen = l.items[l.n - 1].klen;
            after = malloc(alen);
            if (after)
                memcpy(after, l.items[l.n - 1].key, alen);
            else
                r = err_set(e, -E_NOMEM, "out of memory");
        }
        store_list_release(&l);
        if (!more)
            break;
    }
    free(no);
    return r;
}

static int apply(struct zctx *c, struct err *e)
{
    /* Test hook: die like kill -9 after N record writes, to prove a re-run completes. */
    const char *crash = getenv("KODER_TEST_IMPORT_KILL_AFTER");
    long kill_after = crash ? strtol(crash, NULL, 10) : 0, written = 0;
    int r = put_index(c, META_INSTANCE_KEY, c->instance, e);
    for (int k = 0; k < ZK__N && r == 0; k++)
        for (size_t i = 0; i < c->n && r == 0; i++)
            if (c->recs[i].kind == (enum zkind)k && c->recs[i].act != ZA_DELETE &&
                c->recs[i].act != ZA_CONFLICT) {
                r = write_one(c, &c->recs[i], e);
                if (kill_after > 0 && c->recs[i].act != ZA_UNCHANGED && ++written >= kill_after)
                    raise(SIGKILL);
            }
    for (int k = ZK__N - 1; k >= 0 && r == 0; k--)
        for (size_t i = 0; i < c->n && r == 0; i++)
            if (c->recs[i].kind == (enum zkind)k && c->recs[i].act == ZA_DELETE)
                r = delete_one(c, &c->recs[i], e);
    if (r == 0)
        r = reconcile_logins(c, e);
    return r;
}

/* ---------------------------------------------------------------------------------------- */
/* report */

struct zitadel_report {
    json_t *root;
    bool complete;
};

static void finish_report(struct zctx *c)
{
    int cnt[ZK__N][ZA__N] = {{0}};
    for (size_t i = 0; i < c->n; i++) {
        struct zrec *rc = &c->recs[i];
        cnt[rc->kind][rc->act]++;
        json_t *p = json_object();
        if (!p) {
            c->oom = true;
            return;
        }
        jset(c, p, "kind", json_string(kinds[rc->kind].name));
        jset(c, p, "id", json_string(rc->id));
        jset(c, p, "action", json_string(act_names[rc->act]));
        jpush(c, c->plan, p);
        if (rc->act == ZA_CONFLICT) {
            const char *kname = kinds[rc->kind].name;
            const char *sk = rc->kind == ZK_CLIENT ? "app" : kname;
            skip(c, sk, rc->id, NULL, "not written: %s", rc->why ? rc->why : "conflict");
        }
    }
    json_t *counts = json_object();
    jset(c, c->root, "counts", counts);
    for (int k = 0; k < ZK__N && counts; k++) {
        json_t *o = json_object();
        jset(c, counts, kinds[k].name, o);
        int found = 0;
        for (int a = 0; a < ZA__N; a++) {
            if (a != ZA_DELETE)
                found += cnt[k][a];
            if (o)
                jset(c, o, act_names[a], json_integer(cnt[k][a]));
        }
        if (o)
            jset(c, o, "v1", json_integer(found));
    }
    json_t *s = json_object();
    jset(c, c->root, "summary", s);
    if (s) {
        jset(c, s, "orgs", json_integer(c->found_org));
        jset(c, s, "projects", json_integer(c->found_project));
        jset(c, s, "apps", json_integer(c->found_app));
        jset(c, s, "oidc_clients", json_integer(c->n_oidc));
        jset(c, s, "api_clients", json_integer(c->n_api));
        jset(c, s, "users", json_integer(c->found_user));
        jset(c, s, "human_users", json_integer(c->n_human));
        jset(c, s, "machine_users", json_integer(c->n_machine));
        jset(c, s, "personal_access_tokens", json_integer(c->n_pat));
        json_t *f = json_object();
        jset(c, s, "client_id_forms", f);
        if (f) {
            jset(c, f, "numeric", json_integer(c->cid_forms[ZMAP_CID_NUMERIC]));
            jset(c, f, "id_at_project", json_integer(c->cid_forms[ZMAP_CID_AT_PROJECT]));
            jset(c, f, "other", json_integer(c->cid_forms[ZMAP_CID_OTHER]));
        }
    }
    bool complete =
        c->lost_org == 0 && c->lost_project == 0 && c->lost_app == 0 && c->lost_user == 0;
    jset(c, c->root, "complete", json_boolean(complete));
}

#undef EPOCH

/* Prints the plan lines with ids, counts, skipped objects and warnings. */
static void print_report(struct zctx *c, FILE *f)
{
    json_t *root = c->root;
    size_t i;
    json_t *v;
    fprintf(f, "import-zitadel: %s, instance %s%s\n",
            json_string_value(json_object_get(json_object_get(root, "source"), "where")),
            c->instance ? c->instance : "?", c->opt->dry_run ? " (dry run: nothing written)" : "");
    json_t *tables = json_object_get(root, "tables");
    fputs("tables used:", f);
    json_array_foreach (json_object_get(tables, "used"), i, v)
        fprintf(f, " %s", json_string_value(v));
    fputc('\n', f);
    if (json_array_size(json_object_get(tables, "stale"))) {
        fputs("stale tables (older versions, ignored):", f);
        json_array_foreach (json_object_get(tables, "stale"), i, v)
            fprintf(f, " %s", json_string_value(v));
        fputc('\n', f);
    }
    json_array_foreach (c->plan, i, v) {
        const char *act = json_string_value(json_object_get(v, "action"));
        if (c->opt->dry_run || strcmp(act, "unchanged") != 0)
            fprintf(f, "%s %-9s %-11s %s\n", c->opt->dry_run ? "plan" : "done", act,
                    json_string_value(json_object_get(v, "kind")),
                    json_string_value(json_object_get(v, "id")));
    }
    json_t *counts = json_object_get(root, "counts");
    const char *k;
    fprintf(f, "%-15s %5s %7s %7s %9s %7s %8s\n", "kind", "v1", "create", "update", "unchanged",
            "delete", "conflict");
    json_object_foreach (counts, k, v) {
        fprintf(f, "%-15s %5lld %7lld %7lld %9lld %7lld %8lld\n", k,
                json_integer_value(json_object_get(v, "v1")),
                json_integer_value(json_object_get(v, "create")),
                json_integer_value(json_object_get(v, "update")),
                json_integer_value(json_object_get(v, "unchanged")),
                json_integer_value(json_object_get(v, "delete")),
                json_integer_value(json_object_get(v, "conflict")));
    }
    json_t *s = json_object_get(root, "summary");
    fprintf(f,
            "v1 has %lld orgs, %lld projects, %lld apps (%lld OIDC, %lld API), %lld users (%lld "
            "human, %lld machine)\n",
            json_integer_value(json_object_get(s, "orgs")),
            json_integer_value(json_object_get(s, "projects")),
            json_integer_value(json_object_get(s, "apps")),
            json_integer_value(json_object_get(s, "oidc_clients")),
            json_integer_value(json_object_get(s, "api_clients")),
            json_integer_value(json_object_get(s, "users")),
            json_integer_value(json_object_get(s, "human_users")),
            json_integer_value(json_object_get(s, "machine_users")));
    json_array_foreach (c->skipped, i, v) {
        const char *kind = json_string_value(json_object_get(v, "kind"));
        fprintf(f, "skipped %s %s", kind, json_string_value(json_object_get(v, "id")));
        if (json_object_get(v, "name"))
            fprintf(f, " '%s'", json_string_value(json_object_get(v, "name")));
        if (json_object_get(v, "user_id"))
            fprintf(f, " (user %s '%s', expires %s)",
                    json_string_value(json_object_get(v, "user_id")),
                    json_string_value(json_object_get(v, "login_name")),
                    json_string_value(json_object_get(v, "expires")));
        fprintf(f, ": %s\n", json_string_value(json_object_get(v, "reason")));
    }
    json_t *nc = json_object_get(root, "not_carried");
    json_object_foreach (nc, k, v) {
        if (json_is_integer(v))
            fprintf(f, "not carried: %lld %s\n", json_integer_value(v), k);
    }
    json_array_foreach (c->warnings, i, v)
        fprintf(f, "warning: %s\n", json_string_value(v));
    fprintf(f, "result: %s\n",
            json_is_true(json_object_get(root, "complete"))
                ? "complete: every org, project, app and user is imported"
                : "INCOMPLETE: some orgs, projects, apps or users are not imported (see "
                  "skipped)");
}

/* ---------------------------------------------------------------------------------------- */

static void ctx_release(struct zctx *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->recs[i].old)
            protobuf_c_message_free_unpacked(c->recs[i].old, NULL);
    free(c->recs);
    zmap_strv_release(&c->tables);
    idmap_release(&c->orgs);
    idmap_release(&c->projects);
    idmap_release(&c->apps);
    idmap_release(&c->users);
    idmap_release(&c->pwd);
    arena_free(c);
    if (!c->opt->pg)
        pg_close(c->pg);
}

static int run(struct zctx *c, struct err *e)
{
    int r = 0;
    if (c->opt->pg)
        c->pg = c->opt->pg; /* the caller's session, opened before dropping privileges */
    else if ((r = pg_open(c->opt->dsn, &c->pg, e)) < 0)
        return r;
    json_t *src = json_object();
    jset(c, c->root, "source", src);
    if (src) {
        jset(c, src, "where", json_string(pg_where(c->pg)));
        jset(c, src, "database", json_string(pg_dbname(c->pg)));
    }
    if ((r = detect_tables(c, e)) < 0)
        return r;
    if ((r = pick_instance(c, e)) < 0)
        return r;
    if (src)
        jset(c, src, "instance_id", json_string(c->instance));

    /* Read everything before anything is written. */
    r = 0;
    read_settings(c, e, &r);
    if (r == 0)
        read_orgs(c, e, &r);
    if (r == 0)
        read_pw_policies(c, e, &r);
    if (r == 0)
        read_projects(c, e, &r);
    if (r == 0)
        read_roles(c, e, &r);
    if (r == 0)
        read_apps(c, e, &r);
    if (r == 0)
        read_passwords(c, e, &r);
    if (r == 0)
        read_users(c, e, &r);
    if (r == 0)
        read_grants(c, e, &r);
    if (r == 0)
        read_authn_keys(c, e, &r);
    if (r == 0)
        read_pats(c, e, &r);
    if (r == 0)
        read_keys(c, e, &r);
    if (r == 0)
        read_not_carried(c, e, &r);
    if (r < 0)
        return r;
    if (c->oom)
        return err_set(e, -E_NOMEM, "out of memory");
    if (!c->opt->pg)
        pg_close(c->pg); /* everything is read: v1's database is left alone from here */
    c->pg = NULL;

    /* Plan against the store. */
    if ((r = check_instance_mark(c, e)) < 0)
        return r;
    size_t nv1 = c->n;
    for (size_t i = 0; i < nv1; i++)
        if ((r = plan_one(c, &c->recs[i], e)) < 0)
            return r;
    if ((r = plan_deletions(c, e)) < 0)
        return r;
    {
        struct name_owner *no = NULL;
        size_t nno = 0;
        if ((r = name_owners(c, &no, &nno, true, e)) < 0)
            return r;
        free(no);
    }
    finish_report(c);
    if (c->oom)
        return err_set(e, -E_NOMEM, "out of memory");
    if (c->opt->dry_run)
        return 0;
    return apply(c, e);
}

int zitadel_import(struct store *store, const struct zitadel_options *opt,
                   struct zitadel_report **ret_report, struct err *e)
{
    struct zctx c = {0};
    c.store = store;
    c.opt = opt;
    c.now = (int64_t)time(NULL);
    *ret_report = NULL;

    struct zitadel_report *rep = calloc(1, sizeof *rep);
    c.root = json_object();
    c.skipped = json_array();
    c.warnings = json_array();
    c.plan = json_array();
    if (!rep || !c.root || !c.skipped || !c.warnings || !c.plan) {
        free(rep);
        json_decref(c.root);
        json_decref(c.skipped);
        json_decref(c.warnings);
        json_decref(c.plan);
        return err_set(e, -E_NOMEM, "out of memory");
    }
    jset(&c, c.root, "report_version", json_integer(1));
    jset(&c, c.root, "dry_run", json_boolean(opt->dry_run));
    jset(&c, c.root, "complete", json_false());
    json_object_set(c.root, "plan", c.plan);
    json_object_set(c.root, "skipped", c.skipped);
    json_object_set(c.root, "warnings", c.warnings);

    int r = run(&c, e);
    if (r < 0) {
        jset(&c, c.root, "error", json_string(e ? e->msg : "failed"));
    } else if (opt->out) {
        print_report(&c, opt->out);
    }
    rep->root = c.root;
    rep->complete = json_is_true(json_object_get(c.root, "complete"));
    json_decref(c.skipped);
    json_decref(c.warnings);
    json_decref(c.plan);
    ctx_release(&c);
    *ret_report = rep;
    return r;
}

bool zitadel_report_complete(const struct zitadel_report *r)
{
    return r && r->complete;
}

char *zitadel_report_json(const struct zitadel_report *r)
{
    return json_dumps(r->root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
}

int zitadel_report_write(const struct zitadel_report *r, FILE *f, struct err *e)
{
    if (json_dumpf(r->root, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 || fputc('\n', f) < 0 ||
        fflush(f) != 0)
        return err_set(e, -E_IO, "cannot write the report: %s", strerror(errno));
    return 0;
}

void zitadel_report_free(struct zitadel_report *r)
{
    if (!r)
        return;
    json_decref(r->root);
    free(r);
}
