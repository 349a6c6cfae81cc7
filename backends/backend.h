/*
 * backends/backend.h - what a backend is to the console device, and the
 * two calls a backend may make back into the device.
 *
 * A backend carries one console (device d, port p) to the host side: a
 * terminal, TCP clients, ...  It owns its fds and takes part in the one
 * select() loop through add_fds()/serve(), like the vhost-user side does.
 *
 * Guest -> host: the device calls output() with bytes the guest wrote.  A
 * backend must never block and never hold the guest: what it cannot write
 * now it keeps in a bounded queue (struct outq), and what overflows is
 * counted and reported, never lost silently.
 *
 * Host -> guest: a backend reads its input only when the guest has a
 * receive buffer, and at most that buffer's size: console_input_room()
 * says how much, console_input() hands the bytes over.  So a flood of
 * input waits in the kernel's socket buffer, not in our memory.
 */
#ifndef BACKEND_H
#define BACKEND_H

#include <stddef.h>
#include <sys/select.h>

struct console;

/* Implemented by the device (vhost-device-console.c). */
size_t console_input_room(struct console *c);
void console_input(struct console *c, const void *buf, size_t len);

struct backend_config {
	const char *tcp_address;   /* network: address to bind */
	unsigned tcp_port;         /* network: port of console 0 */
	int escape;                /* nested: escape character, -1 = none */
};

struct endpoint {
	const struct backend *be;
	struct console *con;
	unsigned index;            /* console number k */
	int quit;                  /* the user asked the daemon to quit */
	void *priv;                /* the backend's own state */
};

struct backend {
	const char *name;
	/* Start serving console ep->index; -1 with a reason in err. */
	int (*open)(struct endpoint *ep, const struct backend_config *cfg,
	            char *err, size_t errlen);
	void (*close)(struct endpoint *ep);
	int (*add_fds)(struct endpoint *ep, fd_set *rd, fd_set *wr, int maxfd);
	void (*serve)(struct endpoint *ep, const fd_set *rd, const fd_set *wr);
	void (*output)(struct endpoint *ep, const void *buf, size_t len);
	/* One line for the start-up message: how a user reaches the console. */
	void (*describe)(struct endpoint *ep, char *buf, size_t len);
};

extern const struct backend backend_network;
extern const struct backend backend_nested;

/*
 * A bounded output queue: a ring of cap bytes, allocated by outq_init()
 * (so that running out of memory ends a connection at its start, never
 * loses output later).  When full, the oldest bytes give way to the newest (for a console
 * the latest output, the prompt, matters most) and are counted in dropped.
 */
struct outq {
	char *buf;
	size_t cap, head, len;
	unsigned long long dropped;   /* bytes overwritten, ever */
};

/* Allocate the ring; -1 when out of memory. */
int outq_init(struct outq *q, size_t cap);
void outq_free(struct outq *q);
/* Queue bytes; returns how many older bytes were dropped to make room. */
size_t outq_put(struct outq *q, const void *p, size_t n);
/* Write queued bytes to fd until it would block; -1 on a write error. */
int outq_flush(struct outq *q, int fd);
/* Write directly when nothing is queued, queue the rest; -1 on error. */
int outq_send(struct outq *q, int fd, const void *p, size_t n, size_t *dropped);
/* Move everything from src to the end of dst. */
void outq_move(struct outq *dst, struct outq *src);

#endif
