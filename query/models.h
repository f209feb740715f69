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
	char kind;     /* EVSQ__V_*: how an answer writes its values */
};

/* How a column's values are selected and written in answers
 * (model_row.c), by its type (a domain's base type). */
enum {
	EVSQ__V_NUMBER = 'n', /* integers, numeric: PostgreSQL's digits */
	EVSQ__V_DOUBLE = 'd', /* float4/8: the base's number policy */
	EVSQ__V_BOOL = 'b',
	EVSQ__V_TIME = 't',   /* timestamptz: RFC 3339, UTC, microseconds, Z */
	EVSQ__V_JSON = 'j',   /* json/jsonb: compact, doubles by the policy */
	EVSQ__V_STRING = 's', /* text, varchar, char, name */
	EVSQ__V_OTHER = 'o'   /* anything else: to_jsonb(), compact */
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

/* ---- paths (models.c) ---- */

/* The model and table a path after "/models/" names, by the longest
 * names (names may hold '/'): EVSQ__P_MODEL (only a model: *t NULL),
 * EVSQ__P_TABLE (*rest at what follows the table: "" or "/..."), or 404
 * with the body (body NULL: none written). */
enum { EVSQ__P_MODEL, EVSQ__P_TABLE };
int evsq__models_find(const evsq__models *ms, const char *p, struct evsq__model **m,
		      struct evsq__table **t, const char **rest, evs__buf *body);
/* "KEY/history": true with the key's length. */
bool evsq__history_key(const char *p, size_t *len);
/* The table's catalog entry with a reference when it is cached, else
 * NULL (never reads the catalog: for the event loops). */
struct evsq__tinfo *evsq__tinfo_cached(evsq__models *ms, struct evsq__table *t);

/* ---- shared by models.c and models_time.c (model_table.c) ---- */

/* 503: the declared table is not in the database. */
unsigned evsq__table_missing(evs__buf *body, const struct evsq__model *m,
			     const struct evsq__table *t);

/* {"projection":..,"table":..,"position":P (the checkpoint in row, col
 * of r; 0 when NULL) */
void evsq__put_head(evs__buf *b, const struct evsq__model *m, const struct evsq__table *t,
		    const PGresult *r, int row, int col);
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

/* ---- one key's answers (models_time.c): the row now, then, or its
 * history; the one way they are written, by the workers and the
 * batcher alike ---- */
enum { EVSQ__K_NOW, EVSQ__K_THEN, EVSQ__K_HISTORY };

/* GET /models/{p}/{t}/{key} (NOW), ?as_of=|at_position= (THEN, w),
 * /history?after=&limit= (HISTORY, a): the status, with the body. */
unsigned evsq__models_key(const evsq__ctx *ctx, const struct evsq__model *m, struct evsq__table *t,
			  const char *key, int what, const struct evsq__when *w,
			  const evsq__args *a, evs__buf *body);
/* The answer from a key statement's result: columns from col are the
 * checkpoint, found, the validity (THEN, HISTORY) and the row of table
 * ri (the table itself for NOW, its history else); rows from row (one,
 * or up to limit versions of HISTORY, next_after when there are more). */
void evsq__key_json(evs__buf *b, const struct evsq__model *m, const struct evsq__table *t,
		    const struct evsq__tinfo *ri, const char *key, int what,
		    const struct evsq__when *w, const PGresult *r, int row, int col, int64_t limit);
/* 404: no row with that key (then / ever). */
unsigned evsq__key_missing(evs__buf *body, const struct evsq__model *m, const struct evsq__table *t,
			   const char *key, int what, const struct evsq__when *w);

/* ---- rows in answers (model_row.c) ---- */

/* ", expr" per column of ti (a history: but the validity columns) read
 * from alias, each as evsq__row_json writes it. */
void evsq__row_select(evs__buf *sql, const struct evsq__tinfo *ti, const char *alias, bool history);
/* {"column":value,...} from the result's columns col.. of row. */
void evsq__row_json(evs__buf *b, const struct evsq__tinfo *ti, bool history, const PGresult *r,
		    int row, int col);
/* ", from_position, to_position, from_at, to_at" of alias, times in the
 * one format; written as "valid_from_position":..,"valid_to_at":.. */
void evsq__validity_select(evs__buf *sql, const char *alias);
void evsq__validity_json(evs__buf *b, const PGresult *r, int row, int col);
/* Whether a history table has the four validity columns. */
bool evsq__has_validity(const struct evsq__tinfo *hi);

/* Append to sql the FROM source of a listing: the table (now) or its
 * rows then (parameter $param); 0 or the status of a refusal. */
unsigned evsq__models_source(const evsq__ctx *ctx, const struct evsq__model *m,
			     struct evsq__table *t, const struct evsq__tinfo *ti,
			     const struct evsq__when *w, int param, evs__buf *sql, evs__buf *body);
#endif
