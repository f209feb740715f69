/*
 * model.c - random histories and the reference check (see model.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <msgpack.h>

#include "evsproj.h"
#include "model.h"
#include "kit_pg.h"

evs_store *model_open(const char *dir)
{
	evs_options o;
	evs_store *s = NULL;

	evs_options_init(&o);
	o.sync = EVS_SYNC_NONE;
	ck_assert_msg(evs_open(dir, &o, &s) == EVS_OK, "%s", evs_open_errmsg());
	return s;
}

static const char *const weird_streams[] = {"tab\there",     "quote\"s",
					    "back\\slash",   "uni-\xc3\xa9\xe2\x82\xac",
					    "comma,brace{}", "new\nline"};

static void pack_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

static void pack_value(msgpack_packer *pk, uint64_t *rng, int depth)
{
	static const char *const strs[] = {
		"plain", "quote\"back\\slash", "tab\tnl\ncr\r", "\xc3\xa9t\xc3\xa9",
		"",      "{\"not\":\"json\"}", "ctl\x01"};

	switch (kit_rand(rng) % (depth > 1 ? 6 : 8)) {
	case 0: msgpack_pack_int64(pk, (int64_t)(kit_rand(rng) % 2000000) - 1000000); break;
	case 1: msgpack_pack_double(pk, (double)(int64_t)(kit_rand(rng) % 100000) / 7.0); break;
	case 2: pack_str(pk, strs[kit_rand(rng) % 7]); break;
	case 3: kit_rand(rng) % 2 ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
	case 4: msgpack_pack_nil(pk); break;
	case 5: msgpack_pack_uint64(pk, kit_rand(rng) % 1000); break;
	case 6: {
		int n = (int)(kit_rand(rng) % 3), i;

		msgpack_pack_map(pk, (size_t)n);
		for (i = 0; i < n; i++) {
			char k[2] = {(char)('x' + i), 0};

			pack_str(pk, k);
			pack_value(pk, rng, depth + 1);
		}
		break;
	}
	default: {
		int n = (int)(kit_rand(rng) % 3), i;

		msgpack_pack_array(pk, (size_t)n);
		for (i = 0; i < n; i++)
			pack_value(pk, rng, depth + 1);
	}
	}
}

void model_generate(evs_store *store, uint64_t *rng, int n)
{
	static const char *const keys[] = {"a", "b", "c", "n", "s", "nested", "k\"q"};
	static const char *const types[] = {"Created", "Updated", "Renamed", "Tagged"};
	int done = 0;

	while (done < n) {
		char stream[64];
		evs_event_in in[5];
		msgpack_sbuffer sb[5];
		int k = 1 + (int)(kit_rand(rng) % 4), i;
		evs_append_result res;
		uint64_t r = kit_rand(rng) % 40;

		if (r < 6)
			snprintf(stream, sizeof stream, "%s", weird_streams[r]);
		else
			snprintf(stream, sizeof stream, "entity-%llu", (unsigned long long)(r - 6));
		memset(in, 0, sizeof in);
		for (i = 0; i < k; i++) {
			msgpack_packer pk;
			int nk = 1 + (int)(kit_rand(rng) % 3), j;
			int start = (int)(kit_rand(rng) % 7);

			msgpack_sbuffer_init(&sb[i]);
			msgpack_packer_init(&pk, &sb[i], msgpack_sbuffer_write);
			msgpack_pack_map(&pk, (size_t)nk);
			for (j = 0; j < nk; j++) {
				pack_str(&pk, keys[(start + j) % 7]); /* distinct keys */
				pack_value(&pk, rng, 0);
			}
			in[i].type = types[kit_rand(rng) % 4];
			in[i].type_version = 1 + (uint32_t)(kit_rand(rng) % 2);
			in[i].data = sb[i].data;
			in[i].data_len = sb[i].size;
			if (kit_rand(rng) % 3 == 0)
				in[i].occurred_at = 1700000000000000000LL +
						    (int64_t)(kit_rand(rng) % 1000000000);
			if (kit_rand(rng) % 2)
				evs_uuid_v7(in[i].correlation_id);
		}
		ck_assert_int_eq(evs_append(store, stream, EVS_ANY, in, (size_t)k, &res), EVS_OK);
		for (i = 0; i < k; i++)
			msgpack_sbuffer_destroy(&sb[i]);
		done += k;
	}
}

void model_generate_bank(evs_store *store, uint64_t *rng, int n, int accounts)
{
	int i;

	for (i = 0; i < accounts; i++) {
		char stream[32], owner[32];
		msgpack_sbuffer sb;
		msgpack_packer pk;
		evs_event_in in = {0};
		evs_stream_info h;

		snprintf(stream, sizeof stream, "account-%d", i);
		if (evs_stream_head(store, stream, &h) == EVS_OK)
			continue; /* opened by an earlier call */
		snprintf(owner, sizeof owner, "Owner \"%d\"\t\\", i);
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 1);
		pack_str(&pk, "owner");
		pack_str(&pk, owner);
		in.type = "AccountOpened";
		in.data = sb.data;
		in.data_len = sb.size;
		ck_assert_int_eq(evs_append(store, stream, EVS_NO_STREAM, &in, 1, NULL), EVS_OK);
		msgpack_sbuffer_destroy(&sb);
	}
	for (i = 0; i < n; i++) {
		static const char *const types[] = {"MoneyDeposited", "MoneyWithdrawn",
						    "TransferSent", "TransferReceived",
						    "TransferReturned"};
		char stream[32], other[32];
		msgpack_sbuffer sb;
		msgpack_packer pk;
		evs_event_in in = {0};
		int t = (int)(kit_rand(rng) % 5);

		snprintf(stream, sizeof stream, "account-%d",
			 (int)(kit_rand(rng) % (uint64_t)accounts));
		snprintf(other, sizeof other, "account-%d",
			 (int)(kit_rand(rng) % (uint64_t)accounts));
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, t >= 2 ? 2 : 1);
		pack_str(&pk, "amount");
		msgpack_pack_uint64(&pk, 1 + kit_rand(rng) % 1000);
		if (t >= 2) {
			pack_str(&pk, t == 3 ? "from" : "to");
			pack_str(&pk, other);
		}
		in.type = types[t];
		in.data = sb.data;
		in.data_len = sb.size;
		ck_assert_int_eq(evs_append(store, stream, EVS_ANY, &in, 1, NULL), EVS_OK);
		msgpack_sbuffer_destroy(&sb);
	}
}

static char *json_of(const void *p, size_t n)
{
	evs__buf b = {0};

	ck_assert_int_eq(evs__msgpack_to_json(&b, p, n, 0), 0);
	ck_assert(evs__buf_cstr(&b));
	return b.ptr;
}

static char *time_text(int64_t ns)
{
	evs__buf b = {0};

	evs__time_pg_text(&b, ns);
	ck_assert(evs__buf_cstr(&b));
	return b.ptr;
}

static void expect_true(PGconn *c, const char *sql, int n, const char *const *vals,
			const char *what, uint64_t position)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		char msg[1024];

		snprintf(msg, sizeof msg, "%s: %s", what, PQresultErrorMessage(r));
		PQclear(r);
		ck_abort_msg("%s", msg);
	}
	ck_assert_msg(PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0,
		      "%s differs at position %llu (%d rows, value %s)", what,
		      (unsigned long long)position, PQntuples(r),
		      PQntuples(r) ? PQgetvalue(r, 0, 0) : "-");
	PQclear(r);
}

void model_check_builtin(PGconn *c, evs_store *store, uint64_t *rng)
{
	evs_store_info head;
	evs_iter *it;
	evs_event ev;
	char pos[24], ver[24], tv[24], ns[24], sql[512];
	uint64_t seen = 0;

	ck_assert_int_eq(evs_head(store, &head), EVS_OK);
	snprintf(sql, sizeof sql, "SELECT count(*) = %llu FROM evs.events",
		 (unsigned long long)head.last_position);
	ck_assert_int_eq(pgh_int(c, "SELECT count(*) FROM evs.events"),
			 (long long)head.last_position);
	ck_assert_int_eq(pgh_int(c, "SELECT count(*) FROM evs.state_history"),
			 (long long)head.last_position);
	/* validity intervals chain within each stream */
	ck_assert_int_eq(
		pgh_int(c,
			"SELECT count(*) FROM (SELECT valid_to, lead(valid_from) OVER"
			" (PARTITION BY stream ORDER BY version) AS nxt FROM evs.state_history) x"
			" WHERE valid_to IS DISTINCT FROM nxt"),
		0);
	ck_assert_int_eq(evs_read_all(store, 1, EVS_FORWARD, NULL, 0, &it), EVS_OK);
	while (evs_iter_next(it, &ev) == EVS_OK) {
		char *stream = strndup(ev.stream.ptr, ev.stream.len);
		char *type = strndup(ev.type.ptr, ev.type.len);
		char *data = json_of(ev.data, ev.data_len),
		     *meta = json_of(ev.metadata, ev.metadata_len);
		char *hist, *vfrom;
		evs_state st;
		evs_at at = {.kind = EVS_AT_POSITION, .position = ev.position};
		const char *vals[8];

		seen++;
		snprintf(pos, sizeof pos, "%llu", (unsigned long long)ev.position);
		snprintf(ver, sizeof ver, "%llu", (unsigned long long)ev.version);
		snprintf(tv, sizeof tv, "%u", ev.type_version);
		snprintf(ns, sizeof ns, "%lld", (long long)ev.recorded_at);
		vals[0] = pos;
		vals[1] = stream;
		vals[2] = ver;
		vals[3] = type;
		vals[4] = tv;
		vals[5] = ns;
		vals[6] = data;
		vals[7] = meta;
		expect_true(
			c,
			"SELECT stream = $2 AND version = $3 AND type = $4 AND type_version = $5"
			" AND recorded_at_ns = $6 AND data = $7::jsonb AND metadata = $8::jsonb"
			" AND (extract(epoch FROM recorded_at) * 1000000)::bigint = $6::bigint / 1000"
			" FROM evs.events WHERE position = $1",
			8, vals, "event log", ev.position);
		/* the history row of this version is the fold up to this event */
		ck_assert_int_eq(evs_state_load(store, stream, &at, &st), EVS_OK);
		hist = json_of(st.data, st.len);
		vals[0] = stream;
		vals[1] = ver;
		vals[2] = hist;
		vals[3] = pos;
		expect_true(c,
			    "SELECT data = $3::jsonb AND position = $4 FROM evs.state_history"
			    " WHERE stream = $1 AND version = $2",
			    4, vals, "state history", ev.position);
		evs_state_free(&st);
		free(hist);
		/* state_at() at this event's microsecond: the store's state as
		 * of the last nanosecond of that microsecond */
		if (kit_rand(rng) % 4 == 0) {
			int64_t us = ev.recorded_at / 1000;
			evs_at t = {.kind = EVS_AT_TIME, .time = us * 1000 + 999};
			const char *v2[3];

			ck_assert_int_eq(evs_state_load(store, stream, &t, &st), EVS_OK);
			hist = json_of(st.data, st.len);
			vfrom = time_text(us * 1000);
			v2[0] = stream;
			v2[1] = vfrom;
			v2[2] = hist;
			expect_true(c, "SELECT evs.state_at($1, $2::timestamptz) = $3::jsonb", 3,
				    v2, "state_at", ev.position);
			evs_state_free(&st);
			free(hist);
			free(vfrom);
			/* before its first event a stream has no state */
			if (ev.version == 1) {
				vfrom = time_text(ev.recorded_at - 1000);
				v2[1] = vfrom;
				expect_true(c, "SELECT evs.state_at($1, $2::timestamptz) IS NULL",
					    2, v2, "state_at before the first event", ev.position);
				free(vfrom);
			}
		}
		free(stream);
		free(type);
		free(data);
		free(meta);
	}
	evs_iter_free(it);
	ck_assert_uint_eq(seen, head.last_position);

	/* current state per stream = the latest fold */
	{
		PGresult *r =
			PQexec(c, "SELECT stream, data::text, version, position FROM evs.state");
		int i;

		ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
		ck_assert_int_eq(PQntuples(r), (int)head.streams);
		for (i = 0; i < PQntuples(r); i++) {
			evs_state st;
			char *want;
			const char *vals[2];

			ck_assert_int_eq(evs_state_load(store, PQgetvalue(r, i, 0), NULL, &st),
					 EVS_OK);
			ck_assert_uint_eq(st.version, strtoull(PQgetvalue(r, i, 2), NULL, 10));
			ck_assert_uint_eq(st.position, strtoull(PQgetvalue(r, i, 3), NULL, 10));
			want = json_of(st.data, st.len);
			vals[0] = PQgetvalue(r, i, 1);
			vals[1] = want;
			expect_true(c, "SELECT $1::jsonb = $2::jsonb", 2, vals, "current state",
				    st.position);
			free(want);
			evs_state_free(&st);
		}
		PQclear(r);
	}
}

char *model_dump(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	evs__buf b = {0};
	int i, j;

	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
	for (i = 0; i < PQntuples(r); i++) {
		for (j = 0; j < PQnfields(r); j++) {
			evs__buf_puts(&b, PQgetisnull(r, i, j) ? "<null>" : PQgetvalue(r, i, j));
			evs__buf_putc(&b, '|');
		}
		evs__buf_putc(&b, '\n');
	}
	PQclear(r);
	ck_assert(evs__buf_cstr(&b));
	return b.ptr;
}
