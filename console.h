/*
 * console.h - the VirtIO console device.
 */
#ifndef CONSOLE_H
#define CONSOLE_H

#include <stdint.h>

#include "backends/backend.h"
#include "vhu.h"

#define MAX_PORTS        31      /* 2 * (31 + 1) = VHU_MAX_QUEUES queues */
#define MAX_BACKENDS     5       /* ways in that can serve one console: all */
#define MAX_NAME         127     /* a port name, in bytes */
#define MAX_HISTORY      (64u << 20)
#define CTRL_PENDING_MAX (4 * MAX_PORTS + 8)   /* messages waiting for buffers */


/*
 * Chains a queue handler takes per pass before it yields to the other
 * devices (vhu_queue_again): a ring full of 1024-segment chains must not
 * stall everything else for the whole walk.
 */
#define CHAINS_PER_PASS 256

/* RESIZE's payload: the spec says cols then rows, and so do Linux 6.15 and
 * the stable kernels that took the fix (Debian's 6.1 does: tests/uml.bats
 * checks it); older Linux reads rows then cols (--resize-order). */
enum resize_order { RESIZE_COLS_ROWS, RESIZE_ROWS_COLS };

struct options {
	const char *socket_path;
	int fd;                      /* --fd: a connected socket, or -1 */
	unsigned socket_mode;        /* of the vhost-user sockets */
	long socket_gid;             /* their group, -1: ours */
	unsigned socket_count;
	const struct backend *backends[MAX_BACKENDS];
	unsigned nbackends;
	struct backend_config be;
	unsigned max_queue_size;
	int tcp_given;               /* --tcp-port or --tcp-address was used */
	int web_given;               /* a --web-* option was used */
	const char *names[MAX_PORTS];  /* port p's name, or NULL */
	unsigned nports;             /* P: ports per device */
	size_t history;
	const char *log_file;        /* prefix; NULL: no log */
	unsigned cols, rows;         /* --size, 0 x 0 if not given */
	enum resize_order resize_order;
};

/* A control message waiting for a control receive buffer.  PORT_NAME and
 * RESIZE carry a payload, built when the buffer is there. */
struct ctrl_msg {
	uint32_t id;
	uint16_t event, value;
};

struct console;

/* One port of a device: its queues, its state in the guest, its session
 * and the endpoints that carry it to the host. */
struct port {
	struct console *con;
	unsigned id;                 /* p, the port number in the device */
	unsigned k;                  /* the console number */
	const char *name;            /* NULL: unnamed */
	unsigned rxq, txq;
	int added;                   /* the guest answered PORT_READY(1) */
	int guest_open;              /* the guest has it open */
	int host_open;               /* PORT_OPEN value last sent, -1: none */
	int tx_held;                 /* a transmit chain waits for room */
	unsigned long long bytes_in; /* host input given to the guest, ever */
	unsigned rx_chains;          /* receive chains the next read offers */
	struct sess sess;
	struct endpoint ep[MAX_BACKENDS];
	unsigned nep;
};

/* One device: a vhost-user socket and the ports behind it. */
struct console {
	unsigned index;
	struct vhu_dev vhu;
	struct vhu_ops ops;          /* console_ops with this device's queues */
	const struct options *opt;
	struct port ports[MAX_PORTS];
	unsigned nports;
	unsigned cols, rows;         /* the console's size, as the guest sees it */
	struct ctrl_msg pending[CTRL_PENDING_MAX];
	unsigned npending;
	unsigned long bad_ctrl;      /* control messages ignored, ever */
	struct vhu_elem elem;        /* scratch chain, too big for the stack */
};

void console_init(struct console *c, const struct options *o, unsigned d);
void port_init(struct console *c, unsigned p);
void after_pass(struct console *c);

#endif
