/* backends/telnet.c - telnet for stream clients.  See telnet.h. */
#include <sys/socket.h>

#include "../util.h"
#include "telnet.h"

/* The bytes and options we use. */
enum { TN_SE = 240, TN_SB = 250, TN_WILL = 251, TN_DONT = 254, TN_DO = 253,
       TN_IAC = 255, TN_ECHO = 1, TN_SGA = 3, TN_NAWS = 31 };
/* Where the input parser is. */
enum { TS_DATA, TS_IAC, TS_OPTION, TS_SB, TS_SB_IAC };

/* Stream bytes the output scratch takes per send: at most twice as many
 * go out (every IAC doubled). */
#define TELNET_CHUNK 4096

void
telnet_hello(int fd)
{
	static const unsigned char hello[] = {
		TN_IAC, TN_WILL, TN_ECHO, TN_IAC, TN_WILL, TN_SGA,
		TN_IAC, TN_DO, TN_NAWS };

	if (send(fd, hello, sizeof hello, MSG_NOSIGNAL) < 0) {
		/* gone already: the read will say so */
	}
}

/* A suboption has ended: NAWS is a window size (cols, rows, big-endian). */
static void
suboption_end(struct telnet_in *t, struct port *port)
{
	if (t->sb_len >= 5 && t->sb[0] == TN_NAWS)
		port_set_size(port, t->sb[1] << 8 | t->sb[2],
		              t->sb[3] << 8 | t->sb[4]);
}

/* A suboption's byte, kept when it fits (NAWS needs five). */
static void
suboption_byte(struct telnet_in *t, unsigned char b)
{
	if (t->sb_len < sizeof t->sb)
		t->sb[t->sb_len++] = b;
}

size_t
telnet_input(struct telnet_in *t, struct port *port, const unsigned char *in,
             size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		unsigned char b = in[i];

		switch (t->state) {
		case TS_DATA:
			if (b == TN_IAC) {
				t->state = TS_IAC;
			} else if (t->cr && (b == 0 || b == '\n')) {
				t->cr = 0;              /* CR NUL, CR LF: the CR */
			} else {
				out[o++] = b;
				t->cr = b == '\r';
			}
			break;
		case TS_IAC:
			t->state = TS_DATA;
			if (b == TN_IAC)
				out[o++] = b;
			else if (b >= TN_WILL && b <= TN_DONT)
				t->state = TS_OPTION;
			else if (b == TN_SB) {
				t->state = TS_SB;
				t->sb_len = 0;
			}
			break;
		case TS_OPTION:                 /* the answers to our offers */
			t->state = TS_DATA;
			break;
		case TS_SB:
			if (b == TN_IAC)
				t->state = TS_SB_IAC;
			else
				suboption_byte(t, b);
			break;
		case TS_SB_IAC:
			if (b == TN_SE) {
				suboption_end(t, port);
				t->state = TS_DATA;
			} else {
				if (b == TN_IAC)
					suboption_byte(t, b);
				t->state = TS_SB;
			}
			break;
		}
	}
	return o;
}

/* The stream bytes of span into out with every IAC doubled.  Returns
 * the bytes in out. */
static size_t
double_iacs(const struct iovec *span, int cnt, char *out)
{
	size_t o = 0, i;
	int k;

	for (k = 0; k < cnt; k++) {
		const unsigned char *p = span[k].iov_base;

		for (i = 0; i < span[k].iov_len; i++) {
			out[o++] = (char)p[i];
			if (p[i] == TN_IAC)
				out[o++] = (char)TN_IAC;
		}
	}
	return o;
}

/* n bytes of what double_iacs() made went out: how many stream bytes of
 * span they carry.  A send that ended between an IAC and its double owes
 * the double (*owed). */
static size_t
stream_sent(const struct iovec *span, int cnt, size_t n, unsigned *owed)
{
	size_t k = 0, used = 0, i;
	int s;

	for (s = 0; s < cnt && k < n; s++) {
		const unsigned char *p = span[s].iov_base;

		for (i = 0; i < span[s].iov_len && k < n; i++) {
			k++;
			used++;
			if (p[i] != TN_IAC)
				continue;
			if (k < n)
				k++;
			else
				*owed = 1;
		}
	}
	return used;
}

/*
 * Telnet output: the stream with every IAC doubled, one send per
 * TELNET_CHUNK stream bytes from a scratch, however many IACs the guest
 * writes (not a send per IAC, which made a guest writing 0xff cost two
 * syscalls per byte per client and held up every other console).  A send
 * that ended between an IAC and its double owes the double: it goes
 * alone, before anything else, a skip notice too (after a lone IAC the
 * notice would read as a command), and the notice before the bytes after
 * the gap.
 */
int
telnet_send(struct sess *s, struct reader *r, int fd, size_t budget)
{
	char out[2 * TELNET_CHUNK];
	struct iovec span[2], iov;
	size_t len;
	ssize_t n;
	int cnt;

	for (;;) {
		if (r->owed) {
			iov.iov_base = out;
			iov.iov_len = 1;
			out[0] = (char)TN_IAC;
			if ((n = writev_some(fd, &iov, 1)) <= 0)
				return (int)n;
			r->owed = 0;
			continue;
		}
		if ((iov.iov_base = (void *)reader_notice(r, &iov.iov_len))) {
			if ((n = writev_some(fd, &iov, 1)) <= 0)
				return (int)n;
			reader_notice_sent(r, (size_t)n);
			continue;
		}
		len = reader_peek(s, r, budget < TELNET_CHUNK ? budget :
		                  TELNET_CHUNK, span, &cnt);
		if (!len)
			return 1;
		iov.iov_base = out;
		iov.iov_len = double_iacs(span, cnt, out);
		if ((n = writev_some(fd, &iov, 1)) <= 0)
			return (int)n;
		len = stream_sent(span, cnt, (size_t)n, &r->owed);
		reader_advance(s, r, len);
		budget -= len;
	}
}
