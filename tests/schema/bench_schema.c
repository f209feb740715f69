/*
 * bench_schema.c - what validation on append costs: batched appends of a
 * 10-field payload to a store without schemas and to one where the type
 * has a 10-field schema (string formats, bounds, enum, array), measured in
 * the same run, rounds interleaved, median of rounds. Sync mode "none",
 * so that the disk does not hide the CPU cost: this is the worst case for
 * the ratio. The budget is +25%.
 *
 *   bench_schema [--batches N] [--batch N] [--rounds N] [--quick]
 */
#include <msgpack.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evstore.h"
#include "kit.h"

static const char *schema =
	"{\"type\":\"Payment\",\"version\":1,\"schema\":{\"type\":\"object\","
	"\"required\":[\"id\",\"account\",\"amount\",\"currency\",\"at\"],"
	"\"additionalProperties\":false,\"properties\":{"
	"\"id\":{\"type\":\"string\",\"format\":\"uuid\"},"
	"\"account\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64},"
	"\"amount\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100000000},"
	"\"currency\":{\"enum\":[\"EUR\",\"USD\",\"GBP\",\"SEK\"]},"
	"\"at\":{\"type\":\"string\",\"format\":\"date-time\"},"
	"\"memo\":{\"type\":\"string\",\"maxLength\":140},"
	"\"count\":{\"type\":\"integer\",\"minimum\":0},"
	"\"rate\":{\"type\":\"number\",\"exclusiveMinimum\":0},"
	"\"flag\":{\"type\":\"boolean\"},"
	"\"tags\":{\"type\":\"array\",\"maxItems\":8,\"items\":{\"type\":\"string\"}}}}}";

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void payload(msgpack_sbuffer *sb, int i)
{
	msgpack_packer pk;
	char acc[32];

	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 10);
	str(&pk, "id");
	str(&pk, "0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b");
	snprintf(acc, sizeof acc, "account-%d", i);
	str(&pk, "account");
	str(&pk, acc);
	str(&pk, "amount");
	msgpack_pack_int64(&pk, 1000 + i);
	str(&pk, "currency");
	str(&pk, "SEK");
	str(&pk, "at");
	str(&pk, "2026-11-23T02:50:00.123456789Z");
	str(&pk, "memo");
	str(&pk, "rent for november, flat 3b");
	str(&pk, "count");
	msgpack_pack_int(&pk, i);
	str(&pk, "rate");
	msgpack_pack_double(&pk, 0.25);
	str(&pk, "flag");
	msgpack_pack_true(&pk);
	str(&pk, "tags");
	msgpack_pack_array(&pk, 2);
	str(&pk, "home");
	str(&pk, "monthly");
}

int main(int argc, char **argv)
{
	int batches = 2000, batch = 100, rounds = 5;
	char pa[PATH_MAX], pb[PATH_MAX];
	evs_store *st[2];
	evs_options o;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			batches = 100;
			rounds = 3;
		} else if (!strcmp(argv[i], "--batches") && i + 1 < argc) {
			batches = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
			batch = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
			rounds = atoi(argv[++i]);
		} else {
			fprintf(stderr,
				"usage: bench_schema [--batches N] [--batch N] [--rounds N] [--quick]\n");
			return 2;
		}
	}
	if (batches < 1 || batch < 1 || batch > 10000 || rounds < 1 || rounds > 99)
		return 2;
	kit_bench_root("bench_schema", NULL, "evs-bench-schema", false);
	kit_bench_path(pa, "plain");
	kit_bench_path(pb, "schema");
	evs_options_init(&o);
	o.sync = EVS_SYNC_NONE;
	if (evs_open(pa, &o, &st[0]) || evs_open(pb, &o, &st[1]))
		kit_die("%s", evs_open_errmsg());
	if ((rc = evs_schema_add(st[1], schema, strlen(schema))) != EVS_OK)
		kit_die("%s", evs_errmsg(st[1]));
	msgpack_sbuffer *sb = calloc((size_t)batch, sizeof *sb);
	evs_event_in *ev = calloc((size_t)batch, sizeof *ev);
	for (int i = 0; i < batch; i++) {
		payload(&sb[i], i);
		ev[i].type = "Payment";
		ev[i].data = sb[i].data;
		ev[i].data_len = sb[i].size;
	}
	double t[2][100];
	for (int r = 0; r < rounds; r++) {
		for (int k = 0; k < 2; k++) {
			int which = (r & 1) ? 1 - k : k; /* alternate who goes first */
			double t0 = now();
			for (int b = 0; b < batches; b++) {
				char stream[32];
				snprintf(stream, sizeof stream, "s-%d", b % 1000);
				if ((rc = evs_append(st[which], stream, EVS_ANY, ev, (size_t)batch,
						     NULL)))
					kit_die("append: %s", evs_errmsg(st[which]));
			}
			t[which][r] = (now() - t0) / ((double)batches * batch) * 1e9;
		}
	}
	double plain = kit_median(t[0], (size_t)rounds), valid = kit_median(t[1], (size_t)rounds);
	double pct = (valid - plain) / plain * 100;
	printf("schema validation: 10-field schema, batches of %d events, sync none, median of %d "
	       "rounds: %.0f ns/event without, %.0f ns/event with: %+.1f%% (budget +25%%) %s\n",
	       batch, rounds, plain, valid, pct, pct <= 25 ? "WITHIN BUDGET" : "OVER BUDGET");
	for (int i = 0; i < batch; i++)
		msgpack_sbuffer_destroy(&sb[i]);
	free(sb);
	free(ev);
	evs_close(st[0]);
	evs_close(st[1]);
	kit_bench_cleanup();
	return 0;
}
