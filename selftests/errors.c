// SPDX-License-Identifier: GPL-2.0
/*
 * errors: semantics and every documented errno.
 *
 * legacy_*: the errno table against KVM_SET_USER_MEMORY_REGION, and the
 *	userspace model's predictions against the kernel. This runs on every
 *	tree today and is what makes the batch expectations "the same errnos
 *	as the legacy ioctl" checkable on each branch.
 * batch_*: the same table inside batches (bad entry first, last, alone),
 *	the header (flags, reserved, nent 0, capability limit, E2BIG, EFAULT)
 *	and the documented order of its checks, entries with non-zero
 *	padding (EINVAL, checked first), mixed and unknown address
 *	spaces, overlaps inside one batch, sequential semantics (each entry
 *	sees the layout of the previous ones), the KVM_SET_USER_MEMORY_REGION2
 *	order of a guest_memfd entry's checks, and dirty bits carried over a
 *	split and a merge of a logged slot.
 *	After every call the layout is read back (guest probe + dirty-log ids)
 *	and must match the model: unchanged after any failure.
 *	SKIP when KVM_CAP_USER_MEMORY_REGION_BATCH is 0.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "vm.h"

#define MiB		(1024ULL * 1024)
#define POOL_SIZE	(32 * MiB)

typedef struct kvm_userspace_memory_region2 reg_t;

FIXTURE(errors) {
	struct vm vm;
	uint8_t *pool;
	uint64_t h;		/* pool address */
	unsigned int seed;
};

static int base_layout(struct vm *vm, uint64_t h)
{
	reg_t base[] = {
		mkreg(1, 0, WIN_BASE, MiB, h),
		mkreg(2, KVM_MEM_LOG_DIRTY_PAGES, WIN_BASE + 2 * MiB, MiB, h + 2 * MiB),
		mkreg(3, KVM_MEM_READONLY, WIN_BASE + 4 * MiB, MiB, h + 4 * MiB),
	};

	for (unsigned int i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
		int r = set_region_legacy(vm, &base[i]);

		if (r)
			return r;
		model_apply(&vm->m, &base[i], false);
	}
	return 0;
}

FIXTURE_SETUP(errors)
{
	ASSERT_EQ(0, vm_create(&self->vm, 1)) TH_LOG("%s", self->vm.err);
	self->pool = map_mem(POOL_SIZE, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, self->pool);
	self->h = (uint64_t)(uintptr_t)self->pool;
	vm_add_pool(&self->vm, self->pool, POOL_SIZE, true);
	ASSERT_EQ(0, base_layout(&self->vm, self->h));
	self->seed = 1;
}

FIXTURE_TEARDOWN(errors)
{
	vm_destroy(&self->vm);
}

/* layout in KVM == model (guest probe, then slot ids/log flags) */
#define CHECK_LAYOUT(what) do {						\
	ASSERT_EQ(0, vm_probe(&self->vm, 8, &self->seed))		\
		TH_LOG("%s: %s", what, self->vm.err);			\
	ASSERT_EQ(0, vm_check_logflags(&self->vm))			\
		TH_LOG("%s: %s", what, self->vm.err);			\
} while (0)

#define NEED_BATCH() do {						\
	if (!self->vm.batch_cap)					\
		SKIP(return, "KVM_CAP_USER_MEMORY_REGION_BATCH is 0: kernel without the batch ioctl"); \
} while (0)

struct ecase {
	const char *name;
	reg_t r;
	int err;	/* expected -errno */
};

/* every case is applied to the base layout */
static int error_cases(struct vm *vm, uint64_t h, struct ecase *c)
{
	uint64_t X = WIN_BASE + 8 * MiB;	/* a free GPA */
	int n = 0;

#define C(nm, reg, e) do { c[n].name = nm; c[n].r = reg; c[n].err = e; n++; } while (0)
	C("unknown flag bit 3", mkreg(5, 1u << 3, X, MiB, h + 8 * MiB), -EINVAL);
	C("unknown flag bit 31", mkreg(5, 1u << 31, X, MiB, h + 8 * MiB), -EINVAL);
	C("GUEST_MEMFD without guest_memfd", mkreg(5, KVM_MEM_GUEST_MEMFD, X, MiB, h + 8 * MiB), -EINVAL);
	C("misaligned gpa", mkreg(5, 0, X + 0x800, MiB, h + 8 * MiB), -EINVAL);
	C("misaligned size", mkreg(5, 0, X, 0x1800, h + 8 * MiB), -EINVAL);
	C("misaligned hva", mkreg(5, 0, X, MiB, h + 8 * MiB + 0x10), -EINVAL);
	C("kernel hva", mkreg(5, 0, X, MiB, 0xffff800000000000ULL), -EINVAL);
	C("hva + size beyond user space", mkreg(5, 0, X, 1ULL << 30, 0x00fffffff0000000ULL), -EINVAL);
	C("gpa + size wraps", mkreg(5, 0, 0xfffffffffff00000ULL, 2 * MiB, h + 8 * MiB), -EINVAL);
	C("more than 2^31-1 pages", mkreg(5, 0, 0, 1ULL << 43, 0x100000000000ULL), -EINVAL);
	C("slot id == KVM_CAP_NR_MEMSLOTS", mkreg(vm->m.nr_slots, 0, X, MiB, h + 8 * MiB), -EINVAL);
	C("slot id 0x7fff", mkreg(0x7fff, 0, X, MiB, h + 8 * MiB), -EINVAL);
	C("address space 2", mkreg(2u << 16 | 5, 0, X, MiB, h + 8 * MiB), -EINVAL);
	C("address space 0xffff", mkreg(0xffffu << 16 | 5, 0, X, MiB, h + 8 * MiB), -EINVAL);
	C("create overlapping slot 1", mkreg(5, 0, WIN_BASE + MiB / 2, MiB, h + 8 * MiB), -EEXIST);
	C("create on slot 2's exact range", mkreg(5, 0, WIN_BASE + 2 * MiB, MiB, h + 8 * MiB), -EEXIST);
	C("create covering slot 3", mkreg(5, 0, WIN_BASE + 3 * MiB, 4 * MiB, h + 8 * MiB), -EEXIST);
	C("move slot 1 onto slot 2", mkreg(1, 0, WIN_BASE + 2 * MiB, MiB, h), -EEXIST);
	C("move slot 1 half onto slot 2", mkreg(1, 0, WIN_BASE + 3 * MiB / 2, MiB, h), -EEXIST);
	C("resize slot 1", mkreg(1, 0, WIN_BASE, 2 * MiB, h), -EINVAL);
	C("shrink slot 1", mkreg(1, 0, WIN_BASE, MiB / 2, h), -EINVAL);
	C("change hva of slot 1", mkreg(1, 0, WIN_BASE, MiB, h + 16 * MiB), -EINVAL);
	C("clear READONLY of slot 3", mkreg(3, 0, WIN_BASE + 4 * MiB, MiB, h + 4 * MiB), -EINVAL);
	C("set READONLY on slot 1", mkreg(1, KVM_MEM_READONLY, WIN_BASE, MiB, h), -EINVAL);
	C("delete missing slot 9", mkreg(9, 0, 0, 0, 0), -EINVAL);
	C("delete slot 1 with misaligned hva", mkreg(1, 0, WIN_BASE, 0, h + 0x10), -EINVAL);
	C("delete slot 1 in address space 2", mkreg(2u << 16 | 1, 0, WIN_BASE, 0, h), -EINVAL);
#undef C
	return n;
}

#define MAXCASES 64

TEST_F_TIMEOUT(errors, legacy_errnos, 120)
{
	struct ecase c[MAXCASES];
	int n = error_cases(&self->vm, self->h, c);

	CHECK_LAYOUT("base layout");
	for (int i = 0; i < n; i++) {
		int model = model_apply(&self->vm.m, &c[i].r, true);
		int got = set_region_legacy(&self->vm, &c[i].r);

		EXPECT_EQ(c[i].err, got) TH_LOG("%s: kernel says %s", c[i].name, strerror(-got));
		EXPECT_EQ(c[i].err, model) TH_LOG("%s: model says %d", c[i].name, model);
		if (got == 0) {
			/* the kernel accepted it: follow, so the probe stays meaningful */
			model_apply(&self->vm.m, &c[i].r, false);
		}
		CHECK_LAYOUT(c[i].name);
	}
}

/* valid legacy changes, each one checked: validates probe and model */
TEST_F_TIMEOUT(errors, legacy_changes, 120)
{
	uint64_t h = self->h;
	reg_t ops[] = {
		mkreg(5, 0, WIN_BASE + 8 * MiB, 2 * MiB, h + 8 * MiB),		/* create */
		mkreg(5, 0, WIN_BASE + 12 * MiB, 2 * MiB, h + 8 * MiB),		/* move */
		mkreg(5, KVM_MEM_LOG_DIRTY_PAGES, WIN_BASE + 12 * MiB, 2 * MiB, h + 8 * MiB),
		mkreg(5, KVM_MEM_LOG_DIRTY_PAGES, WIN_BASE + 12 * MiB, 2 * MiB, h + 8 * MiB), /* no-op */
		mkreg(2, 0, WIN_BASE + 2 * MiB, MiB, h + 2 * MiB),		/* log off */
		mkreg(1, 0, WIN_BASE, 0, 0),					/* delete */
		mkreg(6, 0, WIN_BASE, MiB / 2, h + 8 * MiB),			/* alias of 5 */
		mkreg(7, KVM_MEM_READONLY, WIN_BASE + MiB / 2, MiB / 2, h + MiB / 2),
		mkreg(3, KVM_MEM_READONLY, WIN_BASE + 6 * MiB, MiB, h + 4 * MiB), /* move RO */
		mkreg(1u << 16 | 1, 0, WIN_BASE, MiB, h),			/* AS1, same GPA */
		mkreg(5, 0, 0, 0, 0),
	};

	for (unsigned int i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		char what[64];
		int model, got;

		if ((ops[i].slot >> 16) >= self->vm.m.nr_as)
			continue;
		snprintf(what, sizeof(what), "legacy op %u", i);
		model = model_apply(&self->vm.m, &ops[i], true);
		got = set_region_legacy(&self->vm, &ops[i]);
		ASSERT_EQ(0, model) TH_LOG("%s: model rejects a valid op", what);
		ASSERT_EQ(0, got) TH_LOG("%s: %s", what, strerror(-got));
		model_apply(&self->vm.m, &ops[i], false);
		CHECK_LAYOUT(what);
	}
}

/* the probe and the dirty-log check catch a model that is wrong */
TEST_F(errors, probe_detects)
{
	struct model good = self->vm.m;
	struct mslot *s1 = (struct mslot *)model_find_slot(&self->vm.m, 1);
	struct mslot extra = { .slot = 8, .gpa = WIN_BASE + 8 * MiB, .size = MiB,
			       .hva = self->h + 8 * MiB };

	CHECK_LAYOUT("base");
	ASSERT_NE(NULL, s1);
	/* slot 1 missing from the model: its memory must be noticed */
	self->vm.m.s[s1 - self->vm.m.s] = self->vm.m.s[--self->vm.m.n];
	EXPECT_EQ(-1, vm_probe(&self->vm, 0, &self->seed));
	self->vm.m = good;
	/* a slot in the model that KVM does not have */
	self->vm.m.s[self->vm.m.n++] = extra;
	EXPECT_EQ(-1, vm_probe(&self->vm, 0, &self->seed));
	self->vm.m = good;
	/* wrong hva behind slot 1 */
	s1->hva += 8 * MiB;
	EXPECT_EQ(-1, vm_probe(&self->vm, 0, &self->seed));
	self->vm.m = good;
	/* slot 1 one page shorter / longer than it is */
	s1->size -= PAGE;
	EXPECT_EQ(-1, vm_probe(&self->vm, 0, &self->seed));
	self->vm.m = good;
	s1->size += PAGE;
	EXPECT_EQ(-1, vm_probe(&self->vm, 0, &self->seed));
	self->vm.m = good;
	/* slot 3 is READONLY, slot 1 is not */
	((struct mslot *)model_find_slot(&self->vm.m, 3))->flags = 0;
	EXPECT_EQ(-1, vm_probe(&self->vm, 0, &self->seed));
	self->vm.m = good;
	s1->flags = KVM_MEM_READONLY;
	EXPECT_EQ(-1, vm_probe(&self->vm, 0, &self->seed));
	self->vm.m = good;
	/* slot 2 logs dirty pages, slot 1 does not */
	((struct mslot *)model_find_slot(&self->vm.m, 2))->flags = 0;
	EXPECT_EQ(-1, vm_check_logflags(&self->vm));
	self->vm.m = good;
	s1->flags = KVM_MEM_LOG_DIRTY_PAGES;
	EXPECT_EQ(-1, vm_check_logflags(&self->vm));
	self->vm.m = good;
	CHECK_LAYOUT("restored");
}

TEST_F(errors, batch_capability)
{
	int sys;

	NEED_BATCH();
	/* one entry per user memslot of an address space: KVM_CAP_NR_MEMSLOTS */
	EXPECT_EQ((int)self->vm.m.nr_slots, self->vm.batch_cap);
	/* the capability is per VM fd; on /dev/kvm it must agree or be 0 */
	sys = ioctl(self->vm.kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY_REGION_BATCH);
	EXPECT_TRUE(sys == 0 || sys == self->vm.batch_cap) TH_LOG("/dev/kvm says %d", sys);
}

TEST_F(errors, batch_nent0)
{
	NEED_BATCH();
	EXPECT_EQ(0, set_region_batch(&self->vm, NULL, 0, 0, 0));
	CHECK_LAYOUT("nent 0");
}

TEST_F(errors, batch_header)
{
	reg_t e = mkreg(5, 0, WIN_BASE + 8 * MiB, MiB, self->h + 8 * MiB);
	struct { uint32_t flags; uint64_t reserved; } bad[] = {
		{ 1, 0 }, { 0x80000000u, 0 }, { 0, 1 }, { 0, 1ULL << 63 }, { 1, 1 },
	};

	NEED_BATCH();
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = set_region_batch(&self->vm, &e, 1, bad[i].flags, bad[i].reserved);

		EXPECT_EQ(-EINVAL, r) TH_LOG("flags %#x reserved %#llx", bad[i].flags,
					     (unsigned long long)bad[i].reserved);
		CHECK_LAYOUT("bad header");
	}
	/* the same entry with a clean header is accepted */
	ASSERT_EQ(0, set_region_batch(&self->vm, &e, 1, 0, 0));
	model_apply(&self->vm.m, &e, false);
	CHECK_LAYOUT("good header");
}

/*
 * The documented order: flags and reserved (EINVAL), then nent 0 (0,
 * nothing done), then nent above the capability (E2BIG), all decided from
 * the header: here it ends where readable memory ends, so reading an entry
 * would be EFAULT.
 */
TEST_F(errors, batch_header_order)
{
	uint32_t cap = self->vm.batch_cap;
	struct {
		const char *name;
		uint32_t nent, flags;
		uint64_t reserved;
		int err;
	} t[] = {
		{ "flags and nent 0", 0, 1, 0, -EINVAL },
		{ "reserved and nent 0", 0, 0, 1ULL << 63, -EINVAL },
		{ "flags and nent cap + 1", cap + 1, 0x80000000u, 0, -EINVAL },
		{ "reserved and nent cap + 1", cap + 1, 0, 1, -EINVAL },
		{ "flags and nent 0xffffffff", 0xffffffffu, 1, 0, -EINVAL },
		{ "nent 0", 0, 0, 0, 0 },
		{ "nent cap + 1", cap + 1, 0, 0, -E2BIG },
		{ "nent 1: the entry is read", 1, 0, 0, -EFAULT },
	};
	size_t pg = PAGE;
	uint8_t *two;
	struct kvm_userspace_memory_region_batch *b;

	NEED_BATCH();
	two = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, two);
	ASSERT_EQ(0, mprotect(two + pg, pg, PROT_NONE));
	b = (void *)(two + pg - sizeof(*b));
	for (unsigned int i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(b, 0, sizeof(*b));
		b->nent = t[i].nent;
		b->flags = t[i].flags;
		b->reserved = t[i].reserved;
		EXPECT_EQ(t[i].err, batch_ioctl(&self->vm, b)) TH_LOG("%s", t[i].name);
		CHECK_LAYOUT(t[i].name);
	}
	munmap(two, 2 * pg);
}

TEST_F_TIMEOUT(errors, batch_limit, 120)
{
	int cap = self->vm.batch_cap, n;
	reg_t *e;

	NEED_BATCH();
	ASSERT_GE(cap, 2);
	e = calloc(cap + 1, sizeof(*e));
	ASSERT_NE(NULL, e);
	/* cap entries: create/delete pairs of slot 10, then slots 10 and 11 */
	for (n = 0; n + 2 < cap; n += 2) {
		e[n] = mkreg(10, 0, WIN_BASE + 8 * MiB, MiB, self->h + 8 * MiB);
		e[n + 1] = mkreg(10, 0, 0, 0, 0);
	}
	for (; n < cap; n++)
		e[n] = mkreg(10 + (n & 1), 0, WIN_BASE + 8 * MiB + (n & 1) * MiB, MiB,
			     self->h + 8 * MiB + (n & 1) * MiB);
	e[cap] = mkreg(12, 0, WIN_BASE + 12 * MiB, MiB, self->h + 12 * MiB);

	/* cap + 1 valid entries: E2BIG, nothing applied */
	EXPECT_EQ(-E2BIG, set_region_batch(&self->vm, e, cap + 1, 0, 0));
	CHECK_LAYOUT("nent = cap + 1");
	/* absurd counts must not overflow a size computation */
	{
		struct kvm_userspace_memory_region_batch hdr = { .nent = 0xffffffffu };

		EXPECT_EQ(-E2BIG, batch_ioctl(&self->vm, &hdr));
		hdr.nent = 0x80000000u;
		EXPECT_EQ(-E2BIG, batch_ioctl(&self->vm, &hdr));
	}
	CHECK_LAYOUT("huge nent");
	/* exactly cap entries: accepted, net effect applied */
	ASSERT_EQ(0, model_apply_batch(&self->vm.m, e, cap, NULL));
	EXPECT_EQ(0, set_region_batch(&self->vm, e, cap, 0, 0));
	CHECK_LAYOUT("nent = cap");
	free(e);
}

TEST_F(errors, batch_efault)
{
	size_t pg = PAGE;
	uint8_t *two = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct kvm_userspace_memory_region_batch *b;

	NEED_BATCH();
	ASSERT_NE(MAP_FAILED, two);
	ASSERT_EQ(0, mprotect(two + pg, pg, PROT_NONE));
	EXPECT_EQ(-EFAULT, batch_ioctl(&self->vm, NULL));
	/* header readable, the second entry runs into a PROT_NONE page */
	b = (void *)(two + pg - sizeof(*b) - sizeof(reg_t));
	memset(b, 0, sizeof(*b) + sizeof(reg_t));
	b->nent = 2;
	b->entries[0] = mkreg(5, 0, WIN_BASE + 8 * MiB, MiB, self->h + 8 * MiB);
	EXPECT_EQ(-EFAULT, batch_ioctl(&self->vm, b));
	CHECK_LAYOUT("EFAULT");
	munmap(two, 2 * pg);
}

/* each table case alone, first, and last in a batch of good entries */
TEST_F_TIMEOUT(errors, batch_errnos, 300)
{
	struct ecase c[MAXCASES];
	int n = error_cases(&self->vm, self->h, c);
	uint64_t h = self->h;

	NEED_BATCH();
	for (int i = 0; i < n; i++) {
		reg_t good[] = {
			mkreg(1, 0, WIN_BASE, 0, 0),				/* delete 1 */
			mkreg(6, 0, WIN_BASE + 12 * MiB, MiB, h + 12 * MiB),	/* create */
			mkreg(2, 0, WIN_BASE + 2 * MiB, MiB, h + 2 * MiB),	/* log off */
			mkreg(3, KVM_MEM_READONLY, WIN_BASE + 14 * MiB, MiB, h + 4 * MiB), /* move */
		};
		const int ng = sizeof(good) / sizeof(good[0]);
		reg_t e[8];
		int legacy = set_region_legacy(&self->vm, &c[i].r);
		int r;

		if (legacy == 0)	/* the table is wrong for this tree: say so */
			model_apply(&self->vm.m, &c[i].r, false);
		ASSERT_EQ(c[i].err, legacy) TH_LOG("%s: legacy ioctl says %d", c[i].name, legacy);

		r = set_region_batch(&self->vm, &c[i].r, 1, 0, 0);
		EXPECT_EQ(legacy, r) TH_LOG("%s alone", c[i].name);
		CHECK_LAYOUT(c[i].name);

		/* bad entry first */
		e[0] = c[i].r;
		memcpy(&e[1], good, sizeof(good));
		r = set_region_batch(&self->vm, e, ng + 1, 0, 0);
		EXPECT_EQ(legacy, r) TH_LOG("%s first", c[i].name);
		CHECK_LAYOUT(c[i].name);

		/* bad entry last: the good ones before it must not be applied */
		memcpy(e, good, sizeof(good));
		e[ng] = c[i].r;
		r = set_region_batch(&self->vm, e, ng + 1, 0, 0);
		/* after the good entries slot 1 is gone: overlap cases with 1 change */
		{
			struct model tmp = self->vm.m;
			uint32_t bad;
			int want = model_apply_batch(&tmp, e, ng + 1, &bad);

			EXPECT_EQ(want, r) TH_LOG("%s last (model: %d at %u)", c[i].name, want, bad);
			if (!r)
				self->vm.m = tmp;
		}
		CHECK_LAYOUT(c[i].name);
		if (!r) {	/* undo, back to the base layout */
			vm_destroy(&self->vm);
			ASSERT_EQ(0, vm_create(&self->vm, 1));
			vm_add_pool(&self->vm, self->pool, POOL_SIZE, true);
			ASSERT_EQ(0, base_layout(&self->vm, self->h));
		}
	}
}

TEST_F(errors, batch_address_spaces)
{
	uint64_t h = self->h;
	reg_t mixed[] = {
		mkreg(5, 0, WIN_BASE + 8 * MiB, MiB, h + 8 * MiB),
		mkreg(1u << 16 | 5, 0, WIN_BASE + 8 * MiB, MiB, h + 8 * MiB),
	};
	reg_t as2[] = {
		mkreg(2u << 16 | 5, 0, WIN_BASE + 8 * MiB, MiB, h + 8 * MiB),
		mkreg(2u << 16 | 6, 0, WIN_BASE + 10 * MiB, MiB, h + 10 * MiB),
	};
	reg_t as1[] = {
		mkreg(1u << 16 | 1, 0, WIN_BASE, MiB, h),
		mkreg(1u << 16 | 2, 0, WIN_BASE + MiB, MiB, h + MiB),
	};

	NEED_BATCH();
	EXPECT_EQ(-EINVAL, set_region_batch(&self->vm, as2, 2, 0, 0));
	CHECK_LAYOUT("unknown address space");
	if (self->vm.m.nr_as < 2)
		return;
	/* both address spaces in one batch, either order, all or nothing */
	ASSERT_EQ(0, set_region_batch(&self->vm, mixed, 2, 0, 0));
	ASSERT_EQ(0, model_apply_batch(&self->vm.m, mixed, 2, NULL));
	CHECK_LAYOUT("mixed address spaces");
	{
		reg_t undo[2] = { mixed[1], mixed[0] }, bad[2];

		undo[0].memory_size = undo[1].memory_size = 0;
		/* an AS0 delete, then an AS1 entry that overlaps in AS1 */
		bad[0] = undo[1];
		bad[1] = mkreg(1u << 16 | 7, 0, WIN_BASE + 8 * MiB, MiB, h);
		EXPECT_EQ(-EEXIST, set_region_batch(&self->vm, bad, 2, 0, 0));
		CHECK_LAYOUT("mixed address spaces, failing");
		ASSERT_EQ(0, set_region_batch(&self->vm, undo, 2, 0, 0));
		ASSERT_EQ(0, model_apply_batch(&self->vm.m, undo, 2, NULL));
		CHECK_LAYOUT("mixed address spaces, reversed");
	}
	/* a batch entirely in AS1 is fine and leaves AS0 alone */
	ASSERT_EQ(0, set_region_batch(&self->vm, as1, 2, 0, 0));
	ASSERT_EQ(0, model_apply_batch(&self->vm.m, as1, 2, NULL));
	CHECK_LAYOUT("AS1 batch");
	/* and it exists: the same range again with another id overlaps */
	{
		reg_t r = mkreg(1u << 16 | 7, 0, WIN_BASE, MiB, h);

		EXPECT_EQ(-EEXIST, set_region_batch(&self->vm, &r, 1, 0, 0));
		EXPECT_EQ(-EEXIST, set_region_legacy(&self->vm, &r));
	}
}

TEST_F(errors, batch_overlap_within)
{
	uint64_t h = self->h, X = WIN_BASE + 8 * MiB;
	reg_t two[] = {
		mkreg(5, 0, X, MiB, h + 8 * MiB),
		mkreg(6, 0, X + MiB / 2, MiB, h + 10 * MiB),
	};
	reg_t moved[] = {		/* 5 created, then 1 moved onto it */
		mkreg(5, 0, X, MiB, h + 8 * MiB),
		mkreg(1, 0, X, MiB, h),
	};

	NEED_BATCH();
	EXPECT_EQ(-EEXIST, set_region_batch(&self->vm, two, 2, 0, 0));
	CHECK_LAYOUT("overlap between two new entries");
	EXPECT_EQ(-EEXIST, set_region_batch(&self->vm, moved, 2, 0, 0));
	CHECK_LAYOUT("move onto a slot created in the same batch");
}

/*
 * An entry's pad1 and pad2 must be zero (EINVAL), checked before anything
 * else of the entry; KVM_SET_USER_MEMORY_REGION2 ignores them, the batch
 * keeps them for new fields.  Would catch a batch that ignores them too.
 */
TEST_F(errors, batch_entry_padding)
{
	uint64_t h = self->h, X = WIN_BASE + 8 * MiB;
	reg_t e[2] = {
		mkreg(5, 0, X, MiB, h + 8 * MiB),
		mkreg(6, 0, X + 2 * MiB, MiB, h + 10 * MiB),
	};

	NEED_BATCH();
	for (unsigned int i = 0; i <= 14; i++) {
		reg_t bad[2] = { e[0], e[1] };

		/* pad1, then each word of pad2, in the second entry */
		if (i == 0)
			bad[1].pad1 = 1;
		else
			bad[1].pad2[i - 1] = 1ULL << (i * 4);
		EXPECT_EQ(-EINVAL, set_region_batch(&self->vm, bad, 2, 0, 0))
			TH_LOG("padding word %u", i);
		CHECK_LAYOUT("non-zero padding");
	}
	/* before the other checks: an overlapping entry still gets EINVAL */
	e[1] = mkreg(6, 0, WIN_BASE, MiB, h + 10 * MiB);
	e[1].pad2[13] = 1;
	EXPECT_EQ(-EINVAL, set_region_batch(&self->vm, e, 2, 0, 0));
	CHECK_LAYOUT("non-zero padding in an overlapping entry");
	e[1].pad2[13] = 0;
	EXPECT_EQ(-EEXIST, set_region_batch(&self->vm, e, 2, 0, 0));
	CHECK_LAYOUT("overlapping entry");
}

/* each entry is validated against the layout left by the previous ones */
TEST_F(errors, batch_sequential)
{
	uint64_t h = self->h;
	reg_t reuse[] = {		/* delete 1, then 7 takes its place */
		mkreg(1, 0, WIN_BASE, 0, 0),
		mkreg(7, 0, WIN_BASE, MiB, h + 8 * MiB),
	};
	reg_t swap[] = {		/* 1 and 2 swap through a parking GPA */
		mkreg(7, 0, WIN_BASE + 16 * MiB, MiB, h + 8 * MiB),
		mkreg(2, KVM_MEM_LOG_DIRTY_PAGES, WIN_BASE, MiB, h + 2 * MiB),
		mkreg(7, 0, WIN_BASE + 2 * MiB, MiB, h + 8 * MiB),
	};
	reg_t transient[] = {		/* a slot that lives only inside the batch */
		mkreg(9, 0, WIN_BASE + 20 * MiB, MiB, h + 20 * MiB),
		mkreg(9, 0, WIN_BASE + 22 * MiB, MiB, h + 20 * MiB),
		mkreg(9, 0, 0, 0, 0),
	};
	reg_t same_id[] = {		/* id 3 deleted and re-created bigger */
		mkreg(3, 0, 0, 0, 0),
		mkreg(3, 0, WIN_BASE + 4 * MiB, 2 * MiB, h + 4 * MiB),
		mkreg(3, KVM_MEM_LOG_DIRTY_PAGES, WIN_BASE + 4 * MiB, 2 * MiB, h + 4 * MiB),
	};
	reg_t dup[] = {			/* the same create twice: second is a no-op */
		mkreg(11, 0, WIN_BASE + 24 * MiB, MiB, h + 24 * MiB),
		mkreg(11, 0, WIN_BASE + 24 * MiB, MiB, h + 24 * MiB),
	};
	reg_t dup_bad[] = {		/* the same id with another size */
		mkreg(12, 0, WIN_BASE + 26 * MiB, MiB, h + 26 * MiB),
		mkreg(12, 0, WIN_BASE + 26 * MiB, 2 * MiB, h + 26 * MiB),
	};
	struct { const char *name; reg_t *e; int n; int err; } t[] = {
		{ "delete then reuse the range", reuse, 2, 0 },
		{ "swap through parking", swap, 3, 0 },
		{ "transient slot", transient, 3, 0 },
		{ "delete and re-create an id", same_id, 3, 0 },
		{ "duplicate create", dup, 2, 0 },
		{ "same id, other size", dup_bad, 2, -EINVAL },
	};

	NEED_BATCH();
	for (unsigned int i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int want = model_apply_batch(&self->vm.m, t[i].e, t[i].n, NULL);

		ASSERT_EQ(t[i].err, want) TH_LOG("%s: model", t[i].name);
		EXPECT_EQ(t[i].err, set_region_batch(&self->vm, t[i].e, t[i].n, 0, 0))
			TH_LOG("%s", t[i].name);
		CHECK_LAYOUT(t[i].name);
	}
}

/*
 * The single-slot reference for a batch entry (the stand-in makes legacy
 * calls).  Kernels without KVM_SET_USER_MEMORY_REGION2 (6.1, 5.10) take the
 * entries as KVM_SET_USER_MEMORY_REGION takes its struct, whose flags do not
 * include KVM_MEM_GUEST_MEMFD: the legacy call is the reference there.
 */
static int set_region2(struct vm *vm, const reg_t *r)
{
	if (batch_emulated())
		return set_region_legacy(vm, r);
	if (!ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION2, r))
		return 0;
	if (errno == ENOTTY)
		return set_region_legacy(vm, r);
	return -errno;
}

/*
 * A batch entry means what it means to KVM_SET_USER_MEMORY_REGION2, which
 * takes KVM_MEM_GUEST_MEMFD where the VM has guest_memfd and checks a new
 * guest_memfd slot in this order: flags, the checks that do not depend on
 * the layout, overlap (EEXIST), then the binding (EBADF, or EINVAL for a
 * file that is not a guest_memfd of this VM). Found by fuzz batch: seed
 * 0x77, EEXIST for such a create on an occupied range, where the fuzzer's
 * model, which had the flags of KVM_SET_USER_MEMORY_REGION, said EINVAL;
 * seeds 0x55 and 0x33, a bad binding followed by an overlapping create
 * failed with the later entry's EEXIST, where the same calls one by one
 * fail at the binding with EINVAL.
 */
TEST_F(errors, batch_guest_memfd_order)
{
	uint64_t h = self->h, X = WIN_BASE + 8 * MiB;
	reg_t taken = mkreg(5, KVM_MEM_GUEST_MEMFD, WIN_BASE + MiB / 2, MiB, h + 8 * MiB);
	reg_t unbound = mkreg(5, KVM_MEM_GUEST_MEMFD, X, MiB, h + 8 * MiB);
	reg_t over = mkreg(6, 0, WIN_BASE + MiB / 2, MiB, h + 10 * MiB);
	reg_t good = mkreg(7, 0, X + 2 * MiB, MiB, h + 12 * MiB);
	reg_t closed = unbound;
	int single_taken, single_unbound;
	bool gmem;

	NEED_BATCH();
	taken.guest_memfd = self->vm.fd;	/* open, but not a guest_memfd */
	unbound.guest_memfd = self->vm.fd;
	closed.guest_memfd = ~0u;		/* not open: EBADF, if it gets there */
	gmem = set_region2(&self->vm, &closed) == -EBADF;
	single_taken = set_region2(&self->vm, &taken);
	single_unbound = set_region2(&self->vm, &unbound);
	CHECK_LAYOUT("single-slot calls");
	EXPECT_EQ(gmem ? -EEXIST : -EINVAL, single_taken);
	EXPECT_EQ(-EINVAL, single_unbound);

	/* the overlap is found before the binding is looked at (seed 0x77) */
	EXPECT_EQ(single_taken, set_region_batch(&self->vm, &taken, 1, 0, 0));
	CHECK_LAYOUT("guest_memfd create on slot 1");
	/* entry 0's binding fails before entry 2 overlaps (seeds 0x55, 0x33) */
	{
		reg_t e[] = { unbound, good, over };

		EXPECT_EQ(single_unbound, set_region_batch(&self->vm, e, 3, 0, 0))
			TH_LOG("bad guest_memfd, then an overlap");
		CHECK_LAYOUT("bad guest_memfd, then an overlap");
	}
	/* the other way round, the overlap comes first */
	{
		reg_t e[] = { over, unbound };

		EXPECT_EQ(-EEXIST, set_region_batch(&self->vm, e, 2, 0, 0));
		CHECK_LAYOUT("an overlap, then a bad guest_memfd");
	}
	/* a delete binds nothing: its guest_memfd fields are not looked at */
	{
		reg_t mk = mkreg(7, 0, X + 2 * MiB, MiB, h + 12 * MiB);
		reg_t del = mkreg(7, KVM_MEM_GUEST_MEMFD, 0, 0, 0);
		reg_t plain_del = mkreg(7, 0, 0, 0, 0);
		int single, batch;

		del.guest_memfd = ~0u;
		ASSERT_EQ(0, set_region_legacy(&self->vm, &mk));
		single = set_region2(&self->vm, &del);
		if (single)
			ASSERT_EQ(0, set_region_legacy(&self->vm, &plain_del));
		ASSERT_EQ(0, set_region_legacy(&self->vm, &mk));
		batch = set_region_batch(&self->vm, &del, 1, 0, 0);
		if (batch)
			ASSERT_EQ(0, set_region_legacy(&self->vm, &plain_del));
		EXPECT_EQ(single, batch)
			TH_LOG("delete with the guest_memfd flag and no guest_memfd");
		CHECK_LAYOUT("delete with the guest_memfd flag");
	}
}

static int test_bit(const uint64_t *b, unsigned int n) { return (b[n / 64] >> (n % 64)) & 1; }

/* dirty bits survive a split and a merge of a logged slot */
TEST_F(errors, batch_dirty_carry)
{
	static uint64_t bm[4096];
	uint64_t h = self->h, L = WIN_BASE + 8 * MiB, hl = h + 8 * MiB;
	const uint32_t LOG = KVM_MEM_LOG_DIRTY_PAGES;
	reg_t create = mkreg(20, LOG, L, MiB, hl);
	reg_t split[] = {
		mkreg(20, 0, 0, 0, 0),
		mkreg(20, LOG, L, MiB / 2, hl),
		mkreg(21, LOG, L + MiB / 2, MiB / 2, hl + MiB / 2),
	};
	reg_t merge[] = {
		mkreg(20, 0, 0, 0, 0),
		mkreg(21, 0, 0, 0, 0),
		mkreg(20, LOG, L, MiB, hl),
	};
	uint32_t gpa[2], op[2] = { 1, 1 };

	NEED_BATCH();
	ASSERT_EQ(0, set_region_legacy(&self->vm, &create));
	ASSERT_EQ(0, vm_get_dirty(&self->vm, 20, bm));		/* clear */
	gpa[0] = L + 3 * PAGE;
	gpa[1] = L + 200 * PAGE;
	ASSERT_EQ(0, vm_guest_access(&self->vm, gpa, op, 2)) TH_LOG("%s", self->vm.err);
	ASSERT_EQ(0, set_region_batch(&self->vm, split, 3, 0, 0));
	memset(bm, 0, sizeof(bm));
	ASSERT_EQ(0, vm_get_dirty(&self->vm, 20, bm));
	EXPECT_TRUE(test_bit(bm, 3)) TH_LOG("dirty page 3 lost by the split");
	memset(bm, 0, sizeof(bm));
	ASSERT_EQ(0, vm_get_dirty(&self->vm, 21, bm));
	EXPECT_TRUE(test_bit(bm, 200 - 128)) TH_LOG("dirty page 200 lost by the split");

	gpa[0] = L + 5 * PAGE;
	gpa[1] = L + (128 + 10) * PAGE;
	ASSERT_EQ(0, vm_guest_access(&self->vm, gpa, op, 2)) TH_LOG("%s", self->vm.err);
	ASSERT_EQ(0, set_region_batch(&self->vm, merge, 3, 0, 0));
	memset(bm, 0, sizeof(bm));
	ASSERT_EQ(0, vm_get_dirty(&self->vm, 20, bm));
	EXPECT_TRUE(test_bit(bm, 5)) TH_LOG("dirty page 5 lost by the merge");
	EXPECT_TRUE(test_bit(bm, 128 + 10)) TH_LOG("dirty page 138 lost by the merge");
}

#define main kst_harness_main
TEST_HARNESS_MAIN
#undef main
KST_MAIN
