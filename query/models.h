/*
 * models.h - what models.c (the /models answers) and catalog.c (the
 * declared models and the catalog cache of their tables) share; private
 * to those two files.
 */
#ifndef EVSQ_MODELS_H
#define EVSQ_MODELS_H

#include <pthread.h>

#include "internal.h"

struct evsq__column {
	char *name;    /* as in the catalog */
	char *quoted;  /* format('%I', name) */
	char *literal; /* quote_literal(name) */
	char *type;    /* format_type() */
	int key_pos;   /* place in the primary key, -1 if not in it */
};

/* What the catalog says about one table; immutable once built. */
struct evsq__tinfo {
	int refs;    /* under evsq__models.mu */
	char *qname; /* "schema"."table", quoted by PostgreSQL */
	struct evsq__column *cols;
	int ncols;
	int *pk; /* indices into cols, in key order */
	int npk;
};

struct evsq__table {
	char *name;               /* as declared (without a "schema." prefix) */
	struct evsq__tinfo *info; /* cached catalog, or NULL */
};

struct evsq__model {
	char *name; /* projection (checkpoint) name */
	char *schema;
	struct evsq__table *tables;
	int ntables;
};

struct evsq__models {
	pthread_mutex_t mu;
	struct evsq__model *m;
	int n;
};

/* The table's catalog entry with a reference (give it back with
 * evsq__tinfo_release): EVSQ__T_OK; EVSQ__T_MISSING, not in the database;
 * EVSQ__T_FAILED, *status and body set (503, ...). */
enum { EVSQ__T_OK, EVSQ__T_MISSING, EVSQ__T_FAILED };
int evsq__tinfo_get(const evsq__ctx *ctx, const struct evsq__model *m, struct evsq__table *t,
		    struct evsq__tinfo **out, unsigned *status, evs__buf *body);
void evsq__tinfo_release(evsq__models *ms, struct evsq__tinfo *ti);
/* Drop a cache entry found out of date (if it is still the cached one). */
void evsq__tinfo_forget(evsq__models *ms, struct evsq__table *t, struct evsq__tinfo *ti);

#endif
