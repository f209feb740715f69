/*
 * setexec.h - a batch laid out for set-based execution: shared by
 * setexec.c (rounds, groups, the pipeline) and setfold.c (the groups of
 * a fold: their arrays and their rows). Private to those two files.
 */
#ifndef EVSPROJ_SETEXEC_H
#define EVSPROJ_SETEXEC_H

#include "rules.h"

struct inst {
	uint32_t ev;    /* index in the batch */
	uint32_t round; /* from 1 */
	const struct stmt *st;
	int sid;         /* statement order in the projection */
	const void *grp; /* its group: st, or its table's fold */
	int gsid;        /* sid, or for a fold -1 - table */
	size_t vals;     /* its values in the value buffer */
	size_t key;      /* its key in the key buffer */
	uint32_t keylen;
	uint32_t slot; /* its key's slot: a number per (table, key) */
};

struct slot {
	size_t key; /* in the key buffer; 0: empty (offset 0 is never a key) */
	uint32_t keylen, round;
	bool run; /* the last instance on it was folded (fold.c) */
};

struct setrun {
	struct inst *in;
	size_t n, cap;
	evs__buf vals, keys;
	struct slot *slots;
	size_t nslots;
	struct evp__array arr[MAX_PARAMS];
};

/* setfold.c: send the group of a fold (instances [a, b)); its rows as
 * versions of their events. */
int evp__set_send_fold(struct evp__run *r, struct setrun *s, size_t a, size_t b);
int evp__set_capture_fold(struct evp__run *r, struct setrun *s, size_t a, size_t b,
			  const PGresult *res);

#endif
