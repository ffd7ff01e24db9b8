/*
 * A task holding something rckpt refuses (argv[1]: socket, shmem, memfd,
 * deleted): the dump must refuse, name it, and leave the task as it was.
 */
#include "rckpt_test.h"
#include <sys/socket.h>

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "socket";
	char *p = NULL;

	t_init(1);
	if (strcmp(what, "socket") == 0) {
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		dup2(s, 5);
		close(s);
	} else if (strcmp(what, "shmem") == 0) {
		p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	} else if (strcmp(what, "memfd") == 0) {
		int fd = memfd_create("rckpt-test", 0);
		if (ftruncate(fd, 8192))
			abort();
		p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
	} else {
		char path[] = "/tmp/rckpt-deleted-XXXXXX";
		int fd = mkstemp(path);
		if (ftruncate(fd, 8192))
			abort();
		p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
		close(fd);
		unlink(path);
	}
	if (p)
		memset(p, 'z', 8192);
	t_ready();
	t_wait_trigger();
	if (p)
		CHECK(p[0] == 'z' && p[8191] == 'z', "memory changed");
	if (strcmp(what, "socket") == 0)
		CHECK(fcntl(5, F_GETFD) >= 0, "fd 5 is gone");
	return t_done();
}
