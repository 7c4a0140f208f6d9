// SPDX-License-Identifier: GPL-2.0
/*
 * flood - send to a service as fast as the link allows (machine B).
 *
 *   flood DST_IP TCP_PORT UDP_PORT KINDS CONNS SECONDS
 *
 * KINDS is a comma list of:
 *   tcp      CONNS connections, each written as fast as it accepts data
 *   udp      1200-byte datagrams (one frame each)
 *   frag     8000-byte datagrams (IP fragments, reassembled by the receiver)
 *   fraghole raw IP fragments of 8000-byte datagrams whose last fragment is
 *            never sent: each train waits in the receiver's reassembly queue
 *            until it times out or is evicted (needs root)
 * Prints "flood t_ns tcp_bytes udp_pkts frag_pkts hole_trains errors" once a
 * second and when SECONDS have passed.  Connections that fail are retried.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kexp_guest.h"

#define MAX_CONN 256

static char buf[65536];

static int tcp_connect(struct sockaddr_in *a)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)a, sizeof(*a)) && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static uint16_t csum(const void *p, int len)
{
	const uint16_t *w = p;
	uint32_t s = 0;

	for (; len > 1; len -= 2)
		s += *w++;
	if (len)
		s += *(const uint8_t *)w;
	s = (s >> 16) + (s & 0xffff);
	s += s >> 16;
	return (uint16_t)~s;
}

/* all fragments but the last of one 8000-byte UDP datagram */
static int send_hole_train(int rfd, struct sockaddr_in *dst, uint16_t id, int uport)
{
	char pkt[1500];
	struct iphdr *ip = (struct iphdr *)pkt;
	struct udphdr *uh = (struct udphdr *)(pkt + sizeof(*ip));
	int off, frag = 1480, total = 8008, sent = 0;

	for (off = 0; off + frag < total; off += frag) {
		memset(pkt, 0, sizeof(*ip));
		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = 64;
		ip->protocol = IPPROTO_UDP;
		ip->id = htons(id);
		ip->daddr = dst->sin_addr.s_addr;
		ip->frag_off = htons(IP_MF | (off / 8));
		ip->tot_len = htons(sizeof(*ip) + frag);
		memset(pkt + sizeof(*ip), 0x5a, frag);
		if (!off) {
			uh->source = htons(40000);
			uh->dest = htons(uport);
			uh->len = htons(total);
			uh->check = 0;
		}
		ip->check = csum(ip, sizeof(*ip));
		if (sendto(rfd, pkt, sizeof(*ip) + frag, MSG_DONTWAIT, (struct sockaddr *)dst,
			   sizeof(*dst)) > 0)
			sent++;
	}
	return sent > 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in ta = { .sin_family = AF_INET }, ua = { .sin_family = AF_INET };
	int conns[MAX_CONN], nconn, i, ufd, rfd = -1, one = 1;
	int do_tcp, do_udp, do_frag, do_hole;
	unsigned long long tcp_bytes = 0, udp = 0, frag = 0, holes = 0, errs = 0;
	uint64_t end, next;
	uint16_t id = 1;
	char *kind;

	if (argc != 7) {
		fprintf(stderr, "usage: flood DST_IP TCP_PORT UDP_PORT KINDS CONNS SECONDS\n");
		return 2;
	}
	inet_pton(AF_INET, argv[1], &ta.sin_addr);
	ua.sin_addr = ta.sin_addr;
	ta.sin_port = htons(atoi(argv[2]));
	ua.sin_port = htons(atoi(argv[3]));
	do_tcp = do_udp = do_frag = do_hole = 0;
	for (kind = strtok(argv[4], ","); kind; kind = strtok(NULL, ",")) {
		if (!strcmp(kind, "tcp"))
			do_tcp = 1;
		else if (!strcmp(kind, "udp"))
			do_udp = 1;
		else if (!strcmp(kind, "frag"))
			do_frag = 1;
		else if (!strcmp(kind, "fraghole"))
			do_hole = 1;
		else if (strcmp(kind, "none")) {
			fprintf(stderr, "flood: unknown kind %s\n", kind);
			return 2;
		}
	}
	nconn = atoi(argv[5]);
	if (nconn > MAX_CONN)
		nconn = MAX_CONN;
	end = now_ns() + (uint64_t)atoll(argv[6]) * 1000000000ull;
	memset(buf, 0xa5, sizeof(buf));
	ufd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (do_hole) {
		rfd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
		if (rfd < 0 || setsockopt(rfd, IPPROTO_IP, IP_HDRINCL, &one, sizeof(one))) {
			perror("flood: raw socket");
			do_hole = 0;
		}
	}
	for (i = 0; i < nconn; i++)
		conns[i] = do_tcp ? tcp_connect(&ta) : -1;
	next = now_ns() + 1000000000ull;
	while (now_ns() < end) {
		for (i = 0; do_tcp && i < nconn; i++) {
			ssize_t n;

			if (conns[i] < 0) {
				conns[i] = tcp_connect(&ta);
				continue;
			}
			n = send(conns[i], buf, sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0) {
				tcp_bytes += n;
			} else if (n < 0 && errno != EAGAIN && errno != ENOTCONN &&
				   errno != EINPROGRESS) {
				errs++;
				close(conns[i]);
				conns[i] = -1;
			}
		}
		for (i = 0; i < 8; i++) {
			if (do_udp && sendto(ufd, buf, 1200, MSG_DONTWAIT, (struct sockaddr *)&ua,
					     sizeof(ua)) > 0)
				udp++;
			if (do_frag && sendto(ufd, buf, 8000, MSG_DONTWAIT, (struct sockaddr *)&ua,
					      sizeof(ua)) > 0)
				frag++;
			if (do_hole && send_hole_train(rfd, &ua, id++, atoi(argv[3])))
				holes++;
		}
		if (now_ns() >= next) {
			printf("flood %llu %llu %llu %llu %llu %llu\n", (unsigned long long)now_ns(),
			       tcp_bytes, udp, frag, holes, errs);
			fflush(stdout);
			next += 1000000000ull;
		}
		if (!do_tcp && !do_udp && !do_frag && !do_hole)
			usleep(100000);
	}
	printf("flood %llu %llu %llu %llu %llu %llu\n", (unsigned long long)now_ns(), tcp_bytes,
	       udp, frag, holes, errs);
	return 0;
}
