/*
 * One process with argv[1] threads in all (default 1): the main thread and
 * argv[1] - 1 others, each blocked in pause() with a default (8 MiB, mostly
 * untouched) stack.
 */
#include "bench.h"
#include <pthread.h>

static pthread_barrier_t started;

static void *thread(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&started);
	b_wait();
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1, i;
	pthread_t th;

	b_init();
	if (n < 1)
		n = 1;
	pthread_barrier_init(&started, NULL, n);
	for (i = 1; i < n; i++)
		if (pthread_create(&th, NULL, thread, NULL) != 0)
			return 1;
	pthread_barrier_wait(&started);
	b_ready();
	b_wait();
}
