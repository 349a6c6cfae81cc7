/*
 * ptyrun - run a command on a fresh pseudo-terminal, for the bats tests.
 *
 *   ptyrun [-i FIFO] [-o LOG] [-e ERRFILE] [-p PIDFILE] [-s STTYFILE]
 *          [-t TTYFILE] -- CMD [ARGS...]
 *
 * CMD runs in a new session with the pty slave as its controlling terminal
 * and as its stdin, stdout and stderr.  The pty starts in cooked mode
 * (ICANON, ECHO, ISIG) with an 80x24 window.
 *
 *   -i FIFO     bytes written to FIFO are copied to the pty master, as if
 *               typed (FIFO is created if missing; several writers in turn
 *               are fine: it is held open read-write, so never sees EOF)
 *   -o LOG      everything CMD writes to the terminal is appended to LOG,
 *               unbuffered (default: ptyrun's stdout)
 *   -e ERRFILE  CMD's stderr goes (appended) to ERRFILE instead of the pty
 *   -p PIDFILE  CMD's pid is written to PIDFILE (atomically, via rename)
 *   -s STTYFILE "before: <stty -g>" is written to STTYFILE before CMD
 *               starts and "after: <stty -g>" appended once it has exited;
 *               both are run on the same pty slave, which ptyrun keeps open
 *   -t TTYFILE  the slave's path (/dev/pts/N) is written to TTYFILE
 *
 * SIGTERM, SIGINT and SIGHUP sent to ptyrun are passed on to CMD.  ptyrun
 * exits with CMD's exit status (128+N if CMD was killed by signal N) once
 * it has drained what CMD wrote to the terminal.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t child_pid;	/* CMD, once started */
static int sig_pipe[2] = { -1, -1 };	/* SIGCHLD -> main loop */

static void die(const char *what)
{
	fprintf(stderr, "ptyrun: %s: %s\n", what, strerror(errno));
	exit(125);
}

static void on_chld(int sig)
{
	int e = errno;
	(void)sig;
	if (write(sig_pipe[1], "c", 1) < 0) {
		/* pipe full: the main loop is woken anyway */
	}
	errno = e;
}

static void on_fwd(int sig)
{
	if (child_pid > 0)
		kill((pid_t)child_pid, sig);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run `stty -g` with the slave as stdin; append "TAG: <output>\n" to path. */
static void record_stty(const char *path, const char *tag, int slave)
{
	char buf[512];
	size_t len = 0;
	int p[2], fd, st;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		if (dup2(slave, 0) < 0 || dup2(p[1], 1) < 0)
			_exit(126);
		execlp("stty", "stty", "-g", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		ssize_t r = read(p[0], buf + len, sizeof buf - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len == sizeof buf - 1)
			break;
	}
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';

	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		die(path);
	dprintf(fd, "%s: %s\n", tag, len ? buf : "(stty failed)");
	close(fd);
}

static void write_pidfile(const char *path, pid_t pid)
{
	char tmp[4096];
	int fd;

	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die(tmp);
	dprintf(fd, "%ld\n", (long)pid);
	close(fd);
	if (rename(tmp, path) < 0)
		die(path);
}

static void usage(void)
{
	fprintf(stderr, "usage: ptyrun [-i FIFO] [-o LOG] [-e ERRFILE] "
		"[-p PIDFILE] [-s STTYFILE] [-t TTYFILE] -- CMD [ARGS...]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *fifo_path = NULL, *log_path = NULL, *err_path = NULL;
	const char *pid_path = NULL, *stty_path = NULL, *tty_path = NULL;
	int master, slave, in_fd = -1, log_fd = 1, err_fd = -1;
	char inbuf[4096];
	size_t in_len = 0;
	int master_open = 1, status = 0, exited = 0;
	long long quiet_deadline = 0, hard_deadline = 0;
	struct termios tio;
	struct winsize ws = { .ws_row = 24, .ws_col = 80 };
	struct sigaction sa;
	sigset_t fwd, oldmask;
	const char *slave_name;
	pid_t pid;
	int c;

	while ((c = getopt(argc, argv, "+i:o:e:p:s:t:")) != -1) {
		switch (c) {
		case 'i': fifo_path = optarg; break;
		case 'o': log_path = optarg; break;
		case 'e': err_path = optarg; break;
		case 'p': pid_path = optarg; break;
		case 's': stty_path = optarg; break;
		case 't': tty_path = optarg; break;
		default: usage();
		}
	}
	if (optind >= argc)
		usage();

	/* The pty, in cooked mode with a sane window size. */
	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0)
		die("pty");
	slave_name = ptsname(master);
	if (!slave_name)
		die("ptsname");
	slave = open(slave_name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		die(slave_name);
	if (tcgetattr(slave, &tio) < 0)
		die("tcgetattr");
	tio.c_iflag |= ICRNL | BRKINT;
	tio.c_iflag &= ~(INLCR | IGNCR | IXOFF);
	tio.c_oflag |= OPOST | ONLCR;
	tio.c_cflag = (tio.c_cflag & ~(CSIZE | PARENB)) | CS8 | CREAD;
	tio.c_lflag |= ISIG | ICANON | ECHO | ECHOE | ECHOK | IEXTEN;
	tio.c_lflag &= ~(NOFLSH | TOSTOP);
	tio.c_cc[VINTR] = 0x03;
	tio.c_cc[VQUIT] = 0x1c;
	tio.c_cc[VERASE] = 0x7f;
	tio.c_cc[VKILL] = 0x15;
	tio.c_cc[VEOF] = 0x04;
	tio.c_cc[VSUSP] = 0x1a;
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 0;
	if (tcsetattr(slave, TCSANOW, &tio) < 0)
		die("tcsetattr");
	if (ioctl(slave, TIOCSWINSZ, &ws) < 0)
		die("TIOCSWINSZ");

	if (tty_path) {
		int fd = open(tty_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			die(tty_path);
		dprintf(fd, "%s\n", slave_name);
		close(fd);
	}
	if (fifo_path) {
		if (mkfifo(fifo_path, 0600) < 0 && errno != EEXIST)
			die(fifo_path);
		/* Read-write: the FIFO then never reports EOF between writers. */
		in_fd = open(fifo_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (in_fd < 0)
			die(fifo_path);
	}
	if (log_path) {
		log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (log_fd < 0)
			die(log_path);
	}
	if (err_path) {
		err_fd = open(err_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (err_fd < 0)
			die(err_path);
	}
	if (stty_path) {
		int fd = open(stty_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			die(stty_path);
		close(fd);
		record_stty(stty_path, "before", slave);
	}
	if (fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK) < 0)
		die("fcntl");

	/* SIGCHLD wakes the poll loop through a pipe. */
	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		die("pipe");
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sa.sa_handler = on_chld;
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* SIGTERM, SIGINT, SIGHUP: passed on to CMD.  Blocked until
	 * child_pid is known, so that none is lost or kills ptyrun alone. */
	sigemptyset(&fwd);
	sigaddset(&fwd, SIGTERM);
	sigaddset(&fwd, SIGINT);
	sigaddset(&fwd, SIGHUP);
	sigprocmask(SIG_BLOCK, &fwd, &oldmask);
	sa.sa_flags = SA_RESTART;
	sa.sa_handler = on_fwd;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		/* Default dispositions, not ignored ones inherited from the
		 * caller (bash's `&` ignores SIGINT) or ptyrun's handlers. */
		signal(SIGCHLD, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		sigprocmask(SIG_SETMASK, &oldmask, NULL);
		if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0) {
			perror("ptyrun: setsid/TIOCSCTTY");
			_exit(126);
		}
		if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 ||
		    dup2(err_fd >= 0 ? err_fd : slave, 2) < 0)
			_exit(126);
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "ptyrun: %s: %s\n", argv[optind], strerror(errno));
		_exit(127);
	}
	child_pid = pid;
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
	if (pid_path)
		write_pidfile(pid_path, pid);

	for (;;) {
		struct pollfd pfd[3];
		int n = 0, i_master = -1, i_in = -1, timeout = -1, r;

		if (!exited) {
			int st;
			pid_t w = waitpid(pid, &st, WNOHANG);
			if (w == pid) {
				exited = 1;
				status = WIFSIGNALED(st) ? 128 + WTERMSIG(st)
							 : WEXITSTATUS(st);
				child_pid = 0;
				if (stty_path)
					record_stty(stty_path, "after", slave);
				/* Only CMD's leftovers may hold the slave now:
				 * the master reports EIO once they are gone. */
				close(slave);
				slave = -1;
				hard_deadline = now_ms() + 3000;
				quiet_deadline = now_ms() + 300;
			}
		}
		if (exited) {
			long long t = now_ms();
			if (!master_open || t >= quiet_deadline || t >= hard_deadline)
				break;
			timeout = (int)(quiet_deadline - t);
		}

		pfd[n].fd = sig_pipe[0];
		pfd[n++].events = POLLIN;
		if (master_open) {
			i_master = n;
			pfd[n].fd = master;
			pfd[n++].events = POLLIN | (in_len && !exited ? POLLOUT : 0);
		}
		if (in_fd >= 0 && !exited && in_len < sizeof inbuf) {
			i_in = n;
			pfd[n].fd = in_fd;
			pfd[n++].events = POLLIN;
		}
		r = poll(pfd, (nfds_t)n, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (pfd[0].revents) {
			char junk[64];
			while (read(sig_pipe[0], junk, sizeof junk) > 0)
				;
		}
		if (i_master >= 0 && pfd[i_master].revents) {
			char buf[4096];
			ssize_t got = read(master, buf, sizeof buf);
			if (got > 0) {
				if (write_all(log_fd, buf, (size_t)got) < 0)
					die("write log");
				if (exited)
					quiet_deadline = now_ms() + 300;
			} else if (got == 0 ||
				   (errno != EAGAIN && errno != EINTR)) {
				/* EIO: every slave fd is closed. */
				master_open = 0;
			}
			if (master_open && in_len && !exited &&
			    (pfd[i_master].revents & POLLOUT)) {
				ssize_t w = write(master, inbuf, in_len);
				if (w > 0) {
					memmove(inbuf, inbuf + w, in_len - (size_t)w);
					in_len -= (size_t)w;
				}
			}
		}
		if (i_in >= 0 && pfd[i_in].revents) {
			ssize_t got = read(in_fd, inbuf + in_len, sizeof inbuf - in_len);
			if (got > 0)
				in_len += (size_t)got;
		}
	}
	return status;
}
