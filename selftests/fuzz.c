// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz: random memslot changes checked against the userspace model.
 *
 * Entries: overlaps, duplicate and reused slot ids, moves, flag toggles,
 * no-ops, deletes of missing slots, misaligned or huge addresses, sizes
 * beyond the page limit, bad flags, unknown address-space ids, ids around
 * KVM_CAP_NR_MEMSLOTS, aliases, and userspace_addr inside a PROT_NONE
 * reservation (accepted by KVM; guest accesses must then fail with EFAULT).
 *
 * legacy: one entry per KVM_SET_USER_MEMORY_REGION call. Checks the model
 *	(errno and layout) on the unpatched kernel, so the model the batch
 *	mode relies on is itself verified on every branch.
 * batch: random batches of 0..8 entries, some of 16..64, some of
 *	cap - 1 / cap / cap + 1, bad header flags/reserved, entries in both
 *	address spaces, non-zero padding, and "doomed" batches that delete the system slot before a bad
 *	entry (the guest could not run the next probe if that leaked).
 *	The errno must be the model's and the layout must match the model
 *	after every call: unchanged on any error. The header is checked in
 *	the documented order: flags/reserved (EINVAL), then nent 0 (success,
 *	nothing done), then nent above the cap (E2BIG); then the entries in
 *	order, as KVM_SET_USER_MEMORY_REGION2 calls (see model_entry()), with
 *	non-zero padding in an entry failing it with EINVAL first.
 *
 * After every call: the guest layout probe and the dirty-log id check.
 * Seed: fixed by default, printed; -s SEED or KST_SEED. Bounded by
 * -D SECONDS / KST_SECONDS (default 40 s per mode) or -n / KST_ITERS calls.
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
#define NONE_SIZE	(16 * MiB)
#define DEFAULT_SEED	0x6b766d31u	/* "kvm1" */
#define DEFAULT_SECONDS	40

typedef struct kvm_userspace_memory_region2 reg_t;

struct fz {
	struct vm vm;
	uint64_t rng;
	uint64_t pool, none;
	unsigned int pseed;
	bool gmem;		/* REGION2 takes KVM_MEM_GUEST_MEMFD on this VM */
	/* stats */
	unsigned long calls, ok, errs[5];	/* EINVAL EEXIST E2BIG EFAULT other */
};

static uint64_t rnd(struct fz *f)
{
	f->rng ^= f->rng >> 12;
	f->rng ^= f->rng << 25;
	f->rng ^= f->rng >> 27;
	return f->rng * 0x2545f4914f6cdd1dULL;
}

static uint64_t below(struct fz *f, uint64_t n) { return n ? rnd(f) % n : 0; }
static bool chance(struct fz *f, int pct) { return (int)below(f, 100) < pct; }

static const uint64_t sizes[] = { 0x1000, 0x2000, 0x10000, 0x40000, 0x100000,
				  0x200000, 0x400000 };

static uint64_t rand_size(struct fz *f)
{
	return sizes[below(f, sizeof(sizes) / sizeof(sizes[0]))];
}

static uint64_t rand_gpa(struct fz *f, uint64_t size)
{
	uint64_t gran = chance(f, 70) ? 0x10000 : PAGE;

	return WIN_BASE + below(f, (WIN_SIZE - size) / gran + 1) * gran;
}

static uint64_t rand_hva(struct fz *f, uint64_t size)
{
	uint64_t gran = chance(f, 70) ? 0x10000 : PAGE;

	if (chance(f, 8))	/* unmapped userspace_addr */
		return f->none + below(f, (NONE_SIZE - size) / gran + 1) * gran;
	return f->pool + below(f, (POOL_SIZE - size) / gran + 1) * gran;
}

static uint32_t rand_id(struct fz *f, bool clean)
{
	struct model *m = &f->vm.m;
	uint32_t as = 0, id = 1 + below(f, 31);
	int p = below(f, 100);

	if (clean)
		return p < 4 ? m->nr_slots - 1 : id;
	if (p < 4)
		id = m->nr_slots - 1 - below(f, 2);
	else if (p < 7)
		id = chance(f, 50) ? m->nr_slots : 0x7fff;
	p = below(f, 100);
	if (p < 6 && m->nr_as > 1)
		as = 1;
	else if (p < 9)
		as = 2 + below(f, 0xfffe);
	return as << 16 | id;
}

/*
 * One random entry, given the layout it will be validated against. A clean
 * entry has valid ids, flags and alignment (it can still overlap).
 */
static reg_t gen_entry(struct fz *f, const struct model *m, bool clean)
{
	reg_t r;
	int p = below(f, 100);
	uint64_t size;

	/* start from an existing non-system slot half of the time */
	if (p < (m->n > 16 ? 80 : 45) && m->n > 1) {
		const struct mslot *s = &m->s[1 + below(f, m->n - 1)];

		if (s->slot == SYS_SLOT)
			goto fresh;
		r = mkreg(s->slot, s->flags, s->gpa, s->size, s->hva);
		switch (below(f, m->n > 16 ? 4 : 8)) {
		case 0: case 1:	/* delete */
			r.memory_size = 0;
			if (chance(f, 30))
				r.userspace_addr = 0;
			break;
		case 2: case 3:	/* move */
			r.guest_phys_addr = rand_gpa(f, s->size);
			break;
		case 4:		/* toggle dirty logging */
			r.flags ^= KVM_MEM_LOG_DIRTY_PAGES;
			break;
		case 5:		/* no-op */
			break;
		case 6:		/* invalid modifications */
			if (clean) {
				r.guest_phys_addr = rand_gpa(f, s->size);
				break;
			}
			switch (below(f, 3)) {
			case 0: r.flags ^= KVM_MEM_READONLY; break;
			case 1: r.memory_size = rand_size(f); break;
			default: r.userspace_addr = rand_hva(f, s->size); break;
			}
			break;
		default:	/* same range, new id: overlap */
			r.slot = rand_id(f, clean);
			break;
		}
		return r;
	}
fresh:
	size = rand_size(f);
	r = mkreg(rand_id(f, clean), 0, rand_gpa(f, size), size, rand_hva(f, size));
	if (clean) {	/* a create: pick an id the layout does not use yet */
		for (int k = 0; k < 8 && model_find_slot(m, r.slot); k++)
			r.slot = 1 + below(f, 31);
	}
	if (chance(f, 20))
		r.flags |= KVM_MEM_LOG_DIRTY_PAGES;
	if (chance(f, 10))
		r.flags |= KVM_MEM_READONLY;
	p = below(f, 100);
	if (clean && p >= 8)
		return r;
	if (p < 8) {			/* delete, maybe of a missing slot */
		r.memory_size = 0;
	} else if (p < 14) {		/* misaligned */
		switch (below(f, 3)) {
		case 0: r.guest_phys_addr += 1 + below(f, PAGE - 1); break;
		case 1: r.memory_size += 1 + below(f, PAGE - 1); break;
		default: r.userspace_addr += 1 + below(f, PAGE - 1); break;
		}
	} else if (p < 19) {		/* huge: invalid on every tree */
		switch (below(f, 4)) {
		case 0:	/* gpa + size wraps; a non-wrapping GPA beyond the
			 * MMU's max gfn is EINVAL only on newer trees */
			r.guest_phys_addr = -(PAGE * (1 + below(f, r.memory_size / PAGE)));
			break;
		case 1: r.memory_size = (1ULL << 43) + below(f, 8) * PAGE;
			r.userspace_addr = 0x100000000000ULL; break;
		case 2: r.userspace_addr = 0xffff800000000000ULL + below(f, 1 << 20) * PAGE; break;
		default: r.userspace_addr = (1ULL << 57) + below(f, 1 << 20) * PAGE; break;
		}
	} else if (p < 24) {		/* unknown flags (bit 2: GUEST_MEMFD) */
		r.flags |= 1u << (2 + below(f, 30));
		r.guest_memfd = f->vm.fd;	/* not a guest_memfd */
	}
	return r;
}

/*
 * Whether KVM_SET_USER_MEMORY_REGION2 takes KVM_MEM_GUEST_MEMFD on this VM.
 * If it does, a create with that flag on a free range gets as far as binding
 * the guest_memfd, and a file descriptor that is not open fails there with
 * EBADF; if it does not, the flag is refused with EINVAL (ENOTTY without the
 * ioctl). Nothing is created either way.
 */
static bool gmem_flag_accepted(struct vm *vm, uint64_t hva)
{
	reg_t r = mkreg(1, KVM_MEM_GUEST_MEMFD, WIN_BASE, PAGE, hva);

	r.guest_memfd = ~0u;
	return ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION2, &r) && errno == EBADF;
}

/*
 * model_apply() for a batch entry, which means what it means to
 * KVM_SET_USER_MEMORY_REGION2. model_apply() follows
 * KVM_SET_USER_MEMORY_REGION, the ioctl the legacy mode checks it against,
 * which refuses every flag but LOG_DIRTY_PAGES and READONLY before anything
 * else. REGION2 takes KVM_MEM_GUEST_MEMFD too where the VM has guest_memfd
 * (f->gmem): check_memory_region_flags() then refuses LOG_DIRTY_PAGES and
 * READONLY with it, the layout-independent checks follow, a change to an
 * existing slot is EINVAL (guest_memfd slots are immutable), a create that
 * overlaps is EEXIST and only then is the guest_memfd bound: the VM fd that
 * gen_entry() puts there is no guest_memfd, EINVAL.
 */
static int model_entry(const struct fz *f, struct model *m, const reg_t *r,
		       bool dry_run)
{
	reg_t plain = *r;
	int ret;

	if (!f->gmem || !(r->flags & KVM_MEM_GUEST_MEMFD))
		return model_apply(m, r, dry_run);
	if (r->flags & ~KVM_MEM_GUEST_MEMFD)
		return -EINVAL;
	plain.flags = 0;
	if (!r->memory_size)		/* a delete: the flags do not matter */
		return model_apply(m, &plain, dry_run);
	ret = model_apply(m, &plain, true);
	if (ret == -EEXIST && model_find_slot(m, r->slot))
		return -EINVAL;		/* a move: refused before the overlap check */
	return ret ? ret : -EINVAL;	/* EINVAL: existing slot, or the binding */
}

/* model_apply_batch() with model_entry() */
static int model_batch(const struct fz *f, struct model *m, const reg_t *e,
		       uint32_t n, uint32_t *bad_idx)
{
	static struct model tmp;
	int r;

	tmp = *m;
	for (uint32_t i = 0; i < n; i++) {
		r = entry_padding(&e[i]) ? -EINVAL : model_entry(f, &tmp, &e[i], false);
		if (r) {
			*bad_idx = i;
			return r;
		}
	}
	*m = tmp;
	return 0;
}

static int errno_slot(int e)
{
	switch (-e) {
	case EINVAL: return 0;
	case EEXIST: return 1;
	case E2BIG: return 2;
	case EFAULT: return 3;
	default: return 4;
	}
}

static void dump_entries(const reg_t *e, uint32_t n)
{
	for (uint32_t i = 0; i < n && i < 80; i++)
		diag("  [%u] slot %#x flags %#x gpa %#llx size %#llx hva %#llx%s", i,
		     e[i].slot, e[i].flags, (unsigned long long)e[i].guest_phys_addr,
		     (unsigned long long)e[i].memory_size,
		     (unsigned long long)e[i].userspace_addr,
		     entry_padding(&e[i]) ? " (non-zero padding)" : "");
	if (n > 80)
		diag("  ... %u entries", n);
}

FIXTURE(fuzz) {
	struct fz f;
};

FIXTURE_SETUP(fuzz)
{
	struct fz *f = &self->f;
	void *pool, *none;

	ASSERT_EQ(0, vm_create(&f->vm, 1)) TH_LOG("%s", f->vm.err);
	pool = map_mem(POOL_SIZE, PROT_READ | PROT_WRITE);
	none = map_mem(NONE_SIZE, PROT_NONE);
	ASSERT_NE(NULL, pool);
	ASSERT_NE(NULL, none);
	f->pool = (uint64_t)(uintptr_t)pool;
	f->none = (uint64_t)(uintptr_t)none;
	vm_add_pool(&f->vm, pool, POOL_SIZE, true);
	vm_add_pool(&f->vm, none, NONE_SIZE, false);
	f->rng = (kst_opts.seed_set ? kst_opts.seed : DEFAULT_SEED) * 0x9e3779b97f4a7c15ULL + 1;
	f->pseed = 7;
	/* the userspace stand-in makes KVM_SET_USER_MEMORY_REGION calls */
	f->gmem = !batch_emulated() && gmem_flag_accepted(&f->vm, f->pool);
}

FIXTURE_TEARDOWN(fuzz)
{
	vm_destroy(&self->f.vm);
}

static bool budget_left(unsigned long calls, uint64_t t0)
{
	long secs = kst_opts.seconds > 0 ? kst_opts.seconds : DEFAULT_SECONDS;

	if (kst_opts.iters > 0)
		return calls < (unsigned long)kst_opts.iters;
	return now_ns() - t0 < (uint64_t)secs * 1000000000ULL;
}

static void report(struct fz *f, const char *mode, uint64_t t0)
{
	diag("fuzz %s: seed %#x, %lu calls in %.1f s: %lu accepted, EINVAL %lu, EEXIST %lu, "
	     "E2BIG %lu, EFAULT %lu, other %lu; %d slots at the end",
	     mode, kst_opts.seed_set ? kst_opts.seed : DEFAULT_SEED, f->calls,
	     (now_ns() - t0) / 1e9, f->ok, f->errs[0], f->errs[1], f->errs[2],
	     f->errs[3], f->errs[4], f->vm.m.n);
}

#define CHECK_AFTER(what) do {						\
	if (vm_probe(&f->vm, 4, &f->pseed) || vm_check_logflags(&f->vm)) { \
		diag("seed %#x call %lu (%s): layout differs from the model", \
		     kst_opts.seed_set ? kst_opts.seed : DEFAULT_SEED, f->calls, what); \
		ASSERT_TRUE(0) TH_LOG("%s", f->vm.err);		\
	}								\
} while (0)

TEST_F_TIMEOUT(fuzz, legacy, 150)
{
	struct fz *f = &self->f;
	uint64_t t0 = now_ns();

	diag("fuzz legacy: seed %#x (set with -s SEED or KST_SEED)",
	     kst_opts.seed_set ? kst_opts.seed : DEFAULT_SEED);
	while (budget_left(f->calls, t0)) {
		reg_t r = gen_entry(f, &f->vm.m, false);
		int want = model_apply(&f->vm.m, &r, true);
		int got = set_region_legacy(&f->vm, &r);

		f->calls++;
		if (got != want) {
			diag("seed %#x call %lu: kernel %d, model %d", kst_opts.seed_set ?
			     kst_opts.seed : DEFAULT_SEED, f->calls, got, want);
			dump_entries(&r, 1);
			ASSERT_EQ(want, got);
		}
		if (!got) {
			model_apply(&f->vm.m, &r, false);
			f->ok++;
		} else {
			f->errs[errno_slot(got)]++;
		}
		CHECK_AFTER("legacy");
	}
	report(f, "legacy", t0);
}

TEST_F_TIMEOUT(fuzz, batch, 150)
{
	struct fz *f = &self->f;
	struct model *m = &f->vm.m;
	static struct model tmp;
	uint64_t t0 = now_ns();
	uint32_t cap = f->vm.batch_cap;
	reg_t *e;

	if (!cap)
		SKIP(return, "KVM_CAP_USER_MEMORY_REGION_BATCH is 0: kernel without the batch ioctl");
	e = calloc(cap + 2, sizeof(*e));
	ASSERT_NE(NULL, e);
	diag("fuzz batch: seed %#x (set with -s SEED or KST_SEED), cap %u, GUEST_MEMFD flag %s",
	     kst_opts.seed_set ? kst_opts.seed : DEFAULT_SEED, cap,
	     f->gmem ? "taken" : "refused");
	while (budget_left(f->calls, t0)) {
		uint32_t n, flags = 0, bad_idx = 0, batch_as;
		int bad_pos;
		uint64_t reserved = 0;
		int p = below(f, 100), want, alt = 1, got;
		bool doomed = false;

		if (p < 3)
			n = 0;
		else if (p < 88)
			n = 1 + below(f, 8);
		else if (p < 96)
			n = 16 + below(f, 49);
		else
			n = cap - 1 + below(f, 3);		/* cap-1, cap, cap+1 */

		/*
		 * Entries in either address space, mostly the batch's first
		 * one; at most one deliberately bad entry.
		 */
		batch_as = m->nr_as > 1 && chance(f, 10) ? 1 : 0;
		bad_pos = chance(f, 35) && n ? (int)below(f, n) : -1;
		tmp = *m;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t as = m->nr_as > 1 && chance(f, 8) ? !batch_as : batch_as;

			if (n > 64 && (int)i != bad_pos) {	/* keep big batches valid */
				uint32_t id = as << 16 | (1 + below(f, 15));
				const struct mslot *s = model_find_slot(&tmp, id);

				e[i] = s ? mkreg(id, 0, 0, 0, 0) :
					   mkreg(id, 0, rand_gpa(f, PAGE), PAGE, rand_hva(f, PAGE));
			} else if ((int)i == bad_pos) {
				e[i] = gen_entry(f, &tmp, false);
				if (chance(f, 8)) {	/* non-zero padding */
					if (chance(f, 2))
						e[i].pad1 = 1u << below(f, 32);
					else
						e[i].pad2[below(f, 14)] = 1ULL << below(f, 64);
				}
			} else {
				e[i] = gen_entry(f, &tmp, true);
				e[i].slot = as << 16 | (e[i].slot & 0xffff);
			}
			model_entry(f, &tmp, &e[i], false);	/* later entries see earlier ones */
		}
		if (n >= 2 && chance(f, 4)) {		/* doomed: system slot deleted, then a bad entry */
			e[0] = mkreg(SYS_SLOT, 0, 0, 0, 0);
			e[n - 1] = mkreg(3, 0, WIN_BASE + 0x800, PAGE, f->pool);
			doomed = true;
		}
		if (chance(f, 3))
			flags = 1u << below(f, 32);
		if (chance(f, 3))
			reserved = 1ULL << below(f, 64);

		/* what must happen: the entries, in order */
		tmp = *m;
		want = model_batch(f, &tmp, e, n, &bad_idx);
		if (doomed && !want)
			want = -EINVAL;	/* cannot happen: the last entry is misaligned */
		/* the header first, in the documented order, and exactly */
		if (flags || reserved || n == 0 || n > cap)
			alt = 1;
		if (flags || reserved)
			want = -EINVAL;
		else if (n == 0)
			want = 0;
		else if (n > cap)
			want = -E2BIG;

		got = set_region_batch(&f->vm, e, n, flags, reserved);
		f->calls++;
		if (got != want && got != alt) {
			diag("seed %#x call %lu: batch of %u (flags %#x reserved %#llx): kernel %d, expected %d%s (model: entry %u)",
			     kst_opts.seed_set ? kst_opts.seed : DEFAULT_SEED, f->calls, n, flags,
			     (unsigned long long)reserved,
			     got, want, alt != 1 ? " or the alternative" : "", bad_idx);
			dump_entries(e, n);
			ASSERT_EQ(want, got);
		}
		if (!got) {
			if (n && !flags && !reserved && n <= cap)
				*m = tmp;
			f->ok++;
		} else {
			f->errs[errno_slot(got)]++;
		}
		CHECK_AFTER(doomed ? "doomed batch" : "batch");
	}
	free(e);
	report(f, "batch", t0);
}

#define main kst_harness_main
TEST_HARNESS_MAIN
#undef main
KST_MAIN
