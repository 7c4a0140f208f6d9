// SPDX-License-Identifier: GPL-2.0
/*
 * mnherd - many readers of /dev/mem_notify, to check bounded wakeups.
 *
 *   mnherd NREADERS TIMEOUT_S LOG
 *   mnherd calib NREADERS LOG [INTERVAL_MS]
 *
 * Opens NREADERS descriptors; half wait in poll(), half in epoll_wait() (each
 * with its own epoll instance).  Every reader records the CLOCK_MONOTONIC time
 * it was woken and the record it read.  Prints "mnherd: ready" once all wait,
 * and exits when every reader has heard of an event or TIMEOUT_S passes.
 * LOG lines: <idx> <poll|epoll> <wake ns> <seq> <kind> <event kts ns>
 *
 * calib: the same readers wait on one eventfd instead, released all at once
 * by a single write; LOG gets the same lines (seq 0, kind 0, the write's time
 * as kts).  The time for the last of them to run is what this guest needs to
 * schedule NREADERS woken threads: the scheduling part of a herd's delay.
 * With INTERVAL_MS, it then sleeps INTERVAL_MS 32 times in a row and prints
 * "mnherd: calib period <ns>", the mean time one such timed sleep really
 * took: what spacing delayed work at that interval gets in this guest.
 */
#include <sys/eventfd.h>
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kexp_guest.h"

#include "mem_notify_uapi.h"

struct reader {
	int idx, fd, ep;
	uint64_t t;
	struct mem_notify_event ev;
	int done;
};

static struct reader *rd;
static int nready, ndone, calib;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *run(void *arg)
{
	struct reader *r = arg;
	struct epoll_event ee;
	struct pollfd p = { .fd = r->fd, .events = POLLIN };
	int n;

	pthread_mutex_lock(&lock);
	nready++;
	pthread_mutex_unlock(&lock);
	for (;;) {
		if (r->ep >= 0)
			n = epoll_wait(r->ep, &ee, 1, 1000);
		else
			n = poll(&p, 1, 1000);
		if (n > 0)
			break;
		if (n < 0 && errno != EINTR)
			return NULL;
	}
	r->t = now_ns();
	if (!calib && read(r->fd, &r->ev, sizeof(r->ev)) != sizeof(r->ev))
		return NULL;
	pthread_mutex_lock(&lock);
	r->done = 1;
	ndone++;
	pthread_mutex_unlock(&lock);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_attr_t at;
	pthread_t th;
	int n, timeout, i, all, efd = -1;
	uint64_t end, t_release = 0;
	FILE *f;

	if (argc != 4 && !(argc == 5 && !strcmp(argv[1], "calib"))) {
		fprintf(stderr, "usage: mnherd NREADERS TIMEOUT_S LOG | mnherd calib NREADERS LOG\n");
		return 2;
	}
	if (!strcmp(argv[1], "calib")) {
		calib = 1;
		n = atoi(argv[2]);
		timeout = 60;
		efd = eventfd(0, EFD_NONBLOCK);
		if (efd < 0) {
			perror("mnherd: eventfd");
			return 1;
		}
	} else {
		n = atoi(argv[1]);
		timeout = atoi(argv[2]);
	}
	/*
	 * Readers that want to hear of pressure in time keep themselves
	 * resident, as real pressure daemons do: a reader whose stack was
	 * swapped out would measure its own page-in, not the wakeup.
	 */
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		perror("mnherd: mlockall");
	rd = calloc(n, sizeof(*rd));
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 64 << 10);
	for (i = 0; i < n; i++) {
		rd[i].idx = i;
		rd[i].ep = -1;
		rd[i].fd = calib ? efd : open("/dev/mem_notify", O_RDONLY | O_NONBLOCK);
		if (rd[i].fd < 0) {
			fprintf(stderr, "mnherd: open #%d: %s\n", i, strerror(errno));
			return 1;
		}
		if (i % 2) {
			struct epoll_event ee = { .events = EPOLLIN, .data.u32 = i };

			rd[i].ep = epoll_create1(0);
			if (rd[i].ep < 0 || epoll_ctl(rd[i].ep, EPOLL_CTL_ADD, rd[i].fd, &ee)) {
				fprintf(stderr, "mnherd: epoll #%d: %s\n", i, strerror(errno));
				return 1;
			}
		}
		if (pthread_create(&th, &at, run, &rd[i])) {
			fprintf(stderr, "mnherd: thread #%d failed\n", i);
			return 1;
		}
		pthread_detach(th);
	}
	while (__atomic_load_n(&nready, __ATOMIC_SEQ_CST) < n)
		usleep(10000);
	usleep(300000);		/* let every thread block in poll/epoll_wait */
	printf("mnherd: ready %d readers\n", n);
	fflush(stdout);
	if (calib) {
		uint64_t one = 1;

		t_release = now_ns();
		if (write(efd, &one, sizeof(one)) != sizeof(one))
			return 1;
	}
	end = now_ns() + (uint64_t)timeout * 1000000000ull;
	do {
		usleep(20000);
		pthread_mutex_lock(&lock);
		all = ndone == n;
		pthread_mutex_unlock(&lock);
	} while (!all && now_ns() < end);
	f = fopen(argv[3], "w");
	if (!f)
		return 1;
	pthread_mutex_lock(&lock);
	for (i = 0; i < n; i++)
		if (rd[i].done)
			fprintf(f, "%d %s %llu %llu %u %lld\n", i, rd[i].ep >= 0 ? "epoll" : "poll",
				(unsigned long long)rd[i].t, (unsigned long long)rd[i].ev.seq,
				rd[i].ev.kind, calib ? (long long)t_release : (long long)rd[i].ev.timestamp_ns);
	fprintf(f, "# done %d of %d\n", ndone, n);
	pthread_mutex_unlock(&lock);
	fclose(f);
	printf("mnherd: %d of %d readers woke\n", ndone, n);
	if (calib && argc == 5) {
		int iv = atoi(argv[4]), k;
		uint64_t t0 = now_ns();

		for (k = 0; k < 32; k++) {
			struct timespec ts = { iv / 1000, (iv % 1000) * 1000000L };

			nanosleep(&ts, NULL);
		}
		printf("mnherd: calib period %llu\n", (unsigned long long)((now_ns() - t0) / 32));
	}
	return ndone == n ? 0 : 1;
}
