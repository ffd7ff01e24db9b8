/*
 * An established loopback TCP connection with both ends in the tree: the
 * parent listens on 127.0.0.1 (or [::1] with argv[1] "6"), its child connects.
 *
 *   client -> server  the child writes without blocking until the kernel takes
 *                     no more: the server's receive queue is full (window
 *                     closed) and the rest waits unsent in the child's send queue
 *   server -> client  3000 bytes queued unread in the child's receive queue
 *
 * After the trigger both ends check their addresses, the child reads the 3000
 * bytes and writes the rest of C2S_TOTAL bytes, the parent reads all of them,
 * answers 5000 bytes and gets "bye!" back. Every byte is checked. The parent
 * reaps the child and checks it passed.
 */
#include "rckpt_test.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define C2S_TOTAL (16u << 20)
#define S2C_BEFORE 3000
#define S2C_AFTER 5000

static unsigned char pattern(int stream, size_t i)
{
	return (unsigned char)(stream * 31 + i * 7 + (i >> 9));
}

static int read_full(int fd, void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = read(fd, (char *)buf + done, n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += r;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = write(fd, (const char *)buf + done, n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += r;
	}
	return 0;
}

/* Reads n bytes of `stream` starting at index `from`, checking each. */
static int read_checked(int fd, int stream, size_t from, size_t n, const char *what)
{
	static unsigned char buf[256 * 1024];
	size_t done = 0;

	while (done < n) {
		size_t want = n - done < sizeof(buf) ? n - done : sizeof(buf);
		if (read_full(fd, buf, want)) {
			CHECK(0, "%s: read failed at byte %zu of %zu: %s", what, done, n, strerror(errno));
			return -1;
		}
		for (size_t i = 0; i < want; i++)
			if (buf[i] != pattern(stream, from + done + i)) {
				CHECK(0, "%s: byte %zu differs", what, done + i);
				return -1;
			}
		done += want;
	}
	CHECK(1, "%s", what);
	return 0;
}

static int write_pattern(int fd, int stream, size_t from, size_t n)
{
	static unsigned char buf[256 * 1024];
	size_t done = 0;

	while (done < n) {
		size_t k = n - done < sizeof(buf) ? n - done : sizeof(buf);
		for (size_t i = 0; i < k; i++)
			buf[i] = pattern(stream, from + done + i);
		if (write_full(fd, buf, k))
			return -1;
		done += k;
	}
	return 0;
}

static void names(int s, struct sockaddr_storage *self, struct sockaddr_storage *peer)
{
	socklen_t l1 = sizeof(*self), l2 = sizeof(*peer);

	memset(self, 0, sizeof(*self));
	memset(peer, 0, sizeof(*peer));
	getsockname(s, (struct sockaddr *)self, &l1);
	getpeername(s, (struct sockaddr *)peer, &l2);
}

static void check_names(int s, const struct sockaddr_storage *self, const struct sockaddr_storage *peer,
			const char *who)
{
	struct sockaddr_storage a, b;

	names(s, &a, &b);
	CHECK(!memcmp(&a, self, sizeof(a)), "%s: local address changed", who);
	CHECK(!memcmp(&b, peer, sizeof(b)), "%s: peer address changed", who);
}

int main(int argc, char **argv)
{
	int family = argc > 1 && !strcmp(argv[1], "6") ? AF_INET6 : AF_INET;
	struct sockaddr_storage ss, self, peer;
	socklen_t len;
	int l, s, sync_[2], status;
	static unsigned char buf[S2C_BEFORE];
	pid_t child;

	t_init(1);
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	}
	l = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&ss, len) || listen(l, 4) || pipe(sync_))
		return 3;
	len = sizeof(ss);
	getsockname(l, (struct sockaddr *)&ss, &len);

	child = fork();
	if (child == 0) {
		size_t sent = 0;
		int c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), q = 0;
		char one = 'r';

		close(l);
		if (c < 0 || connect(c, (struct sockaddr *)&ss, len))
			_exit(4);
		fcntl(c, F_SETFL, O_NONBLOCK);
		for (;;) {
			static unsigned char chunk[64 * 1024];
			ssize_t r;
			for (size_t i = 0; i < sizeof(chunk); i++)
				chunk[i] = pattern(1, sent + i);
			r = write(c, chunk, sizeof(chunk));
			if (r < 0 && errno == EAGAIN)
				break;
			if (r <= 0)
				_exit(5);
			sent += r;
		}
		/* The server's bytes have arrived before the dump. */
		for (int i = 0; i < 5000 && q < S2C_BEFORE; i++) {
			struct timespec ts = { 0, 1000 * 1000 };
			ioctl(c, FIONREAD, &q);
			if (q < S2C_BEFORE)
				nanosleep(&ts, NULL);
		}
		if (q != S2C_BEFORE)
			_exit(6);
		names(c, &self, &peer);
		printf("CLIENT queued %zu\n", sent);
		fflush(stdout);
		write(sync_[1], &one, 1);
		t_wait_trigger();

		check_names(c, &self, &peer, "client");
		fcntl(c, F_SETFL, 0);
		read_checked(c, 2, 0, S2C_BEFORE, "client: the bytes queued before the dump");
		CHECK(write_pattern(c, 1, sent, C2S_TOTAL - sent) == 0, "client: write the rest: %s", strerror(errno));
		read_checked(c, 3, 0, S2C_AFTER, "client: the answer");
		CHECK(write_full(c, "bye!", 4) == 0, "client: write bye: %s", strerror(errno));
		_exit(t_done());
	}
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		return 7;
	for (size_t i = 0; i < S2C_BEFORE; i++)
		buf[i] = pattern(2, i);
	if (write_full(s, buf, S2C_BEFORE))
		return 8;
	if (read_full(sync_[0], buf, 1))
		return 9;
	names(s, &self, &peer);
	t_ready();
	t_wait_trigger();

	check_names(s, &self, &peer, "server");
	read_checked(s, 1, 0, C2S_TOTAL, "server: everything the client wrote");
	CHECK(write_pattern(s, 3, 0, S2C_AFTER) == 0, "server: answer: %s", strerror(errno));
	CHECK(read_full(s, buf, 4) == 0 && !memcmp(buf, "bye!", 4), "server: bye");
	CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "client exited with status %#x", status);
	return t_done();
}
