/* SPDX-License-Identifier: Apache-2.0 */
/* Claims about a user by scope, and v1's audience rule. */
#include "claims.h"

#include <stdlib.h>
#include <string.h>

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
