/*
 * config.c - evs-relay's configuration file.
 *
 * Format: lines of "key = value", grouped in sections "[sink NAME]", one
 * per sink; '#' starts a comment line; blank lines are ignored; the value
 * is the text after '=' with spaces around it trimmed (no quoting: a value
 * is taken as it is). Keys of a sink, in one table (name, kind of value,
 * bounds, repeatable) that drives parsing and validation:
 *
 *   kind           webhook | nats | rabbitmq                 (required)
 *   url            http(s)://... | nats://host:port | amqp://user:pass@host:port/vhost
 *                                                             (required)
 *   start          earliest | latest: where a new sink begins (default earliest)
 *   stream-prefix  deliver only streams starting with it (repeatable, up to 32)
 *   type           deliver only events of this type (repeatable, up to 32)
 *   category       deliver only streams of this category: the id up to the
 *                  store's category separator, '-' (repeatable, up to 32)
 *   tag            deliver only events carrying this tag (repeatable: all
 *                  of them, up to 16)
 *   batch          events per delivery, 1..1000 (default 1; webhooks: >1
 *                  posts a JSON array, application/cloudevents-batch+json)
 *   timeout-ms     one attempt, 100..600000 (default 20000)
 *   retry-min-ms   first backoff, 1..600000 (default 500)
 *   retry-max-ms   longest backoff and Retry-After honoured, 1..86400000
 *                  (default 60000)
 *   checkpoint-ms  longest time between checkpoint writes, 0..60000 (default 100)
 *   secret         webhook: whsec_ + base64 of 24..64 bytes (repeatable, up
 *                  to 4: every one signs, for rotation; at least one)
 *   subject        nats: subject template (default evstore.{category}.{type})
 *   stream         nats: the JetStream stream expected to hold the subjects
 *                  (required; the relay checks it exists)
 *   exchange       rabbitmq: exchange template (default evstore)
 *   routing-key    rabbitmq: routing key template (default {category}.{type})
 *
 * Templates: {type} the event type, {stream} the stream id, {category} the
 * stream id up to its first '-' (all of it without one).
 *
 * Refused with "FILE:LINE: ..." (evs-relay exits 2): a line that is
 * neither, an unknown section or key, a key outside a section, a key given
 * twice (unless repeatable), an empty value, a NUL byte, a number out of
 * bounds or not a number, a word not among its words, a duplicate sink
 * name, a bad secret, a missing required key, no sink at all.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "utf8.h"
#include "relay.h"

#define MAX_LINE 4096
#define MAX_FILE ((size_t)1 << 20)

enum vt { V_STR, V_INT, V_KIND, V_START, V_LIST };

struct key {
	const char *name;
	int vt;
	long min, max;
	size_t off;   /* field (V_LIST: the array; count follows at cnt) */
	size_t cnt;   /* V_LIST: offset of the size_t count */
	size_t limit; /* V_LIST: entries at most */
};

#define F(x) offsetof(rly_sink_cfg, x)

static const struct key keys[] = {
	{"kind", V_KIND, 0, 0, F(kind), 0, 0},
	{"url", V_STR, 0, 0, F(url), 0, 0},
	{"start", V_START, 0, 0, F(start_latest), 0, 0},
	{"stream-prefix", V_LIST, 0, 0, F(prefixes), F(nprefixes), RLY_MAX_FILTERS},
	{"type", V_LIST, 0, 0, F(types), F(ntypes), RLY_MAX_FILTERS},
	{"category", V_LIST, 0, 0, F(categories), F(ncategories), RLY_MAX_FILTERS},
	{"tag", V_LIST, 0, 0, F(tags), F(ntags), EVS_MAX_TAGS},
	{"batch", V_INT, 1, RLY_MAX_BATCH, F(batch), 0, 0},
	{"timeout-ms", V_INT, 100, 600000, F(timeout_ms), 0, 0},
	{"retry-min-ms", V_INT, 1, 600000, F(retry_min_ms), 0, 0},
	{"retry-max-ms", V_INT, 1, 86400000, F(retry_max_ms), 0, 0},
	{"checkpoint-ms", V_INT, 0, 60000, F(checkpoint_ms), 0, 0},
	{"secret", V_LIST, 0, 0, F(secrets), F(nsecrets), RLY_MAX_SECRETS},
	{"subject", V_STR, 0, 0, F(subject), 0, 0},
	{"stream", V_STR, 0, 0, F(stream), 0, 0},
	{"exchange", V_STR, 0, 0, F(exchange), 0, 0},
	{"routing-key", V_STR, 0, 0, F(routing_key), 0, 0},
};

#define NKEYS (sizeof keys / sizeof keys[0])

struct parse {
	const char *path;
	unsigned line;
	char *err;
	size_t errlen;
	bool seen[NKEYS];
};

static int fail(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parse *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (p->line)
		snprintf(p->err, p->errlen, "%s:%u: %s", p->path, p->line, msg);
	else
		snprintf(p->err, p->errlen, "%s: %s", p->path, msg);
	return -1;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = 0;
	return s;
}

static bool secret_ok(const char *v, const char **why)
{
	evs__buf raw = {0};
	bool ok;

	if (strncmp(v, "whsec_", 6) != 0) {
		*why = "a secret starts with \"whsec_\"";
		return false;
	}
	if (evs__base64_decode(&raw, v + 6, strlen(v + 6)) != 0) {
		*why = "the text after \"whsec_\" is not base64";
		evs__buf_free(&raw);
		return false;
	}
	ok = raw.len >= 24 && raw.len <= 64;
	if (!ok)
		*why = "a secret is 24 to 64 bytes (base64 of them after \"whsec_\")";
	evs__buf_free(&raw);
	return ok;
}

static int set_key(struct parse *p, rly_sink_cfg *s, const char *name, char *v)
{
	const struct key *k = NULL;
	size_t i;
	char *copy;

	for (i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].name, name)) {
			k = &keys[i];
			break;
		}
	if (k == NULL)
		return fail(p, "unknown key \"%s\" in sink \"%s\"", name, s->name);
	if (k->vt != V_LIST && p->seen[i])
		return fail(p, "key \"%s\" given twice in sink \"%s\"", name, s->name);
	p->seen[i] = true;
	if (v[0] == 0)
		return fail(p, "key \"%s\" has an empty value", name);
	char *field = (char *)s + k->off;
	switch (k->vt) {
	case V_INT: {
		char *end;
		long n;
		errno = 0;
		n = strtol(v, &end, 10);
		if (v[0] < '0' || v[0] > '9' || *end || errno)
			return fail(p, "key \"%s\": \"%s\" is not a number", name, v);
		if (n < k->min || n > k->max)
			return fail(p, "key \"%s\": %ld is out of range (%ld to %ld)", name, n,
				    k->min, k->max);
		*(long *)field = n;
		return 0;
	}
	case V_KIND:
		if (!strcmp(v, "webhook"))
			s->kind = RLY_WEBHOOK;
		else if (!strcmp(v, "nats"))
			s->kind = RLY_NATS;
		else if (!strcmp(v, "rabbitmq"))
			s->kind = RLY_AMQP;
		else
			return fail(p, "key \"kind\": \"%s\" is not webhook, nats or rabbitmq", v);
		return 0;
	case V_START:
		if (strcmp(v, "earliest") && strcmp(v, "latest"))
			return fail(p, "key \"start\": \"%s\" is not earliest or latest", v);
		s->start_latest = !strcmp(v, "latest");
		return 0;
	case V_LIST: {
		size_t *cnt = (size_t *)((char *)s + k->cnt);
		const char *why;
		if (*cnt >= k->limit)
			return fail(p, "key \"%s\" given more than %zu times", name, k->limit);
		if (!strcmp(name, "secret") && !secret_ok(v, &why))
			return fail(p, "key \"secret\": %s", why);
		if (strcmp(name, "secret") &&
		    (strlen(v) > EVS_MAX_NAME || !evs__utf8_text((const uint8_t *)v, strlen(v))))
			return fail(p, "key \"%s\": not 1 to %d bytes of UTF-8", name,
				    EVS_MAX_NAME);
		for (size_t j = 0; j < *cnt; j++)
			if (!strcmp(((char **)field)[j], v))
				return fail(p, "key \"%s\": \"%s\" given twice", name, v);
		if ((copy = strdup(v)) == NULL)
			return fail(p, "out of memory");
		((char **)field)[(*cnt)++] = copy;
		return 0;
	}
	default:
		if ((copy = strdup(v)) == NULL)
			return fail(p, "out of memory");
		*(char **)field = copy;
		return 0;
	}
}

static void defaults(rly_sink_cfg *s)
{
	s->batch = 1;
	s->timeout_ms = 20000;
	s->retry_min_ms = 500;
	s->retry_max_ms = 60000;
	s->checkpoint_ms = 100;
}

/* What a finished section must have. */
static int finish(struct parse *p, rly_sink_cfg *s)
{
	if (s->kind == 0)
		return fail(p, "sink \"%s\" has no \"kind\"", s->name);
	if (s->url == NULL)
		return fail(p, "sink \"%s\" has no \"url\"", s->name);
	if (s->kind == RLY_WEBHOOK) {
		if (strncmp(s->url, "http://", 7) && strncmp(s->url, "https://", 8))
			return fail(p, "sink \"%s\": a webhook url starts with http:// or https://",
				    s->name);
		if (s->nsecrets == 0)
			return fail(p, "webhook sink \"%s\" has no \"secret\"", s->name);
	} else if (s->nsecrets) {
		return fail(p, "sink \"%s\": \"secret\" is for webhooks only", s->name);
	}
	if (s->kind == RLY_NATS) {
		if (strncmp(s->url, "nats://", 7))
			return fail(p, "sink \"%s\": a nats url starts with nats://", s->name);
		if (s->stream == NULL)
			return fail(p, "nats sink \"%s\" has no \"stream\"", s->name);
		if (s->subject == NULL &&
		    (s->subject = strdup("evstore.{category}.{type}")) == NULL)
			return fail(p, "out of memory");
	} else if (s->subject || s->stream) {
		return fail(p, "sink \"%s\": \"subject\" and \"stream\" are for nats only",
			    s->name);
	}
	if (s->kind == RLY_AMQP) {
		if (strncmp(s->url, "amqp://", 7))
			return fail(p, "sink \"%s\": a rabbitmq url starts with amqp://", s->name);
		if (s->exchange == NULL && (s->exchange = strdup("evstore")) == NULL)
			return fail(p, "out of memory");
		if (s->routing_key == NULL &&
		    (s->routing_key = strdup("{category}.{type}")) == NULL)
			return fail(p, "out of memory");
	} else if (s->exchange || s->routing_key) {
		return fail(p,
			    "sink \"%s\": \"exchange\" and \"routing-key\" are for rabbitmq only",
			    s->name);
	}
	if (s->retry_min_ms > s->retry_max_ms)
		return fail(p, "sink \"%s\": retry-min-ms %ld is above retry-max-ms %ld", s->name,
			    s->retry_min_ms, s->retry_max_ms);
	return 0;
}

static int parse_line(struct parse *p, rly_config *cfg, char *line)
{
	rly_sink_cfg *cur = cfg->nsinks ? &cfg->sinks[cfg->nsinks - 1] : NULL;
	char *s = trim(line), *eq;
	const char *why;

	if (s[0] == 0 || s[0] == '#')
		return 0;
	if (s[0] == '[') {
		size_t n = strlen(s);
		if (s[n - 1] != ']' || strncmp(s, "[sink ", 6) != 0)
			return fail(p, "expected a section \"[sink NAME]\"");
		s[n - 1] = 0;
		char *name = trim(s + 6);
		if (!rly_sink_name_ok(name, &why))
			return fail(p, "invalid sink name \"%s\": %s", name, why);
		if (cur && finish(p, cur))
			return -1;
		for (size_t i = 0; i < cfg->nsinks; i++)
			if (!strcmp(cfg->sinks[i].name, name))
				return fail(p, "sink \"%s\" defined twice", name);
		if (cfg->nsinks == RLY_MAX_SINKS)
			return fail(p, "more than %d sinks", RLY_MAX_SINKS);
		cur = &cfg->sinks[cfg->nsinks++];
		memset(cur, 0, sizeof *cur);
		defaults(cur);
		strcpy(cur->name, name);
		memset(p->seen, 0, sizeof p->seen);
		return 0;
	}
	if ((eq = strchr(s, '=')) == NULL)
		return fail(p, "expected \"key = value\" or \"[sink NAME]\"");
	*eq = 0;
	char *key = trim(s), *value = trim(eq + 1);
	if (key[0] == 0)
		return fail(p, "a line starts with \"=\" (no key)");
	if (cur == NULL)
		return fail(p, "key \"%s\" outside a \"[sink NAME]\" section", key);
	return set_key(p, cur, key, value);
}

int rly_config_load(const char *path, rly_config *cfg, char *err, size_t errlen)
{
	struct parse p = {path, 0, err, errlen, {0}};
	char line[MAX_LINE + 2];
	size_t total = 0;
	FILE *f;
	int rc = 0;

	memset(cfg, 0, sizeof *cfg);
	if ((f = fopen(path, "r")) == NULL)
		return fail(&p, "could not open: %s", strerror(errno));
	for (;;) {
		size_t n = 0;
		int c;
		while ((c = getc(f)) != EOF && c != '\n') {
			if (c == 0) {
				p.line++;
				rc = fail(&p, "NUL byte in the file");
				goto out;
			}
			if (n == MAX_LINE) {
				p.line++;
				rc = fail(&p, "line longer than %d bytes", MAX_LINE);
				goto out;
			}
			line[n++] = (char)c;
		}
		if (c == EOF && n == 0)
			break;
		line[n] = 0;
		p.line++;
		total += n + 1;
		if (total > MAX_FILE) {
			rc = fail(&p, "file larger than %zu bytes", MAX_FILE);
			goto out;
		}
		if ((rc = parse_line(&p, cfg, line)) != 0)
			goto out;
		if (c == EOF)
			break;
	}
	if (ferror(f)) {
		rc = fail(&p, "could not read: %s", strerror(errno));
		goto out;
	}
	if (cfg->nsinks == 0) {
		p.line = 0;
		rc = fail(&p, "no \"[sink NAME]\" section");
		goto out;
	}
	rc = finish(&p, &cfg->sinks[cfg->nsinks - 1]);
out:
	fclose(f);
	if (rc)
		rly_config_free(cfg);
	return rc;
}

void rly_config_free(rly_config *cfg)
{
	for (size_t i = 0; i < cfg->nsinks; i++) {
		rly_sink_cfg *s = &cfg->sinks[i];
		free(s->url);
		free(s->subject);
		free(s->stream);
		free(s->exchange);
		free(s->routing_key);
		for (size_t j = 0; j < s->nprefixes; j++)
			free(s->prefixes[j]);
		for (size_t j = 0; j < s->ntypes; j++)
			free(s->types[j]);
		for (size_t j = 0; j < s->ncategories; j++)
			free(s->categories[j]);
		for (size_t j = 0; j < s->ntags; j++)
			free(s->tags[j]);
		for (size_t j = 0; j < s->nsecrets; j++)
			free(s->secrets[j]);
	}
	memset(cfg, 0, sizeof *cfg);
}

static void put_value(evs__buf *out, const char *v, size_t n, bool token_safe)
{
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '-';
		evs__buf_putc(out, token_safe && !ok ? '_' : c);
	}
}

int rly_template(evs__buf *out, const char *tpl, const char *type, size_t tlen, const char *stream,
		 size_t slen, bool token_safe)
{
	const char *dash = memchr(stream, '-', slen);
	size_t clen = dash ? (size_t)(dash - stream) : slen;

	evs__buf_reset(out);
	for (const char *t = tpl; *t;) {
		if (!strncmp(t, "{type}", 6)) {
			put_value(out, type, tlen, token_safe);
			t += 6;
		} else if (!strncmp(t, "{stream}", 8)) {
			put_value(out, stream, slen, token_safe);
			t += 8;
		} else if (!strncmp(t, "{category}", 10)) {
			put_value(out, stream, clen, token_safe);
			t += 10;
		} else {
			evs__buf_putc(out, *t++);
		}
	}
	return evs__buf_cstr(out) ? 0 : -1;
}
