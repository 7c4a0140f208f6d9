// SPDX-License-Identifier: GPL-2.0
/*
 * sampler - record memory and swap state over time, for the report's timeline.
 *
 *   sampler PERIOD_MS LOG
 *
 * Every PERIOD_MS, appends one line to LOG until SIGTERM:
 *   <CLOCK_MONOTONIC ns> <MemAvailable kB> <SwapTotal - SwapFree kB> <pswpout> <pswpin>
 * Lines are buffered in memory and written at exit, so sampling does not
 * touch the (9p) file system while the guest is under memory pressure.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kexp_guest.h"

#define MAXS 100000

struct sample {
	uint64_t t;
	long avail, swap_used;
	unsigned long long out, in;
};

static volatile sig_atomic_t stop;

static void on_sig(int s)
{
	(void)s;
	stop = 1;
}

static void read_state(struct sample *s)
{
	char line[160];
	long total = 0, free_ = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	s->avail = s->swap_used = -1;
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			sscanf(line, "MemAvailable: %ld", &s->avail);
			sscanf(line, "SwapTotal: %ld", &total);
			sscanf(line, "SwapFree: %ld", &free_);
		}
		fclose(f);
		s->swap_used = total - free_;
	}
	s->out = s->in = 0;
	f = fopen("/proc/vmstat", "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			sscanf(line, "pswpout %llu", &s->out);
			sscanf(line, "pswpin %llu", &s->in);
		}
		fclose(f);
	}
}

int main(int argc, char **argv)
{
	struct sample *buf;
	int period, n = 0, i;
	FILE *f;

	if (argc != 3) {
		fprintf(stderr, "usage: sampler PERIOD_MS LOG\n");
		return 2;
	}
	period = atoi(argv[1]);
	buf = calloc(MAXS, sizeof(*buf));
	if (!buf || period <= 0)
		return 2;
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	while (!stop && n < MAXS) {
		struct timespec ts = { period / 1000, (period % 1000) * 1000000L };

		buf[n].t = now_ns();
		read_state(&buf[n]);
		n++;
		nanosleep(&ts, NULL);
	}
	f = fopen(argv[2], "w");
	if (!f)
		return 1;
	for (i = 0; i < n; i++)
		fprintf(f, "%llu %ld %ld %llu %llu\n", (unsigned long long)buf[i].t, buf[i].avail,
			buf[i].swap_used, buf[i].out, buf[i].in);
	fclose(f);
	return 0;
}
