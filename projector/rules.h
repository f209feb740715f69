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

struct stmt {
	char *sql; /* with $n */
	char pname[32];
	struct param params[MAX_PARAMS];
	int nparams;
};

struct rule {
	char *type;
	struct stmt *stmts;
	int nstmts;
};

struct evp_rules {
	char *name;
	char *schema; /* "schema NAME": unqualified tables live there */
	char *tables; /* "tables a b c", as written */
	struct rule *rules;
	int nrules;
	int nprepared;
};

#endif
