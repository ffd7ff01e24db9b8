/*
 * Signals: handlers with SA_SIGINFO|SA_ONSTACK|SA_RESTART and a handler mask, an
 * ignored signal, a sigaltstack, a blocked mask with a pending standard signal
 * and two queued realtime signals with values, an interval timer and a POSIX
 * timer that keep firing.
 */
#include "rckpt_test.h"

#define ALT_SIZE (64 * 1024)
static char altstack[ALT_SIZE];
static volatile int usr1_count, rt_count, rt_vals[8], alrm_count, ptimer_count, ptimer_val;
static volatile uintptr_t usr1_sp;

static void on_usr1(int s, siginfo_t *si, void *uc)
{
	int local;
	(void)s, (void)si, (void)uc;
	usr1_sp = (uintptr_t)&local;
	usr1_count++;
}

static void on_rt(int s, siginfo_t *si, void *uc)
{
	(void)s, (void)uc;
	if (rt_count < 8)
		rt_vals[rt_count] = si->si_value.sival_int;
	rt_count++;
}

static void on_alrm(int s)
{
	(void)s;
	alrm_count++;
}

static void on_ptimer(int s, siginfo_t *si, void *uc)
{
	(void)s, (void)uc;
	ptimer_val = si->si_value.sival_int;
	ptimer_count++;
}

static void nap_ms(int ms)
{
	struct timespec end, now;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_nsec += (long)ms * 1000000;
	end.tv_sec += end.tv_nsec / 1000000000;
	end.tv_nsec %= 1000000000;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL) == EINTR)
		;
	(void)now;
}

int main(void)
{
	struct sigaction sa, got;
	stack_t ss, ss_got;
	sigset_t block, cur, pend;
	struct itimerval it = { { 0, 50000 }, { 0, 50000 } };
	struct sigevent sev;
	struct itimerspec ts = { { 0, 20000000 }, { 0, 20000000 } }, ts_got;
	timer_t tid;
	union sigval v;
	int a0, p0;

	t_init(1);
	ss.ss_sp = altstack;
	ss.ss_size = ALT_SIZE;
	ss.ss_flags = 0;
	sigaltstack(&ss, NULL);

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_usr1;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaction(SIGUSR1, &sa, NULL);

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_rt;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigaction(SIGRTMIN + 2, &sa, NULL);

	signal(SIGHUP, SIG_IGN);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alrm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_ptimer;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGRTMIN + 5, &sa, NULL);

	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGRTMIN + 2);
	sigprocmask(SIG_BLOCK, &block, NULL);
	raise(SIGUSR1);
	v.sival_int = 42;
	sigqueue(getpid(), SIGRTMIN + 2, v);
	v.sival_int = 43;
	sigqueue(getpid(), SIGRTMIN + 2, v);

	setitimer(ITIMER_REAL, &it, NULL);
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGRTMIN + 5;
	sev.sigev_value.sival_int = 77;
	timer_create(CLOCK_MONOTONIC, &sev, &tid);
	timer_settime(tid, 0, &ts, NULL);
	t_say("TIMER %ld", (long)(intptr_t)tid);

	t_ready();
	t_wait_trigger();
	a0 = alrm_count;
	p0 = ptimer_count;

	sigaction(SIGUSR1, NULL, &got);
	CHECK(got.sa_sigaction == on_usr1, "SIGUSR1 handler");
	CHECK((got.sa_flags & (SA_SIGINFO | SA_ONSTACK | SA_RESTART)) == (SA_SIGINFO | SA_ONSTACK | SA_RESTART), "SIGUSR1 flags %#x", got.sa_flags);
	CHECK(sigismember(&got.sa_mask, SIGINT) && sigismember(&got.sa_mask, SIGTERM) && !sigismember(&got.sa_mask, SIGQUIT), "SIGUSR1 handler mask");
	sigaction(SIGHUP, NULL, &got);
	CHECK(got.sa_handler == SIG_IGN, "SIGHUP is ignored");
	sigaction(SIGQUIT, NULL, &got);
	CHECK(got.sa_handler == SIG_DFL, "SIGQUIT is default");
	sigaltstack(NULL, &ss_got);
	CHECK(ss_got.ss_sp == altstack && ss_got.ss_size == ALT_SIZE && ss_got.ss_flags == 0, "altstack %p %zu %d", ss_got.ss_sp, ss_got.ss_size, ss_got.ss_flags);
	sigprocmask(SIG_BLOCK, NULL, &cur);
	CHECK(sigismember(&cur, SIGUSR1) && sigismember(&cur, SIGRTMIN + 2) && !sigismember(&cur, SIGUSR2), "blocked mask");
	sigpending(&pend);
	CHECK(sigismember(&pend, SIGUSR1), "SIGUSR1 still pending");
	CHECK(sigismember(&pend, SIGRTMIN + 2), "realtime signal still queued");
	CHECK(usr1_count == 0 && rt_count == 0, "handlers ran while blocked");

	sigprocmask(SIG_UNBLOCK, &block, NULL);
	CHECK(usr1_count == 1, "SIGUSR1 delivered %d times", usr1_count);
	CHECK(usr1_sp >= (uintptr_t)altstack && usr1_sp < (uintptr_t)altstack + ALT_SIZE, "handler ran at %#lx, not on the altstack", (unsigned long)usr1_sp);
	CHECK(rt_count == 2 && rt_vals[0] == 42 && rt_vals[1] == 43, "realtime signals: %d, values %d %d", rt_count, rt_vals[0], rt_vals[1]);

	nap_ms(400);
	CHECK(alrm_count >= a0 + 3, "interval timer fired %d times in 400 ms", alrm_count - a0);
	CHECK(ptimer_count >= p0 + 8, "POSIX timer fired %d times in 400 ms", ptimer_count - p0);
	CHECK(ptimer_val == 77, "POSIX timer value %d", ptimer_val);
	CHECK(timer_gettime(tid, &ts_got) == 0 && ts_got.it_interval.tv_nsec == 20000000, "POSIX timer interval");
	getitimer(ITIMER_REAL, &it);
	CHECK(it.it_interval.tv_usec == 50000, "itimer interval %ld", (long)it.it_interval.tv_usec);
	return t_done();
}
