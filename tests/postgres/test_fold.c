/*
 * test_fold.c - folded UPDATEs (projector/fold.c) have exactly the
 * effect of one event at a time: for seeded random account histories
 * (increments and decrements in numeric with many scales, an int4
 * counter that overflows, assignments, NULL amounts, two UPDATEs of one
 * row in one event, deletes and re-opens, amounts that do not parse,
 * an owner set to NULL in a NOT NULL column), the current table, its
 * history and the dead letters are byte-identical to a run with
 * EVS_PROJECTOR_PER_EVENT=1, with batches of 64 to 10,000 events; also
 * the bank example (examples/bank) against one event at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <msgpack.h>

#include "evsproj.h"
#include "model.h"
#include "kit_pg.h"

static const char projection[] =
	"projection acct\n"
	"schema acct\n"
	"tables a\n"
	"on Open\n"
	"INSERT INTO a (id, owner, n, bal, version) VALUES (:stream, :data.owner, 0, 0, :version)"
	" ON CONFLICT (id) DO UPDATE SET owner = excluded.owner;\n"
	"on Add\n"
	"UPDATE a SET bal = bal + :data.amount::numeric, n = n + 1, version = :version"
	" WHERE id = :stream;\n"
	"on Sub\n"
	"UPDATE a SET bal = bal - :data.amount::numeric * 2, version = :version WHERE id = :stream;\n"
	"on Set\n"
	"UPDATE a SET bal = :data.amount::numeric, note = :data.note WHERE id = :stream;\n"
	"on Small\n"
	"UPDATE a SET small = small + :data.k::integer, \"N\" = \"N\" - :data.k::bigint"
	" WHERE id = :stream;\n"
	"on Owner\n"
	"UPDATE a SET owner = :data.owner WHERE id = :stream;\n"
	"on Twice\n"
	"UPDATE a SET bal = bal + :data.amount::numeric WHERE id = :stream;\n"
	"UPDATE a SET bal = bal - 1, version = :version WHERE id = :stream;\n"
	"on Close\n"
	"DELETE FROM a WHERE id = :stream;\n";

static const char migration[] =
	"CREATE SCHEMA acct;\n"
	"CREATE TABLE acct.a (id text PRIMARY KEY, owner text NOT NULL, n bigint NOT NULL,"
	" bal numeric, small integer NOT NULL DEFAULT 0, \"N\" bigint, note text,"
	" version bigint NOT NULL);\n";

static const char *const types[] = {"Open", "Add",   "Add",   "Add",   "Sub",  "Sub",
				    "Set",  "Small", "Owner", "Twice", "Close"};

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

/* one random event of the history */
static void append(evs_store *s, uint64_t *rng, int keys)
{
	const char *type = types[kit_rand(rng) % (sizeof types / sizeof *types)];
	char stream[32], amount[64];
	msgpack_sbuffer sb;
	msgpack_packer pk;
	evs_event_in in = {0};
	evs_append_result ar;
	uint64_t r = kit_rand(rng);

	snprintf(stream, sizeof stream, "acct-%d", (int)(kit_rand(rng) % (uint64_t)keys));
	snprintf(amount, sizeof amount, "%lld.%0*d", (long long)(r % 2001) - 1000,
		 (int)(r / 7 % 4) + 1, (int)(r / 31 % 1000));
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	pack_str(&pk, "amount");
	if (r % 997 == 0)
		pack_str(&pk, "not a number"); /* a dead letter */
	else if (r % 389 == 0)
		msgpack_pack_nil(&pk); /* bal becomes NULL until set */
	else
		pack_str(&pk, amount);
	pack_str(&pk, "owner");
	if (r % 211 == 0)
		msgpack_pack_nil(&pk); /* NOT NULL: a dead letter */
	else
		pack_str(&pk, r % 2 ? "ann" : "bob\t\\\"'");
	pack_str(&pk, "k");
	msgpack_pack_int64(&pk, r % 53 == 0 ? (r / 53 % 2 ? 1000000000 : -1000000000)
					    : (long long)(r % 100) - 50);
	pack_str(&pk, "note");
	if (r % 5 == 0)
		msgpack_pack_nil(&pk);
	else
		pack_str(&pk, amount);
	in.type = type;
	in.data = sb.data;
	in.data_len = sb.size;
	ck_assert_int_eq(evs_append(s, stream, EVS_ANY, &in, 1, &ar), EVS_OK);
	msgpack_sbuffer_destroy(&sb);
}

/*
 * An Open with a NULL owner: the INSERT breaks NOT NULL whatever came
 * before, so every history has dead letters at known-random places
 * instead of hoping the random ones turn up (seed 7282812071883898065
 * gave none).
 */
static void append_dead(evs_store *s, uint64_t *rng, int keys)
{
	char stream[32];
	msgpack_sbuffer sb;
	msgpack_packer pk;
	evs_event_in in = {0};
	evs_append_result ar;

	snprintf(stream, sizeof stream, "acct-%d", (int)(kit_rand(rng) % (uint64_t)keys));
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	pack_str(&pk, "owner");
	msgpack_pack_nil(&pk);
	in.type = "Open";
	in.data = sb.data;
	in.data_len = sb.size;
	ck_assert_int_eq(evs_append(s, stream, EVS_ANY, &in, 1, &ar), EVS_OK);
	msgpack_sbuffer_destroy(&sb);
}

static void log_stderr(void *ctx, int level, const char *message)
{
	(void)ctx;
	(void)level;
	fprintf(stderr, "projector: %s\n", message);
}

/* returns the batches that ran set-based (folded) */
static uint64_t run(const char *dir, const char *dsn, const char *migrations, const char *rules,
		    int batch, bool per_event)
{
	evp_config cfg;
	evp_stats st;
	char err[2048];

	if (per_event)
		setenv("EVS_PROJECTOR_PER_EVENT", "1", 1);
	pgh_config(&cfg, dir, dsn);
	if (migrations)
		cfg.migrations_dir = migrations;
	cfg.rules_path = rules;
	cfg.batch_max = batch;
	cfg.dead_letter = true;
	cfg.builtin = false;
	if (getenv("EVS_TEST_DEBUG"))
		cfg.log_level = EVS_LOG_DEBUG, cfg.log = log_stderr;
	cfg.once = true;
	ck_assert_msg(evp_run(&cfg, &st, err, sizeof err) == EVP_OK, "%s", err);
	unsetenv("EVS_PROJECTOR_PER_EVENT");
	return st.set_batches;
}

static void same(PGconn *a, PGconn *b, const char *sql)
{
	char *x = model_dump(a, sql), *y = model_dump(b, sql);
	size_t d = 0;

	while (x[d] && x[d] == y[d])
		d++;
	d = d > 200 ? d - 200 : 0;
	ck_assert_msg(strcmp(x, y) == 0, "%s differs:\none at a time:\n%.400s\nfolded:\n%.400s",
		      sql, x + d, y + d);
	free(x);
	free(y);
}

static uint64_t one_history(uint64_t *rngp)
{
	uint64_t rng = *rngp;
	char *dir = kit_tmpdir("store"), *mig = kit_tmpdir("mig"), *rules, *migrations, *p;
	char *dsn1 = pgh_new_db(), *dsn2 = pgh_new_db();
	evs_store *s = model_open(dir);
	int i, n = 2000 + (int)(kit_rand(&rng) % 3000), keys = 1 + (int)(kit_rand(&rng) % 40);
	int batch = 64 + (int)(kit_rand(&rng) % 2000);
	int dead1 = (int)(kit_rand(&rng) % (uint64_t)n),
	    dead2 = (int)(kit_rand(&rng) % (uint64_t)n);
	uint64_t set;
	PGconn *a, *b;

	p = write_file(mig, "1001_acct.sql", migration);
	free(p);
	rules = write_file(mig, "acct.projection", projection);
	ck_assert_int_ge(asprintf(&migrations, "%s:%s", pgh_migrations_dir(), mig), 0);
	for (i = 0; i < n; i++) {
		if (i == dead1 || i == dead2)
			append_dead(s, &rng, keys);
		append(s, &rng, keys);
	}
	printf("fold_random: %d events, %d keys, batches of %d\n", n, keys, batch);
	run(dir, dsn1, migrations, rules, batch, true);
	set = run(dir, dsn2, migrations, rules, kit_rand(&rng) % 2 ? batch : 10000, false);
	printf("  %llu batches folded\n", (unsigned long long)set);
	a = pgh_connect(dsn1);
	b = pgh_connect(dsn2);
	ck_assert_int_gt(pgh_int(a, "SELECT count(*) FROM evs.dead_letters"), 0);
	ck_assert_int_gt(pgh_int(a, "SELECT count(*) FROM acct.a_history"), n / 4);
	same(a, b, "SELECT * FROM acct.a ORDER BY id");
	same(a, b, "SELECT * FROM acct.a_history ORDER BY id, valid_from_position");
	same(a, b, "SELECT position, sqlstate FROM evs.dead_letters ORDER BY position");
	PQfinish(a);
	PQfinish(b);
	evs_close(s);
	kit_rmrf(dir);
	kit_rmrf(mig);
	free(dir);
	free(mig);
	free(rules);
	free(migrations);
	free(dsn1);
	free(dsn2);
	*rngp = rng;
	return set;
}

START_TEST(fold_random)
{
	uint64_t rng = kit_seed("fold_random");
	uint64_t set = 0;
	int i;

	for (i = 0; i < 3; i++)
		set += one_history(&rng);
	ck_assert_uint_gt(set, 0); /* the folded path ran */
}
END_TEST

START_TEST(fold_bank)
{
	uint64_t rng = kit_seed("fold_bank");
	char *dir = kit_tmpdir("store"), *dsn1 = pgh_new_db(), *dsn2 = pgh_new_db(), rules[512];
	evs_store *s = model_open(dir);
	PGconn *a, *b;

	snprintf(rules, sizeof rules, "%s/examples/bank/bank.projection", pgh_source_dir());
	model_generate_bank(s, &rng, 3000, 1 + (int)(kit_rand(&rng) % 50));
	run(dir, dsn1, NULL, rules, 500, true);
	ck_assert_uint_gt(run(dir, dsn2, NULL, rules, 500, false), 0);
	a = pgh_connect(dsn1);
	b = pgh_connect(dsn2);
	same(a, b, "SELECT * FROM bank.accounts ORDER BY id");
	same(a, b, "SELECT * FROM bank.accounts_history ORDER BY id, valid_from_position");
	same(a, b, "SELECT * FROM bank.ledger ORDER BY position");
	PQfinish(a);
	PQfinish(b);
	evs_close(s);
	kit_rmrf(dir);
	free(dir);
	free(dsn1);
	free(dsn2);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		fold_random,
		fold_bank,
		NULL,
	};

	return pgh_main("fold", 600, tests);
}
