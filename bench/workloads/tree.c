/*
 * A tree of argv[1] processes in all (default 1), each blocked in pause().
 * With argv[2] = 0 (default) the root forks argv[1] - 1 children; with
 * argv[2] = K > 0 the root forks K children and the remaining
 * argv[1] - 1 - K processes are their children, spread evenly (two levels).
 * The root says READY once every process is up; the startup pipe is closed
 * everywhere by then (rckpt does not dump a pipe with both ends in the tree).
 */
#include "bench.h"

static int sync_fd[2];

static void up(void)
{
	char c = 1;
	if (write(sync_fd[1], &c, 1) != 1)
		abort();
	close(sync_fd[0]);
	close(sync_fd[1]);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1, k = argc > 2 ? atoi(argv[2]) : 0, i, j;

	b_init();
	if (n < 1)
		n = 1;
	if (k <= 0 || k > n - 1)
		k = n - 1;
	if (pipe(sync_fd))
		return 1;
	for (i = 0; i < k; i++) {
		/* Grandchildren of child i: the rest, spread evenly. */
		int g = (n - 1 - k) / k + (i < (n - 1 - k) % k ? 1 : 0);
		pid_t p = fork();
		if (p < 0)
			return 1;
		if (p == 0) {
			for (j = 0; j < g; j++) {
				pid_t q = fork();
				if (q < 0)
					abort();
				if (q == 0) {
					up();
					b_wait();
				}
			}
			up();
			b_wait();
		}
	}
	close(sync_fd[1]);
	b_read_all(sync_fd[0], n - 1);
	close(sync_fd[0]);
	b_ready();
	b_wait();
}
