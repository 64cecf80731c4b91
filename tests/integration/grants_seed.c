/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Seeds what the CLI cannot make yet, for tests/integration/grants.sh: machine users, API
 * apps, registered public keys (AuthnKey), the refresh grant on a client, a user's state.
 * Writes straight into the LMDB store (safe while `serve` runs: LMDB serializes writers).
 *
 *   grants_seed DIR machine ID USERNAME SECRET BCRYPT_COST ACCESS_TOKEN_TYPE
 *   grants_seed DIR api CLIENT_ID LIKE_CLIENT|- AUTH_METHOD SECRET|-
 *   grants_seed DIR key OWNER KID PEM_FILE OBJECT_TYPE
 *   grants_seed DIR refresh CLIENT_ID
 *   grants_seed DIR state USER_ID STATE
 *   grants_seed DIR hash client|user ID        (prints the stored secret hash)
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/repo.h"

static char *bcrypt(const char *secret, int cost)
{
    char setting[64];
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    if (!crypt_gensalt_rn("$2a$", cost, NULL, 0, setting, sizeof setting))
        return NULL;
    const char *h = crypt_rn(secret, setting, &cd, sizeof cd);
    return h && h[0] == '$' ? strdup(h) : NULL;
}

static int fail(const char *what, const struct err *e)
{
    fprintf(stderr, "grants_seed: %s: %s\n", what, e ? e->msg : "");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: grants_seed DIR COMMAND ARGS (see the file's head)\n");
        return 2;
    }
    struct store_config cfg = {.backend = "lmdb", .data_dir = argv[1], .tenant = 1};
    struct store *s = NULL;
    struct err e = {0};
    if (store_open(&cfg, &s, &e) < 0)
        return fail("store", &e);
    const char *cmd = argv[2];
    int rc = 0;

    if (strcmp(cmd, "machine") == 0 && argc == 8) {
        Koderid__V2__User u = KODERID__V2__USER__INIT;
        char *names[1] = {argv[4]};
        u.id = argv[3];
        u.org_id = (char *)"";
        u.username = argv[4];
        u.login_name = argv[4];
        u.n_login_names = 1;
        u.login_names = names;
        u.state = 1;
        u.type = 2;
        u.machine_name = argv[4];
        u.display_name = argv[4];
        u.secret_hash = bcrypt(argv[5], atoi(argv[6]));
        u.access_token_type = atoi(argv[7]);
        u.source = (char *)"v2";
        if (!u.secret_hash || repo_user_put(s, &u, &e) < 0)
            rc = fail("machine", &e);
        free(u.secret_hash);
    } else if (strcmp(cmd, "api") == 0 && argc == 7) {
        Koderid__V2__Client c = KODERID__V2__CLIENT__INIT;
        Koderid__V2__Client *like = NULL;
        if (strcmp(argv[4], "-") != 0 && repo_client_get(s, argv[4], &like, &e) < 0)
            return fail("like client", &e);
        c.client_id = argv[3];
        c.project_id = like ? like->project_id : (char *)"other-project";
        c.org_id = like ? like->org_id : (char *)"";
        c.name = argv[3];
        c.kind = KODERID__V2__CLIENT_KIND__CLIENT_API;
        c.state = 1;
        c.auth_method = atoi(argv[5]);
        c.secret_hash = strcmp(argv[6], "-") ? bcrypt(argv[6], 10) : strdup("");
        c.source = (char *)"v2";
        if (!c.secret_hash || repo_client_put(s, &c, &e) < 0)
            rc = fail("api", &e);
        free(c.secret_hash);
        if (like)
            koderid__v2__client__free_unpacked(like, NULL);
    } else if (strcmp(cmd, "key") == 0 && argc == 7) {
        FILE *f = fopen(argv[5], "r");
        static unsigned char pem[16384];
        size_t n = f ? fread(pem, 1, sizeof pem, f) : 0;
        if (f)
            fclose(f);
        if (!n)
            return fail("pem file", NULL);
        Koderid__V2__AuthnKey k = KODERID__V2__AUTHN_KEY__INIT;
        char key[REPO_KEY_MAX];
        k.id = argv[4];
        k.object_id = argv[3];
        k.object_type = atoi(argv[6]);
        k.public_key.data = pem;
        k.public_key.len = n;
        k.enabled = true;
        k.source = (char *)"v2";
        if (repo_key(key, "authnkey/%s/%s", argv[3], argv[4]) < 0 ||
            repo_put(s, key, &k.base, 0, NULL, &e) < 0)
            rc = fail("key", &e);
    } else if (strcmp(cmd, "refresh") == 0 && argc == 4) {
        Koderid__V2__Client *c = NULL;
        if (repo_client_get(s, argv[3], &c, &e) < 0)
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
    } else if (strcmp(cmd, "state") == 0 && argc == 5) {
        Koderid__V2__User *u = NULL;
        if (repo_user_get(s, argv[3], &u, &e) < 0)
            return fail("user", &e);
        u->state = atoi(argv[4]);
        if (repo_user_put(s, u, &e) < 0)
            rc = fail("state", &e);
        koderid__v2__user__free_unpacked(u, NULL);
    } else if (strcmp(cmd, "hash") == 0 && argc == 5) {
        if (strcmp(argv[3], "client") == 0) {
            Koderid__V2__Client *c = NULL;
            if (repo_client_get(s, argv[4], &c, &e) < 0)
                return fail("client", &e);
            printf("%s\n", c->secret_hash);
            koderid__v2__client__free_unpacked(c, NULL);
        } else {
            Koderid__V2__User *u = NULL;
            if (repo_user_get(s, argv[4], &u, &e) < 0)
                return fail("user", &e);
            printf("%s\n", u->secret_hash);
            koderid__v2__user__free_unpacked(u, NULL);
        }
    } else {
        fprintf(stderr, "grants_seed: bad command or arguments\n");
        rc = 2;
    }
    store_close(s);
    return rc;
}
