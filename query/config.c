/*
 * config.c - the typed configuration table of evs-query: defaults,
 * environment (EVS_QUERY_<NAME>), flags, validation.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evsq.h"

static const evsq_option options[] = {
#define OPT(name, type, def, min, max, help) {#name, EVSQ_##type, def, min, max, help},
	EVSQ_CONFIG_MAP(OPT)
#undef OPT
};

#define N_OPTIONS (sizeof options / sizeof options[0])

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

/* Address of an option's field, by table index (same order as the struct). */
static void *field(evsq_config *cfg, size_t i)
{
	size_t k = 0;

#define FIELD(name, type, def, min, max, help) \
	if (k++ == i)                          \
		return &cfg->name;
	EVSQ_CONFIG_MAP(FIELD)
#undef FIELD
	return NULL;
}

static int find(const char *name, size_t len)
{
	size_t i, j;

	for (i = 0; i < N_OPTIONS; i++) {
		const char *o = options[i].name;

		if (strlen(o) != len)
			continue;
		for (j = 0; j < len; j++) {
			char c = name[j] == '-' ? '_' : name[j];

			if (c != o[j])
				break;
		}
		if (j == len)
			return (int)i;
	}
	return -1;
}

static int set_index(evsq_config *cfg, size_t i, const char *value, char *err, size_t errlen)
{
	const evsq_option *o = &options[i];
	void *f = field(cfg, i);

	if (o->type == EVSQ_INT) {
		char *end;
		long v;

		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || end == value || *end || v < o->min || v > o->max) {
			snprintf(
				err, errlen,
				"invalid value \"%s\" for \"%s\": expected an integer from %ld to %ld",
				value, o->name, o->min, o->max);
			return EVSQ_INVALID;
		}
		*(long *)f = v;
	} else {
		char *s = strdup(value);

		if (!s) {
			snprintf(err, errlen, "out of memory");
			return EVSQ_NOMEM;
		}
		free(*(char **)f);
		*(char **)f = s;
	}
	return EVSQ_OK;
}

int evsq_config_init(evsq_config *cfg)
{
	size_t i;
	char err[256];

	memset(cfg, 0, sizeof *cfg);
	for (i = 0; i < N_OPTIONS; i++) {
		if (set_index(cfg, i, options[i].def, err, sizeof err)) {
			evsq_config_free(cfg);
			return EVSQ_NOMEM;
		}
	}
	return EVSQ_OK;
}

void evsq_config_free(evsq_config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < N_OPTIONS; i++) {
		if (options[i].type == EVSQ_STR) {
			char **p = field(cfg, i);

			free(*p);
			*p = NULL;
		}
	}
}

int evsq_config_set(evsq_config *cfg, const char *name, const char *value, char *err, size_t errlen)
{
	int i = find(name, strlen(name));

	if (i < 0) {
		snprintf(err, errlen, "unknown option \"%s\"", name);
		return EVSQ_INVALID;
	}
	return set_index(cfg, (size_t)i, value, err, errlen);
}

int evsq_config_load(evsq_config *cfg, int argc, char **argv, bool *help, char *err, size_t errlen)
{
	size_t i;
	int a, rc;

	*help = false;
	for (i = 0; i < N_OPTIONS; i++) {
		char env[64];
		const char *v;
		size_t j;

		snprintf(env, sizeof env, "EVS_QUERY_%s", options[i].name);
		for (j = 0; env[j]; j++)
			env[j] = (char)toupper((unsigned char)env[j]);
		v = getenv(env);
		if (v && (rc = set_index(cfg, i, v, err, errlen)))
			return rc;
	}
	for (a = 1; a < argc; a++) {
		const char *arg = argv[a], *eq, *value;
		int k;

		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			*help = true;
			return EVSQ_OK;
		}
		if (strncmp(arg, "--", 2)) {
			snprintf(err, errlen, "unexpected argument \"%s\"", arg);
			return EVSQ_INVALID;
		}
		arg += 2;
		eq = strchr(arg, '=');
		k = find(arg, eq ? (size_t)(eq - arg) : strlen(arg));
		if (k < 0) {
			snprintf(err, errlen, "unknown option \"--%.*s\"",
				 (int)(eq ? (size_t)(eq - arg) : strlen(arg)), arg);
			return EVSQ_INVALID;
		}
		if (eq) {
			value = eq + 1;
		} else {
			if (a + 1 >= argc) {
				snprintf(err, errlen, "option \"--%s\" needs a value", arg);
				return EVSQ_INVALID;
			}
			value = argv[++a];
		}
		if ((rc = set_index(cfg, (size_t)k, value, err, errlen)))
			return rc;
	}
	return EVSQ_OK;
}
