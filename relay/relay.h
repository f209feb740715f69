/*
 * relay.h - evs-relay's internal interfaces (rly_ names): the sink
 * configuration (config.c), the per-sink follower (run.c), the sinks
 * (webhook.c, nats.c, amqp.c) and the metrics endpoint (metrics.c).
 *
 * Delivery model: one thread per sink follows the store from the sink's
 * checkpoint (evs_subscribe: catch-up, then live), encodes each event
 * that passes the sink's filter once as a CloudEvents JSON object
 * (store/base/cloudevent.h), and hands batches to the sink in position
 * order. The sink reports how many messages of the batch, from the
 * first, its receiver acknowledged; the checkpoint moves only over
 * acknowledged events. So delivery is at least once and, per sink, in
 * position order (hence in order per stream); the event id is every
 * message's dedup key.
 */
#ifndef RLY_RELAY_H
#define RLY_RELAY_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "control.h"
#include "evstore.h"

#define RLY_MAX_SINKS   64
#define RLY_MAX_SECRETS 4
#define RLY_MAX_FILTERS 32
#define RLY_MAX_BATCH   1000
#define RLY_MAX_HEADERS 8

enum rly_kind { RLY_WEBHOOK = 1, RLY_NATS = 2, RLY_AMQP = 3 };

/* One [sink NAME] section of the configuration file (config.c). */
typedef struct rly_sink_cfg {
	char name[RLY_MAX_SINK_NAME + 1];
	int kind;          /* enum rly_kind */
	char *url;         /* webhook URL, nats://..., amqp://... */
	bool start_latest; /* a new sink starts at the store's head */
	char *prefixes[RLY_MAX_FILTERS];
	size_t nprefixes;
	char *types[RLY_MAX_FILTERS];
	size_t ntypes;
	char *categories[RLY_MAX_FILTERS]; /* issue 12: the store's category index */
	size_t ncategories;
	char *tags[EVS_MAX_TAGS]; /* all of them */
	size_t ntags;
	long batch;         /* events per delivery */
	long timeout_ms;    /* one attempt */
	long retry_min_ms;  /* first backoff */
	long retry_max_ms;  /* longest backoff (and longest Retry-After honoured) */
	long checkpoint_ms; /* at most this long between checkpoint writes */
	/* webhook */
	char *secrets[RLY_MAX_SECRETS]; /* "whsec_..." (first signs first) */
	size_t nsecrets;
	/* nats: subject template; amqp: exchange and routing key templates */
	char *subject, *exchange, *routing_key, *stream;
} rly_sink_cfg;

typedef struct rly_config {
	rly_sink_cfg sinks[RLY_MAX_SINKS];
	size_t nsinks;
} rly_config;

/* Parse and validate the file at path. 0, or -1 with a message naming the
 * file and line in err. */
int rly_config_load(const char *path, rly_config *cfg, char *err, size_t errlen);
void rly_config_free(rly_config *cfg);

/* Expand a template ({type}, {stream}, {category}: the stream up to its
 * first '-') into out, NUL-terminated; -1 if out's limit is passed. With
 * token_safe (NATS subjects), bytes of the values that are not
 * [A-Za-z0-9_-] become '_' (no '.', '*', '>' or space from a value). */
int rly_template(evs__buf *out, const char *tpl, const char *type, size_t tlen, const char *stream,
		 size_t slen, bool token_safe);

/* ---- a batch handed to a sink ------------------------------------------ */

typedef struct rly_msg {
	uint64_t position;
	char id[37];               /* event id, UUID text */
	size_t stream, stream_len; /* offsets into the batch's arena */
	size_t type, type_len;
	size_t body, body_len; /* the CloudEvents JSON */
	size_t data, data_len; /* the payload JSON alone (binary mode) */
	uint64_t version;
	uint32_t type_version;
	int64_t recorded_at, occurred_at;    /* occurred_at 0: none */
	char correlation[37], causation[37]; /* "": none */
	size_t producer, producer_len;       /* producer_len 0: none */
	size_t tags, tags_len;               /* JSON array text; tags_len 0: none */
} rly_msg;

typedef struct rly_batch {
	rly_msg msgs[RLY_MAX_BATCH];
	size_t n;
	evs__buf arena;
} rly_batch;

static inline const char *rly_at(const rly_batch *b, size_t off)
{
	return b->arena.ptr + off;
}

/* What an attempt came to. */
enum rly_outcome {
	RLY_ACKED = 0, /* every message acknowledged */
	RLY_RETRY = 1, /* some not: try them again after a backoff */
	RLY_GONE = 2,  /* the receiver refuses for good (webhook 410): the sink is dead */
};

typedef struct rly_result {
	size_t acked;        /* messages from the first that were acknowledged */
	int outcome;         /* enum rly_outcome */
	long retry_after_ms; /* the receiver asked to wait at least this (0: no ask) */
	unsigned detail;     /* HTTP status and the like, for the state record */
	char why[256];       /* for the log */
} rly_result;

typedef struct rly_sink rly_sink;

typedef struct rly_sink_ops {
	int (*open)(rly_sink *s, char *err, size_t errlen);
	void (*deliver)(rly_sink *s, const rly_batch *b, rly_result *r);
	void (*close)(rly_sink *s);
} rly_sink_ops;

extern const rly_sink_ops rly_webhook_ops;
extern const rly_sink_ops rly_nats_ops;
extern const rly_sink_ops rly_amqp_ops;

/* Counters per sink, read by metrics.c (any thread). */
typedef struct rly_stats {
	atomic_ullong delivered; /* messages acknowledged */
	atomic_ullong attempts;  /* deliveries tried */
	atomic_ullong failures;  /* deliveries that did not complete */
	atomic_ullong position;  /* checkpoint written last */
	atomic_ullong acked;     /* position acknowledged (ahead of the checkpoint) */
	atomic_ullong head;      /* store head when last looked */
	atomic_int state;        /* enum rly_state */
} rly_stats;

struct rly_sink {
	const rly_sink_cfg *cfg;
	const rly_sink_ops *ops;
	void *impl; /* the sink's own state */
	evs_store *store;
	const char *source; /* CloudEvents source */
	volatile sig_atomic_t *stop;
	rly_stats stats;
	uint64_t seed; /* backoff jitter */
};

/* Follow the store and deliver until *stop (run.c). 0, or 1 after a
 * failure it logged. */
int rly_sink_run(rly_sink *s);

/* Encode ev as the batch's next message (message.c): EVS_OK, EVS_BAD_DATA,
 * EVS_NOMEM (the arena's limit), EVS_INVALID. */
int rly_batch_add(rly_batch *b, const evs_event *ev, const char *source);

/* The CloudEvents binary-mode attributes of m, one call of fn per
 * attribute (name without prefix, NUL-terminated value): specversion, id,
 * source, type, subject, time, datacontenttype, position, streamversion,
 * typeversion, and correlationid, causationid, occurredat, producer, tags
 * (cloudevent.h) when set. The
 * first non-zero return of fn stops and is returned (run.c). */
int rly_ce_attributes(const rly_batch *b, const rly_msg *m, const char *source,
		      int (*fn)(void *ctx, const char *name, const char *value), void *ctx);

/* ---- metrics.c: GET /metrics on address:port --------------------------- */

typedef struct rly_metrics rly_metrics;
int rly_metrics_start(const char *address, long port, rly_sink *sinks, size_t n, rly_metrics **out,
		      char *err, size_t errlen);
void rly_metrics_stop(rly_metrics *m);

/* Sleep up to ms, in slices, returning early once *stop is set. */
void rly_nap(volatile sig_atomic_t *stop, long ms);
int64_t rly_mono_ms(void);

#endif
