/*
 * backends/nested.c - the console on the daemon's own terminal.
 *
 * When stdin is a terminal it goes into raw mode, so that every key,
 * Ctrl-C included, reaches the guest; the settings are restored on every
 * way out: normal exit, die(), SIGTERM/SIGINT/SIGHUP (through the loop),
 * and fatal signals (a handler here).  The escape character (Ctrl-] by
 * default) followed by 'q' quits; pressed twice it sends itself.
 *
 * Without a terminal, stdin and stdout are plain byte streams: no escape
 * processing, and EOF on stdin ends input while output goes on.
 *
 * Input goes stdin -> the hold -> the guest's receive buffers.  The hold is
 * small and bounded: it lets the escape key work while no guest is there
 * to take input, and when it is full stdin is left unread (backpressure).
 * Output: the terminal is a reader of console 0's session (session.h),
 * so a terminal that stops (^S) skips ahead instead of holding the guest.
 * The terminal's size goes to the guest at start and on SIGWINCH.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "../util.h"
#include "backend.h"


struct nested {
	int in_fd, out_fd;
	int tty;                /* stdin is a terminal, now in raw mode */
	int in_eof;
	int escape;             /* escape character, -1 for none */
	int esc_pending;        /* the escape character was just typed */
	struct hold hold;              /* typed, not yet taken by the guest */
	struct reader rd;       /* stdout's place in the console's output */
	int out_failed;         /* stdout is gone: output is not written */
	unsigned long long discarded;  /* read-only: bytes typed, dropped */
};

/* Said on the terminal when the escape key quits, on a line of its own. */
#define QUIT_LINE "\r\n[" PROGNAME ": quit]\r\n"

static void nested_winch(struct endpoint *ep);
static void track_line(struct nested *n, uint64_t before);

/*
 * What must be put back on the way out.  File-static because a fatal
 * signal handler needs it and gets no arguments; set once at open.
 */
static struct termios saved_termios;
static int saved_tty_fd = -1;
static int saved_out_fd = -1, saved_out_flags;

/* Async-signal-safe: tcsetattr and fcntl only. */
static void
nested_restore(void)
{
	if (saved_tty_fd >= 0)
		tcsetattr(saved_tty_fd, TCSADRAIN, &saved_termios);
	if (saved_out_fd >= 0)
		fcntl(saved_out_fd, F_SETFL, saved_out_flags);
}

static void
on_fatal_signal(int sig)
{
	nested_restore();
	raise(sig);   /* SA_RESETHAND: now with the default action */
}

static void
catch_fatal_signals(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fatal_signal;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
}

static int
nested_open(struct endpoint *ep, const struct backend_config *cfg, char *err,
            size_t errlen)
{
	struct nested *n;
	struct termios raw;
	int fl;

	if (ep->index != 0)     /* the terminal is console 0's */
		return 1;
	if (!(n = calloc(1, sizeof *n))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n->in_fd = STDIN_FILENO;
	n->out_fd = STDOUT_FILENO;
	n->escape = cfg->escape;
	/* Output must never block the loop: non-blocking, restored later. */
	fl = fcntl(n->out_fd, F_GETFL);
	if (fl < 0) {
		snprintf(err, errlen, "stdout: %s", strerror(errno));
		free(n);
		return -1;
	}
	saved_out_flags = fl;
	saved_out_fd = n->out_fd;
	fcntl(n->out_fd, F_SETFL, fl | O_NONBLOCK);
	if (isatty(n->in_fd) && tcgetattr(n->in_fd, &saved_termios) == 0) {
		saved_tty_fd = n->in_fd;
		catch_fatal_signals();
		raw = saved_termios;
		termios_raw(&raw);
		if (tcsetattr(n->in_fd, TCSADRAIN, &raw) < 0) {
			snprintf(err, errlen, "cannot set raw mode: %s", strerror(errno));
			nested_restore();
			free(n);
			return -1;
		}
		n->tty = 1;
		log_set_raw(1);
	}
	reader_attach(ep->sess, &n->rd, "the terminal");
	/* Events (frontend gone, ...) are on this terminal already: the
	 * log lines say them. */
	n->rd.no_events = 1;
	ep->port->viewers += ep->read_only;
	ep->priv = n;
	nested_winch(ep);
	return 0;
}

static void
nested_close(struct endpoint *ep)
{
	struct nested *n = ep->priv;
	uint64_t before;

	if (!n)
		return;
	/* Last output first, while the terminal is still ours: all it
	 * takes now, not one pass's share. */
	before = n->rd.pos;
	while (!n->out_failed && reader_pending(ep->sess, &n->rd) &&
	       reader_flush(ep->sess, &n->rd, n->out_fd) == 0 && !n->rd.blocked)
		;
	track_line(n, before);
	/* The escape key quit: the shell's prompt must not land on the
	 * guest's last line.  Its "\r\n" only ends an unfinished line (no
	 * blank line after a finished one).  One try: a stopped terminal
	 * (^S) must not hold up the exit. */
	if (ep->quit && !n->out_failed) {
		size_t skip = log_in_mid_line() ? 0 : 2;
		struct iovec iov = { &QUIT_LINE[skip], sizeof QUIT_LINE - 1 - skip };

		(void)writev_some(n->out_fd, &iov, 1);
		log_set_mid_line(0);
	}
	nested_restore();
	saved_tty_fd = saved_out_fd = -1;
	log_set_raw(0);
	if (ep->read_only) {
		ep->port->viewers--;
		logmsg("console %u: the terminal (read-only) left; %llu bytes of "
		       "its input discarded", ep->index, n->discarded);
	}
	reader_detach(ep->sess, &n->rd);
	free(n);
	ep->priv = NULL;
}

static void
nested_describe(struct endpoint *ep, char *buf, size_t len)
{
	struct nested *n = ep->priv;

	if (!n->tty)
		snprintf(buf, len, "stdin/stdout");
	else if (n->escape < 0)
		snprintf(buf, len, "this terminal (no escape key: stop with SIGTERM)");
	else if (n->escape < 0x20)
		snprintf(buf, len, "this terminal (^%c q quits, ^%c ^%c sends ^%c)",
		         n->escape + '@', n->escape + '@', n->escape + '@',
		         n->escape + '@');
	else
		snprintf(buf, len, "this terminal (%c q quits, %c %c sends %c)",
		         n->escape, n->escape, n->escape, n->escape);
}

static int
nested_add_fds(struct endpoint *ep, fd_set *rd, fd_set *wr, int maxfd)
{
	struct nested *n = ep->priv;

	/* Room for one more read, and one byte for a pending escape. */
	if (!n->in_eof && hold_room(&n->hold) > 1)
		maxfd = fd_watch(n->in_fd, rd, maxfd);
	if (!n->out_failed && reader_pending(ep->sess, &n->rd))
		maxfd = fd_watch(n->out_fd, wr, maxfd);
	return maxfd;
}

/*
 * Apply the escape key while copying buf to out: ESC q quits, ESC ESC is
 * one ESC, ESC x is both.  Returns the bytes written to out, at most
 * len + 1 (an ESC pending from the last read, then x).
 */
static size_t
apply_escape(struct endpoint *ep, struct nested *n, const char *buf, size_t len,
             char *out)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		unsigned char ch = buf[i];

		if (n->esc_pending) {
			n->esc_pending = 0;
			if (ch == 'q' || ch == 'Q') {
				ep->quit = 1;
				return o;
			}
			if (ch != n->escape)
				out[o++] = n->escape;
			out[o++] = ch;
		} else if (ch == n->escape) {
			n->esc_pending = 1;
		} else {
			out[o++] = ch;
		}
	}
	return o;
}

/* Read what stdin has, up to the free space in the hold. */
static void
read_stdin(struct endpoint *ep, struct nested *n)
{
	char buf[HOLD_MAX];
	size_t space = hold_room(&n->hold) - 1;
	ssize_t r;

	r = read(n->in_fd, buf, space);
	if (r < 0) {
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		logmsg("console %u: stdin: %s; input stops", ep->index, strerror(errno));
		n->in_eof = 1;
		return;
	}
	if (r == 0) {
		if (!n->tty)
			logmsg("console %u: end of stdin; output goes on until SIGTERM",
			       ep->index);
		n->in_eof = 1;
		return;
	}
	if (ep->read_only) {
		/* A viewer: the escape key still quits; the rest is dropped. */
		size_t typed = n->tty && n->escape >= 0 ?
		               apply_escape(ep, n, buf, r, n->hold.buf + n->hold.len) :
		               (size_t)r;

		n->discarded += typed;
		ep->port->discarded += typed;
	} else if (n->tty && n->escape >= 0) {
		n->hold.len += apply_escape(ep, n, buf, r, n->hold.buf + n->hold.len);
	} else {
		memcpy(n->hold.buf + n->hold.len, buf, r);
		n->hold.len += r;
	}
}

/* The guest's bytes went to the terminal: whether they left its line
 * unfinished, so that a log line on the same terminal starts a new one
 * (util.h).  After a bare "\r" the log line would overwrite the guest's
 * line: only "\n" ends one. */
static void
track_line(struct nested *n, uint64_t before)
{
	if (n->tty && n->rd.pos != before)
		log_set_mid_line(n->rd.mid_line);
}

static void
nested_serve(struct endpoint *ep, const fd_set *rd, const fd_set *wr)
{
	struct nested *n = ep->priv;
	uint64_t before = n->rd.pos;

	if (!n->out_failed &&
	    reader_serve(ep->sess, &n->rd, n->out_fd, FD_ISSET(n->out_fd, wr)) < 0) {
		logmsg("console %u: stdout: %s; output is no longer shown",
		       ep->index, strerror(errno));
		n->out_failed = 1;
	}
	track_line(n, before);
	if (FD_ISSET(n->in_fd, rd))
		read_stdin(ep, n);
	/* Every pass, not only when stdin was readable: the guest may have
	 * just given buffers for what is held. */
	if (n->hold.len)
		hold_feed(ep->port, &n->hold);
}

/* The terminal's size, now: at start and after SIGWINCH. */
static void
nested_winch(struct endpoint *ep)
{
	struct nested *n = ep->priv;
	struct winsize ws;

	/* A read-only terminal only views: the size is the writers'. */
	if (n->tty && !ep->read_only && ioctl(n->in_fd, TIOCGWINSZ, &ws) == 0)
		port_set_size(ep->port, ws.ws_col, ws.ws_row);
}

/* SIGHUP: the terminal hung up, the user is gone; so is the daemon. */
static enum hup_result
nested_hangup(struct endpoint *ep)
{
	(void)ep;
	return HUP_QUIT;
}

const struct backend backend_nested = {
	.name = "nested",
	.open = nested_open,
	.close = nested_close,
	.add_fds = nested_add_fds,
	.serve = nested_serve,
	.describe = nested_describe,
	.winch = nested_winch,
	.hangup = nested_hangup,
};
