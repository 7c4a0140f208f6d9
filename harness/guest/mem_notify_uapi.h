/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Copy of include/uapi/linux/mem_notify.h from the series, so the guest tools
 * build on a host whose headers predate it.  Keep in sync with the patch.
 */
#ifndef KEXP_MEM_NOTIFY_UAPI_H
#define KEXP_MEM_NOTIFY_UAPI_H
#include <linux/types.h>

struct mem_notify_event {
	__u32 version;
	__u32 size;
	__u32 kind;
	__u32 level;
	__u64 seq;
	__u64 swapout_events;
	__u64 pswpout;
	__s64 timestamp_ns;
	__u64 reserved[2];
};

#endif
