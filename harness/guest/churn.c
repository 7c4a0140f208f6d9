// SPDX-License-Identifier: GPL-2.0
/*
 * churn - exercise the page and slab allocators' fast paths from userspace,
 * one window per repetition, for the instruction-counting bench.
 *
 *   churn pages NPAGES REPS   map NPAGES anonymous pages, touch each (a page
 *                             allocation per fault), unmap (batched frees)
 *   churn slab NOPS REPS      NOPS open()/close() of /dev/null (a struct file
 *                             from its slab cache, freed on close)
 *
 * Before the first repetition and after each one it calls sync(), which the
 * counting plugin uses as a mark. Prints "REP OPS" per repetition.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n, reps, r, i, pg = sysconf(_SC_PAGESIZE);

	if (argc != 4 || (strcmp(argv[1], "pages") && strcmp(argv[1], "slab"))) {
		fprintf(stderr, "usage: churn pages|slab N REPS\n");
		return 2;
	}
	n = atol(argv[2]);
	reps = atol(argv[3]);
	if (n <= 0 || reps <= 0)
		return 2;
	sync();
	for (r = 1; r <= reps; r++) {
		if (!strcmp(argv[1], "pages")) {
			char *p = mmap(NULL, n * pg, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (p == MAP_FAILED) {
				perror("mmap");
				return 1;
			}
			for (i = 0; i < n; i++)
				p[i * pg] = (char)i;
			munmap(p, n * pg);
		} else {
			for (i = 0; i < n; i++) {
				int fd = open("/dev/null", O_RDONLY);

				if (fd < 0) {
					perror("open");
					return 1;
				}
				close(fd);
			}
		}
		sync();
		printf("%ld %ld\n", r, n);
		fflush(stdout);
	}
	return 0;
}
