/*
 * For the soak test: three processes (the root and two children), each with
 * three more threads that keep checking their thread-local value. After the
 * trigger each process checks its pid, its threads and their values; the root
 * reaps the children and reports.
 */
#include "rckpt_test.h"
#include <pthread.h>
#include <sys/wait.h>
#include <dirent.h>

static __thread long mine;
static volatile int bad;

static void *spin(void *arg)
{
	mine = (long)arg;
	for (;;) {
		struct timespec ts = { 0, 3 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		if (mine != (long)arg)
			bad = 1;
	}
	return NULL;
}

static int threads_now(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void process(const char *who)
{
	pid_t me = getpid();
	pthread_t t;
	for (long i = 1; i <= 3; i++)
		pthread_create(&t, NULL, spin, (void *)(i * 1000 + me));
	t_wait_trigger();
	CHECK(getpid() == me, "%s: pid %d, was %d", who, getpid(), me);
	CHECK(threads_now() == 4, "%s: %d threads", who, threads_now());
	CHECK(!bad, "%s: a thread's TLS changed", who);
}

int main(void)
{
	pid_t kids[2];

	t_init(1);
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			process("child");
			exit(t_failures ? 1 : 0);
		}
	}
	t_ready();
	process("root");
	for (int i = 0; i < 2; i++) {
		int st = 0;
		CHECK(waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child ended %#x", st);
	}
	return t_done();
}
