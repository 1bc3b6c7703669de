// SPDX-License-Identifier: GPL-2.0
/*
 * bench: what a memslot update costs, and how long vCPUs stall.
 *
 * vCPUs (1 and 4) run a guest loop that exits to the host with port I/O
 * every 2^k iterations; the host timestamps every exit. For N = 1, 2, 8, 64
 * changes (MOVE of N 64 KiB slots between two positions, away from what the
 * guest touches), rounds are run in three modes:
 *   legacy  N KVM_SET_USER_MEMORY_REGION calls, vCPUs keep running;
 *   stw     QEMU-style stop-the-world: set immediate_exit and signal every
 *           vCPU thread, wait until all are parked outside KVM_RUN, the N
 *           legacy calls, resume;
 *   batch   one KVM_SET_USER_MEMORY_REGION_BATCH with N entries (skipped,
 *           with a note, when the kernel lacks it);
 * plus an idle row (no updates) for the stall baseline.
 * Reported per row as TAP diagnostics: update latency mean and p99, the
 * longest gap between two progress observations of any vCPU, and ratios
 * against legacy. Fails only on harness errors (bad exits, failed ioctls,
 * a vCPU that never ran).
 *
 * The "window" case measures what the rows above leave out: how long a
 * vCPU that reads the updated memory goes without reading it.  A region
 * of N 64 KiB pieces is split (one slot replaced by N) and merged back,
 * in rounds; the vCPU reads its first and its last page and exits with
 * port I/O after every read pair.  The window of a round is the longest
 * time between two exits whose reads both came from memory: with legacy
 * calls it is the hole (the reads exit as MMIO meanwhile), with a batch
 * it is the time the vCPU spins on the slots in flux.  Reported per N as
 * mean, p99 and max, with ratios to legacy; an idle row (no updates)
 * gives the floor.  Fails if a batch round lets a read exit as MMIO;
 * KST_WINDOW_EXPECT_ATOMIC=1 holds the legacy rows to the same rule, the
 * negative control that shows the check can fail.  KST_WINDOW_PIECE_MB=M
 * (1 to 16) makes the pieces M MiB, where preparing the new slots costs
 * more (the rmaps and write tracking of shadow paging); both run the
 * window case alone.
 * -D SECONDS / KST_SECONDS: time per row (default 2).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kselftest_harness.h"
#include "vm.h"

#define SLOT_SIZE	0x10000ULL
#define BENCH_BASE	(WIN_BASE + 0x1000000ULL)
#define MAX_ROUNDS	20000
#define TICK_MASK	0xfff

enum { M_IDLE, M_LEGACY, M_STW, M_BATCH, M_NR };
static const char *mname[] = { "idle", "legacy", "stw", "batch" };

struct bvcpu {
	struct bench *b;
	int idx;
	pthread_t th;
	uint64_t last, max_gap, ticks;
	int error;
	char msg[128];
};

struct bench {
	struct vm *vm;
	int nvcpus;
	struct bvcpu v[MAX_VCPUS];
	volatile int stop, measuring;
	/* stop-the-world */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int park_req, parked;
};

static void sig_kick(int sig) { (void)sig; }

static void *bench_vcpu(void *arg)
{
	struct bvcpu *bv = arg;
	struct bench *b = bv->b;
	struct vcpu *v = &b->vm->vcpu[bv->idx];

	while (!b->stop) {
		int r;

		if (b->park_req) {
			pthread_mutex_lock(&b->lock);
			b->parked++;
			pthread_cond_broadcast(&b->cond);
			while (b->park_req && !b->stop)
				pthread_cond_wait(&b->cond, &b->lock);
			b->parked--;
			v->run->immediate_exit = 0;
			pthread_mutex_unlock(&b->lock);
			continue;
		}
		r = vcpu_run(v);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(bv->msg, sizeof(bv->msg), "KVM_RUN: %s", strerror(errno));
			bv->error = 1;
			return NULL;
		}
		if (v->run->exit_reason != KVM_EXIT_IO || v->run->io.port != PORT_TICK) {
			snprintf(bv->msg, sizeof(bv->msg), "unexpected exit %u", v->run->exit_reason);
			bv->error = 1;
			return NULL;
		}
		{
			uint64_t t = now_ns();

			if (b->measuring && bv->last && t - bv->last > bv->max_gap)
				bv->max_gap = t - bv->last;
			bv->last = t;
			bv->ticks++;
		}
	}
	return NULL;
}

static void stop_world(struct bench *b)
{
	pthread_mutex_lock(&b->lock);
	b->park_req = 1;
	pthread_mutex_unlock(&b->lock);
	for (int i = 0; i < b->nvcpus; i++) {
		b->vm->vcpu[i].run->immediate_exit = 1;
		pthread_kill(b->v[i].th, SIGUSR1);
	}
	pthread_mutex_lock(&b->lock);
	while (b->parked < b->nvcpus)
		pthread_cond_wait(&b->cond, &b->lock);
	pthread_mutex_unlock(&b->lock);
}

static void resume_world(struct bench *b)
{
	pthread_mutex_lock(&b->lock);
	b->park_req = 0;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct row { double mean_us, p99_us, stall_us; long rounds; bool valid; };

static uint64_t lat[MAX_ROUNDS];

/* one row: returns 0 or -errno of a failed update */
static int run_row(struct bench *b, int mode, int n, uint8_t *mem, uint64_t secs,
		   struct row *out, char *err, size_t errlen)
{
	struct kvm_userspace_memory_region2 e[2][64];
	struct vm *vm = b->vm;
	uint64_t t_end, sum = 0;
	long rounds = 0;
	int pos = 1, r = 0;

	/* N slots (ids 10..), at position 0 */
	for (int i = 0; i < n; i++) {
		uint64_t hva = (uint64_t)(uintptr_t)(mem + i * SLOT_SIZE);

		for (int p = 0; p < 2; p++)
			e[p][i] = mkreg(10 + i, 0, BENCH_BASE + i * 2 * SLOT_SIZE + p * SLOT_SIZE,
					SLOT_SIZE, hva);
		r = set_region_legacy(vm, &e[0][i]);
		if (r) {
			snprintf(err, errlen, "create slot %d: %s", 10 + i, strerror(-r));
			return r;
		}
	}
	for (int i = 0; i < b->nvcpus; i++) {
		b->v[i].max_gap = 0;
		b->v[i].last = 0;
	}
	b->measuring = 1;
	t_end = now_ns() + secs * 1000000000ULL;
	while (now_ns() < t_end && rounds < MAX_ROUNDS) {
		uint64_t t0 = now_ns();

		switch (mode) {
		case M_IDLE:
			usleep(200);
			break;
		case M_LEGACY:
			for (int i = 0; i < n && !r; i++)
				r = set_region_legacy(vm, &e[pos][i]);
			break;
		case M_STW:
			stop_world(b);
			for (int i = 0; i < n && !r; i++)
				r = set_region_legacy(vm, &e[pos][i]);
			resume_world(b);
			break;
		case M_BATCH:
			r = set_region_batch(vm, e[pos], n, 0, 0);
			break;
		}
		if (r) {
			snprintf(err, errlen, "%s update: %s", mname[mode], strerror(-r));
			break;
		}
		lat[rounds] = now_ns() - t0;
		sum += lat[rounds];
		rounds++;
		pos ^= 1;
		/* let the vCPUs run a little between rounds, as a VMM would */
		usleep(100);
	}
	b->measuring = 0;
	for (int i = 0; i < n; i++) {
		struct kvm_userspace_memory_region2 d = mkreg(10 + i, 0, 0, 0, 0);

		set_region_legacy(vm, &d);
	}
	if (r)
		return r;
	qsort(lat, rounds, sizeof(lat[0]), cmp_u64);
	out->rounds = rounds;
	out->mean_us = rounds ? sum / 1e3 / rounds : 0;
	out->p99_us = rounds ? lat[(rounds * 99) / 100 >= rounds ? rounds - 1 : (rounds * 99) / 100] / 1e3 : 0;
	out->stall_us = 0;
	for (int i = 0; i < b->nvcpus; i++)
		if (b->v[i].max_gap / 1e3 > out->stall_us)
			out->stall_us = b->v[i].max_gap / 1e3;
	out->valid = true;
	return 0;
}

FIXTURE(bench) {
	struct vm vm;
};

FIXTURE_SETUP(bench)
{
}

FIXTURE_TEARDOWN(bench)
{
	vm_destroy(&self->vm);
}

static void bench_run(struct __test_metadata *_metadata, struct vm *vm, int nvcpus)
{
	static const int ns[] = { 1, 2, 8, 64 };
	static struct row rows[4][M_NR];
	static struct bench b;
	uint64_t secs = kst_opts.seconds > 0 ? kst_opts.seconds : 2;
	struct sigaction sa;
	uint8_t *mem;
	char err[160];

	memset(&b, 0, sizeof(b));
	memset(rows, 0, sizeof(rows));
	ASSERT_EQ(0, vm_create(vm, nvcpus)) TH_LOG("%s", vm->err);
	mem = map_mem(64 * SLOT_SIZE, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, mem);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_kick;	/* no SA_RESTART: KVM_RUN returns EINTR */
	sigaction(SIGUSR1, &sa, NULL);
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.cond, NULL);
	b.vm = vm;
	b.nvcpus = nvcpus;
	for (int i = 0; i < nvcpus; i++) {
		struct kvm_regs regs;

		memset(&regs, 0, sizeof(regs));
		regs.rdi = TICK_MASK;
		ASSERT_EQ(0, vcpu_set_entry(vm, i, guest_entry_spin(), &regs));
		b.v[i].b = &b;
		b.v[i].idx = i;
		ASSERT_EQ(0, pthread_create(&b.v[i].th, NULL, bench_vcpu, &b.v[i]));
	}
	usleep(100000);

	for (unsigned int k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		for (int mode = 0; mode < M_NR; mode++) {
			int r;

			if (mode == M_BATCH && !vm->batch_cap)
				continue;
			if (mode == M_IDLE && k)
				continue;
			r = run_row(&b, mode, ns[k], mem, secs, &rows[k][mode], err, sizeof(err));
			if (r) {
				b.stop = 1;
				resume_world(&b);
				for (int i = 0; i < nvcpus; i++)
					pthread_kill(b.v[i].th, SIGUSR1);
				ASSERT_EQ(0, r) TH_LOG("%s", err);
			}
		}
	}
	b.stop = 1;
	resume_world(&b);
	for (int i = 0; i < nvcpus; i++) {
		vm->vcpu[i].run->immediate_exit = 1;
		pthread_kill(b.v[i].th, SIGUSR1);
		pthread_join(b.v[i].th, NULL);
	}
	for (int i = 0; i < nvcpus; i++) {
		ASSERT_EQ(0, b.v[i].error) TH_LOG("vCPU %d: %s", i, b.v[i].msg);
		ASSERT_LT(0ULL, (unsigned long long)b.v[i].ticks) TH_LOG("vCPU %d never ran", i);
	}

	diag("bench: %d vCPU(s), %llu s per row, latency of one update of N changes (us), "
	     "longest vCPU stall (us); x = ratio to legacy", nvcpus, (unsigned long long)secs);
	diag("%4s %-7s %7s %10s %10s %10s %8s %8s", "N", "mode", "rounds", "mean", "p99",
	     "stall", "mean x", "stall x");
	diag("%4s %-7s %7ld %10s %10s %10.0f %8s %8s", "-", "idle", rows[0][M_IDLE].rounds,
	     "-", "-", rows[0][M_IDLE].stall_us, "-", "-");
	for (unsigned int k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		struct row *lg = &rows[k][M_LEGACY];

		for (int mode = M_LEGACY; mode < M_NR; mode++) {
			struct row *rw = &rows[k][mode];

			if (!rw->valid) {
				diag("%4d %-7s %7s (KVM_CAP_USER_MEMORY_REGION_BATCH is 0: not measured)",
				     ns[k], mname[mode], "-");
				continue;
			}
			diag("%4d %-7s %7ld %10.1f %10.1f %10.0f %8.2f %8.2f", ns[k], mname[mode],
			     rw->rounds, rw->mean_us, rw->p99_us, rw->stall_us,
			     lg->mean_us ? rw->mean_us / lg->mean_us : 0,
			     lg->stall_us ? rw->stall_us / lg->stall_us : 0);
		}
	}
}

/* ---- window ---- */

/*
 * KST_WINDOW_EXPECT_ATOMIC=1: the negative control of the window case.
 * The legacy rows are held to the rule of the batch rows (no read exits
 * as MMIO), so the case must fail; the other cases skip.
 */
static bool window_control(void)
{
	return env_int("KST_WINDOW_EXPECT_ATOMIC", 0);
}

/*
 * KST_WINDOW_PIECE_MB=M: the window case with pieces of M MiB instead of
 * 64 KiB (the region is N * M MiB), where preparing a new slot costs more
 * (rmaps and write tracking with shadow paging); the other cases skip.
 */
static uint64_t window_piece(void)
{
	int mb = env_int("KST_WINDOW_PIECE_MB", 0);

	return mb > 0 && mb <= 16 ? (uint64_t)mb << 20 : SLOT_SIZE;
}

static bool window_only(void)
{
	return window_control() || window_piece() != SLOT_SIZE;
}

#define WBASE		(BENCH_BASE + 0x1000000ULL)	/* N pieces of window_piece() */
#define WCOUNTER	(MBOX_GPA + 0x100)		/* the loop's "incl" */
#define WSLOT_WHOLE	100
#define WSLOT_PIECE	101

struct wctx {
	struct vm *vm;
	uint64_t piece;
	pthread_t th;
	volatile int stop;
	int bad;			/* a read of this iteration exited */
	uint64_t last_good;
	uint64_t round_max;		/* longest gap between good exits */
	uint64_t good_at;		/* time of the last good exit */
	uint64_t mmio;			/* reads that exited as MMIO */
	int error;
	char msg[128];
};

static void *window_vcpu(void *arg)
{
	struct wctx *w = arg;
	struct vcpu *v = &w->vm->vcpu[0];
	struct kvm_run *run = v->run;

	while (!w->stop) {
		int r = vcpu_run(v);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(w->msg, sizeof(w->msg), "KVM_RUN: %s", strerror(errno));
			w->error = 1;
			return NULL;
		}
		if (run->exit_reason == KVM_EXIT_MMIO && !run->mmio.is_write &&
		    run->mmio.phys_addr >= WBASE && run->mmio.phys_addr < WBASE + 64 * w->piece) {
			uint32_t val = MMIO_MARK;

			memcpy(run->mmio.data, &val, sizeof(val));
			w->bad = 1;
			__atomic_add_fetch(&w->mmio, 1, __ATOMIC_RELAXED);
			continue;
		}
		if (run->exit_reason != KVM_EXIT_IO || run->io.port != PORT_TICK) {
			snprintf(w->msg, sizeof(w->msg), "unexpected exit %u", run->exit_reason);
			w->error = 1;
			return NULL;
		}
		if (!w->bad) {
			uint64_t t = now_ns(), gap = w->last_good ? t - w->last_good : 0;
			uint64_t cur = __atomic_load_n(&w->round_max, __ATOMIC_RELAXED);

			while (gap > cur &&
			       !__atomic_compare_exchange_n(&w->round_max, &cur, gap, false,
							    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
				;
			w->last_good = t;
			__atomic_store_n(&w->good_at, t, __ATOMIC_RELEASE);
		}
		w->bad = 0;
	}
	return NULL;
}

/* wait for two good exits after now: the guest has loaded the mailbox anew */
static int window_settle(struct wctx *w)
{
	uint64_t t = now_ns(), t0 = t;

	for (int i = 0; i < 2; i++) {
		while (__atomic_load_n(&w->good_at, __ATOMIC_ACQUIRE) <= t) {
			if (w->error || now_ns() - t0 > 1000000000ULL)
				return -ETIMEDOUT;
			usleep(20);
		}
		t = __atomic_load_n(&w->good_at, __ATOMIC_ACQUIRE);
	}
	return 0;
}

struct wrow { double upd_us, mean_us, p99_us, max_us; long rounds; uint64_t mmio; bool valid; };

static uint64_t wwin[MAX_ROUNDS];

/*
 * One row of the window case: split and merge N pieces in @mode until
 * @secs pass.  Returns 0, -errno of a failed update, or -ETIMEDOUT if the
 * vCPU made no good read for a second after an update.
 */
static int window_row(struct wctx *w, int mode, int n, uint64_t hva, uint64_t secs,
		      struct wrow *out, char *err, size_t errlen)
{
	struct kvm_userspace_memory_region2 split[65], merge[65];
	struct vm *vm = w->vm;
	uint32_t *mb = (uint32_t *)(vm->sys + MBOX_GPA);
	uint64_t t_end, upd = 0, sum = 0, mmio0;
	long rounds = 0;
	int r = 0;

	split[0] = mkreg(WSLOT_WHOLE, 0, 0, 0, 0);
	merge[n] = mkreg(WSLOT_WHOLE, 0, WBASE, n * w->piece, hva);
	for (int i = 0; i < n; i++) {
		split[1 + i] = mkreg(WSLOT_PIECE + i, 0, WBASE + i * w->piece, w->piece,
				     hva + i * w->piece);
		merge[i] = mkreg(WSLOT_PIECE + i, 0, 0, 0, 0);
	}
	r = set_region_legacy(vm, &merge[n]);
	if (r) {
		snprintf(err, errlen, "create the region: %s", strerror(-r));
		return r;
	}
	mb[MB_READ_A] = WBASE;
	mb[MB_READ_B] = WBASE + n * w->piece - PAGE;
	if (window_settle(w)) {
		snprintf(err, errlen, "no read from memory for 1 s after creating the region");
		return -ETIMEDOUT;
	}
	mmio0 = __atomic_load_n(&w->mmio, __ATOMIC_RELAXED);
	__atomic_store_n(&w->round_max, 0, __ATOMIC_RELAXED);
	t_end = now_ns() + secs * 1000000000ULL;
	while (now_ns() < t_end && rounds < MAX_ROUNDS) {
		struct kvm_userspace_memory_region2 *e = rounds & 1 ? merge : split;
		uint64_t t0 = now_ns(), t1;

		switch (mode) {
		case M_IDLE:
			usleep(200);
			break;
		case M_LEGACY:
			for (int i = 0; i <= n && !r; i++)
				r = set_region_legacy(vm, &e[i]);
			break;
		case M_BATCH:
			r = set_region_batch(vm, e, n + 1, 0, 0);
			break;
		}
		t1 = now_ns();
		if (r) {
			snprintf(err, errlen, "%s update: %s", mname[mode], strerror(-r));
			break;
		}
		/* the round ends with a good read after the update */
		while (__atomic_load_n(&w->good_at, __ATOMIC_ACQUIRE) <= t1 && !w->error) {
			if (now_ns() - t1 > 1000000000ULL) {
				snprintf(err, errlen, "%s: no read from memory for 1 s after round %ld",
					 mname[mode], rounds);
				r = -ETIMEDOUT;
				break;
			}
			usleep(20);
		}
		if (r || w->error)
			break;
		wwin[rounds] = __atomic_exchange_n(&w->round_max, 0, __ATOMIC_RELAXED);
		sum += wwin[rounds];
		upd += t1 - t0;
		rounds++;
	}
	out->mmio = __atomic_load_n(&w->mmio, __ATOMIC_RELAXED) - mmio0;
	/* the guest reads the system slot again; back to the whole region, remove it */
	mb[MB_READ_A] = mb[MB_READ_B] = WCOUNTER;
	if (!r && window_settle(w)) {
		snprintf(err, errlen, "no read from memory for 1 s after row %s N = %d",
			 mname[mode], n);
		r = -ETIMEDOUT;
	}
	if (rounds & 1)
		for (int i = 0; i <= n; i++)
			set_region_legacy(vm, &merge[i]);
	set_region_legacy(vm, &split[0]);
	if (r)
		return r;
	qsort(wwin, rounds, sizeof(wwin[0]), cmp_u64);
	out->rounds = rounds;
	out->upd_us = rounds ? upd / 1e3 / rounds : 0;
	out->mean_us = rounds ? sum / 1e3 / rounds : 0;
	out->p99_us = rounds ? wwin[(rounds * 99) / 100] / 1e3 : 0;
	out->max_us = rounds ? wwin[rounds - 1] / 1e3 : 0;
	out->valid = true;
	return 0;
}

TEST_F_TIMEOUT(bench, window, 300)
{
	static const int ns[] = { 1, 8, 64 };
	static struct wrow rows[3][M_NR];
	static struct wctx w;
	struct sigaction sa;
	uint64_t secs = kst_opts.seconds > 0 ? kst_opts.seconds : 2;
	struct kvm_regs regs;
	uint32_t *page, *mb;
	uint8_t *mem;
	char err[160];
	int r = 0;

	memset(&w, 0, sizeof(w));
	memset(rows, 0, sizeof(rows));
	ASSERT_EQ(0, vm_create(&self->vm, 1)) TH_LOG("%s", self->vm.err);
	mb = (uint32_t *)(self->vm.sys + MBOX_GPA);
	if (!self->vm.batch_cap)
		SKIP(return, "KVM_CAP_USER_MEMORY_REGION_BATCH is 0: kernel without the batch ioctl");
	w.piece = window_piece();
	mem = map_mem(64 * w.piece, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, mem);
	/* a signature in every page the guest reads; it checks nothing */
	page = (uint32_t *)mem;
	*page = 0x5157a000u;
	for (unsigned int k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		page = (uint32_t *)(mem + ns[k] * w.piece - PAGE);
		*page = 0x5157a000u;
	}
	mb[MB_SIG_A] = 0x5157a000u;
	mb[MB_SIG_B] = 0x5157a000u;
	mb[MB_COUNTER] = WCOUNTER;
	mb[MB_CALL] = 0;
	mb[MB_TICK_MASK] = 0;		/* exit after every read pair */
	w.vm = &self->vm;
	mb[MB_READ_A] = mb[MB_READ_B] = WCOUNTER;	/* until a row sets them */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_kick;	/* no SA_RESTART: KVM_RUN returns EINTR */
	sigaction(SIGUSR1, &sa, NULL);
	memset(&regs, 0, sizeof(regs));
	ASSERT_EQ(0, vcpu_set_entry(&self->vm, 0, guest_entry_hole(), &regs));
	ASSERT_EQ(0, pthread_create(&w.th, NULL, window_vcpu, &w));

	for (unsigned int k = 0; k < sizeof(ns) / sizeof(ns[0]) && !r; k++)
		for (int mode = M_IDLE; mode < M_NR && !r; mode++) {
			if (mode == M_STW || (mode == M_IDLE && k))
				continue;
			r = window_row(&w, mode, ns[k], (uint64_t)(uintptr_t)mem, secs,
				       &rows[k][mode], err, sizeof(err));
		}
	w.stop = 1;
	self->vm.vcpu[0].run->immediate_exit = 1;
	pthread_kill(w.th, SIGUSR1);
	pthread_join(w.th, NULL);
	ASSERT_EQ(0, w.error) TH_LOG("vCPU: %s", w.msg);
	ASSERT_EQ(0, r) TH_LOG("%s", err);

	diag("window: 1 vCPU reading the first and last page of a region split into N "
	     "pieces of %llu KiB and merged back, %llu s per row; window = longest time "
	     "between two reads from memory, per round (us); x = ratio to legacy",
	     (unsigned long long)(w.piece >> 10), (unsigned long long)secs);
	diag("%4s %-7s %7s %10s %10s %10s %10s %8s %8s %8s", "N", "mode", "rounds", "update",
	     "win mean", "win p99", "win max", "MMIO", "mean x", "p99 x");
	diag("%4s %-7s %7ld %10s %10.1f %10.1f %10.1f %8llu %8s %8s", "-", "idle",
	     rows[0][M_IDLE].rounds, "-", rows[0][M_IDLE].mean_us, rows[0][M_IDLE].p99_us,
	     rows[0][M_IDLE].max_us, (unsigned long long)rows[0][M_IDLE].mmio, "-", "-");
	for (unsigned int k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		struct wrow *lg = &rows[k][M_LEGACY];

		for (int mode = M_LEGACY; mode < M_NR; mode++) {
			struct wrow *rw = &rows[k][mode];

			if (mode == M_STW)
				continue;
			diag("%4d %-7s %7ld %10.1f %10.1f %10.1f %10.1f %8llu %8.2f %8.2f", ns[k],
			     mname[mode], rw->rounds, rw->upd_us, rw->mean_us, rw->p99_us,
			     rw->max_us, (unsigned long long)rw->mmio,
			     lg->mean_us ? rw->mean_us / lg->mean_us : 0,
			     lg->p99_us ? rw->p99_us / lg->p99_us : 0);
		}
	}
	for (unsigned int k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		int n = ns[k];

		EXPECT_EQ(0ULL, (unsigned long long)rows[k][M_BATCH].mmio)
			TH_LOG("N = %d: a batch let a read of memory that stays backed exit as MMIO",
			       n);
		/* negative control: the legacy calls must break the same rule */
		if (window_control())
			EXPECT_EQ(0ULL, (unsigned long long)rows[k][M_LEGACY].mmio)
				TH_LOG("N = %d: the legacy calls let a read of memory that stays backed exit as MMIO",
				       n);
	}
}

TEST_F_TIMEOUT(bench, vcpus_1, 200)
{
	if (window_only())
		SKIP(return, "KST_WINDOW_EXPECT_ATOMIC or KST_WINDOW_PIECE_MB: only the window case runs");
	bench_run(_metadata, &self->vm, 1);
}

TEST_F_TIMEOUT(bench, vcpus_4, 200)
{
	if (window_only())
		SKIP(return, "KST_WINDOW_EXPECT_ATOMIC or KST_WINDOW_PIECE_MB: only the window case runs");
	bench_run(_metadata, &self->vm, 4);
}

#define main kst_harness_main
TEST_HARNESS_MAIN
#undef main
KST_MAIN
