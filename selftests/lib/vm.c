// SPDX-License-Identifier: GPL-2.0
/*
 * The one place that holds the guest program and the VM setup of the
 * top-level conformance suite (see vm.h and ../README.md).
 *
 * Guest mode: 32-bit protected mode, flat segments, paging ON with one PSE
 * page directory of 1024 identity-mapped 4 MiB pages (covers all of the low
 * 4 GiB). Paging is on because 6.1 under NPT made no progress with a
 * paging-off guest; with paging on the same code runs with and without NPT
 * on every branch. The page directory lives in the system slot, which no
 * test ever changes, so page walks never touch memory that is being split.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <getopt.h>

#include "vm.h"

/*
 * Guest code, assembled as 32-bit code by the build's assembler and copied
 * to CODE_GPA. Register interfaces:
 *
 * kst_probe:  %esi = GPA of struct probe_ent[], %ecx = count.
 *             Reads or writes each entry's GPA, then "out PORT_DONE".
 *             kst_probe_next is where the host resumes after an EFAULT.
 * kst_hole:   loop forever over the mailbox at MBOX_GPA: read MB_READ_A and
 *             MB_READ_B (a value equal to neither MB_SIG_A nor MB_SIG_B
 *             bumps %ecx), "incl" the word at MB_COUNTER, "call" MB_CALL
 *             if non-zero (the callee bumps %edx), bump %ebp, and every
 *             (MB_TICK_MASK + 1) iterations "out PORT_TICK".
 * kst_spin:   bump %ebp; when (%ebp & %edi) == 0 "out PORT_TICK".
 */
asm(
"	.pushsection .rodata.kst_guest, \"a\"\n"
"	.globl kst_guest_start, kst_guest_end, kst_probe, kst_probe_next\n"
"	.globl kst_hole, kst_spin\n"
"kst_guest_start:\n"
"	.code32\n"
"kst_probe:\n"
"	test %ecx, %ecx\n"
"	jz kst_probe_done\n"
"kst_probe_loop:\n"
"	mov (%esi), %ebx\n"
"	testl $1, 4(%esi)\n"
"	jnz kst_probe_w\n"
"	mov (%ebx), %eax\n"
"	mov %eax, 8(%esi)\n"
"	jmp kst_probe_next\n"
"kst_probe_w:\n"
"	mov 8(%esi), %eax\n"
"	mov %eax, (%ebx)\n"
"kst_probe_next:\n"
"	add $12, %esi\n"
"	dec %ecx\n"
"	jnz kst_probe_loop\n"
"kst_probe_done:\n"
"	out %al, $0x10\n"
"	jmp kst_probe_done\n"
"kst_hole:\n"
"	mov 0x8000, %ebx\n"
"	mov (%ebx), %eax\n"
"	cmp 0x8008, %eax\n"
"	je 1f\n"
"	cmp 0x800c, %eax\n"
"	je 1f\n"
"	inc %ecx\n"
"1:	mov 0x8004, %ebx\n"
"	mov (%ebx), %eax\n"
"	cmp 0x8008, %eax\n"
"	je 2f\n"
"	cmp 0x800c, %eax\n"
"	je 2f\n"
"	inc %ecx\n"
"2:	mov 0x8010, %ebx\n"
"	incl (%ebx)\n"
"	mov 0x8014, %ebx\n"
"	test %ebx, %ebx\n"
"	jz 3f\n"
"	call *%ebx\n"
"3:	inc %ebp\n"
"	test 0x8018, %ebp\n"
"	jnz kst_hole\n"
"	out %al, $0x11\n"
"	jmp kst_hole\n"
"kst_spin:\n"
"	inc %ebp\n"
"	test %edi, %ebp\n"
"	jnz kst_spin\n"
"	out %al, $0x11\n"
"	jmp kst_spin\n"
"kst_guest_end:\n"
"	.code64\n"
"	.popsection\n");

extern const uint8_t kst_guest_start[], kst_guest_end[], kst_probe[],
	kst_probe_next[], kst_hole[], kst_spin[];

const uint8_t guest_stub[2] = { 0x42, 0xc3 };	/* inc %edx; ret */

#define GUEST_OFF(sym) ((uint32_t)(CODE_GPA + (sym - kst_guest_start)))
uint32_t guest_entry_probe(void) { return GUEST_OFF(kst_probe); }
uint32_t guest_entry_probe_next(void) { return GUEST_OFF(kst_probe_next); }
uint32_t guest_entry_hole(void) { return GUEST_OFF(kst_hole); }
uint32_t guest_entry_spin(void) { return GUEST_OFF(kst_spin); }

struct kst_opts kst_opts;

static void seterr(struct vm *vm, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void seterr(struct vm *vm, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vm->err, sizeof(vm->err), fmt, ap);
	va_end(ap);
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

void diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

int env_int(const char *name, int def)
{
	const char *v = getenv(name);

	return v && *v ? (int)strtol(v, NULL, 0) : def;
}

void kst_parse_opts(int *argc, char **argv)
{
	const char *e;
	int i, o = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((e = getenv("KST_SEED")) && *e) {
		kst_opts.seed = strtoul(e, NULL, 0);
		kst_opts.seed_set = true;
	}
	if ((e = getenv("KST_ITERS")) && *e)
		kst_opts.iters = strtol(e, NULL, 0);
	if ((e = getenv("KST_SECONDS")) && *e)
		kst_opts.seconds = strtol(e, NULL, 0);
	for (i = 1; i < *argc; i++) {
		const char *a = argv[i];

		if ((!strcmp(a, "-s") || !strcmp(a, "-n") || !strcmp(a, "-D")) &&
		    i + 1 < *argc) {
			if (a[1] == 's') {
				kst_opts.seed = strtoul(argv[i + 1], NULL, 0);
				kst_opts.seed_set = true;
			} else if (a[1] == 'n') {
				kst_opts.iters = strtol(argv[i + 1], NULL, 0);
			} else {
				kst_opts.seconds = strtol(argv[i + 1], NULL, 0);
			}
			i++;
			continue;
		}
		argv[o++] = argv[i];
	}
	argv[o] = NULL;
	*argc = o;
	optind = 1;
}

uint32_t page_sig(uint64_t hva)
{
	uint64_t x = (hva >> 12) * 0x9e3779b97f4a7c15ULL;
	uint32_t v = (uint32_t)(x >> 32) ^ (uint32_t)x;

	if (v == MMIO_MARK || v == 0)
		v ^= 0x5a5a5a5a;
	return v;
}

void *map_mem(size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS |
		       (prot ? 0 : MAP_NORESERVE), -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int kvm_available(char *why, size_t len)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		snprintf(why, len, "cannot open /dev/kvm: %s", strerror(errno));
		return 0;
	}
	if (ioctl(fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		snprintf(why, len, "unexpected KVM API version");
		close(fd);
		return 0;
	}
	close(fd);
	return 1;
}

struct kvm_userspace_memory_region2 mkreg(uint32_t slot, uint32_t flags,
					  uint64_t gpa, uint64_t size, uint64_t hva)
{
	struct kvm_userspace_memory_region2 r;

	memset(&r, 0, sizeof(r));
	r.slot = slot;
	r.flags = flags;
	r.guest_phys_addr = gpa;
	r.memory_size = size;
	r.userspace_addr = hva;
	return r;
}

int set_region_legacy(struct vm *vm, const struct kvm_userspace_memory_region2 *r)
{
	struct kvm_userspace_memory_region l = {
		.slot = r->slot, .flags = r->flags,
		.guest_phys_addr = r->guest_phys_addr,
		.memory_size = r->memory_size,
		.userspace_addr = r->userspace_addr,
	};

	return ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &l) ? -errno : 0;
}

struct kvm_userspace_memory_region_batch *
batch_new(const struct kvm_userspace_memory_region2 *e, uint32_t nent,
	  uint32_t flags, uint64_t reserved)
{
	struct kvm_userspace_memory_region_batch *b;

	b = calloc(1, sizeof(*b) + (size_t)nent * sizeof(*e));
	if (!b)
		return NULL;
	b->nent = nent;
	b->flags = flags;
	b->reserved = reserved;
	if (nent)
		memcpy(b->entries, e, (size_t)nent * sizeof(*e));
	return b;
}

/*
 * KST_EMULATE_BATCH=1: a userspace stand-in for the batch ioctl, made of
 * legacy calls with a rollback, for checking the suite itself on kernels
 * without the series. It has the right errnos but is NOT atomic, and it
 * loses dirty bits: the hole and dirty-carry tests must fail under it.
 */
bool batch_emulated(void)
{
	static int e = -1;

	if (e < 0)
		e = env_int("KST_EMULATE_BATCH", 0) ? 1 : 0;
	return e;
}

static int emu_restore(struct vm *vm, const struct model *cur, const struct model *want)
{
	struct kvm_userspace_memory_region2 r;
	int ret = 0;

	for (int i = 0; i < cur->n; i++) {	/* drop what differs */
		const struct mslot *c = &cur->s[i], *w = model_find_slot(want, c->slot);

		if (w && !memcmp(w, c, sizeof(*c)))
			continue;
		r = mkreg(c->slot, 0, 0, 0, 0);
		ret |= set_region_legacy(vm, &r);
	}
	for (int i = 0; i < want->n; i++) {	/* re-create what is missing */
		const struct mslot *w = &want->s[i], *c = model_find_slot(cur, w->slot);

		if (c && !memcmp(w, c, sizeof(*c)))
			continue;
		r = mkreg(w->slot, w->flags, w->gpa, w->size, w->hva);
		ret |= set_region_legacy(vm, &r);
	}
	return ret;
}

/* copy from our own address space, EFAULT instead of SIGSEGV */
static int safe_copy(void *dst, const void *src, size_t len)
{
	int p[2], r = 0;

	if (pipe(p))
		return -errno;
	for (size_t o = 0; o < len && !r; o += 4096) {
		size_t n = len - o < 4096 ? len - o : 4096;

		if (write(p[1], (const char *)src + o, n) != (ssize_t)n)
			r = -EFAULT;
		else if (read(p[0], (char *)dst + o, n) != (ssize_t)n)
			r = -EIO;
	}
	close(p[0]);
	close(p[1]);
	return r;
}

static int emu_batch(struct vm *vm, struct kvm_userspace_memory_region_batch *ub)
{
	static struct model cur;
	struct kvm_userspace_memory_region_batch hdr;
	struct kvm_userspace_memory_region2 *e;
	size_t sz;
	int r = 0;

	if (safe_copy(&hdr, ub, sizeof(hdr)))
		return -EFAULT;
	/* the documented order: flags/reserved, nent 0, E2BIG */
	if (hdr.flags || hdr.reserved)
		return -EINVAL;
	if (!hdr.nent)
		return 0;
	if (hdr.nent > vm->batch_cap)
		return -E2BIG;
	sz = hdr.nent * sizeof(*e);
	e = malloc(sz);
	if (safe_copy(e, ub->entries, sz)) {
		free(e);
		return -EFAULT;
	}
	cur = vm->m;
	for (uint32_t i = 0; i < hdr.nent && !r; i++) {
		r = entry_padding(&e[i]) ? -EINVAL : set_region_legacy(vm, &e[i]);
		if (!r)
			model_apply(&cur, &e[i], false);
	}
	if (r && emu_restore(vm, &cur, &vm->m))
		fprintf(stderr, "# KST_EMULATE_BATCH: rollback failed\n");
	free(e);
	return r;
}

int batch_ioctl(struct vm *vm, struct kvm_userspace_memory_region_batch *b)
{
	if (batch_emulated())
		return emu_batch(vm, b);
	return ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION_BATCH, b) ? -errno : 0;
}

int set_region_batch(struct vm *vm, const struct kvm_userspace_memory_region2 *e,
		     uint32_t nent, uint32_t flags, uint64_t reserved)
{
	struct kvm_userspace_memory_region_batch *b = batch_new(e, nent, flags, reserved);
	int r;

	if (!b)
		return -ENOMEM;
	r = batch_ioctl(vm, b);
	free(b);
	return r;
}

/* ------------------------------------------------------------------ */
/* model: the checks of __kvm_set_memory_region(), same order, x86     */

#define MAX_NR_PAGES	((1ULL << 31) - 1)
/*
 * access_ok() limit. 4-level kernels stop at 0x7ffffffff000, 5-level ones
 * (LA57) at 0x00fffffffffff000: generators must avoid hvas in between.
 */
#define USER_VA_END	0x00fffffffffff000ULL
#define VALID_FLAGS	(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY)

const struct mslot *model_find_slot(const struct model *m, uint32_t slot)
{
	for (int i = 0; i < m->n; i++)
		if (m->s[i].slot == slot)
			return &m->s[i];
	return NULL;
}

const struct mslot *model_find_gpa(const struct model *m, uint32_t as, uint64_t gpa)
{
	for (int i = 0; i < m->n; i++)
		if ((m->s[i].slot >> 16) == as && gpa >= m->s[i].gpa &&
		    gpa - m->s[i].gpa < m->s[i].size)
			return &m->s[i];
	return NULL;
}

static bool model_overlaps(const struct model *m, uint32_t slot, uint64_t gpa,
			   uint64_t size)
{
	for (int i = 0; i < m->n; i++) {
		const struct mslot *s = &m->s[i];

		if ((s->slot >> 16) != (slot >> 16) || s->slot == slot)
			continue;
		if (gpa < s->gpa + s->size && s->gpa < gpa + size)
			return true;
	}
	return false;
}

int model_apply(struct model *m, const struct kvm_userspace_memory_region2 *r,
		bool dry_run)
{
	uint32_t as = r->slot >> 16, id = (uint16_t)r->slot;
	uint64_t gpa = r->guest_phys_addr, size = r->memory_size;
	uint64_t hva = r->userspace_addr;
	const struct mslot *old;
	int idx;

	if (id >= m->nr_slots)
		return -EINVAL;
	if (r->flags & ~VALID_FLAGS)
		return -EINVAL;
	if (size & (PAGE - 1))
		return -EINVAL;
	if (gpa & (PAGE - 1))
		return -EINVAL;
	if ((hva & (PAGE - 1)) || hva + size < hva || hva + size > USER_VA_END)
		return -EINVAL;
	if (as >= m->nr_as)
		return -EINVAL;
	if (gpa + size < gpa)
		return -EINVAL;
	if ((size >> 12) > MAX_NR_PAGES)
		return -EINVAL;
	old = model_find_slot(m, r->slot);
	idx = old ? (int)(old - m->s) : -1;
	if (!size) {
		if (!old)
			return -EINVAL;
		if (!dry_run)
			m->s[idx] = m->s[--m->n];
		return 0;
	}
	if (!old) {
		if (model_overlaps(m, r->slot, gpa, size))
			return -EEXIST;
		if (m->n >= MODEL_MAX)
			return -ENOSPC;	/* a test bug, never the kernel's answer */
		if (!dry_run) {
			struct mslot *s = &m->s[m->n++];

			s->slot = r->slot;
			s->flags = r->flags;
			s->gpa = gpa;
			s->size = size;
			s->hva = hva;
		}
		return 0;
	}
	if (hva != old->hva || size != old->size ||
	    ((r->flags ^ old->flags) & KVM_MEM_READONLY))
		return -EINVAL;
	if (gpa != old->gpa) {
		if (model_overlaps(m, r->slot, gpa, size))
			return -EEXIST;
	}
	if (!dry_run) {
		m->s[idx].gpa = gpa;
		m->s[idx].flags = r->flags;
	}
	return 0;
}

/* A batch entry's padding must be zero (EINVAL), checked first. */
bool entry_padding(const struct kvm_userspace_memory_region2 *e)
{
	if (e->pad1)
		return true;
	for (unsigned int i = 0; i < sizeof(e->pad2) / sizeof(e->pad2[0]); i++)
		if (e->pad2[i])
			return true;
	return false;
}

int model_apply_batch(struct model *m, const struct kvm_userspace_memory_region2 *e,
		      uint32_t n, uint32_t *bad_idx)
{
	static struct model tmp;
	int r;

	tmp = *m;
	for (uint32_t i = 0; i < n; i++) {
		r = entry_padding(&e[i]) ? -EINVAL : model_apply(&tmp, &e[i], false);
		if (r) {
			if (bad_idx)
				*bad_idx = i;
			return r;
		}
	}
	*m = tmp;
	return 0;
}

void model_dump(const struct model *m, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = 0;
	for (int i = 0; i < m->n && o < len; i++)
		o += snprintf(buf + o, len - o, "[as%u id%u f%x %#llx+%#llx hva %#llx] ",
			      m->s[i].slot >> 16, m->s[i].slot & 0xffff,
			      m->s[i].flags, (unsigned long long)m->s[i].gpa,
			      (unsigned long long)m->s[i].size,
			      (unsigned long long)m->s[i].hva);
}

/* ------------------------------------------------------------------ */
/* VM setup                                                            */

static int setup_vcpu(struct vm *vm, int i, struct kvm_cpuid2 *cpuid)
{
	struct vcpu *v = &vm->vcpu[i];
	struct kvm_sregs sr;
	struct kvm_segment seg;

	v->id = i;
	v->fd = ioctl(vm->fd, KVM_CREATE_VCPU, i);
	if (v->fd < 0) {
		seterr(vm, "KVM_CREATE_VCPU: %s", strerror(errno));
		return -errno;
	}
	v->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      v->fd, 0);
	if (v->run == MAP_FAILED) {
		seterr(vm, "mmap kvm_run: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(v->fd, KVM_SET_CPUID2, cpuid)) {
		seterr(vm, "KVM_SET_CPUID2: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(v->fd, KVM_GET_SREGS, &sr)) {
		seterr(vm, "KVM_GET_SREGS: %s", strerror(errno));
		return -errno;
	}
	memset(&seg, 0, sizeof(seg));
	seg.base = 0;
	seg.limit = 0xffffffff;
	seg.present = 1;
	seg.dpl = 0;
	seg.db = 1;
	seg.s = 1;
	seg.g = 1;
	seg.selector = 0x10;
	seg.type = 3;			/* data, read/write, accessed */
	sr.ds = sr.es = sr.fs = sr.gs = sr.ss = seg;
	seg.selector = 0x08;
	seg.type = 11;			/* code, execute/read, accessed */
	sr.cs = seg;
	memset(&seg, 0, sizeof(seg));
	seg.limit = 0xffff;
	seg.present = 1;
	seg.type = 11;			/* busy 32-bit TSS */
	seg.selector = 0x18;
	sr.tr = seg;
	sr.ldt.unusable = 1;
	sr.ldt.type = 2;
	sr.ldt.present = 1;
	sr.gdt.base = 0;
	sr.gdt.limit = 0x1f;
	sr.idt.base = 0;
	sr.idt.limit = 0;
	sr.cr3 = PD_GPA;
	sr.cr4 = 0x10;			/* PSE */
	sr.cr0 = 0x80000011;		/* PG | ET | PE */
	sr.efer = 0;
	if (ioctl(v->fd, KVM_SET_SREGS, &sr)) {
		seterr(vm, "KVM_SET_SREGS (32-bit paged mode): %s", strerror(errno));
		return -errno;
	}
	return 0;
}

int vm_add_pool(struct vm *vm, void *base, size_t len, bool accessible)
{
	if (vm->npools >= (int)(sizeof(vm->pool) / sizeof(vm->pool[0])))
		return -ENOSPC;
	vm->pool[vm->npools].base = (uint64_t)(uintptr_t)base;
	vm->pool[vm->npools].len = len;
	vm->pool[vm->npools].rw = accessible;
	vm->npools++;
	return 0;
}

/* 1 = RW pool, 0 = PROT_NONE pool, -1 = unknown memory */
static int pool_state(const struct vm *vm, uint64_t hva)
{
	for (int i = 0; i < vm->npools; i++)
		if (hva >= vm->pool[i].base && hva - vm->pool[i].base < vm->pool[i].len)
			return vm->pool[i].rw;
	return -1;
}

int vm_create(struct vm *vm, int nvcpus)
{
	struct kvm_cpuid2 *cpuid;
	struct kvm_userspace_memory_region2 r;
	uint32_t *pd;
	int n, ret;

	memset(vm, 0, sizeof(*vm));
	vm->fd = -1;
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		seterr(vm, "open /dev/kvm: %s", strerror(errno));
		return -errno;
	}
	vm->fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0) {
		seterr(vm, "KVM_CREATE_VM: %s", strerror(errno));
		return -errno;
	}
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	n = ioctl(vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
	vm->m.nr_slots = n > 0 ? n : 32;
	n = ioctl(vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_MULTI_ADDRESS_SPACE);
	vm->m.nr_as = n > 0 ? n : 1;
	n = ioctl(vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY_REGION_BATCH);
	vm->batch_cap = n > 0 ? n : 0;
	if (batch_emulated()) {
		static bool said;

		if (!said)
			diag("KST_EMULATE_BATCH=1: batch ioctl EMULATED in userspace (non-atomic), "
			     "checking the suite, not the kernel");
		said = true;
		vm->batch_cap = vm->m.nr_slots;
	}

	vm->sys = map_mem(SYS_SIZE, PROT_READ | PROT_WRITE);
	if (!vm->sys) {
		seterr(vm, "mmap system memory failed");
		return -ENOMEM;
	}
	pd = (uint32_t *)(vm->sys + PD_GPA);
	for (int i = 0; i < 1024; i++)	/* 4 MiB pages: P RW A D PS */
		pd[i] = ((uint32_t)i << 22) | 0xe3;
	memcpy(vm->sys + CODE_GPA, kst_guest_start, kst_guest_end - kst_guest_start);
	r = mkreg(SYS_SLOT, 0, SYS_GPA, SYS_SIZE, (uint64_t)(uintptr_t)vm->sys);
	ret = set_region_legacy(vm, &r);
	if (ret) {
		seterr(vm, "system slot: %s", strerror(-ret));
		return ret;
	}
	model_apply(&vm->m, &r, false);

	n = 128;
	for (;;) {
		cpuid = calloc(1, sizeof(*cpuid) + n * sizeof(cpuid->entries[0]));
		cpuid->nent = n;
		if (!ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid))
			break;
		free(cpuid);
		if (errno != E2BIG) {
			seterr(vm, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
			return -errno;
		}
		n *= 2;
	}
	for (int i = 0; i < nvcpus; i++) {
		ret = setup_vcpu(vm, i, cpuid);
		if (ret) {
			free(cpuid);
			return ret;
		}
		vm->nvcpus++;
	}
	free(cpuid);
	return 0;
}

void vm_destroy(struct vm *vm)
{
	for (int i = 0; i < vm->nvcpus; i++) {
		munmap(vm->vcpu[i].run, vm->run_size);
		close(vm->vcpu[i].fd);
	}
	if (vm->fd >= 0)
		close(vm->fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->sys)
		munmap(vm->sys, SYS_SIZE);
	vm->nvcpus = 0;
	vm->fd = vm->kvm_fd = -1;
	vm->sys = NULL;
}

int vcpu_set_entry(struct vm *vm, int i, uint32_t eip, const struct kvm_regs *gprs)
{
	struct kvm_regs regs;

	if (gprs)
		regs = *gprs;
	else
		memset(&regs, 0, sizeof(regs));
	regs.rip = eip;
	regs.rflags = 2;
	if (!regs.rsp)
		regs.rsp = STACK_TOP(i);
	if (ioctl(vm->vcpu[i].fd, KVM_SET_REGS, &regs)) {
		seterr(vm, "KVM_SET_REGS: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

int vcpu_run(struct vcpu *v)
{
	return ioctl(v->fd, KVM_RUN, 0);
}

/* ------------------------------------------------------------------ */
/* layout probe                                                        */

enum { EXP_SIG, EXP_MMIO, EXP_EFAULT, EXP_MEMWRITE };

struct probe_meta {
	int expect;
	uint64_t hva;		/* host address for EXP_SIG / EXP_MEMWRITE */
	uint32_t want;		/* expected value */
	bool mmio, efault;
	uint64_t mmio_addr;
	uint32_t mmio_data;
	bool mmio_write;
};

static struct probe_meta meta[PROBE_MAX];

static int add_ent(struct vm *vm, int *n, uint64_t gpa, uint32_t op)
{
	struct probe_ent *pe = (struct probe_ent *)(vm->sys + PROBE_GPA);
	const struct mslot *s = model_find_gpa(&vm->m, 0, gpa);
	struct probe_meta *pm = &meta[*n];
	uint64_t hva = 0;
	int st = -1;

	if (*n >= (int)PROBE_MAX || gpa + 4 > (1ULL << 32))
		return 0;
	memset(pm, 0, sizeof(*pm));
	if (s) {
		hva = s->hva + (gpa - s->gpa);
		st = pool_state(vm, hva);
		if (st < 0)
			return 0;	/* memory we know nothing about */
	}
	pe[*n].gpa = (uint32_t)gpa;
	pe[*n].op = op;
	pe[*n].val = 0x01010101;
	if (!s) {
		pm->expect = EXP_MMIO;
		if (op)
			pe[*n].val = vm->nonce ^ 0x77777777;
		pm->want = op ? pe[*n].val : MMIO_MARK;
	} else if (!st) {
		if (op)			/* writes to PROT_NONE: not defined here */
			return 0;
		pm->expect = EXP_EFAULT;
	} else if (!op) {
		pm->expect = EXP_SIG;
		pm->hva = hva & ~(PAGE - 1);
		pm->want = page_sig(pm->hva) ^ vm->nonce;
		*(volatile uint32_t *)(uintptr_t)pm->hva = pm->want;
	} else {
		pm->hva = hva;
		pe[*n].val = page_sig(hva & ~(PAGE - 1)) ^ vm->nonce ^ 0x5555aaaa;
		pm->want = pe[*n].val;
		if (s->flags & KVM_MEM_READONLY) {
			pm->expect = EXP_MMIO;
		} else {
			pm->expect = EXP_MEMWRITE;
			*(volatile uint32_t *)(uintptr_t)hva = ~pm->want;
		}
	}
	(*n)++;
	return 1;
}

static bool covered0(const struct vm *vm, uint64_t gpa)
{
	return model_find_gpa(&vm->m, 0, gpa) != NULL;
}

int vm_probe(struct vm *vm, int extra_holes, unsigned int *seed)
{
	struct probe_ent *pe = (struct probe_ent *)(vm->sys + PROBE_GPA);
	struct vcpu *v = &vm->vcpu[0];
	struct kvm_regs regs;
	int n = 0, i, guard = 0;
	static char lay[1024];

	vm->nonce = vm->nonce * 1103515245u + 12345u;
	/* reads of every slot's first and last page, and of its neighbours */
	for (i = 0; i < vm->m.n; i++) {
		const struct mslot *s = &vm->m.s[i];

		if (s->slot >> 16 || s->slot == SYS_SLOT)
			continue;
		add_ent(vm, &n, s->gpa, 0);
		add_ent(vm, &n, s->gpa + s->size - PAGE, 0);
		if (s->gpa >= WIN_BASE + PAGE && !covered0(vm, s->gpa - PAGE))
			add_ent(vm, &n, s->gpa - PAGE, 0);
		if (s->gpa + s->size < WIN_BASE + WIN_SIZE &&
		    !covered0(vm, s->gpa + s->size))
			add_ent(vm, &n, s->gpa + s->size, 0);
	}
	/* first and last page of every gap of the window, and a 1 MiB grid */
	{
		uint64_t g = WIN_BASE, end = WIN_BASE + WIN_SIZE;

		while (g < end) {
			const struct mslot *s = model_find_gpa(&vm->m, 0, g);
			uint64_t next = end;

			if (s) {
				g = s->gpa + s->size;
				continue;
			}
			for (int k = 0; k < vm->m.n; k++)	/* next slot start */
				if (!(vm->m.s[k].slot >> 16) && vm->m.s[k].gpa > g &&
				    vm->m.s[k].gpa < next)
					next = vm->m.s[k].gpa;
			add_ent(vm, &n, g, 0);
			if (next - PAGE != g)
				add_ent(vm, &n, next - PAGE, 0);
			g = next;
		}
		for (g = WIN_BASE; g < end; g += 0x100000)
			if (!covered0(vm, g + 0x80000))
				add_ent(vm, &n, g + 0x80000, 0);
	}
	for (i = 0; i < extra_holes; i++) {
		uint64_t gpa = WIN_BASE + ((uint64_t)rand_r(seed) % (WIN_SIZE / PAGE)) * PAGE;

		if (!covered0(vm, gpa))
			add_ent(vm, &n, gpa, 0);
	}
	/* writes last, so that reads of aliased pages see the signature */
	for (i = 0; i < vm->m.n; i++) {
		const struct mslot *s = &vm->m.s[i];

		if (s->slot >> 16 || s->slot == SYS_SLOT)
			continue;
		add_ent(vm, &n, s->gpa + 8, 1);
	}
	/* the write plan may have clobbered a signature of an aliased page */
	for (i = 0; i < n; i++)
		if (meta[i].expect == EXP_SIG)
			*(volatile uint32_t *)(uintptr_t)meta[i].hva = meta[i].want;
	if (!n)
		return 0;

	memset(&regs, 0, sizeof(regs));
	regs.rsi = PROBE_GPA;
	regs.rcx = n;
	if (vcpu_set_entry(vm, 0, guest_entry_probe(), &regs))
		return -1;
	for (;;) {
		int r = vcpu_run(v);
		struct kvm_run *run = v->run;

		if (++guard > 4 * n + 100) {
			seterr(vm, "probe: too many exits (%d)", guard);
			return -1;
		}
		if (r < 0 && errno == EFAULT) {
			if (ioctl(v->fd, KVM_GET_REGS, &regs))
				return -1;
			i = (int)((regs.rsi - PROBE_GPA) / sizeof(*pe));
			if (i < 0 || i >= n) {
				seterr(vm, "probe: EFAULT outside the probe loop, esi %#llx",
				       (unsigned long long)regs.rsi);
				return -1;
			}
			meta[i].efault = true;
			regs.rip = guest_entry_probe_next();
			if (ioctl(v->fd, KVM_SET_REGS, &regs))
				return -1;
			continue;
		}
		if (r < 0) {
			seterr(vm, "probe: KVM_RUN: %s", strerror(errno));
			return -1;
		}
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == PORT_DONE) {
			break;
		} else if (run->exit_reason == KVM_EXIT_MMIO) {
			if (ioctl(v->fd, KVM_GET_REGS, &regs))
				return -1;
			i = (int)((regs.rsi - PROBE_GPA) / sizeof(*pe));
			if (i < 0 || i >= n) {
				seterr(vm, "probe: MMIO exit at %#llx outside the probe loop",
				       (unsigned long long)run->mmio.phys_addr);
				return -1;
			}
			meta[i].mmio = true;
			meta[i].mmio_addr = run->mmio.phys_addr;
			meta[i].mmio_write = run->mmio.is_write;
			if (run->mmio.is_write) {
				memcpy(&meta[i].mmio_data, run->mmio.data, 4);
			} else {
				uint32_t mark = MMIO_MARK;

				memcpy(run->mmio.data, &mark, sizeof(mark));
			}
		} else {
			seterr(vm, "probe: unexpected exit reason %u", run->exit_reason);
			return -1;
		}
	}
	model_dump(&vm->m, lay, sizeof(lay));
	for (i = 0; i < n; i++) {
		struct probe_meta *pm = &meta[i];
		uint32_t gpa = pe[i].gpa;
		const char *op = pe[i].op ? "write" : "read";

		switch (pm->expect) {
		case EXP_SIG:
			if (pm->mmio || pm->efault || pe[i].val != pm->want) {
				seterr(vm, "probe: %s of GPA %#x: want memory (sig %#x), got %s%s val %#x; model: %s",
				       op, gpa, pm->want, pm->mmio ? "MMIO exit" : "",
				       pm->efault ? "EFAULT" : "", pe[i].val, lay);
				return -1;
			}
			break;
		case EXP_MEMWRITE:
			if (pm->mmio || pm->efault ||
			    *(volatile uint32_t *)(uintptr_t)pm->hva != pm->want) {
				seterr(vm, "probe: write of GPA %#x: want it in memory, got %s%s; model: %s",
				       gpa, pm->mmio ? "MMIO exit" : "not written",
				       pm->efault ? " EFAULT" : "", lay);
				return -1;
			}
			break;
		case EXP_MMIO:
			if (!pm->mmio || pm->mmio_addr != gpa ||
			    pm->mmio_write != !!pe[i].op ||
			    (pe[i].op && pm->mmio_data != pm->want) ||
			    (!pe[i].op && pe[i].val != MMIO_MARK)) {
				seterr(vm, "probe: %s of GPA %#x: want MMIO exit, got %s (addr %#llx val %#x); model: %s",
				       op, gpa, pm->mmio ? "MMIO" : pm->efault ? "EFAULT" : "memory access",
				       (unsigned long long)pm->mmio_addr, pe[i].val, lay);
				return -1;
			}
			break;
		case EXP_EFAULT:
			if (!pm->efault || pm->mmio) {
				seterr(vm, "probe: %s of GPA %#x (unmapped hva): want EFAULT, got %s; model: %s",
				       op, gpa, pm->mmio ? "MMIO exit" : "a value", lay);
				return -1;
			}
			break;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */

int vm_check_logflags(struct vm *vm)
{
	static uint64_t bitmap[(WIN_SIZE / PAGE + 63) / 64 * 16];
	struct kvm_dirty_log log;

	for (uint32_t as = 0; as < vm->m.nr_as && as < 2; as++) {
		for (uint32_t id = 0; id < 64 && id < vm->m.nr_slots; id++) {
			uint32_t slot = as << 16 | id;
			const struct mslot *s = model_find_slot(&vm->m, slot);
			bool logged = s && (s->flags & KVM_MEM_LOG_DIRTY_PAGES);
			int r;

			if (s && s->size / PAGE > sizeof(bitmap) * 8)
				continue;
			memset(&log, 0, sizeof(log));
			log.slot = slot;
			log.dirty_bitmap = bitmap;
			r = ioctl(vm->fd, KVM_GET_DIRTY_LOG, &log) ? errno : 0;
			if (logged ? r != 0 : r != ENOENT) {
				seterr(vm, "KVM_GET_DIRTY_LOG(as %u id %u): %s, but the model says the slot %s",
				       as, id, r ? strerror(r) : "success",
				       !s ? "does not exist" : logged ? "is logged" : "is not logged");
				return -1;
			}
		}
	}
	return 0;
}

int vm_get_dirty(struct vm *vm, uint32_t slot, uint64_t *bitmap)
{
	struct kvm_dirty_log log;

	memset(&log, 0, sizeof(log));
	log.slot = slot;
	log.dirty_bitmap = bitmap;
	return ioctl(vm->fd, KVM_GET_DIRTY_LOG, &log) ? -errno : 0;
}

int vm_guest_access(struct vm *vm, const uint32_t *gpa, const uint32_t *op, int n)
{
	struct probe_ent *pe = (struct probe_ent *)(vm->sys + PROBE_GPA);
	struct kvm_regs regs;
	int r;

	for (int i = 0; i < n; i++) {
		pe[i].gpa = gpa[i];
		pe[i].op = op[i];
		pe[i].val = 0x12345678 + i;
	}
	memset(&regs, 0, sizeof(regs));
	regs.rsi = PROBE_GPA;
	regs.rcx = n;
	if (vcpu_set_entry(vm, 0, guest_entry_probe(), &regs))
		return -1;
	r = vcpu_run(&vm->vcpu[0]);
	if (r || vm->vcpu[0].run->exit_reason != KVM_EXIT_IO ||
	    vm->vcpu[0].run->io.port != PORT_DONE) {
		seterr(vm, "guest access: KVM_RUN %d (%s), exit %u, mmio %#llx",
		       r, r ? strerror(errno) : "ok", vm->vcpu[0].run->exit_reason,
		       (unsigned long long)vm->vcpu[0].run->mmio.phys_addr);
		return -1;
	}
	return 0;
}
