/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The OpenID Provider metadata (/.well-known/openid-configuration) with v1's paths. It lists
 * only what is implemented: each endpoint or capability is one row of the tables in
 * discovery.c, added by the change that implements it.
 */
#ifndef OIDC_DISCOVERY_H
#define OIDC_DISCOVERY_H

#include "common/err.h"

#define OIDC_PATH_DISCOVERY "/.well-known/openid-configuration"
#define OIDC_PATH_JWKS "/oauth/v2/keys"

/**
 * The discovery document for @issuer (scheme://host[:port], no trailing slash) as compact
 * JSON; a new string (caller frees) or NULL with @e.
 */
char *oidc_discovery_json(const char *issuer, struct err *e);

#endif
