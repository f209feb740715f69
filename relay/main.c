/*
 * main.c - evs-relay: deliver the store's commit stream to webhooks,
 * RabbitMQ and NATS JetStream, at least once, in order, from a durable
 * checkpoint per sink.
 *
 *   evs-relay --config FILE [--OPTION VALUE]...
 *
 * The options are the shared typed table (store/base/opt.c: flags, the
 * environment EVS_RELAY_<NAME>, validation and --help); the sinks are the
 * configuration file (config.c). One thread per sink (run.c); the main
 * thread waits for a stop signal (SIGTERM, SIGINT: the handler only sets
 * the flag the sink loops read; every wait of theirs is bounded by 250 ms
 * or by one delivery's timeout) and then joins them; each writes its
 * checkpoint before it returns.
 *
 * Exit status: 0 stopped by a signal, 1 error (a sink failed: the store
 * could not be read or written), 2 bad usage or configuration.
 */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#ifdef RLY_WITH_NATS
#include <nats/nats.h>
#endif

#include "evs_version.h"
#include "log.h"
#include "opt.h"
#include "relay.h"
#include "signals.h"

struct settings {
	char *store, *config, *source, *metrics_address;
	long metrics_port, check, log_level, log_format;
};

#define S(field) offsetof(struct settings, field)

static const struct evs__opt rows[] = {
	{"store", EVS__OPT_STR, "./evstore-data", 0, 0, "store directory", S(store), 0},
	{"config", EVS__OPT_STR, "", 0, 0, "sinks configuration file (required)", S(config),
	 EVS__OPT_EMPTY_OK},
	{"source", EVS__OPT_STR, "", 0, 0,
	 "CloudEvents source of every message (empty: urn:evstore:<absolute store path>)",
	 S(source), EVS__OPT_EMPTY_OK},
	{"metrics-address", EVS__OPT_STR, "127.0.0.1", 0, 0, "IPv4 address of GET /metrics",
	 S(metrics_address), 0},
	{"metrics-port", EVS__OPT_INT, "0", 0, 65535, "port of GET /metrics (0: no endpoint)",
	 S(metrics_port), 0},
	{"check", EVS__OPT_BOOL, "false", 0, 1, "check the configuration, print the sinks, exit",
	 S(check), 0},
	{"log-level", EVS__OPT_LEVEL, "info", 0, 3, "most verbose level logged", S(log_level), 0},
	{"log-format", EVS__OPT_FORMAT, "text", 0, 1,
	 "log lines as text, or one JSON object per line", S(log_format), 0},
};

static const struct evs__opt_table table = {"evs-relay", "EVS_RELAY_", rows,
					    sizeof rows / sizeof rows[0]};

/* SIGTERM/SIGINT set it (store/base/signals.c); every sink thread reads it */
static volatile sig_atomic_t *stop_flag;

static void usage(void)
{
	fputs("usage: evs-relay --config FILE [--OPTION VALUE]...\n\n"
	      "Deliver an evstore's events to webhooks, RabbitMQ and NATS JetStream,\n"
	      "at least once and in order, from a durable checkpoint per sink.\n\n"
	      "options (a flag wins over its environment variable):\n",
	      stdout);
	evs__opt_help(&table, stdout);
	fputs("\nexit status: 0 stopped by a signal, 1 error, 2 bad usage or configuration\n",
	      stdout);
}

static const char *const kinds[] = {"", "webhook", "nats", "rabbitmq"};

static const rly_sink_ops *ops_of(int kind)
{
	switch (kind) {
	case RLY_WEBHOOK: return &rly_webhook_ops;
#ifdef RLY_WITH_NATS
	case RLY_NATS: return &rly_nats_ops;
#endif
#ifdef RLY_WITH_AMQP
	case RLY_AMQP: return &rly_amqp_ops;
#endif
	}
	return NULL;
}

static int configure(struct settings *s, rly_config *cfg, int argc, char **argv)
{
	char err[1024];
	int action;

	memset(s, 0, sizeof *s);
	if (evs__opt_defaults(&table, s, err, sizeof err) ||
	    evs__opt_load(&table, s, argc, argv, &action, err, sizeof err)) {
		fprintf(stderr, "evs-relay: %s\n", err);
		fputs("hint: see \"evs-relay --help\"\n", stderr);
		return 2;
	}
	if (action == EVS__OPT_HELP) {
		usage();
		return fflush(stdout) == 0 ? 0 : 1;
	}
	if (action == EVS__OPT_VERSION) {
		printf("evs-relay %s\n", EVS_VERSION_STRING);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	if (s->config[0] == 0) {
		fputs("evs-relay: option --config is required\n", stderr);
		return 2;
	}
	if (rly_config_load(s->config, cfg, err, sizeof err) != 0) {
		fprintf(stderr, "evs-relay: %s\n", err);
		return 2;
	}
	for (size_t i = 0; i < cfg->nsinks; i++)
		if (ops_of(cfg->sinks[i].kind) == NULL) {
			fprintf(stderr, "evs-relay: sink \"%s\": kind \"%s\" is not built in\n",
				cfg->sinks[i].name, kinds[cfg->sinks[i].kind]);
			return 2;
		}
	if (s->check) {
		for (size_t i = 0; i < cfg->nsinks; i++)
			printf("sink %s: %s %s\n", cfg->sinks[i].name, kinds[cfg->sinks[i].kind],
			       cfg->sinks[i].url);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	return -1;
}

static void *sink_thread(void *arg)
{
	rly_sink *s = arg;
	int rc = rly_sink_run(s);

	if (rc)
		*s->stop = 1; /* a sink that failed stops the relay */
	return (void *)(intptr_t)rc;
}

static void store_log(void *ctx, int level, const char *message)
{
	evs__log(ctx, level, message);
}

static int run(struct settings *st, rly_config *cfg)
{
	static rly_sink sinks[RLY_MAX_SINKS];
	pthread_t threads[RLY_MAX_SINKS];
	char err[1024], source[PATH_MAX + 16], real[PATH_MAX];
	rly_metrics *metrics = NULL;
	evs_store *store = NULL;
	evs_options o;
	size_t started = 0, i;
	int rc = 0;

	evs_options_init(&o);
	o.create = 0;
	o.log = store_log;
	if ((rc = evs_open(st->store, &o, &store)) != EVS_OK) {
		evs__log(NULL, EVS_LOG_ERROR, evs_open_errmsg());
		return 1;
	}
	if (st->source[0])
		snprintf(source, sizeof source, "%s", st->source);
	else
		snprintf(source, sizeof source, "urn:evstore:%s",
			 realpath(st->store, real) ? real : st->store);
	for (i = 0; i < cfg->nsinks; i++) {
		rly_sink *s = &sinks[i];
		s->cfg = &cfg->sinks[i];
		s->ops = ops_of(s->cfg->kind);
		s->store = store;
		s->source = source;
		s->stop = stop_flag;
		s->seed = (uint64_t)time(NULL) * 2654435761u + i + 1;
		if (s->ops->open(s, err, sizeof err) != 0) {
			evs__logf(EVS_LOG_ERROR, "sink \"%s\": %s", s->cfg->name, err);
			rc = 1;
			goto out;
		}
	}
	if (st->metrics_port && rly_metrics_start(st->metrics_address, st->metrics_port, sinks,
						  cfg->nsinks, &metrics, err, sizeof err) != 0) {
		evs__logf(EVS_LOG_ERROR, "%s", err);
		rc = 1;
		goto out;
	}
	if (metrics)
		evs__logf(EVS_LOG_INFO, "metrics on http://%s:%ld/metrics", st->metrics_address,
			  st->metrics_port);
	for (started = 0; started < cfg->nsinks; started++)
		if (pthread_create(&threads[started], NULL, sink_thread, &sinks[started]) != 0) {
			evs__logf(EVS_LOG_ERROR, "could not start a thread");
			*stop_flag = 1;
			rc = 1;
			break;
		}
	for (size_t j = 0; j < started; j++) {
		void *ret;
		pthread_join(threads[j], &ret);
		if (ret)
			rc = 1;
	}
out:
	rly_metrics_stop(metrics);
	for (size_t j = 0; j < cfg->nsinks; j++)
		if (sinks[j].ops && sinks[j].impl)
			sinks[j].ops->close(&sinks[j]);
	evs_close(store);
	return rc;
}

int main(int argc, char **argv)
{
	struct settings s;
	static rly_config cfg;
	int rc;

	if ((rc = configure(&s, &cfg, argc, argv)) >= 0) {
		rly_config_free(&cfg);
		evs__opt_free(&table, &s);
		return rc;
	}
	evs__log_setup("evs-relay", (int)s.log_level, (int)s.log_format);
	stop_flag = evs__stop_flag_signals(true);
	rc = run(&s, &cfg);
	evs__logf(EVS_LOG_INFO, "%s", rc ? "stopped after an error" : "stopped");
	rly_config_free(&cfg);
	evs__opt_free(&table, &s);
	curl_global_cleanup();
#ifdef RLY_WITH_NATS
	nats_Close();
#endif
	return rc;
}
