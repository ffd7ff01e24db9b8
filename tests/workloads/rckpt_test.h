/*
 * Self-checking workloads for rckpt's integration tests.
 *
 * A workload starts a new session, sets up one kind of state, prints
 * "READY <pid>" and waits. The test dumps it, restores it, and sends the
 * trigger signal (SIGUSR2); the workload then checks its own state and prints
 * one line per failed check ("FAIL ...") and a summary ("PASSED n checks" or
 * "FAILED ..."), and exits 0 only if every check passed.
 */
#ifndef RCKPT_TEST_H
#define RCKPT_TEST_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int t_checks, t_failures;
static volatile sig_atomic_t t_trigger;

static void t_on_trigger(int sig)
{
	(void)sig;
	t_trigger = 1;
}

__attribute__((format(printf, 4, 5))) static void t_check(int ok, const char *expr, int line, const char *fmt, ...)
{
	va_list ap;

	t_checks++;
	if (ok)
		return;
	t_failures++;
	printf("FAIL line %d: %s: ", line, expr);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

#define CHECK(cond, ...) t_check(!!(cond), #cond, __LINE__, __VA_ARGS__)

/* A new session, so the tree is not part of the test's, and the trigger. */
static void t_init(int restart)
{
	struct sigaction sa;

	setsid();
	/* Nothing inherited from whoever ran the tests beyond stdio. */
	syscall(SYS_close_range, 3, ~0u, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = t_on_trigger;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigaction(SIGUSR2, &sa, NULL);
}

/* glibc 2.35+ registers an rseq area per thread, in its TCB. */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

static void t_ready(void)
{
	/* The kernel rewrites the rseq area's CPU fields whenever the task returns
	 * to user space on another CPU: tests comparing memory skip it. */
	if (&__rseq_size && __rseq_size)
		printf("RSEQ %lu\n", (unsigned long)((char *)__builtin_thread_pointer() + __rseq_offset));
	printf("READY %d\n", getpid());
	fflush(stdout);
}

__attribute__((unused)) static void t_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* Sleeps in short naps until the trigger arrives. */
__attribute__((unused)) static void t_wait_trigger(void)
{
	while (!t_trigger) {
		struct timespec ts = { 0, 2 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

static int t_done(void)
{
	if (t_failures)
		printf("FAILED %d of %d checks\n", t_failures, t_checks);
	else
		printf("PASSED %d checks\n", t_checks);
	fflush(stdout);
	return t_failures ? 1 : 0;
}

/* A fast 64-bit hash (splitmix-style mixing of each word). */
__attribute__((unused)) static uint64_t t_hash(const void *p, size_t n)
{
	const uint64_t *w = p;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
	size_t i;

	for (i = 0; i < n / 8; i++) {
		uint64_t x = w[i] + 0x9e3779b97f4a7c15ull * (i + 1);
		x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
		x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
		h ^= x ^ (x >> 31);
		h = (h << 7) | (h >> 57);
	}
	return h;
}

__attribute__((unused)) static void t_random(void *p, size_t n)
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	size_t done = 0;

	while (done < n) {
		ssize_t r = read(fd, (char *)p + done, n - done);
		if (r <= 0)
			abort();
		done += r;
	}
	close(fd);
}

/* The permissions column of /proc/self/maps for the VMA starting at addr. */
__attribute__((unused)) static int t_maps_perms(void *addr, char perms[5])
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int found = 0;

	while (f && fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		char p[5];
		if (sscanf(line, "%lx-%lx %4s", &s, &e, p) == 3 && s == (unsigned long)addr) {
			memcpy(perms, p, 5);
			found = 1;
			break;
		}
	}
	if (f)
		fclose(f);
	return found;
}

#endif
