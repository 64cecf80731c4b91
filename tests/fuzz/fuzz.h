/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the fuzz targets: the libFuzzer entry point's prototype and FUZZ_CHECK, which
 * turns a broken property (a decoder that accepts what it should refuse, an encoder that does
 * not round-trip) into a crash that libFuzzer reports and saves like any memory error.
 */
#ifndef TESTS_FUZZ_FUZZ_H
#define TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
