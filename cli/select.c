/*
 * select.c - option values shared by commands: integer options and the
 * event selection of read and tail (--from, --type, --prefix), parsed and
 * refused with the same words everywhere.
 */
#include <string.h>

#include "cli.h"

int cli_option_u64(const char *option, const char *value, uint64_t min, uint64_t *out)
{
	if (cli_parse_u64(value, out) != 0 || *out < min)
		return cli_bad_value(option, value,
				     min ? "expected a positive integer"
					 : "expected a non-negative integer");
	return CLI_EXIT_OK;
}

int cli_option_sync(const char *option, const char *value, int *out)
{
	if (strcmp(value, "full") == 0)
		*out = EVS_SYNC_FULL;
	else if (strcmp(value, "meta") == 0)
		*out = EVS_SYNC_META;
	else if (strcmp(value, "none") == 0)
		*out = EVS_SYNC_NONE;
	else
		return cli_bad_value(option, value, "expected full, meta or none");
	return CLI_EXIT_OK;
}

int cli_select_option(struct cli_select *sel, enum cli_select_opt which, const char *value)
{
	switch (which) {
	case CLI_SELECT_FROM:
		sel->has_from = true;
		return cli_option_u64("from", value, 0, &sel->from);
	case CLI_SELECT_TYPE: cli_strlist_add(&sel->types, value); return CLI_EXIT_OK;
	case CLI_SELECT_PREFIX: cli_strlist_add(&sel->prefixes, value); return CLI_EXIT_OK;
	}
	return CLI_EXIT_USAGE;
}

evs_filter cli_select_filter(const struct cli_select *sel)
{
	evs_filter f = {
		.types = sel->types.items,
		.ntypes = sel->types.n,
		.stream_prefixes = sel->prefixes.items,
		.nprefixes = sel->prefixes.n,
	};

	return f;
}

void cli_select_free(struct cli_select *sel)
{
	cli_strlist_free(&sel->types);
	cli_strlist_free(&sel->prefixes);
}

void cli_select_cleanup(void *state)
{
	cli_select_free(state); /* a struct's first member is at its address */
}
