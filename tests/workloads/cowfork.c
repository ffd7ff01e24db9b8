/*
 * A parent holding argv[1] MiB (default 1024) of random memory forks argv[2]
 * (default 8) children that only read it. After the trigger every process checks
 * the bytes; the parent reaps the children.
 */
#include "rckpt_test.h"
#include <sys/wait.h>

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 1024, len = mib << 20, i;
	int n = argc > 2 ? atoi(argv[2]) : 8, k;
	uint64_t *mem, x = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid(), hash;
	pid_t kids[64];

	t_init(1);
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (i = 0; i < len / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		mem[i] = x;
	}
	hash = t_hash(mem, len);
	for (k = 0; k < n && k < 64; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			volatile uint64_t sum = 0;
			/* Only reading: the pages stay shared with the parent. */
			for (i = 0; i < len / 8; i += 512)
				sum += mem[i];
			t_wait_trigger();
			CHECK(t_hash(mem, len) == hash, "child %d reads other bytes", k);
			exit(t_failures ? 1 : 0);
		}
	}
	usleep(200 * 1000);
	t_say("MIB %zu", mib);
	t_ready();
	t_wait_trigger();
	CHECK(t_hash(mem, len) == hash, "the parent's memory changed");
	for (k = 0; k < n && k < 64; k++) {
		int st = 0;
		CHECK(waitpid(kids[k], &st, 0) == kids[k] && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d ended with %#x", k, st);
	}
	return t_done();
}
