/*
 * cli.h - internal interfaces of the evs command-line tool.
 *
 * Not installed and not part of libevstore: cross-file names of the tool
 * are prefixed cli_ (the library owns evs_ and evs__).
 *
 * Conventions of the tool
 *
 *   Exit status: CLI_EXIT_OK (0) on success, CLI_EXIT_USAGE (2) for a bad
 *   command line, CLI_EXIT_CONFLICT (3) when an append's expected version
 *   does not match, CLI_EXIT_FAIL (1) for every other error.
 *
 *   Messages go to stderr in PostgreSQL's style: "evs: " then lowercase
 *   text without a trailing period, names quoted:
 *     evs: could not open store "x": permission denied
 *
 *   Memory: the tool is a short-lived process; allocation failures print
 *   "evs: out of memory" and exit (cli_xmalloc and friends). Every input
 *   is bounded: a line of JSON at most CLI_MAX_LINE bytes.
 */
#ifndef EVS_CLI_H
#define EVS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>
#include <msgpack.h>

#include "base64.h"
#include "buf.h"
#include "evstore.h"
#include "mpjson.h"
#include "rfc3339.h"

#define CLI_EXIT_OK       0
#define CLI_EXIT_FAIL     1
#define CLI_EXIT_USAGE    2
#define CLI_EXIT_CONFLICT 3

#define CLI_MAX_LINE      ((size_t)64 << 20)  /* bytes in one line of input */
#define CLI_JSON_DEPTH    (EVS_MAX_DEPTH + 2) /* envelope + payload nesting */
#define CLI_DEFAULT_STORE "./evstore-data"

#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ---------------------------------------------------------------------
 * util.c: messages, memory, number parsing
 * ------------------------------------------------------------------- */

void cli_error(const char *fmt, ...) CLI_PRINTF(1, 2); /* "evs: ..." */
void cli_hint(const char *fmt, ...) CLI_PRINTF(1, 2);  /* "hint: ..." */
void *cli_xmalloc(size_t n);
void *cli_xrealloc(void *p, size_t n);
void *cli_xcalloc(size_t n, size_t size);
char *cli_xstrndup(const char *s, size_t n);

/* Decimal unsigned integer: digits only, no sign, no spaces, no overflow. */
int cli_parse_u64(const char *s, uint64_t *out);
/* Decimal signed integer: optional '-', then digits, no overflow. */
int cli_parse_i64(const char *s, int64_t *out);
/* Byte count: an integer with an optional binary suffix k, M, G, T. */
int cli_parse_size(const char *s, uint64_t *out);

/* Flush stdout and report a write error (returns CLI_EXIT_FAIL then). */
int cli_finish_output(int status);

/* ---------------------------------------------------------------------
 * progress.c: a progress line on stderr for long work (only on a
 * terminal, never with --quiet; at most 5 redraws a second). Every
 * function accepts NULL, which cli_progress_start returns when there is
 * nothing to show.
 * ------------------------------------------------------------------- */

struct cli_progress;

void cli_progress_quiet(void); /* --quiet: never draw */
/* "what: N of TOTAL events (P%), R/s, ETA m:ss"; total 0 if not known. */
struct cli_progress *cli_progress_start(const char *what, uint64_t total);
void cli_progress_set_total(struct cli_progress *p, uint64_t total);
void cli_progress_add(struct cli_progress *p, uint64_t events);
/* Draw the final figures (if a line was shown) and free. */
void cli_progress_done(struct cli_progress *p);

/* ---------------------------------------------------------------------
 * args.c: option tables, getopt_long driven by them, --help text
 * ------------------------------------------------------------------- */

struct cli_option {
	const char *name;    /* long name, without "--"; NULL ends a table */
	const char *metavar; /* NULL: the option takes no argument */
	const char *help;
};

struct cli_command;

/* What the dispatcher hands a command. */
struct cli_ctx {
	const struct cli_command *cmd;
	const char *store_path; /* --store, else $EVS_STORE, else default */
	int argc;               /* positional arguments */
	char **argv;
};

typedef int (*cli_opt_fn)(struct cli_ctx *ctx, void *state, int index, const char *value);

struct cli_command {
	const char *name;
	const char *synopsis;             /* after "evs NAME " */
	const char *summary;              /* one line for "evs --help" */
	const char *description;          /* paragraph for "evs NAME --help" */
	const struct cli_option *options; /* NULL: none */
	int min_args, max_args;           /* positional arguments */
	size_t state_size;                /* the command's option state */
	cli_opt_fn on_option;             /* called for each option, by index */
	int (*run)(struct cli_ctx *ctx, void *state);
	/* instead of run: called with the store open read-only (arg is the
	 * option state), through cli_with_store */
	int (*run_store)(evs_store *store, struct cli_ctx *ctx, void *arg);
	void (*cleanup)(void *state); /* optional: free what options kept */
};

extern const struct cli_command *const cli_commands[];

/* Parse argv (argv[0] is the command name) against cmd's table, then run
 * it. Returns the exit status. */
int cli_run_command(const struct cli_command *cmd, const char *store_path, int argc, char **argv);
void cli_command_help(FILE *f, const struct cli_command *cmd);
/* Report a bad option value: 'invalid value "x" for option --name: why'. */
int cli_bad_value(const char *option, const char *value, const char *why);

/* ---------------------------------------------------------------------
 * storeopen.c: opening the store with messages
 * ------------------------------------------------------------------- */

enum cli_open_mode { CLI_OPEN_READ, CLI_OPEN_WRITE, CLI_OPEN_CREATE };

/* Open ctx->store_path; on failure print why and return NULL. */
evs_store *cli_open_store(const struct cli_ctx *ctx, enum cli_open_mode mode,
			  const evs_options *base);
/* Print 'evs: <what>: <library message>' for a failed call on store. */
void cli_store_error(evs_store *store, int rc, const char *what, ...) CLI_PRINTF(3, 4);

/* The common body of a command on the store: open it (opts NULL = the
 * defaults), return fn's exit status after closing the store and flushing
 * stdout (a failed write fails the command). */
typedef int (*cli_store_fn)(evs_store *store, struct cli_ctx *ctx, void *arg);
int cli_with_store(struct cli_ctx *ctx, enum cli_open_mode mode, const evs_options *opts,
		   cli_store_fn fn, void *arg);
/* evs_head(), reporting a failure: EVS_OK or the library's code. */
int cli_store_head(evs_store *store, evs_store_info *head);

/* ---------------------------------------------------------------------
 * timefmt.c: times on the command line (RFC 3339 is the base's rfc3339.h)
 * ------------------------------------------------------------------- */

/* RFC 3339 or an integer number of nanoseconds. */
int cli_time_parse_arg(const char *s, int64_t *ns, const char **why);

/* ---------------------------------------------------------------------
 * jbuf.c: the tool's output buffer is the base's evs__buf (buf.h) and
 * the JSON text the base's writer (mpjson.h); these are the values the
 * base does not write.
 * ------------------------------------------------------------------- */

void jb_u64(evs__buf *b, uint64_t v);
void jb_uuid(evs__buf *b, const uint8_t id[16]); /* quoted */
void jb_time(evs__buf *b, int64_t ns);           /* quoted */
/* Write the buffer to f; -1 on a write error. A buffer that ran out of
 * memory prints "evs: out of memory" and exits (the tool's rule). */
int jb_write(const evs__buf *b, FILE *f);

/* ---------------------------------------------------------------------
 * json_mp.c: JSON <-> msgpack
 * ------------------------------------------------------------------- */

/* Parse one JSON text of n bytes (no NUL needed). On error returns NULL
 * and writes a message (with the column) into err. */
json_object *cli_json_parse(const char *text, size_t n, char *err, size_t errlen);
/* Pack a JSON value as msgpack: integers as ints (smallest encoding),
 * other numbers as float64, strings, booleans, null, arrays, maps. On
 * error returns -1 with a message in err. */
int cli_json_to_msgpack(json_object *v, msgpack_packer *pk, char *err, size_t errlen);
/* Whether JSON text converts back to exactly the msgpack bytes p[0..n). */
bool cli_json_matches_msgpack(const char *text, size_t tlen, const void *p, size_t n);

/* ---------------------------------------------------------------------
 * lines.c: bounded line reader
 * ------------------------------------------------------------------- */

struct cli_lines {
	FILE *f;
	char *buf;
	size_t len, cap;      /* buffered bytes */
	size_t start;         /* first unconsumed byte */
	unsigned long lineno; /* number of the line last returned */
	bool eof;
};

void cli_lines_init(struct cli_lines *r, FILE *f);
void cli_lines_free(struct cli_lines *r);
/* Next non-blank line, without its "\n" or "\r\n", NUL-terminated:
 * 1 and (*line, *len) set, 0 at end of input, -1 after printing an error
 * (line too long, NUL byte, read error). The line is valid until the
 * next call. */
int cli_lines_next(struct cli_lines *r, char **line, size_t *len);

/* ---------------------------------------------------------------------
 * event_json.c: events as JSON Lines and back
 * ------------------------------------------------------------------- */

/* One event as a JSON object line (with "\n") appended to b; -1 after
 * printing an error if its stream or type is not UTF-8. */
int cli_event_to_json(evs__buf *b, const evs_event *ev);

/* An event read from a JSON line, owning its memory. */
struct cli_event {
	uint64_t position, version;
	char *stream, *type;
	uint32_t type_version;
	uint8_t id[16];
	int64_t recorded_at, occurred_at;
	uint8_t correlation_id[16], causation_id[16];
	msgpack_sbuffer data, metadata;
	char **tags; /* ntags distinct valid tags (cli_tags_check) */
	size_t ntags;
	char *producer; /* NULL = none */
	unsigned seen;  /* CLI_F_* bits of the fields present */
};

enum {
	CLI_F_POSITION = 1u << 0,
	CLI_F_STREAM = 1u << 1,
	CLI_F_VERSION = 1u << 2,
	CLI_F_ID = 1u << 3,
	CLI_F_TYPE = 1u << 4,
	CLI_F_TYPE_VERSION = 1u << 5,
	CLI_F_RECORDED_AT = 1u << 6,
	CLI_F_OCCURRED_AT = 1u << 7,
	CLI_F_CORRELATION_ID = 1u << 8,
	CLI_F_CAUSATION_ID = 1u << 9,
	CLI_F_METADATA = 1u << 10,
	CLI_F_DATA = 1u << 11,
	CLI_F_PRODUCER = 1u << 12,
	CLI_F_TAGS = 1u << 13
};

/* Fields an appended event may have; an imported event may have all. */
#define CLI_F_APPEND                                                                             \
	(CLI_F_ID | CLI_F_TYPE | CLI_F_TYPE_VERSION | CLI_F_OCCURRED_AT | CLI_F_CORRELATION_ID | \
	 CLI_F_CAUSATION_ID | CLI_F_METADATA | CLI_F_DATA | CLI_F_PRODUCER | CLI_F_TAGS)
#define CLI_F_ALL 0x3fffu
#define CLI_F_IMPORT_REQUIRED \
	(CLI_F_POSITION | CLI_F_STREAM | CLI_F_VERSION | CLI_F_ID | CLI_F_TYPE | CLI_F_RECORDED_AT)

void cli_event_init(struct cli_event *e);
void cli_event_free(struct cli_event *e);
/* Fill e from a JSON object; fields outside `allowed` are refused. A
 * missing data or metadata becomes the empty map. On error returns -1
 * with a message in err. */
int cli_event_from_json(struct cli_event *e, json_object *obj, unsigned allowed, char *err,
			size_t errlen);
/* Parse a JSON payload object (data or metadata) into a packed buffer. */
int cli_payload_from_json(msgpack_sbuffer *out, json_object *v, const char *field, char *err,
			  size_t errlen);

/* The tags and producer of e as evs_event_in wants them (views into e;
 * tags needs room for EVS_MAX_TAGS). */
void cli_event_tags_in(const struct cli_event *e, const char **tags);
/* Set e's tags to a copy of tags[0..n) (checked by the caller), sorted. */
void cli_event_set_tags(struct cli_event *e, const char *const *tags, size_t n);

/* Print events of an iterator-like scan to stdout; shared by read and
 * export. See scan.c. */
struct cli_scan {
	const char *stream; /* NULL: all events */
	uint64_t from;
	int direction;
	const evs_filter *filter; /* all events only */
	const char *const *types; /* stream: types kept (client side) */
	size_t ntypes;
	uint64_t limit;                /* 0 = no limit */
	bool upcast;                   /* events in their type's latest schema version */
	struct cli_progress *progress; /* counts each event read; may be NULL */
	const char *what;              /* cli_scan_store: the progress line's name */
};
int cli_scan_print(evs_store *store, const struct cli_scan *scan);
/* The whole of read and export: open the store read-only, print the scan,
 * close it, finish stdout. With progress_what (forward scans of all
 * events), a progress line counts the events up to the head. */
int cli_scan_store(struct cli_ctx *ctx, struct cli_scan *scan, const char *progress_what);

/* ---------------------------------------------------------------------
 * Commands (cmd_*.c)
 * ------------------------------------------------------------------- */

extern const struct cli_command cli_cmd_init;
extern const struct cli_command cli_cmd_append;
extern const struct cli_command cli_cmd_read;
extern const struct cli_command cli_cmd_tail;
extern const struct cli_command cli_cmd_head;
extern const struct cli_command cli_cmd_stat;
extern const struct cli_command cli_cmd_as_of;
extern const struct cli_command cli_cmd_export;
extern const struct cli_command cli_cmd_import;
extern const struct cli_command cli_cmd_verify;
extern const struct cli_command cli_cmd_state;
extern const struct cli_command cli_cmd_migrate; /* issue 5: PostgreSQL */
extern const struct cli_command cli_cmd_project;
extern const struct cli_command cli_cmd_schema;
extern const struct cli_command cli_cmd_relay; /* issue 11: evs-relay's sinks */
extern const struct cli_command cli_cmd_pm;    /* issue 14: process managers */

/* Shared option helpers of read and tail: --type and --prefix lists. */
struct cli_strlist {
	const char **items;
	size_t n;
};
void cli_strlist_add(struct cli_strlist *l, const char *s);
void cli_strlist_free(struct cli_strlist *l);

/* An integer option of at least `min` (0 or 1) into *out: CLI_EXIT_OK, or
 * the usage error of cli_bad_value ("expected a non-negative integer" or
 * "expected a positive integer"). */
int cli_option_u64(const char *option, const char *value, uint64_t min, uint64_t *out);

/* --sync full|meta|none into *out (an enum evs_sync). */
int cli_option_sync(const char *option, const char *value, int *out);

/* Tags and producers, checked with the same words wherever they come in
 * (event JSON, --tag, --producer): why s (len bytes) is not a valid tag
 * (max EVS_MAX_TAG) or producer (max EVS_MAX_NAME), or NULL. */
const char *cli_name_problem(const char *s, size_t len, size_t max);
/* Add tag to l (its items are not copied): CLI_EXIT_OK, or the usage
 * error of cli_bad_value (invalid, a duplicate, more than EVS_MAX_TAGS). */
int cli_tag_option(struct cli_strlist *l, const char *option, const char *tag);

/* The event selection of read and tail: --from N, --type, --prefix,
 * --category, --tag, --correlation. */
struct cli_select {
	bool has_from;
	uint64_t from;
	struct cli_strlist types, prefixes, categories, tags;
	bool has_correlation;
	uint8_t correlation_id[16];
};
enum cli_select_opt {
	CLI_SELECT_FROM,
	CLI_SELECT_TYPE,
	CLI_SELECT_PREFIX,
	CLI_SELECT_CATEGORY,
	CLI_SELECT_TAG,
	CLI_SELECT_CORRELATION
};
int cli_select_option(struct cli_select *sel, enum cli_select_opt which, const char *value);
/* The filter of all events that keeps the selection (a view into sel). */
evs_filter cli_select_filter(const struct cli_select *sel);
void cli_select_free(struct cli_select *sel);
/* A command's cleanup when its state begins with a struct cli_select. */
void cli_select_cleanup(void *state);

#endif /* EVS_CLI_H */
