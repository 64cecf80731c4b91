/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The commands of koder-id-v2-gateway, one file each (server/cmd_NAME.c). Each takes the
 * command's own argv (argv[0] is the command name) and returns an exit status: 0 success,
 * 1 failure at run time, 2 usage error. See server/cli.h for the shared helpers and how to
 * add one.
 */
#ifndef SERVER_COMMANDS_H
#define SERVER_COMMANDS_H

#include <stdbool.h>

int cmd_serve(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_client(int argc, char **argv);
int cmd_keys(int argc, char **argv);
struct cli;
/* serve's housekeeping of the signing keys (server/cmd_keys.c), from its background thread
 * every second: re-reads the keys when a window opened or closed; with @interval_due (every
 * keys.reload_interval) also deletes expired keys, rotates on schedule, and re-reads. */
void keys_housekeeping(struct cli *cl, bool interval_due);
/* server/cmd_machine.c, cmd_api.c, cmd_project.c (project, role, grant) */
int cmd_machine(int argc, char **argv);
int cmd_api(int argc, char **argv);
int cmd_project(int argc, char **argv);
int cmd_role(int argc, char **argv);
int cmd_grant(int argc, char **argv);
/* server/cmd_import.c (import-zitadel); a weak placeholder in main.c until it lands */
int cmd_import_zitadel(int argc, char **argv);
/* server/cmd_backup.c (export, import-backup); weak placeholders in main.c until they land */
int cmd_export(int argc, char **argv);
int cmd_import_backup(int argc, char **argv);

#endif
