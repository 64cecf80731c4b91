/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Admin commands run as root on an installed system act as the service's user on its data,
 * so they never leave root-owned files (an LMDB lock file, a new store) that the service,
 * running as koder-id-v2, could not open.
 */
#ifndef SERVER_PRIVDROP_H
#define SERVER_PRIVDROP_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/err.h"

/**
 * When the process runs as root and @data_dir exists and belongs to another user, switches
 * the whole process to that user for good: its supplementary groups (initgroups), its primary
 * group, then its uid (real, effective and saved), and checks root cannot be regained. The
 * owner of the store is who the service runs as (the package makes /var/lib/koder-id-v2
 * koder-id-v2's), so this needs no configuration.
 *
 * Does nothing and returns 0 when the process is not root, when @data_dir is NULL, empty or
 * missing (nothing to protect: it will be created by whoever runs), or when it is root's own.
 *
 * Call it once, from the main thread, before any thread is started and right before the store
 * is opened: after it, files only root may read or write (a v1 secret under /root, a backup
 * file in /root) are out of reach, so a command opens those first.
 *
 * Sets *@ret_uid (may be NULL) to the uid the process runs as afterwards, and *@ret_switched
 * (may be NULL) to whether it switched. Errors: -E_CONFIG when @data_dir is not a folder,
 * -E_IO when it cannot be examined, -E_PERMISSION (with the command to run instead) when the
 * switch fails.
 */
int privdrop_to_data_owner(const char *data_dir, uid_t *ret_uid, bool *ret_switched, struct err *e);

#endif
