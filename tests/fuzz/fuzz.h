/*
 * fuzz.h - what every fuzz target shares: the libFuzzer entry point (also
 * called by replay.c) and CHECK, which stops the run on a broken promise
 * so that libFuzzer (or the replay) reports the input.
 */
#ifndef EVS_FUZZ_H
#define EVS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                          \
	do {                              \
		if (!(c))                 \
			__builtin_trap(); \
	} while (0)

#endif /* EVS_FUZZ_H */
