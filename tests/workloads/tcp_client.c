/*
 * An established TCP connection to a peer outside the tree: connects to
 * 127.0.0.1:argv[1] (the test's listener; [::1] with argv[2] "6"), writes 1000 bytes (stream 1) and
 * waits until the peer's 2000 bytes (stream 2) are queued, unread. After the
 * trigger it reads those and 3000 more the peer sent while the tree was down
 * (stream 2 continued), writes 4000 bytes (stream 1 continued) and reads the
 * peer's last 100 bytes (stream 3). Every byte is checked.
 */
#include "rckpt_test.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

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

static void write_pattern(int fd, int stream, size_t from, size_t n)
{
	unsigned char buf[8192];

	for (size_t i = 0; i < n; i++)
		buf[i] = pattern(stream, from + i);
	CHECK(write(fd, buf, n) == (ssize_t)n, "write %zu bytes of stream %d: %s", n, stream, strerror(errno));
}

static void read_checked(int fd, int stream, size_t from, size_t n, const char *what)
{
	unsigned char buf[8192];

	if (read_full(fd, buf, n)) {
		CHECK(0, "%s: read: %s", what, strerror(errno));
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (buf[i] != pattern(stream, from + i)) {
			CHECK(0, "%s: byte %zu differs", what, i);
			return;
		}
	CHECK(1, "%s", what);
}

int main(int argc, char **argv)
{
	int v6 = argc > 2 && !strcmp(argv[2], "6");
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
	int c, q = 0;

	if (argc < 2)
		return 2;
	t_init(1);
	a.sin_port = a6.sin6_port = htons(atoi(argv[1]));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a6.sin6_addr = in6addr_loopback;
	c = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || (v6 ? connect(c, (struct sockaddr *)&a6, sizeof(a6)) : connect(c, (struct sockaddr *)&a, sizeof(a))))
		return 3;
	write_pattern(c, 1, 0, 1000);
	for (int i = 0; i < 10000 && q < 2000; i++) {
		struct timespec ts = { 0, 1000 * 1000 };
		ioctl(c, FIONREAD, &q);
		if (q < 2000)
			nanosleep(&ts, NULL);
	}
	if (q != 2000)
		return 4;
	t_ready();
	t_wait_trigger();

	read_checked(c, 2, 0, 2000, "the bytes queued before the dump");
	read_checked(c, 2, 2000, 3000, "the bytes sent while the tree was down");
	write_pattern(c, 1, 1000, 4000);
	read_checked(c, 3, 0, 100, "the peer's last bytes");
	return t_done();
}
