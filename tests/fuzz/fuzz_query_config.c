/*
 * fuzz_query_config.c - libFuzzer target over evs-query's configuration
 * table (query/config.c): evsq_config_set and evsq_config_load.
 *
 * Input: a mode byte, an err-buffer length byte, then NUL-separated
 * strings (at most MAX_TOKENS):
 *
 *   mode 'a'  the strings are argv[1..] for evsq_config_load
 *   mode 'e'  (name, value) pairs become EVS_QUERY_<NAME> variables for
 *             evsq_config_load (no flags), removed again afterwards
 *   other     (name, value) pairs for evsq_config_set, one after another
 *
 * Properties: nothing crashes or leaks; every refusal fills err (non-empty,
 * NUL-terminated within errlen, nothing written past errlen); a refused
 * set changes nothing; an accepted set stores exactly the value given
 * (INT: strtol of it, within the table's bounds; STR: an equal copy);
 * after every call each INT option is within its bounds and each STR
 * option is set; a successful evsq_config_load of flags gives the same
 * configuration as the same (name, value) pairs given to evsq_config_set.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evsq.h"
#include "fuzz.h"

#define MAX_TOKENS 32
#define ERR_MAX    256
#define ERR_FILL   0xa5

static const size_t offsets[] = {
#define OFF(name, type, def, min, max, help) offsetof(evsq_config, name),
	EVSQ_CONFIG_MAP(OFF)
#undef OFF
};

#define N_OPTIONS (sizeof offsets / sizeof offsets[0])

static const evsq_option *table(void)
{
	size_t n;
	const evsq_option *o = evsq_options(&n);

	CHECK(n == N_OPTIONS);
	return o;
}

static long *int_field(evsq_config *cfg, size_t i)
{
	return (long *)((char *)cfg + offsets[i]);
}

static char **str_field(evsq_config *cfg, size_t i)
{
	return (char **)((char *)cfg + offsets[i]);
}

/* The option a name means ('-' and '_' alike), or -1. */
static int lookup(const char *name, size_t len)
{
	const evsq_option *o = table();

	for (size_t i = 0; i < N_OPTIONS; i++) {
		size_t j;

		if (strlen(o[i].name) != len)
			continue;
		for (j = 0; j < len; j++)
			if ((name[j] == '-' ? '_' : name[j]) != o[i].name[j])
				break;
		if (j == len)
			return (int)i;
	}
	return -1;
}

static void check_bounds(evsq_config *cfg)
{
	const evsq_option *o = table();

	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (o[i].type != EVSQ_STR)
			CHECK(*int_field(cfg, i) >= o[i].min && *int_field(cfg, i) <= o[i].max);
		else
			CHECK(*str_field(cfg, i) != NULL);
	}
}

static bool same(evsq_config *a, evsq_config *b)
{
	const evsq_option *o = table();

	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (o[i].type != EVSQ_STR) {
			if (*int_field(a, i) != *int_field(b, i))
				return false;
		} else if (strcmp(*str_field(a, i), *str_field(b, i))) {
			return false;
		}
	}
	return true;
}

static void copy(evsq_config *dst, evsq_config *src)
{
	const evsq_option *o = table();

	memcpy(dst, src, sizeof *dst);
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (o[i].type == EVSQ_STR) {
			*str_field(dst, i) = strdup(*str_field(src, i));
			CHECK(*str_field(dst, i) != NULL);
		}
	}
}

static void err_reset(char *err)
{
	memset(err, ERR_FILL, ERR_MAX);
	err[0] = '\0';
}

/* Nothing past errlen; a refusal says why. */
static void err_check(const char *err, size_t errlen, int rc)
{
	for (size_t i = errlen; i < ERR_MAX; i++)
		CHECK((unsigned char)err[i] == ERR_FILL);
	if (rc != EVSQ_OK) {
		CHECK(err[0] != '\0');
		CHECK(memchr(err, '\0', errlen) != NULL);
	}
}

/* evsq_config_set, checked against what it promises. */
static int set_checked(evsq_config *cfg, const char *name, const char *value, char *err,
		       size_t errlen)
{
	evsq_config before;
	int rc, i;

	copy(&before, cfg);
	err_reset(err);
	rc = evsq_config_set(cfg, name, value, err, errlen);
	err_check(err, errlen, rc);
	CHECK(rc == EVSQ_OK || rc == EVSQ_INVALID);
	i = lookup(name, strlen(name));
	if (rc != EVSQ_OK) {
		CHECK(same(cfg, &before));
	} else {
		const evsq_option *o;

		CHECK(i >= 0);
		o = &table()[i];
		if (o->type == EVSQ_INT)
			CHECK(*int_field(cfg, (size_t)i) == strtol(value, NULL, 10));
		else if (o->type == EVSQ_STR)
			CHECK(strcmp(*str_field(cfg, (size_t)i), value) == 0);
	}
	check_bounds(cfg);
	evsq_config_free(&before);
	return rc;
}

static void mode_set(char **tok, int n, char *err, size_t errlen)
{
	evsq_config cfg;

	CHECK(evsq_config_init(&cfg) == EVSQ_OK);
	check_bounds(&cfg);
	for (int k = 0; k + 1 < n; k += 2)
		set_checked(&cfg, tok[k], tok[k + 1], err, errlen);
	evsq_config_free(&cfg);
	evsq_config_free(&cfg); /* again: pointers were reset */
	evsq_config_free(NULL);
}

/* The flags the way evsq.h describes them, as evsq_config_set calls;
 * false when they are not a valid command line (an option given twice,
 * or --help / --version). */
static bool ref_flags(evsq_config *cfg, char **tok, int n, char *err)
{
	bool seen[N_OPTIONS] = {false};

	for (int a = 0; a < n; a++) {
		const char *arg = tok[a], *eq, *value;
		char name[4096];
		size_t len;

		if (strncmp(arg, "--", 2) || !strcmp(arg, "--help") || !strcmp(arg, "--version"))
			return false;
		arg += 2;
		eq = strchr(arg, '=');
		len = eq ? (size_t)(eq - arg) : strlen(arg);
		if (eq)
			value = eq + 1;
		else if (a + 1 < n)
			value = tok[++a];
		else
			return false;
		CHECK(len < sizeof name);
		memcpy(name, arg, len);
		name[len] = '\0';
		if (lookup(name, len) < 0 || seen[lookup(name, len)] ||
		    evsq_config_set(cfg, name, value, err, ERR_MAX))
			return false;
		seen[lookup(name, len)] = true;
	}
	return true;
}

static void mode_argv(char **tok, int n, char *err, size_t errlen)
{
	char *argv[MAX_TOKENS + 2];
	evsq_config cfg, ref;
	int action = -1;
	int rc;

	argv[0] = "evs-query";
	memcpy(argv + 1, tok, (size_t)n * sizeof *tok);
	argv[n + 1] = NULL;
	CHECK(evsq_config_init(&cfg) == EVSQ_OK);
	err_reset(err);
	rc = evsq_config_load(&cfg, n + 1, argv, &action, err, errlen);
	err_check(err, errlen, rc);
	CHECK(rc == EVSQ_OK || rc == EVSQ_INVALID);
	check_bounds(&cfg);

	CHECK(evsq_config_init(&ref) == EVSQ_OK);
	if (ref_flags(&ref, tok, n, err)) {
		CHECK(rc == EVSQ_OK && action == EVSQ_RUN);
		CHECK(same(&cfg, &ref));
	} else {
		CHECK(rc != EVSQ_OK || action != EVSQ_RUN);
	}
	evsq_config_free(&ref);
	evsq_config_free(&cfg);
}

static void mode_env(char **tok, int n, char *err, size_t errlen)
{
	static char vars[MAX_TOKENS / 2][4096 + 16];
	char names[MAX_TOKENS / 2][4096 + 16];
	int nvars = 0;
	evsq_config cfg;
	char *argv[] = {"evs-query", NULL};
	int action = -1;
	int rc;

	for (int k = 0; k + 1 < n; k += 2) {
		size_t j, p;

		/* names only of letters, digits and '_' (what a shell could export) */
		for (j = 0; tok[k][j]; j++)
			if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
				    tok[k][j]))
				break;
		if (tok[k][j] != '\0' || j == 0 || j + 11 + strlen(tok[k + 1]) >= sizeof vars[0])
			continue;
		p = (size_t)snprintf(names[nvars], sizeof names[0], "EVS_QUERY_%s", tok[k]);
		for (j = 0; j < p; j++)
			if (names[nvars][j] >= 'a' && names[nvars][j] <= 'z')
				names[nvars][j] = (char)(names[nvars][j] - 'a' + 'A');
		snprintf(vars[nvars], sizeof vars[0], "%s=%s", names[nvars], tok[k + 1]);
		CHECK(putenv(vars[nvars]) == 0);
		nvars++;
	}
	CHECK(evsq_config_init(&cfg) == EVSQ_OK);
	err_reset(err);
	rc = evsq_config_load(&cfg, 1, argv, &action, err, errlen);
	err_check(err, errlen, rc);
	CHECK(rc == EVSQ_OK || rc == EVSQ_INVALID);
	CHECK(action == EVSQ_RUN);
	check_bounds(&cfg);
	evsq_config_free(&cfg);
	for (int k = 0; k < nvars; k++)
		unsetenv(names[k]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *tok[MAX_TOKENS], err[ERR_MAX];
	size_t errlen, i;
	int n = 0;
	uint8_t mode;

	if (size < 2)
		return 0;
	mode = data[0];
	errlen = 2 + data[1] % (ERR_MAX - 1); /* 2..ERR_MAX */
	data += 2;
	size -= 2;
	if (size >= 4096)
		return 0;
	buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	/* NUL-separated strings; each an exact-size copy for ASan */
	for (i = 0; i <= size && n < MAX_TOKENS;) {
		size_t len = strlen(buf + i);

		tok[n] = malloc(len + 1);
		CHECK(tok[n] != NULL);
		memcpy(tok[n], buf + i, len + 1);
		n++;
		i += len + 1;
	}
	if (mode == 'a')
		mode_argv(tok, n, err, errlen);
	else if (mode == 'e')
		mode_env(tok, n, err, errlen);
	else
		mode_set(tok, n, err, errlen);
	for (int k = 0; k < n; k++)
		free(tok[k]);
	free(buf);
	return 0;
}
