/*
 * One process holding argv[1] MiB of resident random private anonymous memory
 * (xorshift64, so nothing in it is zero, duplicated or compressible).
 */
#include "bench.h"

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 256, len = mib << 20;
	void *mem;

	b_init();
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 1;
	b_fill(mem, len, 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid());
	b_ready();
	b_wait();
}
