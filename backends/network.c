/*
 * backends/network.c - consoles on TCP ports.
 *
 * Console k listens on --tcp-address (127.0.0.1 by default) port
 * --tcp-port + k.  Its clients are served as clients.h says: they share
 * the console's session, all may type, and a slow one never holds up the
 * guest or the others.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../util.h"
#include "clients.h"

/* Listen on the console's port; its clients start with no one. */
static int
net_listen(struct clients *n, const struct backend_config *cfg, unsigned port,
           char *err, size_t errlen)
{
	char where[80];
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
		snprintf(where, sizeof where, "%s:%u", cfg->tcp_address, port);
	} else if (inet_pton(AF_INET6, cfg->tcp_address, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		len = sizeof *sin6;
		snprintf(where, sizeof where, "[%s]:%u", cfg->tcp_address, port);
	} else {
		snprintf(err, errlen, "--tcp-address: '%s' is not an IP address",
		         cfg->tcp_address);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, CLIENTS_BACKLOG) < 0 ||
	    set_nonblock(fd) < 0 || set_cloexec(fd) < 0) {
		snprintf(err, errlen, "cannot listen on tcp %s: %s", where,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (fd >= FD_SETSIZE) {
		snprintf(err, errlen, "tcp %s: descriptor %d is over FD_SETSIZE",
		         where, fd);
		close(fd);
		return -1;
	}
	/* A keystroke's echo goes out at once, not after the ACK of the one
	 * before (Nagle): output is already batched, one writev per client
	 * per pass.  Accepted sockets inherit it (Linux, the BSDs); where it
	 * fails the clients are only slower. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) {
		/* not fatal */
	}
	clients_init(n, fd, where);
	return 0;
}

static int
net_open(struct endpoint *ep, const struct backend_config *cfg, char *err,
         size_t errlen)
{
	struct clients *n = calloc(1, sizeof *n);

	if (!n) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (net_listen(n, cfg, cfg->tcp_port + ep->index, err, errlen) < 0) {
		free(n);
		return -1;
	}
	n->telnet = cfg->telnet;
	ep->priv = n;
	return 0;
}

static void
net_close(struct endpoint *ep)
{
	struct clients *n = ep->priv;

	if (!n)
		return;
	clients_close(ep, n);
	free(n);
	ep->priv = NULL;
}

static void
net_describe(struct endpoint *ep, char *buf, size_t len)
{
	struct clients *n = ep->priv;

	snprintf(buf, len, "tcp %s", n->where);
}

static int
net_add_fds(struct endpoint *ep, fd_set *rd, fd_set *wr, int maxfd)
{
	return clients_add_fds(ep, ep->priv, rd, wr, maxfd);
}

static void
net_serve(struct endpoint *ep, const fd_set *rd, const fd_set *wr)
{
	clients_serve(ep, ep->priv, rd, wr);
}

const struct backend backend_network = {
	.name = "network",
	.open = net_open,
	.close = net_close,
	.add_fds = net_add_fds,
	.serve = net_serve,
	.describe = net_describe,
};
