/*
 * config.c - the typed configuration table of evs-query: the rows of
 * EVSQ_CONFIG_MAP (evsq.h) handed to the shared option table
 * (store/base/opt.c), which does defaults, environment (EVS_QUERY_<NAME>),
 * flags, validation and --help for both daemons alike.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "evsq.h"
#include "opt.h"

_Static_assert((int)EVSQ_STR == (int)EVS__OPT_STR && (int)EVSQ_INT == (int)EVS__OPT_INT &&
		       (int)EVSQ_BOOL == (int)EVS__OPT_BOOL &&
		       (int)EVSQ_LEVEL == (int)EVS__OPT_LEVEL &&
		       (int)EVSQ_FORMAT == (int)EVS__OPT_FORMAT,
	       "evsq_option_type follows enum evs__opt_type");
_Static_assert((int)EVSQ_RUN == (int)EVS__OPT_RUN && (int)EVSQ_HELP == (int)EVS__OPT_HELP &&
		       (int)EVSQ_VERSION == (int)EVS__OPT_VERSION,
	       "evsq actions follow opt.h's");

static const evsq_option options[] = {
#define OPT(name, type, def, min, max, help) {#name, EVSQ_##type, def, min, max, help},
	EVSQ_CONFIG_MAP(OPT)
#undef OPT
};

/* Options where "" is a value of its own: www ("" serves no page). */
#define EMPTY_OK(name) \
	(offsetof(evsq_config, name) == offsetof(evsq_config, www) ? EVS__OPT_EMPTY_OK : 0u)

static const struct evs__opt rows[] = {
#define ROW(name, type, def, min, max, help) \
	{#name, EVSQ_##type, def, min, max, help, offsetof(evsq_config, name), EMPTY_OK(name)},
	EVSQ_CONFIG_MAP(ROW)
#undef ROW
};

#define N_OPTIONS (sizeof options / sizeof options[0])

static const struct evs__opt_table table = {"evs-query", "EVS_QUERY_", rows, N_OPTIONS};

const char *evsq_strerror(int code)
{
	switch (code) {
#define STR(name, value, text) \
	case value: return text;
		EVSQ_ERRNO_MAP(STR)
#undef STR
	}
	return "unknown error";
}

const evsq_option *evsq_options(size_t *count)
{
	*count = N_OPTIONS;
	return options;
}

static int code(int rc)
{
	return rc == EVS__OPT_OK ? EVSQ_OK : rc == EVS__OPT_NOMEM ? EVSQ_NOMEM : EVSQ_INVALID;
}

int evsq_config_init(evsq_config *cfg)
{
	char err[256];

	memset(cfg, 0, sizeof *cfg);
	if (evs__opt_defaults(&table, cfg, err, sizeof err)) {
		evsq_config_free(cfg);
		return EVSQ_NOMEM;
	}
	return EVSQ_OK;
}

void evsq_config_free(evsq_config *cfg)
{
	evs__opt_free(&table, cfg);
}

int evsq_config_set(evsq_config *cfg, const char *name, const char *value, char *err, size_t errlen)
{
	int i = evs__opt_find(&table, name, strlen(name));
	char origin[160];

	if (i < 0) {
		snprintf(err, errlen, "unrecognized option \"%s\"", name);
		return EVSQ_INVALID;
	}
	snprintf(origin, sizeof origin, "option \"%s\"", rows[i].name);
	return code(evs__opt_set(&table, cfg, (size_t)i, value, origin, err, errlen));
}

int evsq_config_load(evsq_config *cfg, int argc, char **argv, int *action, char *err, size_t errlen)
{
	return code(evs__opt_load(&table, cfg, argc, argv, action, err, errlen));
}

void evsq_config_help(FILE *f)
{
	evs__opt_help(&table, f);
}
