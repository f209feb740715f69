/*
 * cmd_import.c - "evs import": restore an export into a store.
 *
 * Reads the export format from stdin and writes it with evs_restore in
 * batches (each atomic; at most --batch-size events or BATCH_BYTES of
 * payload), keeping positions, versions, ids and recorded times. The
 * store must be empty or end just before the first imported position.
 * Creates the store if it does not exist.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define DEFAULT_BATCH 1000
#define BATCH_BYTES   ((size_t)64 << 20)

enum { OPT_BATCH_SIZE, OPT_SYNC };

static const struct cli_option options[] = {[OPT_BATCH_SIZE] = {"batch-size", "N",
								"events per restore call "
								"(default 1000)"},
					    [OPT_SYNC] = {"sync", "full|meta|none",
							  "durability of each batch "
							  "(default full)"},
					    {NULL, NULL, NULL}};

struct import_state {
	uint64_t batch_size;
	int sync;
};

static int on_option(struct cli_ctx *ctx, void *state, int index, const char *value)
{
	struct import_state *st = state;

	(void)ctx;
	if (index == OPT_BATCH_SIZE) {
		if (cli_parse_u64(value, &st->batch_size) != 0 || st->batch_size == 0 ||
		    st->batch_size > 1000000)
			return cli_bad_value("batch-size", value,
					     "expected an integer from 1 to 1000000");
		return CLI_EXIT_OK;
	}
	return cli_option_sync("sync", value, &st->sync);
}

struct batch {
	struct cli_event *ev;
	evs_event *out;
	evs_str *tags; /* EVS_MAX_TAGS per event */
	unsigned long first_line, last_line;
	size_t n, cap, bytes;
};

static const char *missing_field(unsigned seen)
{
	static const struct {
		unsigned bit;
		const char *name;
	} req[] = {
		{CLI_F_POSITION, "position"}, {CLI_F_STREAM, "stream"},
		{CLI_F_VERSION, "version"},   {CLI_F_ID, "id"},
		{CLI_F_TYPE, "type"},         {CLI_F_RECORDED_AT, "recorded_at"},
	};

	for (size_t i = 0; i < sizeof req / sizeof req[0]; i++)
		if (!(seen & req[i].bit))
			return req[i].name;
	return NULL;
}

/* Restore the batch; 0, or -1 after printing why. */
static int flush(evs_store *store, struct batch *b, uint64_t *imported, uint64_t *last_position)
{
	int rc;

	if (b->n == 0)
		return 0;
	for (size_t i = 0; i < b->n; i++) {
		const struct cli_event *e = &b->ev[i];
		evs_event *o = &b->out[i];

		memset(o, 0, sizeof *o);
		o->position = e->position;
		o->version = e->version;
		o->stream.ptr = e->stream;
		o->stream.len = strlen(e->stream);
		o->type.ptr = e->type;
		o->type.len = strlen(e->type);
		o->type_version = e->type_version;
		memcpy(o->id, e->id, 16);
		o->recorded_at = e->recorded_at;
		o->occurred_at = e->occurred_at;
		memcpy(o->correlation_id, e->correlation_id, 16);
		memcpy(o->causation_id, e->causation_id, 16);
		o->data = e->data.data;
		o->data_len = e->data.size;
		o->metadata = e->metadata.data;
		o->metadata_len = e->metadata.size;
		o->tags = &b->tags[i * EVS_MAX_TAGS];
		o->ntags = e->ntags;
		for (size_t t = 0; t < e->ntags; t++)
			b->tags[i * EVS_MAX_TAGS + t] = (evs_str){e->tags[t], strlen(e->tags[t])};
		if (e->producer)
			o->producer = (evs_str){e->producer, strlen(e->producer)};
	}
	rc = evs_restore(store, b->out, b->n);
	if (rc != EVS_OK) {
		cli_store_error(store, rc, "could not import lines %lu to %lu", b->first_line,
				b->last_line);
		if (*imported)
			cli_hint("%llu events before line %lu (up to position %llu) were imported",
				 (unsigned long long)*imported, b->first_line,
				 (unsigned long long)*last_position);
		return -1;
	}
	*imported += b->n;
	*last_position = b->ev[b->n - 1].position;
	for (size_t i = 0; i < b->n; i++)
		cli_event_free(&b->ev[i]);
	b->n = 0;
	b->bytes = 0;
	return 0;
}

static int run(struct cli_ctx *ctx, void *state)
{
	struct import_state *st = state;
	size_t max = st->batch_size ? (size_t)st->batch_size : DEFAULT_BATCH;
	struct batch b = {0};
	struct cli_lines lines;
	uint64_t imported = 0, last_position = 0, counted = 0;
	struct cli_progress *progress = NULL;
	evs_options opts;
	evs_store *store;
	char *line, err[512];
	size_t len;
	int rc, status = CLI_EXIT_FAIL;

	evs_options_init(&opts);
	opts.sync = st->sync;
	store = cli_open_store(ctx, CLI_OPEN_CREATE, &opts);
	if (!store)
		return CLI_EXIT_FAIL;

	b.ev = cli_xcalloc(max, sizeof *b.ev);
	b.out = cli_xcalloc(max, sizeof *b.out);
	b.tags = cli_xcalloc(max * EVS_MAX_TAGS, sizeof *b.tags);
	cli_lines_init(&lines, stdin);
	progress = cli_progress_start("import", 0);
	while ((rc = cli_lines_next(&lines, &line, &len)) == 1) {
		json_object *obj = cli_json_parse(line, len, err, sizeof err);
		struct cli_event *e;
		const char *missing;

		if (!obj) {
			cli_error("line %lu: %s", lines.lineno, err);
			goto out;
		}
		e = &b.ev[b.n];
		cli_event_init(e);
		rc = cli_event_from_json(e, obj, CLI_F_ALL, err, sizeof err);
		json_object_put(obj);
		if (rc != 0) {
			cli_event_free(e);
			cli_error("line %lu: %s", lines.lineno, err);
			goto out;
		}
		missing = missing_field(e->seen);
		if (missing) {
			cli_event_free(e);
			cli_error("line %lu: field \"%s\" is missing", lines.lineno, missing);
			goto out;
		}
		if (b.n == 0)
			b.first_line = lines.lineno;
		b.last_line = lines.lineno;
		b.n++;
		b.bytes += e->data.size + e->metadata.size;
		if (b.n == max || b.bytes >= BATCH_BYTES) {
			if (flush(store, &b, &imported, &last_position) != 0)
				goto out;
			cli_progress_add(progress, imported - counted);
			counted = imported;
		}
	}
	if (rc < 0 || flush(store, &b, &imported, &last_position) != 0)
		goto out;
	cli_progress_add(progress, imported - counted);
	printf("{\"imported\":%llu,\"last_position\":%llu}\n", (unsigned long long)imported,
	       (unsigned long long)last_position);
	status = CLI_EXIT_OK;
out:
	cli_progress_done(progress);
	for (size_t i = 0; i < b.n; i++)
		cli_event_free(&b.ev[i]);
	free(b.ev);
	free(b.out);
	free(b.tags);
	cli_lines_free(&lines);
	evs_close(store);
	return cli_finish_output(status);
}

const struct cli_command cli_cmd_import = {
	.name = "import",
	.synopsis = "",
	.summary = "restore events written by \"evs export\"",
	.description = "Read the JSON Lines of \"evs export\" from standard input and "
		       "restore them with\ntheir positions, versions, ids and times. "
		       "The store (created if missing) must\nbe empty or end right "
		       "before the first position read. Prints\n"
		       "{\"imported\":..,\"last_position\":..}.",
	.options = options,
	.min_args = 0,
	.max_args = 0,
	.state_size = sizeof(struct import_state),
	.on_option = on_option,
	.run = run,
};
