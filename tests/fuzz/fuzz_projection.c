/*
 * fuzz_projection.c - libFuzzer target over the projection-file parser
 * (the ".projection" format of projector/README.md), through its public
 * entry point evp_rules_load() of evsproj.h.
 *
 * Input: the text of a projection file. evp_rules_load() reads a path, so
 * the input goes to one scratch file per process first. A file that loads
 * is asked for its name, schema and tables, then freed. Nothing may crash,
 * leak or read out of bounds, and a refusal always says why.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evsproj.h"
#include "fuzz.h"

static char path[4096];

static void remove_scratch(void)
{
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	evp_rules *rules = NULL;
	char err[1024] = "";
	FILE *f;
	int rc;

	if (path[0] == '\0') {
		const char *tmp = getenv("TMPDIR");
		int fd;

		snprintf(path, sizeof path, "%s/evs-fuzz-projection-XXXXXX",
			 tmp && tmp[0] ? tmp : "/tmp");
		fd = mkstemp(path);
		CHECK(fd >= 0);
		close(fd);
		atexit(remove_scratch);
	}
	f = fopen(path, "wb");
	CHECK(f && fwrite(data, 1, size, f) == size && fclose(f) == 0);
	rc = evp_rules_load(path, &rules, err, sizeof err);
	if (rc == 0) {
		CHECK(rules && evp_rules_name(rules));
		(void)evp_rules_schema(rules);
		(void)evp_rules_tables(rules);
		evp_rules_free(rules);
	} else {
		CHECK(!rules && err[0] != '\0');
	}
	return 0;
}
