/*
 * Memory: 64 MiB of random anonymous memory, a sparse 64 GiB mapping
 * (MAP_NORESERVE: more than this machine could commit otherwise) with a few
 * touched pages, the brk heap, a read-only and a PROT_NONE region. Checks after
 * the trigger that everything is intact, with the same pid and protections.
 */
#include "rckpt_test.h"

#define BIG (64ul << 20)
#define SPARSE (64ul << 30)
#define HEAP (1ul << 20)
#define NTOUCH 16

int main(void)
{
	pid_t pid0;
	char *big, *sparse, *heap, *ro, *none, *brk0, perms[5];
	uint64_t big_hash, heap_hash;
	size_t touched[NTOUCH];
	int i;

	t_init(1);
	pid0 = getpid();
	big = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	t_random(big, BIG);
	big_hash = t_hash(big, BIG);

	sparse = mmap(NULL, SPARSE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	for (i = 0; i < NTOUCH; i++) {
		touched[i] = ((size_t)i * 7919 * 4096 * 13) % SPARSE & ~4095ul;
		memset(sparse + touched[i], 0x40 + i, 4096);
	}
	/* Reading an untouched page maps the zero page, which is not saved. */
	CHECK(sparse[SPARSE / 2 + 4096] == 0, "untouched page reads zero");

	brk0 = sbrk(0);
	heap = sbrk(HEAP);
	t_random(heap, HEAP);
	heap_hash = t_hash(heap, HEAP);
	brk0 = sbrk(0);

	ro = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(ro, 'r', 8192);
	mprotect(ro, 8192, PROT_READ);
	none = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(none, 'n', 8192);
	mprotect(none, 8192, PROT_NONE);

	t_say("TOUCHED %lu", (unsigned long)(BIG + NTOUCH * 4096 + HEAP + 16384));
	t_ready();
	/* After the first printf, which sets up stdout's buffer with malloc. */
	brk0 = sbrk(0);
	t_wait_trigger();

	CHECK(getpid() == pid0, "pid %d, was %d", getpid(), pid0);
	CHECK(syscall(SYS_gettid) == pid0, "tid");
	CHECK(t_hash(big, BIG) == big_hash, "64 MiB of random memory changed");
	for (i = 0; i < NTOUCH; i++) {
		char want = 0x40 + i;
		int j, ok = 1;
		for (j = 0; j < 4096; j++)
			ok &= sparse[touched[i] + j] == want;
		CHECK(ok, "sparse page %d at %#zx", i, touched[i]);
	}
	CHECK(sparse[SPARSE / 2 + 4096] == 0 && sparse[SPARSE - 1] == 0, "untouched pages read zero");
	CHECK(sbrk(0) == brk0, "brk %p, was %p", sbrk(0), brk0);
	CHECK(t_hash(heap, HEAP) == heap_hash, "heap contents changed");
	/* The heap still grows from where it was. */
	{
		char *more = sbrk(4096);
		CHECK(more == brk0, "sbrk grows from %p, not %p", more, brk0);
		memset(more, 1, 4096);
	}
	CHECK(t_maps_perms(ro, perms) && strcmp(perms, "r--p") == 0, "read-only region is %s", perms);
	CHECK(ro[0] == 'r' && ro[8191] == 'r', "read-only contents");
	CHECK(t_maps_perms(none, perms) && strcmp(perms, "---p") == 0, "PROT_NONE region is %s", perms);
	mprotect(none, 8192, PROT_READ);
	CHECK(none[0] == 'n' && none[8191] == 'n', "PROT_NONE contents");
	return t_done();
}
