/*
 * opt.c: the typed option table (see opt.h): one parser for flags and
 * environment, one validator, one --help, shared by the daemons so that
 * they refuse the same mistakes with the same words.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "opt.h"

static const char *const levels[] = {"error", "warning", "info", "debug"};
static const char *const formats[] = {"text", "json"};
static const char *const truths[] = {"true", "yes", "on", "1"};
static const char *const falsehoods[] = {"false", "no", "off", "0"};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static int word(const char *const *words, size_t n, const char *v)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(words[i], v))
			return (int)i;
	return -1;
}

int evs__opt_find(const struct evs__opt_table *t, const char *name, size_t len)
{
	for (size_t i = 0; i < t->n; i++) {
		const char *o = t->opts[i].name;
		size_t j;

		if (strlen(o) != len)
			continue;
		for (j = 0; j < len; j++)
			if ((name[j] == '-' ? '_' : name[j]) != (o[j] == '-' ? '_' : o[j]))
				break;
		if (j == len)
			return (int)i;
	}
	return -1;
}

/* Decimal, optional '-', no spaces or '+', no overflow. */
static bool parse_long(const char *v, long *out)
{
	const char *d = v[0] == '-' ? v + 1 : v;
	char *end;

	if (*d < '0' || *d > '9')
		return false;
	errno = 0;
	*out = strtol(v, &end, 10);
	return errno == 0 && *end == '\0';
}

/* The number a value means for row o, or why not. */
static const char *parse(const struct evs__opt *o, const char *v, long *num)
{
	int k;

	switch (o->type) {
	case EVS__OPT_INT:
		if (!parse_long(v, num) || *num < o->min || *num > o->max)
			return "not an integer in range";
		return NULL;
	case EVS__OPT_BOOL:
		if ((k = word(truths, N_OF(truths), v)) >= 0)
			*num = 1;
		else if ((k = word(falsehoods, N_OF(falsehoods), v)) >= 0)
			*num = 0;
		else
			return "not a boolean (true, false, yes, no, on, off, 1 or 0)";
		return NULL;
	case EVS__OPT_LEVEL:
		if ((k = word(levels, N_OF(levels), v)) < 0 &&
		    !(parse_long(v, num) && *num >= 0 && *num <= 3))
			return "not a log level (error, warning, info, debug or 0 to 3)";
		if (k >= 0)
			*num = k;
		return NULL;
	case EVS__OPT_FORMAT:
		if ((k = word(formats, N_OF(formats), v)) < 0)
			return "not a log format (text or json)";
		*num = k;
		return NULL;
	}
	return NULL;
}

int evs__opt_set(const struct evs__opt_table *t, void *cfg, size_t i, const char *value,
		 const char *origin, char *err, size_t errlen)
{
	const struct evs__opt *o = &t->opts[i];
	void *field = (char *)cfg + o->offset;
	const char *why;
	long num = 0;

	if (!value[0] && o->def[0] && !(o->flags & EVS__OPT_EMPTY_OK)) {
		snprintf(err, errlen, "invalid value \"\" for %s: empty", origin);
		return EVS__OPT_INVALID;
	}
	if (o->type == EVS__OPT_STR) {
		char *s = strdup(value);

		if (!s) {
			snprintf(err, errlen, "out of memory");
			return EVS__OPT_NOMEM;
		}
		free(*(char **)field);
		*(char **)field = s;
		return EVS__OPT_OK;
	}
	if ((why = parse(o, value, &num))) {
		if (o->type == EVS__OPT_INT)
			snprintf(err, errlen,
				 "invalid value \"%s\" for %s: not an integer in %ld..%ld", value,
				 origin, o->min, o->max);
		else
			snprintf(err, errlen, "invalid value \"%s\" for %s: %s", value, origin,
				 why);
		return EVS__OPT_INVALID;
	}
	*(long *)field = num;
	return EVS__OPT_OK;
}

int evs__opt_defaults(const struct evs__opt_table *t, void *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < t->n; i++) {
		int rc = evs__opt_set(t, cfg, i, t->opts[i].def, "the default", err, errlen);

		if (rc)
			return rc;
	}
	return EVS__OPT_OK;
}

void evs__opt_free(const struct evs__opt_table *t, void *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < t->n; i++) {
		if (t->opts[i].type == EVS__OPT_STR) {
			char **p = (char **)((char *)cfg + t->opts[i].offset);

			free(*p);
			*p = NULL;
		}
	}
}

/* PREFIX + NAME in upper case, '-' as '_'. */
static void env_name(const struct evs__opt_table *t, const struct evs__opt *o, char *out,
		     size_t len)
{
	snprintf(out, len, "%s%s", t->env_prefix, o->name);
	for (char *p = out; *p; p++)
		*p = *p == '-' ? '_' : *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
}

/* "--port", from the table's spelling. */
static void flag_name(const struct evs__opt *o, char *out, size_t len)
{
	snprintf(out, len, "--%s", o->name);
	for (char *p = out + 2; *p; p++)
		if (*p == '_')
			*p = '-';
}

/* The environment fills only what the command line leaves unset, so a
 * bad variable can neither block --help/--version nor an overriding flag. */
static int load_env(const struct evs__opt_table *t, void *cfg, const bool *given, char *err,
		    size_t errlen)
{
	for (size_t i = 0; i < t->n; i++) {
		char env[128];
		const char *v;
		int rc;

		if (given[i])
			continue;
		env_name(t, &t->opts[i], env, sizeof env);
		if ((v = getenv(env)) && (rc = evs__opt_set(t, cfg, i, v, env, err, errlen)))
			return rc;
	}
	return EVS__OPT_OK;
}

int evs__opt_load(const struct evs__opt_table *t, void *cfg, int argc, char **argv, int *action,
		  char *err, size_t errlen)
{
	const char *value[EVS__OPT_MAX] = {NULL};
	bool seen[EVS__OPT_MAX] = {false};
	size_t order[EVS__OPT_MAX], n = 0;
	int rc, a;

	*action = EVS__OPT_RUN;
	if (t->n > EVS__OPT_MAX) {
		snprintf(err, errlen, "too many options in the table of %s", t->program);
		return EVS__OPT_INVALID;
	}
	/* First the shape of the command line: a help request anywhere wins
	 * (but "-h" as the value of a flag, --store -h, is that value), then
	 * every flag is known, given once, and has its value. */
	for (a = 1; a < argc; a++) {
		const char *arg = argv[a];
		int k;

		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			*action = EVS__OPT_HELP;
			return EVS__OPT_OK;
		}
		if (!strcmp(arg, "--version")) {
			*action = EVS__OPT_VERSION;
			return EVS__OPT_OK;
		}
		if (!strncmp(arg, "--", 2) && !strchr(arg, '=') &&
		    (k = evs__opt_find(t, arg + 2, strlen(arg + 2))) >= 0 &&
		    t->opts[k].type != EVS__OPT_BOOL)
			a++;
	}
	for (a = 1; a < argc; a++) {
		const char *arg = argv[a], *eq;
		char flag[140];
		size_t len;
		int k;

		if (strncmp(arg, "--", 2) || !arg[2]) {
			snprintf(err, errlen, "unexpected argument \"%s\"", arg);
			return EVS__OPT_INVALID;
		}
		eq = strchr(arg + 2, '=');
		len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
		if ((k = evs__opt_find(t, arg + 2, len)) < 0) {
			snprintf(err, errlen, "unrecognized option \"%.*s\"", (int)(len + 2), arg);
			return EVS__OPT_INVALID;
		}
		flag_name(&t->opts[k], flag, sizeof flag);
		if (seen[k]) {
			snprintf(err, errlen, "option \"%s\" given more than once", flag);
			return EVS__OPT_INVALID;
		}
		seen[k] = true;
		order[n++] = (size_t)k;
		if (eq)
			value[k] = eq + 1;
		else if (t->opts[k].type == EVS__OPT_BOOL)
			value[k] = "true";
		else if (a + 1 < argc)
			value[k] = argv[++a];
		else {
			snprintf(err, errlen, "option \"%s\" requires a value", flag);
			return EVS__OPT_INVALID;
		}
	}
	if ((rc = load_env(t, cfg, seen, err, errlen)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		size_t k = order[i];
		char origin[160], flag[140];

		flag_name(&t->opts[k], flag, sizeof flag);
		snprintf(origin, sizeof origin, "option %s", flag);
		if ((rc = evs__opt_set(t, cfg, k, value[k], origin, err, errlen)))
			return rc;
	}
	return EVS__OPT_OK;
}

void evs__opt_help(const struct evs__opt_table *t, FILE *f)
{
	static const char *const metavars[] = {"TEXT", "N", "[=BOOL]", "LEVEL", "FORMAT"};
	static const char *const kinds[] = {"text", "integer", "boolean",
					    "error, warning, info or debug", "text or json"};

	for (size_t i = 0; i < t->n; i++) {
		const struct evs__opt *o = &t->opts[i];
		char flag[160], env[128];

		flag_name(o, flag, sizeof flag);
		env_name(t, o, env, sizeof env);
		snprintf(flag + strlen(flag), sizeof flag - strlen(flag), "%s%s",
			 o->type == EVS__OPT_BOOL ? "" : " ", metavars[o->type]);
		fprintf(f, "  %-26s %s\n", flag, o->help);
		fprintf(f, "  %-26s %s", "", kinds[o->type]);
		if (o->type == EVS__OPT_INT)
			fprintf(f, " %ld..%ld", o->min, o->max);
		fprintf(f, ", default \"%s\", $%s\n", o->def, env);
	}
	fprintf(f, "  %-26s %s\n", "-h, --help", "show this help and exit");
	fprintf(f, "  %-26s %s\n", "--version", "show the version and exit");
}
