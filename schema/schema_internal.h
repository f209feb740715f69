/*
 * schema_internal.h - what the files of schema/ share (evs__ names): the
 * compiled form of a schema document and the per-handle cache of the
 * store's registry. Not public. The msgpack reader is store/mpread.h.
 */
#ifndef EVS_SCHEMA_INTERNAL_H
#define EVS_SCHEMA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <lmdb.h>

#include "alloc.h"
#include "evstore.h"
#include "mpread.h"

/* ---- compiled schemas (compile.c) ---------------------------------------- */

enum { SC_NULL = 1, SC_BOOL = 2, SC_INT = 4, SC_NUM = 8, SC_STR = 16, SC_ARR = 32, SC_OBJ = 64 };
enum { SC_FMT_NONE, SC_FMT_DATETIME, SC_FMT_UUID, SC_FMT_EMAIL };

/* A scalar of an enum or const. */
typedef struct sc_lit {
	int kind; /* SC_NULL, SC_BOOL, SC_INT, SC_NUM, SC_STR */
	bool b;
	int64_t i; /* SC_INT */
	double d;  /* SC_NUM (and SC_INT as double) */
	char *s;   /* SC_STR */
	size_t len;
} sc_lit;

typedef struct sc_bound {
	bool set;
	double d;
} sc_bound;

struct sc_prop;

typedef struct sc_node {
	unsigned types; /* SC_* bits; 0 = any type */
	sc_lit *lits;   /* enum (or const: one literal) */
	size_t nlits;
	bool is_const;
	int64_t min_len, max_len; /* -1 = none; in code points */
	int format;
	sc_bound min, max, xmin, xmax;
	struct sc_prop *props; /* sorted by name bytes */
	size_t nprops, nrequired;
	bool additional;      /* additionalProperties: true or a schema */
	struct sc_node *addl; /* that schema, or NULL */
	struct sc_node *items;
	int64_t min_items, max_items;
} sc_node;

typedef struct sc_prop {
	char *name;
	size_t len;
	bool required;
	sc_node *node; /* NULL: any value (only named by required) */
} sc_prop;

enum { UP_RENAME, UP_ADD, UP_REMOVE, UP_CONVERT };
enum { CV_STRING, CV_INTEGER, CV_NUMBER, CV_MULTIPLY };

typedef struct up_step {
	int op;
	uint8_t *key; /* packed msgpack str of "field" / "from" */
	size_t key_len;
	uint8_t *key2; /* rename: packed "to" */
	size_t key2_len;
	uint8_t *val; /* add: the packed default */
	size_t val_len;
	int rule;
	int64_t factor;
} up_step;

enum { UPCAST_NONE = 0, UPCAST_STEPS = 1, UPCAST_HOOK = 2 };

struct evs_schema {
	char *type;
	size_t type_len;
	uint32_t version;
	sc_node *root;
	int upcast; /* UPCAST_* */
	up_step *steps;
	size_t nsteps;
	char *canon; /* canonical JSON text of the document */
	size_t canon_len;
	json_object *doc; /* the parsed document */
};

/* The compiler's state: where in the document it is, for messages. */
typedef struct evs__cc {
	char *err;
	size_t errlen;
	char path[256];
	size_t plen;
} evs__cc;

/* Report a document error at the current path; returns EVS_BAD_SCHEMA. */
int evs__cc_bad(evs__cc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Extend the path (fmt formats name); returns the length to restore. */
size_t evs__cc_push(evs__cc *c, const char *fmt, const char *name);
void evs__cc_pop(evs__cc *c, size_t old);
/* Compile one schema (nesting level depth) into *out. */
int evs__sc_compile(evs__cc *c, json_object *j, int depth, sc_node **out);
void evs__sc_node_free(sc_node *n);
/* steps.c: compile the document's "upcast" into sc. */
int evs__sc_compile_steps(evs__cc *c, evs_schema *sc, json_object *up);
/* A non-empty string member of o, or NULL. */
const char *evs__json_member_str(json_object *o, const char *name);

/* A violation or a malformed payload found by evs__schema_validate. */
typedef struct evs__verr {
	char path[256];
	const char *rule;
	char detail[192];
} evs__verr;

/* 0 valid, 1 violation (err filled), -1 not well-formed msgpack. */
int evs__schema_validate(const evs_schema *sc, const void *data, size_t len, evs__verr *err);
/* Is version `next` a compatible change of `prev` (adds only optional
 * properties)? If not, why says so. */
bool evs__schema_compatible(const evs_schema *prev, const evs_schema *next, char *why,
			    size_t whylen);
/* Pack a JSON value as msgpack into a malloc'ed buffer: 0, -1 out of
 * memory, -2 nested deeper than EVS_MAX_DEPTH. */
int evs__json_pack(json_object *v, uint8_t **out, size_t *len);
/* String formats, shared with tests. */
bool evs__fmt_datetime(const char *s, size_t n);
bool evs__fmt_uuid(const char *s, size_t n);
bool evs__fmt_email(const char *s, size_t n);

/* ---- the registry cache (cache.c) ------------------------------------- */

typedef struct evs__sc_type {
	char *name;
	size_t len;
	uint32_t nversions; /* versions 1..nversions */
	evs_schema **v;     /* v[k - 1] is version k */
} evs__sc_type;

typedef struct evs__sc_hook {
	struct evs__sc_hook *next;
	char *type;
	size_t len;
	uint32_t from;
	evs_upcast_fn fn;
	void *ctx;
} evs__sc_hook;

typedef struct evs__schemas {
	unsigned refs; /* under the store's schema_mu */
	uint64_t gen;
	int unknown;         /* enum evs_unknown_types */
	evs__sc_type *types; /* sorted by (name bytes, length) */
	size_t ntypes;
} evs__schemas;

/* A reference to the store's current registry, and its release. */
int evs__schemas_get(evs_store *s, evs__schemas **out);
void evs__schemas_put(evs_store *s, evs__schemas *c);
const evs__sc_type *evs__schemas_find(const evs__schemas *c, const char *type, size_t len);
/* A u64 of "meta" (0 when absent): 0 or an LMDB code. */
int evs__schema_meta_u64(evs_store *s, MDB_txn *txn, const char *key, uint64_t *out);
/* Split a registry key into its type's length and the version. */
bool evs__schema_split_key(const MDB_val *k, size_t *tlen, uint32_t *version);

#endif /* EVS_SCHEMA_INTERNAL_H */
