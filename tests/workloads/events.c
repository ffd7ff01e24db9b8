/*
 * Event objects, shared memory and locks, held by a parent and its child.
 * argv[1]: a directory for the watched, deleted and locked files.
 *
 *   eventfd    count 42 (O_NONBLOCK); a semaphore eventfd with count 3
 *   epoll      two registrations: the eventfd (data 0x1111) and a pipe with
 *              bytes in it (EPOLLET, data 0x2222)
 *   timerfd    CLOCK_MONOTONIC, every 20 ms: it keeps firing
 *   signalfd   SIGUSR1 blocked and pending
 *   inotify    IN_CREATE on the directory: a file made after restore shows up
 *              with the same watch descriptor
 *   memfd      "rckpt-test", 10000 bytes, sealed against shrink/grow/seal,
 *              mapped shared: a write through the fd shows in the mapping
 *   deleted    a file unlinked while open: content, size, offset, nlink 0
 *   shm        1 MiB MAP_SHARED|MAP_ANONYMOUS shared with the child: writes
 *              after restore are seen by the other process
 *   locks      the parent holds a flock, a POSIX write lock on [10, 30) and an
 *              OFD read lock; the child checks each conflicts
 */
#include "rckpt_test.h"
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#define SHM_SIZE (1 << 20)
#define MEMFD_SIZE 10000
#define GHOST_SIZE 5000

static char dir[4096];

static void path(char *out, const char *name)
{
	snprintf(out, 4096, "%s/%s", dir, name);
}

static unsigned char pat(int k, size_t i)
{
	return (unsigned char)(k * 13 + i * 5 + (i >> 9));
}

static void child_checks(void)
{
	char p[4096];
	int fd;
	struct flock fl;

	path(p, "flocked");
	fd = open(p, O_RDONLY | O_CLOEXEC);
	CHECK(flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK, "child: the flock is not held (%s)",
	      strerror(errno));
	close(fd);

	path(p, "posix");
	fd = open(p, O_RDWR | O_CLOEXEC);
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = 0;
	fl.l_len = 100;
	fcntl(fd, F_GETLK, &fl);
	CHECK(fl.l_type == F_WRLCK && fl.l_pid == getppid() && fl.l_start == 10 && fl.l_len == 20,
	      "child: POSIX lock type %d pid %d start %ld len %ld", fl.l_type, fl.l_pid, (long)fl.l_start,
	      (long)fl.l_len);
	close(fd);

	path(p, "ofd");
	fd = open(p, O_RDWR | O_CLOEXEC);
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fcntl(fd, F_OFD_GETLK, &fl);
	CHECK(fl.l_type == F_RDLCK, "child: OFD lock type %d", fl.l_type);
	close(fd);
}

int main(int argc, char **argv)
{
	int efd, sem, ep, pfd[2], tfd, sfd, ino, wd, mfd, ghost, flk, posix, ofd;
	unsigned char *shm, *mmem;
	static unsigned char buf[SHM_SIZE];
	char p[4096];
	sigset_t usr1;
	pid_t child;
	struct epoll_event ev;
	struct itimerspec its;
	struct flock fl;

	if (argc < 2)
		return 2;
	snprintf(dir, sizeof(dir), "%s", argv[1]);
	t_init(1);

	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	eventfd_write(efd, 42);
	sem = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC);

	if (pipe2(pfd, O_NONBLOCK | O_CLOEXEC))
		return 3;
	write(pfd[1], "xyz", 3);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.u64 = 0x1111;
	epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
	ev.events = EPOLLIN | EPOLLET;
	ev.data.u64 = 0x2222;
	epoll_ctl(ep, EPOLL_CTL_ADD, pfd[0], &ev);

	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	memset(&its, 0, sizeof(its));
	its.it_interval.tv_nsec = 20 * 1000 * 1000;
	its.it_value.tv_nsec = 20 * 1000 * 1000;
	timerfd_settime(tfd, 0, &its, NULL);

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	sfd = signalfd(-1, &usr1, SFD_NONBLOCK | SFD_CLOEXEC);
	kill(getpid(), SIGUSR1);

	mfd = memfd_create("rckpt-test", MFD_ALLOW_SEALING | MFD_CLOEXEC);
	for (int i = 0; i < MEMFD_SIZE; i++)
		buf[i] = pat(1, i);
	write(mfd, buf, MEMFD_SIZE);
	lseek(mfd, 777, SEEK_SET);
	mmem = mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);

	path(p, "ghost");
	ghost = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	for (int i = 0; i < GHOST_SIZE; i++)
		buf[i] = pat(2, i);
	write(ghost, buf, GHOST_SIZE);
	lseek(ghost, 1234, SEEK_SET);
	unlink(p);

	shm = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	for (int i = 0; i < 65536; i++)
		shm[i] = pat(3, i);

	path(p, "flocked");
	flk = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	flock(flk, LOCK_EX);
	path(p, "posix");
	posix = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = 10;
	fl.l_len = 20;
	fcntl(posix, F_SETLK, &fl);
	path(p, "ofd");
	ofd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_RDLCK;
	fl.l_whence = SEEK_SET;
	fcntl(ofd, F_OFD_SETLK, &fl);

	/* Last, so that no event is queued when the tree is dumped. */
	ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	/* A first watch removed again, so the one that stays is not wd 1. */
	wd = inotify_add_watch(ino, "/", IN_CREATE);
	inotify_rm_watch(ino, wd);
	wd = inotify_add_watch(ino, dir, IN_CREATE);
	{
		/* Queued events are not kept: start with none (the IN_IGNORED of the
		 * removed watch). */
		char evbuf[256];
		while (read(ino, evbuf, sizeof(evbuf)) > 0)
			;
	}

	child = fork();
	if (child == 0) {
		shm[512 * 1024] = 0xc5;
		t_wait_trigger();
		CHECK(shm[512 * 1024] == 0xc5 && shm[1000] == pat(3, 1000), "child: shared memory content");
		/* The parent writes this after the trigger. */
		for (int i = 0; i < 5000 && shm[768 * 1024] != 'P'; i++) {
			struct timespec ts = { 0, 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		CHECK(shm[768 * 1024] == 'P', "child: the parent's write after restore is not shared");
		shm[900 * 1024] = 'X';
		child_checks();
		exit(t_done() ? 1 : 0);
	}
	t_ready();
	t_wait_trigger();

	{
		struct epoll_event evs[4];
		int n = epoll_wait(ep, evs, 4, 1000), seen = 0;
		for (int i = 0; i < n; i++)
			seen |= (evs[i].data.u64 == 0x1111 && evs[i].events == EPOLLIN) ? 1
				: (evs[i].data.u64 == 0x2222 && evs[i].events == EPOLLIN) ? 2
											: 4;
		CHECK(n == 2 && seen == 3, "epoll: %d events, mask %d", n, seen);
	}
	{
		uint64_t v = 0;
		CHECK(read(efd, &v, 8) == 8 && v == 42, "eventfd count %lu", (unsigned long)v);
		CHECK(fcntl(efd, F_GETFL) & O_NONBLOCK, "eventfd lost O_NONBLOCK");
		for (int i = 0; i < 3; i++)
			CHECK(read(sem, &v, 8) == 8 && v == 1, "semaphore read %d: %lu", i, (unsigned long)v);
		CHECK(read(sem, &v, 8) < 0 && errno == EAGAIN, "semaphore count above 3");
	}
	{
		struct itimerspec cur;
		uint64_t n1 = 0, n2 = 0;
		timerfd_gettime(tfd, &cur);
		CHECK(cur.it_interval.tv_sec == 0 && cur.it_interval.tv_nsec == 20 * 1000 * 1000, "timerfd interval %ld",
		      cur.it_interval.tv_nsec);
		CHECK(read(tfd, &n1, 8) == 8 && n1 >= 1, "timerfd first read %lu", (unsigned long)n1);
		CHECK(read(tfd, &n2, 8) == 8 && n2 >= 1, "timerfd keeps firing %lu", (unsigned long)n2);
	}
	{
		struct signalfd_siginfo si;
		CHECK(read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR1, "signalfd: no pending SIGUSR1");
	}
	{
		char evbuf[4096];
		struct inotify_event *ie = (struct inotify_event *)evbuf;
		int fd;
		ssize_t r = -1;
		path(p, "made-after-restore");
		fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		close(fd);
		for (int i = 0; i < 100 && r < 0; i++) {
			struct pollfd pf = { ino, POLLIN, 0 };
			poll(&pf, 1, 10);
			r = read(ino, evbuf, sizeof(evbuf));
		}
		CHECK(r > 0 && ie->wd == wd && (ie->mask & IN_CREATE) && strcmp(ie->name, "made-after-restore") == 0,
		      "inotify: %zd bytes, wd %d (want %d)", r, r > 0 ? ie->wd : -1, wd);
	}
	{
		char link[256] = { 0 }, lp[64];
		snprintf(lp, sizeof(lp), "/proc/self/fd/%d", mfd);
		readlink(lp, link, sizeof(link) - 1);
		CHECK(strcmp(link, "/memfd:rckpt-test (deleted)") == 0, "memfd link %s", link);
		CHECK(fcntl(mfd, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), "memfd seals %#x",
		      fcntl(mfd, F_GET_SEALS));
		CHECK(lseek(mfd, 0, SEEK_CUR) == 777, "memfd offset %ld", (long)lseek(mfd, 0, SEEK_CUR));
		pread(mfd, buf, MEMFD_SIZE, 0);
		int ok = 1;
		for (int i = 0; i < MEMFD_SIZE; i++)
			ok &= buf[i] == pat(1, i) && mmem[i] == pat(1, i);
		CHECK(ok, "memfd content");
		pwrite(mfd, "M", 1, 5);
		CHECK(mmem[5] == 'M', "memfd mapping is not the memfd");
		CHECK(ftruncate(mfd, 1) < 0 && errno == EPERM, "memfd seal against shrinking lost");
	}
	{
		struct stat stt;
		char link[4200] = { 0 }, lp[64];
		fstat(ghost, &stt);
		CHECK(stt.st_nlink == 0 && stt.st_size == GHOST_SIZE && (stt.st_mode & 0777) == 0640,
		      "deleted file: nlink %lu size %ld mode %o", (unsigned long)stt.st_nlink, (long)stt.st_size,
		      stt.st_mode & 0777);
		CHECK(lseek(ghost, 0, SEEK_CUR) == 1234, "deleted file offset %ld", (long)lseek(ghost, 0, SEEK_CUR));
		pread(ghost, buf, GHOST_SIZE, 0);
		int ok = 1;
		for (int i = 0; i < GHOST_SIZE; i++)
			ok &= buf[i] == pat(2, i);
		CHECK(ok, "deleted file content");
		snprintf(lp, sizeof(lp), "/proc/self/fd/%d", ghost);
		readlink(lp, link, sizeof(link) - 1);
		CHECK(strstr(link, "(deleted)") != NULL, "deleted file link %s", link);
	}
	{
		CHECK(flock(flk, LOCK_EX | LOCK_NB) == 0, "flock: the holder cannot take it again");
		shm[768 * 1024] = 'P';
		int st = 0;
		CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child ended %#x", st);
		CHECK(shm[900 * 1024] == 'X', "the child's write after restore is not shared");
		CHECK(shm[512 * 1024] == 0xc5, "shared memory lost the child's byte");
	}
	return t_done();
}
