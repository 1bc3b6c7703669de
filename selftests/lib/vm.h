/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers of the top-level conformance suite for
 * KVM_SET_USER_MEMORY_REGION_BATCH: uapi fallbacks for old trees, a tiny VM
 * with a 32-bit paged guest, a userspace model of the memslot layout and a
 * layout probe that checks KVM's real layout against that model.
 *
 * Raw KVM uapi only; nothing here is shared with tools/testing/selftests/kvm.
 */
#ifndef KST_VM_H
#define KST_VM_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <linux/kvm.h>

/*
 * ---- uapi fallbacks: 5.10 and 6.1 headers have no region2 ----
 * The batch stacks for 6.1.y and 5.10.y define the struct (the batch's
 * entries) without the KVM_SET_USER_MEMORY_REGION2 ioctl.
 */
#if !defined(KVM_SET_USER_MEMORY_REGION2) && !defined(KVM_SET_USER_MEMORY_REGION_BATCH)
struct kvm_userspace_memory_region2 {
	__u32 slot;
	__u32 flags;
	__u64 guest_phys_addr;
	__u64 memory_size;
	__u64 userspace_addr;
	__u64 guest_memfd_offset;
	__u32 guest_memfd;
	__u32 pad1;
	__u64 pad2[14];
};
#endif
#ifndef KVM_SET_USER_MEMORY_REGION2
#define KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, \
					 struct kvm_userspace_memory_region2)
#endif
#ifndef KVM_MEM_READONLY
#define KVM_MEM_READONLY	(1UL << 1)
#endif
#ifndef KVM_MEM_GUEST_MEMFD
#define KVM_MEM_GUEST_MEMFD	(1UL << 2)
#endif
#ifndef KVM_CAP_USER_MEMORY_REGION_BATCH
#define KVM_CAP_USER_MEMORY_REGION_BATCH 252
#endif
#ifndef KVM_SET_USER_MEMORY_REGION_BATCH
struct kvm_userspace_memory_region_batch {
	__u32 nent;
	__u32 flags;
	__u64 reserved;
	struct kvm_userspace_memory_region2 entries[];
};
#define KVM_SET_USER_MEMORY_REGION_BATCH \
	_IOW(KVMIO, 0x4a, struct kvm_userspace_memory_region_batch)
#endif

_Static_assert(sizeof(struct kvm_userspace_memory_region2) == 160,
	       "kvm_userspace_memory_region2 layout");
_Static_assert(sizeof(struct kvm_userspace_memory_region_batch) == 16,
	       "kvm_userspace_memory_region_batch layout");

/* ---- guest physical layout ---- */
#define PAGE		4096ULL
#define SYS_SLOT	0		/* id of the system slot (code, stack) */
#define SYS_GPA		0x0ULL
#define SYS_SIZE	0x200000ULL	/* 2 MiB */
#define PD_GPA		0x1000ULL	/* one PSE page directory */
#define CODE_GPA	0x2000ULL
#define MBOX_GPA	0x8000ULL	/* u32 mailbox words, see MB_* */
#define PROBE_GPA	0x10000ULL	/* probe entries */
#define PROBE_MAX	((0x100000ULL - PROBE_GPA) / sizeof(struct probe_ent))
#define STACK_TOP(i)	(0x1ff000ULL - (uint64_t)(i) * 0x10000ULL)

/* All test slots live in [WIN_BASE, WIN_BASE + WIN_SIZE). */
#define WIN_BASE	0x10000000ULL
#define WIN_SIZE	0x04000000ULL	/* 64 MiB */

/* mailbox word indexes (u32) for the hole loop; keep in sync with vm.c */
enum { MB_READ_A, MB_READ_B, MB_SIG_A, MB_SIG_B, MB_COUNTER, MB_CALL,
       MB_TICK_MASK, MB_NR };

/* I/O ports used by the guest */
#define PORT_DONE	0x10
#define PORT_TICK	0x11

#define MMIO_MARK	0xdeadbeefu	/* value returned for MMIO reads */

#define MAX_VCPUS	8

struct probe_ent {		/* shared with the guest, 12 bytes */
	uint32_t gpa;
	uint32_t op;		/* 0 read, 1 write */
	uint32_t val;		/* read result / value to write */
};

/* ---- model of the memslot layout ---- */
struct mslot {
	uint32_t slot;		/* as_id << 16 | id */
	uint32_t flags;
	uint64_t gpa, size, hva;
};

#define MODEL_MAX 1024
struct model {
	int n;
	struct mslot s[MODEL_MAX];
	/* limits read from the kernel */
	uint32_t nr_slots;	/* KVM_CAP_NR_MEMSLOTS */
	uint32_t nr_as;		/* KVM_CAP_MULTI_ADDRESS_SPACE (>= 1) */
};

struct vcpu {
	int fd;
	int id;
	struct kvm_run *run;
};

struct vm {
	int kvm_fd, fd;
	uint8_t *sys;		/* host memory of the system slot */
	int nvcpus;
	struct vcpu vcpu[MAX_VCPUS];
	long run_size;
	int batch_cap;		/* KVM_CAP_USER_MEMORY_REGION_BATCH */
	struct model m;		/* what the layout should be */
	int npools;
	struct { uint64_t base, len; bool rw; } pool[8];
	uint32_t nonce;
	char err[1536];		/* last helper error, for TH_LOG */
};

/* guest entry points (GPA) */
uint32_t guest_entry_probe(void);
uint32_t guest_entry_probe_next(void);
uint32_t guest_entry_hole(void);
uint32_t guest_entry_spin(void);
/* 2-byte stub "inc %edx; ret", to be copied into test memory and called */
extern const uint8_t guest_stub[2];

/* ---- VM lifecycle ---- */
int vm_create(struct vm *vm, int nvcpus);	/* 0 or -errno, vm->err set */
void vm_destroy(struct vm *vm);
int kvm_available(char *why, size_t len);	/* 1 if /dev/kvm works */

/* set the vCPU to start at @eip with the given GPRs, flat 32-bit paged */
int vcpu_set_entry(struct vm *vm, int i, uint32_t eip, const struct kvm_regs *gprs);
int vcpu_run(struct vcpu *v);		/* ioctl result, errno kept */

/* ---- memslot calls: raw ioctls, return 0 or -errno ---- */
int set_region_legacy(struct vm *vm, const struct kvm_userspace_memory_region2 *r);
int set_region_batch(struct vm *vm, const struct kvm_userspace_memory_region2 *e,
		     uint32_t nent, uint32_t flags, uint64_t reserved);
/* the batch as one buffer (calloc), and the bare ioctl on it */
struct kvm_userspace_memory_region_batch *
batch_new(const struct kvm_userspace_memory_region2 *e, uint32_t nent,
	  uint32_t flags, uint64_t reserved);
int batch_ioctl(struct vm *vm, struct kvm_userspace_memory_region_batch *b);
/* KST_EMULATE_BATCH=1: userspace stand-in, to check the suite itself */
bool batch_emulated(void);
struct kvm_userspace_memory_region2 mkreg(uint32_t slot, uint32_t flags,
					  uint64_t gpa, uint64_t size, uint64_t hva);

/* ---- model ---- */
int model_apply(struct model *m, const struct kvm_userspace_memory_region2 *r,
		bool dry_run);			/* 0 or -errno like the kernel */
/* batch: -errno of first failing entry (with *bad_idx), model untouched on error */
bool entry_padding(const struct kvm_userspace_memory_region2 *e);
int model_apply_batch(struct model *m, const struct kvm_userspace_memory_region2 *e,
		      uint32_t n, uint32_t *bad_idx);
const struct mslot *model_find_gpa(const struct model *m, uint32_t as, uint64_t gpa);
const struct mslot *model_find_slot(const struct model *m, uint32_t slot);
void model_dump(const struct model *m, char *buf, size_t len);

/*
 * Layout probe: for every AS0 slot of the model, read its first and last
 * page (expect the signature just written to the backing page), write its
 * first page (expect memory for RW slots, an MMIO write exit for READONLY
 * ones), read the pages around it that the model says are holes (expect an
 * MMIO exit with that exact address) and @extra_holes random hole pages of
 * the window. Returns 0 if KVM agrees with vm->m, else -1 with vm->err
 * describing the first disagreement. Uses vCPU 0, which must be idle.
 */
int vm_probe(struct vm *vm, int extra_holes, unsigned int *seed);

/*
 * KVM_GET_DIRTY_LOG on ids 0..63 of each address space: 0 for slots the
 * model has with LOG_DIRTY_PAGES, ENOENT for the others (missing or not
 * logged). Checks slot ids and the logging flag, which the probe cannot
 * see. Consumes dirty bits.
 */
int vm_check_logflags(struct vm *vm);
int vm_get_dirty(struct vm *vm, uint32_t slot, uint64_t *bitmap);	/* 0/-errno */
/* run the probe routine over explicit GPAs; -1 unless it ends without exits */
int vm_guest_access(struct vm *vm, const uint32_t *gpa, const uint32_t *op, int n);

/*
 * Host memory the probe may use: pools registered here are either RW
 * (signatures are written there) or PROT_NONE (a guest access must fail
 * with EFAULT, not exit as MMIO). Pages outside every pool are not probed.
 */
int vm_add_pool(struct vm *vm, void *base, size_t len, bool accessible);

/* a page-aligned anonymous mapping; prot 0 reserves PROT_NONE space */
void *map_mem(size_t len, int prot);

/* misc */
uint64_t now_ns(void);
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint32_t page_sig(uint64_t hva);
int env_int(const char *name, int def);

/*
 * Take our own options (-s SEED, -n ITERATIONS, -D SECONDS) out of argv so
 * that every tree's kselftest harness accepts the rest. Environment
 * variables KST_SEED, KST_ITERS, KST_SECONDS do the same.
 */
struct kst_opts {
	bool seed_set;
	unsigned int seed;
	long iters;
	long seconds;
};
extern struct kst_opts kst_opts;
void kst_parse_opts(int *argc, char **argv);

/*
 * main() for every test binary: our options out of argv, a whole-binary
 * SKIP (exit 4) when /dev/kvm is unusable, then the tree's harness. Use as
 *
 *	#define main kst_harness_main
 *	TEST_HARNESS_MAIN
 *	#undef main
 *	KST_MAIN
 *
 * (every tree's TEST_HARNESS_MAIN defines main(); we rename it).
 */
int kst_harness_main(int argc, char **argv);
#define KST_MAIN							\
	int main(int argc, char **argv)					\
	{								\
		char why[256];						\
		kst_parse_opts(&argc, argv);				\
		if (!kvm_available(why, sizeof(why))) {			\
			printf("TAP version 13\n1..0 # SKIP %s\n", why);	\
			return 4;					\
		}							\
		return kst_harness_main(argc, argv);			\
	}

#endif
