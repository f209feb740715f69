/*
 * test_find.c - GET /events by type, category, tag and correlation from
 * the store's indexes (evs-query --store), and producer and tags through
 * the read model (issue 12).
 *
 * - find_random: a random history (seeded: EVS_TEST_SEED replays it) of
 *   streams in three categories (one multibyte), four types, tags drawn
 *   from a pool (multibyte, a comma inside one), correlation ids and
 *   producers; random queries paged forward and backward with random
 *   limits answer exactly the events a filter over the whole log keeps,
 *   each once, in order, with its tags and producer.
 * - find_refusals: every malformed filter is a 400 naming the parameter;
 *   without --store the indexed filters are refused, correlation= works.
 * - find_roundtrip: producer and tags appended = read back from
 *   PostgreSQL (evs.events, projected across several batches) = over
 *   HTTP from the read model (/streams/{id}/events) = from the store
 *   (/events?tag=).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "evsproj.h"
#include "kit.h"
#include "kit_http.h"
#include "kit_pg.h"

#define NEVENTS  600
#define NTAGPOOL 6

static const char *const tag_pool[NTAGPOOL] = {"account:1", "account:2",      "course:c1",
					       "x,y",       "citt\xc3\xa0:1", "vip"};
static const char *const type_pool[] = {"Opened", "Moved", "Closed", "Noted"};
static const char *const cat_pool[] = {"acct", "order", "\xc3\xa9t\xc3\xa9"};
static const char *const producer_pool[] = {NULL, "billing", "\xe3\x82\xb5\xe3\x83\xbc"};

struct model_ev {
	char stream[64], type[16];
	int cat, ntags;
	int tags[3];
	int corr; /* -1: none */
	int producer;
};

static struct model_ev model[NEVENTS + 1]; /* by position */
static uint8_t corr_ids[3][16];

static void uuid_text(const uint8_t id[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	int o = 0;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[id[i] >> 4];
		out[o++] = hex[id[i] & 15];
	}
	out[o] = '\0';
}

static void append_history(evs_store *s, uint64_t *rng)
{
	for (int c = 0; c < 3; c++)
		for (int k = 0; k < 16; k++)
			corr_ids[c][k] = (uint8_t)kit_rand(rng);
	for (int p = 1; p <= NEVENTS; p++) {
		struct model_ev *m = &model[p];
		const char *tags[3];
		evs_event_in ev = {0};
		evs_append_result res;

		m->cat = (int)(kit_rand(rng) % 3);
		snprintf(m->stream, sizeof m->stream, "%s-%d", cat_pool[m->cat],
			 (int)(kit_rand(rng) % 20));
		snprintf(m->type, sizeof m->type, "%s", type_pool[kit_rand(rng) % 4]);
		m->ntags = 0;
		for (int t = 0; t < NTAGPOOL && m->ntags < 3; t++)
			if (kit_rand(rng) % 3 == 0) {
				m->tags[m->ntags] = t;
				tags[m->ntags++] = tag_pool[t];
			}
		m->corr = (int)(kit_rand(rng) % 4) - 1;
		m->producer = (int)(kit_rand(rng) % 3);
		ev.type = m->type;
		ev.tags = tags;
		ev.ntags = (size_t)m->ntags;
		ev.producer = producer_pool[m->producer];
		if (m->corr >= 0)
			memcpy(ev.correlation_id, corr_ids[m->corr], 16);
		ck_assert_int_eq(evs_append(s, m->stream, EVS_ANY, &ev, 1, &res), EVS_OK);
		ck_assert_uint_eq(res.first_position, (uint64_t)p);
	}
}

struct query {
	int types[2], ntypes;
	int cats[2], ncats;
	int tags[2], ntags;
	int corr; /* -1 none */
};

static bool passes(const struct query *q, const struct model_ev *m)
{
	bool ok = q->ntypes == 0;

	for (int i = 0; i < q->ntypes; i++)
		ok |= !strcmp(type_pool[q->types[i]], m->type);
	if (!ok)
		return false;
	ok = q->ncats == 0;
	for (int i = 0; i < q->ncats; i++)
		ok |= q->cats[i] == m->cat;
	if (!ok)
		return false;
	for (int i = 0; i < q->ntags; i++) {
		bool has = false;

		for (int j = 0; j < m->ntags; j++)
			has |= m->tags[j] == q->tags[i];
		if (!has)
			return false;
	}
	return q->corr < 0 || q->corr == m->corr;
}

static size_t param(char *out, size_t len, size_t n, const char *name, const char *value)
{
	char *e = http_escape(value);

	len += (size_t)snprintf(out + len, n - len, "%s%s=%s", out[len - 1] == '?' ? "" : "&", name,
				e);
	free(e);
	return len;
}

static void target_of(const struct query *q, char *out, size_t n)
{
	size_t len = (size_t)snprintf(out, n, "/events?");

	for (int i = 0; i < q->ntypes; i++)
		len = param(out, len, n, "type", type_pool[q->types[i]]);
	for (int i = 0; i < q->ncats; i++)
		len = param(out, len, n, "category", cat_pool[q->cats[i]]);
	for (int i = 0; i < q->ntags; i++)
		len = param(out, len, n, "tag", tag_pool[q->tags[i]]);
	if (q->corr >= 0) {
		char id[37];

		uuid_text(corr_ids[q->corr], id);
		param(out, len, n, "correlation", id);
	}
}

/* The event's tags and producer in the answer are the appended ones. */
static void check_event(json_object *e, const struct model_ev *m)
{
	json_object *v;
	const char *want_tags[3];
	int n = 0;

	ck_assert(json_object_object_get_ex(e, "stream", &v));
	ck_assert_str_eq(json_object_get_string(v), m->stream);
	ck_assert(json_object_object_get_ex(e, "type", &v));
	ck_assert_str_eq(json_object_get_string(v), m->type);
	ck_assert(json_object_object_get_ex(e, "producer", &v));
	if (producer_pool[m->producer])
		ck_assert_str_eq(json_object_get_string(v), producer_pool[m->producer]);
	else
		ck_assert(v == NULL);
	ck_assert(json_object_object_get_ex(e, "tags", &v));
	ck_assert_int_eq((int)json_object_array_length(v), m->ntags);
	for (int i = 0; i < m->ntags; i++)
		want_tags[n++] = tag_pool[m->tags[i]];
	/* the answer is sorted by bytes; every appended tag is in it */
	for (int i = 0; i < n; i++) {
		bool found = false;

		for (int j = 0; j < n; j++)
			found |= !strcmp(
				json_object_get_string(json_object_array_get_idx(v, (size_t)j)),
				want_tags[i]);
		ck_assert_msg(found, "tag %s", want_tags[i]);
	}
	for (int j = 1; j < n; j++)
		ck_assert(
			strcmp(json_object_get_string(json_object_array_get_idx(v, (size_t)j - 1)),
			       json_object_get_string(json_object_array_get_idx(v, (size_t)j))) <
			0);
}

/* Page through q in one direction; the positions seen must be exactly
 * the model's, in order. */
static void run_query(unsigned port, uint64_t *rng, const struct query *q, bool backward)
{
	char base[1024], target[1200];
	int want[NEVENTS], nwant = 0, seen = 0;
	long long cursor = -1;

	for (int p = 1; p <= NEVENTS; p++)
		if (passes(q, &model[p]))
			want[nwant++] = p;
	if (backward)
		for (int i = 0; i < nwant / 2; i++) {
			int t = want[i];

			want[i] = want[nwant - 1 - i];
			want[nwant - 1 - i] = t;
		}
	target_of(q, base, sizeof base);
	for (;;) {
		http_answer a;
		json_object *evs, *next;
		int lim = 1 + (int)(kit_rand(rng) % 40), n;
		const char *sep = strchr(base, '?')[1] ? "&" : "";

		size_t len =
			(size_t)snprintf(target, sizeof target, "%s%slimit=%d", base, sep, lim);

		if (backward)
			len += (size_t)snprintf(target + len, sizeof target - len,
						"&direction=backward");
		if (cursor >= 0)
			snprintf(target + len, sizeof target - len, "&%s=%lld",
				 backward ? "before" : "after", cursor);
		http_get_ok(port, target, &a);
		ck_assert_int_eq(http_int(&a, "position"), NEVENTS);
		ck_assert(json_object_object_get_ex(a.json, "events", &evs));
		n = (int)json_object_array_length(evs);
		ck_assert_int_le(n, lim);
		for (int j = 0; j < n; j++) {
			json_object *e = json_object_array_get_idx(evs, (size_t)j), *v;
			int pos;

			ck_assert(json_object_object_get_ex(e, "position", &v));
			pos = (int)json_object_get_int64(v);
			ck_assert_msg(seen < nwant && pos == want[seen], "%s: got %d, want %d",
				      target, pos, seen < nwant ? want[seen] : -1);
			check_event(e, &model[pos]);
			seen++;
		}
		ck_assert(json_object_object_get_ex(a.json, backward ? "next_before" : "next_after",
						    &next));
		if (!next) {
			http_answer_free(&a);
			break;
		}
		ck_assert_int_eq(n, lim);
		cursor = json_object_get_int64(next);
		http_answer_free(&a);
	}
	ck_assert_msg(seen == nwant, "%s: %d of %d events", base, seen, nwant);
}

START_TEST(find_random)
{
	uint64_t rng = kit_seed("find_random");
	http_query_fixture f;

	http_query_start(&f, "find", 0, true, NULL);
	append_history(f.store, &rng);
	for (int round = 0; round < 60; round++) {
		struct query q = {.corr = -1};

		q.ntypes = (int)(kit_rand(&rng) % 3);
		for (int i = 0; i < q.ntypes; i++)
			q.types[i] = (int)((kit_rand(&rng) % 2) * 2 + (unsigned)i);
		q.ncats = (int)(kit_rand(&rng) % 3);
		q.cats[0] = (int)(kit_rand(&rng) % 3);
		q.cats[1] = (q.cats[0] + 1 + (int)(kit_rand(&rng) % 2)) % 3;
		q.ntags = (int)(kit_rand(&rng) % 3);
		for (int i = 0; i < q.ntags; i++)
			q.tags[i] = (int)(kit_rand(&rng) % 3) + 3 * i;
		if (kit_rand(&rng) % 3 == 0)
			q.corr = (int)(kit_rand(&rng) % 3);
		run_query(f.port, &rng, &q, round % 2 == 1);
	}
	/* no filter at all: every event */
	{
		struct query q = {.corr = -1};

		run_query(f.port, &rng, &q, false);
	}
	/* by id: the event, with its tags */
	{
		evs_iter *it;
		evs_event ev;
		char id[37], target[128];
		http_answer a;
		json_object *evs;

		ck_assert_int_eq(evs_read_all(f.store, 77, EVS_FORWARD, NULL, 1, &it), EVS_OK);
		ck_assert_int_eq(evs_iter_next(it, &ev), EVS_OK);
		uuid_text(ev.id, id);
		evs_iter_free(it);
		snprintf(target, sizeof target, "/events?id=%s", id);
		http_get_ok(f.port, target, &a);
		ck_assert(json_object_object_get_ex(a.json, "events", &evs));
		ck_assert_int_eq((int)json_object_array_length(evs), 1);
		check_event(json_object_array_get_idx(evs, 0), &model[77]);
		http_answer_free(&a);
	}
	http_query_stop(&f);
}
END_TEST

START_TEST(find_refusals)
{
	static const char *const bad[] = {
		"/events?tag=",
		"/events?tag=a&tag=a",
		"/events?type=a,,b",
		"/events?type=a,",
		"/events?type=",
		"/events?category=",
		"/events?category=a&category=b,a",
		"/events?tag=%FF",
		"/events?tag=a%00b",
		"/events?correlation=nope",
		"/events?correlation=00000000-0000-0000-0000-000000000000",
		"/events?id=00000000-0000-0000-0000-000000000000",
		"/events?correlation=0190f5a2-7c1e-7000-8000-00000000beef&correlation=0190f5a2-"
		"7c1e-7000-8000-00000000beef",
		"/events?after=5&direction=backward",
		"/events?before=5",
		"/events?direction=sideways",
		"/events?direction=backward&before=0",
		"/events?limit=0",
		"/events?after=-1",
		"/events?id=0190f5a2-7c1e-7000-8000-00000000beef&tag=a",
		"/events?id=0190f5a2-7c1e-7000-8000-00000000beef&limit=2",
		"/events?tags=a",
		/* empty, repeated, zero bytes, out of range */
		"/events?limit=",
		"/events?limit=1&limit=1",
		"/events?limit=1001",
		"/events?limit=99999999999999999999",
		"/events?after=",
		"/events?after=1&after=1",
		"/events?after=18446744073709551616",
		"/events?after=1%00",
		"/events?direction=",
		"/events?direction=backward&direction=backward",
		"/events?direction=backward&before=",
		"/events?direction=backward&before=-1",
		"/events?type=a%00",
		"/events?category=a%00",
		"/events?id=",
		NULL,
	};
	char target[8192];
	http_query_fixture f;
	size_t len;

	http_query_start(&f, "find", 0, true, NULL);
	for (size_t i = 0; bad[i]; i++)
		http_expect_error(f.port, bad[i], 400, "bad_request");
	/* 17 tags, 33 types, a tag of 256 bytes */
	len = (size_t)snprintf(target, sizeof target, "/events?");
	for (int i = 0; i < 17; i++)
		len += (size_t)snprintf(target + len, sizeof target - len, "%stag=t%d",
					i ? "&" : "", i);
	http_expect_error(f.port, target, 400, "bad_request");
	len = (size_t)snprintf(target, sizeof target, "/events?type=");
	for (int i = 0; i < 33; i++)
		len += (size_t)snprintf(target + len, sizeof target - len, "%sT%d", i ? "," : "",
					i);
	http_expect_error(f.port, target, 400, "bad_request");
	len = (size_t)snprintf(target, sizeof target, "/events?tag=");
	memset(target + len, 'a', 256);
	target[len + 256] = '\0';
	http_expect_error(f.port, target, 400, "bad_request");
	/* an empty store: 200, no events */
	{
		http_answer a;
		json_object *evs;

		http_get_ok(f.port, "/events?tag=a&direction=backward", &a);
		ck_assert_int_eq(http_int(&a, "position"), 0);
		ck_assert(json_object_object_get_ex(a.json, "events", &evs));
		ck_assert_int_eq((int)json_object_array_length(evs), 0);
		http_answer_free(&a);
	}
	http_query_stop(&f);

	/* without --store: the indexed filters need it; correlation= reads
	 * the read model (migrated by a projector run) */
	http_query_start(&f, "find", 0, false, NULL);
	{
		evp_config cfg;
		evp_stats st;
		char err[2048];

		pgh_config(&cfg, f.dir, f.dsn);
		cfg.once = true;
		ck_assert_msg(evp_run(&cfg, &st, err, sizeof err) == EVP_OK, "evp_run: %s", err);
	}
	http_expect_error(f.port, "/events?tag=a", 400, "bad_request");
	http_expect_error(f.port, "/events?type=a", 400, "bad_request");
	http_expect_error(f.port, "/events?category=a", 400, "bad_request");
	http_expect_error(
		f.port,
		"/events?correlation=0190f5a2-7c1e-7000-8000-00000000beef&direction=backward", 400,
		"bad_request");
	{
		http_answer a;

		http_get_ok(f.port, "/events?correlation=0190f5a2-7c1e-7000-8000-00000000beef", &a);
		http_answer_free(&a);
	}
	http_query_stop(&f);
}
END_TEST

START_TEST(find_roundtrip)
{
	static const char *const t1[] = {"z\xc3\xbcrich:7", "account:42", "\xe2\x82\xac"};
	static const char *const t2[] = {"account:42"};
	http_query_fixture f;
	evp_config cfg;
	evp_stats st;
	char err[2048];
	PGconn *pg;
	int i;

	http_query_start(&f, "find", 0, true, NULL);
	for (i = 0; i < 50; i++) {
		evs_event_in ev = {0};
		evs_append_result res;

		ev.type = "Tagged";
		if (i % 3 == 0) {
			ev.tags = t1;
			ev.ntags = 3;
			ev.producer = "\xe3\x82\xb5\xe3\x83\xbc\xe3\x83\x93\xe3\x82\xb9";
		} else if (i % 3 == 1) {
			ev.tags = t2;
			ev.ntags = 1;
		}
		ck_assert_int_eq(evs_append(f.store, "acct-1", EVS_ANY, &ev, 1, &res), EVS_OK);
	}
	/* catch-up in batches of 7: the arena copies tags across batches */
	pgh_config(&cfg, f.dir, f.dsn);
	cfg.once = true;
	cfg.batch_max = 7;
	ck_assert_msg(evp_run(&cfg, &st, err, sizeof err) == EVP_OK, "evp_run: %s", err);
	pg = pgh_connect(f.dsn);
	ck_assert_int_eq(pgh_int(pg, "SELECT count(*) FROM evs.events"), 50);
	ck_assert_int_eq(pgh_int(pg,
				 "SELECT count(*) FROM evs.events WHERE position % 3 = 1"
				 " AND producer = U&'\\30B5\\30FC\\30D3\\30B9'"
				 " AND tags = ARRAY['account:42', U&'z\\00FCrich:7', U&'\\20AC']"),
			 17);
	ck_assert_int_eq(pgh_int(pg, "SELECT count(*) FROM evs.events WHERE position % 3 = 2"
				     " AND producer IS NULL AND tags = ARRAY['account:42']"),
			 17);
	ck_assert_int_eq(pgh_int(pg, "SELECT count(*) FROM evs.events WHERE position % 3 = 0"
				     " AND producer IS NULL AND tags = '{}'"),
			 16);
	ck_assert_int_eq(pgh_int(pg, "SELECT count(*) FROM pg_description d JOIN pg_attribute a"
				     " ON d.objoid = a.attrelid AND d.objsubid = a.attnum"
				     " WHERE a.attrelid = 'evs.events'::regclass"
				     " AND a.attname IN ('producer', 'tags')"),
			 2);
	PQfinish(pg);
	/* over HTTP: the read model and the store say the same */
	{
		http_answer a, b;
		json_object *ea, *eb;

		http_get_ok(f.port, "/streams/acct-1/events?limit=50", &a);
		http_get_ok(f.port, "/events?category=acct&limit=50", &b);
		ck_assert(json_object_object_get_ex(a.json, "events", &ea));
		ck_assert(json_object_object_get_ex(b.json, "events", &eb));
		ck_assert_int_eq((int)json_object_array_length(ea), 50);
		ck_assert_int_eq((int)json_object_array_length(eb), 50);
		for (i = 0; i < 50; i++) {
			json_object *x = json_object_array_get_idx(ea, (size_t)i);
			json_object *y = json_object_array_get_idx(eb, (size_t)i);
			json_object *vx, *vy;

			ck_assert(json_object_object_get_ex(x, "tags", &vx));
			ck_assert(json_object_object_get_ex(y, "tags", &vy));
			ck_assert_str_eq(json_object_to_json_string(vx),
					 json_object_to_json_string(vy));
			ck_assert(json_object_object_get_ex(x, "producer", &vx));
			ck_assert(json_object_object_get_ex(y, "producer", &vy));
			ck_assert_str_eq(json_object_to_json_string(vx),
					 json_object_to_json_string(vy));
			if (i % 3 == 0)
				ck_assert_str_eq(
					json_object_get_string(vx),
					"\xe3\x82\xb5\xe3\x83\xbc\xe3\x83\x93\xe3\x82\xb9");
		}
		http_answer_free(&a);
		http_answer_free(&b);
		http_get_ok(f.port, "/events?tag=%E2%82%AC&tag=account:42", &b);
		ck_assert(json_object_object_get_ex(b.json, "events", &eb));
		ck_assert_int_eq((int)json_object_array_length(eb), 17);
		http_answer_free(&b);
	}
	http_query_stop(&f);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {find_random, find_refusals, find_roundtrip, NULL};

	return http_main("http-find", 600, tests);
}
