/*
 * backends/clients.h - the clients of one listening stream socket, shared
 * by the network (TCP) and unix backends.
 *
 * Up to CLIENTS_MAX clients share a console: each is a reader of its
 * session (history first, then live output; a client that does not keep
 * up skips ahead and is told), and each may type.  Input goes to the guest
 * only while it has a receive buffer, at most that buffer's size; while the
 * guest is busy up to HOLD_MAX bytes wait in the client's hold, and
 * past that the client is not read.  A client that leaves is seen
 * whatever its hold holds: with the hold full, a peek at the socket tells
 * EOF or a reset from input that waits (see client_peek()); input that
 * waits keeps the client, and is read once the guest takes the hold.  A
 * client over the limit is told so in one line and closed.
 *
 * On a read-only way in (--read-only, ep->read_only) every client is a
 * viewer: it gets the history and the output like any other, but what it
 * sends is read and discarded (at most VIEWER_READ_MAX bytes a pass, so a
 * flooding viewer cannot hold up the loop), counted in port->discarded and
 * logged when it leaves.  That includes a telnet viewer's window size:
 * the console's size is the writers' to set.
 *
 * With telnet set, clients speak telnet (telnet.h): their input goes
 * through its parser, their output through its encoding.
 */
#ifndef CLIENTS_H
#define CLIENTS_H

#include <stddef.h>
#include <sys/select.h>

#include "backend.h"
#include "telnet.h"

#define CLIENTS_MAX     16
/* Connections the kernel queues for us: enough that a burst of clients is
 * answered (served or told no) rather than left retrying. */
#define CLIENTS_BACKLOG 64
/* What a viewer's input costs per pass at most: read and dropped. */
#define VIEWER_READ_MAX (64 * 1024)

struct client {
	int fd;
	char name[80];               /* "client 127.0.0.1:40000", "client 7" */
	struct reader rd;            /* its place in the console's output */
	struct hold hold;            /* input the guest could not take yet */
	int input_waits;             /* hold full, and more in the socket */
	struct telnet_in tn;         /* with telnet: its input parser */
	int read_only;               /* a viewer: its input is discarded */
	unsigned long long discarded; /* bytes it sent, discarded */
};

struct clients {
	int listen_fd;
	char where[128];             /* "127.0.0.1:12345" or the socket path */
	struct client *c[CLIENTS_MAX];
	unsigned n;
	unsigned long serial;        /* names clients that have no address */
	int telnet;                  /* speak telnet (RFC 854) to clients */
};

/* Start with the listening socket fd (owned from now on). */
void clients_init(struct clients *cs, int listen_fd, const char *where);
/* Close every client and the listening socket. */
void clients_close(struct endpoint *ep, struct clients *cs);
/* The endpoint's add_fds() and serve() as they are (backend.h), for a
 * backend whose ep->priv is its struct clients or begins with one. */
int clients_add_fds(struct endpoint *ep, fd_set *rd, fd_set *wr, int maxfd);
void clients_serve(struct endpoint *ep, const fd_set *rd, const fd_set *wr);

#endif
