/*
 * A TCP server listening on 127.0.0.1 and on [::1], each on a port the kernel
 * picked (printed as "PORT4 n" and "PORT6 n"). It answers one connection on
 * each: reads a line and writes back "echo: " and the line. After both it
 * checks that its listeners still have their addresses and exits; no trigger.
 */
#include "rckpt_test.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

static int listener(int family, int *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int one = 1, s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

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
		setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	if (s < 0 || bind(s, (struct sockaddr *)&ss, len) || listen(s, 8))
		exit(3);
	len = sizeof(ss);
	getsockname(s, (struct sockaddr *)&ss, &len);
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return s;
}

static int local_port(int s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(s, (struct sockaddr *)&ss, &len))
		return -1;
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					     : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* Reads one line and answers it. */
static void serve(int l, const char *name)
{
	char line[256], out[300];
	size_t n = 0;
	int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);

	CHECK(c >= 0, "%s: accept: %s", name, strerror(errno));
	if (c < 0)
		return;
	while (n < sizeof(line) - 1) {
		ssize_t r = read(c, line + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (line[n++] == '\n')
			break;
	}
	line[n] = 0;
	CHECK(n > 0 && line[n - 1] == '\n', "%s: read a line: got %zu bytes", name, n);
	snprintf(out, sizeof(out), "echo: %s", line);
	CHECK(write(c, out, strlen(out)) == (ssize_t)strlen(out), "%s: answer: %s", name, strerror(errno));
	close(c);
}

int main(void)
{
	int port4, port6, l4, l6, served4 = 0, served6 = 0;

	t_init(1);
	l4 = listener(AF_INET, &port4);
	l6 = listener(AF_INET6, &port6);
	printf("PORT4 %d\nPORT6 %d\n", port4, port6);
	t_ready();
	while (!served4 || !served6) {
		struct pollfd p[2] = { { l4, POLLIN, 0 }, { l6, POLLIN, 0 } };
		/* A poll interrupted by the dump may come back with EINTR. */
		if (poll(p, 2, -1) < 0) {
			CHECK(errno == EINTR, "poll: %s", strerror(errno));
			if (errno != EINTR)
				break;
			continue;
		}
		if (!served4 && (p[0].revents & POLLIN)) {
			serve(l4, "127.0.0.1");
			served4 = 1;
		}
		if (!served6 && (p[1].revents & POLLIN)) {
			serve(l6, "[::1]");
			served6 = 1;
		}
	}
	CHECK(local_port(l4) == port4, "IPv4 listener port %d, want %d", local_port(l4), port4);
	CHECK(local_port(l6) == port6, "IPv6 listener port %d, want %d", local_port(l6), port6);
	return t_done();
}
