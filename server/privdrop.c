/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Dropping root to the owner of the data folder (see privdrop.h). The order is the one every
 * careful daemon uses (OpenSSH, nginx, systemd's setresuid path): groups first while still
 * root, then the gid, then the uid, then a check that uid 0 cannot come back.
 */
#include "server/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

static int fail(struct err *e, const char *who, const char *data_dir, const char *what, int errnum)
{
    return err_set(e, -E_PERMISSION,
                   "cannot act as '%s', the owner of data_dir '%s' (%s: %s); run the command as "
                   "that user: runuser -u %s -- koder-id-v2-gateway ...",
                   who, data_dir, what, strerror(errnum), who);
}

static int unchanged(uid_t *ret_uid, bool *ret_switched)
{
    if (ret_switched)
        *ret_switched = false;
    if (ret_uid)
        *ret_uid = geteuid();
    return 0;
}

int privdrop_to_data_owner(const char *data_dir, uid_t *ret_uid, bool *ret_switched, struct err *e)
{
    struct stat st;
    struct passwd pw, *pwp = NULL;
    char pwbuf[4096], who[64];
    gid_t gid;

    if (getuid() != 0 && geteuid() != 0)
        return unchanged(ret_uid, ret_switched);
    if (!data_dir || !*data_dir)
        return unchanged(ret_uid, ret_switched);
    if (stat(data_dir, &st) < 0) {
        if (errno == ENOENT)
            return unchanged(ret_uid, ret_switched);
        return err_set(e, -E_IO, "data_dir '%s': %s", data_dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return err_set(e, -E_CONFIG, "data_dir '%s' is not a folder", data_dir);
    if (st.st_uid == 0)
        return unchanged(ret_uid, ret_switched);

    int r = getpwuid_r(st.st_uid, &pw, pwbuf, sizeof pwbuf, &pwp);
    if (r != 0 || !pwp) {
        /* A uid without a name (a store copied from another machine): its own gid, no groups. */
        pwp = NULL;
        snprintf(who, sizeof who, "uid %u", (unsigned)st.st_uid);
        gid = st.st_gid;
    } else {
        snprintf(who, sizeof who, "%s", pwp->pw_name);
        gid = pwp->pw_gid;
    }

    if (pwp ? initgroups(pwp->pw_name, gid) < 0 : setgroups(0, NULL) < 0)
        return fail(e, who, data_dir, "setting groups", errno);
    if (setresgid(gid, gid, gid) < 0)
        return fail(e, who, data_dir, "setresgid", errno);
    if (setresuid(st.st_uid, st.st_uid, st.st_uid) < 0)
        return fail(e, who, data_dir, "setresuid", errno);
    if (setuid(0) == 0 || seteuid(0) == 0)
        return err_set(e, -E_PERMISSION, "root could be regained after switching to '%s'", who);

    log_debug("running as '%s', the owner of data_dir '%s'", who, data_dir);
    if (ret_switched)
        *ret_switched = true;
    if (ret_uid)
        *ret_uid = geteuid();
    return 0;
}
