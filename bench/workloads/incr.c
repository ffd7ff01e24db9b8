/*
 * The incremental-dump workload (the logic of tests/workloads/incremental.c in the
 * benchmark's conventions): argv[1] MiB of resident private anonymous memory, each
 * page filled with xorshift64 output seeded from (its index, its generation), so
 * nothing in it is zero, duplicated or compressible.
 *
 * SIGUSR1: rewrites every 100th page (1% of them) with its next generation and says
 * "WROTE <round> <pages>". SIGUSR2: checks every page against its generation and
 * says "OK <pages>" or "BAD <bad> of <pages> pages differ", then waits again (the
 * benchmark kills it). Between signals it sleeps in 50 ms naps (a signal cuts a nap
 * short).
 */
#include "bench.h"
#include <time.h>

static volatile sig_atomic_t rewrite, verify;

static void on_signal(int s)
{
	if (s == SIGUSR1)
		rewrite = 1;
	else
		verify = 1;
}

static void fill(uint64_t *p, size_t page, uint32_t gen)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * (page + 1) ^ ((uint64_t)gen << 40);
	int i;

	for (i = 0; i < 512; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = x;
	}
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 256, pages = mib * 256, rounds = 0, i;
	uint64_t *mem;
	uint32_t *gen;
	struct sigaction sa;

	b_init();
	mem = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gen = calloc(pages, sizeof(uint32_t));
	if (mem == MAP_FAILED || !gen)
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	for (i = 0; i < pages; i++)
		fill(mem + i * 512, i, 0);
	b_ready();
	for (;;) {
		if (rewrite) {
			size_t n = 0;

			rewrite = 0;
			rounds++;
			for (i = rounds % 100; i < pages; i += 100, n++)
				fill(mem + i * 512, i, ++gen[i]);
			printf("WROTE %zu %zu\n", rounds, n);
			fflush(stdout);
		}
		if (verify) {
			uint64_t want[512];
			size_t bad = 0;

			verify = 0;
			for (i = 0; i < pages; i++) {
				fill(want, i, gen[i]);
				bad += memcmp(want, mem + i * 512, 4096) != 0;
			}
			if (bad)
				printf("BAD %zu of %zu pages differ\n", bad, pages);
			else
				printf("OK %zu\n", pages);
			fflush(stdout);
		}
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}
