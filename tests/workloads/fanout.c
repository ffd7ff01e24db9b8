/*
 * A wide tree: the root forks argv[1] children (default 7), each forks argv[2]
 * (default 8) grandchildren: 64 processes. Each checks its pid and ppid after
 * the trigger; parents reap and check their children.
 */
#include "rckpt_test.h"
#include <sys/wait.h>

static int leaf(pid_t pid, pid_t ppid)
{
	t_wait_trigger();
	return getpid() == pid && getppid() == ppid ? 0 : 1;
}

static int reap_all(pid_t *kids, int n)
{
	int bad = 0, i, st;
	for (i = 0; i < n; i++)
		if (waitpid(kids[i], &st, 0) != kids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			bad++;
	return bad;
}

int main(int argc, char **argv)
{
	int a = argc > 1 ? atoi(argv[1]) : 7, b = argc > 2 ? atoi(argv[2]) : 8, i, j;
	pid_t kids[256];

	t_init(1);
	for (i = 0; i < a && i < 256; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			pid_t me = getpid(), parent = getppid(), g[256];
			for (j = 0; j < b && j < 256; j++) {
				g[j] = fork();
				if (g[j] == 0)
					_exit(leaf(getpid(), me));
			}
			int bad = leaf(me, parent);
			_exit(bad + reap_all(g, b));
		}
	}
	usleep(300 * 1000);
	t_ready();
	t_wait_trigger();
	CHECK(reap_all(kids, a) == 0, "a subtree failed its checks");
	return t_done();
}
