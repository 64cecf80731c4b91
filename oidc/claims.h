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

#define OIDC_AUD_SCOPE_PREFIX "urn:zitadel:iam:org:project:id:"
#define OIDC_AUD_SCOPE_SUFFIX ":aud"
#define OIDC_AUD_SCOPES_MAX 16

#endif
