/*
 * A pool of 8 worker threads fed by a queue (mutex + condition variables):
 * the main thread submits jobs one by one, the workers compute them, and the
 * main thread prints each result in order: "RESULT i value". The test checks
 * every value from outside. argv[1]: jobs; argv[2]: microseconds between jobs.
 */
#include "rckpt_test.h"
#include <pthread.h>

#define WORKERS 8
#define MAXJOBS 4096

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER, done = PTHREAD_COND_INITIALIZER;
static int queue[MAXJOBS], head, tail;
static uint64_t result[MAXJOBS + 1];
static int finished[MAXJOBS + 1];

static uint64_t job(uint64_t x)
{
	for (int i = 0; i < 20000; i++) {
		x += 0x9e3779b97f4a7c15ull;
		x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
		x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
		x ^= x >> 31;
	}
	return x;
}

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		int j;
		pthread_mutex_lock(&lock);
		while (head == tail)
			pthread_cond_wait(&work, &lock);
		j = queue[head++ % MAXJOBS];
		pthread_mutex_unlock(&lock);
		uint64_t r = job(j);
		pthread_mutex_lock(&lock);
		result[j] = r;
		finished[j] = 1;
		pthread_cond_broadcast(&done);
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int jobs = argc > 1 ? atoi(argv[1]) : 200;
	int gap = argc > 2 ? atoi(argv[2]) : 2000;
	pthread_t t[WORKERS];

	if (jobs > MAXJOBS)
		return 2;
	t_init(1);
	for (int i = 0; i < WORKERS; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	t_ready();
	for (int i = 1; i <= jobs; i++) {
		pthread_mutex_lock(&lock);
		queue[tail++ % MAXJOBS] = i;
		pthread_cond_signal(&work);
		while (!finished[i])
			pthread_cond_wait(&done, &lock);
		pthread_mutex_unlock(&lock);
		printf("RESULT %d %016llx\n", i, (unsigned long long)result[i]);
		fflush(stdout);
		usleep(gap);
	}
	printf("DONE\n");
	return 0;
}
