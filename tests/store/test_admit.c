/*
 * test_admit.c - the payload check on append where the type has a schema:
 * one walk checks structure and schema together (schema/admit.c with the
 * cursor of store/mpread.c). A malformed payload must be EVS_BAD_DATA
 * wherever the malformation hides: in a part no schema node describes,
 * after a schema violation in the same payload, or in a later event of a
 * batch whose earlier event breaks its schema. Nothing is written.
 */
#include <string.h>

#include "kit_store.h"

static const char *schema =
	"{\"type\":\"Paid\",\"version\":1,\"schema\":{\"type\":\"object\","
	"\"required\":[\"amount\"],\"properties\":{\"amount\":{\"type\":\"integer\","
	"\"minimum\":1},\"memo\":{\"type\":\"string\"}}}}";
static const char *any = "{\"type\":\"Any\",\"version\":1,\"schema\":{}}";

static evs_store *store_with_schemas(void)
{
	evs_store *s = tu_open(kit_dir, NULL);

	tu_ok(s, evs_schema_add(s, schema, strlen(schema)));
	tu_ok(s, evs_schema_add(s, any, strlen(any)));
	return s;
}

static int append_raw(evs_store *s, const char *type, const void *data, size_t len)
{
	evs_event_in ev;

	memset(&ev, 0, sizeof ev);
	ev.type = type;
	ev.data = data;
	ev.data_len = len;
	return evs_append(s, "pay-1", EVS_ANY, &ev, 1, NULL);
}

static void nothing_written(evs_store *s)
{
	evs_store_info h;

	tu_ok(s, evs_head(s, &h));
	tu_check_u64_eq(h.last_position, 0);
}

/* Appending data of type to a fresh store answers code, with a message
 * that says `needle`, and writes nothing. */
static void refused(const char *type, const void *data, size_t len, int code, const char *needle)
{
	evs_store *s = store_with_schemas();

	tu_assert_rc(s, append_raw(s, type, data, len), code);
	tu_check(strstr(evs_errmsg(s), needle), "\"%s\" is not in: %s", needle, evs_errmsg(s));
	nothing_written(s);
	evs_close(s);
}

/* {"amount": 5, "note": "\xff"}: valid by the schema, bad UTF-8 where no
 * schema node looks */
static const uint8_t bad_extra[] = {0x82, 0xa6, 'a', 'm', 'o', 'u', 'n',  't',
				    0x05, 0xa4, 'n', 'o', 't', 'e', 0xa1, 0xff};
/* {"amount": 0, "memo": "\xc0\x80"}: breaks "minimum" first, then an
 * overlong NUL */
static const uint8_t bad_after_violation[] = {0x82, 0xa6, 'a', 'm', 'o', 'u',  'n',  't', 0x00,
					      0xa4, 'm',  'e', 'm', 'o', 0xa2, 0xc0, 0x80};
/* {"amount": 0} */
static const uint8_t violation[] = {0x81, 0xa6, 'a', 'm', 'o', 'u', 'n', 't', 0x00};
/* {"amount": 7} */
static const uint8_t valid[] = {0x81, 0xa6, 'a', 'm', 'o', 'u', 'n', 't', 0x07};
/* [1] */
static const uint8_t array[] = {0x91, 0x01};

START_TEST(malformed_where_no_schema_looks)
{
	refused("Paid", bad_extra, sizeof bad_extra, EVS_BAD_DATA, "UTF-8");
}
END_TEST

START_TEST(malformed_after_a_violation)
{
	refused("Paid", bad_after_violation, sizeof bad_after_violation, EVS_BAD_DATA, "UTF-8");
	refused("Paid", violation, sizeof violation, EVS_SCHEMA_VIOLATION, "minimum");
	evs_store *s = store_with_schemas();
	tu_ok(s, append_raw(s, "Paid", valid, sizeof valid));
	evs_close(s);
}
END_TEST

START_TEST(malformed_later_in_the_batch)
{
	evs_store *s = store_with_schemas();
	evs_event_in ev[2];

	memset(ev, 0, sizeof ev);
	ev[0].type = "Paid";
	ev[0].data = violation;
	ev[0].data_len = sizeof violation;
	ev[1].type = "Paid";
	ev[1].data = bad_extra;
	ev[1].data_len = sizeof bad_extra;
	tu_assert_rc(s, evs_append(s, "pay-1", EVS_ANY, ev, 2, NULL), EVS_BAD_DATA);
	ck_assert_ptr_nonnull(strstr(evs_errmsg(s), "event 1"));
	nothing_written(s);
	evs_close(s);
}
END_TEST

START_TEST(root_must_be_a_map)
{
	/* the schema allows anything; the store still wants a map */
	refused("Any", array, sizeof array, EVS_BAD_DATA, "not a map");
}
END_TEST

START_TEST(too_deep_under_a_schema)
{
	uint8_t deep[64];
	size_t n = 0;

	/* {"amount": 7, "x": [[[...]]]}: 40 levels where no schema node looks */
	memcpy(deep, valid, sizeof valid);
	deep[0] = 0x82;
	n = sizeof valid;
	deep[n++] = 0xa1;
	deep[n++] = 'x';
	for (int i = 0; i < 40; i++)
		deep[n++] = 0x91;
	deep[n++] = 0x01;
	refused("Paid", deep, n, EVS_BAD_DATA, "nested too deeply");
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		malformed_where_no_schema_looks, malformed_after_a_violation,
		malformed_later_in_the_batch,    root_must_be_a_map,
		too_deep_under_a_schema,         NULL,
	};

	return kit_main("store-admit", 600, tests);
}
