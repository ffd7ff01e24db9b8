/* Holds pid argv[1] (clone3 with set_tid) until killed: a pid in use. */
#define _GNU_SOURCE
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	pid_t want = atoi(argv[1]);
	struct clone_args ca;
	long r;

	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	ca.set_tid = (uint64_t)(uintptr_t)&want;
	ca.set_tid_size = 1;
	r = syscall(SYS_clone3, &ca, sizeof(ca));
	if (r == 0) {
		/* Dies with the holder, and keeps none of its pipes open. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(1);
		close(2);
		for (;;)
			pause();
	}
	printf("%s %ld\n", r > 0 ? "HELD" : "FAILED", r);
	fflush(stdout);
	for (;;)
		pause();
}
