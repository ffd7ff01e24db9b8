/*
 * A thread group whose leader has exited: the main thread calls pthread_exit
 * after starting three threads, which run on. After the trigger one of them
 * checks the leader is a zombie and the others still run, then ends the process
 * with exit code 0 (or 1 on failures). It also holds 4 MiB of random memory (an
 * extent rckpt checks while the exited leader's stand-in reads the rest), checked
 * too.
 */
#include "rckpt_test.h"
#include <pthread.h>

static __thread int tls_value;
static volatile long counters[3];
static volatile int stop;
static char *mem;
static uint64_t mem_hash;
#define MEM (4ul << 20)

static char state_of_leader(void)
{
	char path[64], buf[512], *s;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", getpid());
	f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f)) {
		if (f)
			fclose(f);
		return '?';
	}
	fclose(f);
	s = strrchr(buf, ')');
	return s ? s[2] : '?';
}

static void *worker(void *arg)
{
	long i = (long)arg;
	tls_value = 10 + i;
	while (!stop) {
		struct timespec ts = { 0, 2 * 1000 * 1000 };
		counters[i]++;
		nanosleep(&ts, NULL);
		if (i == 0 && t_trigger)
			break;
	}
	if (i != 0)
		return NULL;
	{
		long before = counters[1] + counters[2];
		usleep(50 * 1000);
		CHECK(counters[1] + counters[2] > before, "the other threads stopped");
	}
	CHECK(tls_value == 10, "TLS %d", tls_value);
	CHECK(t_hash(mem, MEM) == mem_hash, "the 4 MiB of random memory changed");
	CHECK(state_of_leader() == 'Z', "leader is %c, not a zombie", state_of_leader());
	exit(t_done());
}

int main(void)
{
	pthread_t th;
	long i;

	t_init(1);
	mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	t_random(mem, MEM);
	mem_hash = t_hash(mem, MEM);
	/* The trigger must reach a live thread: the leader blocks it. */
	for (i = 0; i < 3; i++)
		pthread_create(&th, NULL, worker, (void *)i);
	usleep(20 * 1000);
	t_ready();
	{
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, SIGUSR2);
		pthread_sigmask(SIG_BLOCK, &s, NULL);
	}
	pthread_exit(NULL);
}
