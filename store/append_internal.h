/*
 * append_internal.h - what append.c (the queue and its leader), batch.c
 * (checking and encoding a caller's batch) and group.c (applying a group
 * in one write transaction) share. Not public.
 */
#ifndef EVS_APPEND_INTERNAL_H
#define EVS_APPEND_INTERNAL_H

#include "internal.h"

typedef struct evs__slot {
	size_t off, len; /* the event's record tail in req->tails */
	uint8_t id[16];
	bool latest; /* the caller left type_version 0: "the latest" */
} evs__slot;

typedef struct evs__req {
	struct evs__req *next;
	const char *stream;
	size_t stream_len;
	uint64_t expected;
	size_t n;
	evs__slot *ev;
	evs__buf tails;
	uint32_t *type_versions; /* resolved by the schema registry, or NULL */
	/* A schema outcome, reported only if the batch is not a retry of one
	 * already stored (a retry must be answered the same way whatever the
	 * registry says now). */
	int schema_rc;
	char *schema_msg;
	/* outcome, written by the leader */
	int rc;
	evs_append_result res;
	char msg[512];
	bool taken; /* in a leader's group (under gc_mu) */
	bool done;  /* the outcome is written (atomic; append.c) */
} evs__req;

/* batch.c: check the whole batch and encode it into q; nothing is queued
 * on failure (the thread's message is set). */
int evs__batch_prepare(evs_store *s, evs__req *q, const char *stream, uint64_t expected,
		       const evs_event_in *events, size_t n);
/* batch.c: check event i's tags and producer (EVS_INVALID, the message
 * names the event and the tag). */
int evs__batch_check_tags(evs_store *s, size_t i, const evs_event_in *e);
/* Free what evs__batch_prepare allocated in q. */
void evs__batch_free(evs__req *q);

/* group.c: apply and commit a group (each request gets its outcome); true
 * if it wrote anything. */
bool evs__group_run(evs_store *s, evs__req *group);

#endif /* EVS_APPEND_INTERNAL_H */
