/* util.c - messages, die(), fd helpers.  See util.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include "util.h"

static int log_raw;
static void (*cleanup_fn)(void *);
static void *cleanup_arg;

void
log_set_raw(int raw)
{
	/* Only a terminal needs the carriage return; a log file does not. */
	log_raw = raw && isatty(STDERR_FILENO);
}

static void
vlogmsg(const char *fmt, va_list ap)
{
	char line[1024];
	int n;

	/* One write per message so lines from a dying process stay whole. */
	n = snprintf(line, sizeof line, PROGNAME ": ");
	n += vsnprintf(line + n, sizeof line - n, fmt, ap);
	if (n > (int)sizeof line - 3)
		n = sizeof line - 3;
	if (log_raw)
		line[n++] = '\r';
	line[n++] = '\n';
	(void)write_all(STDERR_FILENO, line, n);
}

void
logmsg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlogmsg(fmt, ap);
	va_end(ap);
}

void
die_set_cleanup(void (*fn)(void *), void *arg)
{
	cleanup_fn = fn;
	cleanup_arg = arg;
}

void
die(int status, const char *fmt, ...)
{
	va_list ap;

	if (cleanup_fn)
		cleanup_fn(cleanup_arg);
	va_start(ap, fmt);
	vlogmsg(fmt, ap);
	va_end(ap);
	exit(status);
}

int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int
set_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

int
fd_move_high(int fd)
{
	int nfd;

	if (fd < 0 || fd >= FD_SETSIZE)
		return fd;
	nfd = fcntl(fd, F_DUPFD, FD_SETSIZE);
	if (nfd < 0)
		return fd;  /* the rlimit is too low: keep it where it is */
	close(fd);
	set_cloexec(nfd);
	return nfd;
}

ssize_t
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = write(fd, p + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += n;
	}
	return done;
}

void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}
