/*
 * A daemon: the launcher starts a session, forks, and exits, so the daemon runs
 * in a session and process group whose leader is gone. After the trigger it
 * checks its session and group are still the launcher's ids.
 */
#include "rckpt_test.h"

int main(void)
{
	pid_t launcher, d;

	t_init(1);
	launcher = getpid();
	d = fork();
	if (d > 0)
		_exit(0);
	while (getppid() == launcher)
		usleep(1000);
	t_say("LAUNCHER %d", launcher);
	t_ready();
	t_wait_trigger();
	CHECK(getsid(0) == launcher, "sid %d, not the launcher's %d", getsid(0), launcher);
	CHECK(getpgrp() == launcher, "pgid %d, not the launcher's %d", getpgrp(), launcher);
	return t_done();
}
