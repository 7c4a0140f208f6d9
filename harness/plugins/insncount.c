// SPDX-License-Identifier: GPL-2.0
/*
 * insncount - a QEMU TCG plugin that counts guest instructions executed in
 * given address ranges (the functions of a kernel patch series) and in the
 * whole kernel, for the kexp benchmarks.
 *
 * Arguments (QEMU: -plugin insncount.so,ARG,ARG,...):
 *
 *   range=NAME:START:END   count instructions with START <= vaddr < END
 *                          (hex, with or without 0x); repeat for each range
 *   kernel=START           first kernel-space address (hex; default
 *                          ffff800000000000, x86-64 with 4-level paging)
 *   mark=ADDR              snapshot every counter each time the instruction
 *                          at ADDR executes (e.g. __x64_sys_sync: the guest
 *                          runs sync(1) to delimit a measurement window)
 *   out=PATH               where the counts go at exit (default: QEMU's log)
 *
 * Counting is done with inline TCG ops (QEMU_PLUGIN_INLINE_ADD_U64) added at
 * translation time to every instruction of interest: no helper call per
 * instruction.  Per range, "insns" counts every instruction executed in the
 * range and "calls" the executions of its first instruction (entries).
 *
 * Inline ops are plain, non-atomic additions to counters shared by all vCPUs
 * (QEMU 7.2 has no per-vCPU inline storage): run the guest with one vCPU (or
 * -accel tcg,thread=single) for exact counts.  The number of vCPUs is written
 * to the output so that the reader can check.
 *
 * Output, one record per line:
 *
 *   insncount 1
 *   vcpus N
 *   kernel_start HEX
 *   range NAME START END INSNS CALLS
 *   kernel INSNS                      kernel-space instructions, whole run
 *   mark I KERNEL INSNS,INSNS,... CALLS,CALLS,...   counters at the I-th
 *                                     execution of the mark (range order)
 *
 * Written for the QEMU 7.2 plugin API (QEMU_PLUGIN_VERSION 1).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

struct range {
	char *name;
	uint64_t start, end;
	uint64_t insns, calls;
};

static struct range *ranges;
static int nranges;
static uint64_t kernel_start = 0xffff800000000000ULL;
static uint64_t kernel_insns;
static uint64_t mark_addr;
static int have_mark;
static const char *out_path;
static int vcpus = 1;

/* snapshots: per mark, 1 + 2 * nranges counters */
static uint64_t *marks;
static size_t nmarks, capmarks;

static int parse_hex(const char *s, uint64_t *v)
{
	char *end;

	if (!s || !*s)
		return -1;
	*v = strtoull(s, &end, 16);
	return *end ? -1 : 0;
}

static int add_range(char *spec)
{
	char *c1 = strchr(spec, ':'), *c2;
	struct range *r;

	if (!c1)
		return -1;
	c2 = strchr(c1 + 1, ':');
	if (!c2)
		return -1;
	*c1 = *c2 = '\0';
	ranges = realloc(ranges, (nranges + 1) * sizeof(*ranges));
	if (!ranges)
		return -1;
	r = &ranges[nranges];
	memset(r, 0, sizeof(*r));
	r->name = spec;
	if (parse_hex(c1 + 1, &r->start) || parse_hex(c2 + 1, &r->end) || r->end <= r->start)
		return -1;
	nranges++;
	return 0;
}

static struct range *find_range(uint64_t va)
{
	int i;

	for (i = 0; i < nranges; i++)
		if (va >= ranges[i].start && va < ranges[i].end)
			return &ranges[i];
	return NULL;
}

static void on_mark(unsigned int vcpu_index, void *udata)
{
	size_t per = 1 + 2 * (size_t)nranges;
	uint64_t *s;
	int i;

	if (nmarks == capmarks) {
		size_t cap = capmarks ? capmarks * 2 : 64;
		uint64_t *m = realloc(marks, cap * per * sizeof(*m));

		if (!m)
			return;
		marks = m;
		capmarks = cap;
	}
	s = &marks[nmarks * per];
	s[0] = kernel_insns;
	for (i = 0; i < nranges; i++) {
		s[1 + i] = ranges[i].insns;
		s[1 + nranges + i] = ranges[i].calls;
	}
	nmarks++;
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb), i;

	for (i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		uint64_t va = qemu_plugin_insn_vaddr(insn);
		struct range *r;

		if (va < kernel_start)
			continue;
		qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
							   &kernel_insns, 1);
		if (have_mark && va == mark_addr)
			qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark,
							       QEMU_PLUGIN_CB_NO_REGS, NULL);
		r = find_range(va);
		if (!r)
			continue;
		qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
							   &r->insns, 1);
		if (va == r->start)
			qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
								   &r->calls, 1);
	}
}

static void print_list(FILE *f, const uint64_t *v, int n)
{
	int i;

	if (!n) {
		fputs(" -", f);
		return;
	}
	for (i = 0; i < n; i++)
		fprintf(f, "%c%" PRIu64, i ? ',' : ' ', v[i]);
}

static void write_counts(FILE *f)
{
	size_t per = 1 + 2 * (size_t)nranges, m;
	int i;

	fprintf(f, "insncount 1\nvcpus %d\nkernel_start %" PRIx64 "\n", vcpus, kernel_start);
	for (i = 0; i < nranges; i++)
		fprintf(f, "range %s %" PRIx64 " %" PRIx64 " %" PRIu64 " %" PRIu64 "\n",
			ranges[i].name, ranges[i].start, ranges[i].end, ranges[i].insns,
			ranges[i].calls);
	fprintf(f, "kernel %" PRIu64 "\n", kernel_insns);
	for (m = 0; m < nmarks; m++) {
		const uint64_t *s = &marks[m * per];

		fprintf(f, "mark %zu %" PRIu64, m, s[0]);
		print_list(f, s + 1, nranges);
		print_list(f, s + 1 + nranges, nranges);
		fputc('\n', f);
	}
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
	FILE *f = out_path ? fopen(out_path, "w") : NULL;
	char *buf = NULL;
	size_t len = 0;

	if (f) {
		write_counts(f);
		fclose(f);
		return;
	}
	/* no file: QEMU's log (-D/-d plugin) gets the counts */
	f = open_memstream(&buf, &len);
	if (!f)
		return;
	write_counts(f);
	fclose(f);
	qemu_plugin_outs(buf);
	free(buf);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
					   int argc, char **argv)
{
	int i;

	if (!info->system_emulation) {
		qemu_plugin_outs("insncount: system emulation only\n");
		return -1;
	}
	vcpus = info->system.smp_vcpus;
	for (i = 0; i < argc; i++) {
		char *a = argv[i];

		if (!strncmp(a, "range=", 6)) {
			if (add_range(a + 6)) {
				fprintf(stderr, "insncount: bad range (NAME:START:END, hex): %s\n", a);
				return -1;
			}
		} else if (!strncmp(a, "kernel=", 7)) {
			if (parse_hex(a + 7, &kernel_start)) {
				fprintf(stderr, "insncount: bad %s\n", a);
				return -1;
			}
		} else if (!strncmp(a, "mark=", 5)) {
			if (parse_hex(a + 5, &mark_addr)) {
				fprintf(stderr, "insncount: bad %s\n", a);
				return -1;
			}
			have_mark = 1;
		} else if (!strncmp(a, "out=", 4)) {
			out_path = a + 4;
		} else {
			fprintf(stderr, "insncount: unknown argument %s\n", a);
			return -1;
		}
	}
	if (vcpus > 1)
		qemu_plugin_outs("insncount: more than one vCPU: inline counters are not "
				 "atomic in QEMU 7.2, counts may be low\n");
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
