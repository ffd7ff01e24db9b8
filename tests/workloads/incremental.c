/*
 * argv[1] MiB of pages, each filled from (its index, its generation). SIGUSR1
 * rewrites every 100th page (1%) with a new generation and says "WROTE n";
 * after the trigger every page is checked against its generation.
 */
#include "rckpt_test.h"

static volatile sig_atomic_t rewrite;

static void on_usr1(int s)
{
	(void)s;
	rewrite = 1;
}

static void fill(uint64_t *p, size_t page, uint32_t gen)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * (page + 1) ^ ((uint64_t)gen << 40);
	for (int i = 0; i < 512; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = x;
	}
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 64, pages = mib * 256, rounds = 0;
	uint64_t *mem = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint32_t *gen = calloc(pages, sizeof(uint32_t));
	struct sigaction sa;

	t_init(1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	for (size_t i = 0; i < pages; i++)
		fill(mem + i * 512, i, 0);
	t_ready();
	while (!t_trigger) {
		if (rewrite) {
			rewrite = 0;
			rounds++;
			for (size_t i = rounds % 100; i < pages; i += 100)
				fill(mem + i * 512, i, ++gen[i]);
			t_say("WROTE %zu", rounds);
		}
		struct timespec ts = { 0, 2 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	{
		uint64_t want[512];
		size_t bad = 0;
		for (size_t i = 0; i < pages; i++) {
			fill(want, i, gen[i]);
			bad += memcmp(want, mem + i * 512, 4096) != 0;
		}
		CHECK(bad == 0, "%zu of %zu pages differ", bad, pages);
	}
	return t_done();
}
