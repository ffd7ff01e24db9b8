/*
 * A task holding something rckpt refuses (argv[1] names it): the dump must
 * refuse, name it, and leave the task as it was. The object is at fd 5 (fd
 * kinds) or is a mapping (memory kinds); after the trigger the task checks it
 * still has it.
 *
 *   fd kinds:     io_uring userfaultfd pidfd perf bpf netlink scm_rights ext_unix
 *   memory kinds: sysv deleted
 *
 * "ext_unix" is a unix socket whose peer is held by a process outside the tree
 * (a grandchild orphaned to init); it is refused without --ext-unix-sk.
 * A kind the kernel here cannot create prints "SKIP ..." and exits 77.
 */
#include "rckpt_test.h"
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/wait.h>

static void at5(int fd)
{
	if (fd < 0) {
		printf("SKIP cannot create it: %s\n", strerror(errno));
		fflush(stdout);
		exit(77);
	}
	if (fd != 5) {
		dup2(fd, 5);
		close(fd);
	}
}

/* A unix socket whose peer lives in a process outside the tree: a grandchild
 * orphaned to init (so not in the tree), holding the other end until the
 * socket closes. */
static int outside_peer(void)
{
	int sv[2];
	pid_t c;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	c = fork();
	if (c == 0) {
		if (fork() == 0) {
			char b;
			close(sv[0]);
			setsid();
			/* Until the dumped task's end closes. */
			while (read(sv[1], &b, 1) > 0)
				;
			_exit(0);
		}
		_exit(0);
	}
	waitpid(c, NULL, 0);
	close(sv[1]);
	return sv[0];
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "io_uring";
	char *p = NULL;

	t_init(1);
	if (strcmp(what, "io_uring") == 0) {
		struct io_uring_params params;
		memset(&params, 0, sizeof(params));
		at5(syscall(SYS_io_uring_setup, 4, &params));
	} else if (strcmp(what, "userfaultfd") == 0) {
		at5(syscall(SYS_userfaultfd, O_CLOEXEC));
	} else if (strcmp(what, "pidfd") == 0) {
		at5(syscall(SYS_pidfd_open, getpid(), 0));
	} else if (strcmp(what, "perf") == 0) {
		struct perf_event_attr attr;
		memset(&attr, 0, sizeof(attr));
		attr.size = sizeof(attr);
		attr.type = PERF_TYPE_SOFTWARE;
		attr.config = PERF_COUNT_SW_TASK_CLOCK;
		at5(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
	} else if (strcmp(what, "bpf") == 0) {
		union bpf_attr attr;
		memset(&attr, 0, sizeof(attr));
		attr.map_type = BPF_MAP_TYPE_ARRAY;
		attr.key_size = 4;
		attr.value_size = 8;
		attr.max_entries = 4;
		at5(syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr)));
	} else if (strcmp(what, "netlink") == 0) {
		at5(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0));
	} else if (strcmp(what, "scm_rights") == 0) {
		/* fd 5 holds a descriptor in flight, sent but not received. */
		int sv[2], pass = open("/dev/null", O_RDONLY);
		char c = 'x';
		char ctl[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { &c, 1 };
		struct msghdr m = { 0 };
		struct cmsghdr *cm;

		socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = ctl;
		m.msg_controllen = sizeof(ctl);
		cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass, sizeof(int));
		if (sendmsg(sv[0], &m, 0) != 1)
			abort();
		close(pass);
		/* The receiving end holds the descriptor in its queue. */
		dup2(sv[0], 6);
		close(sv[0]);
		at5(sv[1]);
	} else if (strcmp(what, "ext_unix") == 0) {
		at5(outside_peer());
	} else if (strcmp(what, "sysv") == 0) {
		int id = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
		p = shmat(id, NULL, 0);
		shmctl(id, IPC_RMID, NULL);
	} else if (strcmp(what, "deleted") == 0) {
		char path[] = "/tmp/rckpt-deleted-XXXXXX";
		int fd = mkstemp(path);
		if (ftruncate(fd, 8192))
			abort();
		p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
		close(fd);
		unlink(path);
	} else {
		return 2;
	}
	if (p)
		memset(p, 'z', 8192);
	t_ready();
	t_wait_trigger();
	if (p)
		CHECK(p[0] == 'z' && p[8191] == 'z', "memory changed");
	else
		CHECK(fcntl(5, F_GETFD) >= 0, "fd 5 is gone");
	return t_done();
}
