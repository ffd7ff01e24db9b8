/*
 * Seccomp filters: two threads under a shared chain, and one filter of the
 * second thread only. The main thread installs A, creates the second thread
 * (which inherits A), installs C with SECCOMP_FILTER_FLAG_TSYNC (both threads
 * then run under A and C, the same filters); the second thread adds B:
 *
 *   A: getppid fails with EPERM, munmap with EPERM, setpriority kills the process
 *   C: sched_yield fails with EAGAIN
 *   B: getsid fails with EACCES (second thread only)
 *
 * A and C also forbid what a restore does in the task after installing them
 * (setpriority and set_robust_list in the trampoline, rckpt's remote munmap of
 * the trampoline): the restore has to keep them suspended until it lets go.
 * After the trigger each thread checks its filters still apply and that
 * /proc/thread-self/status shows Seccomp 2 and its Seccomp_filters count;
 * then the second thread installs D with TSYNC, which the kernel allows only
 * if the main thread's filters are the same ones as the second thread's older
 * ones: the sharing itself must have been restored.
 *
 * argv: "nnp": set no_new_privs first (otherwise the filters are installed
 * with CAP_SYS_ADMIN); "dropcap": both threads drop CAP_SYS_ADMIN after
 * installing them (a restore must install them before it sets credentials).
 * Each thread checks its capabilities are the ones it had.
 */
#include "rckpt_test.h"
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>

static int nnp, dropcap;
static volatile int thread_ready, thread_go, thread_checked, main_checked, thread_done;
static pid_t thread_tid;
static int thread_failures;
/* Each thread's effective capabilities when it was set up. */
static long main_capeff, thread_capeff;

#define LD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define ARCH_CHECK                                                                                                     \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),                                       \
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),                                          \
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)
#define DENY(nr, ret) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, (ret))
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

static long install(struct sock_filter *f, unsigned short n, unsigned flags)
{
	struct sock_fprog prog = { .len = n, .filter = f };
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

static long install_a(void)
{
	struct sock_filter f[] = {
		ARCH_CHECK,
		LD_NR,
		DENY(__NR_getppid, SECCOMP_RET_ERRNO | EPERM),
		DENY(__NR_munmap, SECCOMP_RET_ERRNO | EPERM),
		DENY(__NR_setpriority, SECCOMP_RET_KILL_PROCESS),
		ALLOW,
	};
	return install(f, sizeof(f) / sizeof(f[0]), 0);
}

static long install_c(void)
{
	struct sock_filter f[] = {
		ARCH_CHECK,
		LD_NR,
		DENY(__NR_sched_yield, SECCOMP_RET_ERRNO | EAGAIN),
		DENY(__NR_set_robust_list, SECCOMP_RET_KILL_PROCESS),
		ALLOW,
	};
	return install(f, sizeof(f) / sizeof(f[0]), SECCOMP_FILTER_FLAG_TSYNC);
}

static long install_b(void)
{
	struct sock_filter f[] = { ARCH_CHECK, LD_NR, DENY(__NR_getsid, SECCOMP_RET_ERRNO | EACCES), ALLOW };
	return install(f, sizeof(f) / sizeof(f[0]), SECCOMP_FILTER_FLAG_LOG);
}

static long install_d(void)
{
	struct sock_filter f[] = { ARCH_CHECK, LD_NR, DENY(__NR_getpgid, SECCOMP_RET_ERRNO | EXDEV), ALLOW };
	return install(f, sizeof(f) / sizeof(f[0]), SECCOMP_FILTER_FLAG_TSYNC);
}

/* This thread drops CAP_SYS_ADMIN from its effective and permitted sets. */
static void drop_sys_admin(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	syscall(SYS_capget, &h, d);
	d[0].effective &= ~(1u << CAP_SYS_ADMIN);
	d[0].permitted &= ~(1u << CAP_SYS_ADMIN);
	if (syscall(SYS_capset, &h, d) != 0) {
		perror("capset");
		exit(2);
	}
}

/* A field of this thread's /proc status, or -1. */
static long status_field(const char *name)
{
	char line[256];
	size_t n = strlen(name);
	long v = -1;
	FILE *f = fopen("/proc/thread-self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, name, n) == 0 && line[n] == ':')
			v = strtol(line + n + 1, NULL, 16);
	if (f)
		fclose(f);
	return v;
}

/* Errno of a syscall expected to fail, or 0 if it succeeded. */
#define FAILS_WITH(call) ((call) == -1 ? errno : 0)

static int check_common(const char *who, long filters, long capeff)
{
	int bad = 0;
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

#define T(cond, ...) (t_check(!!(cond), #cond, __LINE__, __VA_ARGS__), bad += !(cond))
	T(FAILS_WITH(syscall(SYS_getppid)) == EPERM, "%s: getppid not denied (filter A)", who);
	T(p != MAP_FAILED && FAILS_WITH(munmap(p, 4096)) == EPERM, "%s: munmap not denied (filter A)", who);
	T(FAILS_WITH(syscall(SYS_sched_yield)) == EAGAIN, "%s: sched_yield not denied (filter C)", who);
	T(status_field("Seccomp") == 2, "%s: Seccomp %ld", who, status_field("Seccomp"));
	T(status_field("Seccomp_filters") == filters, "%s: Seccomp_filters %ld, not %ld", who,
	  status_field("Seccomp_filters"), filters);
	T(status_field("NoNewPrivs") == nnp, "%s: NoNewPrivs %ld", who, status_field("NoNewPrivs"));
	T(status_field("CapEff") == capeff, "%s: CapEff %lx, not %lx", who, status_field("CapEff"), capeff);
#undef T
	return bad;
}

static void *second(void *arg)
{
	(void)arg;
	thread_tid = syscall(SYS_gettid);
	while (!thread_go)
		usleep(1000);
	if (install_b() != 0) {
		perror("seccomp B");
		exit(2);
	}
	if (dropcap)
		drop_sys_admin();
	thread_capeff = status_field("CapEff");
	thread_ready = 1;
	while (!t_trigger) {
		struct timespec ts = { 0, 2 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	thread_failures += check_common("second thread", 3, thread_capeff);
	if (FAILS_WITH(syscall(SYS_getsid, 0)) != EACCES)
		thread_failures++, printf("FAIL second thread: getsid not denied (filter B)\n");
	/* The main thread checks its own filters before the TSYNC changes them. */
	thread_checked = 1;
	while (!main_checked)
		usleep(1000);
	if (!nnp && !(thread_capeff & (1L << CAP_SYS_ADMIN))) {
		/* Neither no_new_privs nor CAP_SYS_ADMIN: no new filter. */
		if (FAILS_WITH(install_d()) != EACCES)
			thread_failures++, printf("FAIL second thread: installed a filter without the right to\n");
	} else {
		/* TSYNC: the main thread's chain (A, C) must be an ancestor of this one's. */
		long r = install_d();
		if (r != 0)
			thread_failures++, printf("FAIL second thread: TSYNC failed: %ld (%s)\n", r, strerror(errno));
	}
	fflush(stdout);
	thread_done = 1;
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th;
	int i;
	pid_t sid;

	for (i = 1; i < argc; i++) {
		nnp |= strcmp(argv[i], "nnp") == 0;
		dropcap |= strcmp(argv[i], "dropcap") == 0;
	}
	t_init(1);
	sid = getsid(0);
	if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		perror("no_new_privs");
		return 2;
	}
	if (install_a() != 0) {
		perror("seccomp A");
		return 2;
	}
	pthread_create(&th, NULL, second, NULL);
	while (!thread_tid)
		usleep(1000);
	if (install_c() != 0) {
		perror("seccomp C (TSYNC)");
		return 2;
	}
	thread_go = 1;
	while (!thread_ready)
		usleep(1000);
	if (dropcap)
		drop_sys_admin();
	main_capeff = status_field("CapEff");
	t_ready();
	t_wait_trigger();

	/* One thread checks at a time: the counters are not atomic. */
	while (!thread_checked)
		usleep(1000);
	check_common("main thread", 2, main_capeff);
	CHECK(getsid(0) == sid, "main thread: getsid %d, not %d", getsid(0), sid);
	main_checked = 1;
	while (!thread_done)
		usleep(1000);
	pthread_join(th, NULL);
	t_checks++;
	t_failures += thread_failures;
	if (nnp || (thread_capeff & (1L << CAP_SYS_ADMIN))) {
		/* D and B came with the TSYNC. */
		CHECK(FAILS_WITH(syscall(SYS_getpgid, 0)) == EXDEV, "main thread: getpgid not denied (filter D)");
		CHECK(FAILS_WITH(syscall(SYS_getsid, 0)) == EACCES, "main thread: getsid not denied (B, by TSYNC)");
		CHECK(status_field("Seccomp_filters") == 4, "main thread: Seccomp_filters %ld after TSYNC",
		      status_field("Seccomp_filters"));
	}
	return t_done();
}
