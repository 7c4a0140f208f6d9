/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by the guest tools. */
#ifndef KEXP_GUEST_H
#define KEXP_GUEST_H
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in ns: comparable with the "mono" trace clock and with
 * kernel ktime_get_ns() stamps */
static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}
#endif
