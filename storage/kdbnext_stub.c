/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder until the kdb-next backend lands (issue: kdb-next storage backend over gRPC). */
#include "store.h"

int store_kdbnext_open(const struct store_config *cfg, struct store **ret, struct err *e)
{
    (void)cfg;
    (void)ret;
    return err_set(e, -E_CONFIG, "storage 'kdbnext' is not built into this binary yet");
}
