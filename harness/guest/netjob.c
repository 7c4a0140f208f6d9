// SPDX-License-Identifier: GPL-2.0
/*
 * netjob - a memory-hungry job that also serves the network, and a heartbeat
 * that reports it (machine A of the networked-swap scenarios).
 *
 *   netjob WORK_MB PASSES TCP_PORT UDP_PORT HB_PATH [FILL_MS_PER_MB]
 *
 * The job maps WORK_MB MiB of private anonymous memory, writes every page
 * (so it must swap in a smaller machine; FILL_MS_PER_MB > 0 pauses that long
 * after every MiB of the first pass, a job that grows slowly), then rewrites
 * every page PASSES more times.  Its network service is part of the same thread: every 64
 * pages it accepts TCP connections on TCP_PORT and reads what waits on them
 * and on UDP_PORT.  While the job is stuck in a swap-in, so is its service,
 * and whatever clients send piles up in the kernel.
 *
 * A forked heartbeat process (mlockall: it never pages) writes one line every
 * 100 ms to HB_PATH (a virtio-serial port; no network involved):
 *
 *   hb t_ns phase progress svc_bytes svc_msgs pswpin pswpout free_kb
 *      avail_kb swapfree_kb nbd_rd_sect nbd_wr_sect nbd_inflight rx_pkts
 *      rx_drop pfmemalloc_drop tcp_rcvq_drop udp_rcvbuf_err reasm_fails
 *      tcp_mem_pages udp_mem_pages frag_bytes
 *
 * (counters are cumulative as the kernel keeps them; -1 = not available).
 * The progress counter lives in a shared, locked page.  The host decides
 * from these lines whether the machine wedged; the machine never judges
 * itself.  Lines "hbinfo ..." give the zone watermarks once.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kexp_guest.h"

#define MAX_CONN 256

struct shared {
	volatile uint64_t phase;	/* 1 fill, 2 passes, 3 done */
	volatile uint64_t progress;	/* pages written */
	volatile uint64_t svc_bytes;	/* bytes read from clients */
	volatile uint64_t svc_msgs;	/* reads that returned data */
};

static struct shared *sh;
static int lfd = -1, ufd = -1, conns[MAX_CONN], nconn;
static char rbuf[16384];

static long long field_after(const char *buf, const char *key)
{
	const char *p = strstr(buf, key);

	return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

/* "Prefix: k1 k2 ...\nPrefix: v1 v2 ...": the value of column key */
static long long table_value(const char *buf, const char *prefix, const char *key)
{
	const char *h = strstr(buf, prefix), *v;
	char hk[64], vv[64];
	int off, voff;

	if (!h)
		return -1;
	v = strstr(h + strlen(prefix), prefix);
	if (!v)
		return -1;
	h += strlen(prefix);
	v += strlen(prefix);
	while (sscanf(h, "%63s%n", hk, &off) == 1 && sscanf(v, "%63s%n", vv, &voff) == 1) {
		if (!strcmp(hk, key))
			return strtoll(vv, NULL, 10);
		if (strchr(hk, ':'))
			return -1;
		h += off;
		v += voff;
		if (*h == '\n' || *v == '\n')
			break;
	}
	return -1;
}

static int readall(int fd, char *buf, size_t sz)
{
	ssize_t n;

	buf[0] = 0;
	if (fd < 0)
		return -1;
	n = pread(fd, buf, sz - 1, 0);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return 0;
}

static void netdev_sums(const char *buf, long long *pk, long long *dr)
{
	const char *l = strchr(buf, '\n');
	char name[64];
	long long b, p, e, d;

	*pk = 0;
	*dr = 0;
	if (l)
		l = strchr(l + 1, '\n');
	while (l && *++l) {
		if (sscanf(l, " %63[^:]: %lld %lld %lld %lld", name, &b, &p, &e, &d) == 5 &&
		    strcmp(name, "lo")) {
			*pk += p;
			*dr += d;
		}
		l = strchr(l, '\n');
	}
}

static void heartbeat(const char *path)
{
	static char vm[16384], mi[8192], nd[4096], ns[16384], sn[8192], ss[2048], bs[512], zi[65536];
	int fv = open("/proc/vmstat", O_RDONLY), fm = open("/proc/meminfo", O_RDONLY);
	int fd = open("/proc/net/dev", O_RDONLY), fn = open("/proc/net/netstat", O_RDONLY);
	int fs = open("/proc/net/snmp", O_RDONLY), fk = open("/proc/net/sockstat", O_RDONLY);
	int fb = open("/sys/block/nbd0/stat", O_RDONLY), fz = open("/proc/zoneinfo", O_RDONLY);
	int out = open(path, O_WRONLY);
	long long minkb = 0, lowkb = 0, highkb = 0;
	char line[1024], *z;
	FILE *o;

	if (out < 0) {
		perror(path);
		_exit(1);
	}
	o = fdopen(out, "w");
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		perror("heartbeat: mlockall");
	if (!readall(fz, zi, sizeof(zi))) {
		for (z = zi; (z = strstr(z, "\n        min ")); z++) {
			minkb += strtoll(z + 13, NULL, 10) * 4;
			lowkb += field_after(z, "low ") * 4;
			highkb += field_after(z, "high ") * 4;
		}
	}
	fprintf(o, "hbinfo min_kb=%lld low_kb=%lld high_kb=%lld\n", minkb, lowkb, highkb);
	fflush(o);
	close(fz);
	for (;;) {
		long long rd = -1, wr = -1, inf = -1, pk = -1, dr = -1, t0, t1, t2;
		long long v[20];

		readall(fv, vm, sizeof(vm));
		readall(fm, mi, sizeof(mi));
		readall(fd, nd, sizeof(nd));
		readall(fn, ns, sizeof(ns));
		readall(fs, sn, sizeof(sn));
		readall(fk, ss, sizeof(ss));
		if (!readall(fb, bs, sizeof(bs)) &&
		    sscanf(bs, "%lld %lld %lld %lld %lld %lld %lld %lld %lld",
			   &t0, &t1, &rd, &t2, &t2, &t2, &wr, &t2, &inf) != 9)
			rd = wr = inf = -1;
		netdev_sums(nd, &pk, &dr);
		v[0] = field_after(vm, "\npswpin ");
		v[1] = field_after(vm, "\npswpout ");
		v[2] = field_after(vm, "nr_free_pages ");
		v[3] = field_after(mi, "MemAvailable:");
		v[4] = field_after(mi, "SwapFree:");
		v[5] = table_value(ns, "TcpExt:", "PFMemallocDrop");
		v[6] = table_value(ns, "TcpExt:", "TCPRcvQDrop");
		v[7] = table_value(sn, "Udp:", "RcvbufErrors");
		v[8] = table_value(sn, "Ip:", "ReasmFails");
		v[10] = ss[0] ? field_after(strstr(ss, "\nTCP: ") ?: ss, " mem ") : -1;
		v[11] = ss[0] ? field_after(strstr(ss, "\nUDP: ") ?: ss, " mem ") : -1;
		v[12] = ss[0] ? field_after(strstr(ss, "\nFRAG: ") ?: ss, " memory ") : -1;
		snprintf(line, sizeof(line),
			 "hb %llu %llu %llu %llu %llu %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld\n",
			 (unsigned long long)now_ns(), (unsigned long long)sh->phase,
			 (unsigned long long)sh->progress, (unsigned long long)sh->svc_bytes,
			 (unsigned long long)sh->svc_msgs, v[0], v[1],
			 v[2] < 0 ? -1 : v[2] * 4, v[3], v[4], rd, wr, inf, pk, dr, v[5], v[6],
			 v[7], v[8], v[10], v[11], v[12]);
		fputs(line, o);
		fflush(o);
		if (sh->phase == 3)
			_exit(0);
		usleep(100000);
	}
}

static void serve(void)
{
	int i, fd;
	ssize_t n;

	for (i = 0; i < 4 && nconn < MAX_CONN; i++) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
		if (fd < 0)
			break;
		conns[nconn++] = fd;
	}
	for (i = 0; i < nconn; i++) {
		n = read(conns[i], rbuf, sizeof(rbuf));
		if (n > 0) {
			sh->svc_bytes += n;
			sh->svc_msgs++;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			close(conns[i]);
			conns[i--] = conns[--nconn];
		}
	}
	for (i = 0; i < 16; i++) {
		n = recv(ufd, rbuf, sizeof(rbuf), MSG_DONTWAIT);
		if (n <= 0)
			break;
		sh->svc_bytes += n;
		sh->svc_msgs++;
	}
}

static int listen_on(int type, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, fd = socket(AF_INET, type | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    (type == SOCK_STREAM && listen(fd, 128)))
		return -1;
	return fd;
}

int main(int argc, char **argv)
{
	size_t mb, npages, i, pg = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t x = 88172645463325252ULL, sum = 0;
	int passes, p, status, fill_ms = 0;
	char *mem;
	pid_t hb;

	if (argc != 6 && argc != 7) {
		fprintf(stderr, "usage: netjob WORK_MB PASSES TCP_PORT UDP_PORT HB_PATH [FILL_MS_PER_MB]\n");
		return 2;
	}
	if (argc == 7)
		fill_ms = atoi(argv[6]);
	mb = strtoul(argv[1], NULL, 0);
	passes = atoi(argv[2]);
	lfd = listen_on(SOCK_STREAM, atoi(argv[3]));
	ufd = listen_on(SOCK_DGRAM, atoi(argv[4]));
	if (lfd < 0 || ufd < 0) {
		perror("netjob: listen");
		return 1;
	}
	sh = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED || mlock(sh, pg)) {
		perror("netjob: shared page");
		return 1;
	}
	sh->phase = 1;
	hb = fork();
	if (hb < 0) {
		perror("netjob: fork");
		return 1;
	}
	if (hb == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(lfd);
		close(ufd);
		heartbeat(argv[5]);
	}
	npages = (mb << 20) / pg;
	mem = mmap(NULL, npages * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("netjob: mmap");
		kill(hb, SIGKILL);
		return 1;
	}
	printf("netjob: serving tcp %s udp %s, %zu MiB x %d passes\n", argv[3], argv[4], mb,
	       passes + 1);
	fflush(stdout);
	for (p = 0; p <= passes; p++) {
		sh->phase = p ? 2 : 1;
		for (i = 0; i < npages; i++) {
			uint64_t *w = (uint64_t *)(mem + i * pg);
			int k;

			/* a few non-zero words per page: never a zero-filled page */
			for (k = 0; k < 8; k++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				sum += w[k * 64];
				w[k * 64] = x | 1;
			}
			sh->progress++;
			if (!(i & 63))
				serve();
			if (!p && fill_ms && !((i + 1) % (1048576 / pg)))
				usleep(fill_ms * 1000);
		}
	}
	sh->phase = 3;
	waitpid(hb, &status, 0);
	printf("netjob: done %llu pages, %llu bytes served, sum %llx\n",
	       (unsigned long long)sh->progress, (unsigned long long)sh->svc_bytes,
	       (unsigned long long)sum);
	return 0;
}
