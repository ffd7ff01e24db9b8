/*
 * Below the root, a session whose leader is gone: the root is a child
 * subreaper; its child C starts a session, forks D and exits; D comes back to
 * the root. After the trigger D checks its sid (C's) and ppid (the root).
 */
#include "rckpt_test.h"
#include <sys/prctl.h>
#include <sys/wait.h>

int main(void)
{
	pid_t root = getpid(), c, d = 0;
	int st, pfd[2];

	t_init(1);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (pipe(pfd))
		abort();
	c = fork();
	if (c == 0) {
		pid_t me;
		close(pfd[0]);
		setsid();
		me = getpid();
		d = fork();
		if (d == 0) {
			close(pfd[1]);
			while (getppid() == me)
				usleep(1000);
			t_wait_trigger();
			CHECK(getsid(0) == me, "D: sid %d, not the gone leader's %d", getsid(0), me);
			CHECK(getppid() == root, "D: ppid %d, not the subreaper %d", getppid(), root);
			exit(t_failures ? 1 : 0);
		}
		if (write(pfd[1], &d, sizeof(d)) != sizeof(d))
			abort();
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], &d, sizeof(d)) != sizeof(d))
		abort();
	close(pfd[0]);
	waitpid(c, &st, 0);
	while (access("/proc/self", F_OK) == 0 && waitpid(d, &st, WNOHANG) == 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/stat", d);
		FILE *f = fopen(path, "r");
		int ppid = 0;
		if (f) {
			if (fscanf(f, "%*d %*s %*c %d", &ppid) != 1)
				ppid = 0;
			fclose(f);
		}
		if (ppid == root)
			break;
		usleep(1000);
	}
	/* D may not have run yet: until it closes its copy of the pipe, that pipe
	 * is held inside the tree with no other end in it. */
	for (;;) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", d, pfd[1]);
		if (access(path, F_OK) != 0)
			break;
		usleep(1000);
	}
	t_say("GONE %d", c);
	t_ready();
	t_wait_trigger();
	CHECK(waitpid(d, &st, 0) == d && WIFEXITED(st) && WEXITSTATUS(st) == 0, "D ended with %#x", st);
	return t_done();
}
