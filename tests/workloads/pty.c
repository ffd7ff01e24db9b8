/*
 * A pty made inside the tree. The parent P holds the master; its child C leads
 * a new session whose controlling terminal is the slave, with settings changed
 * (no echo, VINTR ^G, 40x132); C's child G leads the foreground process group.
 *
 * After the trigger: C checks its terminal (settings, size, foreground group,
 * /dev/tty); P writes "ping" to the master, G (in the foreground) reads it from
 * /dev/tty and answers "pong", which P reads from the master.
 */
#include "rckpt_test.h"
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>

static ssize_t read_line(int fd, char *buf, size_t n)
{
	size_t got = 0;
	while (got + 1 < n) {
		ssize_t r = read(fd, buf + got, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got++;
		if (buf[got - 1] == '\n')
			break;
	}
	buf[got] = 0;
	return got;
}

int main(void)
{
	int master, sync_[2];
	char name[128];
	pid_t c;

	t_init(1);
	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) || unlockpt(master) || ptsname_r(master, name, sizeof(name)))
		return 3;
	if (pipe(sync_))
		return 4;

	c = fork();
	if (c == 0) {
		struct termios t;
		struct winsize ws = { 40, 132, 0, 0 };
		int tty;
		pid_t g;

		setsid();
		/* The session leader opens it: it becomes the controlling terminal. */
		tty = open(name, O_RDWR);
		tcgetattr(tty, &t);
		t.c_lflag &= ~(ECHO | ECHOE | ECHOK);
		t.c_cc[VINTR] = 7;
		tcsetattr(tty, TCSANOW, &t);
		ioctl(tty, TIOCSWINSZ, &ws);

		g = fork();
		if (g == 0) {
			char line[64];
			int fd;
			setpgid(0, 0);
			t_wait_trigger();
			fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
			CHECK(fd >= 0, "G: no controlling terminal: %s", strerror(errno));
			CHECK(tcgetpgrp(fd) == getpid(), "G: foreground group %d, not mine %d", tcgetpgrp(fd), getpid());
			read_line(fd, line, sizeof(line));
			CHECK(strcmp(line, "ping\n") == 0, "G: read %s", line);
			write(fd, "pong\n", 5);
			exit(t_done() ? 1 : 0);
		}
		setpgid(g, g);
		/* From the foreground (C's group, until this call). */
		tcsetpgrp(tty, g);
		write(sync_[1], "c", 1);
		t_wait_trigger();
		{
			struct termios now;
			struct winsize w;
			int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
			int st = 0;

			CHECK(fd >= 0, "C: no controlling terminal: %s", strerror(errno));
			CHECK(tcgetsid(tty) == getpid(), "C: the terminal's session is %d", tcgetsid(tty));
			tcgetattr(tty, &now);
			CHECK(!(now.c_lflag & ECHO) && now.c_cc[VINTR] == 7 && (now.c_lflag & ICANON),
			      "C: settings lost: lflag %#x VINTR %d", now.c_lflag, now.c_cc[VINTR]);
			ioctl(tty, TIOCGWINSZ, &w);
			CHECK(w.ws_row == 40 && w.ws_col == 132, "C: size %dx%d", w.ws_row, w.ws_col);
			CHECK(tcgetpgrp(tty) == g, "C: foreground group %d, not G %d", tcgetpgrp(tty), g);
			CHECK(waitpid(g, &st, 0) == g && WIFEXITED(st) && WEXITSTATUS(st) == 0, "C: G ended %#x", st);
		}
		exit(t_done() ? 1 : 0);
	}
	{
		char b;
		read(sync_[0], &b, 1);
	}
	close(sync_[0]);
	close(sync_[1]);
	t_ready();
	t_wait_trigger();
	{
		char line[64];
		int st = 0;
		write(master, "ping\n", 5);
		read_line(master, line, sizeof(line));
		CHECK(strcmp(line, "pong\r\n") == 0, "P: read %s from the master", line);
		CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0, "P: C ended %#x", st);
	}
	return t_done();
}
