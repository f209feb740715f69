/*
 * cmd_tail.c - "evs tail": follow the commit stream.
 *
 * Prints each event as it commits (JSON Lines, flushed per line). The
 * subscription is woken by commits from any process; SIGINT and SIGTERM
 * only set a flag, which the loop checks every POLL_MS between waits, and
 * then the tool closes the subscription and the store and exits 0.
 */
#include <signal.h>

#include "cli.h"
#include "signals.h"

#define POLL_MS 200

enum { OPT_FROM, OPT_TYPE, OPT_PREFIX, OPT_COUNT, OPT_CATEGORY, OPT_TAG, OPT_CORRELATION };

static const struct cli_option options[] = {
	[OPT_FROM] = {"from", "N",
		      "start at position N, inclusive (default: only events committed from now)"},
	[OPT_TYPE] = {"type", "TYPE", "only events of this type (repeatable)"},
	[OPT_PREFIX] = {"prefix", "PREFIX", "only streams starting with PREFIX (repeatable)"},
	[OPT_COUNT] = {"count", "N", "exit after printing N events"},
	[OPT_CATEGORY] = {"category", "NAME", "only streams of this category (repeatable)"},
	[OPT_TAG] = {"tag", "TAG", "only events carrying this tag (repeatable: all of them)"},
	[OPT_CORRELATION] = {"correlation", "UUID", "only events with this correlation id"},
	{NULL, NULL, NULL}};

struct tail_state {
	struct cli_select sel; /* first: cleanup frees it through the state */
	uint64_t count;
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
	case OPT_FROM: return cli_select_option(&st->sel, CLI_SELECT_FROM, value);
	case OPT_TYPE: return cli_select_option(&st->sel, CLI_SELECT_TYPE, value);
	case OPT_PREFIX: return cli_select_option(&st->sel, CLI_SELECT_PREFIX, value);
	case OPT_COUNT: return cli_option_u64("count", value, 1, &st->count);
	case OPT_CATEGORY: return cli_select_option(&st->sel, CLI_SELECT_CATEGORY, value);
	case OPT_TAG: return cli_select_option(&st->sel, CLI_SELECT_TAG, value);
	case OPT_CORRELATION: return cli_select_option(&st->sel, CLI_SELECT_CORRELATION, value);
	}
	return CLI_EXIT_USAGE;
}

static int follow(evs_store *store, evs_sub *sub, uint64_t count)
{
	evs__buf buf;
	uint64_t printed = 0;
	int status = CLI_EXIT_OK;

	buf = (evs__buf){0};
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
	evs__buf_free(&buf);
	return status;
}

static int subscribe_and_follow(evs_store *store, struct cli_ctx *ctx, void *arg)
{
	struct tail_state *st = arg;
	evs_filter filter = cli_select_filter(&st->sel);
	evs_sub *sub = NULL;
	evs_store_info head;
	uint64_t after;
	int rc, status;

	(void)ctx;
	if (st->sel.has_from)
		after = st->sel.from > 0 ? st->sel.from - 1 : 0;
	else if (cli_store_head(store, &head) == EVS_OK)
		after = head.last_position;
	else
		return CLI_EXIT_FAIL;
	rc = evs_subscribe(store, after, &filter, &sub);
	if (rc != EVS_OK) {
		cli_store_error(store, rc, "could not subscribe to the store");
		return CLI_EXIT_FAIL;
	}
	status = follow(store, sub, st->count);
	evs_sub_close(sub);
	return status;
}

static int run(struct cli_ctx *ctx, void *state)
{
	evs__stop_signals(on_signal, false);
	return cli_with_store(ctx, CLI_OPEN_READ, NULL, subscribe_and_follow, state);
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
	.cleanup = cli_select_cleanup,
};
