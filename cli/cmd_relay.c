/*
 * cmd_relay.c - "evs relay": see and change the state of evs-relay's sinks
 * through their records in the store (relay/control.h), from any process,
 * while the relay runs or not.
 *
 *   evs relay status [SINK]           one JSON line per sink
 *   evs relay pause SINK              stop delivering (after the current attempt)
 *   evs relay resume SINK             deliver again (also a dead sink)
 *   evs relay reset SINK --to N       deliver again from position N + 1
 *                                     (N: the last position taken as done)
 *
 * A running relay sees a change within 250 ms; a stopped one when it starts.
 */
#include <string.h>

#include "cli.h"
#include "control.h"

enum { OPT_TO };

static const struct cli_option options[] = {
	[OPT_TO] = {"to", "N", "reset: the position taken as delivered (0 = from the start)"},
	{NULL, NULL, NULL}};

struct relay_state {
	bool has_to;
	uint64_t to;
};

static int on_option(struct cli_ctx *ctx, void *state, int index, const char *value)
{
	struct relay_state *st = state;

	(void)ctx;
	if (index == OPT_TO) {
		st->has_to = true;
		return cli_option_u64("to", value, 0, &st->to);
	}
	return CLI_EXIT_USAGE;
}

struct names {
	char (*v)[RLY_MAX_SINK_NAME + 1];
	size_t n, cap;
};

static int collect(void *ctx, evs_str name, uint64_t position)
{
	struct names *ns = ctx;
	const char *p = name.ptr + 6; /* after "relay/" */
	size_t len = name.len - 6;
	const char *hash = memchr(p, '#', len);

	(void)position;
	if (hash)
		len = (size_t)(hash - p);
	if (len == 0 || len > RLY_MAX_SINK_NAME)
		return 0;
	if (ns->n && strlen(ns->v[ns->n - 1]) == len && !memcmp(ns->v[ns->n - 1], p, len))
		return 0;
	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? ns->cap * 2 : 16;
		ns->v = cli_xrealloc(ns->v, ns->cap * sizeof ns->v[0]);
	}
	memcpy(ns->v[ns->n], p, len);
	ns->v[ns->n++][len] = 0;
	return 0;
}

static int print_sink(evs_store *store, const char *sink, uint64_t head)
{
	rly_control c;
	evs__buf b = {0};
	int rc = rly_control_read(store, sink, &c);

	if (rc != EVS_OK) {
		cli_store_error(store, rc, "could not read relay sink \"%s\"", sink);
		return CLI_EXIT_FAIL;
	}
	evs__buf_puts(&b, "{\"sink\":");
	evs__json_str(&b, sink, strlen(sink));
	evs__buf_printf(&b, ",\"state\":\"%s\",\"position\":", rly_state_name(c.state));
	jb_u64(&b, c.position);
	evs__buf_puts(&b, ",\"lag\":");
	jb_u64(&b, head > c.position ? head - c.position : 0);
	evs__buf_puts(&b, ",\"detail\":");
	if (c.detail)
		evs__buf_printf(&b, "%u", c.detail);
	else
		evs__buf_puts(&b, "null");
	evs__buf_puts(&b, ",\"reset_pending\":");
	if (c.reset_seq != c.reset_done)
		jb_u64(&b, c.reset_to);
	else
		evs__buf_puts(&b, "null");
	evs__buf_puts(&b, "}\n");
	jb_write(&b, stdout);
	evs__buf_free(&b);
	return CLI_EXIT_OK;
}

static int status(evs_store *store, const char *sink)
{
	struct names ns = {0};
	evs_store_info head;
	int rc, out = CLI_EXIT_OK;

	if (cli_store_head(store, &head) != EVS_OK)
		return CLI_EXIT_FAIL;
	if ((rc = evs_checkpoint_list(store, "relay/", collect, &ns)) != EVS_OK) {
		cli_store_error(store, rc, "could not list relay sinks");
		free(ns.v);
		return CLI_EXIT_FAIL;
	}
	if (sink) {
		bool found = false;
		for (size_t i = 0; i < ns.n && !found; i++)
			found = !strcmp(ns.v[i], sink);
		if (!found) {
			cli_error("no relay sink \"%s\" in this store", sink);
			out = CLI_EXIT_FAIL;
		} else {
			out = print_sink(store, sink, head.last_position);
		}
	} else {
		for (size_t i = 0; i < ns.n && out == CLI_EXIT_OK; i++)
			out = print_sink(store, ns.v[i], head.last_position);
	}
	free(ns.v);
	return out;
}

static int act(evs_store *store, struct cli_ctx *ctx, void *arg)
{
	struct relay_state *st = arg;
	const char *verb = ctx->argv[0], *sink = ctx->argc > 1 ? ctx->argv[1] : NULL;
	evs_store_info head;
	int rc;

	if (!strcmp(verb, "status"))
		return status(store, sink);
	if (cli_store_head(store, &head) != EVS_OK)
		return CLI_EXIT_FAIL;
	if (!strcmp(verb, "pause") || !strcmp(verb, "resume")) {
		int to = verb[0] == 'p' ? RLY_PAUSED : RLY_RUNNING;
		if ((rc = rly_control_set_state(store, sink, to, 0)) != EVS_OK) {
			cli_store_error(store, rc, "could not %s relay sink \"%s\"", verb, sink);
			return CLI_EXIT_FAIL;
		}
		return print_sink(store, sink, head.last_position);
	}
	if (st->to > head.last_position) {
		cli_error("position %llu is past the store's last position %llu",
			  (unsigned long long)st->to, (unsigned long long)head.last_position);
		return CLI_EXIT_FAIL;
	}
	if ((rc = rly_control_request_reset(store, sink, st->to)) != EVS_OK) {
		cli_store_error(store, rc, "could not reset relay sink \"%s\"", sink);
		return CLI_EXIT_FAIL;
	}
	return print_sink(store, sink, head.last_position);
}

static int run(struct cli_ctx *ctx, void *state)
{
	struct relay_state *st = state;
	const char *verb = ctx->argv[0], *why;
	bool status_verb = !strcmp(verb, "status");

	if (!status_verb && strcmp(verb, "pause") && strcmp(verb, "resume") &&
	    strcmp(verb, "reset")) {
		cli_error("unknown relay action \"%s\" (status, pause, resume or reset)", verb);
		return CLI_EXIT_USAGE;
	}
	if (!status_verb && ctx->argc != 2) {
		cli_error("\"evs relay %s\" needs one SINK", verb);
		return CLI_EXIT_USAGE;
	}
	if (ctx->argc == 2 && !rly_sink_name_ok(ctx->argv[1], &why))
		return cli_bad_value("SINK", ctx->argv[1], why);
	if (!strcmp(verb, "reset") != st->has_to) {
		cli_error(st->has_to ? "--to is only for \"evs relay reset\""
				     : "\"evs relay reset\" needs --to N");
		return CLI_EXIT_USAGE;
	}
	return cli_with_store(ctx, status_verb ? CLI_OPEN_READ : CLI_OPEN_WRITE, NULL, act, st);
}

const struct cli_command cli_cmd_relay = {
	.name = "relay",
	.synopsis = "status [SINK] | pause SINK | resume SINK | reset SINK --to N",
	.summary = "see and change evs-relay's sinks",
	.description =
		"status prints one JSON line per sink: {\"sink\",\"state\" (running, paused or\n"
		"dead),\"position\" (acknowledged),\"lag\",\"detail\" (the HTTP status that made\n"
		"it dead),\"reset_pending\"}. pause stops a sink after its current attempt;\n"
		"resume starts it again (a dead one too, from its checkpoint); reset --to N\n"
		"makes it deliver again from position N + 1 (0: from the start). A running\n"
		"evs-relay sees the change within 250 ms, a stopped one when it starts.",
	.options = options,
	.min_args = 1,
	.max_args = 2,
	.state_size = sizeof(struct relay_state),
	.on_option = on_option,
	.run = run,
};
