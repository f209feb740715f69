/*
 * test_bank_schemas.c - the bank example's schema files (examples/bank/
 * schemas, BANK_SCHEMAS) register in a store that refuses types without
 * a schema; the bank's commands still work; a malformed deposit is
 * refused; an AccountOpened written as version 1 reads as version 2 with
 * its upcaster's default currency.
 */
#include <dirent.h>
#include <string.h>

#include "bank.h"
#include "kit.h"
#include "kit_store.h"

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void register_all(evs_store *st)
{
	DIR *d = opendir(BANK_SCHEMAS);
	struct dirent *de;
	char *names[64];
	size_t n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL && n < 64)
		if (strstr(de->d_name, ".json"))
			names[n++] = strdup(de->d_name);
	closedir(d);
	ck_assert_uint_ge(n, 8);
	qsort(names, n, sizeof *names, cmp); /* X.v1.json before X.v2.json */
	for (size_t i = 0; i < n; i++) {
		char path[1024], buf[65536];
		snprintf(path, sizeof path, "%s/%s", BANK_SCHEMAS, names[i]);
		FILE *f = fopen(path, "r");
		ck_assert_ptr_nonnull(f);
		size_t len = fread(buf, 1, sizeof buf, f);
		fclose(f);
		int rc = evs_schema_add(st, buf, len);
		ck_assert_msg(rc == EVS_OK, "%s: %s", names[i], evs_errmsg(st));
		free(names[i]);
	}
}

START_TEST(test_bank)
{
	evs_options o;
	tu_options(&o, EVS_SYNC_NONE);
	evs_store *st = tu_open(kit_dir, &o);
	bank b;

	register_all(st);
	tu_ok(st, evs_schema_set_unknown(st, EVS_UNKNOWN_REFUSE));
	tu_ok(st, bank_open_handle(&b, st, 0));
	tu_ok(st, bank_open(&b, "account-a", "Ann"));
	tu_ok(st, bank_open(&b, "account-b", "Bob"));
	tu_ok(st, bank_deposit(&b, "account-a", 10000));
	tu_ok(st, bank_withdraw(&b, "account-a", 100));
	tu_ok(st, bank_transfer(&b, "account-a", "account-b", 500, NULL));
	tu_ok(st, bank_withdraw(&b, "account-b", 500));
	tu_ok(st, bank_close(&b, "account-b"));
	tu_assert_rc(st, bank_transfer(&b, "account-a", "account-b", 1, NULL), EVS_REJECTED);

	/* a deposit of 0 written past the aggregate is refused by the schema */
	msgpack_sbuffer sb;
	kit_json_to_mp(&sb, "{\"amount\":0}");
	evs_event_in ev = {.type = "MoneyDeposited", .data = sb.data, .data_len = sb.size};
	tu_assert_rc(st, evs_append(st, "account-a", EVS_ANY, &ev, 1, NULL), EVS_SCHEMA_VIOLATION);
	ck_assert_ptr_nonnull(strstr(evs_errmsg(st), "at \"$.amount\" breaks rule \"minimum\""));
	msgpack_sbuffer_destroy(&sb);

	/* an account opened "before currencies": version 1 */
	kit_json_to_mp(&sb, "{\"owner\":\"Old\"}");
	evs_event_in old = {
		.type = "AccountOpened", .type_version = 1, .data = sb.data, .data_len = sb.size};
	tu_ok(st, evs_append(st, "account-old", EVS_NO_STREAM, &old, 1, NULL));
	msgpack_sbuffer_destroy(&sb);

	evs_iter *it;
	evs_event e;
	tu_ok(st, evs_read_stream(st, "account-old", 1, EVS_FORWARD, 0, &it));
	tu_ok(st, evs_iter_upcast(it, 1));
	tu_ok(st, evs_iter_next(it, &e));
	ck_assert_uint_eq(e.type_version, 2);
	char *t = kit_mp_text(e.data, e.data_len);
	ck_assert_str_eq(t, "{\"owner\"=>\"Old\", \"currency\"=>\"EUR\"}");
	free(t);
	evs_iter_free(it);

	/* the aggregate still loads it (it ignores the extra field) */
	bank_account acc;
	tu_ok(st, bank_load(&b, "account-old", NULL, &acc, NULL));
	ck_assert(acc.opened);
	ck_assert_str_eq(acc.owner, "Old");
	bank_close_handle(&b);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_bank,
		NULL,
	};

	return kit_main("schema-bank", 600, tests);
}
