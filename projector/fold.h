/*
 * fold.h - the plan of a fold (fold.c) and its statement (fold_sql.c).
 * Private to those two files.
 */
#ifndef EVSPROJ_FOLD_H
#define EVSPROJ_FOLD_H

#include "rules.h"

struct fcol {
	char *q;    /* quote_ident(name) */
	char *type; /* format_type */
	unsigned oid;
	int typmod;
	bool notnull, plain; /* plain: base type, not generated */
	int mode;            /* see fold_sql() */
};

/* one SET item of a foldable statement */
struct fitem {
	int col;
	int op;         /* 1 "c = E", 2 "c = c + E", 3 "c = c - E" */
	size_t e, elen; /* E in st->sql */
};

struct fstmt {
	struct stmt *st;
	struct fitem it[SET_MAX_COLS];
	int nit;
	int slot[MAX_PARAMS]; /* its $k+1 is the fold's array slot[k] (shared by type) */
};

struct fold {
	char pname[32];
	struct fstmt *fs;
	int nfs, nparams;        /* nparams: array slots */
	Oid stype[MAX_PARAMS];   /* their array types */
	Oid etype[MAX_PARAMS];   /* ... and element types */
	Oid ktype[SET_MAX_COLS]; /* element types of the key columns */
};

/* fold_sql.c: the fold statement of table t (tq, hq: it and its
 * history, quoted) */
void evp__fold_sql(evs__buf *b, const struct htable *t, const char *tq, const char *hq,
		   const struct fold *fo, const struct fcol *cols, int ncols);

#endif
