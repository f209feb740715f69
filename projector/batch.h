/*
 * batch.h - internal (evp__) interfaces of libevsproj: a batch of events
 * copied out of the store, and the rules runner.
 */
#ifndef EVSPROJ_BATCH_H
#define EVSPROJ_BATCH_H

#include "evsproj.h"

/* One event copied out of the store (the store's views end with the
 * subscription call), with its payloads also as JSON text. */
struct evp__event {
	evs_event ev;    /* pointers into owned copies */
	char *data_json; /* NUL-terminated */
	size_t data_json_len;
	char *meta_json;
	size_t meta_json_len;
};

struct evp__batch {
	struct evp__event *events;
	size_t n, cap;
};

/* Rules: prepare on a fresh connection; run the statements of one event. */
int evp__rules_prepare(evp_rules *rules, PGconn *conn, char *err, size_t errlen);
/* EVP_OK, or EVP_SQL with err and *sqlstate (static storage, may be "")
 * when a statement failed, or EVP_CONNECT. */
int evp__rules_apply(evp_rules *rules, PGconn *conn, const struct evp__event *e, char *err,
		     size_t errlen, char *sqlstate, size_t sslen);
/* The statements of events[0..n) pipelined (see rules.c); on EVP_SQL
 * *failed is the index of the event whose statement failed. */
int evp__rules_apply_many(evp_rules *rules, PGconn *conn, const struct evp__event *events, size_t n,
			  size_t *failed, char *err, size_t errlen, char *sqlstate, size_t sslen);
/* Whether any statement applies to this event type. */
bool evp__rules_match(const evp_rules *rules, const evs_str *type);

#endif
