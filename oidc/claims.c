/* SPDX-License-Identifier: Apache-2.0 */
/* Claims about a user by scope, and v1's audience rule. */
#include "claims.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"

#define AUDIENCE_MAX 1000 /* apps of one project we put in aud, at most */

bool oidc_scope_has(const char *scope, const char *name)
{
    size_t n = strlen(name);
    if (!scope || n == 0)
        return false;
    for (const char *p = scope; *p;) {
        while (*p == ' ')
            p++;
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0)
            return true;
        p += len;
    }
    return false;
}

char *oidc_scope_without(const char *scope, const char *name)
{
    size_t n = strlen(name);
    char *out = malloc(strlen(scope ? scope : "") + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (const char *p = scope ? scope : ""; *p;) {
        while (*p == ' ')
            p++;
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len && !(len == n && memcmp(p, name, n) == 0)) {
            if (o)
                out[o++] = ' ';
            memcpy(out + o, p, len);
            o += len;
        }
        p += len;
    }
    out[o] = '\0';
    return out;
}

static int set_str(json_t *obj, const char *name, const char *v)
{
    if (!v || !*v)
        return 0;
    json_t *s = json_string(v);
    if (!s) /* not UTF-8: leave it out rather than fail the whole answer */
        return 0;
    return json_object_set_new(obj, name, s) < 0 ? -E_NOMEM : 0;
}

static const char *gender_name(int g)
{
    switch (g) {
    case 1:
        return "female";
    case 2:
        return "male";
    case 3:
        return "diverse";
    default:
        return NULL;
    }
}

int oidc_claims_userinfo(const Koderid__V2__User *u, const char *scope, json_t *obj, struct err *e)
{
    int r = 0;
    if (json_object_set_new(obj, "sub", json_string(u->id)) < 0)
        return err_set(e, -E_NOMEM, "out of memory");
    if (oidc_scope_has(scope, "profile")) {
        const char *login = u->login_name && *u->login_name ? u->login_name : u->username;
        if (u->type == 2) {
            r |= set_str(obj, "name", u->machine_name);
        } else {
            r |= set_str(obj, "name", u->display_name);
            r |= set_str(obj, "given_name", u->first_name);
            r |= set_str(obj, "family_name", u->last_name);
            r |= set_str(obj, "nickname", u->nick_name);
            r |= set_str(obj, "gender", gender_name(u->gender));
            r |= set_str(obj, "locale", u->preferred_language);
        }
        r |= set_str(obj, "preferred_username", login);
        if (u->changed_at > 0)
            r |= json_object_set_new(obj, "updated_at", json_integer(u->changed_at)) < 0;
    }
    if (oidc_scope_has(scope, "email") && u->email && *u->email) {
        r |= set_str(obj, "email", u->email);
        r |= json_object_set_new(obj, "email_verified", json_boolean(u->email_verified)) < 0;
    }
    if (oidc_scope_has(scope, "phone") && u->phone && *u->phone) {
        r |= set_str(obj, "phone_number", u->phone);
        r |= json_object_set_new(obj, "phone_number_verified", json_boolean(u->phone_verified)) < 0;
    }
    return r ? err_set(e, -E_NOMEM, "out of memory") : 0;
}

static bool array_has(const json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach (a, i, v) {
        if (strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

static int add_unique(json_t *a, const char *s)
{
    if (!s || !*s || array_has(a, s))
        return 0;
    json_t *v = json_string(s);
    if (!v)
        return 0;
    return json_array_append_new(a, v) < 0 ? -E_NOMEM : 0;
}

/* Adds the projects named by `urn:zitadel:iam:org:project:id:{id}:aud` scopes. */
static int add_scope_projects(struct store *s, const char *scope, json_t *aud, struct err *e)
{
    size_t plen = strlen(OIDC_AUD_SCOPE_PREFIX), slen = strlen(OIDC_AUD_SCOPE_SUFFIX);
    unsigned seen = 0;
    for (const char *p = scope ? scope : ""; *p && seen < OIDC_AUD_SCOPES_MAX;) {
        while (*p == ' ')
            p++;
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > plen + slen && strncmp(p, OIDC_AUD_SCOPE_PREFIX, plen) == 0 &&
            memcmp(p + len - slen, OIDC_AUD_SCOPE_SUFFIX, slen) == 0) {
            seen++;
            _cleanup_free_ char *id = strndup(p + plen, len - plen - slen);
            if (!id)
                return err_set(e, -E_NOMEM, "out of memory");
            Koderid__V2__Project *proj = NULL;
            struct err ge = {0};
            int r = strchr(id, ':') || strcmp(id, "zitadel") == 0
                        ? -E_NOTFOUND
                        : repo_project_get(s, id, &proj, &ge);
            if (r == 0) {
                koderid__v2__project__free_unpacked(proj, NULL);
                if (add_unique(aud, id) < 0)
                    return err_set(e, -E_NOMEM, "out of memory");
            } else if (r != -E_NOTFOUND) {
                return err_set(e, r, "%s", ge.msg);
            }
        }
        p += len;
    }
    return 0;
}

int oidc_claims_audience(struct store *s, const Koderid__V2__Client *c, const char *scope,
                         json_t **ret, struct err *e)
{
    _cleanup_(json_decrefp) json_t *aud = json_array();
    char prefix[REPO_KEY_MAX];
    if (!aud)
        return err_set(e, -E_NOMEM, "out of memory");
    if (c->project_id && *c->project_id) {
        int plen = repo_key(prefix, "projclient/%s/", c->project_id);
        if (plen < 0)
            return err_set(e, -E_INVALID, "project id too long");
        _cleanup_free_ char *after = NULL;
        size_t after_len = 0;
        for (size_t total = 0; total < AUDIENCE_MAX;) {
            struct store_list l = {0};
            int r = store_scan(s, prefix, (size_t)plen, after, after_len, 100, &l, e);
            if (r < 0)
                return r;
            for (size_t i = 0; i < l.n; i++, total++) {
                _cleanup_free_ char *cid =
                    strndup((const char *)l.items[i].value.data, l.items[i].value.len);
                if (!cid || add_unique(aud, cid) < 0) {
                    store_list_release(&l);
                    return err_set(e, -E_NOMEM, "out of memory");
                }
            }
            bool more = l.more && l.n > 0;
            if (more) {
                free(after);
                after = strndup(l.items[l.n - 1].key, l.items[l.n - 1].klen);
                after_len = l.items[l.n - 1].klen;
            }
            store_list_release(&l);
            if (!more || !after)
                break;
        }
        if (add_unique(aud, c->project_id) < 0)
            return err_set(e, -E_NOMEM, "out of memory");
    }
    int r = add_scope_projects(s, scope, aud, e);
    if (r < 0)
        return r;
    if (add_unique(aud, c->client_id) < 0)
        return err_set(e, -E_NOMEM, "out of memory");
    *ret = TAKE_PTR(aud);
    return 0;
}

/* Calls @fn for each scope value that starts with @prefix, with the rest (len > 0). */
static int each_scope_with(const char *scope, const char *prefix,
                           int (*fn)(const char *v, size_t len, void *arg), void *arg)
{
    size_t plen = strlen(prefix);
    for (const char *p = scope ? scope : ""; *p;) {
        while (*p == ' ')
            p++;
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > plen && strncmp(p, prefix, plen) == 0) {
            int r = fn(p + plen, len - plen, arg);
            if (r)
                return r;
        }
        p += len;
    }
    return 0;
}

static int collect_cb(const char *v, size_t len, void *arg)
{
    json_t *a = arg;
    if (json_array_size(a) >= 64)
        return 0;
    _cleanup_free_ char *s = strndup(v, len);
    if (!s)
        return -E_NOMEM;
    return add_unique(a, s);
}

/* The values of scopes with @prefix, at most 64. NULL on allocation failure. */
static json_t *scope_values(const char *scope, const char *prefix)
{
    json_t *a = json_array();
    if (a && each_scope_with(scope, prefix, collect_cb, a) < 0) {
        json_decref(a);
        return NULL;
    }
    return a;
}

/* `...:project:id:{id}:aud` scope values, the `:aud` cut off. */
static int aud_cb(const char *v, size_t len, void *arg)
{
    size_t slen = strlen(OIDC_AUD_SCOPE_SUFFIX);
    if (len <= slen || memcmp(v + len - slen, OIDC_AUD_SCOPE_SUFFIX, slen) != 0)
        return 0;
    return collect_cb(v, len - slen, arg);
}

static void grant_freep(Koderid__V2__UserGrant **g)
{
    if (*g)
        koderid__v2__user_grant__free_unpacked(*g, NULL);
}

/* Calls @fn for every grant of @user_id (stops at a non-zero return, which it passes on). */
static int each_grant(struct store *s, const char *user_id,
                      int (*fn)(const Koderid__V2__UserGrant *g, void *arg), void *arg,
                      struct err *e)
{
    char prefix[REPO_KEY_MAX];
    int plen = repo_key(prefix, "grant/%s/", user_id);
    if (plen < 0)
        return err_set(e, -E_INVALID, "user id too long");
    _cleanup_free_ char *after = NULL;
    size_t after_len = 0;
    for (int pages = 0; pages < 100; pages++) {
        struct store_list l = {0};
        int r = store_scan(s, prefix, (size_t)plen, after, after_len, 100, &l, e);
        if (r < 0)
            return r;
        for (size_t i = 0; i < l.n && r == 0; i++) {
            _cleanup_(grant_freep) Koderid__V2__UserGrant *g =
                koderid__v2__user_grant__unpack(NULL, l.items[i].value.len, l.items[i].value.data);
            if (g && g->state != 2)
                r = fn(g, arg);
        }
        bool more = r == 0 && l.more && l.n > 0;
        if (more) {
            free(after);
            after = strndup(l.items[l.n - 1].key, l.items[l.n - 1].klen);
            after_len = l.items[l.n - 1].klen;
        }
        store_list_release(&l);
        if (r)
            return r < 0 ? err_set(e, r, "out of memory") : r;
        if (!more || !after)
            break;
    }
    return 0;
}

struct roles_acc {
    struct store *s;
    const json_t *role_aud;  /* project ids */
    const json_t *requested; /* role keys, empty = all */
    const json_t *orgs;      /* org ids, empty = all */
    json_t *projects;        /* project id -> {role -> {org -> domain}} */
    json_t *domains;         /* org id -> primary domain (cache) */
};

static const char *org_domain(struct roles_acc *a, const char *org_id)
{
    json_t *d = json_object_get(a->domains, org_id);
    if (!d) {
        Koderid__V2__Org *o = NULL;
        struct err ge = {0};
        const char *v = "";
        if (repo_org_get(a->s, org_id, &o, &ge) == 0 && o->primary_domain)
            v = o->primary_domain;
        d = json_string(v);
        if (!d)
            d = json_string("");
        json_object_set_new(a->domains, org_id, d);
        if (o)
            koderid__v2__org__free_unpacked(o, NULL);
    }
    return json_string_value(d);
}

static int roles_cb(const Koderid__V2__UserGrant *g, void *arg)
{
    struct roles_acc *a = arg;
    if (!g->project_id || !array_has(a->role_aud, g->project_id))
        return 0;
    if (json_array_size(a->orgs) && !array_has(a->orgs, g->org_id ? g->org_id : ""))
        return 0;
    for (size_t i = 0; i < g->n_roles; i++) {
        const char *role = g->roles[i];
        json_t *valid = role && *role ? json_string(role) : NULL; /* UTF-8 only */
        if (!valid)
            continue;
        json_decref(valid);
        if (json_array_size(a->requested) && !array_has(a->requested, role))
            continue;
        json_t *proj = json_object_get(a->projects, g->project_id);
        if (!proj) {
            proj = json_object();
            if (!proj || json_object_set_new(a->projects, g->project_id, proj) < 0)
                return -E_NOMEM;
        }
        json_t *orgs = json_object_get(proj, role);
        if (!orgs) {
            orgs = json_object();
            if (!orgs || json_object_set_new(proj, role, orgs) < 0)
                return -E_NOMEM;
        }
        const char *org = g->org_id ? g->org_id : "";
        if (json_object_set_new(orgs, org, json_string(org_domain(a, org))) < 0)
            return -E_NOMEM;
    }
    return 0;
}

static void org_freep(Koderid__V2__Org **o)
{
    if (*o)
        koderid__v2__org__free_unpacked(*o, NULL);
}

static int add_roles(struct store *s, const Koderid__V2__Client *c, const Koderid__V2__User *u,
                     const char *scope, const json_t *audience, json_t *obj, struct err *e)
{
    const char *own = c->project_id && *c->project_id ? c->project_id : NULL;
    _cleanup_(json_decrefp) json_t *role_aud = json_array();
    _cleanup_(json_decrefp) json_t *requested = scope_values(scope, OIDC_ROLE_SCOPE_PREFIX);
    _cleanup_(json_decrefp) json_t *orgs = scope_values(scope, OIDC_ROLES_ORG_SCOPE_PREFIX);
    _cleanup_(json_decrefp) json_t *projects = json_object();
    _cleanup_(json_decrefp) json_t *domains = json_object();
    if (!role_aud || !requested || !orgs || !projects || !domains)
        return err_set(e, -E_NOMEM, "out of memory");

    if (own) {
        _cleanup_(repo_msg_freep) Koderid__V2__Project *p = NULL;
        struct err ge = {0};
        int r = repo_project_get(s, own, &p, &ge);
        if (r < 0 && r != -E_NOTFOUND)
            return err_set(e, r, "%s", ge.msg);
        if (p && p->project_role_assertion && add_unique(role_aud, own) < 0)
            return err_set(e, -E_NOMEM, "out of memory");
    }
    /* v1's prepareRoles: the :aud scopes' projects count only when roles are asked for. */
    bool all = oidc_scope_has(scope, OIDC_PROJECTS_ROLES_SCOPE);
    if ((all || json_array_size(requested)) &&
        each_scope_with(scope, OIDC_AUD_SCOPE_PREFIX, aud_cb, role_aud) < 0)
        return err_set(e, -E_NOMEM, "out of memory");
    if (all) {
        size_t i;
        json_t *v;
        /* Client ids in the audience match no grant's project: only project ids count. */
        json_array_foreach (audience, i, v) {
            if (add_unique(role_aud, json_string_value(v)) < 0)
                return err_set(e, -E_NOMEM, "out of memory");
        }
        if (own && add_unique(role_aud, own) < 0)
            return err_set(e, -E_NOMEM, "out of memory");
    }
    if ((json_array_size(role_aud) || json_array_size(requested)) && own &&
        add_unique(role_aud, own) < 0)
        return err_set(e, -E_NOMEM, "out of memory");
    if (json_array_size(role_aud) == 0)
        return 0;

    struct roles_acc a = {s, role_aud, requested, orgs, projects, domains};
    int r = each_grant(s, u->id, roles_cb, &a, e);
    if (r < 0)
        return r;
    const char *pid;
    json_t *roles;
    json_object_foreach (projects, pid, roles) {
        char name[REPO_KEY_MAX];
        if (own && strcmp(pid, own) == 0 &&
            json_object_set(obj, "urn:zitadel:iam:org:project:roles", roles) < 0)
            return err_set(e, -E_NOMEM, "out of memory");
        if (snprintf(name, sizeof name, "urn:zitadel:iam:org:project:%s:roles", pid) >=
            (int)sizeof name)
            continue;
        if (json_object_set(obj, name, roles) < 0)
            return err_set(e, -E_NOMEM, "out of memory");
    }
    return 0;
}

int oidc_claims_zitadel(struct store *s, const Koderid__V2__Client *c, const Koderid__V2__User *u,
                        const char *scope, const json_t *audience, enum oidc_claims_target target,
                        json_t *obj, struct err *e)
{
    int r;
    bool roles = target == OIDC_CLAIMS_USERINFO ||
                 ((target == OIDC_CLAIMS_ID_TOKEN || target == OIDC_CLAIMS_ID_TOKEN_ROLES) &&
                  c->id_token_role_assertion) ||
                 (target == OIDC_CLAIMS_ACCESS_TOKEN && c->access_token_role_assertion);
    if (roles && (r = add_roles(s, c, u, scope, audience, obj, e)) < 0)
        return r;

    _cleanup_(json_decrefp) json_t *ids = scope_values(scope, OIDC_ORG_ID_SCOPE_PREFIX);
    _cleanup_(json_decrefp) json_t *doms = scope_values(scope, OIDC_ORG_DOMAIN_SCOPE_PREFIX);
    if (!ids || !doms)
        return err_set(e, -E_NOMEM, "out of memory");
    bool owner = oidc_scope_has(scope, OIDC_RESOURCEOWNER_SCOPE) || json_array_size(ids);
    if (!owner && !json_array_size(doms))
        return 0;
    _cleanup_(org_freep) Koderid__V2__Org *org = NULL;
    struct err ge = {0};
    r = u->org_id && *u->org_id ? repo_org_get(s, u->org_id, &org, &ge) : -E_NOTFOUND;
    if (r < 0 && r != -E_NOTFOUND)
        return err_set(e, r, "%s", ge.msg);
    r = 0;
    if (owner) {
        r |= set_str(obj, "urn:zitadel:iam:user:resourceowner:id", u->org_id);
        if (org) {
            r |= set_str(obj, "urn:zitadel:iam:user:resourceowner:name", org->name);
            r |= set_str(obj, "urn:zitadel:iam:user:resourceowner:primary_domain",
                         org->primary_domain);
        }
    }
    if (array_has(ids, u->org_id ? u->org_id : ""))
        r |= set_str(obj, "urn:zitadel:iam:org:id", u->org_id);
    if (org && org->primary_domain) {
        size_t i;
        json_t *v;
        json_array_foreach (doms, i, v) {
            if (strcasecmp(json_string_value(v), org->primary_domain) == 0) {
                r |= set_str(obj, "urn:zitadel:iam:org:domain:primary", json_string_value(v));
                break;
            }
        }
    }
    return r ? err_set(e, -E_NOMEM, "out of memory") : 0;
}

/* v1's login refusals, with v1's message keys for who compares logs. */
static const char msg_not_allowed_org[] = "Login not possible: the user does not belong to the "
                                          "requested organization (Errors.User.NotAllowedOrg).";

static int has_grant_cb(const Koderid__V2__UserGrant *g, void *arg)
{
    return g->project_id && strcmp(g->project_id, arg) == 0 ? 1 : 0;
}

int oidc_claims_signin_check(struct store *s, const Koderid__V2__Client *c,
                             const Koderid__V2__User *u, const char *scope, struct err *e)
{
    _cleanup_(json_decrefp) json_t *ids = scope_values(scope, OIDC_ORG_ID_SCOPE_PREFIX);
    _cleanup_(json_decrefp) json_t *doms = scope_values(scope, OIDC_ORG_DOMAIN_SCOPE_PREFIX);
    struct err ge = {0};
    int r;
    if (!ids || !doms)
        return err_set(e, -E_NOMEM, "out of memory");
    const char *uorg = u->org_id ? u->org_id : "";
    size_t i;
    json_t *v;
    json_array_foreach (ids, i, v) {
        if (strcmp(json_string_value(v), uorg) != 0)
            return err_set(e, -E_ACCESS_DENIED, "%s", msg_not_allowed_org);
    }
    if (json_array_size(doms)) {
        _cleanup_(org_freep) Koderid__V2__Org *org = NULL;
        r = *uorg ? repo_org_get(s, uorg, &org, &ge) : -E_NOTFOUND;
        if (r < 0 && r != -E_NOTFOUND)
            return err_set(e, r, "%s", ge.msg);
        json_array_foreach (doms, i, v) {
            if (!org || !org->primary_domain ||
                strcasecmp(json_string_value(v), org->primary_domain) != 0)
                return err_set(e, -E_ACCESS_DENIED, "%s", msg_not_allowed_org);
        }
    }
    if (!c->project_id || !*c->project_id)
        return 0;
    _cleanup_(repo_msg_freep) Koderid__V2__Project *p = NULL;
    r = repo_project_get(s, c->project_id, &p, &ge);
    if (r == -E_NOTFOUND)
        return 0;
    if (r < 0)
        return err_set(e, r, "%s", ge.msg);
    if (p->has_project_check && strcmp(p->org_id ? p->org_id : "", uorg) != 0)
        return err_set(e, -E_ACCESS_DENIED,
                       "Login not possible: the user's organization must be granted the project "
                       "(Errors.User.ProjectRequired). Contact your administrator.");
    if (p->project_role_check) {
        r = each_grant(s, u->id, has_grant_cb, c->project_id, e);
        if (r < 0)
            return r;
        if (r == 0)
            return err_set(e, -E_ACCESS_DENIED,
                           "Login not possible: the user needs at least one authorization on the "
                           "application (Errors.User.GrantRequired). Contact your administrator.");
    }
    return 0;
}
