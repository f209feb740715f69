/*
 * test_validate.c - the schema compiler and the msgpack validator: a valid
 * and an invalid payload for every rule, the path and rule named in the
 * message, and documents refused at compile time.
 */
#include <string.h>

#include "kit.h"
#include "kit_store.h"

static evs_schema *compile(const char *schema_json)
{
	char doc[8192], err[512];
	evs_schema *sc = NULL;

	snprintf(doc, sizeof doc, "{\"type\":\"T\",\"version\":1,\"schema\":%s}", schema_json);
	int rc = evs_schema_parse(doc, strlen(doc), &sc, err, sizeof err);
	ck_assert_msg(rc == EVS_OK, "compile %.80s: %s", schema_json, err);
	return sc;
}

/* Validate payload; want NULL = valid, else a substring of the message. */
static void expect(const evs_schema *sc, const char *payload, const char *want)
{
	msgpack_sbuffer sb;
	char err[512] = "";

	kit_json_to_mp(&sb, payload);
	int rc = evs_schema_validate(sc, sb.data, sb.size, err, sizeof err);
	msgpack_sbuffer_destroy(&sb);
	if (want == NULL) {
		ck_assert_msg(rc == EVS_OK, "%.80s should be valid: %s", payload, err);
	} else {
		ck_assert_msg(rc == EVS_SCHEMA_VIOLATION, "%.80s should be refused (%s)", payload,
			      want);
		ck_assert_msg(strstr(err, want) != NULL, "%.80s: message \"%s\" lacks \"%s\"",
			      payload, err, want);
	}
}

static const char *account_schema =
	"{\"type\":\"object\",\"required\":[\"amount\",\"owner\"],"
	"\"additionalProperties\":false,"
	"\"properties\":{"
	"\"amount\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000000},"
	"\"rate\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":1},"
	"\"owner\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":5},"
	"\"kind\":{\"enum\":[\"cash\",\"card\",7,null]},"
	"\"v\":{\"const\":2},"
	"\"at\":{\"type\":\"string\",\"format\":\"date-time\"},"
	"\"id\":{\"type\":\"string\",\"format\":\"uuid\"},"
	"\"mail\":{\"type\":\"string\",\"format\":\"email\"},"
	"\"flag\":{\"type\":[\"boolean\",\"null\"]},"
	"\"lines\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":2,\"items\":"
	"  {\"type\":\"object\",\"required\":[\"sku\"],\"properties\":{\"sku\":{\"type\":\"string\"}}}},"
	"\"meta\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"}}"
	"}}";

START_TEST(test_rules)
{
	evs_schema *sc = compile(account_schema);

	expect(sc, "{\"amount\":5,\"owner\":\"ann\"}", NULL);
	expect(sc, "{\"owner\":\"ann\"}", "at \"$\" breaks rule \"required\": property \"amount\"");
	expect(sc, "{\"amount\":5,\"owner\":\"ann\",\"x\":1}",
	       "at \"$.x\" breaks rule \"additionalProperties\"");
	expect(sc, "{\"amount\":\"5\",\"owner\":\"ann\"}", "at \"$.amount\" breaks rule \"type\"");
	expect(sc, "{\"amount\":5.5,\"owner\":\"ann\"}", "rule \"type\"");
	expect(sc, "{\"amount\":5.0,\"owner\":\"ann\"}", NULL);
	expect(sc, "{\"amount\":0,\"owner\":\"ann\"}",
	       "at \"$.amount\" breaks rule \"minimum\": 0 is less than 1");
	expect(sc, "{\"amount\":-3,\"owner\":\"ann\"}", "rule \"minimum\"");
	expect(sc, "{\"amount\":1000001,\"owner\":\"ann\"}", "rule \"maximum\"");
	expect(sc, "{\"amount\":1000000,\"owner\":\"ann\"}", NULL);
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"rate\":0.5}", NULL);
	/* a double in a message is its shortest text (not 1.1000000000000001) */
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"rate\":1.1}",
	       "at \"$.rate\" breaks rule \"exclusiveMaximum\": 1.1 is not less than 1");
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"rate\":0}", "rule \"exclusiveMinimum\"");
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"rate\":1}", "rule \"exclusiveMaximum\"");
	expect(sc, "{\"amount\":1,\"owner\":\"a\"}", "at \"$.owner\" breaks rule \"minLength\"");
	expect(sc, "{\"amount\":1,\"owner\":\"abcdef\"}", "rule \"maxLength\"");
	/* lengths count characters, not bytes */
	expect(sc, "{\"amount\":1,\"owner\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", NULL);
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"kind\":\"card\"}", NULL);
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"kind\":7}", NULL);
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"kind\":null}", NULL);
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"kind\":\"gold\"}",
	       "at \"$.kind\" breaks rule \"enum\": \"gold\"");
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"v\":2}", NULL);
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"v\":3}", "rule \"const\"");
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"at\":\"2024-02-29T10:00:00.5+01:00\"}", NULL);
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"at\":\"2023-02-29T10:00:00Z\"}",
	       "at \"$.at\" breaks rule \"format\"");
	expect(sc,
	       "{\"amount\":1,\"owner\":\"ann\",\"id\":\"0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b\"}",
	       NULL);
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"id\":\"0190a5b2-7c3d-7e4f-8a9b\"}",
	       "rule \"format\"");
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"mail\":\"ann@example.org\"}", NULL);
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"mail\":\"ann@@example.org\"}",
	       "rule \"format\"");
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"flag\":null}", NULL);
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"flag\":1}", "integer is not null or boolean");
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"lines\":[{\"sku\":\"a\"}]}", NULL);
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"lines\":[]}", "rule \"minItems\"");
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"lines\":[{\"sku\":\"a\"},{},{}]}",
	       "rule \"maxItems\"");
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"lines\":[{\"sku\":\"a\"},{\"sku\":3}]}",
	       "at \"$.lines[1].sku\" breaks rule \"type\"");
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"lines\":[{\"sku\":\"a\"},{}]}",
	       "at \"$.lines[1]\" breaks rule \"required\"");
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"meta\":{\"a b\":1,\"c\":2}}", NULL);
	expect(sc, "{\"amount\":1,\"owner\":\"ann\",\"meta\":{\"a b\":\"x\"}}",
	       "at \"$.meta[\"a b\"]\" breaks rule \"type\"");
	evs_schema_free(sc);
}
END_TEST

START_TEST(test_open_object)
{
	evs_schema *sc =
		compile("{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"number\"}}}");
	expect(sc, "{}", NULL);
	expect(sc, "{\"n\":1,\"other\":[1,{\"deep\":[]}]}", NULL);
	expect(sc, "{\"n\":\"x\"}", "rule \"type\"");
	evs_schema_free(sc);
}
END_TEST

START_TEST(test_malformed_payload)
{
	evs_schema *sc = compile("{\"type\":\"object\"}");
	char err[256];
	/* map of 3 entries with one present; truncated str; reserved byte */
	static const uint8_t bad1[] = {0x83, 0xa1, 'a', 0x01};
	static const uint8_t bad2[] = {0x81, 0xa5, 'a'};
	static const uint8_t bad3[] = {0x81, 0xa1, 'a', 0xc1};
	static const uint8_t bad4[] = {0x80, 0x80};
	ck_assert_int_eq(evs_schema_validate(sc, bad1, sizeof bad1, err, sizeof err), EVS_BAD_DATA);
	ck_assert_int_eq(evs_schema_validate(sc, bad2, sizeof bad2, err, sizeof err), EVS_BAD_DATA);
	ck_assert_int_eq(evs_schema_validate(sc, bad3, sizeof bad3, err, sizeof err), EVS_BAD_DATA);
	ck_assert_int_eq(evs_schema_validate(sc, bad4, sizeof bad4, err, sizeof err), EVS_BAD_DATA);
	ck_assert_int_eq(evs_schema_validate(sc, NULL, 0, err, sizeof err), EVS_OK);
	evs_schema_free(sc);
}
END_TEST

static void refused(const char *doc, const char *want)
{
	char err[512] = "";
	evs_schema *sc = NULL;
	int rc = evs_schema_parse(doc, strlen(doc), &sc, err, sizeof err);
	ck_assert_msg(rc == EVS_BAD_SCHEMA, "%s should be refused", doc);
	ck_assert_ptr_null(sc);
	ck_assert_msg(strstr(err, want) != NULL, "%s: message \"%s\" lacks \"%s\"", doc, err, want);
}

START_TEST(test_bad_documents)
{
	refused("", "not valid JSON");
	refused("{\"type\":\"T\",\"version\":1,\"schema\":{}", "not valid JSON");
	refused("[1]", "must be a JSON object");
	refused("{\"type\":\"T\",\"version\":1,\"schema\":{}} x", "not valid JSON");
	refused("{\"version\":1,\"schema\":{}}", "needs \"type\"");
	refused("{\"type\":\"T\",\"schema\":{}}", "needs \"version\"");
	refused("{\"type\":\"T\",\"version\":0,\"schema\":{}}", "needs \"version\"");
	refused("{\"type\":\"T\",\"version\":1}", "needs \"schema\"");
	refused("{\"type\":\"T\",\"version\":1,\"schema\":{},\"extra\":1}",
		"unknown document field");
	refused("{\"type\":\"T\",\"version\":1,\"schema\":{\"minimun\":1}}",
		"unknown keyword \"minimun\"");
	refused("{\"type\":\"T\",\"version\":1,\"schema\":{\"properties\":{\"a\":{\"type\":\"int\"}}}}",
		"schema at \"$.properties.a\": unknown type \"int\"");
	refused("{\"type\":\"T\",\"version\":1,\"schema\":{\"enum\":[[1]]}}", "must be scalars");
	refused("{\"type\":\"T\",\"version\":1,\"schema\":{\"minLength\":-1}}", "non-negative");
	refused("{\"type\":\"T\",\"version\":1,\"schema\":{\"minLength\":3,\"maxLength\":2}}",
		"greater than maxLength");
	refused("{\"type\":\"T\",\"version\":1,\"schema\":{\"format\":\"ipv4\"}}",
		"unknown format");
	refused("{\"type\":\"T\",\"version\":1,\"schema\":{\"required\":[\"a\",\"a\"]}}", "twice");
	refused("{\"type\":\"T\",\"version\":1,\"schema\":{},\"upcast\":[]}", "version 1 cannot");
	refused("{\"type\":\"T\",\"version\":2,\"schema\":{},\"upcast\":[{\"op\":\"frob\",\"field\":\"a\"}]}",
		"unknown step");
	refused("{\"type\":\"T\",\"version\":2,\"schema\":{},\"upcast\":[{\"op\":\"convert\",\"field\":\"a\",\"rule\":\"x\"}]}",
		"unknown conversion rule");
	refused("{\"type\":\"\",\"version\":1,\"schema\":{}}", "needs \"type\"");

	/* nesting beyond EVS_MAX_SCHEMA_DEPTH */
	char deep[4096] = "{\"type\":\"T\",\"version\":1,\"schema\":";
	for (int i = 0; i < EVS_MAX_SCHEMA_DEPTH + 2; i++)
		strcat(deep, "{\"items\":");
	strcat(deep, "{}");
	for (int i = 0; i < EVS_MAX_SCHEMA_DEPTH + 2; i++)
		strcat(deep, "}");
	strcat(deep, "}");
	refused(deep, "nested deeper");

	/* over the size limit */
	size_t big = EVS_MAX_SCHEMA_BYTES + 10;
	char *b = malloc(big + 1);
	memset(b, ' ', big);
	b[big] = 0;
	refused(b, "the limit is");
	free(b);
}
END_TEST

START_TEST(test_many_properties)
{
	/* bsearch over sorted properties; required bitmap across bytes */
	char schema[16384] = "{\"type\":\"object\",\"required\":[";
	char payload[16384] = "{";
	for (int i = 0; i < 200; i++)
		sprintf(schema + strlen(schema), "%s\"p%03d\"", i ? "," : "", i);
	strcat(schema, "],\"properties\":{");
	for (int i = 0; i < 200; i++) {
		sprintf(schema + strlen(schema), "%s\"p%03d\":{\"type\":\"integer\"}", i ? "," : "",
			i);
		sprintf(payload + strlen(payload), "%s\"p%03d\":%d", i ? "," : "", 199 - i, i);
	}
	strcat(schema, "}}");
	strcat(payload, "}");
	evs_schema *sc = compile(schema);
	expect(sc, payload, NULL);
	char *cut = strstr(payload, ",\"p000\"");
	ck_assert_ptr_nonnull(cut);
	strcpy(cut, "}");
	expect(sc, payload, "property \"p000\" is missing");
	evs_schema_free(sc);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_rules,         test_open_object,     test_malformed_payload,
		test_bad_documents, test_many_properties, NULL,
	};

	return kit_main("schema-validate", 600, tests);
}
