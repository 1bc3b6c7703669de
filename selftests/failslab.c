// SPDX-License-Identifier: GPL-2.0
/*
 * failslab: allocation failures inside memslot updates.
 *
 * With failslab and fail_page_alloc armed for GFP_KERNEL allocations
 * (ignore-gfp-wait=N, min-order=0, verbose=0), /proc/self/task/<tid>/fail-nth
 * fails the n-th allocation of the next call. For n = 1, 2, ... until a call
 * completes without consuming the injected failure:
 *   - a failed call must return an error and leave the layout unchanged;
 *   - a call that succeeds must produce the expected layout.
 * At least one failure must have been injected, or the test proves nothing.
 *
 * legacy_*: the same loop around single KVM_SET_USER_MEMORY_REGION calls
 *	(create, move, flags, delete): the baseline, runs on every tree.
 * batch: a batch that splits a slot, moves one, toggles logging on a third
 *	and creates a fourth. SKIP when the batch ioctl is missing.
 * Everything SKIPs when the kernel has no fault injection.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vm.h"

#define MiB		(1024ULL * 1024)
#define POOL_SIZE	(16 * MiB)
#define MAX_NTH		4000

typedef struct kvm_userspace_memory_region2 reg_t;

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY), r;

	if (fd < 0)
		return -errno;
	r = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -errno;
	close(fd);
	return r;
}

static long read_long(const char *path)
{
	char buf[32] = { 0 };
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 0) : -1;
}

static char nth_path[64];

/* arm fault injection; 0 or a reason to skip */
static const char *arm(void)
{
	static const char *knobs[][2] = {
		{ "/sys/kernel/debug/failslab/ignore-gfp-wait", "N" },
		{ "/sys/kernel/debug/failslab/verbose", "0" },
		{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "N" },
		{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem", "N" },
		{ "/sys/kernel/debug/fail_page_alloc/min-order", "0" },
		{ "/sys/kernel/debug/fail_page_alloc/verbose", "0" },
	};
	struct stat st;

	snprintf(nth_path, sizeof(nth_path), "/proc/self/task/%ld/fail-nth",
		 (long)syscall(SYS_gettid));
	if (stat(nth_path, &st))
		return "no /proc/self/task/<tid>/fail-nth: kernel without CONFIG_FAULT_INJECTION";
	if (stat("/sys/kernel/debug/failslab", &st))
		mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	if (stat("/sys/kernel/debug/failslab", &st))
		return "no /sys/kernel/debug/failslab: kernel without CONFIG_FAILSLAB or CONFIG_FAULT_INJECTION_DEBUG_FS";
	for (unsigned int i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
		if (!strncmp(knobs[i][0], "/sys/kernel/debug/fail_page_alloc", 33) &&
		    stat("/sys/kernel/debug/fail_page_alloc", &st))
			continue;	/* failslab alone still works */
		if (write_str(knobs[i][0], knobs[i][1]))
			return "cannot configure fault injection in debugfs";
	}
	return NULL;
}

static void disarm(void)
{
	write_str("/sys/kernel/debug/failslab/ignore-gfp-wait", "Y");
	write_str("/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "Y");
	write_str("/sys/kernel/debug/fail_page_alloc/min-order", "1");
}

FIXTURE(fs) {
	struct vm vm;
	uint8_t *pool;
	uint64_t h;
	unsigned int seed;
	const char *skip;
};

static int base_layout(struct vm *vm, uint64_t h)
{
	reg_t base[] = {
		mkreg(1, 0, WIN_BASE, 2 * MiB, h),
		mkreg(2, 0, WIN_BASE + 4 * MiB, MiB, h + 4 * MiB),
		mkreg(3, 0, WIN_BASE + 6 * MiB, MiB, h + 6 * MiB),
	};
	int r = vm_create(vm, 1);

	if (r)
		return r;
	vm_add_pool(vm, (void *)(uintptr_t)h, POOL_SIZE, true);
	for (int i = 0; i < 3; i++) {
		r = set_region_legacy(vm, &base[i]);
		if (r)
			return r;
		model_apply(&vm->m, &base[i], false);
	}
	return 0;
}

FIXTURE_SETUP(fs)
{
	self->pool = map_mem(POOL_SIZE, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, self->pool);
	self->h = (uint64_t)(uintptr_t)self->pool;
	ASSERT_EQ(0, base_layout(&self->vm, self->h)) TH_LOG("%s", self->vm.err);
	self->seed = 3;
	self->skip = arm();
}

FIXTURE_TEARDOWN(fs)
{
	disarm();
	vm_destroy(&self->vm);
}

/*
 * The fail-nth loop around one call doing @e[0..n) (one batch, or n legacy
 * calls). Nothing between arming fail-nth and the ioctl may allocate or
 * fault (a failed user page fault would invoke the OOM path): buffers are
 * built and touched before.
 */
static void nth_loop(struct __test_metadata *_metadata, struct vm *vm, uint64_t h,
		     unsigned int *seed, const char *what, bool batch,
		     const reg_t *e, uint32_t n)
{
	struct kvm_userspace_memory_region_batch *b = batch_new(e, n, 0, 0);
	struct model base = vm->m, want = vm->m;
	unsigned long failed = 0, absorbed = 0;
	char buf[16];
	int nth, r = -1;
	long left = 0;

	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, model_apply_batch(&want, e, n, NULL));
	for (nth = 1; nth <= MAX_NTH; nth++) {
		snprintf(buf, sizeof(buf), "%d", nth);
		ASSERT_EQ(0, write_str(nth_path, buf));
		if (batch) {
			r = batch_ioctl(vm, b);
		} else {
			r = 0;
			for (uint32_t i = 0; i < n && !r; i++)
				r = set_region_legacy(vm, &e[i]);
		}
		left = read_long(nth_path);
		write_str(nth_path, "0");
		if (r) {
			failed++;
			ASSERT_EQ(0, left) TH_LOG("%s: call failed (%s) without an injected failure",
						  what, strerror(-r));
			if (!batch && n > 1)	/* earlier legacy calls did apply */
				ASSERT_TRUE(0) TH_LOG("multi-call legacy loops are not supported");
			ASSERT_EQ(0, vm_probe(vm, 4, seed))
				TH_LOG("%s: injected failure %d (%s) changed the layout: %s",
				       what, nth, strerror(-r), vm->err);
			ASSERT_EQ(0, vm_check_logflags(vm)) TH_LOG("%s: %s", what, vm->err);
			continue;
		}
		vm->m = want;
		ASSERT_EQ(0, vm_probe(vm, 4, seed))
			TH_LOG("%s: success at fail-nth %d, wrong layout: %s", what, nth, vm->err);
		ASSERT_EQ(0, vm_check_logflags(vm)) TH_LOG("%s: %s", what, vm->err);
		if (left)
			break;		/* the n-th allocation was never reached: done */
		/* a failure the kernel absorbed: start over from the base layout */
		absorbed++;
		vm_destroy(vm);
		ASSERT_EQ(0, base_layout(vm, h)) TH_LOG("%s", vm->err);
		ASSERT_EQ(0, memcmp(&base, &vm->m, sizeof(base)));
		r = -1;
	}
	free(b);
	diag("%s: %d fail-nth steps: %lu calls failed cleanly, %lu failures absorbed",
	     what, nth, failed, absorbed);
	ASSERT_EQ(0, r) TH_LOG("%s: still failing after %d steps", what, MAX_NTH);
	ASSERT_LT(0UL, failed) TH_LOG("%s: no failure was ever injected", what);
}

TEST_F_TIMEOUT(fs, legacy_create, 200)
{
	reg_t e = mkreg(5, 0, WIN_BASE + 8 * MiB, 2 * MiB, self->h + 8 * MiB);

	if (self->skip)
		SKIP(return, "%s", self->skip);
	nth_loop(_metadata, &self->vm, self->h, &self->seed, "legacy create", false, &e, 1);
}

TEST_F_TIMEOUT(fs, legacy_move, 200)
{
	reg_t e = mkreg(2, 0, WIN_BASE + 10 * MiB, MiB, self->h + 4 * MiB);

	if (self->skip)
		SKIP(return, "%s", self->skip);
	nth_loop(_metadata, &self->vm, self->h, &self->seed, "legacy move", false, &e, 1);
}

TEST_F_TIMEOUT(fs, legacy_log_on, 200)
{
	reg_t e = mkreg(3, KVM_MEM_LOG_DIRTY_PAGES, WIN_BASE + 6 * MiB, MiB, self->h + 6 * MiB);

	if (self->skip)
		SKIP(return, "%s", self->skip);
	nth_loop(_metadata, &self->vm, self->h, &self->seed, "legacy dirty logging on", false, &e, 1);
}

TEST_F_TIMEOUT(fs, batch, 250)
{
	uint64_t h = self->h;
	reg_t e[] = {
		mkreg(1, 0, 0, 0, 0),						/* split 1 */
		mkreg(1, 0, WIN_BASE, MiB, h),
		mkreg(4, 0, WIN_BASE + MiB, MiB, h + MiB),
		mkreg(2, 0, WIN_BASE + 10 * MiB, MiB, h + 4 * MiB),		/* move 2 */
		mkreg(3, KVM_MEM_LOG_DIRTY_PAGES, WIN_BASE + 6 * MiB, MiB, h + 6 * MiB),
		mkreg(5, 0, WIN_BASE + 12 * MiB, 2 * MiB, h + 8 * MiB),	/* create */
	};

	if (!self->vm.batch_cap)
		SKIP(return, "KVM_CAP_USER_MEMORY_REGION_BATCH is 0: kernel without the batch ioctl");
	if (self->skip)
		SKIP(return, "%s", self->skip);
	nth_loop(_metadata, &self->vm, self->h, &self->seed, "batch", true, e, 6);
}

#define main kst_harness_main
TEST_HARNESS_MAIN
#undef main
KST_MAIN
