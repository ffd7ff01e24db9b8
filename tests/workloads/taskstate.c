/*
 * Per-task settings: credentials (run as another uid with chosen groups and
 * capabilities), rlimits, personality, comm, session and group, rseq, robust
 * list, clear-child-tid address, child subreaper, parent-death signal, dumpable,
 * THP-disable, no_new_privs, timer slack, CPU affinity, nice.
 */
#include "rckpt_test.h"
#include <grp.h>
#include <sched.h>
#include <linux/capability.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>

static int tid_word;

struct robust_head {
	void *list;
	long futex_offset;
	void *pending;
};
static struct robust_head robust = { &robust, 0, NULL };

static int capget2(uint64_t *eff, uint64_t *prm, uint64_t *inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	int r = syscall(SYS_capget, &h, d);
	*eff = d[0].effective | (uint64_t)d[1].effective << 32;
	*prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	*inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
	return r;
}

int main(void)
{
	gid_t groups[2] = { 1234, 5678 }, got_groups[8];
	uid_t r, e, s;
	gid_t rg, eg, sg;
	struct rlimit rl = { 1000, 2000 }, core = { 0, 4096 }, got;
	cpu_set_t set, got_set;
	uint64_t eff, prm, inh, want_prm, want_eff;
	long tid_addr;
	int v, n;
	char comm[17];
	void *head;
	size_t len;

	t_init(1);
	pid_t pid = getpid();
	/* Keep CAP_NET_BIND_SERVICE and CAP_KILL across the uid change. */
	prctl(PR_SET_KEEPCAPS, 1);
	setgroups(2, groups);
	setresgid(4321, 4321, 4321);
	setresuid(4242, 4242, 4242);
	{
		struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
		struct __user_cap_data_struct d[2] = { { 0 } };
		want_prm = (1ull << CAP_NET_BIND_SERVICE) | (1ull << CAP_KILL);
		want_eff = 1ull << CAP_NET_BIND_SERVICE;
		d[0].permitted = want_prm;
		d[0].effective = want_eff;
		syscall(SYS_capset, &h, d);
	}
	setrlimit(RLIMIT_NOFILE, &rl);
	setrlimit(RLIMIT_CORE, &core);
	personality(ADDR_NO_RANDOMIZE | PER_LINUX);
	prctl(PR_SET_NAME, "rckpt-task");
	syscall(SYS_set_tid_address, &tid_word);
	syscall(SYS_set_robust_list, &robust, sizeof(robust));
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	prctl(PR_SET_PDEATHSIG, SIGUSR1);
	prctl(PR_SET_DUMPABLE, 0);
	prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
	prctl(PR_SET_TIMERSLACK, 123456);
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	sched_setaffinity(0, sizeof(set), &set);
	setpriority(PRIO_PROCESS, 0, 7);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);

	t_ready();
	t_wait_trigger();

	CHECK(getsid(0) == pid && getpgrp() == pid, "sid %d pgid %d", getsid(0), getpgrp());
	getresuid(&r, &e, &s);
	CHECK(r == 4242 && e == 4242 && s == 4242, "uids %d %d %d", r, e, s);
	CHECK(setfsuid(-1) == 4242, "fsuid");
	getresgid(&rg, &eg, &sg);
	CHECK(rg == 4321 && eg == 4321 && sg == 4321, "gids %d %d %d", rg, eg, sg);
	n = getgroups(8, got_groups);
	CHECK(n == 2 && got_groups[0] == 1234 && got_groups[1] == 5678, "groups (%d)", n);
	capget2(&eff, &prm, &inh);
	CHECK(prm == want_prm && eff == want_eff && inh == 0, "caps eff %#lx prm %#lx inh %#lx", (long)eff, (long)prm, (long)inh);
	getrlimit(RLIMIT_NOFILE, &got);
	CHECK(got.rlim_cur == 1000 && got.rlim_max == 2000, "RLIMIT_NOFILE %ld/%ld", (long)got.rlim_cur, (long)got.rlim_max);
	getrlimit(RLIMIT_CORE, &got);
	CHECK(got.rlim_cur == 0 && got.rlim_max == 4096, "RLIMIT_CORE");
	CHECK(personality(0xffffffff) == (ADDR_NO_RANDOMIZE | PER_LINUX), "personality %#x", personality(0xffffffff));
	prctl(PR_GET_NAME, comm);
	CHECK(strcmp(comm, "rckpt-task") == 0, "comm %s", comm);
	prctl(PR_GET_TID_ADDRESS, &tid_addr);
	CHECK(tid_addr == (long)&tid_word, "tid address %#lx", tid_addr);
	syscall(SYS_get_robust_list, 0, &head, &len);
	CHECK(head == &robust && len == sizeof(robust), "robust list %p %zu", head, len);
	prctl(PR_GET_CHILD_SUBREAPER, &v);
	CHECK(v == 1, "subreaper %d", v);
	prctl(PR_GET_PDEATHSIG, &v);
	CHECK(v == SIGUSR1, "pdeath signal %d", v);
	CHECK(prctl(PR_GET_DUMPABLE) == 0, "dumpable %d", prctl(PR_GET_DUMPABLE));
	CHECK(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "THP disable");
	CHECK(prctl(PR_GET_TIMERSLACK) == 123456, "timer slack %d", prctl(PR_GET_TIMERSLACK));
	CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "no_new_privs");
	sched_getaffinity(0, sizeof(got_set), &got_set);
	CHECK(CPU_COUNT(&got_set) == 1 && CPU_ISSET(0, &got_set), "affinity");
	errno = 0;
	CHECK(getpriority(PRIO_PROCESS, 0) == 7, "nice %d", getpriority(PRIO_PROCESS, 0));
	return t_done();
}
