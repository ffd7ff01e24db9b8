/*
 * Pipes, sockets and a FIFO between a parent and its children, and one file
 * description shared through fork. argv[1]: a directory for the FIFO, the
 * shared file and the bound socket.
 *
 *   pipe       parent -> child A, 20 KiB unread, 128 KiB pipe size; child A's
 *              end O_NONBLOCK
 *   stream     socketpair, 3000 bytes queued to A and 2000 to the parent, A's
 *              SO_PEEK_OFF at 100
 *   dgram      socketpair, three messages (10, 200, 3000 bytes) queued to A
 *   seqpacket  socketpair, two messages queued to the parent
 *   FIFO       5000 bytes queued, read by A
 *   file       one description shared by the parent and A, offset 150
 *   listener   a unix stream socket bound and listening; A connects after restore
 *   wake       child B blocked in read() on an empty pipe; the parent writes
 *              after the trigger and B must get the bytes
 *
 * Each process checks what it holds after the trigger; the parent reaps the
 * children and checks they passed.
 */
#include "rckpt_test.h"
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#define PIPE_BYTES (20 * 1024)
#define PIPE_SIZE (128 * 1024)

static unsigned char pattern(int stream, size_t i)
{
	return (unsigned char)(stream * 31 + i * 7 + (i >> 8));
}

static void fill(unsigned char *buf, int stream, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = pattern(stream, i);
}

static int same(const unsigned char *buf, int stream, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i] != pattern(stream, i))
			return 0;
	return 1;
}

static ssize_t read_full(int fd, void *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = read(fd, (char *)buf + done, n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			struct timespec ts = { 0, 1000 * 1000 };
			nanosleep(&ts, NULL);
			continue;
		}
		if (r <= 0)
			return done ? (ssize_t)done : r;
		done += r;
	}
	return done;
}

static void write_full(int fd, const void *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = write(fd, (const char *)buf + done, n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			abort();
		done += r;
	}
}

static struct sockaddr_un listen_addr;

int main(int argc, char **argv)
{
	static unsigned char buf[64 * 1024], want[64 * 1024];
	int pipefd[2], st[2], dg[2], sp[2], wake[2], sync_[2];
	char fifo[4096], shared[4096];
	int fifo_w, filefd, lsock;
	pid_t a, b;

	if (argc < 2)
		return 2;
	t_init(1);
	snprintf(fifo, sizeof(fifo), "%s/fifo", argv[1]);
	snprintf(shared, sizeof(shared), "%s/shared", argv[1]);
	unlink(fifo);
	if (mkfifo(fifo, 0600))
		return 3;

	if (pipe2(pipefd, O_CLOEXEC) || socketpair(AF_UNIX, SOCK_STREAM, 0, st) ||
	    socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) || pipe(wake) ||
	    pipe(sync_))
		return 4;
	if (fcntl(pipefd[1], F_SETPIPE_SZ, PIPE_SIZE) < 0)
		return 5;
	fill(buf, 1, PIPE_BYTES);
	write_full(pipefd[1], buf, PIPE_BYTES);
	fill(buf, 2, 3000);
	write_full(st[0], buf, 3000);
	fill(buf, 3, 2000);
	write_full(st[1], buf, 2000);
	for (int m = 0; m < 3; m++) {
		size_t len[3] = { 10, 200, 3000 };
		fill(buf, 10 + m, len[m]);
		if (send(dg[0], buf, len[m], 0) != (ssize_t)len[m])
			return 6;
	}
	for (int m = 0; m < 2; m++) {
		fill(buf, 20 + m, 100 + m);
		if (send(sp[1], buf, 100 + m, 0) != 100 + m)
			return 7;
	}
	fifo_w = open(fifo, O_RDWR | O_CLOEXEC);
	fill(buf, 4, 5000);
	write_full(fifo_w, buf, 5000);
	filefd = open(shared, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	memset(buf, 'p', 100);
	write_full(filefd, buf, 100);

	lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	listen_addr.sun_family = AF_UNIX;
	snprintf(listen_addr.sun_path, sizeof(listen_addr.sun_path), "%s/sock", argv[1]);
	unlink(listen_addr.sun_path);
	if (bind(lsock, (struct sockaddr *)&listen_addr, sizeof(listen_addr)) || listen(lsock, 4))
		return 8;

	a = fork();
	if (a == 0) {
		int peek = 100, fd;
		socklen_t pl = sizeof(peek);
		char c = 'a';

		fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
		setsockopt(st[1], SOL_SOCKET, SO_PEEK_OFF, &peek, sizeof(peek));
		memset(buf, 'c', 50);
		write_full(filefd, buf, 50);
		write_full(sync_[1], &c, 1);
		t_wait_trigger();

		CHECK(fcntl(pipefd[0], F_GETPIPE_SZ) == PIPE_SIZE, "A: pipe size %d", fcntl(pipefd[0], F_GETPIPE_SZ));
		CHECK(fcntl(pipefd[0], F_GETFL) & O_NONBLOCK, "A: pipe end lost O_NONBLOCK");
		CHECK(fcntl(pipefd[0], F_GETFD) & FD_CLOEXEC, "A: pipe end lost FD_CLOEXEC");
		CHECK(!(fcntl(wake[0], F_GETFD) & FD_CLOEXEC), "A: wake pipe gained FD_CLOEXEC");
		CHECK(read_full(pipefd[0], buf, PIPE_BYTES) == PIPE_BYTES && same(buf, 1, PIPE_BYTES), "A: pipe data");
		CHECK(read(pipefd[0], buf, 1) < 0 && errno == EAGAIN, "A: pipe holds more than it had");

		pl = sizeof(peek);
		getsockopt(st[1], SOL_SOCKET, SO_PEEK_OFF, &peek, &pl);
		CHECK(peek == 100, "A: SO_PEEK_OFF %d", peek);
		CHECK(recv(st[1], buf, 10, MSG_PEEK) == 10 && same(buf, 2, 0) && buf[0] == pattern(2, 100),
		      "A: peek at offset 100");
		CHECK(read_full(st[1], buf, 3000) == 3000 && same(buf, 2, 3000), "A: stream data");

		for (int m = 0; m < 3; m++) {
			size_t len[3] = { 10, 200, 3000 };
			ssize_t r = recv(dg[1], buf, sizeof(buf), MSG_DONTWAIT);
			CHECK(r == (ssize_t)len[m] && same(buf, 10 + m, len[m]), "A: datagram %d: %zd bytes", m, r);
		}
		CHECK(recv(dg[1], buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == EAGAIN, "A: an extra datagram");

		CHECK(read_full(fd, buf, 5000) == 5000 && same(buf, 4, 5000), "A: FIFO data");

		CHECK(lseek(filefd, 0, SEEK_CUR) == 150, "A: shared offset %ld", (long)lseek(filefd, 0, SEEK_CUR));
		memset(buf, 'C', 10);
		write_full(filefd, buf, 10);

		{
			int c2 = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			CHECK(connect(c2, (struct sockaddr *)&listen_addr, sizeof(listen_addr)) == 0,
			      "A: connect to the restored listener: %s", strerror(errno));
			write_full(c2, "hello", 5);
			close(c2);
		}
		exit(t_done() ? 1 : 0);
	}
	b = fork();
	if (b == 0) {
		char got[8] = { 0 };
		char c = 'b';
		write_full(sync_[1], &c, 1);
		/* Blocked here across the dump and restore. */
		ssize_t r = read(wake[0], got, 4);
		CHECK(r == 4 && memcmp(got, "wake", 4) == 0, "B: read returned %zd (%s)", r, r < 0 ? strerror(errno) : got);
		exit(t_done() ? 1 : 0);
	}
	{
		char c;
		read_full(sync_[0], &c, 1);
		read_full(sync_[0], &c, 1);
	}
	close(sync_[0]);
	close(sync_[1]);
	t_ready();
	t_wait_trigger();

	CHECK(read_full(st[0], buf, 2000) == 2000 && same(buf, 3, 2000), "parent: stream data");
	for (int m = 0; m < 2; m++) {
		ssize_t r = recv(sp[0], buf, sizeof(buf), MSG_DONTWAIT);
		CHECK(r == 100 + m && same(buf, 20 + m, 100 + m), "parent: seqpacket %d: %zd bytes", m, r);
	}
	{
		int c = accept(lsock, NULL, NULL);
		char got[8] = { 0 };
		CHECK(c >= 0 && read_full(c, got, 5) == 5 && memcmp(got, "hello", 5) == 0, "parent: accepted %d", c);
	}
	write_full(wake[1], "wake", 4);
	{
		int st_ = 0;
		CHECK(waitpid(a, &st_, 0) == a && WIFEXITED(st_) && WEXITSTATUS(st_) == 0, "child A ended %#x", st_);
		CHECK(waitpid(b, &st_, 0) == b && WIFEXITED(st_) && WEXITSTATUS(st_) == 0, "child B ended %#x", st_);
	}
	CHECK(lseek(filefd, 0, SEEK_CUR) == 160, "parent: shared offset %ld", (long)lseek(filefd, 0, SEEK_CUR));
	pread(filefd, buf, 160, 0);
	memset(want, 'p', 100);
	memset(want + 100, 'c', 50);
	memset(want + 150, 'C', 10);
	CHECK(memcmp(buf, want, 160) == 0, "parent: shared file content");
	(void)want;
	return t_done();
}
