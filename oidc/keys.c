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

static bool published_at(const struct key_entry *k, int64_t now)
{
    return k->publish_until == 0 || now < k->publish_until;
}

/* Never signs with a key that is out of the JWKS: nobody could verify the token. */
static bool can_sign_at(const struct key_entry *k, int64_t now)
{
    return k->priv && k->sign_from <= now && (k->sign_until == 0 || now < k->sign_until) &&
           published_at(k, now);
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
static int scan_keys(struct store *s,
                     int (*cb)(const Koderid__V2__SigningKey *r, uint64_t version, void *data),
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
            r = cb(rec, l.items[i].value.version, data);
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

static int load_one(const Koderid__V2__SigningKey *rec, uint64_t version, void *data)
{
    (void)version;
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

static int refresh_when(struct oidc_keys *k, int64_t now, int64_t max_age, struct err *e)
{
    pthread_rwlock_rdlock(&k->lock);
    bool due = now >= k->set.next_change || (max_age > 0 && now - k->set.loaded_at >= max_age);
    pthread_rwlock_unlock(&k->lock);
    if (!due)
        return 0;
    int r = oidc_keys_reload(k, e);
    return r < 0 ? r : 1;
}

int oidc_keys_refresh(struct oidc_keys *k, int64_t now, struct err *e)
{
    return refresh_when(k, now, 0, e);
}

/* Reloads when a signing or publication window opened or closed since the last load, or the
 * set is older than RELOAD_EVERY_S (a worker's fallback; serve's housekeeping reloads too). */
static void refresh_if_due(struct oidc_keys *k)
{
    (void)refresh_when(k, now_s(), RELOAD_EVERY_S, NULL);
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

static int list_one(const Koderid__V2__SigningKey *rec, uint64_t version, void *data)
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
    i->version = version;
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
    oidc_keys_classify(lc.items, lc.n, lc.now);
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

/* ---- rotation ---- */

#define ROTATION_MARKER "meta/key_rotation"
#define CLAIM_STALE_S 600

const char *oidc_key_state_name(enum oidc_key_state st)
{
    switch (st) {
    case OIDC_KEY_PENDING:
        return "pending";
    case OIDC_KEY_SIGNING:
        return "signing";
    case OIDC_KEY_RETIRED:
        return "retired";
    case OIDC_KEY_IMPORTED:
        return "imported";
    case OIDC_KEY_EXPIRED:
        return "expired";
    }
    return "unknown";
}

static bool info_can_sign_at(const struct oidc_key_info *k, int64_t t)
{
    return k->has_private && k->sign_from <= t && (k->sign_until == 0 || t < k->sign_until);
}

/* An own key that has not signed yet and will: its window opens after @now and is not empty. */
static bool info_pending_at(const struct oidc_key_info *k, int64_t now)
{
    return k->has_private && k->sign_from > now &&
           (k->sign_until == 0 || k->sign_until > k->sign_from) &&
           (k->publish_until == 0 || now < k->publish_until);
}

void oidc_keys_classify(struct oidc_key_info *keys, size_t n, int64_t now)
{
    struct oidc_key_info *best = NULL;
    for (size_t i = 0; i < n; i++) {
        struct oidc_key_info *c = &keys[i];
        c->signing = false;
        c->published = c->publish_until == 0 || now < c->publish_until;
        if (info_can_sign_at(c, now) && c->published &&
            (!best || c->sign_from > best->sign_from ||
             (c->sign_from == best->sign_from && c->created_at > best->created_at)))
            best = c;
    }
    if (best)
        best->signing = true;
    for (size_t i = 0; i < n; i++) {
        struct oidc_key_info *c = &keys[i];
        if (!c->published)
            c->state = OIDC_KEY_EXPIRED;
        else if (c->signing)
            c->state = OIDC_KEY_SIGNING;
        else if (!c->has_private)
            c->state = OIDC_KEY_IMPORTED;
        else if (info_pending_at(c, now))
            c->state = OIDC_KEY_PENDING;
        else
            c->state = OIDC_KEY_RETIRED;
    }
}

int64_t oidc_keys_verify_window(int64_t access_token_lifetime, int64_t id_token_lifetime,
                                int64_t margin)
{
    int64_t longest = access_token_lifetime > id_token_lifetime ? access_token_lifetime
                                                                : id_token_lifetime;
    return (longest > 0 ? longest : 0) + (margin > 0 ? margin : 0);
}

static const struct oidc_key_info *find_state(const struct oidc_key_info *keys, size_t n,
                                              enum oidc_key_state st)
{
    for (size_t i = 0; i < n; i++)
        if (keys[i].state == st)
            return &keys[i];
    return NULL;
}

static const char *fmt_utc(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "%lld", (long long)t);
    return out;
}

int oidc_keys_plan_rotation(struct oidc_key_info *keys, size_t n, int64_t now,
                            const struct oidc_rotate_policy *p, bool *changed,
                            int64_t *ret_sign_from, struct err *e)
{
    oidc_keys_classify(keys, n, now);
    const struct oidc_key_info *pending = find_state(keys, n, OIDC_KEY_PENDING);
    if (pending && !p->force) {
        char t[32];
        return err_set(e, -E_CONFLICT,
                       "a rotation is already pending: key %s signs from %s (--force rotates "
                       "again)",
                       pending->kid, fmt_utc(pending->sign_from, t));
    }
    int64_t from = now + (p->publish_ahead > 0 ? p->publish_ahead : 0);
    for (size_t i = 0; i < n; i++) {
        struct oidc_key_info *c = &keys[i];
        changed[i] = false;
        /* Own keys that would still sign at or after @from stop there. A key already retired
         * before @from keeps its windows. */
        if (!c->has_private || (c->sign_until != 0 && c->sign_until <= from) ||
            c->state == OIDC_KEY_EXPIRED)
            continue;
        c->sign_until = from;
        c->publish_until = from + (p->verify_for > 0 ? p->verify_for : 0);
        changed[i] = true;
    }
    *ret_sign_from = from;
    return 0;
}

bool oidc_keys_rotation_due(struct oidc_key_info *keys, size_t n, int64_t now, int64_t every)
{
    if (every <= 0)
        return false;
    oidc_keys_classify(keys, n, now);
    if (find_state(keys, n, OIDC_KEY_PENDING))
        return false;
    const struct oidc_key_info *signer = find_state(keys, n, OIDC_KEY_SIGNING);
    return !signer || now - signer->sign_from >= every;
}

/* Rewrites the windows of key @kid, expecting the record at @version. */
static int key_set_windows(struct store *s, const char *kid, uint64_t version, int64_t sign_until,
                           int64_t publish_until, struct err *e)
{
    char key[REPO_KEY_MAX];
    Koderid__V2__SigningKey *rec = NULL;
    uint64_t v = 0;
    if (repo_key(key, "sigkey/%s", kid) < 0)
        return err_set(e, -E_INTERNAL, "kid too long");
    int r = repo_get(s, key, &koderid__v2__signing_key__descriptor, (ProtobufCMessage **)&rec, &v,
                     e);
    if (r < 0)
        return r;
    if (v != version) {
        koderid__v2__signing_key__free_unpacked(rec, NULL);
        return err_set(e, -E_CONFLICT, "key %s changed while rotating", kid);
    }
    rec->sign_until = sign_until;
    rec->publish_until = publish_until;
    r = repo_cas(s, key, version, &rec->base, 0, NULL, e);
    koderid__v2__signing_key__free_unpacked(rec, NULL);
    return r;
}

/* The marker's value: "<kid of the signer being replaced, or -> <unix seconds of the claim>". */
static bool claim_blocks(const struct store_value *v, const char *signer, int64_t now)
{
    char buf[128], kid[80];
    long long at = 0;
    size_t len = v->len < sizeof buf - 1 ? v->len : sizeof buf - 1;
    memcpy(buf, v->data, len);
    buf[len] = '\0';
    if (sscanf(buf, "%79s %lld", kid, &at) != 2)
        return false;
    return strcmp(kid, signer) == 0 && now - at < CLAIM_STALE_S && now >= at;
}

int oidc_keys_rotate(struct oidc_keys *k, int64_t now, const struct oidc_rotate_policy *p,
                     int64_t scheduled_every, struct oidc_rotate_result *ret, struct err *e)
{
    struct store *s = k->store;
    struct store_value mv = {0};
    bool scheduled = scheduled_every > 0;
    memset(ret, 0, sizeof *ret);

    /* The marker is read before the keys: a claim made after this read makes our
     * compare-and-swap below fail; one made before it is seen here. */
    int r = store_get(s, ROTATION_MARKER, strlen(ROTATION_MARKER), &mv, e);
    if (r < 0 && r != -E_NOTFOUND)
        return r;
    err_clear(e);
    uint64_t mversion = r == 0 ? mv.version : 0;

    _cleanup_free_ struct oidc_key_info *keys = NULL;
    _cleanup_free_ bool *changed = NULL;
    size_t n = 0;
    int64_t from = 0;
    if ((r = oidc_keys_list(s, &keys, &n, e)) < 0)
        goto out;
    if (scheduled && !oidc_keys_rotation_due(keys, n, now, scheduled_every))
        goto out; /* r == 0, nothing to do */
    if (!(changed = calloc(n ? n : 1, sizeof *changed))) {
        r = err_set(e, -E_NOMEM, "out of memory");
        goto out;
    }
    oidc_keys_classify(keys, n, now);
    const struct oidc_key_info *signer = find_state(keys, n, OIDC_KEY_SIGNING);
    snprintf(ret->old_kid, sizeof ret->old_kid, "%s", signer ? signer->kid : "");
    char signer_kid[64];
    snprintf(signer_kid, sizeof signer_kid, "%s", signer ? signer->kid : "-");
    if ((r = oidc_keys_plan_rotation(keys, n, now, p, changed, &from, e)) < 0) {
        if (scheduled && r == -E_CONFLICT) {
            err_clear(e);
            r = 0;
        }
        goto out;
    }
    /* No key is pending, yet a recent claim on the same signer: another process is between
     * its claim and writing the new key (or died there; the claim goes stale). */
    if (mversion && !p->force && claim_blocks(&mv, signer_kid, now)) {
        r = scheduled ? 0
                      : err_set(e, -E_CONFLICT,
                                "another process started rotating key %s less than %d minutes "
                                "ago (--force rotates anyway)",
                                signer_kid, CLAIM_STALE_S / 60);
        goto out;
    }

    char claim[128];
    int clen = snprintf(claim, sizeof claim, "%s %lld", signer_kid, (long long)now);
    r = store_cas(s, ROTATION_MARKER, strlen(ROTATION_MARKER), mversion, claim, (size_t)clen, 0,
                  NULL, e);
    if (r == -E_CONFLICT) {
        if (scheduled) {
            err_clear(e);
            r = 0;
        } else {
            r = err_set(e, -E_CONFLICT, "another process is rotating keys right now; try again");
        }
        goto out;
    }
    if (r < 0)
        goto out;

    /* The new key first: published at once, signing from @from. Should a window rewrite below
     * fail, the new key still takes over at @from (the latest sign_from signs). */
    if ((r = oidc_keys_generate(s, k->master, from, ret->kid, e)) < 0)
        goto out;
    ret->sign_from = from;
    for (size_t i = 0; i < n && r == 0; i++) {
        if (!changed[i])
            continue;
        r = key_set_windows(s, keys[i].kid, keys[i].version, keys[i].sign_until,
                            keys[i].publish_until, e);
        if (r == 0 && strcmp(keys[i].kid, ret->old_kid) == 0)
            ret->old_publish_until = keys[i].publish_until;
    }
    if (r == 0)
        r = oidc_keys_reload(k, e);
out:
    store_value_release(&mv);
    return r;
}

struct expired_ctx {
    int64_t now;
    char (*kids)[64];
    uint64_t *versions;
    size_t n, cap;
    bool oom;
};

static int expired_one(const Koderid__V2__SigningKey *rec, uint64_t version, void *data)
{
    struct expired_ctx *x = data;
    if (rec->publish_until == 0 || x->now < rec->publish_until || !rec->kid ||
        strlen(rec->kid) >= 64)
        return 0;
    if (x->n == x->cap) {
        size_t ncap = x->cap ? x->cap * 2 : 4;
        char(*kids)[64] = realloc(x->kids, ncap * sizeof *kids);
        if (kids)
            x->kids = kids;
        uint64_t *versions = realloc(x->versions, ncap * sizeof *versions);
        if (versions)
            x->versions = versions;
        if (!kids || !versions) {
            x->oom = true;
            return -E_NOMEM;
        }
        x->cap = ncap;
    }
    snprintf(x->kids[x->n], 64, "%s", rec->kid);
    x->versions[x->n++] = version;
    return 0;
}

int oidc_keys_remove_expired(struct store *s, int64_t now, size_t *ret_removed, struct err *e)
{
    struct expired_ctx x = {.now = now};
    size_t removed = 0;
    int r = scan_keys(s, expired_one, &x, e);
    if (x.oom)
        r = err_set(e, -E_NOMEM, "out of memory");
    for (size_t i = 0; i < x.n && r == 0; i++) {
        char key[REPO_KEY_MAX];
        if (repo_key(key, "sigkey/%s", x.kids[i]) < 0)
            continue;
        r = store_del(s, key, strlen(key), x.versions[i], e);
        if (r == -E_NOTFOUND || r == -E_CONFLICT) {
            /* Another process removed or rewrote it meanwhile: its call, not an error. */
            err_clear(e);
            r = 0;
            continue;
        }
        if (r == 0)
            removed++;
    }
    free(x.kids);
    free(x.versions);
    if (r == 0 && ret_removed)
        *ret_removed = removed;
    return r;
}
