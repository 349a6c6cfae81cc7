/*
 * tests/clients.c - TCP client workloads against a console port of the
 * network backend, for the test suite and the soak.
 *
 * usage: clients [--timeout=S] --cycles N [--orderly-every K] HOST:PORT
 *        clients [--timeout=S] --hold N [--served K] [--expect TEXT] [--wait]
 *                HOST:PORT
 *        clients [--timeout=S] [--stall] [--rcvbuf B] [--read FILE]
 *                [--until TEXT] HOST:PORT
 *        clients --help
 *
 * HOST is an IPv4 address or an IPv6 one in brackets ([::1]:12345).  Every
 * wait sleeps in poll() and is bounded by the timeout (default 10 s; 0 = no
 * limit), counted afresh for each phase.  Exit 0 on success; at the first
 * failure one line "clients: REASON" on stderr and exit 1.
 *
 * --cycles N: connect and close N times, one after the other.  Before each
 *     connect the daemon's accept queue (Recv-Q of its listener, from
 *     sock_diag or /proc/net/tcp{,6}: connections established, not yet
 *     accepted) must be under 4: the listener's backlog is small, and a connection whose SYN
 *     it dropped would stall for a 1 s retransmission.  A connection is
 *     closed with a reset (SO_LINGER 0), except every K-th (--orderly-every,
 *     default 100) and the last: those shut their writing side down and
 *     read until the daemon closes them, which vouches for every earlier
 *     one too (the daemon accepts in order, and closes a client in the same
 *     pass at the latest where it sees a later one's EOF); there a refusal
 *     line ("vhost-device-console: ...") fails the run.  Resets, because the
 *     side that closes first keeps the port pair in TIME_WAIT for 60 s, and
 *     thousands of client ports in TIME_WAIT make binding a free-looking
 *     port fail for the next tests.  10000 cycles take a second or two.
 *     Prints "cycles=N orderly=M".
 *
 * --hold N: open N connections, all held open together (paced on the
 *     daemon's accept queue as with --cycles).  Each connection ends up
 *       refused - it got exactly one line starting "vhost-device-console: "
 *                 and then EOF,
 *       closed  - EOF (or a reset) otherwise,
 *       open    - still open: served.
 *     Phase 1 waits until every connection is established, the daemon's
 *     accept queue is empty and, with --served K, exactly N-K connections
 *     were refused or closed (without --served, a refusal still on its way
 *     may be counted as open).  It prints
 *       ready open=X refused=Y closed=Z
 *       refusal: LINE          (the first refusal line, if any)
 *     Phase 2, with --expect TEXT: waits until every open connection has
 *     received TEXT (or closed).  Then it prints "served=S refused=R
 *     closed=C", S counting the open connections (that got TEXT, with
 *     --expect).  With --wait it then keeps them open until SIGUSR1 or
 *     SIGTERM (bounded by the timeout).  Then it closes them all, with
 *     resets (see --cycles).  Fails when S differs from --served K or an
 *     open connection missed TEXT.
 *
 * Otherwise, one connection (with SO_RCVBUF B if --rcvbuf is given, set
 * before connecting, so the window stays small): prints "connected
 * LOCALADDR".  --stall: do not read at all until SIGUSR1 (a client that
 * stopped reading; SO_RCVBUF 4096 unless --rcvbuf says otherwise); without
 * --read, exit 0 on SIGUSR1.  Then print "reading" and read, appending
 * what arrives to FILE (--read), until TEXT has arrived (--until; EOF
 * first fails) or, without --until, until EOF.  Prints "read=BYTES".
 *
 * TEXT may use the escapes \n \r \t \\ \xHH.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REFUSAL_PREFIX "vhost-device-console: "
#define TEXT_MAX 1024
#define PACE_QUEUE 4            /* keep the daemon's accept queue under this */

static const char usage_text[] =
"usage: clients [--timeout=S] --cycles N [--orderly-every K] HOST:PORT\n"
"       clients [--timeout=S] --hold N [--served K] [--expect TEXT] [--wait]\n"
"               HOST:PORT\n"
"       clients [--timeout=S] [--stall] [--rcvbuf B] [--read FILE]\n"
"               [--until TEXT] HOST:PORT\n"
"TCP client workloads against a console port; see the top of tests/clients.c.\n";

static double timeout_s = 10;
static struct sockaddr_storage addr;
static socklen_t addrlen;
static unsigned port;
static int sigfd = -1;

static _Noreturn void __attribute__((format(printf, 1, 2)))
fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("clients: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A deadline timeout_s from now; INT64_MAX for no limit. */
static int64_t
deadline(void)
{
	return timeout_s > 0 ? now_ms() + (int64_t)(timeout_s * 1000) : INT64_MAX;
}

/* poll() timeout until dl, at most cap ms (cap < 0: no cap). */
static int
ms_left(int64_t dl, int cap)
{
	int64_t left;

	if (dl == INT64_MAX)
		return cap;
	left = dl - now_ms();
	if (left < 0)
		left = 0;
	if (cap >= 0 && left > cap)
		left = cap;
	return (int)left;
}

static bool
expired(int64_t dl)
{
	return dl != INT64_MAX && now_ms() >= dl;
}

static unsigned long
parse_num(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		fail("%s: '%s' is not a number", what, s);
	return v;
}

/* Undo the escapes \n \r \t \\ \xHH; returns the length. */
static size_t
unescape(const char *s, char *out, size_t cap)
{
	size_t n = 0;

	while (*s) {
		char ch = *s++;

		if (ch == '\\' && *s) {
			ch = *s++;
			switch (ch) {
			case 'n': ch = '\n'; break;
			case 'r': ch = '\r'; break;
			case 't': ch = '\t'; break;
			case '\\': break;
			case 'x': {
				char hex[3] = { 0 };
				char *end;

				memcpy(hex, s, s[0] && s[1] ? 2 : 1);
				ch = (char)strtoul(hex, &end, 16);
				if (end == hex)
					fail("bad escape \\x in '%s'", s - 2);
				s += end - hex;
				break;
			}
			default:
				fail("unknown escape \\%c", ch);
			}
		}
		if (n == cap)
			fail("TEXT longer than %zu bytes", cap);
		out[n++] = ch;
	}
	if (n == 0)
		fail("empty TEXT");
	return n;
}

static void
parse_target(const char *arg)
{
	char host[256];
	const char *colon = strrchr(arg, ':');
	struct addrinfo hints, *res;
	size_t hl;
	int r;

	if (!colon || colon == arg)
		fail("'%s' is not HOST:PORT", arg);
	hl = colon - arg;
	if (arg[0] == '[' && hl >= 2 && arg[hl - 1] == ']') {
		arg++;
		hl -= 2;
	}
	if (hl >= sizeof host)
		fail("'%s': host too long", arg);
	memcpy(host, arg, hl);
	host[hl] = 0;
	port = parse_num(colon + 1, "port");
	if (port == 0 || port > 65535)
		fail("port %u out of range", port);
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	r = getaddrinfo(host, colon + 1, &hints, &res);
	if (r)
		fail("'%s': %s", host, gai_strerror(r));
	memcpy(&addr, res->ai_addr, res->ai_addrlen);
	addrlen = res->ai_addrlen;
	freeaddrinfo(res);
}

/* Start a non-blocking connect; returns the fd. */
static int
connect_start(int rcvbuf)
{
	int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		fail("socket: %s", strerror(errno));
	if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0)
		fail("SO_RCVBUF: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&addr, addrlen) < 0 && errno != EINPROGRESS)
		fail("connect: %s", strerror(errno));
	return fd;
}

/* 1 once fd's connect completed, 0 while in progress; fails on error. */
static int
connect_done(int fd, const char *what)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int err = 0;
	socklen_t l = sizeof err;

	if (poll(&p, 1, 0) <= 0)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
		fail("%s: SO_ERROR: %s", what, strerror(errno));
	if (err)
		fail("%s: connect: %s", what, strerror(err));
	return 1;
}

/* Connect and wait (bounded) until established. */
static int
connect_wait(int rcvbuf, int64_t dl, const char *what)
{
	int fd = connect_start(rcvbuf);
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	while (!connect_done(fd, what)) {
		if (expired(dl))
			fail("%s: connect timed out", what);
		poll(&p, 1, ms_left(dl, -1));
	}
	return fd;
}

/*
 * The daemon's accept queue: Recv-Q of the TCP listener on our port (for a
 * listener, the connections established and not yet accepted), asked of
 * the kernel with sock_diag for listeners only, so thousands of sockets in
 * TIME_WAIT do not slow it down; /proc/net/tcp{,6} if that fails.  -1 if
 * there is no such listener.
 */
static long
listen_queue_diag(void)
{
	static int nl = -1;
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
	} req;
	char buf[16384];
	long q = -1;
	int fam;

	if (nl < 0 && (nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)) < 0)
		return -2;
	for (fam = 0; fam < 2; fam++) {
		bool done = false;

		memset(&req, 0, sizeof req);
		req.nh.nlmsg_len = sizeof req;
		req.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
		req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
		req.r.sdiag_family = fam ? AF_INET6 : AF_INET;
		req.r.sdiag_protocol = IPPROTO_TCP;
		req.r.idiag_states = 1u << 10;          /* TCP_LISTEN */
		if (send(nl, &req, sizeof req, 0) < 0)
			return -2;
		while (!done) {
			ssize_t n = recv(nl, buf, sizeof buf, 0);
			struct nlmsghdr *h = (struct nlmsghdr *)buf;

			if (n <= 0)
				return -2;
			for (; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
				struct inet_diag_msg *m = NLMSG_DATA(h);

				if (h->nlmsg_type == NLMSG_DONE) {
					done = true;
					break;
				}
				if (h->nlmsg_type == NLMSG_ERROR)
					return -2;
				if (ntohs(m->id.idiag_sport) == port && q < 0)
					q = m->idiag_rqueue;
			}
		}
	}
	return q;
}

static long
listen_queue(void)
{
	static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	char line[512];
	unsigned i;
	long q = listen_queue_diag();

	if (q >= -1)
		return q;
	for (i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "r");

		if (!f)
			continue;
		while (fgets(line, sizeof line, f)) {
			char local[80];
			unsigned st, lport;
			unsigned long txq, rxq;
			char *c;

			if (sscanf(line, " %*u: %79s %*s %x %lx:%lx", local, &st, &txq, &rxq) != 4 ||
			    st != 0x0A || !(c = strrchr(local, ':')) ||
			    sscanf(c + 1, "%x", &lport) != 1 || lport != port)
				continue;
			fclose(f);
			return (long)rxq;
		}
		fclose(f);
	}
	return -1;
}

static void
local_name(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	snprintf(buf, len, "?");
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, serv, sizeof serv,
	                NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		snprintf(buf, len, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

/* SIGUSR1 and SIGTERM arrive through sigfd (blocked from the start, so
 * none is lost). */
static void
signals_setup(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0)
		fail("signalfd: %s", strerror(errno));
}

static bool usr1_seen, term_seen, term_releases;

/* Take the signals waiting on sigfd.  SIGTERM fails the run, except
 * while --wait waits for it. */
static void
take_signals(void)
{
	struct signalfd_siginfo si;

	while (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGUSR1)
			usr1_seen = true;
		else if (term_releases)
			term_seen = true;
		else
			fail("terminated by SIGTERM");
	}
}

static void
fd_limit(size_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* ---- --cycles -------------------------------------------------------------- */

static void
reset_close(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
}

/* Read fd until EOF (the daemon closed it), keeping the first bytes. */
static void
read_to_eof(int fd, unsigned long i)
{
	char buf[4096], head[256];
	size_t hl = 0;
	int64_t dl = deadline();
	struct pollfd p = { .fd = fd, .events = POLLIN };

	for (;;) {
		ssize_t r = read(fd, buf, sizeof buf);

		if (r > 0) {
			size_t k = (size_t)r < sizeof head - 1 - hl ? (size_t)r : sizeof head - 1 - hl;

			memcpy(head + hl, buf, k);
			hl += k;
			continue;
		}
		if (r == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			fail("connection %lu: read: %s", i, strerror(errno));
		if (expired(dl))
			fail("connection %lu: the daemon did not close it within %g s", i, timeout_s);
		poll(&p, 1, ms_left(dl, -1));
	}
	head[hl] = 0;
	if (hl >= strlen(REFUSAL_PREFIX) && !memcmp(head, REFUSAL_PREFIX, strlen(REFUSAL_PREFIX)))
		fail("connection %lu refused: %s", i, strtok(head, "\r\n"));
}

/* Wait (bounded) until the daemon's accept queue is short. */
static void
pace(int64_t dl, unsigned long i)
{
	long q;

	while ((q = listen_queue()) >= PACE_QUEUE) {
		if (expired(dl))
			fail("the daemon does not accept: %ld connections wait in its "
			     "listen queue after %lu connects", q, i);
		poll(NULL, 0, 1);
	}
	if (q < 0)
		fail("nothing listens on port %u", port);
}

static void
run_cycles(unsigned long n, unsigned long orderly_every)
{
	unsigned long i, orderly = 0;

	for (i = 1; i <= n; i++) {
		char what[64];
		int64_t dl = deadline();
		int fd;

		snprintf(what, sizeof what, "connection %lu", i);
		pace(dl, i - 1);
		fd = connect_wait(0, dl, what);
		if (i % orderly_every && i < n) {
			reset_close(fd);
			continue;
		}
		if (shutdown(fd, SHUT_WR) < 0)
			fail("%s: shutdown: %s", what, strerror(errno));
		read_to_eof(fd, i);
		close(fd);
		orderly++;
	}
	printf("cycles=%lu orderly=%lu\n", n, orderly);
}

/* ---- --hold ---------------------------------------------------------------- */

enum { C_UNUSED, C_CONNECTING, C_OPEN, C_REFUSED, C_CLOSED };

struct conn {
	int fd;
	int state;
	char head[256];           /* the first bytes received */
	size_t headlen, got;
	char tail[TEXT_MAX];      /* the last textlen-1 bytes, for the match */
	size_t taillen;
	bool found;               /* TEXT arrived */
};

static struct conn *conns;
static unsigned long nconns;
static char text[TEXT_MAX];
static size_t textlen;
static bool refusal_shown;

/* Whether TEXT is in the stream, across reads of any size. */
static void
match_text(struct conn *c, const char *p, size_t n)
{
	char edge[2 * TEXT_MAX];
	size_t k, len, keep;

	if (!textlen || c->found)
		return;
	/* Across the boundary: the kept tail, then the start of p. */
	k = n < textlen - 1 ? n : textlen - 1;
	memcpy(edge, c->tail, c->taillen);
	memcpy(edge + c->taillen, p, k);
	len = c->taillen + k;
	if (memmem(edge, len, text, textlen) || memmem(p, n, text, textlen)) {
		c->found = true;
		return;
	}
	/* Keep the last textlen-1 bytes seen. */
	if (k == n) {
		keep = len < textlen - 1 ? len : textlen - 1;
		memmove(c->tail, edge + len - keep, keep);
	} else {
		keep = textlen - 1;
		memcpy(c->tail, p + n - keep, keep);
	}
	c->taillen = keep;
}

static void
conn_finish(struct conn *c, bool reset)
{
	size_t pl = strlen(REFUSAL_PREFIX);
	char *nl;

	c->head[c->headlen] = 0;
	nl = memchr(c->head, '\n', c->headlen);
	/* Refused: one line with the prefix, and nothing else. */
	if (!reset && c->got == c->headlen && c->headlen > pl &&
	    !memcmp(c->head, REFUSAL_PREFIX, pl) && nl == c->head + c->headlen - 1) {
		c->state = C_REFUSED;
		if (!refusal_shown) {
			refusal_shown = true;
			printf("refusal: %s\n", strtok(c->head, "\r\n"));
		}
	} else {
		c->state = C_CLOSED;
	}
	close(c->fd);
	c->fd = -1;
}

/* Read whatever the connection has. */
static void
conn_read(struct conn *c)
{
	char buf[4096];

	for (;;) {
		ssize_t r = read(c->fd, buf, sizeof buf);

		if (r > 0) {
			size_t room = sizeof c->head - 1 - c->headlen;
			size_t k = (size_t)r < room ? (size_t)r : room;

			memcpy(c->head + c->headlen, buf, k);
			c->headlen += k;
			c->got += r;
			match_text(c, buf, r);
			continue;
		}
		if (r == 0) {
			conn_finish(c, false);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return;
		if (errno == ECONNRESET || errno == EPIPE) {
			conn_finish(c, true);
			return;
		}
		fail("read: %s", strerror(errno));
	}
}

/* Serve every connection's events once, waiting at most ms. */
static void
hold_poll(int ms)
{
	static struct pollfd *pf;
	static struct conn **who;
	unsigned long i, k = 0;

	if (!pf) {
		pf = calloc(nconns + 1, sizeof *pf);
		who = calloc(nconns + 1, sizeof *who);
		if (!pf || !who)
			fail("out of memory");
	}
	for (i = 0; i < nconns; i++) {
		struct conn *c = &conns[i];

		if (c->state != C_CONNECTING && c->state != C_OPEN)
			continue;
		pf[k].fd = c->fd;
		pf[k].events = c->state == C_CONNECTING ? POLLOUT : POLLIN;
		pf[k].revents = 0;
		who[k++] = c;
	}
	pf[k].fd = sigfd;       /* --wait may end early on a signal */
	pf[k].events = POLLIN;
	pf[k].revents = 0;
	if (poll(pf, k + 1, ms) <= 0)
		return;
	if (pf[k].revents)
		take_signals();
	for (i = 0; i < k; i++) {
		struct conn *c = who[i];

		if (!pf[i].revents)
			continue;
		if (c->state == C_CONNECTING) {
			char what[64];

			snprintf(what, sizeof what, "connection %lu", (unsigned long)(c - conns) + 1);
			if (connect_done(c->fd, what))
				c->state = C_OPEN;
		}
		if (c->state == C_OPEN)
			conn_read(c);
	}
}

static void
count(unsigned long *connecting, unsigned long *open, unsigned long *refused,
      unsigned long *closed, unsigned long *found)
{
	unsigned long i;

	*connecting = *open = *refused = *closed = *found = 0;
	for (i = 0; i < nconns; i++) {
		switch (conns[i].state) {
		case C_UNUSED: break;
		case C_CONNECTING: ++*connecting; break;
		case C_OPEN: ++*open; *found += conns[i].found; break;
		case C_REFUSED: ++*refused; break;
		default: ++*closed;
		}
	}
}

static void
run_hold(unsigned long n, long served, bool wait_signal)
{
	unsigned long i, connecting, open, refused, closed, found;
	long q;
	int64_t dl = deadline();

	nconns = n;
	conns = calloc(n, sizeof *conns);
	if (!conns)
		fail("out of memory");
	fd_limit(n + 16);
	/* Phase 1: connect, paced on the daemon's accept queue. */
	for (i = 0; i < n; i++) {
		while ((q = listen_queue()) >= PACE_QUEUE) {
			if (expired(dl))
				fail("the daemon does not accept: %ld connections wait in its "
				     "listen queue after %lu connects", q, i);
			hold_poll(ms_left(dl, 1));
		}
		if (q < 0)
			fail("nothing listens on port %u", port);
		conns[i].fd = connect_start(0);
		conns[i].state = C_CONNECTING;
		hold_poll(0);
	}
	for (;;) {
		count(&connecting, &open, &refused, &closed, &found);
		q = listen_queue();
		if (served >= 0 && refused + closed > n - (unsigned long)served)
			fail("served=%lu refused=%lu closed=%lu: more than %lu turned away",
			     open, refused, closed, n - (unsigned long)served);
		if (!connecting && q == 0 &&
		    (served < 0 || refused + closed == n - (unsigned long)served))
			break;
		if (expired(dl))
			fail("timed out with connecting=%lu served=%lu refused=%lu closed=%lu, "
			     "listen queue %ld", connecting, open, refused, closed, q);
		hold_poll(ms_left(dl, q > 0 ? 1 : 20));
	}
	printf("ready open=%lu refused=%lu closed=%lu\n", open, refused, closed);
	fflush(stdout);
	/* Phase 2: TEXT on every open connection. */
	dl = deadline();
	while (textlen) {
		count(&connecting, &open, &refused, &closed, &found);
		if (found == open)
			break;
		if (expired(dl))
			fail("only %lu of %lu open connections got the text (refused=%lu "
			     "closed=%lu)", found, open, refused, closed);
		hold_poll(ms_left(dl, -1));
	}
	count(&connecting, &open, &refused, &closed, &found);
	printf("served=%lu refused=%lu closed=%lu\n", open, refused, closed);
	fflush(stdout);
	if (served >= 0 && open != (unsigned long)served)
		fail("served %lu, expected %ld", open, served);
	if (wait_signal) {
		dl = deadline();
		term_releases = true;
		take_signals();
		while (!usr1_seen && !term_seen) {
			if (expired(dl))
				fail("--wait: no SIGUSR1 or SIGTERM within %g s", timeout_s);
			hold_poll(ms_left(dl, -1));   /* keeps reading the open ones */
		}
	}
	for (i = 0; i < n; i++)
		if (conns[i].fd >= 0)
			reset_close(conns[i].fd);
}

/* ---- one connection: --stall, --read ---------------------------------------- */

static void
run_one(bool stall, int rcvbuf, const char *file, bool until)
{
	char name[128], buf[65536];
	struct conn c;
	int fd, out = -1;
	int64_t dl = deadline();
	unsigned long long total = 0;

	if (stall && rcvbuf <= 0)
		rcvbuf = 4096;
	fd = connect_wait(rcvbuf, dl, "connection");
	local_name(fd, name, sizeof name);
	printf("connected %s\n", name);
	fflush(stdout);
	if (stall) {
		struct pollfd p = { .fd = sigfd, .events = POLLIN };

		dl = deadline();
		take_signals();
		while (!usr1_seen) {
			if (expired(dl))
				fail("--stall: no SIGUSR1 within %g s", timeout_s);
			poll(&p, 1, ms_left(dl, -1));
			take_signals();
		}
		if (!file)
			return;
		printf("reading\n");
		fflush(stdout);
	}
	if (file && (out = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
		fail("%s: %s", file, strerror(errno));
	memset(&c, 0, sizeof c);
	dl = deadline();
	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
		                       { .fd = sigfd, .events = POLLIN } };
		ssize_t r = read(fd, buf, sizeof buf);

		if (r > 0) {
			total += r;
			if (out >= 0) {
				ssize_t w, done = 0;

				while (done < r) {
					w = write(out, buf + done, r - done);
					if (w < 0)
						fail("%s: %s", file, strerror(errno));
					done += w;
				}
			}
			match_text(&c, buf, r);
			if (c.found)
				break;
			continue;
		}
		if (r == 0) {
			if (until)
				fail("EOF after %llu bytes, before the text", total);
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			fail("read after %llu bytes: %s", total, strerror(errno));
		if (expired(dl))
			fail("timed out after %llu bytes%s", total, until ? " without the text" : "");
		poll(p, 2, ms_left(dl, -1));
		take_signals();
	}
	printf("read=%llu\n", total);
	if (out >= 0)
		close(out);
	close(fd);
}

int
main(int argc, char **argv)
{
	unsigned long cycles = 0, hold = 0, orderly_every = 0;
	long served = -1;
	bool stall = false, wait_signal = false, until = false;
	const char *file = NULL;
	int rcvbuf = 0, i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

#define VALUE() do { if (!v) fail("%s needs a value", a); i++; } while (0)
		if (!strcmp(a, "--help")) {
			fputs(usage_text, stdout);
			return 0;
		} else if (!strncmp(a, "--timeout=", 10)) {
			char *end;

			timeout_s = strtod(a + 10, &end);
			if (end == a + 10 || *end || timeout_s < 0)
				fail("bad %s", a);
		} else if (!strcmp(a, "--timeout")) {
			VALUE();
			timeout_s = parse_num(v, a);
		} else if (!strcmp(a, "--cycles")) {
			VALUE();
			cycles = parse_num(v, a);
		} else if (!strcmp(a, "--orderly-every")) {
			VALUE();
			orderly_every = parse_num(v, a);
			if (!orderly_every)
				fail("--orderly-every 0");
		} else if (!strcmp(a, "--hold")) {
			VALUE();
			hold = parse_num(v, a);
		} else if (!strcmp(a, "--served")) {
			VALUE();
			served = (long)parse_num(v, a);
		} else if (!strcmp(a, "--expect") || !strcmp(a, "--until")) {
			VALUE();
			textlen = unescape(v, text, sizeof text);
			until = !strcmp(a, "--until");
		} else if (!strcmp(a, "--wait")) {
			wait_signal = true;
		} else if (!strcmp(a, "--stall")) {
			stall = true;
		} else if (!strcmp(a, "--rcvbuf")) {
			VALUE();
			rcvbuf = (int)parse_num(v, a);
		} else if (!strcmp(a, "--read")) {
			VALUE();
			file = v;
		} else {
			fputs(usage_text, stderr);
			fail("unknown option %s", a);
		}
#undef VALUE
	}
	if (i != argc - 1) {
		fputs(usage_text, stderr);
		fail("expected one HOST:PORT after the options");
	}
	if (cycles && hold)
		fail("--cycles and --hold exclude each other");
	if ((cycles || hold) && (stall || file || until || rcvbuf))
		fail("--stall, --read, --until and --rcvbuf go with one connection");
	if (!hold && (served >= 0 || wait_signal || (textlen && !until)))
		fail("--served, --expect and --wait go with --hold");
	if (served >= 0 && (unsigned long)served > hold)
		fail("--served %ld is more than --hold %lu", served, hold);
	if (orderly_every && !cycles)
		fail("--orderly-every goes with --cycles");
	parse_target(argv[i]);
	signal(SIGPIPE, SIG_IGN);
	if (!cycles)   /* --cycles never waits for a signal: TERM just kills */
		signals_setup();
	if (cycles)
		run_cycles(cycles, orderly_every ? orderly_every : 100);
	else if (hold)
		run_hold(hold, served, wait_signal);
	else
		run_one(stall, rcvbuf, file, until);
	return 0;
}
