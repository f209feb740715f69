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
	char *name;                  /* as declared (without a "schema." prefix) */
	struct evsq__tinfo *info;    /* cached catalog, or NULL */
	struct evsq__table *history; /* its history "<name>_history" (C1), or
					NULL in a history entry itself */
	bool current_only;           /* declared "current": the projector keeps no history */
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

/* ---- shared by models.c and models_time.c (model_table.c) ---- */

/* 503: the declared table is not in the database. */
unsigned evsq__table_missing(evs__buf *body, const struct evsq__model *m,
			     const struct evsq__table *t);

/* {"projection":..,"table":..,"position":P (of row 0, column 0) */
void evsq__put_head(evs__buf *b, const struct evsq__model *m, const struct evsq__table *t,
		    const PGresult *r);
/*
 * Run a table's statement (sql is freed here). 0: it ran, *r holds the
 * result and ti is still held. EVSQ__RETRY: the table changed under the
 * cached description on the first attempt (forgotten and released):
 * describe it again. Otherwise the HTTP status of the answer written to
 * body, ti released.
 */
#define EVSQ__RETRY (-1)
int evsq__run_table_query(const evsq__ctx *ctx, const struct evsq__model *m, struct evsq__table *t,
			  struct evsq__tinfo *ti, evs__buf *sql, int np, const char *const *params,
			  int attempt, PGresult **r, evs__buf *body);
/* The catalog of a table served by key (one primary-key column): 0 with
 * *out held, else the status of the answer (503 missing, 400 no or a
 * composite key). */
unsigned evsq__key_info(const evsq__ctx *ctx, const struct evsq__model *m, struct evsq__table *t,
			struct evsq__tinfo **out, evs__buf *body);

/* The time or position a request asks about (models_time.c). */
enum { EVSQ__W_NOW, EVSQ__W_AS_OF, EVSQ__W_AT };
struct evsq__when {
	int kind;
	const char *raw; /* the request's text */
	char value[64];  /* the statement parameter: timestamptz text or digits */
};

/* as_of / at_position of a request: 0, or the status of a refusal (400:
 * both, malformed; at_position past the checkpoint: the wait's answer,
 * 409 projection_behind). */
unsigned evsq__when_read(const evsq__ctx *ctx, const char *projection, const evsq__args *a,
			 struct evsq__when *w, evs__buf *body);
/* ,"as_of":T or ,"at_position":N (nothing for now). */
void evsq__put_when(evs__buf *b, const struct evsq__when *w);
/* One version: "valid_from_position":..,"valid_to_position":..,
 * "valid_from_at":..,"valid_to_at":..,"row":{..} from columns col (row
 * JSON) to col+4 of the result. */
void evsq__version_json(evs__buf *b, const PGresult *r, int row, int col);
/* GET /models/{p}/{t}/{key}?as_of=|at_position= */
unsigned evsq__models_key_then(const evsq__ctx *ctx, const struct evsq__model *m,
			       struct evsq__table *t, const char *key, const struct evsq__when *w,
			       evs__buf *body);
/* Append to sql the FROM source of a listing: the table (now) or its
 * rows then (parameter $param); 0 or the status of a refusal. */
unsigned evsq__models_source(const evsq__ctx *ctx, const struct evsq__model *m,
			     struct evsq__table *t, const struct evsq__tinfo *ti,
			     const struct evsq__when *w, int param, evs__buf *sql, evs__buf *body);
/* GET /models/{p}/{t}/{key}/history?after=&limit= */
unsigned evsq__models_history(const evsq__ctx *ctx, const struct evsq__model *m,
			      struct evsq__table *t, const char *key, const evsq__args *a,
			      evs__buf *body);

#endif
