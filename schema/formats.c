/*
 * formats.c - the string formats a schema may name: date-time (RFC 3339
 * section 5.6), uuid (RFC 9562 text form, any version) and email (a
 * practical subset of RFC 5322 addr-spec: one "@", a local part of 1..64
 * printable characters without spaces, a domain of dot-separated labels of
 * letters, digits and hyphens, or any non-ASCII UTF-8).
 */
#include <string.h>

#include "schema_internal.h"

static bool digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

bool evs__fmt_datetime(const char *s, size_t n)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, se, oh, om;
	size_t i = 19;

	if (n < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
	    !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
	    !digits(s + 17, 2, &se))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
		return false;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return false;
	if (s[i] == '.') {
		size_t k = ++i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == k)
			return false;
	}
	if (i < n && (s[i] == 'Z' || s[i] == 'z'))
		return i + 1 == n;
	if (n - i != 6 || (s[i] != '+' && s[i] != '-') || !digits(s + i + 1, 2, &oh) ||
	    s[i + 3] != ':' || !digits(s + i + 4, 2, &om))
		return false;
	return oh <= 23 && om <= 59;
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
