/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a token or userinfo answer says about a user, with v1's claim shapes
 * (../shared/ZITADEL.md section 5): claims by scope, the audience rule, scope strings.
 */
#ifndef OIDC_CLAIMS_H
#define OIDC_CLAIMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "storage/repo.h"

/** Whether the space-separated @scope holds @name exactly. */
bool oidc_scope_has(const char *scope, const char *name);

/**
 * A copy of @scope without @name (every occurrence); caller frees. NULL on allocation failure.
 */
char *oidc_scope_without(const char *scope, const char *name);

/**
 * Adds the userinfo claims @scope grants about @u to @obj: `sub` always; `profile`: name,
 * given_name, family_name, nickname, gender, locale, preferred_username (the login name),
 * updated_at; `email`: email, email_verified; `phone`: phone_number, phone_number_verified.
 * Empty values are left out (as v1 does). -E_NOMEM.
 */
int oidc_claims_userinfo(const Koderid__V2__User *u, const char *scope, json_t *obj, struct err *e);

/**
 * v1's audience of tokens issued to @c: the client ids of every app in @c's project, then the
 * project id, then the id of every existing project a `urn:zitadel:iam:org:project:id:{id}:aud`
 * scope in @scope names (at most OIDC_AUD_SCOPES_MAX; v1's `zitadel` alias names no project
 * here and is skipped); @c's own client_id is always in it. *ret is a new JSON array.
 */
int oidc_claims_audience(struct store *s, const Koderid__V2__Client *c, const char *scope,
                         json_t **ret, struct err *e);

/** Where claims go: v1 puts role claims in the ID token and a JWT access token only per flag. */
enum oidc_claims_target {
    OIDC_CLAIMS_USERINFO = 0,   /* userinfo and introspection: always when requested */
    OIDC_CLAIMS_ID_TOKEN,       /* roles only with Client.id_token_role_assertion */
    OIDC_CLAIMS_ACCESS_TOKEN,   /* roles only with Client.access_token_role_assertion */
    OIDC_CLAIMS_ID_TOKEN_ROLES, /* an ID token without userinfo claims (same Zitadel claims) */
};

/**
 * Adds v1's Zitadel claims about @u for client @c (ZITADEL.md 5.1, 5.2) to @obj:
 *   - role claims `urn:zitadel:iam:org:project:roles` (the client's project) and
 *     `urn:zitadel:iam:org:project:{id}:roles` (every project of the role audience), shaped
 *     {role: {org id: org primary domain}}, from the user's active UserGrants. Roles are asserted
 *     when the project has project_role_assertion or a role scope asks (v1's prepareRoles):
 *     role audience = the client's project, plus, when a `urn:zitadel:iam:org:project:role:{key}`
 *     or `urn:zitadel:iam:org:projects:roles` scope asks, the projects of
 *     `...:project:id:{id}:aud` scopes, and with `...:projects:roles` every project in
 *     @audience (may be NULL). `...:role:{key}` scopes narrow to those keys;
 *     `urn:zitadel:iam:org:roles:id:{org}` scopes narrow to grants of those orgs. @target gates
 *     them per the client's *_role_assertion flags.
 *   - with `urn:zitadel:iam:user:resourceowner`: `urn:zitadel:iam:user:resourceowner:id`,
 *     `:name`, `:primary_domain` (the user's org); with `urn:zitadel:iam:org:id:{id}`: claim
 *     `urn:zitadel:iam:org:id` (plus the resource-owner claims, as v1); with
 *     `urn:zitadel:iam:org:domain:primary:{d}`: claim `urn:zitadel:iam:org:domain:primary`.
 *     These go to every target, as v1's private userinfo claims do (a JWT access token gets
 *     them, and id_token_userinfo_assertion gates only oidc_claims_userinfo()'s claims).
 * -E_NOMEM or a store error.
 */
int oidc_claims_zitadel(struct store *s, const Koderid__V2__Client *c, const Koderid__V2__User *u,
                        const char *scope, const json_t *audience, enum oidc_claims_target target,
                        json_t *obj, struct err *e);

/**
 * Whether @u may sign in to @c as v1 decides after login: the project's project_role_check
 * wants an active grant of @u on the project; has_project_check wants @u's org to own the
 * project (v1 also accepts an org the project was granted to: project grants are not imported
 * yet, so such users are refused); `urn:zitadel:iam:org:id:{id}` and
 * `urn:zitadel:iam:org:domain:primary:{d}` scopes restrict sign-in to that org. 0 allowed,
 * -E_ACCESS_DENIED with the reason, or a store error.
 */
int oidc_claims_signin_check(struct store *s, const Koderid__V2__Client *c,
                             const Koderid__V2__User *u, const char *scope, struct err *e);

#define OIDC_ROLE_SCOPE_PREFIX "urn:zitadel:iam:org:project:role:"
#define OIDC_PROJECTS_ROLES_SCOPE "urn:zitadel:iam:org:projects:roles"
#define OIDC_ROLES_ORG_SCOPE_PREFIX "urn:zitadel:iam:org:roles:id:"
#define OIDC_ORG_ID_SCOPE_PREFIX "urn:zitadel:iam:org:id:"
#define OIDC_ORG_DOMAIN_SCOPE_PREFIX "urn:zitadel:iam:org:domain:primary:"
#define OIDC_RESOURCEOWNER_SCOPE "urn:zitadel:iam:user:resourceowner"
#define OIDC_AUD_SCOPE_PREFIX "urn:zitadel:iam:org:project:id:"
#define OIDC_AUD_SCOPE_SUFFIX ":aud"
#define OIDC_AUD_SCOPES_MAX 16

#endif
