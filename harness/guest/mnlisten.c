// SPDX-License-Identifier: GPL-2.0
/*
 * mnlisten - memory-pressure listeners side by side, for latency comparison.
 *
 *   mnlisten now                 print CLOCK_MONOTONIC in ns and exit
 *   mnlisten [-m] [-p WINDOW_US[,WINDOW_US...]] [-v MEMCG_V1_DIR] [-i POLL_MS] -o LOG
 *
 * Each enabled listener runs in its own thread and appends one line per
 * wake-up to LOG (written when SIGTERM/SIGINT arrives):
 *
 *   <listener> <CLOCK_MONOTONIC ns at wake-up> <detail...>
 *
 *   mem_notify  /dev/mem_notify, poll(POLLIN) + read() of the event record
 *   psi-<W>ms   one PSI trigger "some <W/10> <W>" on /proc/pressure/memory
 *               per window given (each on its own file descriptor)
 *   vmpressure  a cgroup v1 memory.pressure_level "low" eventfd
 *   meminfo     /proc/meminfo read every POLL_MS; logs when swap use rises
 *               above what it was at start (the earlyoom/nohang way)
 *
 * Lines starting with "#" report setup results (e.g. which PSI window the
 * kernel accepted, or why a listener could not start).  Each listener also
 * reports its setup on stdout ("mnlisten: setup <name> ok|failed <why>");
 * "mnlisten: ready <ok>/<total>" is printed only once every listener has
 * either opened and armed its source or failed to.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kexp_guest.h"

#include "mem_notify_uapi.h"

#define MAXREC 200000

struct rec {
	const char *who;
	uint64_t t;
	char detail[112];
};

static struct rec *recs;
static int nrec;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t stop;
static int nsetup;

/* a listener is armed (ok) or gave up; says so on stdout and in the log */
static void setup_done(const char *name, int ok, const char *why)
{
	pthread_mutex_lock(&lock);
	printf("mnlisten: setup %s %s%s%s\n", name, ok ? "ok" : "failed", why ? " " : "",
	       why ? why : "");
	fflush(stdout);
	pthread_mutex_unlock(&lock);
	__atomic_add_fetch(&nsetup, 1, __ATOMIC_SEQ_CST);
}

static void add(const char *who, uint64_t t, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&lock);
	if (nrec < MAXREC) {
		recs[nrec].who = who;
		recs[nrec].t = t;
		va_start(ap, fmt);
		vsnprintf(recs[nrec].detail, sizeof(recs[nrec].detail), fmt, ap);
		va_end(ap);
		nrec++;
	}
	pthread_mutex_unlock(&lock);
}

static void *mem_notify_thread(void *arg)
{
	struct mem_notify_event ev;
	struct pollfd pfd;
	int fd = open("/dev/mem_notify", O_RDONLY | O_NONBLOCK);

	(void)arg;
	if (fd < 0) {
		add("#", now_ns(), "mem_notify unavailable: %s", strerror(errno));
		setup_done("mem_notify", 0, strerror(errno));
		return NULL;
	}
	add("#", now_ns(), "mem_notify listening");
	setup_done("mem_notify", 1, NULL);
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (!stop) {
		int r = poll(&pfd, 1, 200);
		uint64_t t = now_ns();

		if (r <= 0)
			continue;
		while (read(fd, &ev, sizeof(ev)) == sizeof(ev))
			add("mem_notify", t, "kind=%u level=%u seq=%llu swapouts=%llu kts=%lld",
			    ev.kind, ev.level, (unsigned long long)ev.seq,
			    (unsigned long long)ev.swapout_events, (long long)ev.timestamp_ns);
	}
	close(fd);
	return NULL;
}

struct psi_arg {
	long window_us;
	char name[32];
};

static void *psi_thread(void *arg)
{
	struct psi_arg *pa = arg;
	char buf[64];
	struct pollfd pfd;
	int fd;

	fd = open("/proc/pressure/memory", O_RDWR | O_NONBLOCK);
	if (fd < 0) {
		add("#", now_ns(), "%s unavailable: %s", pa->name, strerror(errno));
		setup_done(pa->name, 0, strerror(errno));
		return NULL;
	}
	/* threshold: 10% of the window */
	snprintf(buf, sizeof(buf), "some %ld %ld", pa->window_us / 10 ? pa->window_us / 10 : 1,
		 pa->window_us);
	if (write(fd, buf, strlen(buf) + 1) < 0) {
		add("#", now_ns(), "%s trigger '%s' rejected: %s", pa->name, buf, strerror(errno));
		setup_done(pa->name, 0, strerror(errno));
		close(fd);
		return NULL;
	}
	add("#", now_ns(), "%s trigger '%s' accepted", pa->name, buf);
	setup_done(pa->name, 1, NULL);
	pfd.fd = fd;
	pfd.events = POLLPRI;
	while (!stop) {
		int r = poll(&pfd, 1, 200);

		if (r > 0 && (pfd.revents & POLLPRI))
			add(pa->name, now_ns(), "trigger fired");
		if (r > 0 && (pfd.revents & POLLERR))
			break;
	}
	close(fd);
	return NULL;
}

static const char *memcg_dir;

static void *vmpressure_thread(void *arg)
{
	char path[512], buf[64];
	int efd, pfd, cfd;
	struct pollfd p;
	uint64_t v;

	(void)arg;
	efd = eventfd(0, EFD_NONBLOCK);
	snprintf(path, sizeof(path), "%s/memory.pressure_level", memcg_dir);
	pfd = open(path, O_RDONLY);
	snprintf(path, sizeof(path), "%s/cgroup.event_control", memcg_dir);
	cfd = open(path, O_WRONLY);
	if (efd < 0 || pfd < 0 || cfd < 0) {
		add("#", now_ns(), "vmpressure unavailable: %s", strerror(errno));
		setup_done("vmpressure", 0, strerror(errno));
		return NULL;
	}
	snprintf(buf, sizeof(buf), "%d %d low", efd, pfd);
	if (write(cfd, buf, strlen(buf) + 1) < 0) {
		add("#", now_ns(), "vmpressure registration failed: %s", strerror(errno));
		setup_done("vmpressure", 0, strerror(errno));
		return NULL;
	}
	add("#", now_ns(), "vmpressure listening (low)");
	setup_done("vmpressure", 1, NULL);
	p.fd = efd;
	p.events = POLLIN;
	while (!stop) {
		int r = poll(&p, 1, 200);
		uint64_t t = now_ns();

		if (r > 0 && read(efd, &v, sizeof(v)) == sizeof(v))
			add("vmpressure", t, "count=%llu", (unsigned long long)v);
	}
	return NULL;
}

static int poll_ms = 100;

static long swap_used_kb(void)
{
	char line[128];
	long total = -1, free_ = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "SwapTotal: %ld", &total);
		sscanf(line, "SwapFree: %ld", &free_);
	}
	fclose(f);
	return total < 0 || free_ < 0 ? -1 : total - free_;
}

static void *meminfo_thread(void *arg)
{
	long base = swap_used_kb(), last = base, cur;

	(void)arg;
	add("#", now_ns(), "meminfo poller every %d ms, swap used %ld kB", poll_ms, base);
	setup_done("meminfo", base >= 0, base >= 0 ? NULL : "no SwapTotal/SwapFree");
	while (!stop) {
		struct timespec ts = { poll_ms / 1000, (poll_ms % 1000) * 1000000L };

		nanosleep(&ts, NULL);
		cur = swap_used_kb();
		if (cur > last)
			add("meminfo", now_ns(), "swap_used_kb=%ld", cur);
		last = cur;
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
	pthread_t th[16];
	struct psi_arg psi[8];
	int nth = 0, npsi = 0, opt, i, want_mn = 0;
	char *tok, *save;
	const char *out = NULL;
	FILE *f;

	if (argc > 1 && !strcmp(argv[1], "now")) {
		printf("%llu\n", (unsigned long long)now_ns());
		return 0;
	}
	/* stay resident: a listener paged out would measure its own page-in */
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		perror("mnlisten: mlockall");
	recs = calloc(MAXREC, sizeof(*recs));
	while ((opt = getopt(argc, argv, "mp:v:i:o:")) != -1) {
		switch (opt) {
		case 'm': want_mn = 1; break;
		case 'p':
			for (tok = strtok_r(optarg, ",", &save); tok && npsi < 8;
			     tok = strtok_r(NULL, ",", &save)) {
				psi[npsi].window_us = atol(tok);
				snprintf(psi[npsi].name, sizeof(psi[npsi].name), "psi-%ldms",
					 psi[npsi].window_us / 1000);
				npsi++;
			}
			break;
		case 'v': memcg_dir = optarg; break;
		case 'i': poll_ms = atoi(optarg); break;
		case 'o': out = optarg; break;
		default: return 2;
		}
	}
	if (!out || !recs)
		return 2;
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	if (want_mn)
		pthread_create(&th[nth++], NULL, mem_notify_thread, NULL);
	for (i = 0; i < npsi; i++)
		pthread_create(&th[nth++], NULL, psi_thread, &psi[i]);
	if (memcg_dir)
		pthread_create(&th[nth++], NULL, vmpressure_thread, NULL);
	if (poll_ms > 0)
		pthread_create(&th[nth++], NULL, meminfo_thread, NULL);
	while (__atomic_load_n(&nsetup, __ATOMIC_SEQ_CST) < nth)
		usleep(1000);
	pthread_mutex_lock(&lock);
	printf("mnlisten: ready %d listeners\n", nth);
	fflush(stdout);
	pthread_mutex_unlock(&lock);
	while (!stop)
		pause();
	for (i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	f = fopen(out, "w");
	if (!f)
		return 1;
	for (i = 0; i < nrec; i++)
		fprintf(f, "%s %llu %s\n", recs[i].who, (unsigned long long)recs[i].t, recs[i].detail);
	fclose(f);
	return 0;
}
