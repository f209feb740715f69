/*
 * opt.h: the one typed option table of the daemons (evs-projector,
 * evs-query). Each option is a row (name, type, default, bounds, help)
 * and a field of the program's configuration struct; the same rows drive
 * defaults, the environment (PREFIX + NAME in upper case, '-' as '_'),
 * the flags (--name VALUE, --name=VALUE; '-' and '_' alike), validation
 * and --help, so none of them can disagree with another.
 *
 * Order: defaults, then the environment, then the flags (a flag wins).
 * Refused with a message in PostgreSQL's voice and EVS__OPT_INVALID (the
 * programs exit 2): an unknown option, an option given twice on the
 * command line, a missing value, an empty value (unless "" is the
 * default or the row says EVS__OPT_EMPTY_OK), a number out of its bounds
 * or not a number, a word not among the type's words. Values are C
 * strings from argv and environ, so NUL-free by construction.
 *
 * Fields: EVS__OPT_STR is a char * the table owns (strdup'd; freed by
 * evs__opt_free); every other type is a long (BOOL 0/1, LEVEL 0..3 as
 * evstore.h's EVS_LOG_*, FORMAT enum evs__log_format).
 */
#ifndef EVS_BASE_OPT_H
#define EVS_BASE_OPT_H

#include <stddef.h>
#include <stdio.h>

enum evs__opt_type {
	EVS__OPT_STR,    /* text */
	EVS__OPT_INT,    /* decimal integer in min..max */
	EVS__OPT_BOOL,   /* true/false, yes/no, on/off, 1/0; a bare --flag is true */
	EVS__OPT_LEVEL,  /* error, warning, info, debug (or 0..3) */
	EVS__OPT_FORMAT, /* text or json (log lines) */
};

#define EVS__OPT_EMPTY_OK 1u /* "" is a value of its own (say what it means in help) */

struct evs__opt {
	const char *name; /* without "--" */
	int type;         /* enum evs__opt_type */
	const char *def;  /* default, as it would be written on the command line */
	long min, max;    /* EVS__OPT_INT bounds */
	const char *help;
	size_t offset; /* of the field in the configuration struct */
	unsigned flags;
};

struct evs__opt_table {
	const char *program;    /* "evs-query", for --help */
	const char *env_prefix; /* "EVS_QUERY_" */
	const struct evs__opt *opts;
	size_t n; /* at most EVS__OPT_MAX */
};

#define EVS__OPT_MAX 128

enum { EVS__OPT_OK = 0, EVS__OPT_INVALID = -1, EVS__OPT_NOMEM = -2 };
/* What the command line asks for besides the options. */
enum { EVS__OPT_RUN, EVS__OPT_HELP, EVS__OPT_VERSION };

/* Index of the row a name means ('-' and '_' alike), or -1. */
int evs__opt_find(const struct evs__opt_table *t, const char *name, size_t len);
/* Every field to its default (cfg zeroed first by the caller). */
int evs__opt_defaults(const struct evs__opt_table *t, void *cfg, char *err, size_t errlen);
/* Free the STR fields and set them to NULL; cfg NULL is fine. */
void evs__opt_free(const struct evs__opt_table *t, void *cfg);
/* Validate value for row i and store it; `origin` names where it came
 * from in a refusal ("option --port", "EVS_QUERY_PORT"). A refused value
 * changes nothing. */
int evs__opt_set(const struct evs__opt_table *t, void *cfg, size_t i, const char *value,
		 const char *origin, char *err, size_t errlen);
/* The environment, then argv[1..]; *action tells --help or --version
 * (the rest of the command line is then not read). */
int evs__opt_load(const struct evs__opt_table *t, void *cfg, int argc, char **argv, int *action,
		  char *err, size_t errlen);
/* The options' part of --help: flag, help, type, default, variable. */
void evs__opt_help(const struct evs__opt_table *t, FILE *f);

#endif
