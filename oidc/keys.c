/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signing keys. v2's own keys are RSA-2048 (RS256) pairs whose private PEM is sealed with
 * AES-256-GCM under the master key (a 32-byte file), bound to the key id so a sealed blob
 * cannot be moved to another record. v1's imported keys are public only and stay published
 * until their publish_until. The loaded set is cached in memory behind a rwlock; the JWKS is
 * rebuilt whenever the set changes or a key's publication/signing window opens or closes.
 */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/b64.h"
#include "common/cleanup.h"
#include "common/rand.h"
#include "storage/repo.h"

#define SEAL_NONCE 12
#define SEAL_TAG 16
#define SEAL_AAD_PREFIX "koder-id-v2 sigkey "
#define RELOAD_EVERY_S 60

struct key_entry {
    char kid[64];
    char alg[8];
    EVP_PKEY *pub;
    EVP_PKEY *priv; /* NULL for imported keys */
    int64_t created_at, sign_from, sign_until, publish_until;
};

struct key_set {
    struct key_entry *items;
    size_t n;
    char *jwks;
    int64_t next_change; /* unix seconds when a window opens/closes, or INT64_MAX */
    int64_t loaded_at;
};

struct oidc_keys {
    struct store *store;
    unsigned char master[OIDC_MASTER_KEY_LEN];
    pthread_rwlock_t lock;
    pthread_mutex_t reload_lock;
    struct key_set set;
    uint64_t generation;
};

static void evp_pkey_freep(EVP_PKEY **p)
{
    EVP_PKEY_free(*p);
}
static void biop(BIO **b)
{
    BIO_free(*b);
}
static void bn_freep(BIGNUM **b)
{
    BN_free(*b);
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* ---- master key ---- */

static int master_create(const char *path, struct err *e)
{
    unsigned char key[OIDC_MASTER_KEY_LEN];
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return 0;
        return err_set(e, -E_IO, "master key '%s': cannot create: %s", path, strerror(errno));
    }
    if (rand_bytes(key, sizeof key) < 0) {
        close(fd);
        unlink(path);
        return err_set(e, -E_INTERNAL, "master key: no randomness");
    }
    ssize_t w = write(fd, key, sizeof key);
    OPENSSL_cleanse(key, sizeof key);
    if (w != (ssize_t)sizeof key || fsync(fd) < 0) {
        int saved = errno;
        close(fd);
        unlink(path);
        return err_set(e, -E_IO, "master key '%s': cannot write: %s", path, strerror(saved));
    }
    if (close(fd) < 0)
        return err_set(e, -E_IO, "master key '%s': cannot write: %s", path, strerror(errno));
    return 0;
}

int oidc_keys_master_load(const char *path, bool create, unsigned char out[OIDC_MASTER_KEY_LEN],
                          struct err *e)
{
    struct stat st;
    unsigned char buf[OIDC_MASTER_KEY_LEN + 1];

    if (!path || !*path)
        return err_set(e, -E_CONFIG, "master_key_file is not set");
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        int r = master_create(path, e);
        if (r < 0)
            return r;
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        if (errno == ENOENT)
            return err_set(e, -E_NOTFOUND, "master key '%s' does not exist", path);
        return err_set(e, -E_IO, "master key '%s': %s", path, strerror(errno));
    }
    if (fstat(fd, &st) < 0)
        return err_set(e, -E_IO, "master key '%s': %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return err_set(e, -E_CONFIG, "master key '%s' is not a regular file", path);
    if (st.st_mode & (S_IROTH | S_IWOTH))
        return err_set(e, -E_CONFIG,
                       "master key '%s' is readable or writable by others (mode %04o): chmod 600",
                       path, (unsigned)(st.st_mode & 07777));
    if (st.st_size != OIDC_MASTER_KEY_LEN)
        return err_set(e, -E_CONFIG, "master key '%s' must hold exactly %d bytes (has %lld)", path,
                       OIDC_MASTER_KEY_LEN, (long long)st.st_size);
    ssize_t n = read(fd, buf, sizeof buf);
    if (n != OIDC_MASTER_KEY_LEN) {
        OPENSSL_cleanse(buf, sizeof buf);
        return err_set(e, -E_IO, "master key '%s': short read", path);
    }
    memcpy(out, buf, OIDC_MASTER_KEY_LEN);
    OPENSSL_cleanse(buf, sizeof buf);
    return 0;
}

/* ---- sealing ---- */

static int aad_for(const char *kid, char *out, size_t n)
{
    int len = snprintf(out, n, SEAL_AAD_PREFIX "%s", kid);
    return len < 0 || (size_t)len >= n ? -1 : len;
}

int oidc_keys_seal(const unsigned char master[OIDC_MASTER_KEY_LEN], const char *kid,
                   const void *plain, size_t len, unsigned char **ret, size_t *ret_len,
                   struct err *e)
{
    char aad[128];
    int alen = aad_for(kid, aad, sizeof aad);
    if (alen < 0 || len > INT32_MAX)
        return err_set(e, -E_INVALID, "seal: kid or data too long");
    size_t total = SEAL_NONCE + len + SEAL_TAG;
    _cleanup_free_ unsigned char *out = malloc(total);
    if (!out)
        return err_set(e, -E_NOMEM, "out of memory");
    if (rand_bytes(out, SEAL_NONCE) < 0)
        return err_set(e, -E_INTERNAL, "seal: no randomness");

    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0, ok = c != NULL;
    ok = ok && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE, NULL) == 1;
    ok = ok && EVP_EncryptInit_ex(c, NULL, NULL, master, out) == 1;
    ok = ok && EVP_EncryptUpdate(c, NULL, &outl, (const unsigned char *)aad, alen) == 1;
    ok = ok && EVP_EncryptUpdate(c, out + SEAL_NONCE, &outl, plain, (int)len) == 1;
    ok = ok && EVP_EncryptFinal_ex(c, out + SEAL_NONCE + outl, &outl) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, out + SEAL_NONCE + len) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok)
        return err_set(e, -E_INTERNAL, "seal: encryption failed");
    *ret = TAKE_PTR(out);
    *ret_len = total;
    return 0;
}

int oidc_keys_open_sealed(const unsigned char master[OIDC_MASTER_KEY_LEN], const char *kid,
                          const unsigned char *sealed, size_t len, unsigned char **ret,
                          size_t *ret_len, struct err *e)
{
    char aad[128];
    int alen = aad_for(kid, aad, sizeof aad);
    if (alen < 0 || len < SEAL_NONCE + SEAL_TAG || len > INT32_MAX)
        return err_set(e, -E_PERMISSION, "key '%.60s': sealed private key is malformed", kid);
    size_t plen = len - SEAL_NONCE - SEAL_TAG;
    unsigned char *out = malloc(plen + 1);
    if (!out)
        return err_set(e, -E_NOMEM, "out of memory");

    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0, fin = 0, ok = c != NULL;
    ok = ok && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE, NULL) == 1;
    ok = ok && EVP_DecryptInit_ex(c, NULL, NULL, master, sealed) == 1;
    ok = ok && EVP_DecryptUpdate(c, NULL, &outl, (const unsigned char *)aad, alen) == 1;
    ok = ok && EVP_DecryptUpdate(c, out, &outl, sealed + SEAL_NONCE, (int)plen) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SEAL_TAG,
                                   (void *)(sealed + SEAL_NONCE + plen)) == 1;
    ok = ok && EVP_DecryptFinal_ex(c, out + outl, &fin) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        OPENSSL_cleanse(out, plen + 1);
        free(out);
        return err_set(e, -E_PERMISSION,
                       "key '%.60s': the master key does not decrypt it (wrong master_key_file "
                       "or damaged record)",
                       kid);
    }
    out[plen] = '\0';
    *ret = out;
    *ret_len = plen;
    return 0;
}

/* ---- JWKS ---- */

static json_t *b64url_bn(const BIGNUM *bn, int pad_to)
{
    int len = pad_to ? pad_to : BN_num_bytes(bn);
    _cleanup_free_ unsigned char *bin = malloc((size_t)(len ? len : 1));
    if (!bin)
        return NULL;
    if (pad_to ? BN_bn2binpad(bn, bin, pad_to) < 0 : BN_bn2bin(bn, bin) < 0)
        return NULL;
    _cleanup_free_ char *s = b64url_encode_alloc(bin, (size_t)len);
    return s ? json_string(s) : NULL;
}

static json_t *jwk_of(EVP_PKEY *key, const char *kid, const char *alg)
{
    _cleanup_(json_decrefp) json_t *o = json_object();
    if (!o)
        return NULL;
    if (strcmp(alg, "RS256") == 0) {
        if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
            return NULL;
        _cleanup_(bn_freep) BIGNUM *n = NULL;
        _cleanup_(bn_freep) BIGNUM *ev = NULL;
        if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
            EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &ev) != 1)
            return NULL;
        json_object_set_new(o, "kty", json_string("RSA"));
        json_object_set_new(o, "use", json_string("sig"));
        json_object_set_new(o, "alg", json_string(alg));
        json_object_set_new(o, "kid", json_string(kid));
        json_t *jn = b64url_bn(n, 0), *je = b64url_bn(ev, 0);
        if (!jn || !je) {
            json_decref(jn);
            json_decref(je);
            return NULL;
        }
        json_object_set_new(o, "n", jn);
        json_object_set_new(o, "e", je);
    } else if (strcmp(alg, "ES256") == 0) {
        char group[32] = "";
        if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
            EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           NULL) != 1 ||
            strcmp(group, "prime256v1") != 0)
            return NULL;
        _cleanup_(bn_freep) BIGNUM *x = NULL;
        _cleanup_(bn_freep) BIGNUM *y = NULL;
        if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
            EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1)
            return NULL;
        json_object_set_new(o, "kty", json_string("EC"));
        json_object_set_new(o, "use", json_string("sig"));
        json_object_set_new(o, "alg", json_string(alg));
        json_object_set_new(o, "kid", json_string(kid));
        json_object_set_new(o, "crv", json_string("P-256"));
        json_t *jx = b64url_bn(x, 32), *jy = b64url_bn(y, 32);
        if (!jx || !jy) {
            json_decref(jx);
            json_decref(jy);
            return NULL;
        }
        json_object_set_new(o, "x", jx);
        json_object_set_new(o, "y", jy);
    } else {
        return NULL;
    }
    return TAKE_PTR(o);
}

char *oidc_jwks_build(const struct oidc_jwk_in *keys, size_t n, struct err *e)
{
    _cleanup_(json_decrefp) json_t *doc = json_object();
    json_t *arr = json_array();
    if (!doc || !arr || json_object_set_new(doc, "keys", arr) < 0)
        return err_set(e, -E_NOMEM, "out of memory"), NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *k = jwk_of(keys[i].key, keys[i].kid, keys[i].alg);
        if (k)
            json_array_append_new(arr, k);
    }
    char *s = json_dumps(doc, JSON_COMPACT);
    if (!s)
        err_set(e, -E_NOMEM, "out of memory");
    return s;
}

/* ---- loading ---- */

static void entry_release(struct key_entry *k)
{
    EVP_PKEY_free(k->pub);
    EVP_PKEY_free(k->priv);
    memset(k, 0, sizeof *k);
}

static void set_release(struct key_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        entry_release(&s->items[i]);
    free(s->items);
    free(s->jwks);
    memset(s, 0, sizeof *s);
}

static bool can_sign_at(const struct key_entry *k, int64_t now)
{
    return k->priv && k->sign_from <= now && (k->sign_until == 0 || now < k->sign_until);
}

static bool published_at(const struct key_entry *k, int64_t now)
{
    return k->publish_until == 0 || now < k->publish_until;
}

static EVP_PKEY *pem_public(const void *pem, size_t len)
{
    _cleanup_(biop) BIO *b = BIO_new_mem_buf(pem, (int)len);
    return b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
}

static EVP_PKEY *pem_private(const void *pem, size_t len)
{
    _cleanup_(biop) BIO *b = BIO_new_mem_buf(pem, (int)len);
    return b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
}

/* Scans sigkey/ page by page, calling @cb for every record. */
static int scan_keys(struct store *s, int (*cb)(const Koderid__V2__SigningKey *r, void *data),
                     void *data, struct err *e)
{
    char cursor[REPO_KEY_MAX];
    size_t clen = 0;
    for (;;) {
        struct store_list l = {0};
        int r = store_scan(s, "sigkey/", 7, clen ? cursor : NULL, clen, 200, &l, e);
        if (r < 0)
            return r;
        for (size_t i = 0; i < l.n && r == 0; i++) {
            Koderid__V2__SigningKey *rec =
                koderid__v2__signing_key__unpack(NULL, l.items[i].value.len, l.items[i].value.data);
            if (!rec) {
                r = err_set(e, -E_INTERNAL, "record '%.60s' does not unpack as a signing key",
                            l.items[i].key);
                break;
            }
            r = cb(rec, data);
            koderid__v2__signing_key__free_unpacked(rec, NULL);
        }
        bool more = l.more && l.n > 0;
        if (more) {
            clen = l.items[l.n - 1].klen < sizeof cursor ? l.items[l.n - 1].klen : 0;
            memcpy(cursor, l.items[l.n - 1].key, clen);
        }
        store_list_release(&l);
        if (r < 0)
            return r;
        if (!more || clen == 0)
            return 0;
    }
}

struct load_ctx {
    struct oidc_keys *k;
    struct key_set *set;
    size_t cap;
    struct err *e;
};

static int load_one(const Koderid__V2__SigningKey *rec, void *data)
{
    struct load_ctx *lc = data;
    struct key_set *set = lc->set;
    struct key_entry ke = {0};

    if (!rec->kid || !*rec->kid || strlen(rec->kid) >= sizeof ke.kid || !rec->alg ||
        strlen(rec->alg) >= sizeof ke.alg)
        return 0; /* not a key we can name in a JWT header: never published */
    snprintf(ke.kid, sizeof ke.kid, "%s", rec->kid);
    snprintf(ke.alg, sizeof ke.alg, "%s", rec->alg);
    ke.created_at = rec->created_at;
    ke.sign_from = rec->sign_from;
    ke.sign_until = rec->sign_until;
    ke.publish_until = rec->publish_until;
    ke.pub = pem_public(rec->public_pem.data, rec->public_pem.len);
    if (!ke.pub)
        return err_set(lc->e, -E_INTERNAL, "key '%.60s': public key does not parse", rec->kid);
    if (rec->private_enc.len) {
        unsigned char *pem = NULL;
        size_t plen = 0;
        int r = oidc_keys_open_sealed(lc->k->master, rec->kid, rec->private_enc.data,
                                      rec->private_enc.len, &pem, &plen, lc->e);
        if (r < 0) {
            entry_release(&ke);
            return r;
        }
        ke.priv = pem_private(pem, plen);
        OPENSSL_cleanse(pem, plen);
        free(pem);
        if (!ke.priv || EVP_PKEY_eq(ke.priv, ke.pub) != 1) {
            entry_release(&ke);
            return err_set(lc->e, -E_INTERNAL,
                           "key '%.60s': private key does not parse or match its public key",
                           rec->kid);
        }
    }
    if (set->n == lc->cap) {
        size_t ncap = lc->cap ? lc->cap * 2 : 8;
        struct key_entry *items = realloc(set->items, ncap * sizeof *items);
        if (!items) {
            entry_release(&ke);
            return err_set(lc->e, -E_NOMEM, "out of memory");
        }
        set->items = items;
        lc->cap = ncap;
    }
    set->items[set->n++] = ke;
    return 0;
}

static int64_t next_change_of(const struct key_set *set, int64_t now)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < set->n; i++) {
        const struct key_entry *k = &set->items[i];
        const int64_t t[3] = {k->sign_from, k->sign_until, k->publish_until};
        for (size_t j = 0; j < 3; j++)
            if (t[j] > now && t[j] < next)
                next = t[j];
    }
    return next;
}

static int build_jwks(struct key_set *set, int64_t now, struct err *e)
{
    _cleanup_free_ struct oidc_jwk_in *in = calloc(set->n ? set->n : 1, sizeof *in);
    size_t n = 0;
    if (!in)
        return err_set(e, -E_NOMEM, "out of memory");
    for (size_t i = 0; i < set->n; i++)
        if (published_at(&set->items[i], now))
            in[n++] = (struct oidc_jwk_in){set->items[i].pub, set->items[i].kid, set->items[i].alg};
    free(set->jwks);
    set->jwks = oidc_jwks_build(in, n, e);
    return set->jwks ? 0 : -E_NOMEM;
}

static int load_set(struct oidc_keys *k, struct key_set *ret, struct err *e)
{
    struct key_set set = {0};
    struct load_ctx lc = {k, &set, 0, e};
    int64_t now = now_s();
    int r = scan_keys(k->store, load_one, &lc, e);
    if (r == 0)
        r = build_jwks(&set, now, e);
    if (r < 0) {
        set_release(&set);
        return r;
    }
    set.next_change = next_change_of(&set, now);
    set.loaded_at = now;
    *ret = set;
    return 0;
}

static bool set_can_sign(const struct key_set *set, int64_t now)
{
    for (size_t i = 0; i < set->n; i++)
        if (can_sign_at(&set->items[i], now))
            return true;
    return false;
}

int oidc_keys_generate(struct store *s, const unsigned char master[OIDC_MASTER_KEY_LEN],
                       int64_t sign_from, char ret_kid[64], struct err *e)
{
    char kid[21], key[REPO_KEY_MAX];
    _cleanup_(evp_pkey_freep) EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (!pk)
        return err_set(e, -E_INTERNAL, "RSA key generation failed");

    _cleanup_(biop) BIO *bpub = BIO_new(BIO_s_mem());
    _cleanup_(biop) BIO *bpriv = BIO_new(BIO_s_secmem());
    if (!bpub || !bpriv || PEM_write_bio_PUBKEY(bpub, pk) != 1 ||
        PEM_write_bio_PrivateKey(bpriv, pk, NULL, NULL, 0, NULL, NULL) != 1)
        return err_set(e, -E_INTERNAL, "cannot encode the new key");
    char *pub_pem = NULL, *priv_pem = NULL;
    long pub_len = BIO_get_mem_data(bpub, &pub_pem);
    long priv_len = BIO_get_mem_data(bpriv, &priv_pem);

    id_new(kid);
    _cleanup_free_ unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    int r = oidc_keys_seal(master, kid, priv_pem, (size_t)priv_len, &sealed, &sealed_len, e);
    if (r < 0)
        return r;

    Koderid__V2__SigningKey rec = KODERID__V2__SIGNING_KEY__INIT;
    rec.kid = kid;
    rec.alg = "RS256";
    rec.public_pem.data = (uint8_t *)pub_pem;
    rec.public_pem.len = (size_t)pub_len;
    rec.private_enc.data = sealed;
    rec.private_enc.len = sealed_len;
    rec.created_at = now_s();
    rec.sign_from = sign_from;
    rec.source = "v2";
    if (repo_key(key, "sigkey/%s", kid) < 0)
        return err_set(e, -E_INTERNAL, "kid too long");
    r = repo_cas(s, key, 0, &rec.base, 0, NULL, e);
    if (r < 0)
        return r;
    snprintf(ret_kid, 64, "%s", kid);
    return 0;
}

int oidc_keys_open(struct store *store, const char *master_key_file, bool create_master,
                   struct oidc_keys **ret, struct err *e)
{
    struct oidc_keys *k = calloc(1, sizeof *k);
    int r;

    if (!k)
        return err_set(e, -E_NOMEM, "out of memory");
    k->store = store;
    pthread_rwlock_init(&k->lock, NULL);
    pthread_mutex_init(&k->reload_lock, NULL);
    r = oidc_keys_master_load(master_key_file, create_master, k->master, e);
    if (r == 0)
        r = load_set(k, &k->set, e);
    if (r == 0 && !set_can_sign(&k->set, now_s())) {
        char kid[64];
        r = oidc_keys_generate(store, k->master, now_s(), kid, e);
        if (r == 0) {
            set_release(&k->set);
            r = load_set(k, &k->set, e);
        }
    }
    if (r < 0) {
        oidc_keys_free(k);
        return r;
    }
    k->generation = 1;
    *ret = k;
    return 0;
}

void oidc_keys_free(struct oidc_keys *k)
{
    if (!k)
        return;
    set_release(&k->set);
    OPENSSL_cleanse(k->master, sizeof k->master);
    pthread_rwlock_destroy(&k->lock);
    pthread_mutex_destroy(&k->reload_lock);
    free(k);
}

int oidc_keys_reload(struct oidc_keys *k, struct err *e)
{
    struct key_set fresh = {0};
    pthread_mutex_lock(&k->reload_lock);
    int r = load_set(k, &fresh, e);
    if (r == 0) {
        pthread_rwlock_wrlock(&k->lock);
        bool same = k->set.jwks && fresh.jwks && strcmp(k->set.jwks, fresh.jwks) == 0 &&
                    k->set.n == fresh.n;
        struct key_set old = k->set;
        k->set = fresh;
        if (!same)
            __atomic_add_fetch(&k->generation, 1, __ATOMIC_RELEASE);
        pthread_rwlock_unlock(&k->lock);
        set_release(&old);
    }
    pthread_mutex_unlock(&k->reload_lock);
    return r;
}

/* Reloads when a signing or publication window opened or closed since the last load. */
static void refresh_if_due(struct oidc_keys *k)
{
    int64_t now = now_s();
    pthread_rwlock_rdlock(&k->lock);
    bool due = now >= k->set.next_change || now - k->set.loaded_at >= RELOAD_EVERY_S;
    pthread_rwlock_unlock(&k->lock);
    if (due)
        (void)oidc_keys_reload(k, NULL);
}

uint64_t oidc_keys_generation(struct oidc_keys *k)
{
    return __atomic_load_n(&k->generation, __ATOMIC_ACQUIRE);
}

int oidc_keys_current(struct oidc_keys *k, EVP_PKEY **ret_key, char kid[64], char alg[8],
                      struct err *e)
{
    int64_t now = now_s();
    const struct key_entry *best = NULL;

    refresh_if_due(k);
    pthread_rwlock_rdlock(&k->lock);
    for (size_t i = 0; i < k->set.n; i++) {
        const struct key_entry *c = &k->set.items[i];
        if (can_sign_at(c, now) &&
            (!best || c->sign_from > best->sign_from ||
             (c->sign_from == best->sign_from && c->created_at > best->created_at)))
            best = c;
    }
    if (best) {
        EVP_PKEY_up_ref(best->priv);
        *ret_key = best->priv;
        snprintf(kid, 64, "%s", best->kid);
        snprintf(alg, 8, "%s", best->alg);
    }
    pthread_rwlock_unlock(&k->lock);
    if (!best)
        return err_set(e, -E_UNAVAILABLE, "no signing key is active");
    return 0;
}

int oidc_keys_public(struct oidc_keys *k, const char *kid, EVP_PKEY **ret_key, char alg[8],
                     struct err *e)
{
    int64_t now = now_s();
    int r = err_set(e, -E_NOTFOUND, "unknown key id");

    if (!kid)
        return r;
    refresh_if_due(k);
    pthread_rwlock_rdlock(&k->lock);
    for (size_t i = 0; i < k->set.n; i++) {
        const struct key_entry *c = &k->set.items[i];
        if (strcmp(c->kid, kid) == 0 && published_at(c, now)) {
            EVP_PKEY_up_ref(c->pub);
            *ret_key = c->pub;
            snprintf(alg, 8, "%s", c->alg);
            err_clear(e);
            r = 0;
            break;
        }
    }
    pthread_rwlock_unlock(&k->lock);
    return r;
}

char *oidc_keys_jwks_json(struct oidc_keys *k, struct err *e)
{
    /* No refresh here: the server calls this on its event loops, which must not wait for the
     * store; its background thread calls oidc_keys_reload() periodically instead. */
    pthread_rwlock_rdlock(&k->lock);
    char *s = k->set.jwks ? strdup(k->set.jwks) : NULL;
    pthread_rwlock_unlock(&k->lock);
    if (!s)
        err_set(e, -E_NOMEM, "out of memory");
    return s;
}

/* ---- listing ---- */

struct list_ctx {
    struct oidc_key_info *items;
    size_t n, cap;
    int64_t now;
    struct err *e;
};

static int list_one(const Koderid__V2__SigningKey *rec, void *data)
{
    struct list_ctx *lc = data;
    if (lc->n == lc->cap) {
        size_t ncap = lc->cap ? lc->cap * 2 : 8;
        struct oidc_key_info *items = realloc(lc->items, ncap * sizeof *items);
        if (!items)
            return err_set(lc->e, -E_NOMEM, "out of memory");
        lc->items = items;
        lc->cap = ncap;
    }
    struct oidc_key_info *i = &lc->items[lc->n++];
    memset(i, 0, sizeof *i);
    snprintf(i->kid, sizeof i->kid, "%s", rec->kid ? rec->kid : "");
    snprintf(i->alg, sizeof i->alg, "%s", rec->alg ? rec->alg : "");
    snprintf(i->source, sizeof i->source, "%s", rec->source ? rec->source : "");
    i->created_at = rec->created_at;
    i->sign_from = rec->sign_from;
    i->sign_until = rec->sign_until;
    i->publish_until = rec->publish_until;
    i->has_private = rec->private_enc.len > 0;
    i->published = rec->publish_until == 0 || lc->now < rec->publish_until;
    i->signing = i->has_private && rec->sign_from <= lc->now &&
                 (rec->sign_until == 0 || lc->now < rec->sign_until);
    return 0;
}

int oidc_keys_list(struct store *s, struct oidc_key_info **ret, size_t *ret_n, struct err *e)
{
    struct list_ctx lc = {.now = now_s(), .e = e};
    int r = scan_keys(s, list_one, &lc, e);
    if (r < 0) {
        free(lc.items);
        return r;
    }
    *ret = lc.items;
    *ret_n = lc.n;
    return 0;
}

int oidc_keys_verify_master(struct store *s, const unsigned char master[OIDC_MASTER_KEY_LEN],
                            size_t *ret_checked, struct err *e)
{
    struct oidc_keys k = {0};
    struct key_set set = {0};
    struct load_ctx lc = {&k, &set, 0, e};
    memcpy(k.master, master, OIDC_MASTER_KEY_LEN);
    int r = scan_keys(s, load_one, &lc, e);
    size_t n = 0;
    for (size_t i = 0; i < set.n; i++)
        n += set.items[i].priv != NULL;
    set_release(&set);
    OPENSSL_cleanse(k.master, sizeof k.master);
    if (r == 0)
        *ret_checked = n;
    return r;
}
