/*
 * fuzz_schema.c - libFuzzer target over the schema compiler and the
 * msgpack validator.
 *
 * Input: a schema document, a NUL byte, then a msgpack payload. Without a
 * NUL the whole input is a payload. The document, if it compiles, checks
 * the payload; the payload is also checked against a fixed schema that
 * uses every keyword, so payload mutations reach deep rules even when the
 * document part is garbage. Nothing may crash, leak or read out of bounds.
 */
#include <stdint.h>
#include <string.h>

#include "evstore.h"
#include "fuzz.h"

static const char fixed[] =
	"{\"type\":\"F\",\"version\":1,\"schema\":{\"type\":\"object\","
	"\"required\":[\"a\",\"s\"],\"additionalProperties\":{\"type\":[\"integer\",\"null\"]},"
	"\"properties\":{\"a\":{\"type\":\"integer\",\"minimum\":-5,\"maximum\":1e6},"
	"\"n\":{\"type\":\"number\",\"exclusiveMinimum\":0.5,\"exclusiveMaximum\":9},"
	"\"s\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":8},"
	"\"e\":{\"enum\":[\"x\",1,2.5,true,null]},\"c\":{\"const\":\"k\"},"
	"\"t\":{\"type\":\"string\",\"format\":\"date-time\"},"
	"\"u\":{\"type\":\"string\",\"format\":\"uuid\"},"
	"\"m\":{\"type\":\"string\",\"format\":\"email\"},"
	"\"l\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":4,\"items\":{\"type\":\"object\","
	"\"properties\":{\"k\":{\"type\":\"array\",\"items\":{\"type\":\"boolean\"}}}}}}}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static evs_schema *base;
	const uint8_t *nul = memchr(data, 0, size);
	const uint8_t *payload = data;
	size_t plen = size;
	char err[256];

	if (base == NULL && evs_schema_parse(fixed, sizeof fixed - 1, &base, err, sizeof err) != 0)
		__builtin_trap();
	if (nul) {
		evs_schema *sc = NULL;
		payload = nul + 1;
		plen = size - (size_t)(payload - data);
		if (evs_schema_parse((const char *)data, (size_t)(nul - data), &sc, err,
				     sizeof err) == EVS_OK) {
			evs_schema_validate(sc, payload, plen, err, sizeof err);
			evs_schema_free(sc);
		}
	}
	evs_schema_validate(base, payload, plen, err, sizeof err);
	return 0;
}
