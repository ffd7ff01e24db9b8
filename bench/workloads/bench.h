/*
 * Shared by rckpt's benchmark workloads (the C files in bench/workloads/). A workload starts a
 * new session, closes every fd >= 3 it may have inherited, sets up its state,
 * prints "READY <pid>" on stdout (a pipe to the benchmark) and waits until it is
 * killed. The benchmark starts it with stdin and stderr on /dev/null.
 */
#ifndef RCKPT_BENCH_H
#define RCKPT_BENCH_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static void b_init(void)
{
	setsid();
	syscall(SYS_close_range, 3, ~0u, 0);
}

static void b_ready(void)
{
	printf("READY %d\n", getpid());
	fflush(stdout);
}

/* Waits for good (until SIGKILL). */
__attribute__((noreturn, unused)) static void b_wait(void)
{
	for (;;)
		pause();
}

/* Fills n bytes (a multiple of 8) with xorshift64 output: random, incompressible,
 * and much faster than /dev/urandom. */
__attribute__((unused)) static void b_fill(void *p, size_t n, uint64_t seed)
{
	uint64_t *w = p, x = seed | 1;
	size_t i;

	for (i = 0; i < n / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
}

/* Reads exactly n bytes (startup handshakes between the tree's processes). */
__attribute__((unused)) static void b_read_all(int fd, size_t n)
{
	char buf[512];
	while (n) {
		ssize_t r = read(fd, buf, n < sizeof(buf) ? n : sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			abort();
		n -= r;
	}
}

#endif
