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

TEST_F_TIMEOUT(bench, vcpus_1, 200)
{
	bench_run(_metadata, &self->vm, 1);
}

TEST_F_TIMEOUT(bench, vcpus_4, 200)
{
	bench_run(_metadata, &self->vm, 4);
}

#define main kst_harness_main
TEST_HARNESS_MAIN
#undef main
KST_MAIN
