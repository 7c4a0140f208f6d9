// SPDX-License-Identifier: GPL-2.0
/*
 * cgwatch - watch cgroup files the way an administrator's daemon would.
 *
 *   cgwatch -o LOG FILE...
 *
 * For every FILE: one thread polls it (read, then poll() for POLLPRI, the
 * kernfs notification) and all are watched with one inotify instance
 * (IN_MODIFY, which cgroup_file_notify() raises).  Each wake-up appends
 *
 *   <poll|inotify> <FILE> <CLOCK_MONOTONIC ns>
 *
 * to LOG when SIGTERM arrives.  "ready" is printed once every watch is set.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "kexp_guest.h"

#define MAXF 16
#define MAXREC 100000

static const char *files[MAXF];
static int nfiles;
static struct { const char *how; int f; uint64_t t; } recs[MAXREC];
static int nrec, nready;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t stop;

static void add(const char *how, int f)
{
	pthread_mutex_lock(&lock);
	if (nrec < MAXREC) {
		recs[nrec].how = how;
		recs[nrec].f = f;
		recs[nrec].t = now_ns();
		nrec++;
	}
	pthread_mutex_unlock(&lock);
}

static void *poller(void *arg)
{
	int f = (int)(intptr_t)arg, fd = open(files[f], O_RDONLY);
	char buf[512];
	struct pollfd p;

	if (fd < 0) {
		fprintf(stderr, "cgwatch: %s: %s\n", files[f], strerror(errno));
		return NULL;
	}
	p.fd = fd;
	p.events = POLLPRI;
	(void)!pread(fd, buf, sizeof(buf), 0);
	__atomic_add_fetch(&nready, 1, __ATOMIC_SEQ_CST);
	while (!stop) {
		int r = poll(&p, 1, 200);

		if (r > 0 && (p.revents & (POLLPRI | POLLERR))) {
			add("poll", f);
			(void)!pread(fd, buf, sizeof(buf), 0);
		}
	}
	return NULL;
}

static void *inotifier(void *arg)
{
	int in = inotify_init1(IN_NONBLOCK), wd[MAXF], i;
	char buf[4096] __attribute__((aligned(8)));
	struct pollfd p;

	(void)arg;
	for (i = 0; i < nfiles; i++)
		wd[i] = inotify_add_watch(in, files[i], IN_MODIFY);
	__atomic_add_fetch(&nready, 1, __ATOMIC_SEQ_CST);
	p.fd = in;
	p.events = POLLIN;
	while (!stop) {
		ssize_t n;
		char *q;

		if (poll(&p, 1, 200) <= 0)
			continue;
		n = read(in, buf, sizeof(buf));
		for (q = buf; n > 0 && q < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)q;

			for (i = 0; i < nfiles; i++)
				if (wd[i] == ev->wd)
					add("inotify", i);
			q += sizeof(*ev) + ev->len;
		}
	}
	return NULL;
}

static void on_sig(int s)
{
	(void)s;
	stop = 1;
}

int main(int argc, char **argv)
{
	pthread_t th[MAXF + 1];
	const char *out = NULL;
	int i, opt;
	FILE *f;

	while ((opt = getopt(argc, argv, "o:")) != -1)
		if (opt == 'o')
			out = optarg;
	for (i = optind; i < argc && nfiles < MAXF; i++)
		files[nfiles++] = argv[i];
	if (!out || !nfiles) {
		fprintf(stderr, "usage: cgwatch -o LOG FILE...\n");
		return 2;
	}
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	for (i = 0; i < nfiles; i++)
		pthread_create(&th[i], NULL, poller, (void *)(intptr_t)i);
	pthread_create(&th[nfiles], NULL, inotifier, NULL);
	while (__atomic_load_n(&nready, __ATOMIC_SEQ_CST) < nfiles + 1)
		usleep(10000);
	printf("cgwatch: ready\n");
	fflush(stdout);
	while (!stop)
		pause();
	for (i = 0; i <= nfiles; i++)
		pthread_join(th[i], NULL);
	f = fopen(out, "w");
	if (!f)
		return 1;
	for (i = 0; i < nrec; i++)
		fprintf(f, "%s %s %llu\n", recs[i].how, files[recs[i].f], (unsigned long long)recs[i].t);
	fclose(f);
	return 0;
}
