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

/* A statement that can run once over many events (rules_target.c
 * classifies, rules_set.c plans, setexec.c runs). */
#define SET_MAX_COLS 32
struct setform {
	bool ok;
	const char *why; /* when not ok */
	/* U, D: "WHERE col[i] = $param[i] AND ..."; I: the column list and,
	 * per column, the n of a bare "$n" value (0: an expression) */
	char col[SET_MAX_COLS][128];
	int param[SET_MAX_COLS];
	int nkey;
	size_t at;  /* U, D: offset of WHERE; I: of the '(' after VALUES */
	size_t end; /* I: after the VALUES' ')' */
	/* planned at session start */
	int keyparam[SET_MAX_COLS]; /* per primary-key column: its $n */
	bool int_key[SET_MAX_COLS]; /* an integer key column: canonical digits */
	char pname[32];
	Oid atypes[MAX_PARAMS]; /* array types of the parameters */
	Oid etypes[MAX_PARAMS]; /* ... and their element types */
	int fold;               /* 1 + its place in its table's fold (fold.c), 0: none */
};

struct stmt {
	char *sql; /* with $n (and RETURNING t.* appended for a temporal table) */
	char pname[32];
	struct param params[MAX_PARAMS];
	int nparams;
	int line;
	struct target target;
	struct setform set;
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
	const char *key;  /* set before sorting */
	uint64_t end_pos; /* not 0: it ends there (fold.c), not at the next capture */
	int64_t end_at;
};

/* A listed table and, when temporal, its history (history.c). */
struct htable {
	char *name;
	bool temporal; /* listed, not on a "current" line */
	bool active;   /* temporal and has a primary key (found at session start) */
	bool set_safe; /* has a primary key, rows independent (history.c set_safety) */
	int ncols, npk;
	int pk[32];           /* column indexes of the primary key, in key order */
	char *close_sql;      /* UPDATE closing versions left open by earlier batches */
	char *close_bulk_sql; /* the same during a bulk load (history_bulk.c) */
	char *copy_sql;       /* COPY s.t_history FROM STDIN */
	evs__buf pk_types;    /* NUL-separated type names of the key columns */
	evs__buf pk_names;    /* NUL-separated names of the key columns */
	struct fold *fold;    /* its foldable UPDATEs (fold.c), NULL: none */
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
	bool set_ok;  /* every statement runs set-based (rules_set.c) */
};

/* rules_exec.c: an event's payload, unpacked once for all its
 * statements; the zone and value buffers are reused from one event to
 * the next. bind_params fills pv (NULL = SQL NULL) for one statement. */
#include <msgpack.h>
struct unpacked {
	msgpack_zone zone;
	msgpack_object data, meta;
	evs__buf vals[MAX_PARAMS];
	const char *pv[MAX_PARAMS];
};
int evp__unpacked_init(struct unpacked *u);
void evp__unpacked_free(struct unpacked *u);
void evp__unpack_event(struct unpacked *u, const evs_event *ev);
int evp__bind_params(struct unpacked *u, const struct stmt *st, const evs_event *ev);
const struct rule *evp__find_rule(const evp_rules *rules, const evs_str *type);

/* rules_target.c: what each statement writes; RETURNING appended to the
 * writes of temporal tables; statements whose writes of a temporal table
 * cannot be captured refused (-1 with err). */
int evp__rules_targets(evp_rules *rs, char *err, size_t errlen);

/* rules_target.c: the first of n NUL-separated column names an UPDATE's
 * SET assigns (NULL: none). */
const char *evp__stmt_sets(const struct stmt *st, const char *names, int n);

/* history_write.c: the rows a statement of the event at (position,
 * recorded_at) returned; or one row of them. */
int evp__history_capture(evp_rules *rs, const struct stmt *st, const PGresult *res,
			 uint64_t position, int64_t recorded_at);
int evp__history_capture_row(evp_rules *rs, const struct stmt *st, const PGresult *res, int row,
			     uint64_t position, int64_t recorded_at);

/* fold.c: runs of UPDATEs of one row in one statement (planned after
 * rules_set.c, run by setexec.c) */
struct fold;
int evp__fold_plan(struct evp__run *r);
void evp__fold_free(struct fold *f);
const char *evp__fold_name(const struct fold *f);
int evp__fold_nparams(const struct fold *f);
int evp__fold_slot(const struct fold *f, int j, int k);
/* element types of its array slot g and of its key column k */
Oid evp__fold_etype(const struct fold *f, int g);
Oid evp__fold_ktype(const struct fold *f, int k);

/* history_write.c: the last capture of st's table ends at (position,
 * recorded_at): the versions between were written by a fold. */
void evp__history_end_last(evp_rules *rs, const struct stmt *st, uint64_t position,
			   int64_t recorded_at);

#endif
