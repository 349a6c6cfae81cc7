/*
 * console.h - the VirtIO console device (virtio 1.x section 5.3), as the
 * daemon and the backends see it.
 *
 * A struct vc_device is one device d: a vhost-user socket (vhu.h) and P
 * ports behind it.  Port 0 is the console (hvc0 in a Linux guest), ports
 * 1.. are generic ports (/dev/vportNpM); with VIRTIO_CONSOLE_F_MULTIPORT
 * the control queues announce them, name them, and carry PORT_OPEN both
 * ways and the console's size.  Console k = d * P + p is port p of
 * device d; k names it in every message and to every way in.
 *
 * Guest -> host: what the guest writes on a port's transmitq goes to the
 * port's session (session.h), which its readers drain.  The
 * console port completes every buffer at once (the guest's hvc driver
 * spins until it is used); a generic port holds it until every reader has
 * room.  Host -> guest: the port_* calls below, made by the ways in.
 *
 * The device does not know the ways in: the daemon owns the sessions'
 * set-up and the endpoints, and calls vc_after_pass() once per loop pass
 * after they ran (clients came or went, readers made room).
 */
#ifndef CONSOLE_H
#define CONSOLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "session.h"
#include "vhu.h"

#define MAX_PORTS        31      /* 2 * (31 + 1) = VHU_MAX_QUEUES queues */
#define MAX_NAME         127     /* a port name, in bytes */

/* RESIZE's payload: the spec says cols then rows, and so do Linux 6.15 and
 * the stable kernels that took the fix (Debian's 6.1 does: tests/uml.bats
 * checks it); older Linux reads rows then cols (--resize-order). */
enum resize_order { RESIZE_COLS_ROWS, RESIZE_ROWS_COLS };

/* What every device is, as the command line says; outlives the devices. */
struct vc_config {
	unsigned nports;             /* P: ports per device, 1 to MAX_PORTS */
	const char *const *names;    /* port p's name (NULL: none), P entries */
	unsigned cols, rows;         /* the size at start, 0 x 0: none */
	enum resize_order resize_order;
	unsigned max_queue_size;     /* largest virtqueue accepted */
	unsigned trace;              /* --trace level (trace.h), 0: off */
};

/* A control message's header, either way.  PORT_NAME and RESIZE carry a
 * payload, built when the guest's buffer is there. */
struct ctrl_msg {
	uint32_t id;
	uint16_t event, value;
};

/*
 * The control messages the device owes the guest for a port.  They are
 * flags derived from state, not a queue: however often a state changes
 * while the guest gives no control buffers (a flood of window-size
 * reports, clients coming and going), nothing piles up and nothing that
 * carries state can be dropped.  PORT_OPEN's value and RESIZE's size are
 * read from the state when a buffer is there; ctrl_next() sends them in
 * the order Linux needs.
 */
enum {
	OWE_PORT_ADD     = 1 << 0,
	OWE_CONSOLE_PORT = 1 << 1,
	OWE_PORT_NAME    = 1 << 2,
	OWE_PORT_OPEN    = 1 << 3,
};

struct vc_device;

/* One port of a device: its queues, its state in the guest, and its
 * session (set up and freed by the daemon). */
struct port {
	struct vc_device *vc;
	unsigned id;                 /* p, the port number in the device */
	unsigned k;                  /* the console number */
	const char *name;            /* NULL: unnamed */
	unsigned rxq, txq;
	int added;                   /* the guest answered PORT_READY(1) */
	int guest_open;              /* the guest has it open */
	int host_open;               /* PORT_OPEN value last sent, -1: none */
	unsigned owed;               /* OWE_* control messages not yet sent */
	int tx_held;                 /* a transmit chain waits for room */
	unsigned long long bytes_in; /* host input given to the guest, ever */
	/* Read-only clients (--read-only, --web-view-token), kept by the
	 * ways in: how many view now, and the bytes they typed, discarded. */
	unsigned viewers;
	unsigned long long discarded;
	unsigned rx_chains;          /* receive chains the next read offers */
	struct sess sess;
};

/* One device: a vhost-user socket and the ports behind it. */
struct vc_device {
	unsigned index;              /* d */
	struct vhu_dev vhu;
	struct vhu_ops ops;          /* vc_ops with this device's queue count */
	const struct vc_config *cfg;
	struct port ports[MAX_PORTS];
	unsigned nports;
	unsigned cols, rows;         /* the console's size, as the guest sees it */
	int resize_owed;             /* a RESIZE (of the size then) is owed */
	unsigned long bad_ctrl;      /* control messages ignored, ever */
	struct vhu_elem elem;        /* scratch chain, too big for the stack */
};

/* How much of the history a new client of port p is replayed, with
 * --history bytes: all of it on the console port; none on a generic port,
 * which carries data, not a terminal (a host program that reconnects must
 * not get old data again).  For the daemon's sess_init(). */
size_t port_replay(const struct port *p, size_t history);

/* Device d as cfg describes it, its ports placed (no fds, no sessions
 * yet): then vhu_listen() or vhu_adopt() on vc->vhu. */
void vc_device_init(struct vc_device *vc, const struct vc_config *cfg,
                    unsigned d);
/* Close the vhost-user side (at exit); sums up ignored control messages. */
void vc_device_close(struct vc_device *vc);
/* Once per loop pass, after the ways in ran: tell the guest which generic
 * ports gained or lost their last client, and take held guest output
 * that now has room. */
void vc_after_pass(struct vc_device *vc);

/*
 * Host -> guest, for the ways in.  Input goes to the guest only when it
 * has a receive buffer, and at most that buffer's size: port_input_room()
 * says how much, port_input() hands the bytes over; or port_read_input()
 * reads an fd straight into all the buffers posted.
 */
size_t port_input_room(struct port *p);
void port_input(struct port *p, const void *buf, size_t len);
/* Read from fd straight into the guest's receive buffers, as many as are
 * posted (up to a bound) with one readv().  Returns the bytes those
 * buffers could take, 0 when the guest has none (fd not read); *n is
 * readv()'s result (bytes, 0 at EOF, -1 with errno). */
size_t port_read_input(struct port *p, int fd, ssize_t *n);
/*
 * Input a way in read while the guest had no receive buffer for it: at
 * most HOLD_MAX bytes wait here, the rest waits in the kernel (the way in
 * stops reading), so a flood costs no memory.
 */
#define HOLD_MAX 4096
struct hold {
	char buf[HOLD_MAX];
	size_t len;
};
/* Free bytes in the hold. */
static inline size_t
hold_room(const struct hold *h)
{
	return sizeof h->buf - h->len;
}
/* Hand held input to the guest, as much as its receive buffers take; the
 * rest moves to the front of the hold. */
void hold_feed(struct port *p, struct hold *h);
/* A terminal size report (most recent wins); 0 x 0 is ignored. */
void port_set_size(struct port *p, unsigned cols, unsigned rows);

#endif
