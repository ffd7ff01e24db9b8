/*
 * argv[1] MiB of pages, each filled from (its index, its generation). SIGUSR1
 * rewrites every 100th page (1%) with a new generation and says "WROTE n";
 * after the trigger every page is checked against its generation.
 *
 * With argv[2] = "reshape", the first SIGUSR1 also changes what a write tracker
 * cannot see, each checked
 * after the trigger too: every 100th page (offset 50) is dropped (MADV_DONTNEED:
 * it must come back as zeroes, not as the pre-dump's copy); a region B moves
 * (mremap) onto the place of a region A, unmapped, which held other bytes at
 * the pre-dump; a region C is mapped and filled.
 */
#include "rckpt_test.h"
#include <sys/mman.h>

#define ZERO UINT32_MAX /* generation of a dropped page */
#define SIDE 64 /* pages in each of A, B and C */

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
	int reshape = argc > 2 && !strcmp(argv[2], "reshape"), moved_ok = 0;
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
	/* A and B: distinct contents (indexes past the main area's). */
	char *a = mmap(NULL, SIDE * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *b = mmap(NULL, SIDE * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *c = NULL;
	for (size_t i = 0; i < SIDE; i++) {
		fill((uint64_t *)(a + i * 4096), pages + i, 7);
		fill((uint64_t *)(b + i * 4096), pages + SIDE + i, 7);
	}
	t_ready();
	while (!t_trigger) {
		if (rewrite) {
			rewrite = 0;
			rounds++;
			for (size_t i = rounds % 100; i < pages; i += 100)
				fill(mem + i * 512, i, ++gen[i]);
			if (rounds == 1 && reshape) {
				for (size_t i = 50; i < pages; i += 100) {
					madvise(mem + i * 512, 4096, MADV_DONTNEED);
					gen[i] = ZERO;
				}
				moved_ok = mremap(b, SIDE * 4096, SIDE * 4096, MREMAP_MAYMOVE | MREMAP_FIXED, a) == a;
				b = a;
				c = mmap(NULL, SIDE * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
				for (size_t i = 0; i < SIDE; i++)
					fill((uint64_t *)(c + i * 4096), pages + 2 * SIDE + i, 9);
			}
			t_say("WROTE %zu", rounds);
		}
		struct timespec ts = { 0, 2 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	{
		uint64_t want[512];
		size_t bad = 0;
		for (size_t i = 0; i < pages; i++) {
			if (gen[i] == ZERO)
				memset(want, 0, 4096);
			else
				fill(want, i, gen[i]);
			bad += memcmp(want, mem + i * 512, 4096) != 0;
		}
		CHECK(bad == 0, "%zu of %zu pages differ", bad, pages);
		if (rounds >= 1 && reshape) {
			size_t moved = 0, fresh = 0;
			for (size_t i = 0; i < SIDE; i++) {
				fill(want, pages + SIDE + i, 7);
				moved += memcmp(want, b + i * 4096, 4096) != 0;
				fill(want, pages + 2 * SIDE + i, 9);
				fresh += memcmp(want, c + i * 4096, 4096) != 0;
			}
			CHECK(moved_ok, "mremap onto A's place failed");
			CHECK(moved == 0, "%zu of %d pages moved onto A's place differ", moved, SIDE);
			CHECK(fresh == 0, "%zu of %d pages of the region mapped since differ", fresh, SIDE);
		}
	}
	return t_done();
}
