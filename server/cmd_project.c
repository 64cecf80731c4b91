/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `project add|list`, `role add|list` and `grant add|list|remove`: v1's authorization model
 * for installs that do not come from v1. A project owns clients and roles; a user grant gives
 * a user roles on a project (v1's user_grants5), which become the
 * urn:zitadel:iam:org:project:roles claims (oidc/claims.c) and satisfy project_role_check.
 * A grant names only roles the project has, as v1 requires.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/rand.h"
#include "server/admin.h"
#include "server/cli.h"
#include "server/commands.h"

#define ROLES_MAX 64

/* A role key, a project id: no spaces, '/' or control characters (they go into store keys). */
static bool valid_key(const char *s)
{
    return cli_valid_name(s) && !strchr(s, '/');
}

/* ---- project ---- */

enum { P_NAME, P_ORG, P_ROLE_ASSERTION, P_ROLE_CHECK, P_HAS_PROJECT_CHECK, P_JSON };

static int project_add(int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, P_NAME},
        {"org", required_argument, NULL, P_ORG},
        {"role-assertion", no_argument, NULL, P_ROLE_ASSERTION},
        {"role-check", no_argument, NULL, P_ROLE_CHECK},
        {"has-project-check", no_argument, NULL, P_HAS_PROJECT_CHECK},
        {"json", no_argument, NULL, P_JSON},
        {NULL, 0, NULL, 0},
    };
    const char *v[P_JSON + 1] = {0};
    struct admin_args a = {.vals = v, .nvals = ARRAY_SIZE(v), .multi = -1};
    int r;
    if ((r = admin_parse("project", &argc, argv, opts, &a)) != 0)
        return r;
    if (!v[P_NAME])
        return cli_usage("project", "add needs --name");
    if (!*v[P_NAME] || !cli_valid_text(v[P_NAME]))
        return cli_usage("project", "--name: 1 to %d characters, no control characters",
                         CLI_NAME_MAX);

    struct cli cl;
    if ((r = cli_open(&cl, &a.co, CLI_STORE)) != 0)
        return r;
    struct err e = {0};
    _cleanup_free_ char *org_id = NULL;
    _cleanup_free_ char *default_project = NULL;
    char id[21], key[REPO_KEY_MAX];
    int status = CLI_EXIT_FAIL;
    if (admin_owner(cl.store, cl.cfg.issuer, v[P_ORG], NULL, "--org ID", &org_id, &default_project,
                    &e) < 0) {
        cli_fail("%s", e.msg);
        goto out;
    }
    id_new(id);
    Koderid__V2__Project p = KODERID__V2__PROJECT__INIT;
    p.id = id;
    p.org_id = org_id;
    p.name = (char *)v[P_NAME];
    p.state = 1;
    p.project_role_assertion = v[P_ROLE_ASSERTION] != NULL;
    p.project_role_check = v[P_ROLE_CHECK] != NULL;
    p.has_project_check = v[P_HAS_PROJECT_CHECK] != NULL;
    p.created_at = p.changed_at = (int64_t)time(NULL);
    p.source = "v2";
    repo_key(key, "project/%s", id);
    if (repo_cas(cl.store, key, 0, &p.base, 0, NULL, &e) < 0) {
        cli_fail("store: %s", e.msg);
        goto out;
    }
    if (v[P_JSON]) {
        _cleanup_(json_decrefp) json_t *o = json_object();
        json_object_set_new(o, "project_id", json_string(id));
        json_object_set_new(o, "org_id", json_string(org_id));
        cli_print_json(o);
    } else {
        printf("%s\n", id);
    }
    status = CLI_EXIT_OK;
out:
    cli_close(&cl);
    return status;
}

static int project_list_cb(const struct store_entry *it, void *arg, struct err *e)
{
    struct admin_list *l = arg;
    _cleanup_(repo_msg_freep) Koderid__V2__Project *p =
        koderid__v2__project__unpack(NULL, it->value.len, it->value.data);
    if (!p)
        return 0;
    if (!l->json) {
        char flags[64] = "";
        if (p->project_role_assertion)
            strcat(flags, ",role-assertion");
        if (p->project_role_check)
            strcat(flags, ",role-check");
        if (p->has_project_check)
            strcat(flags, ",has-project-check");
        printf("%s\t%s\t%s\t%s\n", p->id, p->org_id ? p->org_id : "", *flags ? flags + 1 : "-",
               p->name ? p->name : "");
        return 0;
    }
    json_t *o = json_object();
    json_object_set_new(o, "project_id", json_string(p->id ? p->id : ""));
    json_object_set_new(o, "org_id", json_string(p->org_id ? p->org_id : ""));
    json_object_set_new(o, "name", json_string(p->name ? p->name : ""));
    json_object_set_new(o, "state", json_string(p->state == 1 ? "active" : "inactive"));
    json_object_set_new(o, "role_assertion", json_boolean(p->project_role_assertion));
    json_object_set_new(o, "role_check", json_boolean(p->project_role_check));
    json_object_set_new(o, "has_project_check", json_boolean(p->has_project_check));
    json_object_set_new(o, "source", json_string(p->source ? p->source : ""));
    if (json_array_append_new(l->arr, o) < 0)
        return err_set(e, -E_NOMEM, "out of memory");
    return 0;
}

static int project_list(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 0}, {NULL, 0, NULL, 0}};
    const char *v[1] = {0};
    struct admin_args a = {.vals = v, .nvals = ARRAY_SIZE(v), .multi = -1};
    int r;
    if ((r = admin_parse("project", &argc, argv, opts, &a)) != 0)
        return r;
    struct cli cl;
    if ((r = cli_open(&cl, &a.co, CLI_STORE | CLI_READ_ONLY)) != 0)
        return r;
    int status = admin_list(cl.store, "project/", project_list_cb, v[0] != NULL, NULL);
    cli_close(&cl);
    return status;
}

int cmd_project(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return cli_usage("project", "missing subcommand (add, list), which comes first");
    if (strcmp(argv[1], "add") == 0)
        return project_add(argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return project_list(argc - 1, argv + 1);
    return cli_usage("project", "unknown subcommand '%.40s'", argv[1]);
}

/* ---- role ---- */

enum { R_PROJECT, R_KEY, R_DISPLAY_NAME, R_GROUP, R_JSON };

/* Opens the store and reads --project (which must exist) for role and grant commands. */
static int open_project(struct cli *cl, const struct admin_args *a, const char *cmd,
                        const char *project, unsigned flags, Koderid__V2__Project **ret)
{
    struct err e = {0};
    int r;
    if (!project)
        return cli_usage(cmd, "needs --project ID");
    if ((r = cli_open(cl, &a->co, flags)) != 0)
        return r;
    if ((r = repo_project_get(cl->store, project, ret, &e)) < 0) {
        cli_close(cl);
        return cli_fail("--project '%.60s': %s", project,
                        r == -E_NOTFOUND ? "no such project" : e.msg);
    }
    return 0;
}

static int role_list_cb(const struct store_entry *it, void *arg, struct err *e)
{
    struct admin_list *l = arg;
    Koderid__V2__ProjectRole *pr =
        koderid__v2__project_role__unpack(NULL, it->value.len, it->value.data);
    if (!pr)
        return 0;
    int r = 0;
    if (l->json) {
        json_t *o = json_object();
        json_object_set_new(o, "key", json_string(pr->key ? pr->key : ""));
        json_object_set_new(o, "display_name",
                            json_string(pr->display_name ? pr->display_name : ""));
        json_object_set_new(o, "group", json_string(pr->group_name ? pr->group_name : ""));
        json_object_set_new(o, "source", json_string(pr->source ? pr->source : ""));
        if (json_array_append_new(l->arr, o) < 0)
            r = err_set(e, -E_NOMEM, "out of memory");
    } else {
        printf("%s\t%s\t%s\n", pr->key ? pr->key : "", pr->group_name ? pr->group_name : "",
               pr->display_name ? pr->display_name : "");
    }
    koderid__v2__project_role__free_unpacked(pr, NULL);
    return r;
}

static int role_run(int argc, char **argv, bool add)
{
    static const struct option add_opts[] = {
        {"project", required_argument, NULL, R_PROJECT},
        {"key", required_argument, NULL, R_KEY},
        {"display-name", required_argument, NULL, R_DISPLAY_NAME},
        {"group", required_argument, NULL, R_GROUP},
        {NULL, 0, NULL, 0},
    };
    static const struct option list_opts[] = {
        {"project", required_argument, NULL, R_PROJECT},
        {"json", no_argument, NULL, 1},
        {NULL, 0, NULL, 0},
    };
    const char *v[R_JSON + 1] = {0};
    struct admin_args a = {.vals = v, .nvals = ARRAY_SIZE(v), .multi = -1};
    int r;
    if ((r = admin_parse("role", &argc, argv, add ? add_opts : list_opts, &a)) != 0)
        return r;
    const char *display = v[R_DISPLAY_NAME] ? v[R_DISPLAY_NAME] : "";
    const char *group = v[R_GROUP] ? v[R_GROUP] : "";
    if (add && !v[R_KEY])
        return cli_usage("role", "add needs --project ID and --key KEY");
    if (add && !valid_key(v[R_KEY]))
        return cli_usage("role",
                         "--key: 1 to %d characters, no spaces, '/' or control "
                         "characters",
                         CLI_NAME_MAX);
    if (!cli_valid_text(display) || !cli_valid_text(group))
        return cli_usage("role",
                         "--display-name/--group: at most %d characters, no control "
                         "characters",
                         CLI_NAME_MAX);
    struct cli cl;
    _cleanup_(repo_msg_freep) Koderid__V2__Project *p = NULL;
    if ((r = open_project(&cl, &a, "role", v[R_PROJECT],
                          add ? CLI_STORE : CLI_STORE | CLI_READ_ONLY, &p)) != 0)
        return r;
    struct err e = {0};
    char key[REPO_KEY_MAX];
    int status = CLI_EXIT_OK;
    if (add) {
        Koderid__V2__ProjectRole pr = KODERID__V2__PROJECT_ROLE__INIT;
        pr.project_id = p->id;
        pr.key = (char *)v[R_KEY];
        pr.display_name = (char *)display;
        pr.group_name = (char *)group;
        pr.org_id = p->org_id;
        pr.source = "v2";
        if (repo_key(key, "role/%s/%s", p->id, v[R_KEY]) < 0)
            status = cli_fail("role key too long");
        else if ((r = repo_cas(cl.store, key, 0, &pr.base, 0, NULL, &e)) == -E_CONFLICT)
            status = cli_fail("project %s already has role '%s'", p->id, v[R_KEY]);
        else if (r < 0)
            status = cli_fail("store: %s", e.msg);
    } else {
        repo_key(key, "role/%s/", p->id);
        status = admin_list(cl.store, key, role_list_cb, v[1] != NULL, NULL);
    }
    cli_close(&cl);
    return status;
}

int cmd_role(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return cli_usage("role", "missing subcommand (add, list), which comes first");
    if (strcmp(argv[1], "add") == 0)
        return role_run(argc - 1, argv + 1, true);
    if (strcmp(argv[1], "list") == 0)
        return role_run(argc - 1, argv + 1, false);
    return cli_usage("role", "unknown subcommand '%.40s'", argv[1]);
}

/* ---- grant ---- */

enum { G_USER, G_PROJECT, G_ROLE, G_JSON };

struct find_grant {
    const char *project;
    Koderid__V2__UserGrant *found; /* the user's grant on the project */
    uint64_t version;
    char key[REPO_KEY_MAX];
};

static int find_grant_cb(const struct store_entry *it, void *arg, struct err *e)
{
    struct find_grant *f = arg;
    (void)e;
    Koderid__V2__UserGrant *g =
        koderid__v2__user_grant__unpack(NULL, it->value.len, it->value.data);
    if (!g)
        return 0;
    if (g->project_id && strcmp(g->project_id, f->project) == 0 && it->klen < sizeof f->key &&
        (!g->project_grant_id || !*g->project_grant_id)) {
        f->found = g;
        f->version = it->value.version;
        memcpy(f->key, it->key, it->klen);
        f->key[it->klen] = '\0';
        return 1;
    }
    koderid__v2__user_grant__free_unpacked(g, NULL);
    return 0;
}

static bool has_role(char **roles, size_t n, const char *role)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(roles[i], role) == 0)
            return true;
    return false;
}

static int grant_list_cb(const struct store_entry *it, void *arg, struct err *e)
{
    struct admin_list *l = arg;
    _cleanup_(repo_msg_freep) Koderid__V2__UserGrant *g =
        koderid__v2__user_grant__unpack(NULL, it->value.len, it->value.data);
    if (!g || (l->filter && (!g->project_id || strcmp(g->project_id, l->filter) != 0)))
        return 0;
    if (!l->json) {
        printf("%s\t%s\t", g->id ? g->id : "", g->project_id ? g->project_id : "");
        for (size_t i = 0; i < g->n_roles; i++)
            printf("%s%s", i ? "," : "", g->roles[i]);
        printf("\t%s\n", g->state == 2 ? "inactive" : "active");
        return 0;
    }
    json_t *o = json_object(), *roles = json_array();
    for (size_t i = 0; i < g->n_roles; i++)
        json_array_append_new(roles, json_string(g->roles[i]));
    json_object_set_new(o, "grant_id", json_string(g->id ? g->id : ""));
    json_object_set_new(o, "user_id", json_string(g->user_id ? g->user_id : ""));
    json_object_set_new(o, "project_id", json_string(g->project_id ? g->project_id : ""));
    json_object_set_new(o, "org_id", json_string(g->org_id ? g->org_id : ""));
    json_object_set_new(o, "roles", roles);
    json_object_set_new(o, "state", json_string(g->state == 2 ? "inactive" : "active"));
    json_object_set_new(o, "source", json_string(g->source ? g->source : ""));
    if (json_array_append_new(l->arr, o) < 0)
        return err_set(e, -E_NOMEM, "out of memory");
    return 0;
}

/*
 * grant add: the user's grant on the project gains the roles (one grant per user and project,
 * as in v1); grant remove: it loses them, or goes entirely without --role.
 */
static int grant_change(struct cli *cl, const Koderid__V2__User *u, const Koderid__V2__Project *p,
                        const char **roles, size_t nroles, bool add, bool json)
{
    struct err e = {0};
    char prefix[REPO_KEY_MAX], key[REPO_KEY_MAX], id[21];
    repo_key(prefix, "grant/%s/", u->id);
    for (size_t i = 0; add && i < nroles; i++) {
        Koderid__V2__ProjectRole *pr = NULL;
        int r = repo_key(key, "role/%s/%s", p->id, roles[i]) < 0 || strchr(roles[i], '/')
                    ? -E_NOTFOUND
                    : repo_get(cl->store, key, &koderid__v2__project_role__descriptor,
                               (ProtobufCMessage **)&pr, NULL, &e);
        if (pr)
            koderid__v2__project_role__free_unpacked(pr, NULL);
        if (r == -E_NOTFOUND)
            return cli_fail("project %s has no role '%.60s' (add it with 'role add')", p->id,
                            roles[i]);
        if (r < 0)
            return cli_fail("store: %s", e.msg);
    }
    struct find_grant f = {.project = p->id};
    if (cli_scan(cl->store, prefix, find_grant_cb, &f, &e) < 0)
        return cli_fail("store: %s", e.msg);
    _cleanup_(repo_msg_freep) Koderid__V2__UserGrant *old = f.found;
    if (!add && !old)
        return cli_fail("user %s has no grant on project %s", u->id, p->id);
    if (old && old->n_roles > ROLES_MAX)
        return cli_fail("grant %s has more than %d roles", old->id, ROLES_MAX);
    if (!add && nroles == 0) {
        int r = store_del(cl->store, f.key, strlen(f.key), f.version, &e);
        return r < 0 ? cli_fail("store: %s", e.msg) : CLI_EXIT_OK;
    }
    /* The new role list: the old one plus (or minus) @roles, without duplicates. */
    char *list[ROLES_MAX * 2];
    size_t n = 0;
    for (size_t i = 0; old && i < old->n_roles && n < ROLES_MAX; i++)
        if (add || !has_role((char **)roles, nroles, old->roles[i]))
            list[n++] = old->roles[i];
    for (size_t i = 0; add && i < nroles; i++)
        if (!has_role(list, n, roles[i]))
            list[n++] = (char *)roles[i];
    Koderid__V2__UserGrant g = KODERID__V2__USER_GRANT__INIT;
    if (old) {
        g = *old;
        snprintf(key, sizeof key, "%s", f.key);
    } else {
        id_new(id);
        g.id = id;
        g.user_id = u->id;
        g.project_id = p->id;
        g.org_id = p->org_id;
        g.state = 1;
        g.source = "v2";
        repo_key(key, "grant/%s/%s", u->id, id);
    }
    g.roles = list;
    g.n_roles = n;
    int r = repo_cas(cl->store, key, old ? f.version : 0, &g.base, 0, NULL, &e);
    if (r < 0)
        return cli_fail("store: %s%s", e.msg,
                        r == -E_CONFLICT ? " (the grant changed meanwhile: run it again)" : "");
    if (!add)
        return CLI_EXIT_OK;
    if (json) {
        _cleanup_(json_decrefp) json_t *o = json_object();
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_string(list[i]));
        json_object_set_new(o, "grant_id", json_string(g.id));
        json_object_set_new(o, "roles", arr);
        cli_print_json(o);
    } else {
        printf("%s\n", g.id);
    }
    return CLI_EXIT_OK;
}

static int grant_run(int argc, char **argv, const char *sub)
{
    static const struct option opts[] = {
        {"user", required_argument, NULL, G_USER},
        {"project", required_argument, NULL, G_PROJECT},
        {"role", required_argument, NULL, G_ROLE},
        {"json", no_argument, NULL, G_JSON},
        {NULL, 0, NULL, 0},
    };
    const char *v[G_JSON + 1] = {0};
    const char *roles[ROLES_MAX];
    struct admin_args a = {.vals = v,
                           .nvals = ARRAY_SIZE(v),
                           .multi = G_ROLE,
                           .multi_vals = roles,
                           .multi_max = ROLES_MAX};
    bool add = strcmp(sub, "add") == 0, list = strcmp(sub, "list") == 0;
    int r;
    if ((r = admin_parse("grant", &argc, argv, opts, &a)) != 0)
        return r;
    if (!v[G_USER] || (!list && !v[G_PROJECT]))
        return cli_usage("grant", "%s needs --user ID|LOGIN%s", sub,
                         list ? "" : " and --project ID");
    if (add && a.nmulti == 0)
        return cli_usage("grant", "add needs at least one --role KEY");
    if (list && a.nmulti)
        return cli_usage("grant", "list takes no --role");
    struct cli cl;
    _cleanup_(repo_msg_freep) Koderid__V2__Project *p = NULL;
    unsigned flags = list ? CLI_STORE | CLI_READ_ONLY : CLI_STORE;
    if (v[G_PROJECT]) {
        if ((r = open_project(&cl, &a, "grant", v[G_PROJECT], flags, &p)) != 0)
            return r;
    } else if ((r = cli_open(&cl, &a.co, flags)) != 0) {
        return r;
    }
    struct err e = {0};
    _cleanup_(repo_msg_freep) Koderid__V2__User *u = NULL;
    if (admin_user_find(cl.store, v[G_USER], 0, &u, NULL, &e) < 0) {
        r = cli_fail("%s", e.msg);
    } else if (list) {
        char prefix[REPO_KEY_MAX];
        repo_key(prefix, "grant/%s/", u->id);
        r = admin_list(cl.store, prefix, grant_list_cb, v[G_JSON] != NULL, v[G_PROJECT]);
    } else {
        r = grant_change(&cl, u, p, roles, a.nmulti, add, v[G_JSON] != NULL);
    }
    cli_close(&cl);
    return r;
}

int cmd_grant(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return cli_usage("grant", "missing subcommand (add, list, remove), which comes first");
    if (strcmp(argv[1], "add") == 0 || strcmp(argv[1], "list") == 0 ||
        strcmp(argv[1], "remove") == 0)
        return grant_run(argc - 1, argv + 1, argv[1]);
    return cli_usage("grant", "unknown subcommand '%.40s'", argv[1]);
}
