/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replays a libFuzzer corpus without libFuzzer: each argument is a file or a folder, every
 * file of a folder (sorted by name) is read and handed to the target's
 * LLVMFuzzerTestOneInput(). Linked with each fuzz target and built with the ordinary compiler,
 * it is how every seed and every crash ever found runs as a unit test on each CI run, under
 * the sanitizers too. A crash, a sanitizer report or abort() fails the test; so does an empty
 * corpus, which would otherwise pass while testing nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPLAY_FILE_MAX (4 * 1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    /* One byte more than the cap, so an oversized file is seen rather than cut. */
    uint8_t *buf = malloc(REPLAY_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return -1;
    }
    size_t n = fread(buf, 1, REPLAY_FILE_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > REPLAY_FILE_MAX) {
        fprintf(stderr, "replay: %s: %s\n", path, bad ? "read error" : "file too large");
        free(buf);
        return -1;
    }
    /* Copy into an exact-size allocation, so ASan sees any read past the input's end. */
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns the number of files replayed, or -1. */
static long replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char **grown = realloc(names, (n + 1) * sizeof *names);
        if (!grown || !(grown[n] = strdup(de->d_name))) {
            closedir(d);
            names = grown ? grown : names;
            for (size_t i = 0; i < n; i++)
                free(names[i]);
            free(names);
            return -1;
        }
        names = grown;
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_names);

    long count = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        int len = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (len > 0 && (size_t)len < sizeof path && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(path) < 0)
                count = -1;
            else if (count >= 0)
                count++;
        }
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    long total = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        long n;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            n = replay_dir(argv[i]);
        } else {
            n = replay_file(argv[i]) < 0 ? -1 : 1;
        }
        if (n < 0)
            return 1;
        total += n;
    }
    if (total == 0) {
        fprintf(stderr, "replay: no input files: an empty corpus tests nothing\n");
        return 1;
    }
    printf("replayed %ld inputs\n", total);
    return 0;
}
