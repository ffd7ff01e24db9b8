/*
 * A seed workload of the fuzz corpus (see make-seeds.sh): one task holding
 * file descriptions of the kinds rckpt saves. argv[1] is a directory for its
 * files, argv[2] a comma-separated subset of: pipe fifo eventfd epoll signalfd
 * timerfd inotify memfd deleted lock unix inet (default all).
 * Prints "READY <pid>" and waits to be dumped.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

static int has(const char *set, const char *k)
{
	return strstr(set, k) != NULL;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	const char *set = argc > 2 ? argv[2] : "pipe,fifo,eventfd,epoll,signalfd,timerfd,inotify,memfd,deleted,lock,unix,inet";
	char path[4096];
	int efd = -1;

	if (has(set, "pipe")) {
		int p[2];
		pipe(p);
		write(p[1], "hello pipe", 10);
	}
	if (has(set, "fifo")) {
		snprintf(path, sizeof path, "%s/fifo", dir);
		mkfifo(path, 0600);
		int r = open(path, O_RDONLY | O_NONBLOCK);
		int w = open(path, O_WRONLY);
		write(w, "fifo data", 9);
		(void)r;
	}
	if (has(set, "eventfd"))
		efd = eventfd(7, EFD_SEMAPHORE);
	if (has(set, "epoll")) {
		int ep = epoll_create1(0);
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0x1234 };
		if (efd >= 0)
			epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
	}
	if (has(set, "signalfd")) {
		sigset_t m;
		sigemptyset(&m);
		sigaddset(&m, SIGUSR1);
		signalfd(-1, &m, 0);
	}
	if (has(set, "timerfd")) {
		int t = timerfd_create(CLOCK_MONOTONIC, 0);
		struct itimerspec its = { { 5, 0 }, { 100, 0 } };
		timerfd_settime(t, 0, &its, NULL);
	}
	if (has(set, "inotify")) {
		int i = inotify_init1(0);
		inotify_add_watch(i, dir, IN_CREATE);
		inotify_add_watch(i, "/etc", IN_DELETE);
	}
	if (has(set, "memfd")) {
		int m = memfd_create("fuzz-seed", MFD_ALLOW_SEALING);
		write(m, "memfd content", 13);
	}
	if (has(set, "deleted")) {
		snprintf(path, sizeof path, "%s/deleted", dir);
		int d = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		write(d, "deleted content", 15);
		unlink(path);
	}
	if (has(set, "lock")) {
		snprintf(path, sizeof path, "%s/flock", dir);
		int l = open(path, O_RDWR | O_CREAT, 0600);
		flock(l, LOCK_EX);
		snprintf(path, sizeof path, "%s/posix-lock", dir);
		int l2 = open(path, O_RDWR | O_CREAT, 0600);
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
		fcntl(l2, F_SETLK, &fl);
	}
	if (has(set, "unix")) {
		int sv[2], d[2];
		socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
		write(sv[0], "unix data", 9);
		socketpair(AF_UNIX, SOCK_DGRAM, 0, d);
		write(d[0], "m1", 2);
		write(d[0], "m2", 2);
	}
	if (has(set, "inet")) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		bind(s, (void *)&a, sizeof a);
		listen(s, 5);
		int u = socket(AF_INET6, SOCK_DGRAM, 0);
		struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
		bind(u, (void *)&a6, sizeof a6);
	}
	printf("READY %d\n", getpid());
	fflush(stdout);
	for (;;)
		pause();
}
