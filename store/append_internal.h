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
	bool fresh;  /* the id was made here (evs_uuid_v7): never stored */
} evs__slot;

/* One stream's part of a request (evs_append() has one, evs_append_ex()
 * several). Its events' tails are in the request's tails, in part order. */
typedef struct evs__part {
	const char *stream;
	size_t stream_len;
	uint64_t expected;
	size_t n;
	evs__slot *ev;
	uint32_t *type_versions; /* resolved by the schema registry, or NULL */
	evs_append_result res;   /* outcome, written by the leader */
} evs__part;

/* A checkpoint write of evs_append_ex(), name copied into the request. */
typedef struct evs__ckw {
	size_t off, len; /* the name in req->ck_names */
	uint64_t position;
	bool remove;
} evs__ckw;

typedef struct evs__req {
	struct evs__req *next;
	evs__part *parts; /* &one, or an array of nparts */
	size_t nparts;
	evs__part one;
	bool ex;  /* from evs_append_ex(): messages name the part */
	size_t n; /* events over all parts */
	evs__buf tails;
	evs__ckw *ck; /* checkpoint writes, in the order given */
	size_t nck;
	evs__buf ck_names;
	const evs_condition *cond; /* the caller's; it waits until done */
	/* A schema outcome, reported only if the batch is not a retry of one
	 * already stored (a retry must be answered the same way whatever the
	 * registry says now). */
	int schema_rc;
	char *schema_msg;
	/* outcome, written by the leader */
	int rc;
	uint64_t conflict; /* EVS_CONDITION_FAILED: the first matching position */
	char msg[512];
	bool taken; /* in a leader's group (under gc_mu) */
	bool done;  /* the outcome is written (atomic; append.c) */
} evs__req;

/* batch.c: check the whole batch and encode it into q (one part); nothing
 * is queued on failure (the thread's message is set). */
int evs__batch_prepare(evs_store *s, evs__req *q, const char *stream, uint64_t expected,
		       const evs_event_in *events, size_t n);
/* batch.c: check event i's tags and producer (EVS_INVALID, the message
 * names the event and the tag). */
int evs__batch_check_tags(evs_store *s, size_t i, const evs_event_in *e);
/* batch.c: the same for evs_append_ex(): every part, the checkpoint
 * writes (names copied) and the condition (checked, not copied). */
int evs__batch_prepare_ex(evs_store *s, evs__req *q, const evs_append_part *parts, size_t nparts,
			  const evs_checkpoint_write *cks, size_t ncks, const evs_condition *cond);
/* Free what evs__batch_prepare(_ex) allocated in q. */
void evs__batch_free(evs__req *q);

/* append.c: check and encode the request into q (zeroed; ex: the rules
 * of evs_append_ex(), else evs_append()'s for parts[0]), queue it and wait
 * until a leader (maybe this thread) answered it: q->rc, the parts'
 * results and q->conflict. The caller frees q (evs__batch_free). */
int evs__append_run(evs_store *s, evs__req *q, const evs_append_part *parts, size_t nparts,
		    const evs_checkpoint_write *cks, size_t ncks, const evs_condition *cond,
		    bool ex);

/* condition.c: does an event matching cond->fail_if exist after
 * cond->after in txn (which holds the earlier requests of the group)?
 * 0 with *conflict = 0 (the condition holds) or the first such position,
 * or an LMDB code. */
int evs__condition_check(evs_store *s, MDB_txn *txn, const evs_condition *cond, uint64_t *conflict);
/* condition.c: check a condition's query (types, tags, counts); EVS_OK or
 * EVS_INVALID with the thread's message set. */
int evs__condition_valid(evs_store *s, const evs_condition *cond);

/* jckw.c: checkpoint writes in a journal record (docs/FORMAT.md, "The
 * journal"): encode the group's into buf (appended), and apply a record's
 * (the bytes after its events) in txn. */
int evs__jckw_encode(evs__buf *buf, const evs__req *group);
int evs__jckw_apply(evs_store *s, MDB_txn *txn, const uint8_t *p, const uint8_t *end);
/* jckw.c: apply q's checkpoint writes in txn (the group's commit). */
int evs__ckw_apply(evs_store *s, MDB_txn *txn, const evs__req *q);

/* group.c: apply and commit a group (each request gets its outcome); true
 * if it wrote anything. */
bool evs__group_run(evs_store *s, evs__req *group);

#endif /* EVS_APPEND_INTERNAL_H */
