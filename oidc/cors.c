/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The allowed-origin set behind CORS. Origins are computed once, when the set is built, with
 * the strict URI parser of redirect matching (oidc/redirect.h), so a registration never yields
 * an origin whose host came from anywhere but the authority. The set is an open-addressing
 * hash table swapped whole under a read-write lock: a lookup hashes the Origin header and
 * compares bytes, nothing more, which keeps the event-loop answers (discovery, JWKS) cheap.
 */
#include "cors.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "oidc/discovery.h"
#include "oidc/redirect.h"
#include "storage/records.pb-c.h"

#define SCAN_PAGE 500

/* Every answer of the loop thread looks here: lengths first, so most paths cost six compares
 * of a size_t. */
#define PATH(p) p, sizeof(p) - 1
static const struct oidc_cors_endpoint endpoints[] = {
    {PATH("/oauth/v2/token"), "POST", "Authorization, Content-Type", "WWW-Authenticate"},
    {PATH("/oidc/v1/userinfo"), "GET, POST", "Authorization, Content-Type", "WWW-Authenticate"},
    {PATH("/oauth/v2/introspect"), "POST", "Authorization, Content-Type", "WWW-Authenticate"},
    {PATH("/oauth/v2/revoke"), "POST", "Authorization, Content-Type", "WWW-Authenticate"},
    {PATH(OIDC_PATH_DISCOVERY), "GET", NULL, NULL},
    {PATH(OIDC_PATH_JWKS), "GET", NULL, NULL},
};

const struct oidc_cors_endpoint *oidc_cors_endpoint(const char *path, size_t len)
{
    if (!path)
        return NULL;
    for (size_t i = 0; i < ARRAY_SIZE(endpoints); i++)
        if (endpoints[i].path_len == len && memcmp(endpoints[i].path, path, len) == 0)
            return &endpoints[i];
    return NULL;
}

int oidc_cors_origin_of(const char *uri, char out[OIDC_CORS_ORIGIN_MAX])
{
    struct oidc_url u;
    int n;

    if (!uri || oidc_url_parse(uri, false, &u) < 0 || !u.has_authority)
        return -1;
    bool https = strcmp(u.scheme, "https") == 0;
    if (!https && strcmp(u.scheme, "http") != 0)
        return -1;
    if (u.port > 0 && u.port != (https ? 443 : 80))
        n = snprintf(out, OIDC_CORS_ORIGIN_MAX, "%s://%s:%ld", u.scheme, u.host, u.port);
    else
        n = snprintf(out, OIDC_CORS_ORIGIN_MAX, "%s://%s", u.scheme, u.host);
    return n < 0 || n >= OIDC_CORS_ORIGIN_MAX ? -1 : n;
}

/* ---- the set ---- */

struct slot {
    uint64_t hash;
    size_t len;
    char *s; /* NULL: empty */
};

struct origin_set {
    size_t mask; /* capacity - 1; capacity a power of two, at least twice the count */
    size_t n;
    struct slot *slots;
};

struct oidc_cors {
    pthread_rwlock_t lock;
    struct origin_set *set; /* NULL: empty */
};

/* FNV-1a: the keys come from registrations, not from requests, so no flooding concern. */
static uint64_t hash_of(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void set_free(struct origin_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; set->slots && i <= set->mask; i++)
        free(set->slots[i].s);
    free(set->slots);
    free(set);
}

static bool set_has(const struct origin_set *set, const char *s, size_t len, uint64_t h)
{
    for (size_t i = h & set->mask;; i = (i + 1) & set->mask) {
        const struct slot *sl = &set->slots[i];
        if (!sl->s)
            return false;
        if (sl->hash == h && sl->len == len && memcmp(sl->s, s, len) == 0)
            return true;
    }
}

/* A set sized for up to @max origins (never resized: the builder knows the bound). */
static struct origin_set *set_new(size_t max)
{
    struct origin_set *set = calloc(1, sizeof *set);
    size_t cap = 8;
    while (cap < 2 * max + 2)
        cap <<= 1;
    if (!set || !(set->slots = calloc(cap, sizeof *set->slots))) {
        free(set);
        return NULL;
    }
    set->mask = cap - 1;
    return set;
}

/* Adds @uri's origin (if it has one). 0, or -E_NOMEM. The caller sized the set. */
static int set_add_uri(struct origin_set *set, const char *uri)
{
    char o[OIDC_CORS_ORIGIN_MAX];
    int n = oidc_cors_origin_of(uri, o);
    if (n < 0)
        return 0;
    uint64_t h = hash_of(o, (size_t)n);
    if (set_has(set, o, (size_t)n, h))
        return 0;
    size_t i = h & set->mask;
    while (set->slots[i].s)
        i = (i + 1) & set->mask;
    if (!(set->slots[i].s = strdup(o)))
        return -E_NOMEM;
    set->slots[i].hash = h;
    set->slots[i].len = (size_t)n;
    set->n++;
    return 0;
}

/* Installs @set (owned) and frees the one it replaces. */
static void swap_in(struct oidc_cors *c, struct origin_set *set)
{
    pthread_rwlock_wrlock(&c->lock);
    struct origin_set *old = c->set;
    c->set = set;
    pthread_rwlock_unlock(&c->lock);
    set_free(old);
}

int oidc_cors_new(struct oidc_cors **ret, struct err *e)
{
    struct oidc_cors *c = calloc(1, sizeof *c);
    if (!c)
        return err_set(e, -E_NOMEM, "out of memory");
    if (pthread_rwlock_init(&c->lock, NULL) != 0) {
        free(c);
        return err_set(e, -E_NOMEM, "cors: cannot create a lock");
    }
    *ret = c;
    return 0;
}

void oidc_cors_free(struct oidc_cors *c)
{
    if (!c)
        return;
    set_free(c->set);
    pthread_rwlock_destroy(&c->lock);
    free(c);
}

/* Builds the set of @uris' origins and installs it; *ret_count (may be NULL) its size. */
static int replace(struct oidc_cors *c, const char *const *uris, size_t n, size_t *ret_count,
                   struct err *e)
{
    struct origin_set *set = set_new(n);
    if (!set)
        return err_set(e, -E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (set_add_uri(set, uris[i]) < 0) {
            set_free(set);
            return err_set(e, -E_NOMEM, "out of memory");
        }
    if (ret_count)
        *ret_count = set->n;
    swap_in(c, set);
    return 0;
}

int oidc_cors_set(struct oidc_cors *c, const char *const *uris, size_t n, struct err *e)
{
    return replace(c, uris, n, NULL, e);
}

/* The URIs of every active client, borrowed from the unpacked records in @clients. */
struct uri_list {
    const char **uris;
    size_t n, cap;
    Koderid__V2__Client **clients;
    size_t nclients, ccap;
};

static void uri_list_release(struct uri_list *l)
{
    for (size_t i = 0; i < l->nclients; i++)
        koderid__v2__client__free_unpacked(l->clients[i], NULL);
    free(l->clients);
    free(l->uris);
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    while (ncap < need)
        ncap *= 2;
    void *np = realloc(*p, ncap * size);
    if (!np)
        return -E_NOMEM;
    *p = np;
    *cap = ncap;
    return 0;
}

static int uri_list_add_client(struct uri_list *l, Koderid__V2__Client *c)
{
    size_t add = c->n_redirect_uris + c->n_additional_origins;
    if (grow((void **)&l->clients, &l->ccap, l->nclients + 1, sizeof *l->clients) < 0 ||
        grow((void **)&l->uris, &l->cap, l->n + add, sizeof *l->uris) < 0) {
        koderid__v2__client__free_unpacked(c, NULL);
        return -E_NOMEM;
    }
    l->clients[l->nclients++] = c;
    for (size_t i = 0; i < c->n_redirect_uris; i++)
        l->uris[l->n++] = c->redirect_uris[i];
    for (size_t i = 0; i < c->n_additional_origins; i++)
        l->uris[l->n++] = c->additional_origins[i];
    return 0;
}

int oidc_cors_reload(struct oidc_cors *c, struct store *store, size_t *ret_n, struct err *e)
{
    struct uri_list l = {0};
    char cursor[STORE_KEY_MAX + 1];
    size_t clen = 0;
    int r = 0;

    for (;;) {
        struct store_list page = {0};
        r = store_scan(store, "client/", 7, clen ? cursor : NULL, clen, SCAN_PAGE, &page, e);
        if (r < 0)
            break;
        for (size_t i = 0; i < page.n && r == 0; i++) {
            /* A record that does not unpack is skipped: one bad record must not take every
             * origin away. */
            Koderid__V2__Client *cl = koderid__v2__client__unpack(NULL, page.items[i].value.len,
                                                                  page.items[i].value.data);
            if (!cl)
                continue;
            if (cl->state != 1) {
                koderid__v2__client__free_unpacked(cl, NULL);
                continue;
            }
            r = uri_list_add_client(&l, cl);
        }
        if (r < 0) {
            err_set(e, r, "out of memory");
        } else if (page.n > 0 && page.items[page.n - 1].klen > STORE_KEY_MAX) {
            r = err_set(e, -E_INTERNAL, "cors: a client key longer than the store allows");
        } else if (page.n > 0) {
            clen = page.items[page.n - 1].klen;
            memcpy(cursor, page.items[page.n - 1].key, clen);
        }
        bool more = page.more && page.n > 0;
        store_list_release(&page);
        if (r < 0 || !more)
            break;
    }
    if (r == 0)
        r = replace(c, l.uris, l.n, ret_n, e);
    uri_list_release(&l);
    return r;
}

bool oidc_cors_allowed(struct oidc_cors *c, const char *origin, size_t len)
{
    if (!c || !origin || len == 0 || len >= OIDC_CORS_ORIGIN_MAX)
        return false;
    uint64_t h = hash_of(origin, len);
    pthread_rwlock_rdlock(&c->lock);
    bool ok = c->set && c->set->n > 0 && set_has(c->set, origin, len, h);
    pthread_rwlock_unlock(&c->lock);
    return ok;
}
