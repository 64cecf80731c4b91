/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers of the operator commands (machine, api, project, role, grant): see server/admin.h.
 * Public keys are parsed with OpenSSL here, once, so a key that the token endpoint could not
 * use (a private key, DSA, a curve other than P-256, a short RSA key) is refused when the
 * operator registers it rather than when a client first presents an assertion.
 */
#include "admin.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/rand.h"
#include "server/cli.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)

int admin_pubkey_read(const char *path, struct admin_pubkey *ret, struct err *e)
{
    _cleanup_(fclosep) FILE *f = fopen(path, "re");
    if (!f)
        return err_set(e, -E_IO, "'%.100s': %s", path, strerror(errno));
    _cleanup_free_ char *buf = malloc(ADMIN_PEM_MAX + 1);
    if (!buf)
        return err_set(e, -E_NOMEM, "out of memory");
    size_t n = fread(buf, 1, ADMIN_PEM_MAX + 1, f);
    if (n > ADMIN_PEM_MAX)
        return err_set(e, -E_INVALID, "'%.100s': larger than %d bytes", path, ADMIN_PEM_MAX);
    buf[n] = '\0';
    if (strstr(buf, "PRIVATE KEY-----")) {
        OPENSSL_cleanse(buf, n);
        return err_set(e, -E_INVALID,
                       "'%.100s' holds a private key: register the public one (openssl pkey "
                       "-in KEY -pubout)",
                       path);
    }
    _cleanup_(BIO_freep) BIO *in = BIO_new_mem_buf(buf, (int)n);
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = in ? PEM_read_bio_PUBKEY(in, NULL, NULL, NULL) : NULL;
    if (!k)
        return err_set(e, -E_INVALID,
                       "'%.100s' is not a PEM public key (-----BEGIN PUBLIC KEY-----)", path);
    const char *alg = NULL;
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA) {
        int bits = EVP_PKEY_get_bits(k);
        if (bits < 2048 || bits > 8192)
            return err_set(e, -E_INVALID, "'%.100s': an RSA key of %d bits (2048 to 8192 wanted)",
                           path, bits);
        alg = "RS256";
    } else if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC) {
        char group[64] = "";
        if (EVP_PKEY_get_group_name(k, group, sizeof group, NULL) != 1 ||
            (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0))
            return err_set(e, -E_INVALID, "'%.100s': an EC key on %s (P-256 wanted, for ES256)",
                           path, *group ? group : "an unknown curve");
        alg = "ES256";
    } else {
        return err_set(e, -E_INVALID, "'%.100s': not an RSA or EC P-256 key", path);
    }
    /* Stored re-encoded: the token endpoint reads exactly what OpenSSL wrote. */
    _cleanup_(BIO_freep) BIO *out = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len;
    if (!out || PEM_write_bio_PUBKEY(out, k) != 1 || (len = BIO_get_mem_data(out, &data)) <= 0)
        return err_set(e, -E_INTERNAL, "'%.100s': cannot re-encode the key", path);
    ret->pem = strndup(data, (size_t)len);
    if (!ret->pem)
        return err_set(e, -E_NOMEM, "out of memory");
    ret->len = (size_t)len;
    ret->alg = alg;
    return 0;
}

void admin_pubkey_release(struct admin_pubkey *k)
{
    free(k->pem);
    memset(k, 0, sizeof *k);
}

int admin_pubkey_store(struct store *s, const char *owner, int object_type,
                       const struct admin_pubkey *k, int64_t expires_at, char ret_kid[21],
                       struct err *e)
{
    char kid[21], key[REPO_KEY_MAX];
    id_new(kid);
    if (repo_key(key, "authnkey/%s/%s", owner, kid) < 0)
        return err_set(e, -E_INVALID, "owner id too long");
    Koderid__V2__AuthnKey ak = KODERID__V2__AUTHN_KEY__INIT;
    ak.id = kid;
    ak.object_id = (char *)owner;
    ak.object_type = object_type;
    ak.public_key.data = (uint8_t *)k->pem;
    ak.public_key.len = k->len;
    ak.expires_at = expires_at;
    ak.enabled = true;
    ak.source = "v2";
    int r = repo_cas(s, key, 0, &ak.base, 0, NULL, e);
    if (r < 0)
        return r;
    memcpy(ret_kid, kid, sizeof kid);
    return 0;
}

int admin_user_find(struct store *s, const char *id_or_login, int want_type,
                    Koderid__V2__User **ret, uint64_t *ret_version, struct err *e)
{
    char key[REPO_KEY_MAX];
    Koderid__V2__User *u = NULL;
    uint64_t version = 0;
    struct err ge = {0};
    int r = repo_key(key, "user/%s", id_or_login) < 0
                ? -E_NOTFOUND
                : repo_get(s, key, &koderid__v2__user__descriptor, (ProtobufCMessage **)&u,
                           &version, &ge);
    if (r == -E_NOTFOUND) {
        /* A login name: read the id, then the record with its version. */
        char lower[REPO_KEY_MAX];
        _cleanup_free_ char *id = NULL;
        repo_lower(id_or_login, lower, sizeof lower);
        r = repo_key(key, "login/%s", lower) < 0 ? -E_NOTFOUND : repo_get_str(s, key, &id, &ge);
        if (r == 0)
            r = repo_key(key, "user/%s", id) < 0 ? -E_NOTFOUND
                                                 : repo_get(s, key, &koderid__v2__user__descriptor,
                                                            (ProtobufCMessage **)&u, &version, &ge);
    }
    if (r == 0 && want_type && u->type != want_type) {
        koderid__v2__user__free_unpacked(u, NULL);
        return err_set(e, -E_NOTFOUND, "user '%.80s' is not a %s user", id_or_login,
                       want_type == 2 ? "machine" : "human");
    }
    if (r == -E_NOTFOUND)
        return err_set(e, r, "no user '%.80s' (by id or login name)", id_or_login);
    if (r < 0)
        return err_set(e, r, "%s", ge.msg);
    *ret = u;
    if (ret_version)
        *ret_version = version;
    return 0;
}

int admin_owner(struct store *s, const char *issuer, const char *org, const char *project,
                const char *flag, char **ret_org, char **ret_project, struct err *e)
{
    struct err ge = {0};
    int r;
    if (project) {
        Koderid__V2__Project *p = NULL;
        if ((r = repo_project_get(s, project, &p, &ge)) < 0)
            return err_set(e, r, "--project '%.60s': %s", project,
                           r == -E_NOTFOUND ? "no such project" : ge.msg);
        *ret_org = strdup(p->org_id ? p->org_id : "");
        *ret_project = strdup(project);
        koderid__v2__project__free_unpacked(p, NULL);
    } else if (org) {
        Koderid__V2__Org *o = NULL;
        if ((r = repo_org_get(s, org, &o, &ge)) < 0)
            return err_set(e, r, "--org '%.60s': %s", org,
                           r == -E_NOTFOUND ? "no such org" : ge.msg);
        koderid__v2__org__free_unpacked(o, NULL);
        *ret_org = strdup(org);
        *ret_project = NULL;
        if (!*ret_org)
            return err_set(e, -E_NOMEM, "out of memory");
        return 0;
    } else {
        return cli_default_org_project(s, issuer, flag, ret_org, ret_project, e);
    }
    if (!*ret_org || !*ret_project)
        return err_set(e, -E_NOMEM, "out of memory");
    return 0;
}

int admin_parse(const char *cmd, int *argcp, char **argv, const struct option *opts,
                struct admin_args *a)
{
    int r, c;
    if ((r = cli_common_args(cmd, argcp, argv, &a->co)) != 0)
        return r;
    int argc = *argcp;
    if ((r = cli_check_options(cmd, argc, argv, opts)) != 0)
        return r;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const struct option *o = opts;
        while (o->name && o->val != c)
            o++;
        if (c == '?' || !o->name || c < 0 || (size_t)c >= a->nvals)
            return cli_usage(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        const char *v = optarg ? optarg : "";
        if (c == a->multi) {
            if (a->nmulti >= a->multi_max)
                return cli_usage(cmd, "--%s: at most %zu", o->name, a->multi_max);
            a->multi_vals[a->nmulti++] = v;
        } else if (a->vals[c]) {
            return cli_usage(cmd, "--%s given twice", o->name);
        } else {
            a->vals[c] = v;
        }
    }
    if (optind < argc) /* no admin command takes operands */
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    return 0;
}

int admin_list(struct store *s, const char *prefix, admin_list_cb cb, bool json, const char *filter)
{
    _cleanup_(json_decrefp) json_t *arr = json_array();
    struct admin_list l = {s, arr, json, filter};
    struct err e = {0};
    if (!arr || cli_scan(s, prefix, cb, &l, &e) < 0)
        return cli_fail("store: %s", e.msg);
    if (json)
        cli_print_json(arr);
    return CLI_EXIT_OK;
}
