/*
 * tests/sessunit.c - a reader's flush (session.c) and telnet's output
 * encoding (backends/telnet.c) at their API, against a pipe whose
 * capacity the test sets (F_SETPIPE_SZ), so that what one flush sends,
 * and where a send is cut, is exact.
 *
 * usage: sessunit pass-bound | iac-notice | replay-notice
 *   pass-bound  a reader replaying 512 KiB of history into a pipe that
 *               takes it all gets SESS_PASS_MAX bytes from one flush, is
 *               not marked blocked, and still has output pending
 *   iac-notice  a telnet send cut between an IAC and its double, then the
 *               reader overtaken: the next bytes out are the double, then
 *               the skip notice, then the output after the gap
 *   replay-notice  a reader overtaken in the middle of its replay (a
 *               history of lines with ESC [ 6 n in them) gets the whole
 *               replay, without the queries, then the skip notice, then
 *               the output after the gap
 * Exit 0 on success; one line "sessunit: REASON" and exit 1 otherwise.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../session.h"
#include "../backends/telnet.h"

/* telnet.c reports window sizes to the device: not exercised here. */
void
port_set_size(struct port *p, unsigned cols, unsigned rows)
{
	(void)p;
	(void)cols;
	(void)rows;
}

static void
fail(const char *why)
{
	fprintf(stderr, "sessunit: %s\n", why);
	exit(1);
}

/* A non-blocking pipe that holds size bytes: [0] to read, [1] to write. */
static void
pipe_of(int fds[2], int size)
{
	if (pipe(fds) < 0 || fcntl(fds[1], F_SETPIPE_SZ, size) < 0 ||
	    fcntl(fds[1], F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0)
		fail("pipe");
}

static size_t
queued(int fd)
{
	int n;

	if (ioctl(fd, FIONREAD, &n) < 0)
		fail("FIONREAD");
	return (size_t)n;
}

static void
write_bytes(struct sess *s, int c, size_t n)
{
	char buf[4096];

	memset(buf, c, sizeof buf);
	while (n) {
		size_t k = n < sizeof buf ? n : sizeof buf;

		sess_write(s, buf, k);
		n -= k;
	}
}

static void
pass_bound(void)
{
	struct sess s;
	struct reader r;
	char err[128];
	int fds[2];

	if (sess_init(&s, 0, 512 * 1024, NULL, err, sizeof err) < 0)
		fail(err);
	write_bytes(&s, 'x', 512 * 1024);
	reader_attach(&s, &r, "reader");
	pipe_of(fds, 1024 * 1024);
	if (reader_flush(&s, &r, fds[1]) < 0)
		fail("flush failed");
	if (queued(fds[0]) != SESS_PASS_MAX) {
		fprintf(stderr, "sessunit: one flush sent %zu bytes, want %d\n",
		        queued(fds[0]), SESS_PASS_MAX);
		exit(1);
	}
	if (r.blocked || !reader_pending(&s, &r))
		fail("the reader should be live with output pending");
	reader_detach(&s, &r);
	sess_free(&s);
}

static void
iac_notice(void)
{
	static const char want[] = "\xff\r\n[vhost-device-console: ";
	struct sess s;
	struct reader r;
	char err[128], got[8192];
	int fds[2];

	if (sess_init(&s, 0, 0, NULL, err, sizeof err) < 0)
		fail(err);
	reader_attach(&s, &r, "reader");
	r.send = telnet_send;
	pipe_of(fds, 4096);
	/* 4095 bytes and an IAC fill the pipe: its double is cut off */
	write_bytes(&s, 'a', 4095);
	sess_write(&s, "\xff" "bbbb", 5);
	if (reader_flush(&s, &r, fds[1]) < 0 || !r.blocked)
		fail("the first flush should fill the pipe");
	if (read(fds[0], got, sizeof got) != 4096 || (unsigned char)got[4095] != 0xff)
		fail("the pipe should end with the IAC");
	/* the guest writes a ring's worth: the reader skips */
	write_bytes(&s, 'c', s.cap);
	if (reader_flush(&s, &r, fds[1]) < 0)
		fail("the second flush failed");
	if (read(fds[0], got, sizeof want - 1) != sizeof want - 1 ||
	    memcmp(got, want, sizeof want - 1) != 0) {
		fprintf(stderr, "sessunit: after the cut IAC came %02x %02x %02x, "
		        "want ff 0d 0a (its double, then the notice)\n",
		        (unsigned char)got[0], (unsigned char)got[1],
		        (unsigned char)got[2]);
		exit(1);
	}
	reader_detach(&s, &r);
	sess_free(&s);
}

static void
replay_notice(void)
{
	static const char line[] = "prompt$ \x1b[6nls\n";
	/* The replay ends a line: the notice starts at a line start. */
	static const char notice[] = "[vhost-device-console: ";
	struct sess s;
	struct reader r;
	char err[128], *got;
	size_t lines = 3000, want = lines * (sizeof line - 1 - 4), n = 0, i;
	ssize_t k;
	int fds[2];

	if (sess_init(&s, 0, 65536, NULL, err, sizeof err) < 0 ||
	    !(got = malloc(want + 1024 + s.cap)))
		fail("sess_init");
	for (i = 0; i < lines; i++)
		sess_write(&s, line, sizeof line - 1);
	reader_attach(&s, &r, "reader");
	pipe_of(fds, 4096);
	if (reader_flush(&s, &r, fds[1]) < 0 || !r.blocked)
		fail("the first flush should fill the pipe");
	/* the guest writes more than a ring's worth: the reader skips */
	write_bytes(&s, 'c', s.cap + 100);
	do {
		while ((k = read(fds[0], got + n, 4096)) > 0)
			n += (size_t)k;
		if (reader_flush(&s, &r, fds[1]) < 0)
			fail("a flush failed");
	} while (reader_pending(&s, &r) || queued(fds[0]));
	for (i = 0; i < want; i++)
		if (got[i] != "prompt$ ls\n"[i % 11]) {
			fprintf(stderr, "sessunit: replay byte %zu is %02x, want the "
			        "lines without ESC [ 6 n, whole, before any notice\n",
			        i, (unsigned char)got[i]);
			exit(1);
		}
	if (n < want + sizeof notice - 1 ||
	    memcmp(got + want, notice, sizeof notice - 1) != 0)
		fail("the skip notice should come right after the replay");
	if (got[n - 1] != 'c')
		fail("the output after the gap should come last");
	free(got);
	reader_detach(&s, &r);
	sess_free(&s);
}

int
main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "pass-bound") == 0)
		pass_bound();
	else if (argc == 2 && strcmp(argv[1], "iac-notice") == 0)
		iac_notice();
	else if (argc == 2 && strcmp(argv[1], "replay-notice") == 0)
		replay_notice();
	else
		fail("usage: sessunit pass-bound | iac-notice | replay-notice");
	return 0;
}
