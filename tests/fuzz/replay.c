/*
 * replay.c - main() for a fuzz target built without libFuzzer: feed every
 * file of the given corpus directories to LLVMFuzzerTestOneInput once, so
 * the saved corpus replays in every normal test run (under the build's
 * sanitizers, if any).
 *
 *   replay_<target> DIR...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define REPLAY_MAX (1u << 20)

int main(int argc, char **argv)
{
	unsigned long files = 0;
	uint8_t *buf = malloc(REPLAY_MAX);

	if (argc < 2 || buf == NULL) {
		fprintf(stderr, "usage: %s DIR...\n", argv[0]);
		return 2;
	}
	for (int a = 1; a < argc; a++) {
		DIR *d = opendir(argv[a]);
		struct dirent *de;
		if (d == NULL) {
			fprintf(stderr, "%s: could not open directory \"%s\"\n", argv[0], argv[a]);
			return 1;
		}
		while ((de = readdir(d)) != NULL) {
			char path[4096];
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof path, "%s/%s", argv[a], de->d_name);
			FILE *f = fopen(path, "rb");
			if (f == NULL) {
				fprintf(stderr, "%s: could not open \"%s\"\n", argv[0], path);
				return 1;
			}
			size_t n = fread(buf, 1, REPLAY_MAX, f);
			fclose(f);
			/* an exact-size copy, so ASan sees reads past the end */
			uint8_t *in = malloc(n ? n : 1);
			memcpy(in, buf, n);
			LLVMFuzzerTestOneInput(in, n);
			free(in);
			files++;
		}
		closedir(d);
	}
	free(buf);
	printf("replayed %lu inputs\n", files);
	return files > 0 ? 0 : 1;
}
