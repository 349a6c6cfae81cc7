/* util.c - messages, die(), fd helpers.  See util.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

/* Logging is process-wide, as stderr is. */
static int log_raw;
static int log_mid_line;     /* raw: the terminal's line is unfinished */
static int log_quiet;        /* loginfo() says nothing */
static struct timespec accept_resume;   /* zero: not paused */
static void (*cleanup_fn)(void *);
static void *cleanup_arg;

void
log_set_raw(int raw)
{
	/* Only a terminal needs the carriage return; a log file does not. */
	log_raw = raw && isatty(STDERR_FILENO);
}

void
log_set_mid_line(int mid)
{
	log_mid_line = mid;
}

int
log_in_mid_line(void)
{
	return log_mid_line;
}

void
log_set_quiet(int quiet)
{
	log_quiet = quiet;
}

/* The mark a cut line or field ends with; CUT_MARK_MAX bytes at most. */
#define CUT_MARK     "...(+%zu bytes)"
#define CUT_MARK_MAX 32

static void
vlogmsg(const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX + 5];
	size_t n = 0, limit = LOG_LINE_MAX;
	int m;

	/* Not in the middle of the guest's line on a shared raw terminal:
	 * the message starts a line of its own (and ends it). */
	if (log_raw && log_mid_line) {
		line[n++] = '\r';
		line[n++] = '\n';
		limit += 2;
		log_mid_line = 0;
	}
	/* One write per message so lines from a dying process stay whole. */
	n += snprintf(line + n, sizeof line - n, PROGNAME ": ");
	m = vsnprintf(line + n, sizeof line - n, fmt, ap);
	n += m > 0 ? (size_t)m : 0;
	if (n > limit) {
		/* Nothing is cut silently: the end of the line says how much. */
		size_t keep = limit - CUT_MARK_MAX;

		n = keep + snprintf(line + keep, CUT_MARK_MAX + 1, CUT_MARK,
		                    n - keep);
	}
	if (log_raw)
		line[n++] = '\r';
	line[n++] = '\n';
	(void)write_all(STDERR_FILENO, line, n);
}

static size_t
esc_width(unsigned char b)
{
	return b < 0x20 || b > 0x7e || b == '\\' ? 4 : 1;
}

const char *
esc(char *buf, size_t len, const void *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = p;
	size_t i, at = 0, need = 0, room = len - 1;

	for (i = 0; i < n; i++)
		need += esc_width(s[i]);
	/* Cut: leave room for the mark, whatever the count it will say. */
	if (need > room)
		room = room > CUT_MARK_MAX ? room - CUT_MARK_MAX : 0;
	for (i = 0; i < n && at + esc_width(s[i]) <= room; i++) {
		if (esc_width(s[i]) == 1) {
			buf[at++] = s[i];
			continue;
		}
		buf[at++] = '\\';
		buf[at++] = 'x';
		buf[at++] = hex[s[i] >> 4];
		buf[at++] = hex[s[i] & 15];
	}
	buf[at] = '\0';
	if (i < n)
		snprintf(buf + at, len - at, CUT_MARK, n - i);
	return buf;
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
loginfo(const char *fmt, ...)
{
	va_list ap;

	if (log_quiet)
		return;
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

void
notify_service_manager(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof sa.sun_path)
		return;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	if (path[0] == '@')
		sa.sun_path[0] = '\0';   /* Linux's abstract namespace */
	if ((fd = socket(AF_UNIX, SOCK_DGRAM, 0)) < 0)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
	           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path))) < 0)
		logmsg("NOTIFY_SOCKET %s: %s", path, strerror(errno));
	close(fd);
}

void
termios_raw(struct termios *t)
{
	t->c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL |
	                IXON);
	t->c_oflag &= ~OPOST;
	t->c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t->c_cflag &= ~(CSIZE | PARENB);
	t->c_cflag |= CS8;
	t->c_cc[VMIN] = 1;
	t->c_cc[VTIME] = 0;
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

ssize_t
write_ready(int fd, const void *buf, size_t len)
{
	struct pollfd pfd = { fd, POLLOUT, 0 };

	if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT)) {
		errno = EAGAIN;
		return -1;
	}
	return write(fd, buf, len);
}

void
conn_refuse(int fd, const char *answer, size_t len)
{
	if (send(fd, answer, len, MSG_NOSIGNAL) < 0) {
		/* gone already: nothing to tell */
	}
	close(fd);
}

int
fd_watch(int fd, fd_set *set, int maxfd)
{
	FD_SET(fd, set);
	return fd > maxfd ? fd : maxfd;
}

ssize_t
writev_some(int fd, const struct iovec *iov, int cnt)
{
	ssize_t n;

	do
		n = writev(fd, iov, cnt);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	return n;
}

ssize_t
read_ready(int fd, void *buf, size_t len)
{
	struct pollfd pfd = { fd, POLLIN, 0 };

	/* Any event will do: after POLLERR or POLLHUP read() returns at once
	 * with the error or EOF, which the caller must see. */
	if (poll(&pfd, 1, 0) != 1) {
		errno = EAGAIN;
		return -1;
	}
	return read(fd, buf, len);
}

void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Is someone listening on sa?  Tells a live daemon from a stale file. */
static int
socket_in_use(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0), used;

	if (fd < 0)
		return 0;
	used = connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0;
	close(fd);
	return used;
}

int
unix_listen(const char *path, int backlog, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path) {
		/* Quoted up to sun_path's size, which is enough to tell
		 * which path it is: an unbounded %s of a path that may be
		 * any length could overflow the int snprintf returns (gcc
		 * says so on 32-bit hosts, where size_t is no wider). */
		snprintf(err, errlen, "socket path too long (max %zu bytes): %.*s...",
		         sizeof sa.sun_path - 1, (int)sizeof sa.sun_path, path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", path);
			return -1;
		}
		if (socket_in_use(&sa)) {
			snprintf(err, errlen, "%s: another process is listening there", path);
			return -1;
		}
		unlink(path);  /* a stale socket from an earlier run */
	}
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(fd, backlog) < 0 || set_nonblock(fd) < 0 || set_cloexec(fd) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (fd >= FD_SETSIZE) {
		snprintf(err, errlen, "%s: descriptor %d is over FD_SETSIZE", path, fd);
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

/* Whether ss is a loopback address: 127.0.0.0/8, ::1, or an IPv4 loopback
 * address mapped into IPv6 (::ffff:127.x.y.z), however it was spelled. */
static int
is_loopback(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET)
		return ntohl(sin->sin_addr.s_addr) >> 24 == 127;
	return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) ||
	       (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) &&
	        sin6->sin6_addr.s6_addr[12] == 127);
}

int
ip_address(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

int
tcp_listen(const char *what, const char *address, unsigned port, int backlog, char *where, size_t wherelen,
           int *loopback, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, one = 1;

	memset(&ss, 0, sizeof ss);
	if (inet_pton(AF_INET, address, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		len = sizeof *sin;
		snprintf(where, wherelen, "%s:%u", address, port);
	} else if (inet_pton(AF_INET6, address, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		len = sizeof *sin6;
		snprintf(where, wherelen, "[%s]:%u", address, port);
	} else {
		snprintf(err, errlen, "%s: '%s' is not an IP address", what, address);
		return -1;
	}
	*loopback = is_loopback(&ss);
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0 ||
	    set_nonblock(fd) < 0 || set_cloexec(fd) < 0) {
		snprintf(err, errlen, "cannot listen on %s %s: %s", what, where,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (fd >= FD_SETSIZE) {
		snprintf(err, errlen, "%s %s: descriptor %d is over FD_SETSIZE",
		         what, where, fd);
		close(fd);
		return -1;
	}
	/* Where it fails (not on Linux or the BSDs), clients are only slower. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

int
peer_name(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char host[64] = "?";
	unsigned port = 0;

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -1;
	if (ss.ss_family == AF_UNIX) {
		snprintf(buf, len, "%s", "");
		return 0;
	}
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
		port = ntohs(s->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
		port = ntohs(s->sin6_port);
	}
	snprintf(buf, len, "%s:%u", host, port);
	return 0;
}

static long long
ms_until(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (t->tv_sec - now.tv_sec) * 1000LL + (t->tv_nsec - now.tv_nsec) / 1000000;
}

int
accept_paused(void)
{
	if (!accept_resume.tv_sec && !accept_resume.tv_nsec)
		return 0;
	if (ms_until(&accept_resume) > 0)
		return 1;
	accept_resume.tv_sec = accept_resume.tv_nsec = 0;
	return 0;
}

int
accept_pause_timeout(struct timespec *ts)
{
	long long ms;

	if (!accept_paused())
		return -1;
	ms = ms_until(&accept_resume) + 1;
	ts->tv_sec = ms / 1000;
	ts->tv_nsec = ms % 1000 * 1000000;
	return 0;
}

void
deadline_after(struct timespec *t, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_sec += ms / 1000;
	t->tv_nsec += ms % 1000 * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

int
accept_conn(int listen_fd, const char *who)
{
	int fd = accept(listen_fd, NULL, NULL);

	if (fd >= 0) {
		set_nonblock(fd);
		set_cloexec(fd);
		return fd;
	}
	switch (errno) {
	case EAGAIN:
#if EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
	case EINTR:
	case ECONNABORTED:   /* the peer gave up before we got to it */
		break;
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		if (!accept_paused())
			logmsg("%s: accept: %s; pausing new connections for %d s",
			       who, strerror(errno), ACCEPT_PAUSE_MS / 1000);
		deadline_after(&accept_resume, ACCEPT_PAUSE_MS);
		break;
	default:
		logmsg("%s: accept: %s", who, strerror(errno));
	}
	return -1;
}
