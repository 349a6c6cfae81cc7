/*
 * backends/network.c - consoles on TCP ports.
 *
 * Console k listens on --tcp-address (127.0.0.1 by default) port
 * --tcp-port + k.  Its clients are served as clients.h says: they share
 * the console's session, all may type, and a slow one never holds up the
 * guest or the others.
 */
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
	int fd, loopback;

	fd = tcp_listen("tcp", cfg->tcp_address, port,
	                CLIENTS_BACKLOG, where, sizeof where, &loopback, err, errlen);
	if (fd < 0)
		return -1;
	/* Once, with console 0; loopback as tcp_listen() parsed it. */
	if (!loopback && port == cfg->tcp_port)
		logmsg("warning: consoles listen on %s: anyone who can reach it "
		       "gets the guest's console", cfg->tcp_address);
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

const struct backend backend_network = {
	.name = "network",
	.open = net_open,
	.close = net_close,
	.add_fds = clients_add_fds,
	.serve = clients_serve,
	.describe = net_describe,
};
