/*
 * backends/network.c - a console on a TCP port.
 *
 * Console k listens on --tcp-address (127.0.0.1 by default) port
 * --tcp-port + k.  Every connected client sees the guest's output and may
 * type.  Output written while no client is connected is kept in a bounded
 * backlog and handed to the next client.
 *
 * A client that does not read gets a bounded queue: past it the oldest
 * output gives way (the newest, the prompt, matters most).  The loss is
 * counted, logged when it starts and when the client catches up, and the
 * client itself is told at the gap: "[vhost-device-console: N bytes of
 * output skipped]".  Neither the guest nor the other clients ever wait.
 *
 * A client over the limit of NET_MAX_CLIENTS is told so in one line and
 * closed; one that cannot get memory for its queue too.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../util.h"
#include "backend.h"

#define NET_MAX_CLIENTS 16
#define NET_QUEUE_SIZE  (64 * 1024)   /* per client, and the backlog */
#define NET_HOLD_SIZE   4096          /* input held while the guest is busy */
/* Connections the kernel queues for us: enough that a burst of clients
 * is answered (served or told no) rather than left retrying SYNs. */
#define NET_BACKLOG     64

struct client {
	int fd;
	char name[64];               /* "127.0.0.1:40000", for messages */
	struct outq out;
	char hold[NET_HOLD_SIZE];    /* input the guest could not take yet */
	size_t hold_len;
	unsigned long long dropped_mark;  /* out.dropped when last logged */
	unsigned long long told_mark;     /* out.dropped when last told */
	char notice[96];             /* "N bytes skipped", being written */
	size_t notice_len, notice_off;
};

struct net {
	int listen_fd;
	char where[80];              /* "127.0.0.1:12345" */
	struct client clients[NET_MAX_CLIENTS];
	unsigned nclients;
	struct outq backlog;         /* output while nobody is connected */
	int backlog_dropping;        /* said so since the last client left */
	unsigned long long dropped;  /* output bytes lost, for the summary */
};

static void client_close(struct endpoint *ep, struct client *cl, const char *why);

static int
net_listen(struct net *n, const struct backend_config *cfg, unsigned port,
           char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, one = 1;

	memset(&ss, 0, sizeof ss);
	if (inet_pton(AF_INET, cfg->tcp_address, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		len = sizeof *sin;
		snprintf(n->where, sizeof n->where, "%s:%u", cfg->tcp_address, port);
	} else if (inet_pton(AF_INET6, cfg->tcp_address, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		len = sizeof *sin6;
		snprintf(n->where, sizeof n->where, "[%s]:%u", cfg->tcp_address, port);
	} else {
		snprintf(err, errlen, "--tcp-address: '%s' is not an IP address",
		         cfg->tcp_address);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, NET_BACKLOG) < 0 ||
	    set_nonblock(fd) < 0 || set_cloexec(fd) < 0) {
		snprintf(err, errlen, "cannot listen on tcp %s: %s", n->where,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (fd >= FD_SETSIZE) {
		snprintf(err, errlen, "tcp %s: descriptor %d is over FD_SETSIZE",
		         n->where, fd);
		close(fd);
		return -1;
	}
	n->listen_fd = fd;
	return 0;
}

static int
net_open(struct endpoint *ep, const struct backend_config *cfg, char *err,
         size_t errlen)
{
	struct net *n = calloc(1, sizeof *n);

	if (!n) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n->listen_fd = -1;
	if (outq_init(&n->backlog, NET_QUEUE_SIZE) < 0) {
		snprintf(err, errlen, "out of memory");
		free(n);
		return -1;
	}
	if (net_listen(n, cfg, cfg->tcp_port + ep->index, err, errlen) < 0) {
		outq_free(&n->backlog);
		free(n);
		return -1;
	}
	ep->priv = n;
	return 0;
}

static void
net_close(struct endpoint *ep)
{
	struct net *n = ep->priv;
	unsigned i;

	if (!n)
		return;
	while (n->nclients)
		client_close(ep, &n->clients[0], NULL);
	if (n->dropped)
		logmsg("console %u: %llu bytes of guest output were dropped in all "
		       "(clients not reading, or nobody connected)", ep->index,
		       n->dropped);
	for (i = 0; i < NET_MAX_CLIENTS; i++)
		outq_free(&n->clients[i].out);
	outq_free(&n->backlog);
	close_fd(&n->listen_fd);
	free(n);
	ep->priv = NULL;
}

static void
net_describe(struct endpoint *ep, char *buf, size_t len)
{
	struct net *n = ep->priv;

	snprintf(buf, len, "tcp %s", n->where);
}

static void
client_close(struct endpoint *ep, struct client *cl, const char *why)
{
	struct net *n = ep->priv;
	struct outq keep;

	if (why && cl->hold_len)
		logmsg("console %u: client %s %s; %zu bytes of its input never "
		       "reached the guest", ep->index, cl->name, why, cl->hold_len);
	else if (why)
		logmsg("console %u: client %s %s", ep->index, cl->name, why);
	close(cl->fd);
	/* Keep the slot array dense; the queue's buffer moves with it. */
	keep = cl->out;
	keep.head = keep.len = 0;
	*cl = n->clients[--n->nclients];
	n->clients[n->nclients].out = keep;
	n->clients[n->nclients].fd = -1;
}

/* The peer's address as "host:port", for messages; -1 if it is gone. */
static int
peer_name(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char host[64] = "?";
	unsigned port = 0;

	/* Fails when the client reset the connection before we took it. */
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -1;
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

/* Tell a client why it is turned away, then close it.  A fresh socket's
 * buffer is empty, so the one short write cannot block. */
static void
client_refuse(struct endpoint *ep, int fd, const char *name, const char *why,
              const char *tell)
{
	char line[128];
	int len;

	logmsg("console %u: refusing client %s: %s", ep->index, name, why);
	len = snprintf(line, sizeof line, PROGNAME ": %s\r\n", tell);
	if (send(fd, line, len, MSG_NOSIGNAL) < 0) {
		/* it has gone already: nothing to tell */
	}
	close(fd);
}

static void
client_accept(struct endpoint *ep)
{
	struct net *n = ep->priv;
	struct client *cl;
	char name[64], tell[96];
	int fd;

	fd = accept_conn(n->listen_fd, n->where);
	if (fd < 0)
		return;
	if (peer_name(fd, name, sizeof name) < 0) {
		close(fd);        /* gone already: nothing to serve or tell */
		return;
	}
	if (n->nclients == NET_MAX_CLIENTS) {
		snprintf(tell, sizeof tell, "console %u has %d clients already; "
		         "try again later", ep->index, NET_MAX_CLIENTS);
		client_refuse(ep, fd, name, "too many clients", tell);
		return;
	}
	if (fd >= FD_SETSIZE) {
		client_refuse(ep, fd, name, "descriptor over FD_SETSIZE",
		              "the daemon has too many connections; try again later");
		return;
	}
	cl = &n->clients[n->nclients];
	if (!cl->out.buf && outq_init(&cl->out, NET_QUEUE_SIZE) < 0) {
		client_refuse(ep, fd, name, "out of memory",
		              "the daemon is out of memory; try again later");
		return;
	}
	n->nclients++;
	cl->fd = fd;
	snprintf(cl->name, sizeof cl->name, "%s", name);
	cl->hold_len = 0;
	cl->dropped_mark = cl->told_mark = cl->out.dropped;
	cl->notice_len = cl->notice_off = 0;
	logmsg("console %u: client %s connected", ep->index, cl->name);
	/* What the guest said while nobody listened goes to this client. */
	outq_move(&cl->out, &n->backlog);
	n->backlog_dropping = 0;
}

/* Hand held input to the guest, as much as its receive buffers take. */
static void
client_deliver_held(struct endpoint *ep, struct client *cl)
{
	size_t room, n, done = 0;

	while (done < cl->hold_len && (room = console_input_room(ep->con)) > 0) {
		n = cl->hold_len - done < room ? cl->hold_len - done : room;
		console_input(ep->con, cl->hold + done, n);
		done += n;
	}
	memmove(cl->hold, cl->hold + done, cl->hold_len - done);
	cl->hold_len -= done;
}

/*
 * The client's input.  Straight to the guest while it has a receive
 * buffer, at most that buffer's size per read; otherwise into the small
 * hold, and once that is full not at all: the rest waits in the socket, so
 * a flood costs no memory.  Reading into the hold while the guest is busy
 * is what lets us see a client leave.  Returns -1 when it has gone.
 */
static int
client_read(struct endpoint *ep, struct client *cl)
{
	char buf[4096];
	size_t room;
	ssize_t r;

	client_deliver_held(ep, cl);
	for (;;) {
		if (cl->hold_len == 0 && (room = console_input_room(ep->con)) > 0) {
			r = read(cl->fd, buf, room < sizeof buf ? room : sizeof buf);
			if (r > 0)
				console_input(ep->con, buf, r);
		} else if (cl->hold_len < sizeof cl->hold) {
			r = read(cl->fd, cl->hold + cl->hold_len,
			         sizeof cl->hold - cl->hold_len);
			if (r > 0)
				cl->hold_len += r;
		} else {
			return 0;         /* held full: stop reading */
		}
		if (r == 0)
			return -1;
		if (r < 0 && errno != EINTR)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	}
}

/*
 * Write what the client has queued.  Dropped bytes were the oldest, so the
 * gap sits at the front of the queue: the notice goes first.  Returns -1
 * when the client has gone.
 */
static int
client_flush(struct client *cl)
{
	ssize_t w;

	if (!cl->notice_len && cl->out.dropped != cl->told_mark) {
		cl->notice_len = snprintf(cl->notice, sizeof cl->notice,
		        "\r\n[" PROGNAME ": %llu bytes of output skipped]\r\n",
		        cl->out.dropped - cl->told_mark);
		cl->notice_off = 0;
		cl->told_mark = cl->out.dropped;
	}
	while (cl->notice_off < cl->notice_len) {
		w = send(cl->fd, cl->notice + cl->notice_off,
		         cl->notice_len - cl->notice_off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
		cl->notice_off += w;
	}
	cl->notice_len = cl->notice_off = 0;
	return outq_flush(&cl->out, cl->fd);
}

static void
client_note_drops(struct endpoint *ep, struct client *cl)
{
	if (cl->out.dropped == cl->dropped_mark)
		return;
	if (cl->out.len == 0) {   /* caught up: report the episode */
		logmsg("console %u: client %s caught up; %llu bytes of output "
		       "were dropped", ep->index, cl->name,
		       cl->out.dropped - cl->dropped_mark);
		cl->dropped_mark = cl->out.dropped;
	}
}

static int
net_add_fds(struct endpoint *ep, fd_set *rd, fd_set *wr, int maxfd)
{
	struct net *n = ep->priv;
	unsigned i;
	int room;

	/* Selected even when full: a client over the limit is told so. */
	if (!accept_paused()) {
		FD_SET(n->listen_fd, rd);
		if (n->listen_fd > maxfd)
			maxfd = n->listen_fd;
	}
	/* Peek at the receive ring only when someone could type into it. */
	room = n->nclients && console_input_room(ep->con) > 0;
	for (i = 0; i < n->nclients; i++) {
		struct client *cl = &n->clients[i];

		/* Selected for reading while the guest takes input, and
		 * otherwise too while its hold has space, so that a client
		 * that leaves is noticed. */
		if (room || cl->hold_len < sizeof cl->hold)
			FD_SET(cl->fd, rd);
		if (cl->out.len || cl->notice_len)
			FD_SET(cl->fd, wr);
		if (cl->fd > maxfd)
			maxfd = cl->fd;
	}
	return maxfd;
}

static void
net_serve(struct endpoint *ep, const fd_set *rd, const fd_set *wr)
{
	struct net *n = ep->priv;
	unsigned i = 0;

	while (i < n->nclients) {
		struct client *cl = &n->clients[i];

		if (FD_ISSET(cl->fd, wr)) {
			if (client_flush(cl) < 0) {
				client_close(ep, cl, "went away");
				continue;
			}
			client_note_drops(ep, cl);
		}
		/* The guest may have made room since the hold filled. */
		if (cl->hold_len)
			client_deliver_held(ep, cl);
		if (FD_ISSET(cl->fd, rd) && client_read(ep, cl) < 0) {
			client_close(ep, cl, "disconnected");
			continue;
		}
		i++;
	}
	if (FD_ISSET(n->listen_fd, rd))
		client_accept(ep);
}

static void
net_output(struct endpoint *ep, const void *buf, size_t len)
{
	struct net *n = ep->priv;
	unsigned i = 0;
	size_t dropped;

	if (n->nclients == 0) {
		dropped = outq_put(&n->backlog, buf, len);
		n->dropped += dropped;
		if (dropped && !n->backlog_dropping) {
			logmsg("console %u: nobody connected; keeping only the last "
			       "%d bytes of output", ep->index, NET_QUEUE_SIZE);
			n->backlog_dropping = 1;
		}
		return;
	}
	while (i < n->nclients) {
		struct client *cl = &n->clients[i];

		if (outq_send(&cl->out, cl->fd, buf, len, &dropped) < 0) {
			client_close(ep, cl, "went away");
			continue;
		}
		n->dropped += dropped;
		if (dropped && cl->out.dropped - dropped == cl->dropped_mark)
			logmsg("console %u: client %s is not reading; dropping its "
			       "oldest output", ep->index, cl->name);
		i++;
	}
}

const struct backend backend_network = {
	.name = "network",
	.open = net_open,
	.close = net_close,
	.add_fds = net_add_fds,
	.serve = net_serve,
	.output = net_output,
	.describe = net_describe,
};
