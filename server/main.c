/* SPDX-License-Identifier: Apache-2.0 */
/*
 * koder-id-v2-gateway: the command line. Git-style commands; exit status 0 success, 1 failure
 * at run time, 2 usage error; errors are one line on stderr.
 */
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: koder-id-v2-gateway [--version] [--help] COMMAND [ARGS]\n"
          "\n"
          "An OpenID Connect provider, drop-in for Koder's v1 identity server.\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("koder-id-v2-gateway %s\n", KODER_ID_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "koder-id-v2-gateway: unknown command '%s' (see --help)\n", argv[1]);
    return 2;
}
