/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Seeds what the CLI cannot make yet, for tests/integration/grants.sh: machine users, API
 * apps, registered public keys (AuthnKey), the refresh grant on a client, a user's state.
 * Opens the store the way the gateway's commands do (server/cli.h cli_open: the config file,
 * then KODER_ID_V2_* variables, then --set flags), so it writes to whichever backend that
 * configuration names, LMDB (safe while `serve` runs: LMDB serializes writers) or kdb-next.
 *
 *   grants_seed --config FILE [--set KEY=VALUE ...] COMMAND ARGS, where COMMAND ARGS is one of
 *   machine ID USERNAME SECRET BCRYPT_COST ACCESS_TOKEN_TYPE
 *   api CLIENT_ID LIKE_CLIENT|- AUTH_METHOD SECRET|-
 *   key OWNER KID PEM_FILE OBJECT_TYPE
 *   refresh CLIENT_ID
 *   state USER_ID STATE
 *   hash client|user ID                        (prints the stored secret hash)
 *   rt CLIENT_ID USER_ID N                     (N refresh tokens, one family each; printed)
 *   code CLIENT_ID USER_ID REDIRECT_URI N      (N authorization codes; printed)
 *   lifetimes ACCESS_S ID_S                    (settings/oidc: token lifetimes, seconds)
 *   project ID ROLE_ASSERTION ROLE_CHECK HAS_PROJECT_CHECK ORG_ID|-
 *                                              (a project's v1 flags, 0 or 1; - keeps its org)
 *   profile USER_ID NICKNAME GENDER PHONE      (GENDER 1 female, 2 male, 3 diverse; the phone
 *                                              is marked verified)
 * A BCRYPT_COST of yN makes a yescrypt hash at cost N instead (never rehashed: the bench
 * shows with it that a verified secret is not checked again on every request).
 */
#include <crypt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rand.h"
#include "server/cli.h"
#include "storage/repo.h"

static char *hash_with(const char *secret, const char *cost_arg)
{
    char setting[128];
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    bool y = cost_arg[0] == 'y';
    int cost = atoi(cost_arg + (y ? 1 : 0));
    if (!crypt_gensalt_rn(y ? "$y$" : "$2a$", cost, NULL, 0, setting, sizeof setting))
        return NULL;
    const char *h = crypt_rn(secret, setting, &cd, sizeof cd);
    return h && h[0] == '$' ? strdup(h) : NULL;
}

/* Records for one store_restore() (few durable transactions instead of one per record). */
struct batch {
    struct store_entry *items;
    size_t n, cap;
};

static int batch_add(struct batch *b, const char *key, const ProtobufCMessage *m,
                     int64_t expires_at_ms)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 1024;
        b->items = realloc(b->items, b->cap * sizeof *b->items);
        if (!b->items)
            return -1;
    }
    struct store_entry *it = &b->items[b->n++];
    memset(it, 0, sizeof *it);
    it->key = strdup(key);
    it->klen = strlen(key);
    it->value.len = protobuf_c_message_get_packed_size(m);
    it->value.data = malloc(it->value.len ? it->value.len : 1);
    protobuf_c_message_pack(m, it->value.data);
    it->value.expires_at_ms = expires_at_ms;
    return it->key && it->value.data ? 0 : -1;
}

static int batch_write(struct store *s, struct batch *b, struct err *e)
{
    int r = store_restore(s, b->items, b->n, false, e);
    for (size_t i = 0; i < b->n; i++) {
        free(b->items[i].key);
        free(b->items[i].value.data);
    }
    free(b->items);
    memset(b, 0, sizeof *b);
    return r;
}

static int fail(const char *what, const struct err *e)
{
    fprintf(stderr, "grants_seed: %s: %s\n", what, e ? e->msg : "");
    return 1;
}

/* Runs one command (argv[1]) on @s; the exit status. */
static int seed(struct store *s, int argc, char **argv)
{
    struct err e = {0};
    const char *cmd = argv[1];
    int rc = 0;

    if (strcmp(cmd, "machine") == 0 && argc == 7) {
        Koderid__V2__User u = KODERID__V2__USER__INIT;
        char *names[1] = {argv[3]};
        u.id = argv[2];
        u.org_id = (char *)"";
        u.username = argv[3];
        u.login_name = argv[3];
        u.n_login_names = 1;
        u.login_names = names;
        u.state = 1;
        u.type = 2;
        u.machine_name = argv[3];
        u.display_name = argv[3];
        u.secret_hash = hash_with(argv[4], argv[5]);
        u.access_token_type = atoi(argv[6]);
        u.source = (char *)"v2";
        if (!u.secret_hash || repo_user_put(s, &u, &e) < 0)
            rc = fail("machine", &e);
        free(u.secret_hash);
    } else if (strcmp(cmd, "api") == 0 && argc == 6) {
        Koderid__V2__Client c = KODERID__V2__CLIENT__INIT;
        Koderid__V2__Client *like = NULL;
        if (strcmp(argv[3], "-") != 0 && repo_client_get(s, argv[3], &like, &e) < 0)
            return fail("like client", &e);
        c.client_id = argv[2];
        c.project_id = like ? like->project_id : (char *)"other-project";
        c.org_id = like ? like->org_id : (char *)"";
        c.name = argv[2];
        c.kind = KODERID__V2__CLIENT_KIND__CLIENT_API;
        c.state = 1;
        c.auth_method = atoi(argv[4]);
        c.secret_hash = strcmp(argv[5], "-") ? hash_with(argv[5], "10") : strdup("");
        c.source = (char *)"v2";
        if (!c.secret_hash || repo_client_put(s, &c, &e) < 0)
            rc = fail("api", &e);
        free(c.secret_hash);
        if (like)
            koderid__v2__client__free_unpacked(like, NULL);
    } else if (strcmp(cmd, "key") == 0 && argc == 6) {
        FILE *f = fopen(argv[4], "r");
        static unsigned char pem[16384];
        size_t n = f ? fread(pem, 1, sizeof pem, f) : 0;
        if (f)
            fclose(f);
        if (!n)
            return fail("pem file", NULL);
        Koderid__V2__AuthnKey k = KODERID__V2__AUTHN_KEY__INIT;
        char key[REPO_KEY_MAX];
        k.id = argv[3];
        k.object_id = argv[2];
        k.object_type = atoi(argv[5]);
        k.public_key.data = pem;
        k.public_key.len = n;
        k.enabled = true;
        k.source = (char *)"v2";
        if (repo_key(key, "authnkey/%s/%s", argv[2], argv[3]) < 0 ||
            repo_put(s, key, &k.base, 0, NULL, &e) < 0)
            rc = fail("key", &e);
    } else if (strcmp(cmd, "refresh") == 0 && argc == 3) {
        Koderid__V2__Client *c = NULL;
        if (repo_client_get(s, argv[2], &c, &e) < 0)
            return fail("client", &e);
        int32_t *g = calloc(c->n_grant_types + 1, sizeof *g);
        memcpy(g, c->grant_types, c->n_grant_types * sizeof *g);
        g[c->n_grant_types] = 2;
        int32_t *old = c->grant_types;
        c->grant_types = g;
        c->n_grant_types++;
        if (repo_client_put(s, c, &e) < 0)
            rc = fail("refresh", &e);
        c->grant_types = old;
        c->n_grant_types--;
        free(g);
        koderid__v2__client__free_unpacked(c, NULL);
    } else if (strcmp(cmd, "project") == 0 && argc == 7) {
        Koderid__V2__Project *p = NULL;
        if (repo_project_get(s, argv[2], &p, &e) < 0)
            return fail("project", &e);
        p->project_role_assertion = atoi(argv[3]) != 0;
        p->project_role_check = atoi(argv[4]) != 0;
        p->has_project_check = atoi(argv[5]) != 0;
        char *old_org = p->org_id;
        if (strcmp(argv[6], "-") != 0)
            p->org_id = argv[6];
        char key[REPO_KEY_MAX];
        if (repo_key(key, "project/%s", p->id) < 0 || repo_put(s, key, &p->base, 0, NULL, &e) < 0)
            rc = fail("project", &e);
        p->org_id = old_org;
        koderid__v2__project__free_unpacked(p, NULL);
    } else if (strcmp(cmd, "profile") == 0 && argc == 6) {
        Koderid__V2__User *u = NULL;
        if (repo_user_get(s, argv[2], &u, &e) < 0)
            return fail("user", &e);
        char *old_nick = u->nick_name, *old_phone = u->phone;
        u->nick_name = argv[3];
        u->gender = atoi(argv[4]);
        u->phone = argv[5];
        u->phone_verified = true;
        if (repo_user_put(s, u, &e) < 0)
            rc = fail("profile", &e);
        u->nick_name = old_nick;
        u->phone = old_phone;
        koderid__v2__user__free_unpacked(u, NULL);
    } else if (strcmp(cmd, "state") == 0 && argc == 4) {
        Koderid__V2__User *u = NULL;
        if (repo_user_get(s, argv[2], &u, &e) < 0)
            return fail("user", &e);
        u->state = atoi(argv[3]);
        if (repo_user_put(s, u, &e) < 0)
            rc = fail("state", &e);
        koderid__v2__user__free_unpacked(u, NULL);
    } else if (strcmp(cmd, "hash") == 0 && argc == 4) {
        if (strcmp(argv[2], "client") == 0) {
            Koderid__V2__Client *c = NULL;
            if (repo_client_get(s, argv[3], &c, &e) < 0)
                return fail("client", &e);
            printf("%s\n", c->secret_hash);
            koderid__v2__client__free_unpacked(c, NULL);
        } else {
            Koderid__V2__User *u = NULL;
            if (repo_user_get(s, argv[3], &u, &e) < 0)
                return fail("user", &e);
            printf("%s\n", u->secret_hash);
            koderid__v2__user__free_unpacked(u, NULL);
        }
    } else if (strcmp(cmd, "rt") == 0 && argc == 5) {
        int64_t now = store_now_ms() / 1000, exp_ms = (now + 86400) * 1000;
        struct batch b = {0};
        for (int i = 0; i < atoi(argv[4]) && rc == 0; i++) {
            char tok[44], hash[65], fam_id[21], key[REPO_KEY_MAX];
            rand_token(tok);
            sha256_hex(tok, strlen(tok), hash);
            id_new(fam_id);
            Koderid__V2__RefreshFamily f = KODERID__V2__REFRESH_FAMILY__INIT;
            f.id = fam_id;
            f.client_id = argv[2];
            f.user_id = argv[3];
            f.created_at = now;
            f.current_hash = hash;
            repo_key(key, "rtfam/%s", fam_id);
            if (batch_add(&b, key, &f.base, exp_ms) < 0)
                rc = fail("rtfam", NULL);
            Koderid__V2__RefreshToken t = KODERID__V2__REFRESH_TOKEN__INIT;
            t.family_id = fam_id;
            t.client_id = argv[2];
            t.user_id = argv[3];
            t.scope = (char *)"openid offline_access";
            t.auth_time = now;
            t.issued_at = now;
            t.family_created_at = now;
            repo_key(key, "rt/%s", hash);
            if (rc == 0 && batch_add(&b, key, &t.base, exp_ms) < 0)
                rc = fail("rt", NULL);
            printf("%s\n", tok);
        }
        if (rc == 0 && batch_write(s, &b, &e) < 0)
            rc = fail("write", &e);
    } else if (strcmp(cmd, "code") == 0 && argc == 6) {
        int64_t now = store_now_ms() / 1000;
        struct batch b = {0};
        for (int i = 0; i < atoi(argv[5]) && rc == 0; i++) {
            char tok[44], hash[65], key[REPO_KEY_MAX];
            rand_token(tok);
            sha256_hex(tok, strlen(tok), hash);
            Koderid__V2__AuthCode c = KODERID__V2__AUTH_CODE__INIT;
            c.client_id = argv[2];
            c.user_id = argv[3];
            c.redirect_uri = argv[4];
            c.scope = (char *)"openid profile";
            c.auth_time = now;
            c.issued_at = now;
            repo_key(key, "code/%s", hash);
            if (batch_add(&b, key, &c.base, (now + 60) * 1000) < 0)
                rc = fail("code", NULL);
            printf("%s\n", tok);
        }
        if (rc == 0 && batch_write(s, &b, &e) < 0)
            rc = fail("write", &e);
    } else if (strcmp(cmd, "lifetimes") == 0 && argc == 4) {
        Koderid__V2__OidcSettings st = KODERID__V2__OIDC_SETTINGS__INIT;
        st.access_token_lifetime = atoll(argv[2]);
        st.id_token_lifetime = atoll(argv[3]);
        st.source = (char *)"test";
        if (repo_put(s, "settings/oidc", &st.base, 0, NULL, &e) < 0)
            rc = fail("settings", &e);
    } else {
        fprintf(stderr, "grants_seed: bad command or arguments\n");
        rc = 2;
    }
    return rc;
}

int main(int argc, char **argv)
{
    struct cli_opts o;
    if (cli_common_args("grants_seed", &argc, argv, &o) != 0 || !o.config || argc < 3) {
        fprintf(stderr, "usage: grants_seed --config FILE [--set KEY=VALUE...] COMMAND ARGS "
                        "(see the file's head)\n");
        return 2;
    }
    struct cli c;
    if (cli_open(&c, &o, CLI_STORE) != 0)
        return 1;
    int rc = seed(c.store, argc, argv);
    cli_close(&c);
    return rc;
}
