/*
 * bench/tcpbench.c - the TCP end of the benchmarks, and their baselines.
 *
 * A client of the daemon's network backend that is never the bottleneck
 * (one big read buffer, no per-byte work), and the same measurement over a
 * plain loopback TCP connection with no daemon, in the same program, so
 * that a benchmark prints its figure and its baseline from one tool:
 *
 *   tcpbench sink PORT BYTES [WARMUP]
 *                                send "GO", read WARMUP bytes untimed (the
 *                                daemon's history ring and the socket
 *                                warm up), then BYTES more (the guest
 *                                writes them all); prints "BYTES NS",
 *                                timed from the first of those bytes
 *   tcpbench source PORT BYTES   wait for "GO" from the guest, then write
 *                                BYTES, 64 KiB per write (one buffer of
 *                                the data pattern, sent again and again:
 *                                the writer costs nothing but the writes)
 *   tcpbench rtt PORT N          N one-byte round trips through the guest
 *                                (which echoes); prints "p50 p99" in us
 *   tcpbench loop BYTES [CHUNK]  baseline: BYTES in CHUNK-byte writes
 *                                (default 4096, at most 256 KiB) over
 *                                loopback TCP to a reader; prints "BYTES NS"
 *   tcpbench echo-rtt N          baseline: N one-byte round trips against
 *                                a TCP echo server; prints "p50 p99" in us
 *   tcpbench hold PORT COUNT     connect to PORT .. PORT+COUNT-1, read and
 *                                drop what comes, until stdin ends; prints
 *                                "connected", then "served" once every
 *                                connection has received something
 *
 * The address is 127.0.0.1 throughout.  Exit 0 on success, 1 with one
 * line on stderr otherwise; SIGALRM ends it after 120 s.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK    4096             /* a guest's buffer: one write each */
#define READBUF  (256 * 1024)     /* big reads: the reader keeps up */
#define WARMUP   100              /* round trips not counted */
#define MAX_CONN 1024

static char rbuf[READBUF];

static void
fail(const char *fmt, const char *arg)
{
	fprintf(stderr, "tcpbench: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, ": %s\n", errno ? strerror(errno) : "failed");
	exit(1);
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static unsigned long long
number(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end)
		fail("'%s' is not a number", s);
	return v;
}

static struct sockaddr_in
loopback(unsigned port)
{
	struct sockaddr_in sa;

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sa;
}

/* Keystrokes go out at once: no Nagle (the daemon's clients would see
 * the same from telnet or ssh-like tools). */
static void
nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int
connect_port(unsigned port)
{
	struct sockaddr_in sa = loopback(port);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		fail("connect to port %s", "127.0.0.1");
	nodelay(fd);
	return fd;
}

/* A listener on an ephemeral loopback port; *port says which. */
static int
listen_any(unsigned *port)
{
	struct sockaddr_in sa = loopback(0);
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(fd, 1) < 0 || getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		fail("listen on %s", "127.0.0.1");
	*port = ntohs(sa.sin_port);
	return fd;
}

static void
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail("%s", "write");
		p += n;
		len -= n;
	}
}

/* Read exactly len bytes (into rbuf, in pieces), or fail. */
static void
read_bytes(int fd, unsigned long long len)
{
	ssize_t n;

	while (len) {
		n = read(fd, rbuf, len < sizeof rbuf ? len : sizeof rbuf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = 0;
			fail("%s: the connection ended early", "read");
		}
		len -= n;
	}
}

/* The data pattern of tests/frontend (tests/fe/mem.c) (--pattern), from offset k. */
static void
pattern(unsigned char *b, size_t len, unsigned long long k)
{
	uint32_t x = (uint32_t)k * 2654435761u;
	size_t i;

	for (i = 0; i < len; i++, x += 2654435761u)
		b[i] = (unsigned char)((x >> 24) ^ (x >> 13));
}

/* Wait for "GO" from the guest (the history before it, if any, is
 * skipped: GO is the last thing the guest wrote). */
static void
expect_go(int fd)
{
	char c, last = 0;
	ssize_t n;

	for (;;) {
		n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail("%s: no GO from the guest", "read");
		if (last == 'G' && c == 'O')
			return;
		last = c;
	}
}

static int
cmp_ns(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* N round trips of one byte on fd (after WARMUP more); p50 and p99. */
static void
round_trips(int fd, unsigned long long n)
{
	int64_t *t = malloc((n ? n : 1) * sizeof *t), t0;
	unsigned long long i;
	char c = 'x';

	if (!t)
		fail("%s", "malloc");
	if (!n)
		fail("%s", "no round trips");
	for (i = 0; i < n + WARMUP; i++) {
		t0 = now_ns();
		write_all(fd, &c, 1);
		read_bytes(fd, 1);
		if (i >= WARMUP)
			t[i - WARMUP] = now_ns() - t0;
	}
	qsort(t, n, sizeof *t, cmp_ns);
	printf("%.1f %.1f\n", t[n / 2] / 1e3, t[n * 99 / 100] / 1e3);
	free(t);
}

static unsigned long long loop_bytes;
static size_t loop_chunk = CHUNK;
static void loop_writer(int fd);

static int
cmd_sink(unsigned port, unsigned long long bytes, unsigned long long warmup)
{
	int fd = connect_port(port);
	int64_t t0;

	write_all(fd, "GO", 2);
	if (warmup)
		read_bytes(fd, warmup);
	/* Timed from the first byte, as the baseline (cmd_loop) is: the rate
	 * of the stream, not the GO's trip through the guest. */
	read_bytes(fd, 1);
	t0 = now_ns();
	read_bytes(fd, bytes - 1);
	printf("%llu %lld\n", bytes, (long long)(now_ns() - t0));
	return 0;
}

static int
cmd_source(unsigned port, unsigned long long bytes)
{
	int fd = connect_port(port);

	expect_go(fd);
	loop_chunk = 65536;
	loop_bytes = bytes;
	loop_writer(fd);
	return 0;
}

static int
cmd_rtt(unsigned port, unsigned long long n)
{
	int fd = connect_port(port);

	round_trips(fd, n);
	return 0;
}

/* fn(fd) in a child on the accepted end of a loopback connection; the
 * parent gets the connecting end. */
static int
pair(void (*fn)(int), pid_t *child)
{
	unsigned port;
	int lfd = listen_any(&port), fd, afd;

	if ((*child = fork()) < 0)
		fail("%s", "fork");
	if (*child == 0) {
		if ((afd = accept(lfd, NULL, NULL)) < 0)
			fail("%s", "accept");
		nodelay(afd);
		close(lfd);
		fn(afd);
		_exit(0);
	}
	close(lfd);
	fd = connect_port(port);
	return fd;
}

/* The guest's side costs nothing here: one buffer of the pattern, sent
 * again and again (the harness fills its buffers just as cheaply). */
static void
loop_writer(int fd)
{
	static unsigned char b[READBUF];
	unsigned long long k;
	size_t l;

	pattern(b, loop_chunk, 0);
	for (k = 0; k < loop_bytes; k += l) {
		l = loop_bytes - k < loop_chunk ? loop_bytes - k : loop_chunk;
		write_all(fd, b, l);
	}
}

static int
cmd_loop(unsigned long long bytes)
{
	pid_t child;
	int fd, status;
	int64_t t0;

	loop_bytes = bytes;
	fd = pair(loop_writer, &child);
	/* Timed from the first byte, as the daemon runs are from their GO. */
	read_bytes(fd, 1);
	t0 = now_ns();
	read_bytes(fd, bytes - 1);
	printf("%llu %lld\n", bytes, (long long)(now_ns() - t0));
	waitpid(child, &status, 0);
	return 0;
}

static void
echo_server(int fd)
{
	ssize_t n;

	while ((n = read(fd, rbuf, sizeof rbuf)) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			write_all(fd, rbuf, n);
}

static int
cmd_echo_rtt(unsigned long long n)
{
	pid_t child;
	int fd, status;

	fd = pair(echo_server, &child);
	round_trips(fd, n);
	close(fd);
	waitpid(child, &status, 0);
	return 0;
}

/* Connections that read what the daemon sends (a history replay) and
 * otherwise sit still, until stdin ends. */
static int
cmd_hold(unsigned port, unsigned long long count)
{
	struct pollfd pfd[MAX_CONN + 1];
	static char got[MAX_CONN];
	unsigned long long i, served = 0;

	if (count > MAX_CONN)
		fail("%s connections at most", "1024");
	for (i = 0; i < count; i++) {
		pfd[i].fd = connect_port(port + i);
		pfd[i].events = POLLIN;
	}
	pfd[count].fd = 0;
	pfd[count].events = POLLIN;
	printf("connected\n");
	fflush(stdout);
	for (;;) {
		if (poll(pfd, count + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			fail("%s", "poll");
		}
		for (i = 0; i <= count; i++) {
			if (!pfd[i].revents)
				continue;
			if (read(pfd[i].fd, rbuf, sizeof rbuf) <= 0) {
				if (i == count)
					return 0;
				pfd[i].fd = -1;   /* the daemon closed it */
			} else if (i < count && !got[i]) {
				got[i] = 1;
				if (++served == count)
					printf("served\n");
			}
		}
	}
}

int
main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	signal(SIGPIPE, SIG_IGN);
	alarm(120);     /* a benchmark whose other end died must not hang */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((argc == 4 || argc == 5) && strcmp(cmd, "sink") == 0)
		return cmd_sink(number(argv[2]), number(argv[3]),
		                argc == 5 ? number(argv[4]) : 0);
	if (argc == 4 && strcmp(cmd, "source") == 0)
		return cmd_source(number(argv[2]), number(argv[3]));
	if (argc == 4 && strcmp(cmd, "rtt") == 0)
		return cmd_rtt(number(argv[2]), number(argv[3]));
	if ((argc == 3 || argc == 4) && strcmp(cmd, "loop") == 0 &&
	    number(argv[2]) > 0) {
		if (argc == 4 && (number(argv[3]) < 1 || number(argv[3]) > READBUF))
			fail("'%s': a write is 1 to 262144 bytes", argv[3]);
		if (argc == 4)
			loop_chunk = number(argv[3]);
		return cmd_loop(number(argv[2]));
	}
	if (argc == 3 && strcmp(cmd, "echo-rtt") == 0)
		return cmd_echo_rtt(number(argv[2]));
	if (argc == 4 && strcmp(cmd, "hold") == 0)
		return cmd_hold(number(argv[2]), number(argv[3]));
	fprintf(stderr, "usage: tcpbench sink PORT N [WARMUP] | source|rtt PORT N | loop BYTES [CHUNK] | "
	        "echo-rtt N | hold PORT COUNT\n");
	return 2;
}
