/*
 * A tree that keeps forking and reaping short-lived children while it is
 * dumped. After the trigger it checks it still forks and reaps, and reports how
 * many children it had.
 */
#include "rckpt_test.h"
#include <sys/wait.h>

static volatile unsigned long born, reaped;

static void storm_step(void)
{
	pid_t c = fork();
	int st;

	if (c == 0) {
		struct timespec ts = { 0, 500 * 1000 };
		nanosleep(&ts, NULL);
		_exit(3);
	}
	if (c > 0)
		born++;
	/* Reap whatever has ended, without waiting. */
	for (;;) {
		pid_t c = waitpid(-1, &st, WNOHANG);
		if (c <= 0)
			break;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
			reaped++;
		else
			t_say("CHILD %d ended with status %#x", c, st);
	}
}

int main(void)
{
	unsigned long b0;
	int st;

	t_init(1);
	t_ready();
	while (!t_trigger)
		storm_step();
	b0 = born;
	while (born < b0 + 50)
		storm_step();
	for (;;) {
		pid_t c = waitpid(-1, &st, 0);
		if (c <= 0)
			break;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
			reaped++;
		else
			t_say("CHILD %d ended with status %#x", c, st);
	}
	CHECK(born >= b0 + 50, "it stopped forking");
	CHECK(reaped == born, "%lu children born, %lu reaped with status 3", born, reaped);
	t_say("CHILDREN %lu", born);
	return t_done();
}
