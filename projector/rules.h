/*
 * rules.h - a loaded projection file, shared by rules.c (parsing it) and
 * rules_exec.c (preparing and running its statements). Private to those
 * two files.
 */
#ifndef EVSPROJ_RULES_H
#define EVSPROJ_RULES_H

#include "internal.h"

#define MAX_PARAMS 100
#define MAX_SEGS   16

enum field {
	F_STREAM,
	F_VERSION,
	F_POSITION,
	F_TYPE,
	F_TYPE_VERSION,
	F_RECORDED_AT,
	F_OCCURRED_AT,
	F_EVENT_ID,
	F_CORRELATION_ID,
	F_CAUSATION_ID,
	F_DATA,
	F_METADATA
};

struct seg {
	char *key; /* NULL: an array index */
	long index;
};

struct param {
	char *name;
	enum field field;
	struct seg segs[MAX_SEGS];
	int nsegs;
};

/* What a statement writes (rules_target.c): kind 'I', 'U', 'D' of an
 * INSERT, UPDATE, DELETE of one of the projection's tables, else 0. */
struct target {
	char kind;
	int table; /* index into evp_rules.tables_v, -1: none of them */
};

struct stmt {
	char *sql; /* with $n (and RETURNING t.* appended for a temporal table) */
	char pname[32];
	struct param params[MAX_PARAMS];
	int nparams;
	int line;
	struct target target;
};

struct rule {
	char *type;
	struct stmt *stmts;
	int nstmts;
};

/* A captured row (history_write.c). */
struct hrow {
	uint64_t pos;
	int64_t at;
	uint32_t seq;
	bool del;
	size_t off; /* key then row in htable.data */
	uint32_t keylen, rowlen;
	const char *key; /* set before sorting */
};

/* A listed table and, when temporal, its history (history.c). */
struct htable {
	char *name;
	bool temporal; /* listed, not on a "current" line */
	bool active;   /* temporal and has a primary key (found at session start) */
	int ncols, npk;
	int pk[32];         /* column indexes of the primary key, in key order */
	char *close_sql;    /* UPDATE closing versions left open by earlier batches */
	char *copy_sql;     /* COPY s.t_history FROM STDIN */
	evs__buf pk_types;  /* NUL-separated type names of the key columns */
	/* versions captured in this batch (RETURNING rows) */
	struct hrow *rows;
	size_t nrows, cap;
	evs__buf data; /* keys and rows as COPY text */
};

struct evp_rules {
	char *name;
	char *schema;  /* "schema NAME": unqualified tables live there */
	char *tables;  /* "tables a b c", as written */
	char *current; /* "current a b": tables without history, as written */
	struct htable *tables_v;
	int ntables;
	struct rule *rules;
	int nrules;
	int nprepared;
	uint32_t seq; /* captures in this batch, in order */
};

/* rules_target.c: what each statement writes; RETURNING appended to the
 * writes of temporal tables; statements whose writes of a temporal table
 * cannot be captured refused (-1 with err). */
int evp__rules_targets(evp_rules *rs, char *err, size_t errlen);

/* history.c: the rows a statement of the event at (position, recorded_at)
 * returned. */
int evp__history_capture(evp_rules *rs, const struct stmt *st, const PGresult *res,
			 uint64_t position, int64_t recorded_at);

#endif
