/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `user lock|unlock|deactivate|reactivate|remove --user ID|LOGIN_NAME`: an operator changes a
 * user's state (humans and machine users alike), with v1's UserState values (ZITADEL.md):
 * 1 active, 2 inactive, 4 locked, 6 initial.
 *
 * The transitions are v1's: lock an active or initial user; unlock a locked one (it becomes
 * active); deactivate an active or locked one (not an initial one, as in v1); reactivate an
 * inactive one. A user already in the target state is left alone: a note on stderr, the id on
 * stdout and exit 0, so a script can run the command again. Any other state is exit 1.
 *
 * Everything the provider does with a user checks state == 1 on each request (sign-in, silent
 * sign-in from a session, refresh, client_credentials, JWT bearer, introspection, userinfo),
 * so a change takes effect at once, without touching sessions or tokens. `user remove`
 * deletes the record, its grants, keys and login-name indexes (repo_user_del()): the login
 * name can be taken again, and what the user still holds finds no user.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "server/admin.h"
#include "server/cli.h"
#include "server/commands.h"

#define CMD "user"

struct transition {
    const char *sub;
    int to;           /* the new state; 0: remove the user */
    int from[2];      /* the states it applies to (0 = unused) */
    const char *done; /* the target state's name, for "already ..." */
};

static const struct transition transitions[] = {
    {"lock", 4, {1, 6}, "locked"},         {"unlock", 1, {4, 0}, "active"},
    {"deactivate", 2, {1, 4}, "inactive"}, {"reactivate", 1, {2, 0}, "active"},
    {"remove", 0, {0, 0}, NULL},
};

static const char *state_name(int state)
{
    switch (state) {
    case 1:
        return "active";
    case 2:
        return "inactive";
    case 3:
        return "deleted";
    case 4:
        return "locked";
    case 5:
        return "suspended";
    case 6:
        return "initial";
    default:
        return "in an unknown state";
    }
}

/* One compare-and-swap of the state; -E_CONFLICT when the record changed meanwhile. */
static int apply(struct store *s, const struct transition *t, const char *who, struct err *e)
{
    _cleanup_(repo_msg_freep) Koderid__V2__User *u = NULL;
    uint64_t version = 0;
    char key[REPO_KEY_MAX];
    int r = admin_user_find(s, who, 0, &u, &version, e);
    if (r < 0)
        return r == -E_NOTFOUND ? cli_fail("--user: %s", e->msg) : cli_fail("store: %s", e->msg);
    if (t->to == 0) {
        if ((r = repo_user_del(s, u->id, e)) < 0)
            return cli_fail("store: %s", e->msg);
        printf("%s\n", u->id);
        return CLI_EXIT_OK;
    }
    if (u->state == t->to) {
        fprintf(stderr, "%s: user %s is already %s (nothing to do)\n", CLI_PROG, u->id, t->done);
        printf("%s\n", u->id);
        return CLI_EXIT_OK;
    }
    if (u->state != t->from[0] && u->state != t->from[1])
        return cli_fail("user %s is %s: cannot %s it", u->id, state_name(u->state), t->sub);
    Koderid__V2__User copy = *u;
    copy.state = t->to;
    copy.changed_at = (int64_t)time(NULL);
    repo_key(key, "user/%s", u->id);
    r = repo_cas(s, key, version, &copy.base, 0, NULL, e);
    if (r == -E_CONFLICT)
        return r;
    if (r < 0)
        return cli_fail("store: %s", e->msg);
    printf("%s\n", u->id);
    return CLI_EXIT_OK;
}

int cmd_user_state(int argc, char **argv)
{
    const struct transition *t = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(transitions); i++)
        if (strcmp(argv[0], transitions[i].sub) == 0)
            t = &transitions[i];
    if (!t)
        return -1;
    static const struct option opts[] = {
        {"user", required_argument, NULL, 0},
        {NULL, 0, NULL, 0},
    };
    const char *v[1] = {0};
    struct admin_args a = {.vals = v, .nvals = ARRAY_SIZE(v), .multi = -1};
    int r;
    if ((r = admin_parse(CMD, &argc, argv, opts, &a)) != 0)
        return r;
    if (!v[0] || !cli_valid_name(v[0]))
        return cli_usage(CMD, "%s needs --user ID|LOGIN_NAME", t->sub);
    struct cli cl;
    if ((r = cli_open(&cl, &a.co, CLI_STORE)) != 0)
        return r;
    struct err e = {0};
    for (int attempt = 0; attempt < 5; attempt++) {
        r = apply(cl.store, t, v[0], &e);
        if (r != -E_CONFLICT)
            break;
    }
    if (r == -E_CONFLICT)
        r = cli_fail("store: user %s changed meanwhile: run it again", v[0]);
    cli_close(&cl);
    return r;
}
