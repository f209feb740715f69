/*
 * fuzz_import.c - libFuzzer target over the "evs import" line parser: one
 * line of the export format (a JSON object per line) through
 * cli_json_parse() and cli_event_from_json() with every field allowed,
 * exactly as cli/cmd_import.c reads each line of its input.
 *
 * Input: the bytes of one line (without its newline). A refusal must come
 * with a message; an accepted event is freed. Nothing may crash, leak or
 * read out of bounds.
 */
#include <stdint.h>
#include <string.h>

#include "cli.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cli_event e;
	json_object *obj;
	char err[512] = "";
	int rc;

	obj = cli_json_parse((const char *)data, size, err, sizeof err);
	if (!obj) {
		CHECK(err[0] != '\0');
		return 0;
	}
	cli_event_init(&e);
	err[0] = '\0';
	rc = cli_event_from_json(&e, obj, CLI_F_ALL, err, sizeof err);
	json_object_put(obj);
	CHECK(rc == 0 || err[0] != '\0');
	cli_event_free(&e);
	return 0;
}
