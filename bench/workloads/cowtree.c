/*
 * A forked tree sharing memory: the parent fills argv[1] MiB (default 1024) of
 * private anonymous memory with random bytes, then forks argv[2] children
 * (default 8) that read every page of it (so each maps it, copy-on-write, still
 * shared) and wait. The parent says READY once every child has read it all.
 */
#include "bench.h"

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 1024, len = mib << 20, i;
	int n = argc > 2 ? atoi(argv[2]) : 8, k, sync_fd[2];
	uint64_t *mem;

	b_init();
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || pipe(sync_fd))
		return 1;
	b_fill(mem, len, 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid());
	for (k = 0; k < n; k++) {
		pid_t p = fork();
		if (p < 0)
			return 1;
		if (p == 0) {
			volatile uint64_t sum = 0;
			char c = 1;
			for (i = 0; i < len / 8; i += 512)
				sum += mem[i];
			if (write(sync_fd[1], &c, 1) != 1)
				abort();
			close(sync_fd[0]);
			close(sync_fd[1]);
			b_wait();
		}
	}
	close(sync_fd[1]);
	b_read_all(sync_fd[0], n);
	close(sync_fd[0]);
	b_ready();
	b_wait();
}
