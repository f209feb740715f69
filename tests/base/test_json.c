/*
 * test_json.c - the base's JSON <-> msgpack pair and its number policy
 * (store/base/mpjson.h), UTF-8, base64 and RFC 3339.
 *
 * The round trip msgpack -> JSON -> msgpack must give back every double
 * bit for bit (0.1, 1e300, 5e-324, -0.0, random bit patterns) and every
 * integer as an integer of the same value, and the text of a double must
 * be the shortest that reads back and must carry '.' or 'e'. Random cases
 * print their seed; EVS_TEST_SEED replays.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <msgpack.h>

#include "base64.h"
#include "mpjson.h"
#include "rfc3339.h"
#include "utf8.h"

static uint64_t seed_of(const char *test)
{
	const char *env = getenv("EVS_TEST_SEED");
	uint64_t seed = env && env[0] ? strtoull(env, NULL, 10)
				      : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);

	fprintf(stderr, "%s: seed %llu (replay with EVS_TEST_SEED=%llu)\n", test,
		(unsigned long long)seed, (unsigned long long)seed);
	return seed ? seed : 1;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static int buf_write(void *data, const char *p, size_t n)
{
	evs__buf_putn(data, p, n);
	return 0;
}

/* The JSON text of one double (through the msgpack encoder). */
static char *double_text(double d)
{
	evs__buf mp = {0}, js = {0};
	msgpack_packer pk;

	msgpack_packer_init(&pk, &mp, buf_write);
	msgpack_pack_double(&pk, d);
	ck_assert_int_eq(evs__msgpack_to_json(&js, mp.ptr, mp.len, EVS__JSON_EXACT), 0);
	ck_assert(evs__buf_cstr(&js));
	evs__buf_free(&mp);
	return js.ptr;
}

/* Unpack one value of JSON text s (lenient reader) into o (zone z). */
static void read_back(const char *s, msgpack_zone *z, msgpack_object *o, evs__buf *mp)
{
	char err[200];
	size_t off = 0;

	ck_assert_msg(evs__json_to_msgpack(s, strlen(s), mp, 0, err, sizeof err) == 0, "%s: %s", s,
		      err);
	ck_assert_int_eq(msgpack_unpack(mp->ptr, mp->len, &off, z, o), MSGPACK_UNPACK_SUCCESS);
	ck_assert_uint_eq(off, mp->len);
}

static void check_double(double d)
{
	char *t = double_text(d);
	msgpack_zone z;
	msgpack_object o;
	evs__buf mp = {0};

	ck_assert_msg(strpbrk(t, ".e") != NULL, "%s has neither '.' nor 'e'", t);
	msgpack_zone_init(&z, 256);
	read_back(t, &z, &o, &mp);
	ck_assert_msg(o.type == MSGPACK_OBJECT_FLOAT64, "%s read back as type %d", t, o.type);
	ck_assert_msg(memcmp(&o.via.f64, &d, sizeof d) == 0, "%.17g -> %s -> %.17g", d, t,
		      o.via.f64);
	/* shortest: one digit fewer does not read back (integral doubles
	 * under 2^64 are written in full instead, see mpjson.h) */
	if (!(d == floor(d) && fabs(d) < 18446744073709551616.0)) {
		char shorter[40];
		int digits = 0;

		/* significant digits: from the first non-zero one */
		for (const char *p = t; *p && *p != 'e'; p++)
			digits += (*p >= '1' && *p <= '9') || (digits && *p == '0');
		if (digits > 1 && digits <= 17) {
			snprintf(shorter, sizeof shorter, "%.*g", digits - 1, d);
			ck_assert_msg(strtod(shorter, NULL) != d, "%s is not the shortest (%s)", t,
				      shorter);
		}
	}
	msgpack_zone_destroy(&z);
	evs__buf_free(&mp);
	free(t);
}

START_TEST(double_texts)
{
	static const struct {
		double d;
		const char *text;
	} cases[] = {
		{0.1, "0.1"},
		{1e300, "1e+300"},
		{5e-324, "5e-324"},
		{-0.0, "-0.0"},
		{1.0, "1.0"},
		{1.5, "1.5"},
		{1e19, "10000000000000000000.0"},
		{-1e19, "-10000000000000000000.0"},
		{1e15, "1000000000000000.0"},
		{18446744073709551616.0, "1.8446744073709552e+19"},
		{9007199254740993.0, "9007199254740992.0"},
		{2.5e-5, "2.5e-05"},
		{1.7976931348623157e308, "1.7976931348623157e+308"},
	};
	char param[EVS__DOUBLE_LEN];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *t = double_text(cases[i].d);

		ck_assert_str_eq(t, cases[i].text);
		free(t);
	}
	/* a statement parameter: shortest, no ".0" (3 casts to integer) */
	ck_assert_uint_eq(evs__double_text(3.0, param), 1);
	ck_assert_str_eq(param, "3");
	evs__double_text(0.1, param);
	ck_assert_str_eq(param, "0.1");
	evs__double_text(5e-324, param);
	ck_assert_str_eq(param, "5e-324");
	/* whole numbers in plain digits up to 2^64 (%g would say 1e+15, which
	 * PostgreSQL's bigint input refuses); past it the shortest form */
	evs__double_text(1e15, param);
	ck_assert_str_eq(param, "1000000000000000");
	evs__double_text(-2e18, param);
	ck_assert_str_eq(param, "-2000000000000000000");
	evs__double_text(1e300, param);
	ck_assert_str_eq(param, "1e+300");
}
END_TEST

START_TEST(double_round_trip)
{
	static const double fixed[] = {0.1,
				       1e300,
				       5e-324,
				       -0.0,
				       0.0,
				       1e19,
				       -1e19,
				       1e-7,
				       1.5,
				       1e15,
				       2.5e-5,
				       1e20,
				       1e22,
				       1e23,
				       -1e300,
				       1.7976931348623157e308,
				       2.2250738585072014e-308,
				       18446744073709551616.0,
				       9223372036854775808.0,
				       4503599627370496.5};
	uint64_t s = seed_of("double_round_trip");

	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		check_double(fixed[i]);
	for (int i = 0; i < 20000; i++) {
		uint64_t bits = rnd(&s);
		double d;

		if (i % 4 == 0) /* integral doubles around 2^53..2^70 */
			d = ldexp((double)(bits >> 11), (int)(rnd(&s) % 30));
		else if (i % 4 == 1) /* short decimals like prices */
			d = (double)(int64_t)(bits % 2000000) / 100.0 - 10000.0;
		else
			memcpy(&d, &bits, sizeof d);
		if (isfinite(d))
			check_double(d);
	}
}
END_TEST

/* The text of msgpack p[0..n) (exact mode), and it reads back to the
 * same bytes. */
static void check_bytes(const void *p, size_t n, const char *expect)
{
	evs__buf js = {0}, mp = {0};

	ck_assert_int_eq(evs__msgpack_to_json(&js, p, n, EVS__JSON_EXACT), 0);
	ck_assert(evs__buf_cstr(&js));
	ck_assert_str_eq(js.ptr, expect);
	ck_assert_int_eq(evs__json_to_msgpack(js.ptr, js.len, &mp, EVS__JSON_STRICT, NULL, 0), 0);
	ck_assert_uint_eq(mp.len, n);
	ck_assert(memcmp(mp.ptr, p, n) == 0);
	evs__buf_free(&js);
	evs__buf_free(&mp);
}

START_TEST(integers_and_values)
{
	evs__buf mp = {0};
	msgpack_packer pk;

	msgpack_packer_init(&pk, &mp, buf_write);
	msgpack_pack_map(&pk, 9);
	msgpack_pack_str_with_body(&pk, "a", 1);
	msgpack_pack_int64(&pk, INT64_MIN);
	msgpack_pack_str_with_body(&pk, "b", 1);
	msgpack_pack_uint64(&pk, UINT64_MAX);
	msgpack_pack_str_with_body(&pk, "c", 1);
	msgpack_pack_uint64(&pk, 9007199254740993ULL); /* 2^53 + 1 */
	msgpack_pack_str_with_body(&pk, "d", 1);
	msgpack_pack_int64(&pk, -33);
	msgpack_pack_str_with_body(&pk, "e\"\\\n\x01/", 6);
	msgpack_pack_str_with_body(&pk, "\xc3\xa9\xf0\x9f\x98\x80", 6);
	msgpack_pack_str_with_body(&pk, "f", 1);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_nil(&pk);
	msgpack_pack_true(&pk);
	msgpack_pack_false(&pk);
	msgpack_pack_str_with_body(&pk, "g", 1);
	msgpack_pack_map(&pk, 0);
	msgpack_pack_str_with_body(&pk, "h", 1);
	msgpack_pack_double(&pk, 1e19);
	msgpack_pack_str_with_body(&pk, "i", 1);
	msgpack_pack_str(&pk, 40);
	msgpack_pack_str_body(&pk, "0123456789012345678901234567890123456789", 40);
	check_bytes(mp.ptr, mp.len,
		    "{\"a\":-9223372036854775808,\"b\":18446744073709551615,"
		    "\"c\":9007199254740993,\"d\":-33,\"e\\\"\\\\\\n\\u0001/\":"
		    "\"\xc3\xa9\xf0\x9f\x98\x80\",\"f\":[null,true,false],\"g\":{},"
		    "\"h\":10000000000000000000.0,"
		    "\"i\":\"0123456789012345678901234567890123456789\"}");
	evs__buf_free(&mp);
}
END_TEST

/* The reader: kinds from the text, escapes, and what it refuses. */
START_TEST(reader)
{
	msgpack_zone z;
	msgpack_object o;
	evs__buf mp = {0};
	char big[400];
	static const char *const bad[] = {
		"",         "{",        "[1,]",        "{\"a\" 1}",   "01",      "1.",  "-",
		".5",       "1e",       "tru",         "nul",         "\"\\x\"", "\"a", "[1] x",
		"\"\x01\"", "\"\xff\"", "\"\\ud800\"", "\"\\udc00\"", "{1:2}",   "NaN", "Infinity",
	};

	msgpack_zone_init(&z, 1024);
	/* jsonb's digits of 1e300: not a clamped integer, the double */
	memset(big, '0', 301);
	big[0] = '1';
	big[301] = '\0';
	read_back(big, &z, &o, &mp);
	ck_assert_int_eq(o.type, MSGPACK_OBJECT_FLOAT64);
	ck_assert(o.via.f64 == 1e300);
	mp.len = 0;
	read_back("10000000000000000000", &z, &o, &mp); /* fits uint64 */
	ck_assert_int_eq(o.type, MSGPACK_OBJECT_POSITIVE_INTEGER);
	mp.len = 0;
	read_back("-10000000000000000000", &z, &o, &mp); /* below int64 */
	ck_assert_int_eq(o.type, MSGPACK_OBJECT_FLOAT64);
	ck_assert(o.via.f64 == -1e19);
	mp.len = 0;
	read_back("10000000000000000000.0", &z, &o, &mp);
	ck_assert_int_eq(o.type, MSGPACK_OBJECT_FLOAT64);
	mp.len = 0;
	read_back(" -0 ", &z, &o, &mp);
	ck_assert_int_eq(o.type, MSGPACK_OBJECT_POSITIVE_INTEGER);
	mp.len = 0;
	read_back("\"\\u00e9\\ud83d\\ude00\\/\\b\\f\\t\"", &z, &o, &mp);
	ck_assert_int_eq(o.type, MSGPACK_OBJECT_STR);
	ck_assert_uint_eq(o.via.str.size, 10);
	ck_assert(memcmp(o.via.str.ptr, "\xc3\xa9\xf0\x9f\x98\x80/\b\f\t", 10) == 0);
	mp.len = 0;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char err[200] = "";

		ck_assert_msg(
			evs__json_to_msgpack(bad[i], strlen(bad[i]), &mp, 0, err, sizeof err) == -1,
			"accepted %s", bad[i]);
		ck_assert_uint_eq(mp.len, 0);
		ck_assert_msg(strstr(err, "at column") != NULL, "%s: %s", bad[i], err);
	}
	ck_assert(evs__json_integer_fits("-9223372036854775808", 20));
	ck_assert(!evs__json_integer_fits("-9223372036854775809", 20));
	ck_assert(evs__json_integer_fits("18446744073709551615", 20));
	ck_assert(!evs__json_integer_fits("18446744073709551616", 20));
	ck_assert(!evs__json_integer_fits("-", 1));
	/* strict: people's integers must fit, numbers must be finite */
	ck_assert_int_eq(evs__json_to_msgpack(big, strlen(big), &mp, EVS__JSON_STRICT, NULL, 0),
			 -1);
	ck_assert_int_eq(evs__json_to_msgpack("1e999", 5, &mp, EVS__JSON_STRICT, NULL, 0), -1);
	ck_assert_int_eq(evs__json_to_msgpack("1e999", 5, &mp, 0, NULL, 0), 0);
	/* deep nesting is refused, not a stack overflow */
	{
		char deep[2 * EVS__JSON_DEPTH + 10];
		size_t n = EVS__JSON_DEPTH + 4;

		memset(deep, '[', n);
		memset(deep + n, ']', n);
		mp.len = 0;
		ck_assert_int_eq(evs__json_to_msgpack(deep, 2 * n, &mp, 0, NULL, 0), -1);
	}
	/* containers and strings get the smallest header msgpack-c writes */
	{
		evs__buf want = {0};
		msgpack_packer pk;
		static char text[110000];
		size_t n = 0;

		msgpack_packer_init(&pk, &want, buf_write);
		msgpack_pack_array(&pk, 20000);
		text[n++] = '[';
		for (int i = 0; i < 20000; i++) {
			msgpack_pack_str_with_body(&pk, "ab", 2);
			memcpy(text + n, i ? ",\"ab\"" : "\"ab\"", i ? 5 : 4);
			n += i ? 5 : 4;
		}
		text[n++] = ']';
		mp.len = 0;
		ck_assert_int_eq(evs__json_to_msgpack(text, n, &mp, 0, NULL, 0), 0);
		ck_assert_uint_eq(mp.len, want.len);
		ck_assert(memcmp(mp.ptr, want.ptr, want.len) == 0);
		evs__buf_free(&want);
	}
	msgpack_zone_destroy(&z);
	evs__buf_free(&mp);
}
END_TEST

START_TEST(exact_and_lenient)
{
	/* bin, ext, float32, NaN, a non-string key: refused in exact mode */
	static const struct {
		const char *mp;
		size_t n;
		const char *lenient;
	} cases[] = {
		{"\xc4\x02\x01\x02", 4, "\"AQI=\""},
		{"\xd4\x01\x07", 3, "\"Bw==\""},
		{"\xca\x3f\xc0\x00\x00", 5, "1.5"},
		{"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", 9, "null"},
		{"\x81\x01\x02", 3, "{\"1\":2}"},
		{"\xa2\xc3\x28", 3, "\"\xef\xbf\xbd(\""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		evs__buf b = {0};

		ck_assert_int_eq(evs__msgpack_to_json(&b, cases[i].mp, cases[i].n, EVS__JSON_EXACT),
				 -1);
		ck_assert_uint_eq(b.len, 0);
		ck_assert_int_eq(evs__msgpack_to_json(&b, cases[i].mp, cases[i].n, 0), 0);
		ck_assert(evs__buf_cstr(&b));
		ck_assert_str_eq(b.ptr, cases[i].lenient);
		evs__buf_free(&b);
	}
	/* one zone for a batch: the same text as one zone per call */
	{
		msgpack_zone z;
		evs__buf one = {0}, many = {0};

		msgpack_zone_init(&z, 256);
		for (int k = 0; k < 200; k++)
			for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
				ck_assert_int_eq(
					evs__msgpack_to_json(&one, cases[i].mp, cases[i].n, 0), 0);
				ck_assert_int_eq(evs__msgpack_to_json_z(&many, cases[i].mp,
									cases[i].n, 0, &z),
						 0);
			}
		ck_assert_uint_eq(one.len, many.len);
		ck_assert(memcmp(one.ptr, many.ptr, one.len) == 0);
		msgpack_zone_destroy(&z);
		evs__buf_free(&one);
		evs__buf_free(&many);
	}
	/* malformed and trailing bytes */
	{
		evs__buf b = {0};

		ck_assert_int_eq(evs__msgpack_to_json(&b, "\x82\xa1", 2, 0), -1);
		ck_assert_int_eq(evs__msgpack_to_json(&b, "\xc0\xc0", 2, 0), -1);
		ck_assert_uint_eq(b.len, 0);
		evs__buf_free(&b);
	}
}
END_TEST

START_TEST(utf8)
{
	static const struct {
		const char *s;
		size_t n;
		bool ok;
	} cases[] = {
		{"abc", 3, true},
		{"\xc3\xa9", 2, true},
		{"\xf4\x8f\xbf\xbf", 4, true},
		{"a\0b", 3, false},             /* NUL */
		{"\xc0\xaf", 2, false},         /* overlong */
		{"\xe0\x80\xaf", 3, false},     /* overlong */
		{"\xed\xa0\x80", 3, false},     /* surrogate */
		{"\xf4\x90\x80\x80", 4, false}, /* past U+10FFFF */
		{"\xc3", 1, false},             /* truncated */
		{"\x80", 1, false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		ck_assert_msg(evs__utf8_text((const uint8_t *)cases[i].s, cases[i].n) ==
				      cases[i].ok,
			      "case %zu", i);
}
END_TEST

START_TEST(base64)
{
	uint64_t s = seed_of("base64");
	evs__buf txt = {0}, raw = {0};

	for (int i = 0; i < 500; i++) {
		unsigned char in[40];
		size_t n = rnd(&s) % sizeof in;

		for (size_t k = 0; k < n; k++)
			in[k] = (unsigned char)rnd(&s);
		txt.len = raw.len = 0;
		evs__base64_encode(&txt, in, n);
		ck_assert_int_eq(evs__base64_decode(&raw, txt.ptr, txt.len), 0);
		ck_assert_uint_eq(raw.len, n);
		ck_assert(n == 0 || memcmp(raw.ptr, in, n) == 0);
	}
	txt.len = 0;
	evs__base64_encode(&txt, "foob", 4);
	ck_assert(evs__buf_cstr(&txt));
	ck_assert_str_eq(txt.ptr, "Zm9vYg==");
	raw.len = 0;
	ck_assert_int_eq(evs__base64_decode(&raw, "Zm9vYh==", 8), -1); /* trailing bits */
	ck_assert_int_eq(evs__base64_decode(&raw, "Zm9v\nA==", 8), -1);
	ck_assert_int_eq(evs__base64_decode(&raw, "Zm9", 3), -1);
	ck_assert_uint_eq(raw.len, 0);
	evs__buf_free(&txt);
	evs__buf_free(&raw);
}
END_TEST

START_TEST(rfc3339)
{
	uint64_t s = seed_of("rfc3339");
	char out[EVS__TIME_LEN];
	const char *why;
	int64_t ns;
	evs__buf pg = {0};

	for (int i = 0; i < 2000; i++) {
		int64_t t = (int64_t)rnd(&s), back;

		evs__time_format(t, out);
		ck_assert_int_eq(evs__time_parse(out, strlen(out), &back, &why), 0);
		ck_assert_int_eq(back, t);
	}
	ck_assert_int_eq(evs__time_parse("2024-05-01T12:34:56.5+02:00", 27, &ns, &why), 0);
	evs__time_format(ns, out);
	ck_assert_str_eq(out, "2024-05-01T10:34:56.500000000Z");
	evs__time_pg_text(&pg, -1);
	ck_assert(evs__buf_cstr(&pg));
	ck_assert_str_eq(pg.ptr, "1969-12-31 23:59:59.999999+00");
	evs__buf_free(&pg);
	ck_assert_int_eq(evs__time_parse("2024-02-30T00:00:00Z", 20, &ns, &why), -1);
	ck_assert_str_eq(why, "date out of range");
	ck_assert_int_eq(evs__time_parse("2016-12-31T23:59:60Z", 20, &ns, &why), -1);
	ck_assert_str_eq(why, "leap seconds are not supported");
	ck_assert_int_eq(evs__time_parse("9999-12-31T23:59:59Z", 20, &ns, &why), -1);
	{
		struct evs__rfc3339 f;

		/* the schema's date-time: leap second and long fractions are fine */
		ck_assert_int_eq(
			evs__rfc3339_fields("2016-12-31T23:59:60.1234567891Z", 31, &f, &why), 0);
		ck_assert_int_eq(f.frac_digits, 10);
		ck_assert_int_eq(evs__rfc3339_fields("2016-12-31T23:59:59", 19, &f, &why), -1);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("base");
	TCase *tc = tcase_create("json");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, double_texts);
	tcase_add_test(tc, double_round_trip);
	tcase_add_test(tc, integers_and_values);
	tcase_add_test(tc, reader);
	tcase_add_test(tc, exact_and_lenient);
	tcase_add_test(tc, utf8);
	tcase_add_test(tc, base64);
	tcase_add_test(tc, rfc3339);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
