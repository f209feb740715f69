/*
 * progress.c - one progress line on stderr for long work (append from
 * stdin, import, export, verify, project --once):
 *
 *   import: 412,000 events, 101,310/s
 *   export: 412,000 of 1,000,000 events (41%), 98,102/s, ETA 0:06
 *
 * Only on a terminal: nothing at all when stderr is not a tty or with
 * --quiet, so pipes, files and scripts see exactly the output they saw
 * before. The line is redrawn in place (\r, erase to end of line) at
 * most every 200 ms, and not before the work has run 200 ms, so short
 * commands never flash one; when it was drawn, the last figures stay
 * on the terminal, ended by a newline. EVS_PROGRESS_DELAY_MS changes
 * that first wait (tests set 0 so that work shorter than 200 ms on a
 * fast machine still shows its line).
 *
 * Counting is cheap (an add and, every 256 events, a clock read), so a
 * command calls cli_progress_add per event. Every function accepts the
 * NULL that cli_progress_start returns when there is nothing to show.
 */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define REDRAW_NS (200 * 1000000LL) /* at most 5 lines a second */

struct cli_progress {
	const char *what;
	uint64_t done, total; /* total 0: not known */
	int64_t start, last;  /* monotonic ns; last draw */
	unsigned since_clock;
	bool drawn;
};

static bool quiet;

void cli_progress_quiet(void)
{
	quiet = true;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct cli_progress *cli_progress_start(const char *what, uint64_t total)
{
	struct cli_progress *p;
	const char *delay;
	uint64_t ms;

	if (quiet || !isatty(STDERR_FILENO))
		return NULL;
	p = cli_xcalloc(1, sizeof *p);
	p->what = what;
	p->total = total;
	p->start = p->last = now_ns();
	delay = getenv("EVS_PROGRESS_DELAY_MS");
	if (delay && cli_parse_u64(delay, &ms) == 0 && ms < 3600 * 1000)
		p->last = p->start - REDRAW_NS + (int64_t)ms * 1000000; /* first draw at ms */
	return p;
}

/* 1234567 -> "1,234,567" */
static void grouped(char *out, size_t len, uint64_t n)
{
	char digits[24];
	int nd = snprintf(digits, sizeof digits, "%llu", (unsigned long long)n);
	size_t o = 0;

	for (int i = 0; i < nd && o + 2 < len; i++) {
		if (i > 0 && (nd - i) % 3 == 0)
			out[o++] = ',';
		out[o++] = digits[i];
	}
	out[o] = '\0';
}

static void draw(struct cli_progress *p, int64_t now)
{
	double secs = (double)(now - p->start) / 1e9;
	double rate = secs > 0 ? (double)p->done / secs : 0;
	char done[32], total[32], speed[32];

	grouped(done, sizeof done, p->done);
	grouped(speed, sizeof speed, (uint64_t)rate);
	fflush(stdout); /* keep the order when both go to the terminal */
	if (p->total && p->done <= p->total) {
		grouped(total, sizeof total, p->total);
		fprintf(stderr, "\r%s: %s of %s events (%d%%), %s/s", p->what, done, total,
			(int)(100.0 * (double)p->done / (double)p->total), speed);
		if (rate > 0 && p->done < p->total) {
			long eta = (long)((double)(p->total - p->done) / rate + 0.5);

			fprintf(stderr, ", ETA %ld:%02ld", eta / 60, eta % 60);
		}
	} else {
		fprintf(stderr, "\r%s: %s events, %s/s", p->what, done, speed);
	}
	fputs("\033[K", stderr);
	fflush(stderr);
	p->drawn = true;
	p->last = now;
}

void cli_progress_add(struct cli_progress *p, uint64_t n)
{
	int64_t now;

	if (!p)
		return;
	p->done += n;
	if (++p->since_clock < 256 && n < 256)
		return;
	p->since_clock = 0;
	now = now_ns();
	if (now - p->last >= REDRAW_NS)
		draw(p, now);
}

void cli_progress_set_total(struct cli_progress *p, uint64_t total)
{
	if (p)
		p->total = total;
}

void cli_progress_done(struct cli_progress *p)
{
	if (!p)
		return;
	if (p->drawn) {
		draw(p, now_ns());
		fputc('\n', stderr);
	}
	free(p);
}
