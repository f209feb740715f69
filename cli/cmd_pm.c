/*
 * cmd_pm.c - "evs pm": run process managers from a shared object the user
 * builds (evstore_pm.h, "plugins"), and the operators' view of them.
 *
 *   evs pm run --plugin FILE [--plugin-arg TEXT] [--partitions N
 *              --partition I] [--until-idle] [--progress-ms MS]
 *              [--metrics-file FILE]
 *   evs pm list-parked MANAGER       one JSON line per parked instance
 *   evs pm resume MANAGER INSTANCE   ask the runner to resume it
 *   evs pm timers MANAGER            one JSON line per timer, in due order
 *
 * run logs progress, lag and parked instances on stderr (EVS_LOG_LEVEL=info
 * shows the progress lines); SIGINT/SIGTERM stop it between steps (a step
 * is one transaction, so a stop or a kill never leaves half of one).
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "evstore_pm.h"
#include "log.h"
#include "signals.h"

enum {
	OPT_PLUGIN,
	OPT_PLUGIN_ARG,
	OPT_PARTITIONS,
	OPT_PARTITION,
	OPT_UNTIL_IDLE,
	OPT_PROGRESS,
	OPT_METRICS
};

static const struct cli_option options[] = {
	[OPT_PLUGIN] = {"plugin", "FILE", "run: the shared object with evs_pm_plugin_open"},
	[OPT_PLUGIN_ARG] = {"plugin-arg", "TEXT", "run: text handed to the plugin"},
	[OPT_PARTITIONS] = {"partitions", "N", "run: runners sharing the instances (default 1)"},
	[OPT_PARTITION] = {"partition", "I", "run: this runner's share, 0..N-1 (default 0)"},
	[OPT_UNTIL_IDLE] = {"until-idle", NULL, "run: stop once caught up and no timer is due"},
	[OPT_PROGRESS] = {"progress-ms", "MS", "run: progress log interval (default 10000)"},
	[OPT_METRICS] =
		{"metrics-file", "FILE",
		 "run: Prometheus text file rewritten at each progress (textfile collector)"},
	{NULL, NULL, NULL}};

struct pm_state {
	const char *plugin, *plugin_arg, *metrics;
	uint64_t partitions, partition, progress_ms;
	bool until_idle, has_partition;
};

static int on_option(struct cli_ctx *ctx, void *state, int index, const char *value)
{
	struct pm_state *st = state;

	(void)ctx;
	switch (index) {
	case OPT_PLUGIN:
		if (!*value)
			return cli_bad_value("plugin", value, "empty");
		st->plugin = value;
		return CLI_EXIT_OK;
	case OPT_PLUGIN_ARG: st->plugin_arg = value; return CLI_EXIT_OK;
	case OPT_PARTITIONS:
		if (cli_option_u64("partitions", value, 1, &st->partitions) != CLI_EXIT_OK)
			return CLI_EXIT_USAGE;
		return st->partitions > 1024 ? cli_bad_value("partitions", value, "above 1024")
					     : CLI_EXIT_OK;
	case OPT_PARTITION:
		st->has_partition = true;
		return cli_option_u64("partition", value, 0, &st->partition);
	case OPT_UNTIL_IDLE: st->until_idle = true; return CLI_EXIT_OK;
	case OPT_METRICS:
		if (!*value)
			return cli_bad_value("metrics-file", value, "empty");
		st->metrics = value;
		return CLI_EXIT_OK;
	case OPT_PROGRESS:
		if (cli_option_u64("progress-ms", value, 1, &st->progress_ms) != CLI_EXIT_OK)
			return CLI_EXIT_USAGE;
		return st->progress_ms > 86400000
			       ? cli_bad_value("progress-ms", value, "above a day")
			       : CLI_EXIT_OK;
	}
	return CLI_EXIT_USAGE;
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int should_stop(void *ctx)
{
	(void)ctx;
	return stop_requested;
}

#define MAX_MANAGERS 64

/* The last progress of each manager, written as Prometheus text to
 * --metrics-file (FILE.tmp, then renamed over FILE). */
struct metrics {
	const char *path;
	unsigned partition;
	evs_pm_progress p[MAX_MANAGERS];
	size_t n;
};

static void write_metrics(struct metrics *m)
{
	static const char *const names[][3] = {
		{"evs_pm_position", "gauge", "last log position handled by the runner"},
		{"evs_pm_lag_events", "gauge", "events between the runner and the store's head"},
		{"evs_pm_steps_total", "counter", "steps committed"},
		{"evs_pm_skipped_total", "counter", "inputs skipped (handled, finished, parked)"},
		{"evs_pm_timers_fired_total", "counter", "timers fired"},
		{"evs_pm_rejections_total", "counter", "commands rejected by their aggregates"},
		{"evs_pm_parked_instances", "gauge", "instances parked (all partitions)"}};
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof tmp, "%s.tmp", m->path) >= (int)sizeof tmp ||
	    (f = fopen(tmp, "w")) == NULL) {
		evs__logf(EVS_LOG_WARNING, "could not write metrics file \"%s\"", m->path);
		return;
	}
	for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", names[k][0], names[k][2], names[k][0],
			names[k][1]);
		for (size_t i = 0; i < m->n; i++) {
			const evs_pm_progress *p = &m->p[i];
			uint64_t v[] = {p->position, p->head - p->position, p->steps,
					p->skipped,  p->timers_fired,       p->rejections,
					p->parked};
			fprintf(f, "%s{manager=\"%s\",partition=\"%u\"} %llu\n", names[k][0],
				p->manager, m->partition, (unsigned long long)v[k]);
		}
	}
	if (fclose(f) != 0 || rename(tmp, m->path) != 0)
		evs__logf(EVS_LOG_WARNING, "could not write metrics file \"%s\"", m->path);
}

static void on_progress(void *ctx, const evs_pm_progress *p)
{
	struct metrics *m = ctx;
	size_t i;

	for (i = 0; i < m->n; i++)
		if (strcmp(m->p[i].manager, p->manager) == 0)
			break;
	if (i == MAX_MANAGERS)
		return;
	m->p[i] = *p;
	m->n = i == m->n ? m->n + 1 : m->n;
	write_metrics(m);
}

static int run_managers(evs_store *store, struct cli_ctx *ctx, void *arg)
{
	struct pm_state *st = arg;
	evs_pm *pms[MAX_MANAGERS];
	evs_pm_plugin_open_fn open_fn;
	evs_pm_plugin_close_fn close_fn;
	evs_pm_run_opts ro;
	void *handle, *pstate = NULL;
	size_t n = 0;
	int rc, out = CLI_EXIT_OK;

	(void)ctx;
	if ((handle = dlopen(st->plugin, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		cli_error("could not load plugin \"%s\": %s", st->plugin, dlerror());
		return CLI_EXIT_FAIL;
	}
	*(void **)&open_fn = dlsym(handle, "evs_pm_plugin_open");
	*(void **)&close_fn = dlsym(handle, "evs_pm_plugin_close");
	if (open_fn == NULL || close_fn == NULL) {
		cli_error("plugin \"%s\" does not export evs_pm_plugin_open and "
			  "evs_pm_plugin_close",
			  st->plugin);
		dlclose(handle);
		return CLI_EXIT_FAIL;
	}
	if ((rc = open_fn(store, st->plugin_arg, pms, MAX_MANAGERS, &n, &pstate)) != EVS_OK ||
	    n == 0 || n > MAX_MANAGERS) {
		cli_error("plugin \"%s\" could not start its process managers: %s", st->plugin,
			  rc != EVS_OK ? evs_errmsg(store) : "it gave none");
		if (rc == EVS_OK)
			close_fn(pstate);
		dlclose(handle);
		return CLI_EXIT_FAIL;
	}
	memset(&ro, 0, sizeof ro);
	ro.partitions = (unsigned)st->partitions;
	ro.partition = (unsigned)st->partition;
	ro.until_idle = st->until_idle;
	ro.progress_ms = (int)st->progress_ms;
	ro.stop = should_stop;
	struct metrics metrics = {st->metrics, ro.partition, {{0}}, 0};
	if (st->metrics) {
		ro.progress = on_progress;
		ro.progress_ctx = &metrics;
	}
	evs__stop_signals(on_signal, true);
	evs__logf(EVS_LOG_INFO, "running %zu process manager%s from \"%s\" (partition %u of %u)", n,
		  n == 1 ? "" : "s", st->plugin, ro.partition, ro.partitions ? ro.partitions : 1);
	if ((rc = evs_pm_run(pms, n, &ro)) != EVS_OK) {
		cli_store_error(store, rc, "process managers stopped");
		out = CLI_EXIT_FAIL;
	}
	close_fn(pstate);
	dlclose(handle);
	return out;
}

static int print_parked(void *ctx, const char *instance, uint64_t position, const char *reason)
{
	evs__buf b = {0};

	evs__buf_puts(&b, "{\"manager\":");
	evs__json_str(&b, ctx, strlen(ctx));
	evs__buf_puts(&b, ",\"instance\":");
	evs__json_str(&b, instance, strlen(instance));
	evs__buf_printf(&b, ",\"position\":%llu,\"reason\":", (unsigned long long)position);
	evs__json_str_lossy(&b, reason, strlen(reason));
	evs__buf_puts(&b, "}\n");
	fwrite(b.ptr, 1, b.len, stdout);
	evs__buf_free(&b);
	return 0;
}

struct timer_walk {
	const char *manager;
	size_t prefix;
};

static int print_timer(void *ctx, evs_str name, uint64_t position)
{
	struct timer_walk *w = ctx;
	const char *p = name.ptr + w->prefix, *slash;
	size_t len = name.len - w->prefix;
	evs__buf b = {0};

	(void)position;
	if (len < 19 || p[16] != '/' || (slash = memchr(p + 17, '/', len - 17)) == NULL)
		return 0;
	evs__buf_puts(&b, "{\"manager\":");
	evs__json_str(&b, w->manager, strlen(w->manager));
	evs__buf_puts(&b, ",\"instance\":");
	evs__json_str(&b, p + 17, (size_t)(slash - p - 17));
	evs__buf_puts(&b, ",\"timer\":");
	evs__json_str(&b, slash + 1, (size_t)(p + len - slash - 1));
	evs__buf_printf(&b, ",\"due\":%llu}\n", strtoull(p, NULL, 16));
	fwrite(b.ptr, 1, b.len, stdout);
	evs__buf_free(&b);
	return 0;
}

static int act(evs_store *store, struct cli_ctx *ctx, void *arg)
{
	const char *verb = ctx->argv[0], *manager = ctx->argv[1];
	int rc;

	(void)arg;
	if (!strcmp(verb, "list-parked")) {
		rc = evs_pm_list_parked(store, manager, print_parked, (void *)manager);
	} else if (!strcmp(verb, "timers")) {
		char prefix[EVS_MAX_NAME + 1];
		struct timer_walk w = {manager, 0};
		w.prefix = (size_t)snprintf(prefix, sizeof prefix, "pm/%s/timer/", manager);
		rc = evs_checkpoint_list(store, prefix, print_timer, &w);
	} else {
		if ((rc = evs_pm_resume(store, manager, ctx->argv[2])) == EVS_OK)
			printf("{\"manager\":\"%s\",\"instance\":\"%s\",\"resume\":\"requested\"}\n",
			       manager, ctx->argv[2]);
	}
	if (rc != EVS_OK) {
		cli_store_error(store, rc, "could not %s", verb);
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}

static bool manager_ok(const char *m)
{
	size_t n = strlen(m);

	if (n == 0 || n > EVS_PM_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((m[i] >= 'a' && m[i] <= 'z') || (m[i] >= '0' && m[i] <= '9') || m[i] == '_' ||
		      m[i] == '.'))
			return false;
	return true;
}

static int run(struct cli_ctx *ctx, void *state)
{
	struct pm_state *st = state;
	const char *verb = ctx->argv[0];

	if (!strcmp(verb, "run")) {
		if (ctx->argc != 1 || st->plugin == NULL) {
			cli_error("\"evs pm run\" takes no argument and needs --plugin FILE");
			return CLI_EXIT_USAGE;
		}
		if (st->partition >= (st->partitions ? st->partitions : 1)) {
			cli_error("--partition %llu is not below --partitions %llu",
				  (unsigned long long)st->partition,
				  (unsigned long long)(st->partitions ? st->partitions : 1));
			return CLI_EXIT_USAGE;
		}
		return cli_with_store(ctx, CLI_OPEN_WRITE, NULL, run_managers, st);
	}
	if (st->plugin || st->plugin_arg || st->partitions || st->has_partition || st->until_idle ||
	    st->progress_ms || st->metrics) {
		cli_error("options are only for \"evs pm run\"");
		return CLI_EXIT_USAGE;
	}
	bool resume = !strcmp(verb, "resume");
	if (!resume && strcmp(verb, "list-parked") && strcmp(verb, "timers")) {
		cli_error("unknown pm action \"%s\" (run, list-parked, resume or timers)", verb);
		return CLI_EXIT_USAGE;
	}
	if (ctx->argc != (resume ? 3 : 2)) {
		cli_error(resume ? "\"evs pm resume\" needs MANAGER and INSTANCE"
				 : "\"evs pm %s\" needs MANAGER",
			  verb);
		return CLI_EXIT_USAGE;
	}
	if (!manager_ok(ctx->argv[1]))
		return cli_bad_value("MANAGER", ctx->argv[1], "not 1 to 32 bytes of [a-z0-9_.]");
	if (resume && (!*ctx->argv[2] || strchr(ctx->argv[2], '/') ||
		       strlen(ctx->argv[2]) > EVS_PM_MAX_INSTANCE))
		return cli_bad_value("INSTANCE", ctx->argv[2], "empty, too long or has a '/'");
	return cli_with_store(ctx, resume ? CLI_OPEN_WRITE : CLI_OPEN_READ, NULL, act, st);
}

const struct cli_command cli_cmd_pm = {
	.name = "pm",
	.synopsis = "run --plugin FILE [OPTION]... | list-parked MANAGER | resume MANAGER INSTANCE "
		    "| timers MANAGER",
	.summary = "run process managers; see and resume parked instances",
	.description =
		"run loads FILE (a shared object exporting evs_pm_plugin_open and\n"
		"evs_pm_plugin_close, see evstore_pm.h) and runs its process managers on the\n"
		"store: catch-up from their checkpoints, then live; due timers fire as steps.\n"
		"Progress, lag and parked instances go to the log (EVS_LOG_LEVEL=info) and,\n"
		"with --metrics-file, to a Prometheus text file. list-parked prints one\n"
		"JSON line per parked instance {\"manager\",\"instance\",\"position\",\"reason\"};\n"
		"resume asks the runner to replay a parked instance's inputs; timers prints\n"
		"one JSON line per timer {\"manager\",\"instance\",\"timer\",\"due\"} in due order.",
	.options = options,
	.min_args = 1,
	.max_args = 3,
	.state_size = sizeof(struct pm_state),
	.on_option = on_option,
	.run = run,
};
