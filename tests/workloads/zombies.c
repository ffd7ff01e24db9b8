/*
 * Zombies: two children that have ended, one with exit code 7 and one killed by
 * SIGKILL, not reaped until after the trigger. The parent then checks they are
 * zombies, reaps them, and checks their statuses.
 */
#include "rckpt_test.h"
#include <sys/wait.h>

static char state_of(pid_t p)
{
	char path[64], buf[512], *s;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", p);
	f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f)) {
		if (f)
			fclose(f);
		return '?';
	}
	fclose(f);
	s = strrchr(buf, ')');
	return s && s[1] && s[2] ? s[2] : '?';
}

int main(void)
{
	pid_t z1, z2;
	int st1 = 0, st2 = 0;
	sigset_t chld;

	t_init(1);
	/* Keep SIGCHLD from interrupting anything; it stays pending. */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	z1 = fork();
	if (z1 == 0)
		_exit(7);
	z2 = fork();
	if (z2 == 0) {
		raise(SIGKILL);
		_exit(1);
	}
	while (state_of(z1) != 'Z' || state_of(z2) != 'Z')
		usleep(1000);
	t_say("ZOMBIES %d %d", z1, z2);
	t_ready();
	t_wait_trigger();

	CHECK(state_of(z1) == 'Z', "child %d is %c, not a zombie", z1, state_of(z1));
	CHECK(state_of(z2) == 'Z', "child %d is %c, not a zombie", z2, state_of(z2));
	CHECK(waitpid(z1, &st1, WNOHANG) == z1, "child %d could not be reaped", z1);
	CHECK(WIFEXITED(st1) && WEXITSTATUS(st1) == 7, "child %d status %#x, not exit 7", z1, st1);
	CHECK(waitpid(z2, &st2, WNOHANG) == z2, "child %d could not be reaped", z2);
	CHECK(WIFSIGNALED(st2) && WTERMSIG(st2) == SIGKILL, "child %d status %#x, not killed by SIGKILL", z2, st2);
	CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD, "more children than saved");
	return t_done();
}
