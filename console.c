/*
 * console.c - the VirtIO console device (virtio 1.x section 5.3): config
 * space, the MULTIPORT control queues, and the ports' receiveq/transmitq.
 * console.h is its contract; vhu.c brings the rings, the daemon
 * (vhost-device-console.c) the sessions and the ways in.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "console.h"
#include "le.h"
#include "trace.h"
#include "util.h"
#include "vhu.h"
#include "virtio_console.h"

/*
 * Chains a queue handler takes per pass before it yields to the other
 * devices (vhu_queue_again): a ring full of 1024-segment chains must not
 * stall everything else for the whole walk.
 */
#define CHAINS_PER_PASS 256

static int vc_get_config(void *opaque, uint8_t *buf, uint32_t off,
                         uint32_t len);
static int vc_set_config(void *opaque, const uint8_t *buf, uint32_t off,
                         uint32_t len);
static void vc_queue_event(void *opaque, unsigned q);
static void vc_reset(void *opaque, int q);
static void vc_connected(void *opaque, int up);
static void port_set_guest_open(struct port *p, int open);
static struct port *port_of_queue(struct vc_device *vc, unsigned q);
static void ctrl_owe(struct port *p, unsigned what);
static void ctrl_receiveq_fill(struct vc_device *vc);
static void ctrl_transmitq_serve(struct vc_device *vc);
static void ctrl_handle(struct vc_device *vc, const struct ctrl_msg *m);
static void ctrl_port_ready(struct vc_device *vc, struct port *p);
static void ctrl_ignore(struct vc_device *vc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void port_transmitq_serve(struct port *p);
static void port_update_open(struct port *p);
static void vc_send_size(struct vc_device *vc);

/* What every device offers; num_queues is set per device (2 * (P + 1)). */
static const struct vhu_ops vc_ops = {
	.features = 1ull << VIRTIO_F_VERSION_1 |
	            1ull << VIRTIO_RING_F_INDIRECT_DESC |
	            1ull << VIRTIO_RING_F_EVENT_IDX |
	            1ull << VIRTIO_CONSOLE_F_SIZE |
	            1ull << VIRTIO_CONSOLE_F_MULTIPORT |
	            1ull << VIRTIO_CONSOLE_F_EMERG_WRITE,
	.config_size = VIRTIO_CONSOLE_CONFIG_SIZE,
	.get_config = vc_get_config,
	.set_config = vc_set_config,
	.queue_event = vc_queue_event,
	.reset = vc_reset,
	.connected = vc_connected,
};

/* ---- set-up and tear-down ---------------------------------------------- */

/* Port p of the device: its place and queues (the session is the caller's). */
static void
vc_port_init(struct vc_device *vc, unsigned p)
{
	struct port *pt = &vc->ports[p];

	pt->vc = vc;
	pt->id = p;
	pt->k = vc->index * vc->nports + p;
	pt->name = vc->cfg->names[p];
	pt->rxq = p == 0 ? VIRTIO_CONSOLE_PORT0_RXQ : 2 + 2 * p;
	pt->txq = pt->rxq + 1;
	pt->host_open = -1;
}

void
vc_device_init(struct vc_device *vc, const struct vc_config *cfg, unsigned d)
{
	unsigned p;

	vc->index = d;
	vc->cfg = cfg;
	vc->nports = cfg->nports;
	vc->cols = cfg->cols;
	vc->rows = cfg->rows;
	vc->ops = vc_ops;
	vc->ops.num_queues = 2 * (cfg->nports + 1);
	vhu_init(&vc->vhu, d, &vc->ops, vc, cfg->max_queue_size);
	vc->vhu.trace = (int)cfg->trace;
	for (p = 0; p < vc->nports; p++)
		vc_port_init(vc, p);
}

size_t
port_replay(const struct port *p, size_t history)
{
	return p->id == 0 ? history : 0;
}

void
vc_device_close(struct vc_device *vc)
{
	vhu_close(&vc->vhu);
	if (vc->bad_ctrl > 1)
		logmsg("device %u: %lu control messages from the guest were "
		       "ignored", vc->index, vc->bad_ctrl);
}

/* ---- config space ------------------------------------------------------- */

static int
multiport(struct vc_device *vc)
{
	return vhu_has_feature(&vc->vhu, VIRTIO_CONSOLE_F_MULTIPORT);
}

static int
vc_get_config(void *opaque, uint8_t *buf, uint32_t off, uint32_t len)
{
	struct vc_device *vc = opaque;
	uint8_t space[VIRTIO_CONSOLE_CONFIG_SIZE] = { 0 };

	put_le16(space + VIRTIO_CONSOLE_CONFIG_COLS, (uint16_t)vc->cols);
	put_le16(space + VIRTIO_CONSOLE_CONFIG_ROWS, (uint16_t)vc->rows);
	put_le32(space + VIRTIO_CONSOLE_CONFIG_MAX_NR_PORTS, vc->nports);
	memcpy(buf, space + off, len);
	return 0;
}

/*
 * Only emerg_wr is writable (F_EMERG_WRITE): its low byte goes out on port
 * 0 at once, handshake or not.  QEMU writes the whole 12 bytes at offset 0,
 * other frontends just the 4 at offset 8: any write covering offset 8
 * counts.  Writes to the read-only fields change nothing.
 */
static int
vc_set_config(void *opaque, const uint8_t *buf, uint32_t off, uint32_t len)
{
	struct vc_device *vc = opaque;

	if (off <= VIRTIO_CONSOLE_CONFIG_EMERG_WR &&
	    off + len > VIRTIO_CONSOLE_CONFIG_EMERG_WR)
		sess_write(&vc->ports[0].sess, buf + (VIRTIO_CONSOLE_CONFIG_EMERG_WR - off), 1);
	return 0;
}

/* The port whose receiveq or transmitq q is, or NULL. */
static struct port *
port_of_queue(struct vc_device *vc, unsigned q)
{
	unsigned p;

	if (q == VIRTIO_CONSOLE_PORT0_RXQ || q == VIRTIO_CONSOLE_PORT0_TXQ)
		return &vc->ports[0];
	if (q < 4 || !multiport(vc))
		return NULL;
	p = (q - 2) / 2;
	return p < vc->nports ? &vc->ports[p] : NULL;
}

static void
vc_queue_event(void *opaque, unsigned q)
{
	struct vc_device *vc = opaque;
	struct port *p;

	if (q == VIRTIO_CONSOLE_CTRL_TXQ) {
		if (multiport(vc))
			ctrl_transmitq_serve(vc);
	} else if (q == VIRTIO_CONSOLE_CTRL_RXQ) {
		if (multiport(vc))
			ctrl_receiveq_fill(vc);
	} else if ((p = port_of_queue(vc, q)) && q == p->txq) {
		port_transmitq_serve(p);
	}
	/* A receiveq: new buffers; the backends see the room. */
}

/* The guest's view of every port starts over. */
static void
ports_forget_guest(struct vc_device *vc)
{
	unsigned p;

	for (p = 0; p < vc->nports; p++) {
		vc->ports[p].added = 0;
		port_set_guest_open(&vc->ports[p], 0);
		vc->ports[p].host_open = -1;
		vc->ports[p].owed = 0;
		vc->ports[p].tx_held = 0;
	}
	vc->resize_owed = 0;
}

/* A ring stopped or the device reset: the handshake starts over, and
 * messages meant for the old driver must not reach a new one. */
static void
vc_reset(void *opaque, int q)
{
	struct vc_device *vc = opaque;
	struct port *p;

	if (q < 0 || q == VIRTIO_CONSOLE_CTRL_RXQ || q == VIRTIO_CONSOLE_CTRL_TXQ) {
		ports_forget_guest(vc);
	} else if ((p = port_of_queue(vc, (unsigned)q))) {
		p->tx_held = 0;
	}
}

/* The console's readers are told when the frontend comes and goes (a
 * generic port's stream is data: it is never told anything). */
static void
vc_connected(void *opaque, int up)
{
	struct vc_device *vc = opaque;

	sess_notice(&vc->ports[0].sess, up ? SESS_FRONTEND_CONNECTED :
	            SESS_FRONTEND_DISCONNECTED);
}

/* The guest opened or closed the port (PORT_OPEN, or a reset closes it);
 * the console's readers are told of a change. */
static void
port_set_guest_open(struct port *p, int open)
{
	if (p->id == 0 && p->guest_open != open)
		sess_notice(&p->sess, open ? SESS_GUEST_OPENED : SESS_GUEST_CLOSED);
	p->guest_open = open;
}

/* The port owes the guest these messages (OWE_*); they leave when a
 * control buffer is there. */
static void
ctrl_owe(struct port *p, unsigned what)
{
	p->owed |= what;
	ctrl_receiveq_fill(p->vc);
}

/* Whether the host side of the port is there: the console port always
 * is, as on QEMU's virtconsole; a generic port while it has a client. */
static int
port_host_open(const struct port *p)
{
	return p->id == 0 || p->sess.nreaders > 0;
}

/*
 * The next message owed, in the order Linux needs: every PORT_ADD first
 * (a message for a port it does not know is ignored), then per port
 * CONSOLE_PORT (which makes the hvc), PORT_NAME, PORT_OPEN, and the
 * console's RESIZE last, since Linux applies it only to a port that is a
 * console already.  0 when nothing is owed.
 */
static int
ctrl_next(struct vc_device *vc, struct ctrl_msg *m)
{
	static const struct { unsigned owe; uint16_t event; } order[] = {
		{ OWE_CONSOLE_PORT, VIRTIO_CONSOLE_CONSOLE_PORT },
		{ OWE_PORT_NAME, VIRTIO_CONSOLE_PORT_NAME },
		{ OWE_PORT_OPEN, VIRTIO_CONSOLE_PORT_OPEN },
	};
	unsigned p, i;

	m->value = 1;
	for (p = 0; p < vc->nports; p++) {
		if (vc->ports[p].owed & OWE_PORT_ADD) {
			m->id = p;
			m->event = VIRTIO_CONSOLE_PORT_ADD;
			return 1;
		}
	}
	for (p = 0; p < vc->nports; p++) {
		for (i = 0; i < sizeof order / sizeof order[0]; i++) {
			if (!(vc->ports[p].owed & order[i].owe))
				continue;
			m->id = p;
			m->event = order[i].event;
			if (m->event == VIRTIO_CONSOLE_PORT_OPEN)
				m->value = (uint16_t)port_host_open(&vc->ports[p]);
			return 1;
		}
	}
	if (vc->resize_owed) {
		m->id = 0;
		m->event = VIRTIO_CONSOLE_RESIZE;
		m->value = 0;
		return 1;
	}
	return 0;
}

/* The message ctrl_next() gave is in the guest's buffer: no longer owed. */
static void
ctrl_sent(struct vc_device *vc, const struct ctrl_msg *m)
{
	struct port *p = &vc->ports[m->id];

	switch (m->event) {
	case VIRTIO_CONSOLE_PORT_ADD:     p->owed &= ~OWE_PORT_ADD; break;
	case VIRTIO_CONSOLE_CONSOLE_PORT: p->owed &= ~OWE_CONSOLE_PORT; break;
	case VIRTIO_CONSOLE_PORT_NAME:    p->owed &= ~OWE_PORT_NAME; break;
	case VIRTIO_CONSOLE_PORT_OPEN:
		p->owed &= ~OWE_PORT_OPEN;
		p->host_open = m->value;
		break;
	case VIRTIO_CONSOLE_RESIZE:       vc->resize_owed = 0; break;
	}
}

/* The bytes of a control message; PORT_NAME and RESIZE carry payload,
 * built now so that a RESIZE tells the latest size. */
static size_t
ctrl_encode(struct vc_device *vc, const struct ctrl_msg *m, uint8_t *msg)
{
	size_t len = VIRTIO_CONSOLE_CONTROL_SIZE, n;
	const char *name;

	put_le32(msg, m->id);
	put_le16(msg + 4, m->event);
	put_le16(msg + 6, m->value);
	if (m->event == VIRTIO_CONSOLE_PORT_NAME) {
		name = vc->ports[m->id].name;
		n = strlen(name);
		memcpy(msg + len, name, n);
		len += n;
	} else if (m->event == VIRTIO_CONSOLE_RESIZE) {
		int spec = vc->cfg->resize_order == RESIZE_COLS_ROWS;

		put_le16(msg + len, spec ? vc->cols : vc->rows);
		put_le16(msg + len + 2, spec ? vc->rows : vc->cols);
		len += 4;
	}
	return len;
}

/* One message per control receive buffer, as Linux expects, while
 * anything is owed and the guest gives buffers. */
static void
ctrl_receiveq_fill(struct vc_device *vc)
{
	uint8_t msg[VIRTIO_CONSOLE_CONTROL_SIZE + MAX_NAME + 1];
	struct ctrl_msg m;
	size_t len;

	while (ctrl_next(vc, &m) &&
	       vhu_queue_pop(&vc->vhu, VIRTIO_CONSOLE_CTRL_RXQ, &vc->elem) == 1) {
		len = ctrl_encode(vc, &m, msg);
		if (vc->elem.out_num || vc->elem.in_len < len) {
			vhu_set_broken(&vc->vhu, "control receive buffer is %s",
			               vc->elem.out_num ? "device-readable" : "too small");
			return;
		}
		vhu_buf_to_elem(&vc->elem, msg, len);
		if (TRACE_ON(vc->vhu.trace, TRACE_MSG))
			trace_ctrl(vc->index, 1, msg, len,
			           vc->cfg->resize_order == RESIZE_ROWS_COLS);
		vhu_queue_push(&vc->vhu, VIRTIO_CONSOLE_CTRL_RXQ, &vc->elem, len);
		ctrl_sent(vc, &m);
	}
}

/* The guest's control messages: complete each buffer at once (the guest
 * waits for DEVICE_READY's), then act on it. */
static void
ctrl_transmitq_serve(struct vc_device *vc)
{
	uint8_t raw[VIRTIO_CONSOLE_CONTROL_SIZE];
	struct ctrl_msg m;
	unsigned done;
	size_t n;

	for (done = 0; done < CHAINS_PER_PASS; done++) {
		if (vhu_queue_pop(&vc->vhu, VIRTIO_CONSOLE_CTRL_TXQ, &vc->elem) != 1)
			return;
		if (vc->elem.in_num) {
			vhu_set_broken(&vc->vhu, "control transmit buffer is device-writable");
			return;
		}
		n = vhu_elem_to_buf(&vc->elem, raw, sizeof raw);
		vhu_queue_push(&vc->vhu, VIRTIO_CONSOLE_CTRL_TXQ, &vc->elem, 0);
		if (TRACE_ON(vc->vhu.trace, TRACE_MSG))
			trace_ctrl(vc->index, 0, raw, n, 0);
		if (n < sizeof raw) {
			ctrl_ignore(vc, "short control message (%zu bytes)", n);
			continue;
		}
		m.id = get_le32(raw);
		m.event = get_le16(raw + 4);
		m.value = get_le16(raw + 6);
		ctrl_handle(vc, &m);
	}
	vhu_queue_again(&vc->vhu, VIRTIO_CONSOLE_CTRL_TXQ);
}

static void
ctrl_handle(struct vc_device *vc, const struct ctrl_msg *m)
{
	unsigned p;

	switch (m->event) {
	case VIRTIO_CONSOLE_DEVICE_READY:
		if (m->value != 1) {
			ctrl_ignore(vc, "the guest driver failed to set up");
			return;
		}
		/* A (re)starting driver: announce every port. */
		ports_forget_guest(vc);
		for (p = 0; p < vc->nports; p++)
			vc->ports[p].owed = OWE_PORT_ADD;
		ctrl_receiveq_fill(vc);
		return;
	case VIRTIO_CONSOLE_PORT_READY:
		if (m->id >= vc->nports) {
			ctrl_ignore(vc, "PORT_READY for unknown port %u", m->id);
			return;
		}
		if (m->value != 1) {
			ctrl_ignore(vc, "the guest failed to add port %u", m->id);
			return;
		}
		ctrl_port_ready(vc, &vc->ports[m->id]);
		return;
	case VIRTIO_CONSOLE_PORT_OPEN:
		if (m->id >= vc->nports) {
			ctrl_ignore(vc, "PORT_OPEN for unknown port %u", m->id);
			return;
		}
		port_set_guest_open(&vc->ports[m->id], m->value != 0);
		return;
	default:
		ctrl_ignore(vc, "unexpected control event %u from the guest", m->event);
	}
}

/* The guest has the port: tell it what it is (console, name, size) and
 * whether the host side is there (port_host_open()). */
static void
ctrl_port_ready(struct vc_device *vc, struct port *p)
{
	unsigned owe = OWE_PORT_OPEN;

	p->added = 1;
	if (p->id == 0) {
		loginfo("device %u: the guest's console port is ready", vc->index);
		owe |= OWE_CONSOLE_PORT;
	} else {
		loginfo("console %u: the guest's port %u%s%s%s is ready", p->k, p->id,
		       p->name ? " \"" : "", p->name ? p->name : "",
		       p->name ? "\"" : "");
	}
	if (p->name)
		owe |= OWE_PORT_NAME;
	p->host_open = -1;       /* this driver has not been told yet */
	/* The size (sent last, see ctrl_next()) for the hvc of CONSOLE_PORT. */
	if (p->id == 0 && vhu_has_feature(&vc->vhu, VIRTIO_CONSOLE_F_SIZE) &&
	    vc->cols && vc->rows)
		vc->resize_owed = 1;
	ctrl_owe(p, owe);
}

/*
 * A control message that makes no sense is a driver bug, not a memory
 * hazard: it is ignored, as QEMU's virtio-serial does.  The first one is
 * logged; the rest are only counted (a guest must not flood our stderr)
 * and summed up on exit.
 */
static void
ctrl_ignore(struct vc_device *vc, const char *fmt, ...)
{
	char what[160];
	va_list ap;

	if (vc->bad_ctrl++)
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	logmsg("device %u: %s; ignored (further ones are only counted)",
	       vc->index, what);
}

/* A generic port takes a chain only when every reader has room for it:
 * the guest waits, nothing is dropped.  With no reader at all the host
 * side is closed and the guest was told so. */
static int
port_tx_room(struct port *p, size_t len)
{
	size_t room = sess_room(&p->sess);

	return p->sess.nreaders && (len <= room || room == p->sess.cap);
}

/*
 * Guest output.  The console port completes every buffer at once, since
 * the guest's hvc driver spins until it is used; readers that cannot keep
 * up skip ahead.  A generic port is data, not a terminal: its buffers
 * wait in the ring until the readers have room (real backpressure).
 */
static void
port_transmitq_serve(struct port *p)
{
	struct vc_device *vc = p->vc;
	unsigned i, done;

	p->tx_held = 0;
	for (done = 0; done < CHAINS_PER_PASS; done++) {
		if (p->id != 0) {
			if (vhu_queue_peek(&vc->vhu, p->txq, &vc->elem) != 1)
				return;
			if (!port_tx_room(p, vc->elem.out_len)) {
				p->tx_held = 1;   /* vc_after_pass() tries again */
				return;
			}
		}
		if (vhu_queue_pop(&vc->vhu, p->txq, &vc->elem) != 1)
			return;
		if (vc->elem.in_num) {
			vhu_set_broken(&vc->vhu, "transmit buffer is device-writable");
			return;
		}
		/* The console port: once this pass has taken something, a chain
		 * that would overtake a reader still taking bytes waits for the
		 * next pass, after the readers have been written to.  Skipping
		 * is for readers that stopped, not for a guest faster than one
		 * pass. */
		if (done && vc->elem.out_len > sess_room_live(&p->sess)) {
			vhu_queue_unpop(&vc->vhu, p->txq, 1);
			break;
		}
		for (i = 0; i < vc->elem.out_num; i++)
			sess_write(&p->sess, vc->elem.iov[i].iov_base,
			           vc->elem.iov[i].iov_len);
		vhu_queue_push(&vc->vhu, p->txq, &vc->elem, 0);
	}
	vhu_queue_again(&vc->vhu, p->txq);
}

/* A generic port's host side opens with its first client and closes with
 * its last: the guest is owed a PORT_OPEN while what it was told differs
 * from the state (a client that came and went before the guest gave a
 * buffer costs nothing). */
static void
port_update_open(struct port *p)
{
	int open = port_host_open(p);

	if (p->id == 0 || !p->added)
		return;
	if (open == p->host_open)
		p->owed &= ~OWE_PORT_OPEN;
	else if (!(p->owed & OWE_PORT_OPEN))
		ctrl_owe(p, OWE_PORT_OPEN);
}

/* After the backends ran: clients came or went, readers made room. */
void
vc_after_pass(struct vc_device *vc)
{
	unsigned p;

	for (p = 0; p < vc->nports; p++) {
		port_update_open(&vc->ports[p]);
		if (vc->ports[p].tx_held)
			port_transmitq_serve(&vc->ports[p]);
	}
}

size_t
port_input_room(struct port *p)
{
	struct vc_device *vc = p->vc;

	/* The guest discards data for a generic port it has not opened:
	 * input waits (in the backend's bounded hold, then the socket). */
	if (p->id != 0 && !p->guest_open)
		return 0;
	if (vhu_queue_peek(&vc->vhu, p->rxq, &vc->elem) != 1)
		return 0;
	if (vc->elem.out_num || vc->elem.in_len == 0) {
		vhu_set_broken(&vc->vhu, "receive buffer is %s",
		               vc->elem.out_num ? "device-readable" : "empty");
		return 0;
	}
	return vc->elem.in_len;
}

void
port_input(struct port *p, const void *buf, size_t len)
{
	struct vc_device *vc = p->vc;
	size_t n;

	if (vhu_queue_pop(&vc->vhu, p->rxq, &vc->elem) != 1) {
		logmsg("console %u: %zu bytes of input lost: the receive buffer went "
		       "away", p->k, len);
		return;
	}
	n = vhu_buf_to_elem(&vc->elem, buf, len);
	if (n < len)
		logmsg("console %u: %zu bytes of input lost: the receive buffer "
		       "shrank", p->k, len - n);
	vhu_queue_push(&vc->vhu, p->rxq, &vc->elem, n);
	p->bytes_in += n;
}

/*
 * Host input, the fast way: the receive chains the guest posted are taken
 * (each walked once), their segments gathered, and one readv() fills them
 * in order; the chains it did not reach go back to the ring.  Bounded by
 * RX_CHAINS_PER_READ chains and VHU_MAX_SEGS segments, so that a guest
 * with a huge ring cannot make one read unbounded.  How many chains are
 * offered adapts, as TCP's window does: twice as many after a read that
 * filled them all (a paste, a flood), as many as the last read used
 * after a short one (a keystroke walks one chain, not the whole ring).
 * The scratch is shared by every port: it lives only for this call.
 */
#define RX_CHAINS_PER_READ 64

size_t
port_read_input(struct port *p, int fd, ssize_t *n)
{
	static struct iovec iov[VHU_MAX_SEGS];
	static struct { uint16_t head; size_t len; } chain[RX_CHAINS_PER_READ];
	struct vc_device *vc = p->vc;
	unsigned nchains = 0, niov = 0, i;
	size_t left, fill, room = 0;

	if (p->id != 0 && !p->guest_open)
		return 0;         /* see port_input_room() */
	if (p->rx_chains < 1 || p->rx_chains > RX_CHAINS_PER_READ)
		p->rx_chains = 1;
	while (nchains < p->rx_chains &&
	       vhu_queue_pop(&vc->vhu, p->rxq, &vc->elem) == 1) {
		if (vc->elem.out_num) {
			vhu_set_broken(&vc->vhu, "receive buffer is device-readable");
			return 0;
		}
		if (niov + vc->elem.in_num > VHU_MAX_SEGS) {
			vhu_queue_unpop(&vc->vhu, p->rxq, 1);
			break;
		}
		memcpy(iov + niov, vc->elem.iov, vc->elem.in_num * sizeof iov[0]);
		niov += vc->elem.in_num;
		chain[nchains].head = vc->elem.head;
		chain[nchains].len = vc->elem.in_len;
		room += vc->elem.in_len;
		nchains++;
	}
	/* A corrupt chain after good ones broke the device: read nothing
	 * (what it read could not be given to the guest). */
	if (!nchains || vc->vhu.broken)
		return 0;
	do
		*n = readv(fd, iov, (int)niov);
	while (*n < 0 && errno == EINTR);
	left = *n > 0 ? (size_t)*n : 0;
	for (i = 0; i < nchains && left; i++) {
		fill = left < chain[i].len ? left : chain[i].len;
		vhu_queue_complete(&vc->vhu, p->rxq, chain[i].head, (uint32_t)fill);
		left -= fill;
	}
	vhu_queue_unpop(&vc->vhu, p->rxq, nchains - i);
	if (*n > 0 && (size_t)*n == room && nchains == p->rx_chains)
		p->rx_chains = 2 * nchains < RX_CHAINS_PER_READ ?
		               2 * nchains : RX_CHAINS_PER_READ;
	else if (*n > 0)
		p->rx_chains = i;
	p->bytes_in += *n > 0 ? (size_t)*n : 0;
	return room;
}

void
hold_feed(struct port *p, struct hold *h)
{
	size_t room, n, done = 0;

	while (done < h->len && (room = port_input_room(p)) > 0) {
		n = h->len - done < room ? h->len - done : room;
		port_input(p, h->buf + done, n);
		done += n;
	}
	memmove(h->buf, h->buf + done, h->len - done);
	h->len -= done;
}

/* Tell the guest the console's size: RESIZE with MULTIPORT (Linux ignores
 * the config then), else the config space and a config-change message. */
static void
vc_send_size(struct vc_device *vc)
{
	if (!vhu_has_feature(&vc->vhu, VIRTIO_CONSOLE_F_SIZE))
		return;
	if (multiport(vc)) {
		/* One RESIZE owed at most, of the size when it is sent. */
		if (vc->ports[0].added && !vc->resize_owed) {
			vc->resize_owed = 1;
			ctrl_receiveq_fill(vc);
		}
	} else {
		vhu_config_changed(&vc->vhu);
	}
}

void
port_set_size(struct port *p, unsigned cols, unsigned rows)
{
	struct vc_device *vc = p->vc;

	if (p->id != 0 || !cols || !rows || cols > 65535 || rows > 65535 ||
	    (cols == vc->cols && rows == vc->rows))
		return;
	vc->cols = cols;
	vc->rows = rows;
	sess_resize(&p->sess, cols, rows);
	vc_send_size(vc);
}
