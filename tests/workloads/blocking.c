/*
 * A task blocked in a system call when it is dumped: pause(), sigsuspend() and a
 * futex wait keep waiting after restore and wake when signalled; a relative
 * nanosleep, whose restart state stays in the kernel, returns EINTR.
 * argv[1]: pause | sigsuspend | futex | nanosleep; argv[2]: restored | running.
 */
#include "rckpt_test.h"
#include <linux/futex.h>

static volatile int word;

static void on_wake(int s)
{
	(void)s;
	t_trigger = 1;
	word = 1;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "pause";
	int restored = argc > 2 && strcmp(argv[2], "restored") == 0;
	struct sigaction sa;
	int r, e;

	t_init(1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_wake;
	sa.sa_flags = strcmp(mode, "futex") == 0 ? SA_RESTART : 0;
	sigaction(SIGUSR2, &sa, NULL);

	if (strcmp(mode, "pause") == 0) {
		t_ready();
		r = pause();
		e = errno;
		CHECK(t_trigger, "pause returned before the signal");
		CHECK(r == -1 && e == EINTR, "pause returned %d errno %d", r, e);
	} else if (strcmp(mode, "sigsuspend") == 0) {
		sigset_t block, empty, cur;
		sigemptyset(&block);
		sigaddset(&block, SIGUSR2);
		sigprocmask(SIG_BLOCK, &block, NULL);
		sigemptyset(&empty);
		t_ready();
		r = sigsuspend(&empty);
		e = errno;
		CHECK(t_trigger, "sigsuspend returned before the signal");
		CHECK(r == -1 && e == EINTR, "sigsuspend returned %d errno %d", r, e);
		sigprocmask(SIG_BLOCK, NULL, &cur);
		CHECK(sigismember(&cur, SIGUSR2), "sigsuspend did not restore the blocked mask");
	} else if (strcmp(mode, "futex") == 0) {
		t_ready();
		r = syscall(SYS_futex, &word, FUTEX_WAIT, 0, NULL, NULL, 0);
		e = errno;
		CHECK(t_trigger, "futex wait returned %d (errno %d) before the signal", r, e);
		/* The handler set the word, so the restarted wait returns at once. */
		CHECK(r == -1 && e == EAGAIN, "futex wait returned %d errno %d", r, e);
	} else {
		struct timespec ts = { 1000, 0 }, rem;
		t_ready();
		r = nanosleep(&ts, &rem);
		e = errno;
		CHECK(r == -1 && e == EINTR, "nanosleep returned %d errno %d", r, e);
		if (restored)
			CHECK(!t_trigger, "nanosleep slept until the signal instead of returning EINTR");
		else
			CHECK(t_trigger, "nanosleep returned before the signal");
		t_say("NANOSLEEP EINTR");
		t_wait_trigger();
	}
	return t_done();
}
