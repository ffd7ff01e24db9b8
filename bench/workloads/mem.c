/*
 * One process holding argv[1] MiB of resident random private anonymous memory
 * (xorshift64, so nothing in it is zero, duplicated or compressible).
 *
 * With argv[2] = M (MiB, more than argv[1]): one mapping of M MiB
 * (MAP_NORESERVE) of which only argv[1] MiB are touched, in 2 MiB pieces spread
 * evenly over it: an address space far larger than what is resident.
 */
#include "bench.h"

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 256, len = mib << 20;
	size_t mapped = argc > 2 ? strtoul(argv[2], NULL, 0) << 20 : len;
	uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	char *mem;

	b_init();
	if (mapped < len)
		mapped = len;
	mem = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		return 1;
	if (mapped == len) {
		b_fill(mem, len, seed);
	} else {
		size_t piece = 2u << 20, pieces = len / piece, stride = mapped / pieces / piece * piece, i;

		for (i = 0; i < pieces; i++)
			b_fill(mem + i * stride, piece, seed + i);
	}
	b_ready();
	b_wait();
}
