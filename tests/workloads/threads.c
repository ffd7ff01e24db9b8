/*
 * Threads: eight threads, each with its own TLS value, tid, name and signal
 * mask, all running (waking every few ms) across the checkpoint. After the
 * trigger each checks itself; the main thread joins them all (which needs each
 * thread's clear-child-tid address restored).
 * argv[1] = number of threads (default 8).
 */
#include "rckpt_test.h"
#include <pthread.h>

#define MAXT 1024

static __thread long tls_value;
static volatile int go_check;
static struct {
	pthread_t th;
	pid_t tid;
	int failures;
	long counter;
} slot[MAXT];

static int sig_for(int i)
{
	/* A different realtime signal blocked in each thread. */
	return SIGRTMIN + 1 + (i % 20);
}

static void *thread(void *arg)
{
	long i = (long)arg;
	char name[16], got[16];
	sigset_t set, cur;

	tls_value = 1000 + i;
	slot[i].tid = syscall(SYS_gettid);
	snprintf(name, sizeof(name), "worker-%ld", i);
	pthread_setname_np(pthread_self(), name);
	sigemptyset(&set);
	sigaddset(&set, sig_for(i));
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	while (!go_check) {
		struct timespec ts = { 0, 3 * 1000 * 1000 };
		slot[i].counter++;
		nanosleep(&ts, NULL);
	}
	if (tls_value != 1000 + i)
		slot[i].failures++, printf("FAIL thread %ld: TLS %ld\n", i, tls_value);
	if (syscall(SYS_gettid) != slot[i].tid)
		slot[i].failures++, printf("FAIL thread %ld: tid %ld, was %d\n", i, syscall(SYS_gettid), slot[i].tid);
	pthread_getname_np(pthread_self(), got, sizeof(got));
	if (strcmp(got, name) != 0)
		slot[i].failures++, printf("FAIL thread %ld: name %s\n", i, got);
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	if (!sigismember(&cur, sig_for(i)) || sigismember(&cur, SIGUSR2))
		slot[i].failures++, printf("FAIL thread %ld: signal mask\n", i);
	fflush(stdout);
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 8, i;
	long before;

	t_init(1);
	if (n > MAXT)
		n = MAXT;
	for (i = 0; i < n; i++)
		pthread_create(&slot[i].th, NULL, thread, (void *)(long)i);
	for (i = 0; i < n; i++)
		while (!slot[i].tid)
			usleep(1000);
	t_ready();
	t_wait_trigger();
	/* Every thread is still running: its counter moves. */
	before = 0;
	for (i = 0; i < n; i++)
		before += slot[i].counter;
	usleep(50 * 1000);
	for (i = 0; i < n; i++)
		before -= slot[i].counter;
	CHECK(before < 0, "the threads stopped running");
	go_check = 1;
	for (i = 0; i < n; i++) {
		CHECK(pthread_join(slot[i].th, NULL) == 0, "join thread %d", i);
		CHECK(slot[i].failures == 0, "thread %d failed %d checks", i, slot[i].failures);
	}
	CHECK(tls_value == 0, "main thread TLS %ld", tls_value);
	return t_done();
}
