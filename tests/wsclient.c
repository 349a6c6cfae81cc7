/*
 * tests/wsclient.c - a scripted WebSocket client for the web backend's
 * tests (tests/web.bats).
 *
 * usage: wsclient [options] PORT PATH STEP...
 *        wsclient --storm=N PORT PATH
 *
 * Connects to 127.0.0.1:PORT, sends the opening handshake for PATH (Host
 * 127.0.0.1:PORT, a random Sec-WebSocket-Key, version 13), checks "101" and
 * that Sec-WebSocket-Accept is base64(SHA-1(key + GUID)) (websocket.c,
 * checked against the RFC by tests/wsunit), then runs the steps.  At the
 * first failure it prints one line to stderr and exits 1.  Every wait is
 * bounded by the timeout (default 10 s).
 *
 * Options:
 *   --origin=ORIGIN   the Origin header (default http://127.0.0.1:PORT)
 *   --no-origin       send none
 *   --header=LINE     one more header line ("Authorization: Bearer x")
 *   --refused=STATUS  the handshake must be answered with STATUS instead;
 *                     the status line is printed, and no step runs
 *   --rcvbuf=BYTES    a small socket receive buffer (a slow browser)
 *   --timeout=S
 *   --storm=N         open N connections (some silent, some with half a
 *                     request, some upgraded), then drop them all at once
 *
 * Steps (TEXT may use \n \r \t \\ \xHH):
 *   send TEXT         one masked binary frame
 *   text TEXT         one masked text frame
 *   frag N TEXT       TEXT as a binary message in N fragments, with a ping
 *                     between the first two (control frames may come
 *                     between fragments); the pong is checked
 *   unmasked TEXT     a binary frame without a mask (a protocol error)
 *   big N             a binary frame header saying N bytes, and 16 of them
 *   ping TEXT         a ping; the next control frame must be its pong
 *   flood N           N bytes of input in binary frames of 4096, sent
 *                     whether or not the server reads them (a paste)
 *   expect TEXT       read binary frames until TEXT has arrived
 *   save TEXT FILE    the same, and write all that arrived through TEXT to
 *                     FILE; prints "saved N bytes in S s"
 *   expect-close CODE read until a close frame with status CODE, then the
 *                     connection must end
 *   close             send close 1000; expect close 1000 and the end
 *   close-why TEXT    the same, with TEXT as the close frame's reason
 *   wait-file PATH    read nothing until PATH exists
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../backends/websocket.h"

static int timeout_s = 10;
static struct timespec deadline;
static int fd = -1;
/* Binary payload received and not yet matched by expect. */
static char *got;
static size_t got_len, got_cap;
#define SAVE_RESERVE (16 << 20)

static _Noreturn void __attribute__((format(printf, 1, 2)))
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "wsclient: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static void
set_deadline(void)
{
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_s;
}

static int
ms_left(void)
{
	struct timespec now;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (deadline.tv_sec - now.tv_sec) * 1000 +
	     (deadline.tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? (int)ms : 0;
}

/* TEXT with its escapes undone; returns the length. */
static size_t
unescape(const char *s, char *out)
{
	size_t n = 0;

	while (*s) {
		if (*s != '\\' || !s[1]) {
			out[n++] = *s++;
			continue;
		}
		s++;
		switch (*s) {
		case 'n': out[n++] = '\n'; s++; break;
		case 'r': out[n++] = '\r'; s++; break;
		case 't': out[n++] = '\t'; s++; break;
		case 'x': {
			char hex[3] = { s[1], s[1] ? s[2] : 0, 0 };

			out[n++] = (char)strtoul(hex, NULL, 16);
			s += 1 + strlen(hex);
			break;
		}
		default: out[n++] = *s++;
		}
	}
	return n;
}

static int
connect_to(unsigned port, int rcvbuf)
{
	struct sockaddr_in sin;
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (s < 0)
		fail("socket: %s", strerror(errno));
	if (rcvbuf && setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0)
		fail("SO_RCVBUF: %s", strerror(errno));
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(s, (struct sockaddr *)&sin, sizeof sin) < 0)
		fail("connect 127.0.0.1:%u: %s", port, strerror(errno));
	return s;
}

static void
send_all(int s, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = send(s, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("send: %s", strerror(errno));
		p += n;
		len -= n;
	}
}

/* What was received and not yet used: read in big pieces, as a browser
 * does, so that the client keeps up with a guest writing megabytes. */
static char inbuf[65536];
static size_t in_off, in_len;

/* Exactly len bytes, within the deadline; 0 when the peer closed first. */
static int
recv_exact(void *buf, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char *p = buf;
	size_t take;
	ssize_t n;

	while (len) {
		if (in_off < in_len) {
			take = in_len - in_off < len ? in_len - in_off : len;
			memcpy(p, inbuf + in_off, take);
			in_off += take;
			p += take;
			len -= take;
			continue;
		}
		if (poll(&pfd, 1, ms_left()) == 0)
			fail("timeout after %d s", timeout_s);
		n = recv(fd, inbuf, sizeof inbuf, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("recv: %s", strerror(errno));
		if (n == 0)
			return 0;
		in_off = 0;
		in_len = n;
	}
	return 1;
}

/* A masked client frame; fin 0 for a fragment. */
static void
send_frame(int opcode, int fin, int masked, const void *payload, size_t len)
{
	unsigned char head[WS_HEADER_MAX], mask[4];
	char *body = malloc(len + 1);
	size_t hl, i;

	if (!body)
		fail("out of memory");
	hl = ws_put_header(head, opcode, len);
	if (!fin)
		head[0] &= 0x7f;
	memcpy(body, payload, len);
	if (masked) {
		for (i = 0; i < 4; i++)
			mask[i] = (unsigned char)rand();
		head[1] |= 0x80;
		memcpy(head + hl, mask, 4);
		hl += 4;
		for (i = 0; i < len; i++)
			body[i] ^= mask[i % 4];
	}
	send_all(fd, head, hl);
	send_all(fd, body, len);
	free(body);
}

/* The next frame from the server: binary and continuation payload is
 * appended to got; returns its opcode, with a control frame's payload in
 * ctl (ctl_len).  -1 when the connection ended. */
static int
recv_frame(unsigned char *ctl, size_t *ctl_len)
{
	unsigned char head[WS_HEADER_MAX];
	struct ws_frame f;
	size_t have = 2;
	char *p;

	if (!recv_exact(head, 2))
		return -1;
	while (!ws_parse_header(head, have, &f)) {
		if (!recv_exact(head + have, 1))
			fail("connection ended inside a frame header");
		have++;
	}
	if (f.masked)
		fail("the server masked a frame");
	if (f.rsv)
		fail("the server set reserved bits");
	if (f.opcode & 8) {
		if (f.len > WS_CONTROL_MAX)
			fail("control frame of %llu bytes", (unsigned long long)f.len);
		if (!recv_exact(ctl, f.len))
			fail("connection ended inside a control frame");
		*ctl_len = f.len;
		return f.opcode;
	}
	if (got_len + f.len + 1 > got_cap) {
		got_cap = 2 * (got_len + f.len + 1);
		if (!(p = realloc(got, got_cap)))
			fail("out of memory");
		got = p;
	}
	if (!recv_exact(got + got_len, f.len))
		fail("connection ended inside a frame");
	got_len += f.len;
	got[got_len] = '\0';
	return f.opcode;
}

/* Where want is in got; the search starts where the last one stopped
 * (less n), so that megabytes arriving in frames cost linear time. */
static size_t scanned;

static char *
find(const char *want, size_t n)
{
	size_t i = scanned > n ? scanned - n : 0;
	char *p;

	if (n == 0)
		return got;
	/* From one occurrence of want's first byte to the next: memchr()
	 * is fast, and the reader keeps up with megabytes. */
	while (i + n <= got_len &&
	       (p = memchr(got + i, want[0], got_len - n + 1 - i))) {
		if (memcmp(p, want, n) == 0)
			return p;
		i = p - got + 1;
	}
	scanned = got_len;
	return NULL;
}

static size_t expect_end;   /* where the last expect's TEXT ended in got */

static void
expect(const char *text)
{
	char want[4096];
	size_t n = unescape(text, want);
	unsigned char ctl[WS_CONTROL_MAX];
	size_t cl;
	char *at;
	int op;

	set_deadline();
	while (!(at = find(want, n))) {
		op = recv_frame(ctl, &cl);
		if (op < 0)
			fail("connection ended before '%s'; got %zu bytes", text, got_len);
		if (op == WS_CLOSE)
			fail("close frame before '%s'", text);
	}
	at += n;
	expect_end = at - got;
}

/* Forget what expect() matched, through its TEXT. */
static void
consume(void)
{
	got_len -= expect_end;
	memmove(got, got + expect_end, got_len);
	expect_end = scanned = 0;
}

/* Read until a control frame of this opcode; its payload in ctl. */
static size_t
expect_control(int opcode, unsigned char *ctl)
{
	size_t cl;
	int op;

	set_deadline();
	for (;;) {
		op = recv_frame(ctl, &cl);
		if (op < 0)
			fail("connection ended before control frame %d", opcode);
		if (op == opcode)
			return cl;
		if (op & 8)
			fail("control frame %d, want %d", op, opcode);
	}
}

static void
expect_close(unsigned code)
{
	unsigned char ctl[WS_CONTROL_MAX], c;
	size_t cl = expect_control(WS_CLOSE, ctl);
	unsigned got_code = cl >= 2 ? (unsigned)ctl[0] << 8 | ctl[1] : 0;

	if (got_code != code)
		fail("close status %u (%.*s), want %u", got_code,
		     cl > 2 ? (int)cl - 2 : 0, (char *)ctl + 2, code);
	printf("close %u %.*s\n", got_code, cl > 2 ? (int)cl - 2 : 0, (char *)ctl + 2);
	if (recv_exact(&c, 1))
		fail("data after the close frame");
}

static void
expect_pong(const char *payload, size_t n)
{
	unsigned char ctl[WS_CONTROL_MAX];
	size_t cl = expect_control(WS_PONG, ctl);

	if (cl != n || memcmp(ctl, payload, n) != 0)
		fail("pong '%.*s', want '%.*s'", (int)cl, (char *)ctl, (int)n, payload);
}

/* The handshake request; with key NULL only half of it. */
static void
send_request(int s, unsigned port, const char *path, const char *key,
             const char *origin, const char **headers, int nheaders)
{
	char req[8192];
	int n, i;

	n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
	             "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n",
	             path, port);
	if (!key) {
		send_all(s, req, n);
		return;
	}
	n += snprintf(req + n, sizeof req - n, "Sec-WebSocket-Key: %s\r\n"
	              "Sec-WebSocket-Version: 13\r\n", key);
	if (origin)
		n += snprintf(req + n, sizeof req - n, "Origin: %s\r\n", origin);
	for (i = 0; i < nheaders; i++)
		n += snprintf(req + n, sizeof req - n, "%s\r\n", headers[i]);
	n += snprintf(req + n, sizeof req - n, "\r\n");
	send_all(s, req, n);
}

/* The response headers, through the blank line (what follows stays in
 * inbuf for the frames). */
static void
read_response(char *buf, size_t len)
{
	size_t n = 0;

	set_deadline();
	while (n < 4 || memcmp(buf + n - 4, "\r\n\r\n", 4) != 0) {
		if (n + 1 == len)
			fail("response headers too long");
		if (!recv_exact(buf + n, 1)) {
			if (n == 0)
				fail("connection closed without a response");
			break;
		}
		n++;
	}
	buf[n] = '\0';
}

static void
random_key(char *key)
{
	unsigned char raw[16];
	int i;

	for (i = 0; i < 16; i++)
		raw[i] = (unsigned char)rand();
	base64_encode(raw, 16, key, 25);
}

static void
storm(unsigned port, const char *path, int n)
{
	int *fds = calloc(n, sizeof *fds), i, saved = fd;
	char key[32], resp[4096];

	if (!fds)
		fail("out of memory");
	for (i = 0; i < n; i++) {
		fds[i] = connect_to(port, 0);
		if (i % 3 == 1) {
			send_request(fds[i], port, path, NULL, NULL, NULL, 0);
		} else if (i % 3 == 2) {
			random_key(key);
			send_request(fds[i], port, path, key, NULL, NULL, 0);
			fd = fds[i];
			read_response(resp, sizeof resp);
			in_off = in_len = 0;  /* the rest was this one's */
		}
	}
	for (i = 0; i < n; i++)
		close(fds[i]);
	fd = saved;
	free(fds);
	printf("storm: %d connections opened and dropped\n", n);
}

int
main(int argc, char **argv)
{
	const char *origin = NULL, *headers[8], *path;
	char key[32], want[WS_ACCEPT_LEN], resp[4096], buf[8192], *h;
	int no_origin = 0, refused = 0, rcvbuf = 0, nheaders = 0, storm_n = 0, i;
	unsigned port;
	size_t n;

	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strncmp(argv[i], "--origin=", 9) == 0)
			origin = argv[i] + 9;
		else if (strcmp(argv[i], "--no-origin") == 0)
			no_origin = 1;
		else if (strncmp(argv[i], "--header=", 9) == 0 && nheaders < 8)
			headers[nheaders++] = argv[i] + 9;
		else if (strncmp(argv[i], "--refused=", 10) == 0)
			refused = atoi(argv[i] + 10);
		else if (strncmp(argv[i], "--rcvbuf=", 9) == 0)
			rcvbuf = atoi(argv[i] + 9);
		else if (strncmp(argv[i], "--timeout=", 10) == 0)
			timeout_s = atoi(argv[i] + 10);
		else if (strncmp(argv[i], "--storm=", 8) == 0)
			storm_n = atoi(argv[i] + 8);
		else
			fail("unknown option %s", argv[i]);
	}
	if (argc - i < 2)
		fail("usage: wsclient [options] PORT PATH STEP...");
	port = (unsigned)atoi(argv[i++]);
	path = argv[i++];
	if (storm_n) {
		storm(port, path, storm_n);
		return 0;
	}
	if (!origin && !no_origin) {
		snprintf(buf, sizeof buf, "http://127.0.0.1:%u", port);
		origin = strdup(buf);
	}
	fd = connect_to(port, rcvbuf);
	random_key(key);
	send_request(fd, port, path, key, no_origin ? NULL : origin, headers, nheaders);
	read_response(resp, sizeof resp);
	if (refused) {
		*strstr(resp, "\r\n") = '\0';
		printf("%s\n", resp);
		if (atoi(resp + 9) != refused)
			fail("status '%s', want %d", resp, refused);
		return 0;
	}
	if (strncmp(resp, "HTTP/1.1 101 ", 13) != 0)
		fail("handshake refused: %.*s", (int)strcspn(resp, "\r"), resp);
	ws_accept(key, want);
	if (!(h = strstr(resp, "Sec-WebSocket-Accept: ")) ||
	    strncmp(h + 22, want, strlen(want)) != 0 || h[22 + strlen(want)] != '\r')
		fail("no or wrong Sec-WebSocket-Accept, want %s", want);

	for (; i < argc; i++) {
		const char *step = argv[i];

		if (i + 1 >= argc && strcmp(step, "close") != 0)
			fail("%s needs an argument", step);
		if (strcmp(step, "send") == 0 || strcmp(step, "text") == 0 ||
		    strcmp(step, "unmasked") == 0) {
			n = unescape(argv[++i], buf);
			send_frame(step[0] == 't' ? WS_TEXT : WS_BINARY, 1,
			           step[0] != 'u', buf, n);
		} else if (strcmp(step, "frag") == 0) {
			int parts = atoi(argv[++i]), p;
			size_t at = 0, len;

			if (i + 1 >= argc || parts < 2)
				fail("frag N TEXT, N >= 2");
			n = unescape(argv[++i], buf);
			for (p = 0; p < parts; p++) {
				len = p == parts - 1 ? n - at : n / parts;
				send_frame(p ? WS_CONTINUATION : WS_BINARY,
				           p == parts - 1, 1, buf + at, len);
				at += len;
				if (p == 0)
					send_frame(WS_PING, 1, 1, "in-between", 10);
			}
			expect_pong("in-between", 10);
		} else if (strcmp(step, "big") == 0) {
			unsigned char head[WS_HEADER_MAX];
			size_t hl = ws_put_header(head, WS_BINARY, strtoull(argv[++i], NULL, 10));

			head[1] |= 0x80;
			memset(head + hl, 0x5a, 4);
			send_all(fd, head, hl + 4);
			send_all(fd, "0123456789abcdef", 16);
		} else if (strcmp(step, "flood") == 0) {
			size_t left = strtoull(argv[++i], NULL, 10), len;

			memset(buf, 'f', 4096);
			for (; left; left -= len) {
				len = left < 4096 ? left : 4096;
				send_frame(WS_BINARY, 1, 1, buf, len);
			}
		} else if (strcmp(step, "ping") == 0) {
			n = unescape(argv[++i], buf);
			send_frame(WS_PING, 1, 1, buf, n);
			expect_pong(buf, n);
		} else if (strcmp(step, "expect") == 0) {
			expect(argv[++i]);
			consume();
		} else if (strcmp(step, "save") == 0) {
			struct timespec t0, t1;
			FILE *f;

			if (i + 2 >= argc)
				fail("save TEXT FILE");
			/* Memory for 16 MiB, touched now: growing it while
			 * megabytes arrive would stall the reader (a browser
			 * that stalls skips output, by design). */
			if (got_cap < SAVE_RESERVE) {
				if (!(got = realloc(got, SAVE_RESERVE)))
					fail("out of memory");
				memset(got + got_len, 0, SAVE_RESERVE - got_len);
				got_cap = SAVE_RESERVE;
			}
			clock_gettime(CLOCK_MONOTONIC, &t0);
			timeout_s *= 6;       /* megabytes take longer */
			expect(argv[++i]);
			timeout_s /= 6;
			clock_gettime(CLOCK_MONOTONIC, &t1);
			if (!(f = fopen(argv[++i], "w")) ||
			    fwrite(got, 1, expect_end, f) != expect_end || fclose(f) != 0)
				fail("%s: %s", argv[i], strerror(errno));
			printf("saved %zu bytes in %.3f s\n", expect_end,
			       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
			consume();
		} else if (strcmp(step, "expect-close") == 0) {
			expect_close((unsigned)atoi(argv[++i]));
		} else if (strcmp(step, "close") == 0) {
			send_frame(WS_CLOSE, 1, 1, "\x03\xe8", 2);
			expect_close(1000);
		} else if (strcmp(step, "close-why") == 0) {
			n = unescape(argv[++i], buf + 2);
			memcpy(buf, "\x03\xe8", 2);
			send_frame(WS_CLOSE, 1, 1, buf, n + 2);
			expect_close(1000);
		} else if (strcmp(step, "wait-file") == 0) {
			const char *file = argv[++i];
			struct stat st;

			set_deadline();
			while (stat(file, &st) < 0) {
				if (!ms_left())
					fail("no %s within %d s", file, timeout_s);
				usleep(20000);
			}
		} else {
			fail("unknown step %s", step);
		}
	}
	return 0;
}
