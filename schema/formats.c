/*
 * formats.c - the string formats a schema may name: date-time (RFC 3339
 * section 5.6), uuid (RFC 9562 text form, any version) and email (a
 * practical subset of RFC 5322 addr-spec: one "@", a local part of 1..64
 * printable characters without spaces, a domain of dot-separated labels of
 * letters, digits and hyphens, or any non-ASCII UTF-8).
 */
#include <string.h>

#include "rfc3339.h"
#include "schema_internal.h"

/* The date-time format is the base's RFC 3339 reader (rfc3339.h), which
 * also accepts second 60 and any number of fractional digits, as the RFC
 * does; only converting to nanoseconds refuses those. */
bool evs__fmt_datetime(const char *s, size_t n)
{
	struct evs__rfc3339 f;
	const char *why;

	return evs__rfc3339_fields(s, n, &f, &why) == 0;
}

bool evs__fmt_uuid(const char *s, size_t n)
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		char c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return true;
}

bool evs__fmt_email(const char *s, size_t n)
{
	const char *at = memchr(s, '@', n);
	size_t local, label = 0;

	if (at == NULL || memchr(at + 1, '@', n - (size_t)(at - s) - 1) != NULL)
		return false;
	local = (size_t)(at - s);
	if (local == 0 || local > 64 || local + 1 == n || n > 254)
		return false;
	for (size_t i = 0; i < local; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f || c == '"' || c == '(' || c == ')' || c == ',' ||
		    c == ':' || c == ';' || c == '<' || c == '>' || c == '[' || c == '\\' ||
		    c == ']')
			return false;
	}
	if (s[0] == '.' || s[local - 1] == '.')
		return false;
	for (size_t i = local + 1; i <= n; i++) {
		unsigned char c = i < n ? (unsigned char)s[i] : '.';
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-' || label > 63)
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || c >= 0x80 || (c == '-' && label > 0)) {
			label++;
		} else {
			return false;
		}
	}
	return true;
}
