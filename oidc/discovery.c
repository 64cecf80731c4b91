/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Discovery, built from tables so the document grows with the code: an endpoint or a
 * supported value appears here in the same change that implements it, never before. Paths
 * and values follow v1 (../shared/ZITADEL.md section 4).
 */
#include "discovery.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"

/* Endpoints: field -> path under the issuer. */
static const struct {
    const char *field;
    const char *path;
} endpoints[] = {
    {"jwks_uri", OIDC_PATH_JWKS},
    {"authorization_endpoint", "/oauth/v2/authorize"},
    {"token_endpoint", "/oauth/v2/token"},
    {"userinfo_endpoint", "/oidc/v1/userinfo"},
    {"introspection_endpoint", "/oauth/v2/introspect"},
    {"revocation_endpoint", "/oauth/v2/revoke"},
    {"end_session_endpoint", "/oidc/v1/end_session"},
};

/* Lists: rows with the same field make one array, in row order. */
static const struct {
    const char *field;
    const char *value;
} lists[] = {
    {"scopes_supported", "openid"},
    {"scopes_supported", "profile"},
    {"scopes_supported", "email"},
    {"scopes_supported", "phone"},
    {"scopes_supported", "offline_access"},
    /* authorize.c and authresp.c; the implicit types only for clients configured for them. */
    {"response_types_supported", "code"},
    {"response_types_supported", "id_token"},
    {"response_types_supported", "id_token token"},
    {"response_modes_supported", "query"},
    {"response_modes_supported", "fragment"},
    {"response_modes_supported", "form_post"},
    {"grant_types_supported", "authorization_code"},
    {"grant_types_supported", "implicit"},
    {"grant_types_supported", "refresh_token"},
    {"grant_types_supported", "client_credentials"},
    {"grant_types_supported", "urn:ietf:params:oauth:grant-type:jwt-bearer"},
    {"subject_types_supported", "public"},
    {"id_token_signing_alg_values_supported", "RS256"},
    {"token_endpoint_auth_methods_supported", "none"},
    {"token_endpoint_auth_methods_supported", "client_secret_basic"},
    {"token_endpoint_auth_methods_supported", "client_secret_post"},
    {"token_endpoint_auth_methods_supported", "private_key_jwt"},
    /* private_key_jwt assertions: the algorithm is the registered key's (assertion.c). */
    {"token_endpoint_auth_signing_alg_values_supported", "RS256"},
    {"token_endpoint_auth_signing_alg_values_supported", "ES256"},
    /* introspect.c: basic and private_key_jwt only, as v1. */
    {"introspection_endpoint_auth_methods_supported", "client_secret_basic"},
    {"introspection_endpoint_auth_methods_supported", "private_key_jwt"},
    {"introspection_endpoint_auth_signing_alg_values_supported", "RS256"},
    {"introspection_endpoint_auth_signing_alg_values_supported", "ES256"},
    /* revoke.c: every client authentication method. */
    {"revocation_endpoint_auth_methods_supported", "none"},
    {"revocation_endpoint_auth_methods_supported", "client_secret_basic"},
    {"revocation_endpoint_auth_methods_supported", "client_secret_post"},
    {"revocation_endpoint_auth_methods_supported", "private_key_jwt"},
    {"revocation_endpoint_auth_signing_alg_values_supported", "RS256"},
    {"revocation_endpoint_auth_signing_alg_values_supported", "ES256"},
    {"code_challenge_methods_supported", "S256"},
    /* What tokens and userinfo say (issue.c, claims.c). */
    {"claims_supported", "sub"},
    {"claims_supported", "aud"},
    {"claims_supported", "exp"},
    {"claims_supported", "iat"},
    {"claims_supported", "iss"},
    {"claims_supported", "auth_time"},
    {"claims_supported", "nonce"},
    {"claims_supported", "amr"},
    {"claims_supported", "at_hash"},
    {"claims_supported", "azp"},
    {"claims_supported", "client_id"},
    {"claims_supported", "scope"},
    {"claims_supported", "preferred_username"},
    {"claims_supported", "name"},
    {"claims_supported", "family_name"},
    {"claims_supported", "given_name"},
    {"claims_supported", "nickname"},
    {"claims_supported", "gender"},
    {"claims_supported", "locale"},
    {"claims_supported", "updated_at"},
    {"claims_supported", "email"},
    {"claims_supported", "email_verified"},
    {"claims_supported", "phone_number"},
    {"claims_supported", "phone_number_verified"},
};

/* Booleans. */
static const struct {
    const char *field;
    int value;
} flags[] = {
    {"request_uri_parameter_supported", 0},
    {"request_parameter_supported", 0},                     /* authorize refuses `request` */
    {"authorization_response_iss_parameter_supported", 1}, /* RFC 9207: authorize adds iss */
};

char *oidc_discovery_json(const char *issuer, struct err *e)
{
    _cleanup_(json_decrefp) json_t *o = json_object();
    if (!o)
        return err_set(e, -E_NOMEM, "out of memory"), NULL;
    json_object_set_new(o, "issuer", json_string(issuer));
    for (size_t i = 0; i < ARRAY_SIZE(endpoints); i++) {
        size_t len = strlen(issuer) + strlen(endpoints[i].path) + 1;
        _cleanup_free_ char *url = malloc(len);
        if (!url)
            return err_set(e, -E_NOMEM, "out of memory"), NULL;
        snprintf(url, len, "%s%s", issuer, endpoints[i].path);
        json_object_set_new(o, endpoints[i].field, json_string(url));
    }
    for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
        json_t *arr = json_object_get(o, lists[i].field);
        if (!arr) {
            arr = json_array();
            json_object_set_new(o, lists[i].field, arr);
        }
        json_array_append_new(arr, json_string(lists[i].value));
    }
    for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
        json_object_set_new(o, flags[i].field, json_boolean(flags[i].value));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s)
        err_set(e, -E_NOMEM, "out of memory");
    return s;
}
