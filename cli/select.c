/*
 * select.c - option values shared by commands: integer options and the
 * event selection of read and tail (--from, --type, --prefix), parsed and
 * refused with the same words everywhere.
 */
#include <stdio.h>
#include <string.h>

#include <uuid/uuid.h>

#include "cli.h"

int cli_tag_option(struct cli_strlist *l, const char *option, const char *tag)
{
	const char *why = cli_name_problem(tag, strlen(tag), EVS_MAX_TAG);
	char msg[64];

	if (why) {
		snprintf(msg, sizeof msg, "a tag is 1 to %d bytes of UTF-8: %s", EVS_MAX_TAG, why);
		return cli_bad_value(option, tag, msg);
	}
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i], tag) == 0)
			return cli_bad_value(option, tag, "tag given twice");
	if (l->n == EVS_MAX_TAGS) {
		snprintf(msg, sizeof msg, "more than %d tags", EVS_MAX_TAGS);
		return cli_bad_value(option, tag, msg);
	}
	cli_strlist_add(l, tag);
	return CLI_EXIT_OK;
}

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
	case CLI_SELECT_CATEGORY: {
		const char *why = cli_name_problem(value, strlen(value), EVS_MAX_NAME);

		if (why)
			return cli_bad_value("category", value, why);
		cli_strlist_add(&sel->categories, value);
		return CLI_EXIT_OK;
	}
	case CLI_SELECT_TAG: return cli_tag_option(&sel->tags, "tag", value);
	case CLI_SELECT_CORRELATION:
		if (sel->has_correlation)
			return cli_bad_value("correlation", value, "given twice");
		if (strlen(value) != 36 || uuid_parse(value, sel->correlation_id) != 0 ||
		    uuid_is_null(sel->correlation_id))
			return cli_bad_value(
				"correlation", value,
				"expected a UUID like 0190c7e2-5b1a-7cc3-9f5e-3c1d2b4a6e7f (not nil)");
		sel->has_correlation = true;
		return CLI_EXIT_OK;
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
		.categories = sel->categories.items,
		.ncategories = sel->categories.n,
		.tags = sel->tags.items,
		.ntags = sel->tags.n,
		.correlation_id = sel->has_correlation ? sel->correlation_id : NULL,
	};

	return f;
}

void cli_select_free(struct cli_select *sel)
{
	cli_strlist_free(&sel->types);
	cli_strlist_free(&sel->prefixes);
	cli_strlist_free(&sel->categories);
	cli_strlist_free(&sel->tags);
}

void cli_select_cleanup(void *state)
{
	cli_select_free(state); /* a struct's first member is at its address */
}
