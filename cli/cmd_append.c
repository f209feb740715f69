/*
 * cmd_append.c - "evs append": append one event, or a batch from stdin.
 *
 *   evs append STREAM TYPE JSON-DATA [OPTION]...   one event
 *   evs append STREAM [TYPE] [OPTION]... < lines   JSON Lines, one batch
 *
 * Standard input is read and checked completely before anything is
 * written: a bad line 5000 leaves the store untouched. Without
 * --batch-size all events go in ONE atomic evs_append; with it, chunk k+1
 * expects exactly the version chunk k produced, so nobody can interleave
 * undetected, but chunks commit one by one. One result line is printed
 * per committed batch.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uuid/uuid.h>

#include "cli.h"

enum {
	OPT_EXPECTED,
	OPT_ID,
	OPT_METADATA,
	OPT_CORRELATION,
	OPT_CAUSATION,
	OPT_OCCURRED,
	OPT_TYPE_VERSION,
	OPT_SYNC,
	OPT_BATCH_SIZE,
	OPT_TAG,
	OPT_PRODUCER
};

static const struct cli_option options[] = {
	[OPT_EXPECTED] = {"expected", "any|no-stream|exists|N",
			  "expected stream version (default any); a mismatch exits with status 3"},
	[OPT_ID] = {"id", "UUID",
		    "event id (default: a new UUIDv7); appending the same id again is a no-op"},
	[OPT_METADATA] = {"metadata", "JSON", "metadata object (stdin: for lines without one)"},
	[OPT_CORRELATION] = {"correlation-id", "UUID", "correlation id"},
	[OPT_CAUSATION] = {"causation-id", "UUID", "causation id"},
	[OPT_OCCURRED] = {"occurred-at", "TIME", "producer time, RFC 3339 or integer nanoseconds"},
	[OPT_TYPE_VERSION] = {"type-version", "N", "schema version of the type (default 1)"},
	[OPT_SYNC] = {"sync", "full|meta|none", "durability of the commit (default full)"},
	[OPT_BATCH_SIZE] = {"batch-size", "N",
			    "stdin: append in batches of N events instead of one"},
	[OPT_TAG] = {"tag", "TAG",
		     "tag the event (repeatable, at most 16; stdin: for lines without \"tags\")"},
	[OPT_PRODUCER] = {"producer", "NAME",
			  "the service that produced the event (stdin: for lines without one)"},
	{NULL, NULL, NULL}};

struct append_state {
	struct cli_strlist tags; /* first: cleanup frees it through the state */
	const char *producer;
	uint64_t expected;
	const char *expected_text;
	bool has_id;
	uint8_t id[16];
	const char *metadata;
	uint8_t correlation_id[16], causation_id[16];
	int64_t occurred_at;
	uint32_t type_version;
	int sync;
	uint64_t batch_size;
};

static int parse_uuid_opt(const char *name, const char *value, uint8_t out[16])
{
	if (strlen(value) != 36 || uuid_parse(value, out) != 0)
		return cli_bad_value(name, value,
				     "expected a UUID like 0190c7e2-5b1a-7cc3-9f5e-3c1d2b4a6e7f");
	return CLI_EXIT_OK;
}

static int on_option(struct cli_ctx *ctx, void *state, int index, const char *value)
{
	struct append_state *st = state;
	const char *name = options[index].name;
	const char *why;
	uint64_t u;

	(void)ctx;
	switch (index) {
	case OPT_EXPECTED:
		st->expected_text = value;
		if (strcmp(value, "any") == 0)
			st->expected = EVS_ANY;
		else if (strcmp(value, "no-stream") == 0)
			st->expected = EVS_NO_STREAM;
		else if (strcmp(value, "exists") == 0)
			st->expected = EVS_STREAM_EXISTS;
		else if (cli_parse_u64(value, &u) == 0 && u < EVS_STREAM_EXISTS)
			st->expected = u;
		else
			return cli_bad_value(name, value,
					     "expected any, no-stream, exists or a version number");
		return CLI_EXIT_OK;
	case OPT_ID:
		st->has_id = true;
		if (parse_uuid_opt(name, value, st->id) != CLI_EXIT_OK)
			return CLI_EXIT_USAGE;
		if (uuid_is_null(st->id))
			return cli_bad_value(name, value, "the nil UUID is not an event id");
		return CLI_EXIT_OK;
	case OPT_METADATA: st->metadata = value; return CLI_EXIT_OK;
	case OPT_CORRELATION: return parse_uuid_opt(name, value, st->correlation_id);
	case OPT_CAUSATION: return parse_uuid_opt(name, value, st->causation_id);
	case OPT_OCCURRED:
		if (cli_time_parse_arg(value, &st->occurred_at, &why) != 0)
			return cli_bad_value(name, value, why);
		if (st->occurred_at == 0)
			return cli_bad_value(name, value, "the epoch itself means none");
		return CLI_EXIT_OK;
	case OPT_TYPE_VERSION:
		if (cli_parse_u64(value, &u) != 0 || u == 0 || u > UINT32_MAX)
			return cli_bad_value(name, value,
					     "expected an integer from 1 to 4294967295");
		st->type_version = (uint32_t)u;
		return CLI_EXIT_OK;
	case OPT_SYNC: return cli_option_sync(name, value, &st->sync);
	case OPT_BATCH_SIZE: return cli_option_u64(name, value, 1, &st->batch_size);
	case OPT_TAG: return cli_tag_option(&st->tags, name, value);
	case OPT_PRODUCER:
		if (st->producer)
			return cli_bad_value(name, value, "given twice");
		if ((why = cli_name_problem(value, strlen(value), EVS_MAX_NAME)))
			return cli_bad_value(name, value, why);
		st->producer = value;
		return CLI_EXIT_OK;
	}
	return CLI_EXIT_USAGE;
}

/* A vector of parsed events. */
struct events {
	struct cli_event *v;
	unsigned long *lineno; /* input line of each event (0: argument) */
	size_t n, cap;
};

static struct cli_event *events_add(struct events *ev, unsigned long lineno)
{
	if (ev->n == ev->cap) {
		ev->cap = ev->cap ? ev->cap * 2 : 16;
		ev->v = cli_xrealloc(ev->v, ev->cap * sizeof *ev->v);
		ev->lineno = cli_xrealloc(ev->lineno, ev->cap * sizeof *ev->lineno);
	}
	ev->lineno[ev->n] = lineno;
	cli_event_init(&ev->v[ev->n]);
	return &ev->v[ev->n++];
}

static void events_free(struct events *ev)
{
	for (size_t i = 0; i < ev->n; i++)
		cli_event_free(&ev->v[i]);
	free(ev->v);
	free(ev->lineno);
}

/* Fill what the event did not set itself from the command line. */
static int apply_defaults(struct cli_event *e, const struct append_state *st, const char *type,
			  const msgpack_sbuffer *metadata)
{
	if (!(e->seen & CLI_F_TYPE) && type)
		e->type = cli_xstrndup(type, strlen(type));
	if (!e->type)
		return -1;
	if (!(e->seen & CLI_F_TYPE_VERSION))
		e->type_version = st->type_version;
	if (!(e->seen & CLI_F_OCCURRED_AT))
		e->occurred_at = st->occurred_at;
	if (!(e->seen & CLI_F_CORRELATION_ID))
		memcpy(e->correlation_id, st->correlation_id, 16);
	if (!(e->seen & CLI_F_CAUSATION_ID))
		memcpy(e->causation_id, st->causation_id, 16);
	if (!(e->seen & CLI_F_METADATA) && metadata->size) {
		e->metadata.size = 0;
		if (msgpack_sbuffer_write(&e->metadata, metadata->data, metadata->size) != 0) {
			cli_error("out of memory");
			exit(CLI_EXIT_FAIL);
		}
	}
	if (!(e->seen & CLI_F_TAGS) && st->tags.n)
		cli_event_set_tags(e, st->tags.items, st->tags.n);
	if (!(e->seen & CLI_F_PRODUCER) && st->producer)
		e->producer = cli_xstrndup(st->producer, strlen(st->producer));
	if (st->has_id)
		memcpy(e->id, st->id, 16);
	return 0;
}

static int read_stdin_events(struct events *evs, const struct append_state *st, const char *type,
			     const msgpack_sbuffer *metadata)
{
	struct cli_lines lines;
	struct cli_progress *progress = NULL;
	char *line, err[512];
	size_t len;
	int rc, status = CLI_EXIT_FAIL;

	cli_lines_init(&lines, stdin);
	if (isatty(STDIN_FILENO))
		fprintf(stderr, "evs: reading events from standard input as JSON "
				"Lines; end with Ctrl-D\n");
	else /* not while someone types the lines */
		progress = cli_progress_start("append: read", 0);
	while ((rc = cli_lines_next(&lines, &line, &len)) == 1) {
		json_object *obj = cli_json_parse(line, len, err, sizeof err);
		struct cli_event *e;

		cli_progress_add(progress, 1);
		if (!obj) {
			cli_error("line %lu: %s", lines.lineno, err);
			goto out;
		}
		e = events_add(evs, lines.lineno);
		rc = cli_event_from_json(e, obj, CLI_F_APPEND, err, sizeof err);
		json_object_put(obj);
		if (rc != 0) {
			cli_error("line %lu: %s", lines.lineno, err);
			goto out;
		}
		if (apply_defaults(e, st, type, metadata) != 0) {
			cli_error("line %lu: field \"type\" is missing", lines.lineno);
			cli_hint("give each line a \"type\", or the TYPE argument");
			goto out;
		}
	}
	if (rc < 0)
		goto out;
	if (evs->n == 0) {
		cli_error("no events on standard input");
		goto out;
	}
	status = CLI_EXIT_OK;
out:
	cli_progress_done(progress);
	cli_lines_free(&lines);
	return status;
}

static void print_result(const evs_append_result *r)
{
	printf("{\"first_position\":%llu,\"last_position\":%llu,"
	       "\"version\":%llu,\"idempotent\":%s}\n",
	       (unsigned long long)r->first_position, (unsigned long long)r->last_position,
	       (unsigned long long)r->version, r->idempotent ? "true" : "false");
}

static void describe_expected(uint64_t expected, char *buf, size_t len)
{
	if (expected == EVS_ANY)
		snprintf(buf, len, "any");
	else if (expected == EVS_STREAM_EXISTS)
		snprintf(buf, len, "exists");
	else if (expected == EVS_NO_STREAM)
		snprintf(buf, len, "no-stream");
	else
		snprintf(buf, len, "%llu", (unsigned long long)expected);
}

static int append_all(evs_store *store, const char *stream, const struct append_state *st,
		      struct events *evs)
{
	size_t chunk = st->batch_size && st->batch_size < evs->n ? (size_t)st->batch_size : evs->n;
	evs_event_in *in = cli_xcalloc(chunk, sizeof *in);
	const char **tags = cli_xcalloc(chunk * EVS_MAX_TAGS, sizeof *tags);
	uint64_t expected = st->expected;
	struct cli_progress *progress = cli_progress_start("append", evs->n);
	size_t done = 0;
	int status = CLI_EXIT_OK;

	while (done < evs->n) {
		size_t n = evs->n - done < chunk ? evs->n - done : chunk;
		evs_append_result res = {0};
		char want[32];
		int rc;

		for (size_t i = 0; i < n; i++) {
			const struct cli_event *e = &evs->v[done + i];

			memset(&in[i], 0, sizeof in[i]);
			in[i].type = e->type;
			in[i].type_version = e->type_version;
			memcpy(in[i].id, e->id, 16);
			in[i].data = e->data.data;
			in[i].data_len = e->data.size;
			in[i].metadata = e->metadata.data;
			in[i].metadata_len = e->metadata.size;
			in[i].occurred_at = e->occurred_at;
			memcpy(in[i].correlation_id, e->correlation_id, 16);
			memcpy(in[i].causation_id, e->causation_id, 16);
			cli_event_tags_in(e, &tags[i * EVS_MAX_TAGS]);
			in[i].tags = &tags[i * EVS_MAX_TAGS];
			in[i].ntags = e->ntags;
			in[i].producer = e->producer;
		}
		rc = evs_append(store, stream, expected, in, n, &res);
		if (rc == EVS_WRONG_VERSION) {
			if (done == 0 && st->expected_text)
				snprintf(want, sizeof want, "%s", st->expected_text);
			else
				describe_expected(expected, want, sizeof want);
			cli_error("could not append to stream \"%s\": expected "
				  "version %s, actual version %llu",
				  stream, want, (unsigned long long)res.version);
			status = CLI_EXIT_CONFLICT;
		} else if (rc != EVS_OK) {
			cli_store_error(store, rc, "could not append to stream \"%s\"", stream);
			if (rc == EVS_BATCH_TOO_LARGE && !st->batch_size)
				cli_hint("use --batch-size to append in smaller batches");
			status = CLI_EXIT_FAIL;
		}
		if (status != CLI_EXIT_OK) {
			if (evs->lineno[done] && evs->n > n)
				cli_hint("the failed batch holds input lines %lu to "
					 "%lu; %zu of %zu events were appended",
					 evs->lineno[done], evs->lineno[done + n - 1], done,
					 evs->n);
			break;
		}
		print_result(&res);
		expected = res.version;
		done += n;
		cli_progress_add(progress, n);
	}
	cli_progress_done(progress);
	free(tags);
	free(in);
	return status;
}

static int run(struct cli_ctx *ctx, void *state)
{
	struct append_state *st = state;
	const char *stream = ctx->argv[0];
	const char *type = ctx->argc > 1 ? ctx->argv[1] : NULL;
	struct events evs = {0};
	msgpack_sbuffer metadata;
	evs_options opts;
	evs_store *store = NULL;
	char err[512];
	int status = CLI_EXIT_FAIL;

	msgpack_sbuffer_init(&metadata);
	if (!st->expected_text)
		st->expected = EVS_ANY;

	if (st->metadata) {
		json_object *v =
			cli_json_parse(st->metadata, strlen(st->metadata), err, sizeof err);

		if (!v) {
			cli_error("option --metadata: %s", err);
			status = CLI_EXIT_USAGE;
			goto out;
		}
		if (cli_payload_from_json(&metadata, v, "--metadata", err, sizeof err) != 0) {
			cli_error("%s", err);
			json_object_put(v);
			status = CLI_EXIT_USAGE;
			goto out;
		}
		json_object_put(v);
	}

	if (ctx->argc == 3) {
		struct cli_event *e = events_add(&evs, 0);
		json_object *v =
			cli_json_parse(ctx->argv[2], strlen(ctx->argv[2]), err, sizeof err);

		if (!v) {
			cli_error("JSON-DATA: %s", err);
			status = CLI_EXIT_USAGE;
			goto out;
		}
		if (cli_payload_from_json(&e->data, v, "JSON-DATA", err, sizeof err) != 0) {
			cli_error("%s", err);
			json_object_put(v);
			status = CLI_EXIT_USAGE;
			goto out;
		}
		json_object_put(v);
		/* no metadata: NULL, which evs_append takes as the empty map */
		e->seen = CLI_F_DATA;
		apply_defaults(e, st, type, &metadata);
	} else {
		if (st->has_id) {
			cli_error("option --id needs a single event, not events "
				  "from standard input");
			cli_hint("put an \"id\" field in each line instead");
			status = CLI_EXIT_USAGE;
			goto out;
		}
		status = read_stdin_events(&evs, st, type, &metadata);
		if (status != CLI_EXIT_OK)
			goto out;
		status = CLI_EXIT_FAIL;
	}

	evs_options_init(&opts);
	opts.sync = st->sync;
	store = cli_open_store(ctx, CLI_OPEN_WRITE, &opts);
	if (!store)
		goto out;
	status = append_all(store, stream, st, &evs);

out:
	evs_close(store);
	events_free(&evs);
	msgpack_sbuffer_destroy(&metadata);
	return cli_finish_output(status);
}

static void append_cleanup(void *state)
{
	cli_strlist_free(state); /* the tags, first in the state */
}

const struct cli_command cli_cmd_append = {
	.name = "append",
	.synopsis = "STREAM [TYPE [JSON-DATA]]",
	.summary = "append events to a stream",
	.description = "Append one event of type TYPE with data JSON-DATA (a JSON "
		       "object) to STREAM.\n"
		       "Without JSON-DATA, read events from standard input as JSON "
		       "Lines, one object per\nline with the fields \"type\", "
		       "\"type_version\", \"id\", \"data\", \"metadata\",\n"
		       "\"occurred_at\", \"correlation_id\", \"causation_id\", "
		       "\"producer\", \"tags\"\n(an array of strings), or "
		       "\"data_msgpack\" and \"metadata_msgpack\" in base64, and\n"
		       "append them all as ONE atomic batch; TYPE and the options give "
		       "the values of\nfields a line leaves out.\n\n"
		       "Prints {\"first_position\":..,\"last_position\":..,"
		       "\"version\":..,\"idempotent\":..}\nper batch. JSON integers "
		       "are stored as msgpack integers, other numbers as\nfloat64. "
		       "Exit status 3 when the expected version does not match.",
	.options = options,
	.min_args = 1,
	.max_args = 3,
	.state_size = sizeof(struct append_state),
	.on_option = on_option,
	.run = run,
	.cleanup = append_cleanup,
};
