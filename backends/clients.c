/* backends/clients.c - the clients of a listening socket.  See clients.h. */
/* POLLRDHUP is Linux's (glibc shows it with _GNU_SOURCE): used where it
 * exists, see clients_reap_gone(). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../util.h"
#include "clients.h"
#include "telnet.h"

void
clients_init(struct clients *cs, int listen_fd, const char *where)
{
	memset(cs, 0, sizeof *cs);
	cs->listen_fd = listen_fd;
	snprintf(cs->where, sizeof cs->where, "%s", where);
}

static void
client_close(struct endpoint *ep, struct clients *cs, struct client *cl,
             const char *why)
{
	unsigned i;

	if (cl->read_only) {
		ep->port->viewers--;
		if (why)
			logmsg("console %u: %s (read-only) %s; %llu bytes of its input "
			       "discarded", ep->index, cl->name, why, cl->discarded);
	} else if (why && cl->hold.len)
		logmsg("console %u: %s %s; %zu bytes of its input never reached "
		       "the guest", ep->index, cl->name, why, cl->hold.len);
	else if (why)
		loginfo("console %u: %s %s", ep->index, cl->name, why);
	reader_detach(ep->sess, &cl->rd);
	close(cl->fd);
	for (i = 0; cs->c[i] != cl; i++)
		;
	cs->c[i] = cs->c[--cs->n];
	free(cl);
}

void
clients_close(struct endpoint *ep, struct clients *cs)
{
	while (cs->n)
		client_close(ep, cs, cs->c[0], NULL);
	close_fd(&cs->listen_fd);
}

/* The peer's address as "host:port", or a number for a UNIX socket's
 * nameless peer, for messages; -1 if it is gone. */
static int
client_name(struct clients *cs, int fd, char *buf, size_t len)
{
	/* Fails when the client reset the connection before we took it. */
	if (peer_name(fd, buf, len) < 0)
		return -1;
	if (!buf[0])
		snprintf(buf, len, "%lu", ++cs->serial);
	return 0;
}

/* Tell a client why it is turned away, in one line, then close it. */
static void
client_refuse(struct endpoint *ep, int fd, const char *name, const char *why,
              const char *tell)
{
	char line[128];
	int len;

	logmsg("console %u: refusing client %s: %s", ep->index, name, why);
	len = snprintf(line, sizeof line, PROGNAME ": %s\r\n", tell);
	conn_refuse(fd, line, len < (int)sizeof line ? (size_t)len : sizeof line - 1);
}

/*
 * A client whose input waits behind a full hold is not read, so its EOF,
 * behind that input, cannot be seen (client_peek()).  When the console
 * is full and a newcomer knocks, such clients are asked whether they are
 * still there: POLLRDHUP says the peer has shut its side even with data
 * unread.  One that has is closed, its waiting input lost and said so,
 * as for any client that leaves with input held.  Without POLLRDHUP (not
 * Linux) they keep their slots until the guest reads (README).
 */
static void
clients_reap_gone(struct endpoint *ep, struct clients *cs)
{
#ifdef POLLRDHUP
	struct pollfd p;
	unsigned i = 0;

	while (i < cs->n) {
		struct client *cl = cs->c[i];

		p.fd = cl->fd;
		p.events = POLLRDHUP;
		p.revents = 0;
		if (cl->input_waits && poll(&p, 1, 0) == 1 &&
		    (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
			client_close(ep, cs, cl, "left with input waiting");
			continue;        /* client_close() moved the last one here */
		}
		i++;
	}
#else
	(void)ep;
	(void)cs;
#endif
}

static void
client_accept(struct endpoint *ep, struct clients *cs)
{
	struct client *cl;
	char name[64], tell[96];
	int fd;

	fd = accept_conn(cs->listen_fd, cs->where);
	if (fd < 0)
		return;
	if (client_name(cs, fd, name, sizeof name) < 0) {
		close(fd);        /* gone already: nothing to serve or tell */
		return;
	}
	if (cs->n == CLIENTS_MAX)
		clients_reap_gone(ep, cs);
	if (cs->n == CLIENTS_MAX) {
		snprintf(tell, sizeof tell, "console %u has %d clients already; "
		         "try again later", ep->index, CLIENTS_MAX);
		client_refuse(ep, fd, name, "too many clients", tell);
		return;
	}
	if (fd >= FD_SETSIZE) {
		client_refuse(ep, fd, name, "descriptor over FD_SETSIZE",
		              "the daemon has too many connections; try again later");
		return;
	}
	if (!(cl = malloc(sizeof *cl))) {
		client_refuse(ep, fd, name, "out of memory",
		              "the daemon is out of memory; try again later");
		return;
	}
	cl->fd = fd;
	cl->hold.len = 0;
	cl->input_waits = 0;
	memset(&cl->tn, 0, sizeof cl->tn);
	cl->read_only = ep->read_only;
	cl->discarded = 0;
	ep->port->viewers += cl->read_only;
	snprintf(cl->name, sizeof cl->name, "client %s", name);
	cs->c[cs->n++] = cl;
	/* It starts with the history: the boot log, the last prompt. */
	reader_attach(ep->sess, &cl->rd, cl->name);
	if (cs->telnet) {
		cl->rd.send = telnet_send;
		telnet_hello(fd);
	}
	loginfo("console %u: %s connected%s", ep->index, cl->name,
	       cl->read_only ? " (read-only)" : "");
}

/*
 * The hold is full and the socket readable: EOF or a reset, or input the
 * guest cannot take yet?  A one-byte peek tells without taking anything
 * (POSIX; no POLLRDHUP).  Input that waits marks the client: select()
 * would call it readable on every pass for bytes we will not read, a
 * spin, so it is not selected for reading until the hold drains (the
 * guest took input: client_read() runs again) or the guest has room.  An
 * EOF behind input that waits is seen then, once that input is read;
 * until then the input is wanted, not lost.  Returns -1 when it has gone.
 */
static int
client_peek(struct client *cl)
{
	char b;
	ssize_t r;

	do
		r = recv(cl->fd, &b, 1, MSG_PEEK);
	while (r < 0 && errno == EINTR);
	if (r > 0) {
		cl->input_waits = 1;
		return 0;
	}
	if (r == 0)
		return -1;
	return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
}

/*
 * The client's input.  Straight to the guest while it has receive
 * buffers, at most what they hold, one readv() into them; otherwise into the small
 * hold, and once that is full not at all: the rest waits in the socket, so
 * a flood costs no memory, and a peek tells whether the client is still
 * there (client_peek()).  Returns -1 when it has gone.
 */
static int
client_read(struct endpoint *ep, struct client *cl)
{
	char buf[4096];
	size_t room;
	ssize_t r;

	hold_feed(ep->port, &cl->hold);
	for (;;) {
		if (cl->rd.send == telnet_send && hold_room(&cl->hold) > 0) {
			/* through the parser and the hold, always */
			r = read(cl->fd, buf, hold_room(&cl->hold));
			if (r > 0) {
				cl->hold.len += telnet_input(&cl->tn, ep->port,
				        (unsigned char *)buf, r, cl->hold.buf + cl->hold.len);
				hold_feed(ep->port, &cl->hold);
			}
		} else if (cl->hold.len == 0 &&
		           (room = port_read_input(ep->port, cl->fd, &r)) > 0) {
			/* Straight into the guest's buffers.  Less than they
			 * take: the socket is empty for now (a keystroke), and
			 * select() says when more comes; no read for EAGAIN. */
			if (r > 0 && (size_t)r < room)
				return 0;
		} else if (hold_room(&cl->hold) > 0) {
			r = read(cl->fd, cl->hold.buf + cl->hold.len,
			         hold_room(&cl->hold));
			if (r > 0)
				cl->hold.len += r;
		} else {
			return client_peek(cl);   /* held full: read no more */
		}
		if (r == 0)
			return -1;
		if (r < 0 && errno != EINTR)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	}
}

/* A viewer's input: read and dropped, counted, at most VIEWER_READ_MAX
 * bytes a pass (more waits for the next).  Returns -1 when it has gone. */
static int
client_discard(struct endpoint *ep, struct client *cl)
{
	char buf[4096];
	size_t total = 0;
	ssize_t r;

	while (total < VIEWER_READ_MAX) {
		r = read(cl->fd, buf, sizeof buf);
		if (r == 0)
			return -1;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		total += r;
		cl->discarded += r;
		ep->port->discarded += r;
	}
	return 0;
}

int
clients_add_fds(struct endpoint *ep, fd_set *rd, fd_set *wr, int maxfd)
{
	struct clients *cs = ep->priv;
	unsigned i;
	int room;

	/* Selected even when full: a client over the limit is told so. */
	if (!accept_paused())
		maxfd = fd_watch(cs->listen_fd, rd, maxfd);
	/* Peek at the receive ring only when someone could type into it. */
	room = cs->n && port_input_room(ep->port) > 0;
	for (i = 0; i < cs->n; i++) {
		struct client *cl = cs->c[i];

		/* Selected for reading while the guest takes input or the
		 * hold has space, and with the hold full until a peek found
		 * input waiting (client_peek()), so that a client that
		 * leaves is noticed. */
		if (room || hold_room(&cl->hold) > 0 || !cl->input_waits ||
		    cl->read_only)
			maxfd = fd_watch(cl->fd, rd, maxfd);
		if (reader_pending(ep->sess, &cl->rd))
			maxfd = fd_watch(cl->fd, wr, maxfd);
	}
	return maxfd;
}

void
clients_serve(struct endpoint *ep, const fd_set *rd, const fd_set *wr)
{
	struct clients *cs = ep->priv;
	unsigned i = 0;

	while (i < cs->n) {
		struct client *cl = cs->c[i];

		if (reader_serve(ep->sess, &cl->rd, cl->fd, FD_ISSET(cl->fd, wr)) < 0) {
			client_close(ep, cs, cl, "went away");
			continue;
		}
		/* The guest may have made room since the hold filled. */
		if (cl->hold.len)
			hold_feed(ep->port, &cl->hold);
		if (FD_ISSET(cl->fd, rd) &&
		    (cl->read_only ? client_discard(ep, cl) : client_read(ep, cl)) < 0) {
			client_close(ep, cs, cl, "disconnected");
			continue;
		}
		i++;
	}
	if (FD_ISSET(cs->listen_fd, rd))
		client_accept(ep, cs);
}
