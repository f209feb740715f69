/*
 * bank.c - the bank account aggregate and its commands (see bank.h).
 *
 * Everything here uses only <evstore.h> and msgpack-c: this file is what a
 * service built on libevstore looks like. The snapshot of an account is a
 * msgpack array [opened, closed, balance, owner, transactions, opened_at],
 * format version 1.
 */
#include "bank.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SNAPSHOT_FORMAT 1

/* ---- reading event data ------------------------------------------------- */

/* Fields of an event's data map that the account cares about. */
typedef struct fields {
	bool has_amount;
	int64_t amount;
	const char *owner;
	size_t owner_len;
} fields;

static bool key_is(const msgpack_object *k, const char *name)
{
	size_t n = strlen(name);
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       memcmp(k->via.str.ptr, name, n) == 0;
}

/* Read the fields; the owner string points into data. */
static int read_fields(const void *data, size_t len, msgpack_zone *z, fields *f)
{
	msgpack_object o;
	size_t off = 0;

	memset(f, 0, sizeof *f);
	if (msgpack_unpack(data, len, &off, z, &o) != MSGPACK_UNPACK_SUCCESS ||
	    o.type != MSGPACK_OBJECT_MAP)
		return EVS_BAD_DATA;
	for (uint32_t i = 0; i < o.via.map.size; i++) {
		const msgpack_object_kv *kv = &o.via.map.ptr[i];
		if (key_is(&kv->key, "amount")) {
			if (kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
			    kv->val.via.u64 <= INT64_MAX) {
				f->amount = (int64_t)kv->val.via.u64;
				f->has_amount = true;
			} else if (kv->val.type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
				f->amount = kv->val.via.i64;
				f->has_amount = true;
			}
		} else if (key_is(&kv->key, "owner") && kv->val.type == MSGPACK_OBJECT_STR) {
			f->owner = kv->val.via.str.ptr;
			f->owner_len = kv->val.via.str.size;
		}
	}
	return EVS_OK;
}

static bool type_is(const evs_event *ev, const char *name)
{
	size_t n = strlen(name);
	return ev->type.len == n && memcmp(ev->type.ptr, name, n) == 0;
}

/* ---- the aggregate ------------------------------------------------------ */

static int apply(void *ctx, void *state, const evs_event *ev)
{
	bank_account *acc = state;
	msgpack_zone z;
	fields f;
	int rc;

	(void)ctx;
	if (!msgpack_zone_init(&z, 1024))
		return EVS_NOMEM;
	rc = read_fields(ev->data, ev->data_len, &z, &f);
	if (rc != EVS_OK)
		goto out;
	if (type_is(ev, "AccountOpened")) {
		size_t n = f.owner_len < BANK_MAX_OWNER ? f.owner_len : BANK_MAX_OWNER;
		acc->opened = true;
		memcpy(acc->owner, f.owner ? f.owner : "", n);
		acc->owner[n] = 0;
		acc->opened_at = ev->recorded_at;
	} else if (type_is(ev, "AccountClosed")) {
		acc->closed = true;
	} else if (type_is(ev, "MoneyDeposited") || type_is(ev, "TransferReceived") ||
		   type_is(ev, "TransferReturned")) {
		acc->balance += f.amount;
		acc->transactions++;
	} else if (type_is(ev, "MoneyWithdrawn") || type_is(ev, "TransferSent")) {
		acc->balance -= f.amount;
		acc->transactions++;
	}
	/* other types: not ours to know, ignored */
out:
	msgpack_zone_destroy(&z);
	return rc;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

/* Emit one event: type, data {"amount": a} plus one optional string field,
 * and the command's ids. */
static int emit(evs_decision *d, const bank_cmd *cmd, const char *type, bool amount,
		const char *skey, const char *sval)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	evs_event_in ev;
	int rc;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, (amount ? 1 : 0) + (skey ? 1 : 0));
	if (amount) {
		pack_str(&pk, "amount");
		msgpack_pack_int64(&pk, cmd->amount);
	}
	if (skey) {
		pack_str(&pk, skey);
		pack_str(&pk, sval);
	}
	memset(&ev, 0, sizeof ev);
	ev.type = type;
	ev.data = sb.data;
	ev.data_len = sb.size;
	memcpy(ev.id, cmd->id, 16);
	memcpy(ev.correlation_id, cmd->correlation_id, 16);
	memcpy(ev.causation_id, cmd->causation_id, 16);
	rc = evs_decision_emit(d, &ev);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static int reject(evs_decision *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int reject(evs_decision *d, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return evs_decision_reject(d, msg);
}

static int decide(void *ctx, const void *state, const void *command, evs_decision *d)
{
	const bank_account *acc = state;
	const bank_cmd *cmd = command;
	const char *name = cmd->account ? cmd->account : "?";

	(void)ctx;
	if (cmd->op == BANK_OPEN) {
		if (acc->closed)
			return reject(d, "account \"%s\" was closed", name);
		if (acc->opened)
			return reject(d, "account \"%s\" is already open", name);
		if (cmd->owner == NULL || *cmd->owner == 0 || strlen(cmd->owner) > BANK_MAX_OWNER)
			return reject(d, "owner must be 1 to %d bytes", BANK_MAX_OWNER);
		return emit(d, cmd, "AccountOpened", false, "owner", cmd->owner);
	}
	/* a refund is always accepted: the money must go back somewhere */
	if (cmd->op == BANK_TRANSFER_RETURN)
		return emit(d, cmd, "TransferReturned", true, "to", cmd->other);
	if (!acc->opened)
		return reject(d, "account \"%s\" is not open", name);
	if (acc->closed)
		return reject(d, "account \"%s\" is closed", name);
	if (cmd->op == BANK_CLOSE) {
		if (acc->balance != 0)
			return reject(d, "account \"%s\" still holds %lld", name,
				      (long long)acc->balance);
		return emit(d, cmd, "AccountClosed", false, NULL, NULL);
	}
	if (cmd->amount <= 0)
		return reject(d, "amount must be above 0, not %lld", (long long)cmd->amount);
	switch (cmd->op) {
	case BANK_DEPOSIT: return emit(d, cmd, "MoneyDeposited", true, NULL, NULL);
	case BANK_TRANSFER_IN: return emit(d, cmd, "TransferReceived", true, "from", cmd->other);
	case BANK_WITHDRAW:
	case BANK_TRANSFER_OUT:
		if (cmd->op == BANK_TRANSFER_OUT &&
		    (cmd->other == NULL || strcmp(cmd->other, name) == 0))
			return reject(d, "a transfer needs another account than \"%s\"", name);
		if (acc->balance < cmd->amount)
			return reject(d,
				      "insufficient funds in account \"%s\": balance %lld, "
				      "%s %lld",
				      name, (long long)acc->balance,
				      cmd->op == BANK_WITHDRAW ? "withdrawal" : "transfer",
				      (long long)cmd->amount);
		if (cmd->op == BANK_WITHDRAW)
			return emit(d, cmd, "MoneyWithdrawn", true, NULL, NULL);
		return emit(d, cmd, "TransferSent", true, "to", cmd->other);
	}
	return reject(d, "unknown operation %d", cmd->op);
}

static int encode(void *ctx, const void *state, evs_sink *out)
{
	const bank_account *acc = state;
	msgpack_packer pk;

	(void)ctx;
	msgpack_packer_init(&pk, out, evs_sink_write);
	if (msgpack_pack_array(&pk, 6) ||
	    (acc->opened ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk)) ||
	    (acc->closed ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk)) ||
	    msgpack_pack_int64(&pk, acc->balance) || msgpack_pack_str(&pk, strlen(acc->owner)) ||
	    msgpack_pack_str_body(&pk, acc->owner, strlen(acc->owner)) ||
	    msgpack_pack_uint64(&pk, acc->transactions) || msgpack_pack_int64(&pk, acc->opened_at))
		return EVS_NOMEM;
	return EVS_OK;
}

static bool get_i64(const msgpack_object *o, int64_t *v)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
		*v = (int64_t)o->via.u64;
	else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		*v = o->via.i64;
	else
		return false;
	return true;
}

static int decode(void *ctx, void *state, const void *data, size_t len)
{
	bank_account *acc = state;
	msgpack_zone z;
	msgpack_object o;
	size_t off = 0;
	int64_t tx;
	int rc = EVS_CORRUPT;

	(void)ctx;
	if (!msgpack_zone_init(&z, 512))
		return EVS_NOMEM;
	if (msgpack_unpack(data, len, &off, &z, &o) != MSGPACK_UNPACK_SUCCESS ||
	    o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size != 6)
		goto out;
	const msgpack_object *a = o.via.array.ptr;
	if (a[0].type != MSGPACK_OBJECT_BOOLEAN || a[1].type != MSGPACK_OBJECT_BOOLEAN ||
	    a[3].type != MSGPACK_OBJECT_STR || a[3].via.str.size > BANK_MAX_OWNER ||
	    !get_i64(&a[2], &acc->balance) || !get_i64(&a[4], &tx) ||
	    !get_i64(&a[5], &acc->opened_at))
		goto out;
	acc->opened = a[0].via.boolean;
	acc->closed = a[1].via.boolean;
	memcpy(acc->owner, a[3].via.str.ptr, a[3].via.str.size);
	acc->owner[a[3].via.str.size] = 0;
	acc->transactions = (uint64_t)tx;
	rc = EVS_OK;
out:
	msgpack_zone_destroy(&z);
	return rc;
}

void bank_account_def(evs_aggregate_def *def, uint64_t snapshot_every)
{
	memset(def, 0, sizeof *def);
	def->name = "bank.account";
	def->state_size = sizeof(bank_account);
	def->apply = apply;
	def->decide = decide;
	def->snapshot_version = SNAPSHOT_FORMAT;
	def->snapshot_every = snapshot_every;
	def->snapshot_encode = encode;
	def->snapshot_decode = decode;
}

/* ---- the service -------------------------------------------------------- */

int bank_open_handle(bank *b, evs_store *store, uint64_t snapshot_every)
{
	evs_aggregate_def def;

	bank_account_def(&def, snapshot_every);
	b->store = store;
	return evs_aggregate_new(store, &def, &b->accounts);
}

void bank_close_handle(bank *b)
{
	evs_aggregate_free(b->accounts);
	b->accounts = NULL;
}

int bank_execute(bank *b, const bank_cmd *cmd, evs_execute_result *result)
{
	return evs_execute(b->accounts, cmd->account, cmd, result);
}

static int simple(bank *b, int op, const char *account, int64_t amount, const char *owner)
{
	bank_cmd cmd;

	memset(&cmd, 0, sizeof cmd);
	cmd.op = op;
	cmd.account = account;
	cmd.amount = amount;
	cmd.owner = owner;
	return bank_execute(b, &cmd, NULL);
}

int bank_open(bank *b, const char *account, const char *owner)
{
	return simple(b, BANK_OPEN, account, 0, owner);
}

int bank_deposit(bank *b, const char *account, int64_t amount)
{
	return simple(b, BANK_DEPOSIT, account, amount, NULL);
}

int bank_withdraw(bank *b, const char *account, int64_t amount)
{
	return simple(b, BANK_WITHDRAW, account, amount, NULL);
}

int bank_close(bank *b, const char *account)
{
	return simple(b, BANK_CLOSE, account, 0, NULL);
}

int bank_transfer(bank *b, const char *from, const char *to, int64_t amount,
		  uint8_t transfer_id[16])
{
	bank_cmd out, in, back;
	int rc, rc2;

	memset(&out, 0, sizeof out);
	out.op = BANK_TRANSFER_OUT;
	out.account = from;
	out.other = to;
	out.amount = amount;
	evs_uuid_v7(out.correlation_id);
	evs_uuid_v7(out.id); /* known, to be the others' cause */
	if (transfer_id)
		memcpy(transfer_id, out.correlation_id, 16);
	if ((rc = bank_execute(b, &out, NULL)) != EVS_OK)
		return rc;

	in = out;
	in.op = BANK_TRANSFER_IN;
	in.account = to;
	in.other = from;
	evs_uuid_v7(in.id);
	memcpy(in.causation_id, out.id, 16);
	rc = bank_execute(b, &in, NULL);
	if (rc != EVS_REJECTED)
		return rc;

	/* The payee refused: give the money back. The rejection's message
	 * stays the thread's last error (a successful call leaves it). */
	back = in;
	back.op = BANK_TRANSFER_RETURN;
	back.account = from;
	back.other = to;
	evs_uuid_v7(back.id);
	rc2 = bank_execute(b, &back, NULL);
	return rc2 != EVS_OK ? rc2 : EVS_REJECTED;
}

int bank_load(bank *b, const char *account, const evs_at *at, bank_account *out, evs_loaded *info)
{
	int rc = evs_aggregate_load(b->accounts, account, at, out, info);
	if (rc == EVS_OK)
		evs_aggregate_release(b->accounts, out); /* owns nothing: a no-op */
	return rc;
}
