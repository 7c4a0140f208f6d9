// SPDX-License-Identifier: GPL-2.0
/*
 * hog - allocate anonymous memory and keep it busy so the VM must swap.
 *
 *   hog MB [PASSES] [STEP_MS]
 *
 * Maps MB MiB of private anonymous memory and fills every word with xorshift
 * data (6.12 does not write zero-filled pages to swap), then reads one word per
 * page PASSES more times; PASSES "hold" fills once, prints "hog: holding" and
 * then sleeps until killed (an idle job whose pages reclaim will pick).  STEP_MS > 0 sleeps that long after every MiB of the
 * fill, for workloads that must ramp up slowly.  Prints "hog: filled N MiB"
 * progress lines and the checksum at the end (so nothing is optimised away).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t mb, len, i, pg = (size_t)sysconf(_SC_PAGESIZE);
	int passes = 1, step_ms = 0, hold = 0, p;
	uint64_t x = 88172645463325252ULL, sum = 0;
	uint64_t *mem;

	if (argc < 2) {
		fprintf(stderr, "usage: hog MB [PASSES] [STEP_MS]\n");
		return 2;
	}
	mb = strtoul(argv[1], NULL, 0);
	if (argc > 2 && !strcmp(argv[2], "hold"))
		hold = 1;
	else if (argc > 2)
		passes = atoi(argv[2]);
	if (argc > 3)
		step_ms = atoi(argv[3]);
	len = mb << 20;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("hog: mmap");
		return 1;
	}
	for (i = 0; i < len / sizeof(*mem); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		mem[i] = x | 1;
		if ((i * sizeof(*mem)) % (64u << 20) == 0 && i) {
			printf("hog: filled %zu MiB\n", (i * sizeof(*mem)) >> 20);
			fflush(stdout);
		}
		if (step_ms && (i * sizeof(*mem)) % (1u << 20) == 0) {
			struct timespec ts = { 0, step_ms * 1000000L };

			nanosleep(&ts, NULL);
		}
	}
	printf("hog: filled %zu MiB\n", mb);
	if (hold) {
		printf("hog: holding\n");
		fflush(stdout);
		for (;;)
			pause();
	}
	for (p = 0; p < passes - 1; p++)
		for (i = 0; i < len; i += pg)
			sum += mem[i / sizeof(*mem)];
	printf("hog: done sum=%llx\n", (unsigned long long)sum);
	return 0;
}
