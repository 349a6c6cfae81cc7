/*
 * bench/conread.c - the host side of a guest throughput run: connect to a
 * console (TCP or UNIX socket), optionally wait for the guest to say it is
 * ready and answer it, then find the start token and time how long the
 * next BYTES bytes take to arrive.
 *
 * usage: conread [--timeout=S] [--ready=TEXT] [--send=TEXT] --start=TEXT
 *                --bytes=N HOST:PORT|/path/to/socket
 *
 *   --ready=TEXT  wait for TEXT before sending (the QEMU lab guest repeats
 *                 "LAB-BENCH-READY" until it hears from the host)
 *   --send=TEXT   then send TEXT ("go\n", or a shell command line)
 *   --start=TEXT  the payload starts right after TEXT
 *   --bytes=N     the payload's size
 *
 * Prints "bytes=N seconds=S mibs=M" (clock from the end of the start token
 * to the last payload byte) and exits 0; on a timeout (default 120 s for
 * the whole run), EOF or an error, one line "conread: REASON" and exit 1.
 * TEXT may use \n \r \t \\.  The reader uses a 256 KiB buffer and a plain
 * blocking read(), so that it is never the slow side.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BUFSZ (256 * 1024)
#define TOKEN_MAX 256

static double deadline;

static void fail(const char *fmt, ...)
{
	va_list ap;
	fputs("conread: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* unescape: \n \r \t \\ in place; returns the length. */
static size_t unescape(char *s)
{
	char *w = s;
	for (const char *r = s; *r; r++) {
		if (*r != '\\' || !r[1]) {
			*w++ = *r;
			continue;
		}
		switch (*++r) {
		case 'n': *w++ = '\n'; break;
		case 'r': *w++ = '\r'; break;
		case 't': *w++ = '\t'; break;
		default: *w++ = *r; break;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

static int connect_to(const char *where)
{
	int fd;
	if (where[0] == '/') {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		if (strlen(where) >= sizeof sa.sun_path)
			fail("socket path too long: %s", where);
		strcpy(sa.sun_path, where);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
			fail("%s: %s", where, strerror(errno));
		return fd;
	}
	char host[256];
	const char *colon = strrchr(where, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	if (!colon || (size_t)(colon - where) >= sizeof host)
		fail("not HOST:PORT or a socket path: %s", where);
	memcpy(host, where, (size_t)(colon - where));
	host[colon - where] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
		fail("cannot resolve %s", where);
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		fail("%s: %s", where, strerror(errno));
	freeaddrinfo(ai);
	return fd;
}

/* Read what is there (waiting at most until the deadline); 0 at EOF. */
static size_t read_some(int fd, char *buf, size_t max, const char *waiting)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;
	for (;;) {
		double left = deadline - now();
		if (left <= 0)
			fail("timed out while %s", waiting);
		if (poll(&p, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			fail("poll: %s", strerror(errno));
		if (!p.revents)
			continue;
		n = read(fd, buf, max);
		if (n > 0)
			return (size_t)n;
		if (n == 0)
			fail("EOF while %s", waiting);
		if (errno != EINTR && errno != EAGAIN)
			fail("read: %s", strerror(errno));
	}
}

/*
 * Read until tok has gone by.  Bytes after it are moved to the front of buf
 * and their count returned.  A window of the last len(tok)-1 bytes is kept
 * across reads, so a token split between two reads is found too.
 */
static size_t skip_past(int fd, char *buf, const char *tok, size_t toklen,
                        const char *waiting)
{
	size_t have = 0;
	for (;;) {
		size_t n = read_some(fd, buf + have, BUFSZ - have, waiting);
		have += n;
		for (size_t i = 0; i + toklen <= have; i++)
			if (!memcmp(buf + i, tok, toklen)) {
				size_t rest = have - i - toklen;
				memmove(buf, buf + i + toklen, rest);
				return rest;
			}
		if (have >= toklen) {
			memmove(buf, buf + have - (toklen - 1), toklen - 1);
			have = toklen - 1;
		}
	}
}

static void send_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail("write: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

static char *opt(const char *arg, const char *name)
{
	size_t n = strlen(name);
	return !strncmp(arg, name, n) && arg[n] == '=' ? (char *)arg + n + 1 : NULL;
}

int main(int argc, char **argv)
{
	char *ready = NULL, *send = NULL, *start = NULL, *v;
	const char *where = NULL;
	unsigned long long bytes = 0, got;
	double timeout = 120, t0, t1;
	static char buf[BUFSZ];
	int fd;

	for (int i = 1; i < argc; i++) {
		if ((v = opt(argv[i], "--timeout")))
			timeout = atof(v);
		else if ((v = opt(argv[i], "--ready")))
			ready = v;
		else if ((v = opt(argv[i], "--send")))
			send = v;
		else if ((v = opt(argv[i], "--start")))
			start = v;
		else if ((v = opt(argv[i], "--bytes")))
			bytes = strtoull(v, NULL, 10);
		else if (argv[i][0] != '-' && !where)
			where = argv[i];
		else
			fail("unknown argument %s (see the comment at the top of bench/conread.c)", argv[i]);
	}
	if (!where || !start || !bytes)
		fail("usage: conread [--timeout=S] [--ready=TEXT] [--send=TEXT] --start=TEXT --bytes=N ADDRESS");
	size_t startlen = unescape(start);
	if (!startlen || startlen > TOKEN_MAX)
		fail("--start must be 1 to %d bytes", TOKEN_MAX);
	deadline = now() + timeout;
	fd = connect_to(where);
	if (ready) {
		size_t len = unescape(ready);
		if (len && len <= TOKEN_MAX)
			skip_past(fd, buf, ready, len, "waiting for the ready text");
	}
	if (send)
		send_all(fd, send, unescape(send));
	got = skip_past(fd, buf, start, startlen, "waiting for the start token");
	t0 = now();
	while (got < bytes)
		got += read_some(fd, buf, BUFSZ, "reading the payload");
	t1 = now();
	printf("bytes=%llu seconds=%.3f mibs=%.2f\n", bytes, t1 - t0,
	       (double)bytes / 1048576 / (t1 - t0));
	close(fd);
	return 0;
}
