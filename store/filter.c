/*
 * filter.c - the copied forms of a caller's evs_filter (evs_read_all,
 * evs_subscribe) and evs_query (evs_read_query): checked, owned, and
 * tested against a decoded event. Reads hand them to ixplan.c, which
 * turns their indexed parts into a walk of the event indexes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"

/* Copy n strings and their lengths: 0, or -1 out of memory. */
static int copy_strings(const char *const *src, size_t n, char ***out, size_t **lens)
{
	char **v = evs__calloc(n, sizeof *v);
	size_t *l = evs__calloc(n, sizeof *l);

	if (v == NULL || l == NULL)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if ((v[i] = evs__strdup(src[i])) == NULL)
			goto fail;
		l[i] = strlen(src[i]);
	}
	*out = v;
	*lens = l;
	return 0;
fail:
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
	free(l);
	return -1;
}

static void free_strings(char **v, size_t *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	free(l);
}

static bool has_null(const char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == NULL)
			return true;
	return false;
}

/* Names an index is keyed by (categories, tags, and a query's types):
 * present, 1..255 bytes of UTF-8 without NUL, no repeats. EVS_OK or
 * EVS_INVALID with "<what> <i> <why>". */
static int check_names(const evs_store *s, const char *ctx, const char *what, const char *const *v,
		       size_t n)
{
	if (n && v == NULL)
		return evs__fail(s, EVS_INVALID, "%s: %s is NULL with a count of %zu", ctx, what,
				 n);
	if (n > EVS__PLAN_MAX_KEYS)
		return evs__fail(s, EVS_INVALID, "%s: %zu %s values, the limit is %d", ctx, n, what,
				 EVS__PLAN_MAX_KEYS);
	for (size_t i = 0; i < n; i++) {
		size_t len;
		int ok = evs__check_name(v[i], &len);
		if (ok <= 0)
			return evs__fail(s, EVS_INVALID, "%s: %s %zu %s", ctx, what, i,
					 v[i] == NULL ? "is NULL"
					 : ok == 0    ? "is empty"
					 : ok == -1   ? "is longer than 255 bytes"
						      : "is not valid UTF-8");
		for (size_t j = 0; j < i; j++)
			if (strcmp(v[j], v[i]) == 0)
				return evs__fail(s, EVS_INVALID, "%s: %s %zu \"%s\" repeats %s %zu",
						 ctx, what, i, v[i], what, j);
	}
	return EVS_OK;
}

int evs__filter_copy(const evs_store *s, evs__filter *dst, const evs_filter *src)
{
	int rc;

	memset(dst, 0, sizeof *dst);
	dst->catsep = s->core->catsep;
	if (src == NULL)
		return EVS_OK;
	if ((src->ntypes && src->types == NULL) || (src->nprefixes && src->stream_prefixes == NULL))
		return evs__fail(s, EVS_INVALID, "filter: NULL array with a count");
	/* a caller's mistake, told apart from out of memory */
	if (has_null(src->types, src->ntypes))
		return evs__fail(s, EVS_INVALID, "filter: NULL type");
	if (has_null(src->stream_prefixes, src->nprefixes))
		return evs__fail(s, EVS_INVALID, "filter: NULL prefix");
	if (src->ntypes > EVS__PLAN_MAX_KEYS)
		return evs__fail(s, EVS_INVALID, "filter: %zu types, the limit is %d", src->ntypes,
				 EVS__PLAN_MAX_KEYS);
	if ((rc = check_names(s, "filter", "category", src->categories, src->ncategories)) ||
	    (rc = check_names(s, "filter", "tag", src->tags, src->ntags)))
		return rc;
	if (src->ntags > EVS_MAX_TAGS)
		return evs__fail(s, EVS_INVALID, "filter: %zu tags, an event has at most %d",
				 src->ntags, EVS_MAX_TAGS);
	/* all zero is "none" in an event: as a filter it would ask for the
	 * events without one, which no index holds; NULL means any */
	if (src->correlation_id && evs__is_zero16(src->correlation_id))
		return evs__fail(s, EVS_INVALID,
				 "filter: correlation_id is all zero (NULL matches any)");
	if ((src->ntypes &&
	     copy_strings(src->types, src->ntypes, &dst->types, &dst->type_lens) != 0) ||
	    (dst->ntypes = src->ntypes,
	     src->nprefixes && copy_strings(src->stream_prefixes, src->nprefixes, &dst->prefixes,
					    &dst->prefix_lens) != 0) ||
	    (dst->nprefixes = src->nprefixes,
	     src->ncategories && copy_strings(src->categories, src->ncategories, &dst->categories,
					      &dst->category_lens) != 0) ||
	    (dst->ncategories = src->ncategories,
	     src->ntags && copy_strings(src->tags, src->ntags, &dst->tags, &dst->tag_lens) != 0)) {
		evs__filter_free(dst);
		return evs__fail(s, EVS_NOMEM, "out of memory");
	}
	dst->ntags = src->ntags;
	if (src->correlation_id) {
		dst->has_correlation = true;
		memcpy(dst->correlation, src->correlation_id, 16);
	}
	return EVS_OK;
}

void evs__filter_free(evs__filter *f)
{
	/* a failed copy leaves arrays without counts: free by the arrays */
	free_strings(f->types, f->type_lens, f->types ? f->ntypes : 0);
	free_strings(f->prefixes, f->prefix_lens, f->prefixes ? f->nprefixes : 0);
	free_strings(f->categories, f->category_lens, f->categories ? f->ncategories : 0);
	free_strings(f->tags, f->tag_lens, f->tags ? f->ntags : 0);
	memset(f, 0, sizeof *f);
}

static bool one_of(char *const *v, const size_t *lens, size_t n, const char *p, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (lens[i] == len && memcmp(v[i], p, len) == 0)
			return true;
	return false;
}

static bool has_tag(const evs_event *ev, const char *t, size_t len)
{
	for (size_t i = 0; i < ev->ntags; i++)
		if (ev->tags[i].len == len && memcmp(ev->tags[i].ptr, t, len) == 0)
			return true;
	return false;
}

bool evs__filter_pass(const evs__filter *f, const evs_event *ev)
{
	if (f->ntypes && !one_of(f->types, f->type_lens, f->ntypes, ev->type.ptr, ev->type.len))
		return false;
	if (f->nprefixes) {
		bool ok = false;
		for (size_t i = 0; !ok && i < f->nprefixes; i++)
			ok = f->prefix_lens[i] <= ev->stream.len &&
			     memcmp(f->prefixes[i], ev->stream.ptr, f->prefix_lens[i]) == 0;
		if (!ok)
			return false;
	}
	if (f->ncategories) {
		const char *sep = memchr(ev->stream.ptr, f->catsep, ev->stream.len);
		size_t clen = sep ? (size_t)(sep - ev->stream.ptr) : ev->stream.len;
		if (!one_of(f->categories, f->category_lens, f->ncategories, ev->stream.ptr, clen))
			return false;
	}
	for (size_t i = 0; i < f->ntags; i++)
		if (!has_tag(ev, f->tags[i], f->tag_lens[i]))
			return false;
	return !f->has_correlation || memcmp(f->correlation, ev->correlation_id, 16) == 0;
}

/* ---- queries ------------------------------------------------------------ */

int evs__query_copy(const evs_store *s, evs__query *dst, const evs_query *src)
{
	char ctx[48];
	int rc;

	memset(dst, 0, sizeof *dst);
	if (src == NULL)
		return evs__fail(s, EVS_INVALID, "query is NULL");
	if (src->nitems && src->items == NULL)
		return evs__fail(s, EVS_INVALID, "query: items is NULL with a count of %zu",
				 src->nitems);
	if (src->nitems > EVS__PLAN_MAX_KEYS)
		return evs__fail(s, EVS_INVALID, "query: %zu items, the limit is %d", src->nitems,
				 EVS__PLAN_MAX_KEYS);
	dst->all = src->nitems == 0;
	if (src->nitems && (dst->items = evs__calloc(src->nitems, sizeof *dst->items)) == NULL)
		return evs__fail(s, EVS_NOMEM, "out of memory");
	for (size_t i = 0; i < src->nitems; i++) {
		const evs_query_item *it = &src->items[i];
		evs__qitem *d = &dst->items[i];
		snprintf(ctx, sizeof ctx, "query item %zu", i);
		if ((rc = check_names(s, ctx, "type", it->types, it->ntypes)) ||
		    (rc = check_names(s, ctx, "tag", it->tags, it->ntags))) {
			evs__query_free(dst);
			return rc;
		}
		if (it->ntags > EVS_MAX_TAGS) {
			evs__query_free(dst);
			return evs__fail(s, EVS_INVALID, "%s: %zu tags, an event has at most %d",
					 ctx, it->ntags, EVS_MAX_TAGS);
		}
		dst->nitems = i + 1; /* freed from here on */
		if ((it->ntypes &&
		     copy_strings(it->types, it->ntypes, &d->types, &d->type_lens) != 0) ||
		    (d->ntypes = it->ntypes,
		     it->ntags && copy_strings(it->tags, it->ntags, &d->tags, &d->tag_lens) != 0)) {
			evs__query_free(dst);
			return evs__fail(s, EVS_NOMEM, "out of memory");
		}
		d->ntags = it->ntags;
		if (it->ntypes == 0 && it->ntags == 0)
			dst->all = true; /* an item that matches every event */
	}
	return EVS_OK;
}

void evs__query_free(evs__query *q)
{
	for (size_t i = 0; q->items && i < q->nitems; i++) {
		evs__qitem *d = &q->items[i];
		free_strings(d->types, d->type_lens, d->types ? d->ntypes : 0);
		free_strings(d->tags, d->tag_lens, d->tags ? d->ntags : 0);
	}
	/* items a failed copy began but did not count */
	free(q->items);
	memset(q, 0, sizeof *q);
}

bool evs__query_pass(const evs__query *q, const evs_event *ev)
{
	if (q->all || q->items == NULL) /* every event, or no query at all */
		return true;
	for (size_t i = 0; i < q->nitems; i++) {
		const evs__qitem *it = &q->items[i];
		bool ok = it->ntypes == 0 ||
			  one_of(it->types, it->type_lens, it->ntypes, ev->type.ptr, ev->type.len);
		for (size_t j = 0; ok && j < it->ntags; j++)
			ok = has_tag(ev, it->tags[j], it->tag_lens[j]);
		if (ok)
			return true;
	}
	return false;
}
