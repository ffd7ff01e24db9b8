/*
 * Files: a private file mapping with copy-on-write pages, a MAP_SHARED file
 * mapping still backed by its file, open files keeping offset, access mode and
 * flags at chosen fd numbers, character devices, the working directory and umask.
 * argv[1] is a directory for the files.
 */
#include "rckpt_test.h"
#include <sys/stat.h>

#define PSZ 4096

static int make_file(const char *dir, const char *name, size_t len, char fill)
{
	char path[4096], *buf = malloc(len);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	memset(buf, fill, len);
	if (write(fd, buf, len) != (ssize_t)len)
		abort();
	free(buf);
	return fd;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	int a, b, c, d, i;
	char *priv, *shared, buf[256], cwd[4096], link[256];
	char pathc[4096];

	t_init(1);
	a = make_file(dir, "private.dat", 4 * PSZ, 'a');
	priv = mmap(NULL, 4 * PSZ, PROT_READ | PROT_WRITE, MAP_PRIVATE, a, 0);
	memset(priv + 1 * PSZ, 'X', PSZ);
	memset(priv + 3 * PSZ, 'Y', PSZ);
	close(a);

	b = make_file(dir, "shared.dat", 4 * PSZ, 'b');
	shared = mmap(NULL, 4 * PSZ, PROT_READ | PROT_WRITE, MAP_SHARED, b, 0);
	memcpy(shared, "hello", 5);

	c = make_file(dir, "data.dat", 1000, 'c');
	for (i = 0; i < 1000; i++)
		buf[i % 256] = 0;
	pwrite(c, "0123456789", 10, 100);
	lseek(c, 100, SEEK_SET);
	if (read(c, buf, 4) != 4)
		abort();
	/* Now at 104, read-write, at fd 77. */
	dup2(c, 77);
	close(c);
	snprintf(pathc, sizeof(pathc), "%s/append.log", dir);
	d = open(pathc, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0600);
	if (write(d, "one\n", 4) != 4)
		abort();
	dup2(d, 200);
	close(d);
	dup2(open("/dev/null", O_RDONLY), 30);
	dup2(open("/dev/zero", O_RDONLY), 31);
	dup2(open("/dev/urandom", O_RDONLY), 32);
	if (chdir(dir))
		abort();
	umask(027);

	t_ready();
	t_wait_trigger();

	for (i = 0; i < 4; i++) {
		char want = i == 1 ? 'X' : i == 3 ? 'Y' : 'a';
		CHECK(priv[i * PSZ] == want && priv[i * PSZ + PSZ - 1] == want, "private page %d holds %c", i, priv[i * PSZ]);
	}
	/* The private copy's changes never reached the file. */
	a = open("private.dat", O_RDONLY);
	CHECK(pread(a, buf, 1, PSZ) == 1 && buf[0] == 'a', "private.dat changed on disk");
	close(a);

	CHECK(memcmp(shared, "hello", 5) == 0, "shared mapping lost its data");
	memcpy(shared + 10, "world", 5);
	CHECK(pread(b, buf, 5, 10) == 5 && memcmp(buf, "world", 5) == 0, "a write to the shared mapping does not reach the file");
	pwrite(b, "XYZ", 3, 2 * PSZ);
	CHECK(memcmp(shared + 2 * PSZ, "XYZ", 3) == 0, "a write to the file does not show in the shared mapping");

	CHECK(lseek(77, 0, SEEK_CUR) == 104, "fd 77 offset %ld", (long)lseek(77, 0, SEEK_CUR));
	CHECK((fcntl(77, F_GETFL) & O_ACCMODE) == O_RDWR, "fd 77 access mode %#x", fcntl(77, F_GETFL));
	CHECK(read(77, buf, 3) == 3 && memcmp(buf, "456", 3) == 0, "fd 77 reads on from where it was");
	CHECK(fcntl(77, F_GETFD) == 0, "fd 77 became close-on-exec");
	CHECK((fcntl(200, F_GETFL) & (O_ACCMODE | O_APPEND)) == (O_WRONLY | O_APPEND), "fd 200 flags %#x", fcntl(200, F_GETFL));
	CHECK(write(200, "two\n", 4) == 4, "append");
	d = open("append.log", O_RDONLY);
	CHECK(read(d, buf, 8) == 8 && memcmp(buf, "one\ntwo\n", 8) == 0, "append.log");
	close(d);
	for (i = 30; i <= 32; i++) {
		char p[64];
		const char *want[] = { "/dev/null", "/dev/zero", "/dev/urandom" };
		ssize_t n;
		snprintf(p, sizeof(p), "/proc/self/fd/%d", i);
		n = readlink(p, link, sizeof(link) - 1);
		link[n > 0 ? n : 0] = 0;
		CHECK(strcmp(link, want[i - 30]) == 0, "fd %d is %s", i, link);
	}
	CHECK(read(31, buf, 8) == 8 && buf[0] == 0 && buf[7] == 0, "/dev/zero reads zeros");
	CHECK(getcwd(cwd, sizeof(cwd)) && strstr(cwd, dir) != NULL, "cwd %s", cwd);
	CHECK(umask(0) == 027, "umask");
	return t_done();
}
