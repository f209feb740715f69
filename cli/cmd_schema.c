/*
 * cmd_schema.c - "evs schema": the store's schema registry.
 *
 *   evs schema add FILE...        register documents, in the order given
 *   evs schema check FILE...      what add would say; writes nothing. With
 *                                 no store, checks the documents alone
 *                                 (for a pull request's CI)
 *   evs schema list               one JSON line per registered version
 *   evs schema show TYPE [N]      the document of version N (default latest)
 *   evs schema unknown [accept|refuse]
 *                                 the store's setting for types without a
 *                                 schema: print it, or set it
 *
 * A document is a JSON file (see store/evstore.h, "Schemas").
 */
#include <errno.h>
#include <string.h>

#include "cli.h"

/* Read FILE (at most EVS_MAX_SCHEMA_BYTES + 1 bytes). */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *buf;

	if (f == NULL) {
		cli_error("could not open file \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	buf = cli_xmalloc(EVS_MAX_SCHEMA_BYTES + 2);
	*len = fread(buf, 1, EVS_MAX_SCHEMA_BYTES + 1, f);
	if (ferror(f)) {
		cli_error("could not read file \"%s\": %s", path, strerror(errno));
		free(buf);
		buf = NULL;
	}
	if (f != stdin)
		fclose(f);
	if (buf)
		buf[*len] = 0;
	return buf;
}

static int add_or_check(struct cli_ctx *ctx, bool add)
{
	evs_store *store = NULL;
	evs_options opts;
	int status = CLI_EXIT_OK;

	if (!add) {
		/* check works without a store: open it only if it is there */
		evs_options_init(&opts);
		opts.create = 0;
		opts.read_only = 1;
		if (evs_open(ctx->store_path, &opts, &store) != EVS_OK)
			store = NULL;
	} else if ((store = cli_open_store(ctx, CLI_OPEN_WRITE, NULL)) == NULL) {
		return CLI_EXIT_FAIL;
	}
	for (int i = 1; i < ctx->argc; i++) {
		const char *path = ctx->argv[i];
		char err[512];
		size_t len;
		char *text = slurp(path, &len);
		int rc;

		if (text == NULL) {
			status = CLI_EXIT_FAIL;
			break;
		}
		if (store) {
			rc = add ? evs_schema_add(store, text, len)
				 : evs_schema_check(store, text, len);
			if (rc != EVS_OK) {
				cli_error("%s: %s", path, evs_errmsg(store));
				status = CLI_EXIT_FAIL;
			}
		} else {
			evs_schema *sc;
			rc = evs_schema_parse(text, len, &sc, err, sizeof err);
			if (rc != EVS_OK) {
				cli_error("%s: invalid schema document: %s", path, err);
				status = CLI_EXIT_FAIL;
			}
			evs_schema_free(sc);
		}
		if (rc == EVS_OK)
			printf("%s: ok%s\n", path,
			       add     ? ""
			       : store ? ""
				       : " (no store: document only)");
		free(text);
		if (status != CLI_EXIT_OK && add)
			break; /* later versions may depend on this one */
	}
	evs_close(store);
	return cli_finish_output(status);
}

static int list_one(void *ctx, const evs_schema_entry *e)
{
	evs__buf *b = ctx;

	evs__buf_puts(b, "{\"type\":");
	evs__json_str(b, e->type.ptr, e->type.len);
	evs__buf_puts(b, ",\"version\":");
	jb_u64(b, e->version);
	evs__buf_puts(b, ",\"upcast\":");
	evs__buf_puts(b, e->upcast == 2 ? "\"hook\"" : e->upcast == 1 ? "\"steps\"" : "null");
	evs__buf_puts(b, ",\"bytes\":");
	jb_u64(b, e->json_len);
	evs__buf_puts(b, "}\n");
	return 0;
}

static int list(struct cli_ctx *ctx)
{
	evs_store *store = cli_open_store(ctx, CLI_OPEN_READ, NULL);
	evs__buf b;
	int rc;

	if (store == NULL)
		return CLI_EXIT_FAIL;
	b = (evs__buf){0};
	rc = evs_schema_list(store, list_one, &b);
	if (rc != EVS_OK)
		cli_store_error(store, rc, "could not list schemas");
	else
		jb_write(&b, stdout);
	evs__buf_free(&b);
	evs_close(store);
	return cli_finish_output(rc == EVS_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL);
}

static int show(struct cli_ctx *ctx)
{
	uint64_t version = 0;
	evs_store *store;
	char *json;
	size_t len;
	int rc;

	if (ctx->argc < 2 || ctx->argc > 3) {
		cli_error("usage: evs schema show TYPE [VERSION]");
		return CLI_EXIT_USAGE;
	}
	if (ctx->argc == 3 && (cli_parse_u64(ctx->argv[2], &version) != 0 || version == 0 ||
			       version > EVS_MAX_SCHEMA_VERSION))
		return cli_bad_value("VERSION", ctx->argv[2], "a version from 1");
	if ((store = cli_open_store(ctx, CLI_OPEN_READ, NULL)) == NULL)
		return CLI_EXIT_FAIL;
	rc = evs_schema_get(store, ctx->argv[1], (uint32_t)version, &json, &len);
	if (rc != EVS_OK) {
		cli_store_error(store, rc, "could not show schema");
		evs_close(store);
		return CLI_EXIT_FAIL;
	}
	/* pretty-print the stored canonical text */
	char err[256];
	json_object *o = cli_json_parse(json, len, err, sizeof err);
	if (o) {
		printf("%s\n", json_object_to_json_string_ext(
				       o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						  JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		printf("%s\n", json);
	}
	evs_schema_text_free(json);
	evs_close(store);
	return cli_finish_output(CLI_EXIT_OK);
}

static int unknown(struct cli_ctx *ctx)
{
	evs_store *store;
	int rc, policy;

	if (ctx->argc > 2) {
		cli_error("usage: evs schema unknown [accept|refuse]");
		return CLI_EXIT_USAGE;
	}
	if (ctx->argc == 2) {
		if (strcmp(ctx->argv[1], "accept") == 0)
			policy = EVS_UNKNOWN_ACCEPT;
		else if (strcmp(ctx->argv[1], "refuse") == 0)
			policy = EVS_UNKNOWN_REFUSE;
		else
			return cli_bad_value("unknown", ctx->argv[1], "accept or refuse");
		if ((store = cli_open_store(ctx, CLI_OPEN_WRITE, NULL)) == NULL)
			return CLI_EXIT_FAIL;
		rc = evs_schema_set_unknown(store, policy);
	} else {
		if ((store = cli_open_store(ctx, CLI_OPEN_READ, NULL)) == NULL)
			return CLI_EXIT_FAIL;
		rc = evs_schema_get_unknown(store, &policy);
	}
	if (rc != EVS_OK) {
		cli_store_error(store, rc, "could not %s the setting for unknown types",
				ctx->argc == 2 ? "change" : "read");
		evs_close(store);
		return CLI_EXIT_FAIL;
	}
	printf("{\"unknown_types\":\"%s\"}\n", policy == EVS_UNKNOWN_REFUSE ? "refuse" : "accept");
	evs_close(store);
	return cli_finish_output(CLI_EXIT_OK);
}

static int run(struct cli_ctx *ctx, void *state)
{
	const char *sub = ctx->argv[0];

	(void)state;
	if (strcmp(sub, "add") == 0 || strcmp(sub, "check") == 0) {
		if (ctx->argc < 2) {
			cli_error("usage: evs schema %s FILE...", sub);
			return CLI_EXIT_USAGE;
		}
		return add_or_check(ctx, sub[0] == 'a');
	}
	if (strcmp(sub, "list") == 0 && ctx->argc == 1)
		return list(ctx);
	if (strcmp(sub, "show") == 0)
		return show(ctx);
	if (strcmp(sub, "unknown") == 0)
		return unknown(ctx);
	cli_error("unknown schema command \"%s\"", sub);
	cli_hint("see \"evs schema --help\"");
	return CLI_EXIT_USAGE;
}

const struct cli_command cli_cmd_schema = {
	.name = "schema",
	.synopsis = "add|check FILE... | list | show TYPE [VERSION] | unknown [accept|refuse]",
	.summary = "manage the store's event schemas",
	.description =
		"add FILE...      register schema documents (JSON), in the order given\n"
		"check FILE...    say what add would, writing nothing; without a store,\n"
		"                 check the documents alone\n"
		"list             one JSON line per registered type version\n"
		"show TYPE [N]    print version N (default: the latest) of TYPE's schema\n"
		"unknown [accept|refuse]\n"
		"                 print or set whether types without a schema are accepted\n\n"
		"A document: {\"type\": T, \"version\": N, \"schema\": {JSON Schema subset},\n"
		"\"upcast\": [steps from N-1] or \"hook\"}. Version N+1 is refused unless it is\n"
		"a compatible change of N or has an upcaster.",
	.min_args = 1,
	.max_args = 64,
	.run = run,
};
