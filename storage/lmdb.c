/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder until the LMDB backend lands. */
#include "store.h"

int store_lmdb_open(const struct store_config *cfg, struct store **ret, struct err *e)
{
    (void)cfg;
    (void)ret;
    return err_set(e, -E_CONFIG, "storage 'lmdb' is not built yet");
}
