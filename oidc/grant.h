/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The token endpoint's grants and the token issuance they share. token.c dispatches by
 * grant_type through a table (one row per grant); each grant lives in its own file
 * (grant_code.c, later grant_refresh.c, grant_client_credentials.c, grant_jwt_bearer.c) and
 * builds its answer with the oidc_issue_* functions below (issue.c), so every grant issues
 * tokens of the same shape (v1's, ../shared/ZITADEL.md section 5).
 *
 * What the records promise the grants still to come:
 *   - A refresh token is stored under rt/<sha256> (RefreshToken, TTL = idle expiry); its family
 *     under rtfam/<id> (RefreshFamily, TTL = absolute expiry) names the live token in
 *     current_hash. Rotation = cas the presented record to spent and the family to the new
 *     hash; a spent token presented again = oidc_revoke_family(). A family may be revoked
 *     before anything else was written for it (a replayed code): check `revoked` always.
 *   - An opaque access token (at/<sha256>, AccessToken) carries its jti and family_id; a JWT
 *     access token is not stored. Both are revoked by putting the jti on the deny-list
 *     (oidc_deny_jti); oidc_access_validate() (userinfo.h) checks it for both kinds.
 *   - A consumed code (code/<sha256>, used = true) keeps its family_id and access token jtis
 *     for as long as those tokens live, so a late replay still revokes them.
 *   - Grants whose caller is not an app client (client_credentials with a machine user's
 *     login name and secret, jwt-bearer) set authenticates_itself in token.c's table and can
 *     use oidc_secret_cached()/oidc_secret_verify() (clientauth.h) with the user id as subject
 *     and ctx->client_throttle keyed "user:<id>".
 */
#ifndef OIDC_GRANT_H
#define OIDC_GRANT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "oidc/http.h"
#include "oidc/oidc.h"
#include "oidc/params.h"
#include "storage/repo.h"

#define OIDC_CODE_LIFETIME 60 /* seconds an authorization code is good for */
#define OIDC_TOKEN_MAX 4096   /* bytes of a code or opaque token we look up */

/** What the token endpoint hands a grant. Everything is borrowed for the call. */
struct oidc_grant_req {
    const struct oidc_request *req;
    const struct oidc_params *form;
    const Koderid__V2__Client *client; /* authenticated client (NULL if the grant authenticates
                                          its own caller) */
    int auth_method;                   /* enum oidc_auth_method used */
    int64_t now;                       /* unix seconds */
};

/**
 * A grant: on success *ret_body is the token response object (the endpoint adds nothing);
 * on failure a negative code from the error table with a description in @e (no secrets).
 */
typedef int (*oidc_grant_cb)(struct oidc_ctx *ctx, const struct oidc_grant_req *g,
                             json_t **ret_body, struct err *e);

/** grant_type=authorization_code (RFC 6749 4.1.3, PKCE RFC 7636 4.6). grant_code.c. */
int oidc_grant_authorization_code(struct oidc_ctx *ctx, const struct oidc_grant_req *g,
                                  json_t **ret_body, struct err *e);

/** grant_type=refresh_token (RFC 6749 6): rotation, reuse detection, expiry. grant_refresh.c. */
int oidc_grant_refresh_token(struct oidc_ctx *ctx, const struct oidc_grant_req *g,
                             json_t **ret_body, struct err *e);

/**
 * grant_type=client_credentials for machine users (g->client is NULL: the grant checks the
 * machine user's secret itself). grant_client_credentials.c.
 */
int oidc_grant_client_credentials(struct oidc_ctx *ctx, const struct oidc_grant_req *g,
                                  json_t **ret_body, struct err *e);

/** grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer (RFC 7523). grant_jwt_bearer.c. */
int oidc_grant_jwt_bearer(struct oidc_ctx *ctx, const struct oidc_grant_req *g, json_t **ret_body,
                          struct err *e);

/**
 * The token response of a machine user (client_credentials, jwt-bearer): an access token
 * (opaque or JWT per User.access_token_type; sub = the user id, client_id = its username, aud
 * = projects named by `urn:zitadel:iam:org:project:id:{id}:aud` scopes plus the client_id), no
 * ID or refresh token; offline_access is dropped from @scope.
 */
int oidc_issue_machine_token(struct oidc_ctx *ctx, const Koderid__V2__User *user, const char *scope,
                             int64_t now, json_t **ret_body, struct err *e);

/**
 * Checks a PKCE code_verifier against the stored challenge (S256 only): a challenge needs a
 * verifier of 43..128 unreserved characters whose S256 equals it; a verifier without a stored
 * challenge is refused (RFC 9700 2.1.1), and so is a missing one when @pkce_required.
 * -E_INVALID_GRANT with a reason otherwise.
 */
int oidc_pkce_check(const char *challenge, const char *method, const char *verifier,
                    bool pkce_required, struct err *e);

/** Input of the issuance functions. Borrowed pointers. */
struct oidc_issue {
    const Koderid__V2__Client *client;
    const Koderid__V2__User *user;
    const char *scope; /* granted scope, space-separated */
    const char *nonce; /* "" or NULL when none */
    int64_t auth_time; /* 0 when unknown */
    char *const *amr;
    size_t n_amr;
    const json_t *audience; /* array from oidc_claims_audience() */
    const char *jti;        /* the access token's id (id_new()) */
    const char *family_id;  /* "" when no refresh token goes with it */
    const char *session_id;
    int64_t now;           /* unix seconds */
    int64_t at_expires_at; /* unix seconds */
};

/**
 * Issues the access token @in describes: opaque (random, stored as AccessToken under
 * at/<sha256>) or a JWT (RS256 with the current key: iss, sub, aud, exp, iat, nbf, jti,
 * client_id, scope; not stored) per Client.access_token_type. *ret is the caller's.
 */
int oidc_issue_access_token(struct oidc_ctx *ctx, const struct oidc_issue *in, char **ret,
                            struct err *e);

/**
 * Issues the ID token: iss, sub, aud (client_id always in it), exp, iat, auth_time, nonce,
 * azp, at_hash (of @access_token when not NULL), amr; userinfo claims by scope only with
 * Client.id_token_userinfo_assertion or when no access token goes with it. *ret caller's.
 */
int oidc_issue_id_token(struct oidc_ctx *ctx, const struct oidc_issue *in, const char *access_token,
                        char **ret, struct err *e);

/**
 * Creates the refresh family in->family_id (must not exist yet: a concurrent replay that
 * already revoked it makes this -E_INVALID_GRANT) and its first refresh token (RefreshToken
 * under rt/<sha256>). *ret is the caller's.
 */
int oidc_issue_refresh_token(struct oidc_ctx *ctx, const struct oidc_issue *in, char **ret,
                             struct err *e);

/**
 * Puts @jti on the deny-list (deny/<jti>) until @expires_at (unix seconds); nothing to do
 * when it has already expired. Used for JWT access tokens and, by jti, opaque ones too: an
 * opaque AccessToken record whose jti is denied is revoked.
 */
int oidc_deny_jti(struct oidc_ctx *ctx, const char *jti, const char *client_id, int64_t expires_at,
                  struct err *e);

/** Whether @jti is on the deny-list (errors count as denied: fail closed). */
bool oidc_jti_denied(struct oidc_ctx *ctx, const char *jti);

/** Marks refresh family @family_id revoked (creating a revoked stub when absent). */
int oidc_revoke_family(struct oidc_ctx *ctx, const char *family_id, const char *client_id,
                       const char *user_id, struct err *e);

/**
 * Issues the access token and, when the scope has openid, the ID token that @in describes,
 * and builds the token response with them and @refresh_token (may be NULL; borrowed).
 */
int oidc_issue_tokens(struct oidc_ctx *ctx, const struct oidc_issue *in, const char *refresh_token,
                      json_t **ret_body, struct err *e);

/** The standard token response object (token_type Bearer, expires_in from @in). */
json_t *oidc_token_response(const struct oidc_issue *in, const char *access_token,
                            const char *id_token, const char *refresh_token);

#endif
