/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for server/privdrop.c. Each case runs in a forked child, since a switch of uid
 * is for good. As root (CI) the switch itself is exercised on a folder given to the user
 * `nobody`; as another user only the do-nothing paths can be, and the switch cases skip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>
#include <sys/syscall.h>

#include "server/privdrop.h"

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_privdrop.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Runs @fn(arg) in a child; returns its exit status (0 = all its checks held). */
static int in_child(int (*fn)(const char *), const char *arg)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn(arg));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static int child_unchanged(const char *dir)
{
    uid_t before = geteuid(), after = 12345;
    bool switched = true;
    struct err e = {0};
    if (privdrop_to_data_owner(dir, &after, &switched, &e) != 0)
        return 10;
    if (switched || after != before || geteuid() != before || getuid() != before)
        return 11;
    return 0;
}

static void test_missing_or_empty_dir_changes_nothing(void **state)
{
    char missing[128];
    (void)state;
    snprintf(missing, sizeof missing, "%s/absent", tmpdir);
    assert_int_equal(in_child(child_unchanged, missing), 0);
    assert_int_equal(in_child(child_unchanged, ""), 0);
    assert_int_equal(in_child(child_unchanged, NULL), 0);
}

static void test_own_dir_changes_nothing(void **state)
{
    (void)state;
    /* tmpdir belongs to whoever runs the test: root (nothing to drop to) or the user itself */
    assert_int_equal(in_child(child_unchanged, tmpdir), 0);
}

static void test_not_a_folder_is_refused(void **state)
{
    char file[128];
    struct err e = {0};
    (void)state;
    snprintf(file, sizeof file, "%s/file", tmpdir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    if (geteuid() != 0) {
        /* not root: nothing is examined, nothing refused */
        assert_int_equal(privdrop_to_data_owner(file, NULL, NULL, &e), 0);
        return;
    }
    assert_int_equal(privdrop_to_data_owner(file, NULL, NULL, &e), -E_CONFIG);
    assert_non_null(strstr(e.msg, "is not a folder"));
}

static int child_switch(const char *dir)
{
    struct passwd *nobody = getpwnam("nobody");
    uid_t uid = 0;
    bool switched = false;
    struct err e = {0};
    if (!nobody)
        return 20;
    if (privdrop_to_data_owner(dir, &uid, &switched, &e) != 0) {
        fprintf(stderr, "privdrop: %s\n", e.msg);
        return 21;
    }
    if (!switched || uid != nobody->pw_uid)
        return 22;
    uid_t r, ef, s;
    gid_t rg, eg, sg;
    if (getresuid(&r, &ef, &s) < 0 || r != nobody->pw_uid || ef != r || s != r)
        return 23;
    if (getresgid(&rg, &eg, &sg) < 0 || rg != nobody->pw_gid || eg != rg || sg != rg)
        return 24;
    /* supplementary groups are nobody's, never root's */
    gid_t groups[64];
    int n = getgroups(64, groups);
    for (int i = 0; i < n; i++)
        if (groups[i] == 0)
            return 25;
    if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
        return 26;
    /* what it creates now belongs to the owner of the folder */
    char file[160];
    snprintf(file, sizeof file, "%s/created", dir);
    FILE *f = fopen(file, "w");
    if (!f)
        return 27;
    fclose(f);
    struct stat st;
    if (stat(file, &st) < 0 || st.st_uid != nobody->pw_uid)
        return 28;
    return 0;
}

static void test_root_becomes_the_owner(void **state)
{
    char dir[128];
    (void)state;
    if (geteuid() != 0)
        skip(); /* switching users needs root; CI runs as root */
    struct passwd *nobody = getpwnam("nobody");
    assert_non_null(nobody);
    snprintf(dir, sizeof dir, "%s/store", tmpdir);
    assert_int_equal(mkdir(dir, 0750), 0);
    assert_int_equal(chown(dir, nobody->pw_uid, nobody->pw_gid), 0);
    assert_int_equal(chmod(tmpdir, 0755), 0);
    assert_int_equal(in_child(child_switch, dir), 0);
}

static int child_unnamed_uid(const char *dir)
{
    uid_t uid = 0;
    bool switched = false;
    struct err e = {0};
    if (privdrop_to_data_owner(dir, &uid, &switched, &e) != 0)
        return 30;
    gid_t rg, eg, sg;
    if (!switched || uid != 54321 || getuid() != 54321 || getresgid(&rg, &eg, &sg) < 0 ||
        rg != 54322 || getgroups(0, NULL) != 0)
        return 31;
    return 0;
}

static void test_uid_without_a_name(void **state)
{
    char dir[128];
    (void)state;
    if (geteuid() != 0)
        skip(); /* switching users needs root; CI runs as root */
    assert_null(getpwuid(54321));
    snprintf(dir, sizeof dir, "%s/copied", tmpdir);
    assert_int_equal(mkdir(dir, 0750), 0);
    assert_int_equal(chown(dir, 54321, 54322), 0);
    assert_int_equal(in_child(child_unnamed_uid, dir), 0);
}

/* Root without the right to change users (as in a restricted container): refused, with the
 * command to run instead. */
static int child_refused(const char *dir)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    struct err e = {0};
    bool switched = true;
    if (syscall(SYS_capget, &hdr, data) < 0)
        return 40;
    unsigned drop = (1u << CAP_SETUID) | (1u << CAP_SETGID);
    data[0].effective &= ~drop;
    data[0].permitted &= ~drop;
    if (syscall(SYS_capset, &hdr, data) < 0)
        return 41;
    int r = privdrop_to_data_owner(dir, NULL, &switched, &e);
    if (r != -E_PERMISSION) {
        fprintf(stderr, "privdrop returned %d: %s\n", r, e.msg);
        return 42;
    }
    if (!strstr(e.msg, "runuser -u nobody --") || !strstr(e.msg, dir))
        return 43;
    if (getuid() != 0) /* nothing half-done that matters: still root, still refused */
        return 44;
    return 0;
}

static void test_refused_with_a_hint(void **state)
{
    char dir[128];
    (void)state;
    if (geteuid() != 0)
        skip(); /* needs root to lose the right to switch; CI runs as root */
    struct passwd *nobody = getpwnam("nobody");
    assert_non_null(nobody);
    snprintf(dir, sizeof dir, "%s/refused", tmpdir);
    assert_int_equal(mkdir(dir, 0750), 0);
    assert_int_equal(chown(dir, nobody->pw_uid, nobody->pw_gid), 0);
    assert_int_equal(in_child(child_refused, dir), 0);
}

int main(void)
{
    cmocka_set_message_output(CM_OUTPUT_TAP);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_or_empty_dir_changes_nothing),
        cmocka_unit_test(test_own_dir_changes_nothing),
        cmocka_unit_test(test_not_a_folder_is_refused),
        cmocka_unit_test(test_root_becomes_the_owner),
        cmocka_unit_test(test_uid_without_a_name),
        cmocka_unit_test(test_refused_with_a_hint),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
