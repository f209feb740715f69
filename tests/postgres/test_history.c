/*
 * test_history.c - temporal declared tables (issue 10, contract C1):
 * the history the projector writes equals a per-event reference folded
 * in C, for random histories with inserts, upserts, updates, two
 * statements on one row in one event, multi-row updates, deletes and
 * re-inserts (also in one event), across batch boundaries, with batches
 * of 1, 7 and 10,000 events, pipelined and one event at a time (dead
 * letters); the as-of and at-position functions as the analyst role; a
 * parked event leaves no version; statements whose writes cannot be
 * captured are refused at load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <msgpack.h>

#include "evsproj.h"
#include "model.h"
#include "kit_pg.h"

#define KEYS 10

static const char projection[] =
	"projection shop\n"
	"schema shop\n"
	"tables items notes\n"
	"current notes\n"
	"on Put\n"
	"INSERT INTO items (id, n, label) VALUES (:stream, 0, :data.label)\n"
	"ON CONFLICT (id) DO UPDATE SET label = excluded.label;\n"
	"on Add\n"
	"UPDATE items SET n = n + :data.amount::bigint WHERE id = :stream;\n"
	"on Twice\n"
	"UPDATE items SET n = n + :data.amount::bigint WHERE id = :stream;\n"
	"UPDATE items AS i SET n = i.n * 2 WHERE i.id = :stream;\n"
	"on Del\n"
	"DELETE FROM items WHERE id = :stream;\n"
	"on Again\n"
	"DELETE FROM items WHERE id = :stream;\n"
	"INSERT INTO items (id, n, label) VALUES (:stream, 100, 'again');\n"
	"on All\n"
	"UPDATE items SET n = n + 1 WHERE n % 3 = 0;\n"
	"on Note\n"
	"INSERT INTO notes (position, body) VALUES (:position, :data.label);\n"
	"on Bad\n"
	"UPDATE items SET n = n + 1000 WHERE id = :stream;\n"
	"SELECT 1 / 0;\n";

/* Every statement of it runs set-based (no multi-row update, no failing
 * SELECT): the same history, by rounds of arrays. */
static const char projection_set[] =
	"projection shop\n"
	"schema shop\n"
	"tables items notes\n"
	"current notes\n"
	"on Put\n"
	"INSERT INTO items (id, n, label) VALUES (:stream, 0, :data.label)\n"
	"ON CONFLICT (id) DO UPDATE SET label = excluded.label;\n"
	"on Add\n"
	"UPDATE items SET n = n + :data.amount::bigint WHERE id = :stream;\n"
	"on Twice\n"
	"UPDATE items SET n = n + :data.amount::bigint WHERE id = :stream;\n"
	"UPDATE items AS i SET n = i.n * 2 WHERE i.id = :stream;\n"
	"on Del\n"
	"DELETE FROM items WHERE id = :stream;\n"
	"on Again\n"
	"DELETE FROM items WHERE id = :stream;\n"
	"INSERT INTO items (id, n, label) VALUES (:stream, 100, 'again');\n"
	"on Note\n"
	"INSERT INTO notes (position, body) VALUES (:position, :data.label);\n"
	"on Boom\n"
	"INSERT INTO notes (position, body) VALUES (:data.amount::bigint, 'dup');\n";

static const char migration[] =
	"CREATE SCHEMA shop;\n"
	"CREATE TABLE shop.items (id text COLLATE \"C\" PRIMARY KEY, n bigint NOT NULL,"
	" label text);\n"
	"CREATE TABLE shop.notes (position bigint PRIMARY KEY, body text);\n"
	"GRANT USAGE ON SCHEMA shop TO evs_analyst;\n"
	"GRANT SELECT ON ALL TABLES IN SCHEMA shop TO evs_analyst;\n";

static const char *const types[] = {"Put", "Add", "Twice", "Del", "Again", "Note", "All"};
static int ntypes = 7; /* 6: without All (set-based) */

/* The reference: per key, its versions. */
struct version {
	long long n;
	char label[64];
	uint64_t from, to; /* to 0: open */
};

struct key {
	bool exists;
	long long n;
	char label[64];
	struct version v[4096];
	int nv;
};

struct ref {
	struct key k[KEYS];
};

struct fixture {
	char *dir, *mig, *rules, *migrations;
	evs_store *s;
	struct ref ref;
};

static char *write_file(const char *dir, const char *name, const char *text)
{
	char *p;
	FILE *f;

	ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
	ck_assert_ptr_nonnull(f = fopen(p, "w"));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	return p;
}

static void fixture_init_with(struct fixture *f, const char *rules_text)
{
	char *p;

	memset(f, 0, sizeof *f);
	f->dir = kit_tmpdir("store");
	f->mig = kit_tmpdir("mig");
	p = write_file(f->mig, "1001_shop.sql", migration);
	free(p);
	f->rules = write_file(f->mig, "shop.projection", rules_text);
	ck_assert_int_ge(asprintf(&f->migrations, "%s:%s", pgh_migrations_dir(), f->mig), 0);
	f->s = model_open(f->dir);
}

static void fixture_init(struct fixture *f)
{
	ntypes = 7;
	fixture_init_with(f, projection);
}

static void fixture_free(struct fixture *f)
{
	evs_close(f->s);
	kit_rmrf(f->dir);
	kit_rmrf(f->mig);
	free(f->dir);
	free(f->mig);
	free(f->rules);
	free(f->migrations);
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

/* Touch a key at position p: close its open version, open the new one. */
static void touched(struct key *k, bool existed, uint64_t p)
{
	if (existed)
		k->v[k->nv - 1].to = p;
	if (k->exists) {
		struct version *v = &k->v[k->nv++];

		ck_assert_int_lt(k->nv, 4096);
		v->n = k->n;
		snprintf(v->label, sizeof v->label, "%s", k->label);
		v->from = p;
		v->to = 0;
	}
}

/* Append one event and fold it into the reference. */
static void append(struct fixture *f, uint64_t *rng, const char *type)
{
	char stream[32], label[64];
	int key = (int)(kit_rand(rng) % KEYS);
	long long amount = (long long)(kit_rand(rng) % 21) - 10;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	evs_event_in in = {0};
	evs_append_result ar;
	uint64_t p;
	struct key *k;
	int i;

	if (!type)
		type = types[kit_rand(rng) % (uint64_t)ntypes];
	snprintf(stream, sizeof stream, "item-%d", key);
	snprintf(label, sizeof label, "l%d\t\\\"'\n\xc3\xa9", (int)(kit_rand(rng) % 1000));
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	pack_str(&pk, "label");
	pack_str(&pk, label);
	pack_str(&pk, "amount");
	msgpack_pack_int64(&pk, amount);
	in.type = type;
	in.data = sb.data;
	in.data_len = sb.size;
	ck_assert_int_eq(evs_append(f->s, stream, EVS_ANY, &in, 1, &ar), EVS_OK);
	p = ar.last_position;
	msgpack_sbuffer_destroy(&sb);
	k = &f->ref.k[key];
	if (strcmp(type, "Put") == 0) {
		bool e = k->exists;

		if (!e)
			k->n = 0;
		k->exists = true;
		snprintf(k->label, sizeof k->label, "%s", label);
		touched(k, e, p);
	} else if ((strcmp(type, "Add") == 0 || strcmp(type, "Twice") == 0) && k->exists) {
		k->n += amount;
		if (type[0] == 'T')
			k->n *= 2;
		touched(k, true, p);
	} else if (strcmp(type, "Del") == 0 && k->exists) {
		k->exists = false;
		touched(k, true, p);
	} else if (strcmp(type, "Again") == 0) {
		bool e = k->exists;

		k->exists = true;
		k->n = 100;
		snprintf(k->label, sizeof k->label, "again");
		touched(k, e, p);
	} else if (strcmp(type, "All") == 0) {
		for (i = 0; i < KEYS; i++)
			if (f->ref.k[i].exists && f->ref.k[i].n % 3 == 0) {
				f->ref.k[i].n += 1;
				touched(&f->ref.k[i], true, p);
			}
	}
}

/* The reference history as model_dump prints
 * SELECT id, n, label, valid_from_position, valid_to_position ... */
static char *expected(const struct ref *ref)
{
	evs__buf b = {0};
	int i, j;

	for (i = 0; i < KEYS; i++)
		for (j = 0; j < ref->k[i].nv; j++) {
			const struct version *v = &ref->k[i].v[j];

			evs__buf_printf(&b, "item-%d|%lld|%s|%llu|", i, v->n, v->label,
					(unsigned long long)v->from);
			if (v->to)
				evs__buf_printf(&b, "%llu|\n", (unsigned long long)v->to);
			else
				evs__buf_puts(&b, "<null>|\n");
		}
	ck_assert(evs__buf_cstr(&b));
	return b.ptr;
}

/* The reference state at position n, as model_dump prints
 * SELECT id, n, label ... ORDER BY id. */
static char *expected_at(const struct ref *ref, uint64_t n)
{
	evs__buf b = {0};
	int i, j;

	for (i = 0; i < KEYS; i++)
		for (j = 0; j < ref->k[i].nv; j++) {
			const struct version *v = &ref->k[i].v[j];

			if (v->from <= n && (v->to == 0 || v->to > n))
				evs__buf_printf(&b, "item-%d|%lld|%s|\n", i, v->n, v->label);
		}
	evs__buf_putc(&b, '\0');
	ck_assert(!b.oom);
	return b.ptr;
}

/* bulk threshold of the next runs (0: the default); 1: every run starts
 * far behind, so the history loads in bulk mode (projector/history_bulk.c) */
static uint64_t bulk_threshold;

static int project_stats(struct fixture *f, const char *dsn, int batch, bool dead, char *err,
			 size_t errlen, evp_stats *st)
{
	evp_config cfg;

	pgh_config(&cfg, f->dir, dsn);
	if (bulk_threshold)
		cfg.bulk_threshold = bulk_threshold;
	cfg.migrations_dir = f->migrations;
	cfg.rules_path = f->rules;
	cfg.batch_max = batch;
	cfg.dead_letter = dead;
	cfg.once = true;
	return evp_run(&cfg, st, err, errlen);
}

static int project(struct fixture *f, const char *dsn, int batch, bool dead, char *err,
		   size_t errlen)
{
	return project_stats(f, dsn, batch, dead, err, errlen, NULL);
}

static const char history_sql[] =
	"SELECT id, n, label, valid_from_position, valid_to_position FROM shop.items_history"
	" ORDER BY id, valid_from_position";

/* History equals the reference; times are the events'; the functions
 * answer as the reference at random positions and times. */
static void check(struct fixture *f, PGconn *c, uint64_t *rng)
{
	char *want = expected(&f->ref), *got = model_dump(c, history_sql);
	evs_store_info h;
	int i;

	ck_assert_msg(strcmp(want, got) == 0, "history differs:\nwant\n%s\ngot\n%s", want, got);
	free(want);
	free(got);
	/* its indexes and primary key, also after a bulk load */
	got = model_dump(c, "SELECT indexdef FROM pg_indexes WHERE tablename = 'items_history'"
			    " ORDER BY indexname");
	ck_assert_str_eq(got, "CREATE INDEX items_history_at ON shop.items_history USING btree (id,"
			      " valid_from_at)|\nCREATE UNIQUE INDEX items_history_pkey ON"
			      " shop.items_history USING btree (id, valid_from_position)|\n");
	free(got);
	ck_assert_int_eq(pgh_int(c, "SELECT count(*) FROM pg_constraint WHERE conrelid ="
				    " 'shop.items_history'::regclass AND contype = 'p'"),
			 1);
	ck_assert_int_eq(pgh_int(c, "SELECT count(*) FROM shop.items_history h WHERE"
				    " valid_from_at IS DISTINCT FROM (SELECT recorded_at FROM"
				    " evs.events e WHERE e.position = h.valid_from_position)"
				    " OR valid_to_at IS DISTINCT FROM (SELECT recorded_at FROM"
				    " evs.events e WHERE e.position = h.valid_to_position)"),
			 0);
	/* the current table is the open versions */
	want = model_dump(c, "SELECT id, n, label FROM shop.items ORDER BY id");
	got = model_dump(c, "SELECT id, n, label FROM shop.items_history"
			    " WHERE valid_to_position IS NULL ORDER BY id");
	ck_assert_str_eq(want, got);
	free(want);
	free(got);
	ck_assert_int_eq(evs_head(f->s, &h), EVS_OK);
	pgh_exec(c, "SET ROLE evs_analyst");
	for (i = 0; i < 20; i++) {
		uint64_t n = kit_rand(rng) % (h.last_position + 1), m;
		char sql[512];

		snprintf(sql, sizeof sql,
			 "SELECT id, n, label FROM shop.items_at_position(%llu) ORDER BY id",
			 (unsigned long long)n);
		want = expected_at(&f->ref, n);
		got = model_dump(c, sql);
		ck_assert_msg(strcmp(want, got) == 0, "at position %llu:\nwant\n%s\ngot\n%s",
			      (unsigned long long)n, want, got);
		free(want);
		free(got);
		if (n == 0)
			continue;
		/* as of the time of event n: after every event recorded then */
		snprintf(sql, sizeof sql,
			 "SELECT max(position) FROM evs.events WHERE recorded_at <="
			 " (SELECT recorded_at FROM evs.events WHERE position = %llu)",
			 (unsigned long long)n);
		m = (uint64_t)pgh_int(c, sql);
		snprintf(sql, sizeof sql,
			 "SELECT id, n, label FROM shop.items_as_of((SELECT recorded_at FROM"
			 " evs.events WHERE position = %llu)) ORDER BY id",
			 (unsigned long long)n);
		want = expected_at(&f->ref, m);
		got = model_dump(c, sql);
		ck_assert_msg(strcmp(want, got) == 0, "as of event %llu (%llu):\nwant\n%s\ngot\n%s",
			      (unsigned long long)n, (unsigned long long)m, want, got);
		free(want);
		free(got);
	}
	pgh_exec(c, "RESET ROLE");
}

START_TEST(history_reference)
{
	uint64_t rng = kit_seed("history_reference");
	static const int batches[] = {1, 7, 10000};
	struct fixture f;
	char *dsn[3], err[2048];
	int round, b, i;

	fixture_init(&f);
	for (b = 0; b < 3; b++)
		dsn[b] = pgh_new_db();
	for (round = 0; round < 3; round++) {
		int n = 200 + (int)(kit_rand(&rng) % 300);

		for (i = 0; i < n; i++)
			append(&f, &rng, i < 3 && round == 0 ? "Put" : NULL);
		for (b = 0; b < 3; b++) {
			PGconn *c;

			/* batches of 7 one event at a time (dead letters), the others
			 * pipelined; those of 10000 in bulk mode */
			bulk_threshold = b == 2 ? 1 : 0;
			ck_assert_msg(project(&f, dsn[b], batches[b], b == 1, err, sizeof err) ==
					      EVP_OK,
				      "batch %d: %s", batches[b], err);
			bulk_threshold = 0;
			c = pgh_connect(dsn[b]);
			check(&f, c, &rng);
			PQfinish(c);
		}
	}
	for (b = 0; b < 3; b++)
		free(dsn[b]);
	fixture_free(&f);
}
END_TEST

START_TEST(history_dead_letter)
{
	uint64_t rng = kit_seed("history_dead_letter");
	struct fixture f;
	char *dsn = pgh_new_db(), err[2048];
	PGconn *c;
	int i;

	fixture_init(&f);
	for (i = 0; i < 200; i++)
		append(&f, &rng, i < KEYS ? "Put" : i % 10 == 5 ? "Bad" : NULL);
	ck_assert_msg(project(&f, dsn, 13, true, err, sizeof err) == EVP_OK, "%s", err);
	c = pgh_connect(dsn);
	ck_assert_int_eq(pgh_int(c, "SELECT count(*) FROM evs.dead_letters"), 19);
	check(&f, c, &rng);
	/* without dead letters the projector stops on the first Bad event */
	PQfinish(c);
	free(dsn);
	fixture_free(&f);
}
END_TEST

/* The set-based path: the same history as the reference, batches of 64,
 * 150 and 10,000 (cut at 16 rounds), across runs; a batch whose array statement fails runs one
 * event at a time, which stops on (or parks) exactly the failing event. */
START_TEST(history_set_based)
{
	uint64_t rng = kit_seed("history_set_based");
	static const int batches[] = {64, 150, 10000}; /* set-based from 64 events */
	struct fixture f;
	char *dsn[3], err[2048];
	evp_stats st;
	int round, b, i;

	fixture_init_with(&f, projection_set);
	ntypes = 6;
	for (b = 0; b < 3; b++)
		dsn[b] = pgh_new_db();
	for (round = 0; round < 3; round++) {
		int n = 300 + (int)(kit_rand(&rng) % 300);

		for (i = 0; i < n; i++)
			append(&f, &rng, i < 3 && round == 0 ? "Put" : NULL);
		for (b = 0; b < 3; b++) {
			PGconn *c;

			bulk_threshold = b == 1 ? 1 : 0; /* 150: in bulk mode */
			ck_assert_msg(project_stats(&f, dsn[b], batches[b], false, err, sizeof err,
						    &st) == EVP_OK,
				      "batch %d: %s", batches[b], err);
			bulk_threshold = 0;
			ck_assert_uint_gt(st.set_batches, 0);
			c = pgh_connect(dsn[b]);
			check(&f, c, &rng);
			PQfinish(c);
		}
	}
	/* Boom inserts note 5 twice: the second fails; set-based rolls the
	 * batch back and one at a time parks exactly that event */
	{
		evs_event_in in = {0};
		msgpack_sbuffer sb;
		msgpack_packer pk;
		PGconn *c;
		char *v;

		for (i = 0; i < 2; i++) {
			msgpack_sbuffer_init(&sb);
			msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
			msgpack_pack_map(&pk, 1);
			pack_str(&pk, "amount");
			msgpack_pack_int64(&pk, -5);
			in.type = "Boom";
			in.data = sb.data;
			in.data_len = sb.size;
			ck_assert_int_eq(evs_append(f.s, "boom", EVS_ANY, &in, 1, NULL), EVS_OK);
			msgpack_sbuffer_destroy(&sb);
			append(&f, &rng, NULL);
		}
		ck_assert_int_eq(project(&f, dsn[2], 10000, false, err, sizeof err), EVP_SQL);
		ck_assert_msg(strstr(err, "type \"Boom\"") && strstr(err, "duplicate key"), "%s",
			      err);
		ck_assert_msg(project_stats(&f, dsn[2], 10000, true, err, sizeof err, &st) ==
				      EVP_OK,
			      "%s", err);
		ck_assert_uint_eq(st.dead_letters, 1);
		c = pgh_connect(dsn[2]);
		v = pgh_value(c, "SELECT type || ' ' || sqlstate FROM evs.dead_letters");
		ck_assert_str_eq(v, "Boom 23505");
		free(v);
		ck_assert_int_eq(pgh_int(c, "SELECT position FROM evs.dead_letters") + 1,
				 pgh_int(c, "SELECT max(position) FROM evs.events"));
		check(&f, c, &rng);
		PQfinish(c);
	}
	for (b = 0; b < 3; b++)
		free(dsn[b]);
	fixture_free(&f);
}
END_TEST

/* A second declared projection on a database whose built-in models are
 * written already: a clear refusal and no checkpoint row; without the
 * built-ins it works. */
START_TEST(history_second_projection)
{
	uint64_t rng = kit_seed("history_second_projection");
	struct fixture f;
	char *dsn = pgh_new_db(), err[2048];
	evp_config cfg;
	PGconn *c;
	int i;

	fixture_init(&f);
	for (i = 0; i < 100; i++)
		append(&f, &rng, i < KEYS ? "Put" : NULL);
	pgh_project_once(f.dir, dsn, NULL, 0); /* "builtin" */
	ck_assert_int_eq(project(&f, dsn, 50, false, err, sizeof err), EVP_INVALID);
	ck_assert_msg(strstr(err, "the built-in read models already hold events up to position"
				  " 100 (written by projection \"builtin\"): run projection"
				  " \"shop\" without them") != NULL,
		      "%s", err);
	c = pgh_connect(dsn);
	ck_assert_int_eq(
		pgh_int(c, "SELECT count(*) FROM evs.checkpoints WHERE projection = 'shop'"), 0);
	pgh_config(&cfg, f.dir, dsn);
	cfg.migrations_dir = f.migrations;
	cfg.rules_path = f.rules;
	cfg.builtin = false;
	cfg.once = true;
	ck_assert_msg(evp_run(&cfg, NULL, err, sizeof err) == EVP_OK, "%s", err);
	check(&f, c, &rng);
	ck_assert_int_eq(
		pgh_int(c, "SELECT position FROM evs.checkpoints WHERE projection = 'shop'"), 100);
	PQfinish(c);
	free(dsn);
	fixture_free(&f);
}
END_TEST

/* An UPDATE that moves a row to another key is refused at start. */
START_TEST(history_key_change)
{
	static const char *const moves[] = {
		"UPDATE items SET n = 1, id = :data.label WHERE id = :stream;",
		"UPDATE items SET (n, id) = (1, :data.label) WHERE id = :stream;",
	};
	struct fixture f;
	char *dsn = pgh_new_db(), err[2048], text[2048];
	size_t i;

	for (i = 0; i < sizeof moves / sizeof *moves; i++) {
		snprintf(text, sizeof text, "%son Move\n%s\n", projection, moves[i]);
		fixture_init_with(&f, text);
		append(&f, &(uint64_t){1}, "Put");
		ck_assert_int_eq(project(&f, dsn, 10, false, err, sizeof err), EVP_INVALID);
		ck_assert_msg(strstr(err, "changes the primary key (\"id\") of temporal table"
					  " \"shop.items\"") != NULL,
			      "%s", err);
		fixture_free(&f);
	}
	free(dsn);
}
END_TEST

START_TEST(history_refused)
{
	static const char *const bad[][2] = {
		{"WITH x AS (UPDATE items SET n = 1 RETURNING id) SELECT 1;", "not a plain"},
		{"UPDATE items SET n = 1 WHERE id = :stream RETURNING n;", "RETURNING clause"},
		{"TRUNCATE items;", "not a plain"},
		{"MERGE INTO shop.items t USING notes s ON t.id = s.body"
		 " WHEN MATCHED THEN DELETE;",
		 "not a plain"},
	};
	char *dir = kit_tmpdir("rules"), *p, text[1024], err[2048];
	evp_rules *rs;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof *bad; i++) {
		snprintf(text, sizeof text,
			 "projection shop\nschema shop\ntables items notes\ncurrent notes\n"
			 "on X\n%s\n",
			 bad[i][0]);
		p = write_file(dir, "x.projection", text);
		ck_assert_int_eq(evp_rules_load(p, &rs, err, sizeof err), EVP_SYNTAX);
		ck_assert_msg(strstr(err, bad[i][1]) && strstr(err, "temporal table \"items\"") &&
				      strstr(err, "\"current items\""),
			      "%s", err);
		free(p);
	}
	/* the same statements are fine on a current-only table */
	snprintf(text, sizeof text,
		 "projection shop\nschema shop\ntables items notes\ncurrent notes items\n"
		 "on X\n%s\n%s\n",
		 bad[0][0], bad[1][0]);
	p = write_file(dir, "x.projection", text);
	ck_assert_msg(evp_rules_load(p, &rs, err, sizeof err) == EVP_OK, "%s", err);
	evp_rules_free(rs);
	free(p);
	/* reading a temporal table is fine */
	snprintf(text, sizeof text,
		 "projection shop\nschema shop\ntables items notes\n"
		 "on X\nINSERT INTO notes (position, body) SELECT :position, label FROM items"
		 " WHERE id = :stream;\nSELECT count(*) FROM items;\n");
	p = write_file(dir, "x.projection", text);
	ck_assert_msg(evp_rules_load(p, &rs, err, sizeof err) == EVP_OK, "%s", err);
	evp_rules_free(rs);
	free(p);
	kit_rmrf(dir);
	free(dir);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		history_reference,
		history_dead_letter,
		history_set_based,
		history_second_projection,
		history_key_change,
		history_refused,
		NULL,
	};

	return pgh_main("history", 600, tests);
}
