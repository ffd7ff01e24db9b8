/*
 * A tree of five processes in two sessions and three process groups, with a
 * grandchild:
 *
 *   R  session R, group R
 *   +- A  group A (a new group in R's session)
 *   +- B  group A (joins its sibling's group)
 *   +- C  session C, group C
 *      +- D  session C, group C (the grandchild)
 *
 * Each process checks its pid, ppid, pgid and sid after the trigger; parents
 * reap their children and check they passed. argv[1] = "idle" makes every
 * process sleep in short naps (default), "spin" keeps them busy.
 */
#include "rckpt_test.h"
#include <sys/wait.h>

struct ids {
	pid_t pid, ppid, pgid, sid;
};

static struct ids mine;

static void record(void)
{
	mine.pid = getpid();
	mine.ppid = getppid();
	mine.pgid = getpgrp();
	mine.sid = getsid(0);
}

static int check_ids(const char *who)
{
	int before = t_failures;
	CHECK(getpid() == mine.pid, "%s: pid %d, was %d", who, getpid(), mine.pid);
	/* The root's parent is outside the tree: rckpt, after a restore. */
	if (strcmp(who, "R") != 0)
		CHECK(getppid() == mine.ppid, "%s: ppid %d, was %d", who, getppid(), mine.ppid);
	CHECK(getpgrp() == mine.pgid, "%s: pgid %d, was %d", who, getpgrp(), mine.pgid);
	CHECK(getsid(0) == mine.sid, "%s: sid %d, was %d", who, getsid(0), mine.sid);
	return t_failures == before;
}

static void reap(pid_t child, const char *who)
{
	int st = 0;
	pid_t r = waitpid(child, &st, 0);
	CHECK(r == child && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: child %d ended with %#x", who, child, st);
}

/* A leaf: wait for the trigger, check, exit with the result. */
static void leaf(const char *who)
{
	record();
	t_wait_trigger();
	check_ids(who);
	exit(t_failures ? 1 : 0);
}

int main(void)
{
	pid_t a, b, c;

	t_init(1);
	record();
	a = fork();
	if (a == 0) {
		setpgid(0, 0);
		leaf("A");
	}
	setpgid(a, a);
	b = fork();
	if (b == 0) {
		setpgid(0, a);
		leaf("B");
	}
	c = fork();
	if (c == 0) {
		pid_t d;
		setsid();
		record();
		d = fork();
		if (d == 0)
			leaf("D");
		t_wait_trigger();
		check_ids("C");
		reap(d, "C");
		exit(t_failures ? 1 : 0);
	}
	/* Let every child reach its own set-up before reporting. */
	usleep(100 * 1000);
	t_ready();
	t_wait_trigger();
	check_ids("R");
	reap(a, "R");
	reap(b, "R");
	reap(c, "R");
	return t_done();
}
