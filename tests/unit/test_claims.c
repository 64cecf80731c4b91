/* SPDX-License-Identifier: Apache-2.0 */
/*
 * v1's Zitadel claims (oidc/claims.c) over a temporary LMDB store: role claims by scope and
 * project_role_assertion, the per-target gates (ID token, JWT access token, userinfo), the
 * resource-owner and org claims, and the sign-in checks (project_role_check,
 * has_project_check, org restriction scopes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fixture_token.h"
#include "oidc/claims.h"

static char dir[64];
static struct store *st;

static void put_org(const char *id, const char *name, const char *domain)
{
    struct err e = {0};
    char key[REPO_KEY_MAX];
    Koderid__V2__Org o = KODERID__V2__ORG__INIT;
    o.id = (char *)id;
    o.name = (char *)name;
    o.primary_domain = (char *)domain;
    o.state = 1;
    repo_key(key, "org/%s", id);
    assert_int_equal(repo_put(st, key, &o.base, 0, NULL, &e), 0);
}

static void put_project(const char *id, const char *org, bool assertion, bool role_check,
                        bool has_check)
{
    struct err e = {0};
    char key[REPO_KEY_MAX];
    Koderid__V2__Project p = KODERID__V2__PROJECT__INIT;
    p.id = (char *)id;
    p.org_id = (char *)org;
    p.state = 1;
    p.project_role_assertion = assertion;
    p.project_role_check = role_check;
    p.has_project_check = has_check;
    repo_key(key, "project/%s", id);
    assert_int_equal(repo_put(st, key, &p.base, 0, NULL, &e), 0);
}

static void put_grant(const char *user, const char *id, const char *project, const char *org,
                      const char *r1, const char *r2, int state)
{
    struct err e = {0};
    char key[REPO_KEY_MAX];
    char *roles[2] = {(char *)r1, (char *)r2};
    Koderid__V2__UserGrant g = KODERID__V2__USER_GRANT__INIT;
    g.id = (char *)id;
    g.user_id = (char *)user;
    g.project_id = (char *)project;
    g.org_id = (char *)org;
    g.roles = roles;
    g.n_roles = r2 ? 2 : 1;
    g.state = state;
    repo_key(key, "grant/%s/%s", user, id);
    assert_int_equal(repo_put(st, key, &g.base, 0, NULL, &e), 0);
}

static int setup(void **state)
{
    (void)state;
    st = fx_store_open(dir);
    if (!st)
        return -1;
    put_org("org1", "Koder", "koder.example");
    put_org("org2", "Partner", "partner.example");
    put_project("p1", "org1", false, false, false); /* the client's project */
    put_project("p2", "org1", false, false, false); /* another project */
    put_project("p3", "org1", true, true, true);    /* assertion + both checks */
    struct fx_client c1 = {.client_id = "c1@p1", .project_id = "p1", .auth_method = 2};
    struct fx_client c3 = {.client_id = "c3@p3", .project_id = "p3", .auth_method = 2};
    struct fx_client c4 = {.client_id = "c4@p1", .project_id = "p1", .auth_method = 2};
    assert_int_equal(fx_client_put(st, &c1), 0);
    assert_int_equal(fx_client_put(st, &c3), 0);
    assert_int_equal(fx_client_put(st, &c4), 0);
    assert_int_equal(fx_user_put(st, "u1", "ada@koder.example", 1), 0);
    put_grant("u1", "g1", "p1", "org1", "admin", "reader", 1);
    put_grant("u1", "g2", "p1", "org2", "reader", NULL, 1);
    put_grant("u1", "g3", "p2", "org1", "ops", NULL, 1);
    put_grant("u1", "g4", "p1", "org1", "revoked-role", NULL, 2); /* inactive */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    store_close(st);
    fx_rm_rf(dir);
    return 0;
}

static Koderid__V2__Client *client(const char *id)
{
    Koderid__V2__Client *c = NULL;
    assert_int_equal(repo_client_get(st, id, &c, NULL), 0);
    return c;
}

static Koderid__V2__User *user(const char *id)
{
    Koderid__V2__User *u = NULL;
    assert_int_equal(repo_user_get(st, id, &u, NULL), 0);
    return u;
}

/* The claims for @scope at @target, with the audience oidc_claims_audience() computes. */
static json_t *claims_for(Koderid__V2__Client *c, const char *scope, enum oidc_claims_target t)
{
    struct err e = {0};
    json_t *aud = NULL, *obj = json_object();
    assert_int_equal(oidc_claims_audience(st, c, scope, &aud, &e), 0);
    Koderid__V2__User *u = user("u1");
    int r = oidc_claims_zitadel(st, c, u, scope, aud, t, obj, &e);
    if (r < 0)
        fail_msg("oidc_claims_zitadel: %s", e.msg);
    koderid__v2__user__free_unpacked(u, NULL);
    json_decref(aud);
    return obj;
}

static const char *org_of(json_t *obj, const char *claim, const char *role, const char *org)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(obj, claim), role), org));
}

static void test_roles_by_scope(void **state)
{
    (void)state;
    Koderid__V2__Client *c = client("c1@p1");

    /* Nothing asked, no assertion: no role claims at all. */
    json_t *o = claims_for(c, "openid profile", OIDC_CLAIMS_USERINFO);
    assert_null(json_object_get(o, "urn:zitadel:iam:org:project:roles"));
    assert_int_equal(json_object_size(o), 0);
    json_decref(o);

    /* One role asked: only that role, in both claim names, shape role -> {org: domain}. */
    o = claims_for(c, "openid urn:zitadel:iam:org:project:role:reader", OIDC_CLAIMS_USERINFO);
    json_t *roles = json_object_get(o, "urn:zitadel:iam:org:project:roles");
    assert_non_null(roles);
    assert_int_equal(json_object_size(roles), 1);
    assert_string_equal(org_of(o, "urn:zitadel:iam:org:project:roles", "reader", "org1"),
                        "koder.example");
    assert_string_equal(org_of(o, "urn:zitadel:iam:org:project:roles", "reader", "org2"),
                        "partner.example");
    assert_true(json_equal(roles, json_object_get(o, "urn:zitadel:iam:org:project:p1:roles")));
    assert_null(json_object_get(o, "urn:zitadel:iam:org:project:p2:roles"));
    json_decref(o);

    /* A role the user does not hold: asked for, but no claim. */
    o = claims_for(c, "openid urn:zitadel:iam:org:project:role:owner", OIDC_CLAIMS_USERINFO);
    assert_null(json_object_get(o, "urn:zitadel:iam:org:project:roles"));
    json_decref(o);

    /* All projects in the audience: p1 (own) and p2 (by an :aud scope); inactive grants never. */
    o = claims_for(c,
                   "openid urn:zitadel:iam:org:projects:roles "
                   "urn:zitadel:iam:org:project:id:p2:aud",
                   OIDC_CLAIMS_USERINFO);
    roles = json_object_get(o, "urn:zitadel:iam:org:project:roles");
    assert_int_equal(json_object_size(roles), 2); /* admin, reader */
    assert_non_null(json_object_get(roles, "admin"));
    assert_null(json_object_get(roles, "revoked-role"));
    assert_string_equal(org_of(o, "urn:zitadel:iam:org:project:p2:roles", "ops", "org1"),
                        "koder.example");
    json_decref(o);

    /* An :aud scope alone asks for no roles (v1's prepareRoles): the audience grows, no claim. */
    o = claims_for(c, "openid urn:zitadel:iam:org:project:id:p2:aud", OIDC_CLAIMS_USERINFO);
    assert_int_equal(json_object_size(o), 0);
    json_decref(o);

    /* A role asked with an :aud scope: that role in every project of the role audience. */
    o = claims_for(c,
                   "openid urn:zitadel:iam:org:project:role:ops "
                   "urn:zitadel:iam:org:project:id:p2:aud",
                   OIDC_CLAIMS_USERINFO);
    assert_string_equal(org_of(o, "urn:zitadel:iam:org:project:p2:roles", "ops", "org1"),
                        "koder.example");
    assert_null(json_object_get(o, "urn:zitadel:iam:org:project:roles"));
    json_decref(o);

    /* Roles granted within one org only. */
    o = claims_for(c,
                   "openid urn:zitadel:iam:org:project:role:reader "
                   "urn:zitadel:iam:org:roles:id:org2",
                   OIDC_CLAIMS_USERINFO);
    assert_null(org_of(o, "urn:zitadel:iam:org:project:roles", "reader", "org1"));
    assert_string_equal(org_of(o, "urn:zitadel:iam:org:project:roles", "reader", "org2"),
                        "partner.example");
    json_decref(o);
    koderid__v2__client__free_unpacked(c, NULL);
}

static void test_role_assertion_and_targets(void **state)
{
    (void)state;
    /* p3 asserts roles without a scope, but u1 has no grant on p3: nothing. Grant one. */
    put_grant("u1", "g5", "p3", "org1", "viewer", NULL, 1);
    Koderid__V2__Client *c = client("c3@p3");
    json_t *o = claims_for(c, "openid", OIDC_CLAIMS_USERINFO);
    assert_string_equal(org_of(o, "urn:zitadel:iam:org:project:roles", "viewer", "org1"),
                        "koder.example");
    json_decref(o);

    /* Without the flags, never in the ID token nor the JWT access token. */
    o = claims_for(c, "openid", OIDC_CLAIMS_ID_TOKEN);
    assert_int_equal(json_object_size(o), 0);
    json_decref(o);
    o = claims_for(c, "openid", OIDC_CLAIMS_ACCESS_TOKEN);
    assert_int_equal(json_object_size(o), 0);
    json_decref(o);

    c->id_token_role_assertion = true;
    o = claims_for(c, "openid", OIDC_CLAIMS_ID_TOKEN_ROLES);
    assert_non_null(json_object_get(o, "urn:zitadel:iam:org:project:roles"));
    json_decref(o);
    o = claims_for(c, "openid", OIDC_CLAIMS_ACCESS_TOKEN);
    assert_int_equal(json_object_size(o), 0);
    json_decref(o);

    c->id_token_role_assertion = false;
    c->access_token_role_assertion = true;
    o = claims_for(c, "openid", OIDC_CLAIMS_ACCESS_TOKEN);
    assert_non_null(json_object_get(o, "urn:zitadel:iam:org:project:p3:roles"));
    json_decref(o);
    /*
     * v1 copies its userinfo's private claims into a JWT access token (createJWT: claims.Claims
     * = userInfo.Claims) and id_token_userinfo_assertion gates only the profile, email, phone
     * and address claims: the resource-owner and org claims are in both whenever scoped.
     */
    c->access_token_role_assertion = false;
    o = claims_for(c, "openid urn:zitadel:iam:user:resourceowner urn:zitadel:iam:org:id:org1",
                   OIDC_CLAIMS_ACCESS_TOKEN);
    assert_string_equal(
        json_string_value(json_object_get(o, "urn:zitadel:iam:user:resourceowner:id")), "org1");
    assert_string_equal(json_string_value(json_object_get(o, "urn:zitadel:iam:org:id")), "org1");
    assert_null(json_object_get(o, "urn:zitadel:iam:org:project:roles"));
    json_decref(o);
    o = claims_for(c, "openid urn:zitadel:iam:user:resourceowner", OIDC_CLAIMS_ID_TOKEN_ROLES);
    assert_string_equal(
        json_string_value(json_object_get(o, "urn:zitadel:iam:user:resourceowner:name")), "Koder");
    assert_null(json_object_get(o, "urn:zitadel:iam:org:project:roles"));
    json_decref(o);
    koderid__v2__client__free_unpacked(c, NULL);
}

static void test_resourceowner_and_org(void **state)
{
    (void)state;
    Koderid__V2__Client *c = client("c1@p1");
    json_t *o = claims_for(c, "openid urn:zitadel:iam:user:resourceowner", OIDC_CLAIMS_USERINFO);
    assert_string_equal(
        json_string_value(json_object_get(o, "urn:zitadel:iam:user:resourceowner:id")), "org1");
    assert_string_equal(
        json_string_value(json_object_get(o, "urn:zitadel:iam:user:resourceowner:name")), "Koder");
    assert_string_equal(
        json_string_value(json_object_get(o, "urn:zitadel:iam:user:resourceowner:primary_domain")),
        "koder.example");
    assert_null(json_object_get(o, "urn:zitadel:iam:org:id"));
    json_decref(o);

    o = claims_for(c, "openid urn:zitadel:iam:org:id:org1", OIDC_CLAIMS_ID_TOKEN);
    assert_string_equal(json_string_value(json_object_get(o, "urn:zitadel:iam:org:id")), "org1");
    assert_non_null(json_object_get(o, "urn:zitadel:iam:user:resourceowner:id"));
    json_decref(o);

    o = claims_for(c, "openid urn:zitadel:iam:org:domain:primary:koder.example",
                   OIDC_CLAIMS_USERINFO);
    assert_string_equal(json_string_value(json_object_get(o, "urn:zitadel:iam:org:domain:primary")),
                        "koder.example");
    assert_null(json_object_get(o, "urn:zitadel:iam:user:resourceowner:id"));
    json_decref(o);
    koderid__v2__client__free_unpacked(c, NULL);
}

static int check(const char *cid, const char *uid, const char *scope)
{
    struct err e = {0};
    Koderid__V2__Client *c = client(cid);
    Koderid__V2__User *u = user(uid);
    int r = oidc_claims_signin_check(st, c, u, scope, &e);
    koderid__v2__client__free_unpacked(c, NULL);
    koderid__v2__user__free_unpacked(u, NULL);
    return r;
}

static void test_signin_checks(void **state)
{
    (void)state;
    assert_int_equal(check("c1@p1", "u1", "openid"), 0);
    /* Org restriction by id and by primary domain (case-insensitive, as domains are). */
    assert_int_equal(check("c1@p1", "u1", "openid urn:zitadel:iam:org:id:org1"), 0);
    assert_int_equal(check("c1@p1", "u1", "openid urn:zitadel:iam:org:id:org2"), -E_ACCESS_DENIED);
    assert_int_equal(
        check("c1@p1", "u1", "openid urn:zitadel:iam:org:domain:primary:KODER.example"), 0);
    assert_int_equal(
        check("c1@p1", "u1", "openid urn:zitadel:iam:org:domain:primary:partner.example"),
        -E_ACCESS_DENIED);

    /* p3: project_role_check and has_project_check. u2 has no grant on p3 and lives in org2. */
    assert_int_equal(fx_user_put(st, "u2", "bob@partner.example", 1), 0);
    Koderid__V2__User *u2 = user("u2");
    free(u2->org_id); /* unpacked strings are separate allocations */
    u2->org_id = strdup("org2");
    struct err e = {0};
    assert_int_equal(repo_user_put(st, u2, &e), 0);
    koderid__v2__user__free_unpacked(u2, NULL);
    assert_int_equal(check("c3@p3", "u2", "openid"), -E_ACCESS_DENIED); /* foreign org */
    assert_int_equal(check("c1@p1", "u2", "openid"), 0);                /* p1 checks nothing */

    /* u3 in the owning org but without a grant on p3: the role check refuses. */
    assert_int_equal(fx_user_put(st, "u3", "cy@koder.example", 1), 0);
    assert_int_equal(check("c3@p3", "u3", "openid"), -E_ACCESS_DENIED);
    put_grant("u3", "g9", "p3", "org1", "viewer", NULL, 2); /* an inactive grant does not count */
    assert_int_equal(check("c3@p3", "u3", "openid"), -E_ACCESS_DENIED);
    put_grant("u3", "g10", "p3", "org1", "viewer", NULL, 1);
    assert_int_equal(check("c3@p3", "u3", "openid"), 0);
}

int main(void)
{
    cmocka_set_message_output(CM_OUTPUT_TAP);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles_by_scope),
        cmocka_unit_test(test_role_assertion_and_targets),
        cmocka_unit_test(test_resourceowner_and_org),
        cmocka_unit_test(test_signin_checks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
