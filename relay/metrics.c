/*
 * metrics.c - GET /metrics (Prometheus text format 0.0.4) on a small
 * libmicrohttpd server of its own (--metrics-port; 0 = none), loopback by
 * default. One sample per sink and metric, labelled sink="NAME":
 *
 *   evs_relay_delivered_total      messages the sink acknowledged
 *   evs_relay_attempts_total       deliveries tried
 *   evs_relay_failures_total       deliveries that did not complete
 *   evs_relay_checkpoint_position  checkpoint written last
 *   evs_relay_acked_position       position acknowledged (ahead of the checkpoint
 *                                  by at most checkpoint-ms of work)
 *   evs_relay_lag_events           store head - acknowledged position
 *   evs_relay_state                0 running, 1 paused, 2 dead
 *
 * A scrape reads the sinks' atomic counters only.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

struct rly_metrics {
	struct MHD_Daemon *d;
	rly_sink *sinks;
	size_t n;
};

static void family(evs__buf *b, rly_metrics *m, const char *name, const char *type,
		   const char *help, int which)
{
	evs__buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (size_t i = 0; i < m->n; i++) {
		rly_stats *st = &m->sinks[i].stats;
		unsigned long long v = 0, head, acked;
		switch (which) {
		case 0: v = atomic_load(&st->delivered); break;
		case 1: v = atomic_load(&st->attempts); break;
		case 2: v = atomic_load(&st->failures); break;
		case 3: v = atomic_load(&st->position); break;
		case 4: v = atomic_load(&st->acked); break;
		case 5:
			head = atomic_load(&st->head);
			acked = atomic_load(&st->acked);
			v = head > acked ? head - acked : 0;
			break;
		default: v = (unsigned long long)atomic_load(&st->state);
		}
		evs__buf_printf(b, "%s{sink=\"%s\"} %llu\n", name, m->sinks[i].cfg->name, v);
	}
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **req)
{
	rly_metrics *m = cls;
	struct MHD_Response *resp;
	evs__buf b = {0};
	unsigned status = MHD_HTTP_OK;
	enum MHD_Result rc;

	(void)version;
	(void)upload;
	(void)upload_len;
	(void)req;
	if (strcmp(method, "GET") != 0) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		evs__buf_puts(&b, "only GET\n");
	} else if (strcmp(url, "/metrics") != 0) {
		status = MHD_HTTP_NOT_FOUND;
		evs__buf_puts(&b, "not found: try /metrics\n");
	} else {
		family(&b, m, "evs_relay_delivered_total", "counter",
		       "messages the sink acknowledged", 0);
		family(&b, m, "evs_relay_attempts_total", "counter", "deliveries tried", 1);
		family(&b, m, "evs_relay_failures_total", "counter",
		       "deliveries that did not complete", 2);
		family(&b, m, "evs_relay_checkpoint_position", "gauge", "checkpoint written last",
		       3);
		family(&b, m, "evs_relay_acked_position", "gauge", "position acknowledged", 4);
		family(&b, m, "evs_relay_lag_events", "gauge",
		       "store head minus acknowledged position", 5);
		family(&b, m, "evs_relay_state", "gauge", "0 running, 1 paused, 2 dead", 6);
	}
	if (b.oom) {
		evs__buf_free(&b);
		return MHD_NO;
	}
	resp = MHD_create_response_from_buffer(b.len, b.ptr, MHD_RESPMEM_MUST_COPY);
	evs__buf_free(&b);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
	rc = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

int rly_metrics_start(const char *address, long port, rly_sink *sinks, size_t n, rly_metrics **out,
		      char *err, size_t errlen)
{
	struct sockaddr_in sa = {0};
	rly_metrics *m;

	*out = NULL;
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, address, &sa.sin_addr) != 1) {
		snprintf(err, errlen, "invalid metrics address \"%s\" (an IPv4 address)", address);
		return -1;
	}
	if ((m = calloc(1, sizeof *m)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	m->sinks = sinks;
	m->n = n;
	m->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
				answer, m, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_CONNECTION_LIMIT,
				(unsigned)16, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
				MHD_OPTION_END);
	if (m->d == NULL) {
		snprintf(err, errlen, "could not listen on %s:%ld for metrics", address, port);
		free(m);
		return -1;
	}
	*out = m;
	return 0;
}

void rly_metrics_stop(rly_metrics *m)
{
	if (m == NULL)
		return;
	MHD_stop_daemon(m->d);
	free(m);
}
