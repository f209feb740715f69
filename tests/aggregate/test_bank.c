/*
 * test_bank.c - the bank example (examples/bank): commands, rejections,
 * transfers between two streams with correlation and causation ids, the
 * refused transfer's return, and snapshots of accounts.
 */
#include <string.h>

#include "bank.h"
#include "kit_store.h"

static evs_store *st;
static bank b;

static void setup(void)
{
	evs_options o;
	tu_options(&o, EVS_SYNC_NONE);
	st = tu_open(kit_dir, &o);
	tu_ok(st, bank_open_handle(&b, st, 5));
}

static void teardown(void)
{
	bank_close_handle(&b);
	evs_close(st);
}

static int64_t balance(const char *account)
{
	bank_account acc;
	tu_ok(st, bank_load(&b, account, NULL, &acc, NULL));
	return acc.balance;
}

static void rejected(int rc, const char *needle)
{
	ck_assert_msg(rc == EVS_REJECTED, "got %s, want REJECTED", evs_code_name(rc));
	ck_assert_msg(strstr(evs_errmsg(st), needle) != NULL, "message \"%s\" lacks \"%s\"",
		      evs_errmsg(st), needle);
}

/* The stream's events, owned. */
static size_t events_of(const char *stream, tu_ev **out)
{
	evs_iter *it;
	tu_ok(st, evs_read_stream(st, stream, 1, EVS_FORWARD, 0, &it));
	return tu_drain(st, it, out);
}

START_TEST(test_accounts)
{
	setup();
	tu_ok(st, bank_open(&b, "acct-1", "Ada"));
	rejected(bank_open(&b, "acct-1", "Ada"), "already open");
	rejected(bank_deposit(&b, "acct-2", 5), "not open");
	rejected(bank_deposit(&b, "acct-1", 0), "above 0");
	rejected(bank_deposit(&b, "acct-1", -5), "above 0");
	tu_ok(st, bank_deposit(&b, "acct-1", 500));
	tu_ok(st, bank_withdraw(&b, "acct-1", 200));
	rejected(bank_withdraw(&b, "acct-1", 301), "insufficient funds");
	ck_assert(strstr(evs_errmsg(st), "balance 300") != NULL);
	rejected(bank_close(&b, "acct-1"), "still holds 300");
	tu_ok(st, bank_withdraw(&b, "acct-1", 300));
	tu_ok(st, bank_close(&b, "acct-1"));
	rejected(bank_deposit(&b, "acct-1", 1), "closed");
	rejected(bank_open(&b, "acct-1", "Ada"), "was closed");
	rejected(bank_open(&b, "acct-3", ""), "owner");

	bank_account acc;
	evs_loaded li;
	tu_ok(st, bank_load(&b, "acct-1", NULL, &acc, &li));
	ck_assert(acc.opened && acc.closed);
	ck_assert_str_eq(acc.owner, "Ada");
	ck_assert_int_eq(acc.balance, 0);
	ck_assert_uint_eq(acc.transactions, 3);
	ck_assert_uint_eq(li.version, 5);
	ck_assert_uint_eq(li.snapshot_version, 5);
	ck_assert_int_gt(acc.opened_at, 0);

	/* rejections wrote nothing: 5 events in the whole store */
	evs_store_info info;
	tu_ok(st, evs_head(st, &info));
	ck_assert_uint_eq(info.last_position, 5);
	teardown();
}
END_TEST

START_TEST(test_transfer)
{
	uint8_t tid[16], zero[16] = {0};
	tu_ev *ea, *eb;
	size_t na, nb;

	setup();
	tu_ok(st, bank_open(&b, "alice", "Alice"));
	tu_ok(st, bank_open(&b, "bob", "Bob"));
	tu_ok(st, bank_deposit(&b, "alice", 1000));
	rejected(bank_transfer(&b, "alice", "bob", 1001, tid), "insufficient funds");
	rejected(bank_transfer(&b, "alice", "alice", 10, tid), "another account");
	tu_ok(st, bank_transfer(&b, "alice", "bob", 400, tid));
	ck_assert_int_eq(balance("alice"), 600);
	ck_assert_int_eq(balance("bob"), 400);

	na = events_of("alice", &ea);
	nb = events_of("bob", &eb);
	ck_assert_uint_eq(na, 3);
	ck_assert_uint_eq(nb, 2);
	const evs_event *sent = &ea[2].ev, *recv = &eb[1].ev;
	ck_assert(tu_str_eq(sent->type, "TransferSent"));
	ck_assert(tu_str_eq(recv->type, "TransferReceived"));
	ck_assert_mem_eq(sent->correlation_id, tid, 16);
	ck_assert_mem_eq(recv->correlation_id, tid, 16);
	ck_assert_mem_ne(tid, zero, 16);
	ck_assert_mem_eq(recv->causation_id, sent->id, 16); /* caused by the send */
	ck_assert_mem_eq(sent->causation_id, zero, 16);
	int64_t amount;
	ck_assert_int_eq(tu_mp_get_int(recv->data, recv->data_len, "amount", &amount), 0);
	ck_assert_int_eq(amount, 400);
	tu_evs_free(ea, na);
	tu_evs_free(eb, nb);

	/* the payee is closed: the money comes back */
	tu_ok(st, bank_withdraw(&b, "bob", 400));
	tu_ok(st, bank_close(&b, "bob"));
	rejected(bank_transfer(&b, "alice", "bob", 100, tid), "closed");
	ck_assert_int_eq(balance("alice"), 600);
	ck_assert_int_eq(balance("bob"), 0);
	na = events_of("alice", &ea);
	ck_assert_uint_eq(na, 5);
	ck_assert(tu_str_eq(ea[3].ev.type, "TransferSent"));
	ck_assert(tu_str_eq(ea[4].ev.type, "TransferReturned"));
	ck_assert_mem_eq(ea[3].ev.correlation_id, tid, 16);
	ck_assert_mem_eq(ea[4].ev.correlation_id, tid, 16);
	ck_assert_mem_eq(ea[4].ev.causation_id, ea[3].ev.id, 16);
	tu_evs_free(ea, na);
	nb = events_of("bob", &eb);
	ck_assert_uint_eq(nb, 4); /* nothing received after closing */
	tu_evs_free(eb, nb);

	/* a transfer to an account that never existed also comes back */
	rejected(bank_transfer(&b, "alice", "nobody", 50, NULL), "not open");
	ck_assert_int_eq(balance("alice"), 600);
	teardown();
}
END_TEST

/* Many deposits: loads start from snapshots and agree with replay. */
START_TEST(test_snapshots)
{
	setup();
	tu_ok(st, bank_open(&b, "acct", "Ann"));
	for (int i = 1; i <= 52; i++)
		tu_ok(st, bank_deposit(&b, "acct", i));
	bank_account acc, pure;
	evs_loaded li;
	tu_ok(st, bank_load(&b, "acct", NULL, &acc, &li));
	ck_assert_int_eq(acc.balance, 52 * 53 / 2);
	ck_assert_uint_eq(li.version, 53);
	ck_assert_uint_eq(li.snapshot_version, 50);

	evs_aggregate_def def;
	evs_aggregate *p;
	bank_account_def(&def, 0);
	def.snapshot_encode = NULL;
	def.snapshot_decode = NULL;
	tu_ok(st, evs_aggregate_new(st, &def, &p));
	tu_ok(st, evs_aggregate_load(p, "acct", NULL, &pure, &li));
	ck_assert_uint_eq(li.snapshot_version, 0);
	ck_assert_int_eq(memcmp(&acc, &pure, sizeof acc), 0);
	evs_aggregate_release(p, &pure);
	evs_aggregate_free(p);
	teardown();
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_accounts,
		test_transfer,
		test_snapshots,
		NULL,
	};

	return kit_main("aggregate-bank", 600, tests);
}
