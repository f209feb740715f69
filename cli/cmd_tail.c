/*
 * cmd_tail.c - "evs tail": follow the commit stream.
 *
 * Prints each event as it commits (JSON Lines, flushed per line). The
 * subscription is woken by commits from any process; SIGINT and SIGTERM
 * only set a flag, which the loop checks every POLL_MS between waits, and
 * then the tool closes the subscription and the store and exits 0.
 */
#include <signal.h>
#include <string.h>

#include "cli.h"

#define POLL_MS 200

enum { OPT_FROM, OPT_TYPE, OPT_PREFIX, OPT_COUNT };

static const struct cli_option options[] = {
	[OPT_FROM] = {"from", "N",
		      "start at position N, inclusive (default: only events committed from now)"},
	[OPT_TYPE] = {"type", "TYPE", "only events of this type (repeatable)"},
	[OPT_PREFIX] = {"prefix", "PREFIX", "only streams starting with PREFIX (repeatable)"},
	[OPT_COUNT] = {"count", "N", "exit after printing N events"},
	{NULL, NULL, NULL}};

struct tail_state {
	bool has_from;
	uint64_t from, count;
	struct cli_strlist types, prefixes;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int on_option(struct cli_ctx *ctx, void *state, int index, const char *value)
{
	struct tail_state *st = state;

	(void)ctx;
	switch (index) {
	case OPT_FROM:
		st->has_from = true;
		if (cli_parse_u64(value, &st->from) != 0)
			return cli_bad_value("from", value, "expected a non-negative integer");
		return CLI_EXIT_OK;
	case OPT_TYPE: cli_strlist_add(&st->types, value); return CLI_EXIT_OK;
	case OPT_PREFIX: cli_strlist_add(&st->prefixes, value); return CLI_EXIT_OK;
	case OPT_COUNT:
		if (cli_parse_u64(value, &st->count) != 0 || st->count == 0)
			return cli_bad_value("count", value, "expected a positive integer");
		return CLI_EXIT_OK;
	}
	return CLI_EXIT_USAGE;
}

static void cleanup(void *state)
{
	struct tail_state *st = state;

	cli_strlist_free(&st->types);
	cli_strlist_free(&st->prefixes);
}

static int follow(evs_store *store, evs_sub *sub, uint64_t count)
{
	evs__buf buf;
	uint64_t printed = 0;
	int status = CLI_EXIT_OK;

	jb_init(&buf);
	while (!stop_requested && (count == 0 || printed < count)) {
		evs_event ev;
		int rc = evs_sub_next(sub, &ev, POLL_MS);

		if (rc == EVS_TIMEOUT)
			continue;
		if (rc != EVS_OK) {
			cli_store_error(store, rc, "could not follow the store");
			status = CLI_EXIT_FAIL;
			break;
		}
		buf.len = 0;
		if (cli_event_to_json(&buf, &ev) != 0) {
			status = CLI_EXIT_FAIL;
			break;
		}
		if (jb_write(&buf, stdout) != 0 || fflush(stdout) != 0)
			break; /* reported by cli_finish_output */
		printed++;
	}
	jb_free(&buf);
	return status;
}

static int run(struct cli_ctx *ctx, void *state)
{
	struct tail_state *st = state;
	evs_filter filter = {
		.types = st->types.items,
		.ntypes = st->types.n,
		.stream_prefixes = st->prefixes.items,
		.nprefixes = st->prefixes.n,
	};
	struct sigaction sa;
	evs_store *store;
	evs_sub *sub = NULL;
	uint64_t after;
	int rc, status = CLI_EXIT_FAIL;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	store = cli_open_store(ctx, CLI_OPEN_READ, NULL);
	if (!store)
		return CLI_EXIT_FAIL;
	if (st->has_from) {
		after = st->from > 0 ? st->from - 1 : 0;
	} else {
		evs_store_info head;

		rc = evs_head(store, &head);
		if (rc != EVS_OK) {
			cli_store_error(store, rc, "could not read the store head");
			goto out;
		}
		after = head.last_position;
	}
	rc = evs_subscribe(store, after, &filter, &sub);
	if (rc != EVS_OK) {
		cli_store_error(store, rc, "could not subscribe to the store");
		goto out;
	}
	status = follow(store, sub, st->count);
out:
	evs_sub_close(sub);
	evs_close(store);
	return cli_finish_output(status);
}

const struct cli_command cli_cmd_tail = {
	.name = "tail",
	.synopsis = "",
	.summary = "follow events as they commit",
	.description = "Print events as JSON Lines (as \"evs read\" does) as they are "
		       "committed, by any\nprocess, until interrupted (SIGINT or "
		       "SIGTERM exit with status 0) or --count\nevents were printed.",
	.options = options,
	.min_args = 0,
	.max_args = 0,
	.state_size = sizeof(struct tail_state),
	.on_option = on_option,
	.run = run,
	.cleanup = cleanup,
};
