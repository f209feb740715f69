/*
 * test_rules.c - declared projections: named parameters of every kind
 * bound as typed values (paths into the payload, arrays, booleans,
 * numbers, jsonb, timestamps, uuids, NULL for a missing path), SQL
 * injection attempts stay data, the example bank projection equals a fold
 * in C, a failing event stops the projector (nothing of its batch
 * committed) or, when asked, is parked in evs.dead_letters.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <msgpack.h>

#include "evsproj.h"
#include "model.h"
#include "kit_pg.h"

static int run_once(const char *store, const char *dsn, const char *rules, bool dead, int batch,
		    char *err, size_t errlen, evp_stats *st)
{
	evp_config cfg;

	pgh_config(&cfg, store, dsn);
	cfg.rules_path = rules;
	cfg.dead_letter = dead;
	cfg.batch_max = batch;
	cfg.once = true;
	return evp_run(&cfg, st, err, errlen);
}

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

static void pack_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

/* An order: {"customer": c, "paid": b, "total": 0.1 (a double with no short exact binary form: it must arrive as 0.1), "lines": [{"sku": s, "qty": 2}], "note": nil} */
static void append_order(evs_store *s, const char *stream, const char *customer, bool paid,
			 const char *sku, const char *type)
{
	msgpack_sbuffer sb, mb;
	msgpack_packer pk;
	evs_event_in in = {0};

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	pack_str(&pk, "customer");
	pack_str(&pk, customer);
	pack_str(&pk, "paid");
	paid ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
	pack_str(&pk, "total");
	msgpack_pack_double(&pk, 0.1);
	pack_str(&pk, "lines");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 2);
	pack_str(&pk, "sku");
	pack_str(&pk, sku);
	pack_str(&pk, "qty");
	msgpack_pack_int(&pk, 2);
	pack_str(&pk, "note");
	msgpack_pack_nil(&pk);
	msgpack_sbuffer_init(&mb);
	msgpack_packer_init(&pk, &mb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	pack_str(&pk, "user");
	pack_str(&pk, "ops");
	in.type = type;
	in.data = sb.data;
	in.data_len = sb.size;
	in.metadata = mb.data;
	in.metadata_len = mb.size;
	in.occurred_at = 1700000000123456000LL;
	ck_assert_int_eq(evs_append(s, stream, EVS_ANY, &in, 1, NULL), EVS_OK);
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_destroy(&mb);
}

static const char orders_rules[] =
	"# orders: every kind of parameter\n"
	"projection orders\n"
	"tables t.orders\n"
	"on OrderPlaced\n"
	"INSERT INTO t.orders (id, customer, paid, total, sku, qty, payload, occurred,\n"
	"                      event_id, who, note, missing, pos, ver, literal)\n"
	"VALUES (:stream, :data.customer, :data.paid, :data.total, :data.lines[0].sku,\n"
	"        :data.lines[0].qty, :data, :occurred_at, :event_id, :metadata.user,\n"
	"        :data.note, :data.lines[3].sku, :position, :version,\n"
	"        ':not_a_param' || '::text');\n"
	"on OrderBad\n"
	"INSERT INTO t.orders (id, customer) VALUES (:stream, :data.customer);\n"
	"INSERT INTO t.orders (id, customer) VALUES (:stream, :data.customer);\n";

static void create_orders(const char *dsn)
{
	PGconn *c = pgh_connect(dsn);

	pgh_exec(
		c,
		"CREATE SCHEMA t; CREATE TABLE t.orders (id text PRIMARY KEY, customer text NOT NULL,"
		" paid boolean, total numeric, sku text, qty integer, payload jsonb,"
		" occurred timestamptz, event_id uuid, who text, note text, missing text,"
		" pos bigint, ver bigint, literal text)");
	PQfinish(c);
}

START_TEST(rules_parameters)
{
	char *dir = kit_tmpdir("store"), *dsn = pgh_new_db(), *rules, err[2048], *v;
	evs_store *s = model_open(dir);
	PGconn *c;

	rules = write_file(dir, "orders.projection", orders_rules);
	create_orders(dsn);
	append_order(s, "order-1", "Robert'); DROP TABLE t.orders; --", true, "SKU-\"1\"",
		     "OrderPlaced");
	append_order(s, "order-2", "Ann", false, "x\\y", "OrderPlaced");
	ck_assert_msg(run_once(dir, dsn, rules, false, 10, err, sizeof err, NULL) == EVP_OK, "%s",
		      err);
	c = pgh_connect(dsn);
	v = pgh_value(
		c,
		"SELECT concat_ws('|', id, customer, paid, total, sku, qty, payload->'lines'->0->>'qty',"
		" occurred = '2023-11-14 22:13:20.123456+00', who, coalesce(note, 'NULL'),"
		" coalesce(missing, 'NULL'), pos, ver, literal, event_id IS NOT NULL)"
		" FROM t.orders WHERE id = 'order-1'");
	ck_assert_str_eq(
		v,
		"order-1|Robert'); DROP TABLE t.orders; --|t|0.1|SKU-\"1\"|2|2|t|ops|NULL|NULL|1|1|:not_a_param::text|t");
	free(v);
	v = pgh_value(c, "SELECT concat_ws('|', paid, sku) FROM t.orders WHERE id = 'order-2'");
	ck_assert_str_eq(v, "f|x\\y");
	free(v);
	ck_assert_int_eq(
		pgh_int(c, "SELECT position FROM evs.checkpoints WHERE projection = 'orders'"), 2);
	pgh_release(c, s, dir, rules);
	free(dsn);
}
END_TEST

START_TEST(rules_syntax_errors)
{
	char *dir = kit_tmpdir("rules"), *p, err[1024];
	evp_rules *r;

	p = write_file(dir, "a.projection", "projection a\non X\nINSERT INTO t VALUES (:nope);\n");
	ck_assert_int_eq(evp_rules_load(p, &r, err, sizeof err), EVP_SYNTAX);
	ck_assert_msg(strstr(err, "unknown parameter \":nope\"") != NULL, "%s", err);
	free(p);
	p = write_file(dir, "b.projection", "projection b\non X\nINSERT INTO t VALUES (:stream)\n");
	ck_assert_int_eq(evp_rules_load(p, &r, err, sizeof err), EVP_SYNTAX);
	ck_assert_msg(strstr(err, "without a closing") != NULL, "%s", err);
	free(p);
	p = write_file(dir, "c.projection", "on X\nSELECT 1;\n");
	ck_assert_int_eq(evp_rules_load(p, &r, err, sizeof err), EVP_SYNTAX);
	free(p);
	p = write_file(dir, "d.projection", "projection d\non X\nSELECT :data.a[x];\n");
	ck_assert_int_eq(evp_rules_load(p, &r, err, sizeof err), EVP_SYNTAX);
	free(p);
	kit_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(rules_failure_stops)
{
	char *dir = kit_tmpdir("store"), *dsn = pgh_new_db(), *rules, err[2048];
	evs_store *s = model_open(dir);
	PGconn *c;

	rules = write_file(dir, "orders.projection", orders_rules);
	create_orders(dsn);
	append_order(s, "order-1", "a", true, "s", "OrderPlaced");
	append_order(s, "order-2", "b", true, "s", "OrderPlaced");
	append_order(s, "order-3", "c", true, "s", "OrderBad"); /* duplicate key */
	append_order(s, "order-4", "d", true, "s", "OrderPlaced");
	ck_assert_int_eq(run_once(dir, dsn, rules, false, 2, err, sizeof err, NULL), EVP_SQL);
	ck_assert_msg(strstr(err, "position 3") && strstr(err, "OrderBad") &&
			      strstr(err, "duplicate key value violates unique constraint"),
		      "%s", err);
	c = pgh_connect(dsn);
	/* the first batch committed, the failing one did not */
	ck_assert_int_eq(
		pgh_int(c, "SELECT position FROM evs.checkpoints WHERE projection = 'orders'"), 2);
	ck_assert_int_eq(pgh_int(c, "SELECT count(*) FROM t.orders"), 2);
	ck_assert_int_eq(pgh_int(c, "SELECT count(*) FROM evs.events"), 2);
	/* and it stops at the same place again */
	ck_assert_int_eq(run_once(dir, dsn, rules, false, 100, err, sizeof err, NULL), EVP_SQL);
	ck_assert_int_eq(
		pgh_int(c, "SELECT position FROM evs.checkpoints WHERE projection = 'orders'"), 2);
	pgh_release(c, s, dir, rules);
	free(dsn);
}
END_TEST

START_TEST(rules_dead_letter)
{
	char *dir = kit_tmpdir("store"), *dsn = pgh_new_db(), *rules, err[2048], *v;
	evs_store *s = model_open(dir);
	evp_stats st;
	PGconn *c;

	rules = write_file(dir, "orders.projection", orders_rules);
	create_orders(dsn);
	append_order(s, "order-1", "a", true, "s", "OrderPlaced");
	append_order(s, "order-2", "b", true, "s", "OrderBad");
	append_order(s, "order-3", "c", true, "s", "OrderPlaced");
	append_order(s, "order-1", "dup", true, "s", "OrderPlaced"); /* primary key again */
	append_order(s, "order-5", "e", true, "s", "OrderPlaced");
	ck_assert_msg(run_once(dir, dsn, rules, true, 100, err, sizeof err, &st) == EVP_OK, "%s",
		      err);
	ck_assert_uint_eq(st.dead_letters, 2);
	c = pgh_connect(dsn);
	ck_assert_int_eq(
		pgh_int(c, "SELECT position FROM evs.checkpoints WHERE projection = 'orders'"), 5);
	/* the parked event's first statement was undone with it */
	v = pgh_value(c, "SELECT string_agg(id || ':' || customer, ',' ORDER BY id) FROM t.orders");
	ck_assert_str_eq(v, "order-1:a,order-3:c,order-5:e");
	free(v);
	v = pgh_value(c,
		      "SELECT string_agg(concat_ws('|', position, stream, type, sqlstate,"
		      " event->'data'->>'customer'), ',' ORDER BY position) FROM evs.dead_letters");
	ck_assert_str_eq(v, "2|order-2|OrderBad|23505|b,4|order-1|OrderPlaced|23505|dup");
	free(v);
	/* built-in models have every event */
	ck_assert_int_eq(pgh_int(c, "SELECT count(*) FROM evs.events"), 5);
	pgh_release(c, s, dir, rules);
	free(dsn);
}
END_TEST

START_TEST(rules_bank_projection)
{
	uint64_t rng = kit_seed("rules_bank_projection");
	char *dir = kit_tmpdir("store"), *dsn = pgh_new_db(), rules[512], err[2048];
	evs_store *s = model_open(dir);
	evs_iter *it;
	evs_event ev;
	long long balance[8] = {0};
	PGconn *c;
	int i;

	snprintf(rules, sizeof rules, "%s/examples/bank/bank.projection", pgh_source_dir());
	model_generate_bank(s, &rng, 600, 8);
	ck_assert_msg(run_once(dir, dsn, rules, false, 1 + (int)(kit_rand(&rng) % 100), err,
			       sizeof err, NULL) == EVP_OK,
		      "%s", err);
	/* the fold in C */
	ck_assert_int_eq(evs_read_all(s, 1, EVS_FORWARD, NULL, 0, &it), EVS_OK);
	while (evs_iter_next(it, &ev) == EVS_OK) {
		msgpack_zone z;
		msgpack_object o;
		size_t off = 0;
		int acct = atoi(ev.stream.ptr + 8);
		long long amount = 0;
		uint32_t k;

		msgpack_zone_init(&z, 256);
		ck_assert_int_eq(msgpack_unpack(ev.data, ev.data_len, &off, &z, &o),
				 MSGPACK_UNPACK_SUCCESS);
		for (k = 0; k < o.via.map.size; k++)
			if (o.via.map.ptr[k].key.via.str.size == 6 &&
			    memcmp(o.via.map.ptr[k].key.via.str.ptr, "amount", 6) == 0)
				amount = (long long)o.via.map.ptr[k].val.via.u64;
		msgpack_zone_destroy(&z);
#define IS(t) (ev.type.len == strlen(t) && memcmp(ev.type.ptr, t, ev.type.len) == 0)
		if (IS("MoneyWithdrawn") || IS("TransferSent"))
			balance[acct] -= amount;
		else if (!IS("AccountOpened"))
			balance[acct] += amount;
#undef IS
	}
	evs_iter_free(it);
	c = pgh_connect(dsn);
	for (i = 0; i < 8; i++) {
		char sql[128];

		snprintf(sql, sizeof sql,
			 "SELECT balance FROM bank.accounts WHERE id = 'account-%d'", i);
		ck_assert_int_eq(pgh_int(c, sql), balance[i]);
	}
	ck_assert_int_eq(pgh_int(c, "SELECT count(*) FROM bank.ledger"), 600);
	pgh_release(c, s, dir, dsn);
}
END_TEST

START_TEST(rules_rebuild_and_swap)
{
	uint64_t rng = kit_seed("rules_rebuild_and_swap");
	char *dir = kit_tmpdir("store"), *dsn = pgh_new_db(), rules[512], err[2048], *good, *bad;
	evs_store *s = model_open(dir);
	pgh_live rb;
	PGconn *c, *reader;
	evs_store_info h;

	snprintf(rules, sizeof rules, "%s/examples/bank/bank.projection", pgh_source_dir());
	model_generate_bank(s, &rng, 400, 5);
	ck_assert_msg(run_once(dir, dsn, rules, false, 50, err, sizeof err, NULL) == EVP_OK, "%s",
		      err);
	c = pgh_connect(dsn);
	good = model_dump(c, "SELECT * FROM bank.accounts ORDER BY id");
	/* a bug wrote wrong balances: the rebuild repairs them */
	pgh_exec(c, "UPDATE bank.accounts SET balance = -1");
	bad = model_dump(c, "SELECT * FROM bank.accounts ORDER BY id");
	/* an analyst keeps reading the old tables during the rebuild */
	reader = pgh_connect(dsn);
	pgh_exec(reader, "SET ROLE evs_analyst");
	model_generate_bank(s, &rng, 100, 5);

	pgh_live_init(&rb, dir, dsn);
	rb.cfg.migrations_dir = NULL;
	rb.cfg.rules_path = rules;
	rb.cfg.rebuild = true;
	rb.cfg.batch_max = 7;
	/* the live projection's lock is held (as by its running projector):
	 * the rebuild catches up into bank__rebuild and waits to swap */
	pgh_exec(c, "SELECT pg_advisory_lock(1702261616, hashtext('bank'))");
	pgh_live_start(&rb);
	ck_assert_int_eq(evs_head(s, &h), EVS_OK);
	for (int waited = 0;
	     pgh_int(c, "SELECT coalesce((SELECT position FROM evs.checkpoints"
			" WHERE projection = 'bank__rebuild'), 0)") < (long long)h.last_position;
	     waited += 20) {
		struct timespec ts = {0, 20000000};

		ck_assert_msg(waited < 60000, "rebuild did not catch up");
		nanosleep(&ts, NULL);
	}
	{
		char *now = model_dump(reader, "SELECT * FROM bank.accounts ORDER BY id");

		ck_assert_str_eq(now, bad); /* still the old tables */
		free(now);
	}
	pgh_exec(c, "SELECT pg_advisory_unlock(1702261616, hashtext('bank'))");
	ck_assert_msg(pgh_live_join(&rb) == EVP_OK, "rebuild: %s", rb.err);
	/* swapped: the rebuilt tables, with the newer events too */
	ck_assert_int_eq(
		pgh_int(c, "SELECT position FROM evs.checkpoints WHERE projection = 'bank'"),
		(long long)h.last_position);
	ck_assert_int_eq(
		pgh_int(c,
			"SELECT count(*) FROM evs.checkpoints WHERE projection = 'bank__rebuild'"),
		0);
	ck_assert_int_eq(
		pgh_int(c, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'bank\\_\\_%'"),
		0);
	ck_assert_int_eq(pgh_int(reader, "SELECT count(*) FROM bank.accounts WHERE balance = -1"),
			 0);
	ck_assert_int_eq(pgh_int(reader, "SELECT count(*) FROM bank.ledger"), 500);
	/* a plain clean run agrees */
	{
		char *dsn2 = pgh_new_db(), *x, *y;
		PGconn *c2;

		ck_assert_msg(run_once(dir, dsn2, rules, false, 100, err, sizeof err, NULL) ==
				      EVP_OK,
			      "%s", err);
		c2 = pgh_connect(dsn2);
		x = model_dump(c, "SELECT * FROM bank.accounts ORDER BY id");
		y = model_dump(c2, "SELECT * FROM bank.accounts ORDER BY id");
		ck_assert_str_eq(x, y);
		free(x);
		free(y);
		x = model_dump(c, "SELECT * FROM bank.ledger ORDER BY position");
		y = model_dump(c2, "SELECT * FROM bank.ledger ORDER BY position");
		ck_assert_str_eq(x, y);
		free(x);
		free(y);
		/* the history was rebuilt too, byte-identical, with its functions
		 * (bound to the swapped-in tables) */
		x = model_dump(c, "SELECT * FROM bank.accounts_history"
				  " ORDER BY id, valid_from_position");
		y = model_dump(c2, "SELECT * FROM bank.accounts_history"
				   " ORDER BY id, valid_from_position");
		ck_assert_str_eq(x, y);
		ck_assert_int_gt(pgh_int(c, "SELECT count(*) FROM bank.accounts_history"), 500);
		free(x);
		free(y);
		x = model_dump(reader, "SELECT * FROM bank.accounts_at_position(250) ORDER BY id");
		y = model_dump(c2, "SELECT * FROM bank.accounts_at_position(250) ORDER BY id");
		ck_assert_str_eq(x, y);
		free(x);
		free(y);
		PQfinish(c2);
		free(dsn2);
	}
	/* the live projection goes on from the handed-over checkpoint */
	model_generate_bank(s, &rng, 10, 5);
	ck_assert_msg(run_once(dir, dsn, rules, false, 100, err, sizeof err, NULL) == EVP_OK, "%s",
		      err);
	ck_assert_int_eq(pgh_int(c, "SELECT count(*) FROM bank.ledger"), 510);
	free(good);
	free(bad);
	PQfinish(reader);
	pgh_release(c, s, dir, dsn);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		rules_parameters,
		rules_syntax_errors,
		rules_failure_stops,
		rules_dead_letter,
		rules_bank_projection,
		rules_rebuild_and_swap,
		NULL,
	};

	return pgh_main("rules", 300, tests);
}
