/*
 * backends/network.c - consoles on TCP ports.
 *
 * Console k listens on --tcp-address (127.0.0.1 by default) port
 * --tcp-port + k.  Up to NET_MAX_CLIENTS clients share it: each is a
 * reader of the console's session, so it first gets the history, then
 * live output; all may type, and their input interleaves per read as in a
 * shared terminal.  A client that does not read skips ahead and is told
 * (session.h); neither the guest nor the other clients ever wait for it.
 *
 * A client over the limit is told so in one line and closed; one that
 * cannot get memory too.
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
#define NET_HOLD_SIZE   4096          /* input held while the guest is busy */
/* Connections the kernel queues for us: enough that a burst of clients
 * is answered (served or told no) rather than left retrying SYNs. */
#define NET_BACKLOG     64

struct client {
	int fd;
	char name[80];               /* "client 127.0.0.1:40000" */
	struct reader rd;            /* its place in the console's output */
	char hold[NET_HOLD_SIZE];    /* input the guest could not take yet */
	size_t hold_len;
};

struct net {
	int listen_fd;
	char where[80];              /* "127.0.0.1:12345" */
	struct client *clients[NET_MAX_CLIENTS];
	unsigned nclients;
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
	if (net_listen(n, cfg, cfg->tcp_port + ep->index, err, errlen) < 0) {
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

	if (!n)
		return;
	while (n->nclients)
		client_close(ep, n->clients[0], NULL);
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
	unsigned i;

	if (why && cl->hold_len)
		logmsg("console %u: %s %s; %zu bytes of its input never reached "
		       "the guest", ep->index, cl->name, why, cl->hold_len);
	else if (why)
		logmsg("console %u: %s %s", ep->index, cl->name, why);
	reader_detach(ep->sess, &cl->rd);
	close(cl->fd);
	for (i = 0; n->clients[i] != cl; i++)
		;
	n->clients[i] = n->clients[--n->nclients];
	free(cl);
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
	if (!(cl = malloc(sizeof *cl))) {
		client_refuse(ep, fd, name, "out of memory",
		              "the daemon is out of memory; try again later");
		return;
	}
	cl->fd = fd;
	cl->hold_len = 0;
	snprintf(cl->name, sizeof cl->name, "client %s", name);
	n->clients[n->nclients++] = cl;
	/* It starts with the history: the boot log, the last prompt. */
	reader_attach(ep->sess, &cl->rd, cl->name);
	logmsg("console %u: %s connected", ep->index, cl->name);
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

	port_feed(ep->port, cl->hold, &cl->hold_len);
	for (;;) {
		if (cl->hold_len == 0 && (room = port_input_room(ep->port)) > 0) {
			r = read(cl->fd, buf, room < sizeof buf ? room : sizeof buf);
			if (r > 0)
				port_input(ep->port, buf, r);
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
	room = n->nclients && port_input_room(ep->port) > 0;
	for (i = 0; i < n->nclients; i++) {
		struct client *cl = n->clients[i];

		/* Selected for reading while the guest takes input, and
		 * otherwise too while its hold has space, so that a client
		 * that leaves is noticed. */
		if (room || cl->hold_len < sizeof cl->hold)
			FD_SET(cl->fd, rd);
		if (reader_pending(ep->sess, &cl->rd))
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

	(void)wr;
	while (i < n->nclients) {
		struct client *cl = n->clients[i];

		/* Output the device added this pass goes out now, without a
		 * trip through select(); a full socket just says EAGAIN. */
		if (reader_pending(ep->sess, &cl->rd) &&
		    reader_flush(ep->sess, &cl->rd, cl->fd) < 0) {
			client_close(ep, cl, "went away");
			continue;
		}
		/* The guest may have made room since the hold filled. */
		if (cl->hold_len)
			port_feed(ep->port, cl->hold, &cl->hold_len);
		if (FD_ISSET(cl->fd, rd) && client_read(ep, cl) < 0) {
			client_close(ep, cl, "disconnected");
			continue;
		}
		i++;
	}
	if (FD_ISSET(n->listen_fd, rd))
		client_accept(ep);
}

const struct backend backend_network = {
	.name = "network",
	.open = net_open,
	.close = net_close,
	.add_fds = net_add_fds,
	.serve = net_serve,
	.describe = net_describe,
};
