/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key rotation (oidc/keys.c): the state machine with the time as a parameter (no waiting),
 * the plan a rotation makes, when a scheduled rotation is due, and rotation over a real LMDB
 * store: pending refusal, the claim marker, racing rotators, expired keys removed.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "oidc/keys.h"
#include "storage/repo.h"
#include "fixture_tmp.h"

static int setup(void **state)
{
    (void)state;
    return fx_tmp_setup("keys-rotate");
}

/* An info row as oidc_keys_list() makes it. */
static struct oidc_key_info key(const char *kid, bool own, int64_t sign_from, int64_t sign_until,
                                int64_t publish_until)
{
    struct oidc_key_info k = {.has_private = own,
                              .created_at = sign_from,
                              .sign_from = sign_from,
                              .sign_until = sign_until,
                              .publish_until = publish_until};
    snprintf(k.kid, sizeof k.kid, "%s", kid);
    snprintf(k.alg, sizeof k.alg, "RS256");
    return k;
}

static enum oidc_key_state state_at(struct oidc_key_info *keys, size_t n, size_t i, int64_t now)
{
    oidc_keys_classify(keys, n, now);
    return keys[i].state;
}

/* The whole life of a key pair through one normal rotation, minute by minute of fake time. */
static void test_states_through_a_rotation(void **state)
{
    (void)state;
    /* S signs since 100; the rotation at 1000 publishes N signing from 1600 (ahead 600) and
     * keeps S published until 1600 + 400 (verify_for). v1's key is published until 5000. */
    struct oidc_key_info k[3] = {key("S", true, 100, 1600, 2000), key("N", true, 1600, 0, 0),
                                 key("v1", false, 0, 0, 5000)};
    assert_int_equal(state_at(k, 3, 0, 1000), OIDC_KEY_SIGNING);
    assert_int_equal(state_at(k, 3, 1, 1000), OIDC_KEY_PENDING);
    assert_true(k[1].published && !k[1].signing);
    assert_int_equal(state_at(k, 3, 2, 1000), OIDC_KEY_IMPORTED);
    assert_true(k[2].published);

    assert_int_equal(state_at(k, 3, 0, 1599), OIDC_KEY_SIGNING);
    assert_int_equal(state_at(k, 3, 1, 1599), OIDC_KEY_PENDING);
    /* The switch happens at N's sign_from exactly: one signer at every moment. */
    assert_int_equal(state_at(k, 3, 0, 1600), OIDC_KEY_RETIRED);
    assert_true(k[0].published);
    assert_int_equal(state_at(k, 3, 1, 1600), OIDC_KEY_SIGNING);
    assert_int_equal(state_at(k, 3, 0, 1999), OIDC_KEY_RETIRED);
    assert_int_equal(state_at(k, 3, 0, 2000), OIDC_KEY_EXPIRED);
    assert_false(k[0].published);
    assert_int_equal(state_at(k, 3, 1, 2000), OIDC_KEY_SIGNING);
    assert_int_equal(state_at(k, 3, 2, 4999), OIDC_KEY_IMPORTED);
    assert_int_equal(state_at(k, 3, 2, 5000), OIDC_KEY_EXPIRED);
    for (int64_t t = 0; t < 6000; t += 50) { /* never two signers, never none after 100 */
        oidc_keys_classify(k, 3, t);
        int signers = k[0].signing + k[1].signing + k[2].signing;
        assert_int_equal(signers, t < 100 ? 0 : 1);
    }
    assert_string_equal(oidc_key_state_name(OIDC_KEY_PENDING), "pending");
    assert_string_equal(oidc_key_state_name(OIDC_KEY_EXPIRED), "expired");
}

/* Two keys in their signing windows (two servers made a first key at once): the later
 * sign_from signs, as oidc_keys_current() picks; a key out of the JWKS never signs. */
static void test_signer_choice(void **state)
{
    (void)state;
    struct oidc_key_info k[2] = {key("A", true, 100, 0, 0), key("B", true, 101, 0, 0)};
    assert_int_equal(state_at(k, 2, 1, 200), OIDC_KEY_SIGNING);
    assert_int_equal(k[0].state, OIDC_KEY_RETIRED);
    struct oidc_key_info x[1] = {key("X", true, 100, 0, 150)};
    assert_int_equal(state_at(x, 1, 0, 149), OIDC_KEY_SIGNING);
    assert_int_equal(state_at(x, 1, 0, 150), OIDC_KEY_EXPIRED);
    assert_false(x[0].signing);
}

static void test_plan_normal_and_pending(void **state)
{
    struct err e = {0};
    bool changed[3];
    int64_t from = 0;
    (void)state;
    struct oidc_key_info k[3] = {key("S", true, 100, 0, 0), key("v1", false, 0, 0, 5000),
                                 key("old", true, 10, 100, 900)};
    struct oidc_rotate_policy p = {.publish_ahead = 600, .verify_for = 400};
    assert_int_equal(oidc_keys_plan_rotation(k, 3, 1000, &p, changed, &from, &e), 0);
    assert_int_equal(from, 1600);
    assert_true(changed[0]);
    assert_int_equal(k[0].sign_until, 1600);
    assert_int_equal(k[0].publish_until, 2000);
    assert_false(changed[1]); /* imported keys keep their windows */
    assert_int_equal(k[1].publish_until, 5000);
    assert_false(changed[2]); /* already retired before 1600: untouched */
    assert_int_equal(k[2].publish_until, 900);

    /* With the new key stored, a second rotation is refused while it is pending... */
    struct oidc_key_info k2[2] = {k[0], key("N", true, 1600, 0, 0)};
    assert_int_equal(oidc_keys_plan_rotation(k2, 2, 1001, &p, changed, &from, &e), -E_CONFLICT);
    assert_non_null(strstr(e.msg, "already pending: key N signs from"));
    /* ... and allowed once it signs. */
    assert_int_equal(oidc_keys_plan_rotation(k2, 2, 1600, &p, changed, &from, &e), 0);
    assert_int_equal(from, 2200);
    assert_false(changed[0]);
    assert_true(changed[1]);
    assert_int_equal(k2[1].sign_until, 2200);
    assert_int_equal(k2[1].publish_until, 2600);
}

/* --now --force with a key pending: the new key signs at once, the signer stops at once and
 * stays published for verify_for, the pending key never signs. */
static void test_plan_emergency(void **state)
{
    struct err e = {0};
    bool changed[2];
    int64_t from = 0;
    (void)state;
    struct oidc_key_info k[2] = {key("S", true, 100, 1600, 2000), key("N", true, 1600, 0, 0)};
    struct oidc_rotate_policy p = {.publish_ahead = 0, .verify_for = 400, .force = true};
    assert_int_equal(oidc_keys_plan_rotation(k, 2, 1200, &p, changed, &from, &e), 0);
    assert_int_equal(from, 1200);
    assert_true(changed[0] && changed[1]);
    assert_int_equal(k[0].sign_until, 1200);
    assert_int_equal(k[0].publish_until, 1600);
    struct oidc_key_info all[3] = {k[0], k[1], key("E", true, 1200, 0, 0)};
    for (int64_t t = 1200; t < 3000; t += 10) {
        oidc_keys_classify(all, 3, t);
        assert_true(all[2].signing);
        assert_false(all[0].signing || all[1].signing);
        assert_int_equal(all[1].state, t < 1600 ? OIDC_KEY_RETIRED : OIDC_KEY_EXPIRED);
    }
    assert_int_equal(oidc_keys_verify_window(3600, 43200, 300), 43500);
    assert_int_equal(oidc_keys_verify_window(7200, 60, 0), 7200);
}

static void test_rotation_due(void **state)
{
    (void)state;
    struct oidc_key_info k[1] = {key("S", true, 1000, 0, 0)};
    assert_false(oidc_keys_rotation_due(k, 1, 1999, 1000));
    assert_true(oidc_keys_rotation_due(k, 1, 2000, 1000));
    assert_false(oidc_keys_rotation_due(k, 1, 9999, 0)); /* 0 = off */
    struct oidc_key_info p[2] = {key("S", true, 1000, 2100, 2500), key("N", true, 2100, 0, 0)};
    assert_false(oidc_keys_rotation_due(p, 2, 2050, 1000)); /* N pending */
    assert_false(oidc_keys_rotation_due(p, 2, 2100, 1000)); /* N signs since 0 s */
    assert_true(oidc_keys_rotation_due(p, 2, 3100, 1000));
    assert_true(oidc_keys_rotation_due(NULL, 0, 5, 1000)); /* nothing signs */
}

/* ---- over a real store ---- */

static struct store *open_store(const char *sub)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", fx_tmpbase, sub);
    struct store_config sc = {
        .backend = "lmdb", .tenant = 1, .data_dir = p, .lmdb_map_size = 64 << 20};
    struct store *s = NULL;
    struct err e = {0};
    assert_int_equal(store_open(&sc, &s, &e), 0);
    return s;
}

static struct oidc_keys *open_keys(struct store *s)
{
    char p[512];
    struct oidc_keys *k = NULL;
    struct err e = {0};
    snprintf(p, sizeof p, "%s/master.key", fx_tmpbase);
    assert_int_equal(oidc_keys_open(s, p, true, &k, &e), 0);
    return k;
}

static size_t count_state(struct store *s, enum oidc_key_state st, char kid[64])
{
    struct oidc_key_info *info = NULL;
    size_t n = 0, c = 0;
    struct err e = {0};
    assert_int_equal(oidc_keys_list(s, &info, &n, &e), 0);
    for (size_t i = 0; i < n; i++)
        if (info[i].state == st) {
            c++;
            if (kid)
                snprintf(kid, 64, "%s", info[i].kid);
        }
    free(info);
    return c;
}

static void current_kid(struct oidc_keys *k, char kid[64])
{
    EVP_PKEY *pk = NULL;
    char alg[8];
    struct err e = {0};
    assert_int_equal(oidc_keys_current(k, &pk, kid, alg, &e), 0);
    EVP_PKEY_free(pk);
}

static void test_rotate_over_lmdb(void **state)
{
    struct err e = {0};
    struct oidc_rotate_result res;
    char first[64], kid[64], pending[64];
    (void)state;
    struct store *s = open_store("rot");
    struct oidc_keys *k = open_keys(s);
    int64_t now = (int64_t)time(NULL);
    current_kid(k, first);

    struct oidc_rotate_policy p = {.publish_ahead = 3600, .verify_for = 7200};
    assert_int_equal(oidc_keys_rotate(k, now, &p, 0, &res, &e), 0);
    assert_string_equal(res.old_kid, first);
    assert_int_equal(res.sign_from, now + 3600);
    assert_int_equal(res.old_publish_until, now + 3600 + 7200);
    assert_int_equal(count_state(s, OIDC_KEY_PENDING, pending), 1);
    assert_string_equal(pending, res.kid);
    /* Published at once (the reload happened), not signing yet. */
    char *jwks = oidc_keys_jwks_json(k, &e);
    assert_non_null(strstr(jwks, res.kid));
    assert_non_null(strstr(jwks, first));
    free(jwks);
    current_kid(k, kid);
    assert_string_equal(kid, first);

    /* Pending: a manual rotation is refused with the reason, a scheduled one does nothing. */
    assert_int_equal(oidc_keys_rotate(k, now + 1, &p, 0, &res, &e), -E_CONFLICT);
    assert_non_null(strstr(e.msg, "already pending"));
    assert_int_equal(oidc_keys_rotate(k, now + 1, &p, 1, &res, &e), 0);
    assert_string_equal(res.kid, "");
    assert_int_equal(count_state(s, OIDC_KEY_PENDING, NULL), 1);

    /* Nothing to reload now; at the pending key's sign_from there is. */
    assert_int_equal(oidc_keys_refresh(k, now, &e), 0);
    assert_int_equal(oidc_keys_refresh(k, now + 3600, &e), 1);

    /* --now --force: signs at once (wall clock: oidc_keys_current sees it). */
    struct oidc_rotate_policy em = {.publish_ahead = 0, .verify_for = 7200, .force = true};
    now = (int64_t)time(NULL);
    assert_int_equal(oidc_keys_rotate(k, now, &em, 0, &res, &e), 0);
    current_kid(k, kid);
    assert_string_equal(kid, res.kid);
    assert_int_equal(count_state(s, OIDC_KEY_PENDING, NULL), 0);
    assert_int_equal(count_state(s, OIDC_KEY_RETIRED, NULL), 2);

    /* Expired keys go: the two retired ones, not the signer. */
    size_t removed = 9;
    assert_int_equal(oidc_keys_remove_expired(s, now + 7199, &removed, &e), 0);
    assert_int_equal(removed, 0);
    assert_int_equal(oidc_keys_remove_expired(s, now + 7200, &removed, &e), 0);
    assert_int_equal(removed, 2);
    struct oidc_key_info *info = NULL;
    size_t n = 0;
    assert_int_equal(oidc_keys_list(s, &info, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(info[0].kid, res.kid);
    free(info);
    oidc_keys_free(k);
    store_close(s);
}

/* A claim by another process (meta/key_rotation names the signer) with no key written yet. */
static void test_rotation_claim(void **state)
{
    struct err e = {0};
    struct oidc_rotate_result res;
    char signer[64], claim[128];
    (void)state;
    struct store *s = open_store("claim");
    struct oidc_keys *k = open_keys(s);
    int64_t now = (int64_t)time(NULL);
    current_kid(k, signer);
    struct oidc_rotate_policy p = {.publish_ahead = 60, .verify_for = 60};

    int len = snprintf(claim, sizeof claim, "%s %lld", signer, (long long)(now - 30));
    assert_int_equal(store_put(s, "meta/key_rotation", 17, claim, (size_t)len, 0, NULL, &e), 0);
    assert_int_equal(oidc_keys_rotate(k, now, &p, 0, &res, &e), -E_CONFLICT);
    assert_non_null(strstr(e.msg, "another process"));
    assert_int_equal(oidc_keys_rotate(k, now, &p, 1, &res, &e), 0);
    assert_string_equal(res.kid, "");
    assert_int_equal(count_state(s, OIDC_KEY_PENDING, NULL), 0);

    /* A claim on another signer, or a stale one (the claimer died), does not block. */
    len = snprintf(claim, sizeof claim, "%s %lld", signer, (long long)(now - 601));
    assert_int_equal(store_put(s, "meta/key_rotation", 17, claim, (size_t)len, 0, NULL, &e), 0);
    assert_int_equal(oidc_keys_rotate(k, now, &p, 0, &res, &e), 0);
    assert_int_equal(count_state(s, OIDC_KEY_PENDING, NULL), 1);
    oidc_keys_free(k);
    store_close(s);
}

struct racer {
    struct oidc_keys *k;
    int64_t now;
    int rc;
    char kid[64];
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct err e = {0};
    struct oidc_rotate_policy p = {.publish_ahead = 600, .verify_for = 600};
    struct oidc_rotate_result res;
    r->rc = oidc_keys_rotate(r->k, r->now, &p, 1, &res, &e);
    snprintf(r->kid, sizeof r->kid, "%s", res.kid);
    return NULL;
}

/* Scheduled rotations racing from several "servers" on one store: exactly one new key, in any
 * interleaving (the compare-and-swap on the marker decides). */
static void test_scheduled_rotation_race(void **state)
{
    (void)state;
    struct store *s = open_store("race");
    struct oidc_keys *ks[2] = {open_keys(s), open_keys(s)};
    int64_t now = (int64_t)time(NULL) + 10; /* "every = 1": due once 1 s passed */
    for (int round = 0; round < 3; round++) {
        struct racer r[4];
        pthread_t t[4];
        for (int i = 0; i < 4; i++) {
            r[i] = (struct racer){.k = ks[i % 2], .now = now};
            assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
        }
        int made = 0;
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            assert_int_equal(r[i].rc, 0);
            made += r[i].kid[0] != '\0';
        }
        assert_int_equal(made, 1);
        struct oidc_key_info *info = NULL;
        size_t n = 0;
        struct err e = {0};
        assert_int_equal(oidc_keys_list(s, &info, &n, &e), 0);
        free(info);
        assert_int_equal(n, (size_t)round + 2); /* the first key and one per round */
        now += 601; /* the pending key signs; the next round rotates it in turn */
    }
    oidc_keys_free(ks[0]);
    oidc_keys_free(ks[1]);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_states_through_a_rotation),
        cmocka_unit_test(test_signer_choice),
        cmocka_unit_test(test_plan_normal_and_pending),
        cmocka_unit_test(test_plan_emergency),
        cmocka_unit_test(test_rotation_due),
        cmocka_unit_test(test_rotate_over_lmdb),
        cmocka_unit_test(test_rotation_claim),
        cmocka_unit_test(test_scheduled_rotation_race),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, setup, fx_tmp_teardown);
}
