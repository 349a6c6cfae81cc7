/*
 * console.c - the VirtIO console device.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "console.h"
#include "util.h"
#include "vhu.h"
#include "virtio_console.h"

static int console_get_config(void *opaque, uint8_t *buf, uint32_t off,
                              uint32_t len);
static int console_set_config(void *opaque, const uint8_t *buf, uint32_t off,
                              uint32_t len);
static void console_queue_event(void *opaque, unsigned q);
static void console_reset(void *opaque, int q);
static struct port *port_of_queue(struct console *c, unsigned q);
static void ctrl_send(struct console *c, uint32_t id, uint16_t event,
                      uint16_t value);
static void ctrl_flush(struct console *c);
static void ctrl_receive(struct console *c);
static void ctrl_handle(struct console *c, const struct ctrl_msg *m);
static void ctrl_port_ready(struct console *c, struct port *p);
static void ctrl_ignore(struct console *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void port_transmit(struct port *p);
static void port_update_open(struct port *p);
static void console_send_size(struct console *c);

/* What every device offers; num_queues is set per device (2 * (P + 1)). */
static const struct vhu_ops console_ops = {
	.features = 1ull << VIRTIO_F_VERSION_1 |
	            1ull << VIRTIO_RING_F_INDIRECT_DESC |
	            1ull << VIRTIO_RING_F_EVENT_IDX |
	            1ull << VIRTIO_CONSOLE_F_SIZE |
	            1ull << VIRTIO_CONSOLE_F_MULTIPORT |
	            1ull << VIRTIO_CONSOLE_F_EMERG_WRITE,
	.config_size = VIRTIO_CONSOLE_CONFIG_SIZE,
	.get_config = console_get_config,
	.set_config = console_set_config,
	.queue_event = console_queue_event,
	.reset = console_reset,
};

/* Port p of device c: its place and queues (the session comes next). */
void
port_init(struct console *c, unsigned p)
{
	struct port *pt = &c->ports[p];

	pt->con = c;
	pt->id = p;
	pt->k = c->index * c->nports + p;
	pt->name = c->opt->names[p];
	pt->rxq = p == 0 ? VIRTIO_CONSOLE_PORT0_RXQ : 2 + 2 * p;
	pt->txq = pt->rxq + 1;
	pt->host_open = -1;
}

/* Device d as the options describe it, before any socket or backend. */
void
console_init(struct console *c, const struct options *o, unsigned d)
{
	c->index = d;
	c->opt = o;
	c->nports = o->nports;
	c->cols = o->cols;
	c->rows = o->rows;
	c->ops = console_ops;
	c->ops.num_queues = 2 * (o->nports + 1);
	vhu_init(&c->vhu, d, &c->ops, c, o->max_queue_size);
}

/* ---- the console device --------------------------------------------------- */

static void
put_le16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

static void
put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, v);
	put_le16(p + 2, v >> 16);
}

static int
multiport(struct console *c)
{
	return vhu_has_feature(&c->vhu, VIRTIO_CONSOLE_F_MULTIPORT);
}

static int
console_get_config(void *opaque, uint8_t *buf, uint32_t off, uint32_t len)
{
	struct console *c = opaque;
	uint8_t cfg[VIRTIO_CONSOLE_CONFIG_SIZE] = { 0 };

	put_le16(cfg + VIRTIO_CONSOLE_CONFIG_COLS, c->cols);
	put_le16(cfg + VIRTIO_CONSOLE_CONFIG_ROWS, c->rows);
	put_le32(cfg + VIRTIO_CONSOLE_CONFIG_MAX_NR_PORTS, c->nports);
	memcpy(buf, cfg + off, len);
	return 0;
}

/*
 * Only emerg_wr is writable (F_EMERG_WRITE): its low byte goes out on port
 * 0 at once, handshake or not.  QEMU writes the whole 12 bytes at offset 0,
 * other frontends just the 4 at offset 8: any write covering offset 8
 * counts.  Writes to the read-only fields change nothing.
 */
static int
console_set_config(void *opaque, const uint8_t *buf, uint32_t off, uint32_t len)
{
	struct console *c = opaque;

	if (off <= VIRTIO_CONSOLE_CONFIG_EMERG_WR &&
	    off + len > VIRTIO_CONSOLE_CONFIG_EMERG_WR)
		sess_write(&c->ports[0].sess, buf + (VIRTIO_CONSOLE_CONFIG_EMERG_WR - off), 1);
	return 0;
}

/* The port whose receiveq or transmitq q is, or NULL. */
static struct port *
port_of_queue(struct console *c, unsigned q)
{
	unsigned p;

	if (q == VIRTIO_CONSOLE_PORT0_RXQ || q == VIRTIO_CONSOLE_PORT0_TXQ)
		return &c->ports[0];
	if (q < 4 || !multiport(c))
		return NULL;
	p = (q - 2) / 2;
	return p < c->nports ? &c->ports[p] : NULL;
}

static void
console_queue_event(void *opaque, unsigned q)
{
	struct console *c = opaque;
	struct port *p;

	if (q == VIRTIO_CONSOLE_CTRL_TXQ) {
		if (multiport(c))
			ctrl_receive(c);
	} else if (q == VIRTIO_CONSOLE_CTRL_RXQ) {
		if (multiport(c))
			ctrl_flush(c);
	} else if ((p = port_of_queue(c, q)) && q == p->txq) {
		port_transmit(p);
	}
	/* A receiveq: new buffers; the backends see the room. */
}

/* The guest's view of every port starts over. */
static void
ports_forget_guest(struct console *c)
{
	unsigned p;

	for (p = 0; p < c->nports; p++) {
		c->ports[p].added = 0;
		c->ports[p].guest_open = 0;
		c->ports[p].host_open = -1;
		c->ports[p].tx_held = 0;
	}
}

/* A ring stopped or the device reset: the handshake starts over, and
 * messages meant for the old driver must not reach a new one. */
static void
console_reset(void *opaque, int q)
{
	struct console *c = opaque;
	struct port *p;

	if (q < 0 || q == VIRTIO_CONSOLE_CTRL_RXQ || q == VIRTIO_CONSOLE_CTRL_TXQ) {
		c->npending = 0;
		ports_forget_guest(c);
	} else if ((p = port_of_queue(c, (unsigned)q))) {
		p->tx_held = 0;
	}
}

/* Queue a control message for the guest; it leaves when a buffer is there. */
static void
ctrl_send(struct console *c, uint32_t id, uint16_t event, uint16_t value)
{
	if (c->npending == CTRL_PENDING_MAX) {
		ctrl_ignore(c, "control queue full; the guest gives no buffers");
		return;
	}
	c->pending[c->npending].id = id;
	c->pending[c->npending].event = event;
	c->pending[c->npending].value = value;
	c->npending++;
	ctrl_flush(c);
}

/* The bytes of a control message; PORT_NAME and RESIZE carry payload,
 * built now so that a RESIZE tells the latest size. */
static size_t
ctrl_encode(struct console *c, const struct ctrl_msg *m, uint8_t *msg)
{
	size_t len = VIRTIO_CONSOLE_CONTROL_SIZE, n;
	const char *name;

	put_le32(msg, m->id);
	put_le16(msg + 4, m->event);
	put_le16(msg + 6, m->value);
	if (m->event == VIRTIO_CONSOLE_PORT_NAME) {
		name = c->ports[m->id].name;
		n = strlen(name);
		memcpy(msg + len, name, n);
		len += n;
	} else if (m->event == VIRTIO_CONSOLE_RESIZE) {
		int spec = c->opt->resize_order == RESIZE_COLS_ROWS;

		put_le16(msg + len, spec ? c->cols : c->rows);
		put_le16(msg + len + 2, spec ? c->rows : c->cols);
		len += 4;
	}
	return len;
}

/* One message per control receive buffer, as Linux expects. */
static void
ctrl_flush(struct console *c)
{
	uint8_t msg[VIRTIO_CONSOLE_CONTROL_SIZE + MAX_NAME + 1];
	unsigned sent = 0;
	size_t len;

	while (sent < c->npending &&
	       vhu_queue_pop(&c->vhu, VIRTIO_CONSOLE_CTRL_RXQ, &c->elem) == 1) {
		len = ctrl_encode(c, &c->pending[sent], msg);
		if (c->elem.out_num || c->elem.in_len < len) {
			vhu_set_broken(&c->vhu, "control receive buffer is %s",
			               c->elem.out_num ? "device-readable" : "too small");
			return;
		}
		vhu_buf_to_elem(&c->elem, msg, len);
		vhu_queue_push(&c->vhu, VIRTIO_CONSOLE_CTRL_RXQ, &c->elem, len);
		sent++;
	}
	memmove(c->pending, c->pending + sent,
	        (c->npending - sent) * sizeof c->pending[0]);
	c->npending -= sent;
}

/* The guest's control messages: complete each buffer at once (the guest
 * waits for DEVICE_READY's), then act on it. */
static void
ctrl_receive(struct console *c)
{
	uint8_t raw[VIRTIO_CONSOLE_CONTROL_SIZE];
	struct ctrl_msg m;
	unsigned done;
	size_t n;

	for (done = 0; done < CHAINS_PER_PASS; done++) {
		if (vhu_queue_pop(&c->vhu, VIRTIO_CONSOLE_CTRL_TXQ, &c->elem) != 1)
			return;
		if (c->elem.in_num) {
			vhu_set_broken(&c->vhu, "control transmit buffer is device-writable");
			return;
		}
		n = vhu_elem_to_buf(&c->elem, raw, sizeof raw);
		vhu_queue_push(&c->vhu, VIRTIO_CONSOLE_CTRL_TXQ, &c->elem, 0);
		if (n < sizeof raw) {
			ctrl_ignore(c, "short control message (%zu bytes)", n);
			continue;
		}
		m.id = raw[0] | raw[1] << 8 | raw[2] << 16 | (uint32_t)raw[3] << 24;
		m.event = raw[4] | raw[5] << 8;
		m.value = raw[6] | raw[7] << 8;
		ctrl_handle(c, &m);
	}
	vhu_queue_again(&c->vhu, VIRTIO_CONSOLE_CTRL_TXQ);
}

static void
ctrl_handle(struct console *c, const struct ctrl_msg *m)
{
	unsigned p;

	switch (m->event) {
	case VIRTIO_CONSOLE_DEVICE_READY:
		if (m->value != 1) {
			ctrl_ignore(c, "the guest driver failed to set up");
			return;
		}
		/* A (re)starting driver: announce every port. */
		ports_forget_guest(c);
		for (p = 0; p < c->nports; p++)
			ctrl_send(c, p, VIRTIO_CONSOLE_PORT_ADD, 1);
		return;
	case VIRTIO_CONSOLE_PORT_READY:
		if (m->id >= c->nports) {
			ctrl_ignore(c, "PORT_READY for unknown port %u", m->id);
			return;
		}
		if (m->value != 1) {
			ctrl_ignore(c, "the guest failed to add port %u", m->id);
			return;
		}
		ctrl_port_ready(c, &c->ports[m->id]);
		return;
	case VIRTIO_CONSOLE_PORT_OPEN:
		if (m->id >= c->nports) {
			ctrl_ignore(c, "PORT_OPEN for unknown port %u", m->id);
			return;
		}
		c->ports[m->id].guest_open = m->value != 0;
		return;
	default:
		ctrl_ignore(c, "unexpected control event %u from the guest", m->event);
	}
}

/* The guest has the port: tell it what it is (console, name, size) and
 * whether the host side is there.  The console port always is, as on
 * QEMU's virtconsole; a generic port while it has a client. */
static void
ctrl_port_ready(struct console *c, struct port *p)
{
	p->added = 1;
	if (p->id == 0) {
		logmsg("device %u: the guest's console port is ready", c->index);
		ctrl_send(c, 0, VIRTIO_CONSOLE_CONSOLE_PORT, 1);
	} else {
		logmsg("console %u: the guest's port %u%s%s%s is ready", p->k, p->id,
		       p->name ? " \"" : "", p->name ? p->name : "",
		       p->name ? "\"" : "");
	}
	if (p->name)
		ctrl_send(c, p->id, VIRTIO_CONSOLE_PORT_NAME, 1);
	p->host_open = p->id == 0 || p->sess.nreaders > 0;
	ctrl_send(c, p->id, VIRTIO_CONSOLE_PORT_OPEN, (uint16_t)p->host_open);
	/* The size last: Linux applies it to the hvc made on CONSOLE_PORT. */
	if (p->id == 0 && vhu_has_feature(&c->vhu, VIRTIO_CONSOLE_F_SIZE) &&
	    c->cols && c->rows)
		ctrl_send(c, 0, VIRTIO_CONSOLE_RESIZE, 0);
}

/*
 * A control message that makes no sense is a driver bug, not a memory
 * hazard: it is ignored, as QEMU's virtio-serial does.  The first one is
 * logged; the rest are only counted (a guest must not flood our stderr)
 * and summed up on exit.
 */
static void
ctrl_ignore(struct console *c, const char *fmt, ...)
{
	char what[160];
	va_list ap;

	if (c->bad_ctrl++)
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	logmsg("device %u: %s; ignored (further ones are only counted)",
	       c->index, what);
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
port_transmit(struct port *p)
{
	struct console *c = p->con;
	unsigned i, done;

	p->tx_held = 0;
	for (done = 0; done < CHAINS_PER_PASS; done++) {
		if (p->id != 0) {
			if (vhu_queue_peek(&c->vhu, p->txq, &c->elem) != 1)
				return;
			if (!port_tx_room(p, c->elem.out_len)) {
				p->tx_held = 1;   /* after_pass() tries again */
				return;
			}
		}
		if (vhu_queue_pop(&c->vhu, p->txq, &c->elem) != 1)
			return;
		if (c->elem.in_num) {
			vhu_set_broken(&c->vhu, "transmit buffer is device-writable");
			return;
		}
		for (i = 0; i < c->elem.out_num; i++)
			sess_write(&p->sess, c->elem.iov[i].iov_base,
			           c->elem.iov[i].iov_len);
		vhu_queue_push(&c->vhu, p->txq, &c->elem, 0);
	}
	vhu_queue_again(&c->vhu, p->txq);
}

/* A generic port's host side opens with its first client and closes with
 * its last: tell the guest. */
static void
port_update_open(struct port *p)
{
	int open = p->sess.nreaders > 0;

	if (p->id == 0 || !p->added || open == p->host_open)
		return;
	p->host_open = open;
	ctrl_send(p->con, p->id, VIRTIO_CONSOLE_PORT_OPEN, (uint16_t)open);
}

/* After the backends ran: clients came or went, readers made room. */
void
after_pass(struct console *c)
{
	unsigned p;

	for (p = 0; p < c->nports; p++) {
		port_update_open(&c->ports[p]);
		if (c->ports[p].tx_held)
			port_transmit(&c->ports[p]);
	}
}

size_t
port_input_room(struct port *p)
{
	struct console *c = p->con;

	/* The guest discards data for a generic port it has not opened:
	 * input waits (in the backend's bounded hold, then the socket). */
	if (p->id != 0 && !p->guest_open)
		return 0;
	if (vhu_queue_peek(&c->vhu, p->rxq, &c->elem) != 1)
		return 0;
	if (c->elem.out_num || c->elem.in_len == 0) {
		vhu_set_broken(&c->vhu, "receive buffer is %s",
		               c->elem.out_num ? "device-readable" : "empty");
		return 0;
	}
	return c->elem.in_len;
}

void
port_input(struct port *p, const void *buf, size_t len)
{
	struct console *c = p->con;
	size_t n;

	if (vhu_queue_pop(&c->vhu, p->rxq, &c->elem) != 1) {
		logmsg("console %u: %zu bytes of input lost: the receive buffer went "
		       "away", p->k, len);
		return;
	}
	n = vhu_buf_to_elem(&c->elem, buf, len);
	if (n < len)
		logmsg("console %u: %zu bytes of input lost: the receive buffer "
		       "shrank", p->k, len - n);
	vhu_queue_push(&c->vhu, p->rxq, &c->elem, n);
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
	struct console *c = p->con;
	unsigned nchains = 0, niov = 0, i;
	size_t left, fill, room = 0;

	if (p->id != 0 && !p->guest_open)
		return 0;         /* see port_input_room() */
	if (p->rx_chains < 1 || p->rx_chains > RX_CHAINS_PER_READ)
		p->rx_chains = 1;
	while (nchains < p->rx_chains &&
	       vhu_queue_pop(&c->vhu, p->rxq, &c->elem) == 1) {
		if (c->elem.out_num) {
			vhu_set_broken(&c->vhu, "receive buffer is device-readable");
			return 0;
		}
		if (niov + c->elem.in_num > VHU_MAX_SEGS) {
			vhu_queue_unpop(&c->vhu, p->rxq, 1);
			break;
		}
		memcpy(iov + niov, c->elem.iov, c->elem.in_num * sizeof iov[0]);
		niov += c->elem.in_num;
		chain[nchains].head = c->elem.head;
		chain[nchains].len = c->elem.in_len;
		room += c->elem.in_len;
		nchains++;
	}
	/* A corrupt chain after good ones broke the device: read nothing
	 * (what it read could not be given to the guest). */
	if (!nchains || c->vhu.broken)
		return 0;
	do
		*n = readv(fd, iov, (int)niov);
	while (*n < 0 && errno == EINTR);
	left = *n > 0 ? (size_t)*n : 0;
	for (i = 0; i < nchains && left; i++) {
		fill = left < chain[i].len ? left : chain[i].len;
		vhu_queue_complete(&c->vhu, p->rxq, chain[i].head, (uint32_t)fill);
		left -= fill;
	}
	vhu_queue_unpop(&c->vhu, p->rxq, nchains - i);
	if (*n > 0 && (size_t)*n == room && nchains == p->rx_chains)
		p->rx_chains = 2 * nchains < RX_CHAINS_PER_READ ?
		               2 * nchains : RX_CHAINS_PER_READ;
	else if (*n > 0)
		p->rx_chains = i;
	p->bytes_in += *n > 0 ? (size_t)*n : 0;
	return room;
}

void
port_feed(struct port *p, char *buf, size_t *len)
{
	size_t room, n, done = 0;

	while (done < *len && (room = port_input_room(p)) > 0) {
		n = *len - done < room ? *len - done : room;
		port_input(p, buf + done, n);
		done += n;
	}
	memmove(buf, buf + done, *len - done);
	*len -= done;
}

/* Tell the guest the console's size: RESIZE with MULTIPORT (Linux ignores
 * the config then), else the config space and a config-change message. */
static void
console_send_size(struct console *c)
{
	if (!vhu_has_feature(&c->vhu, VIRTIO_CONSOLE_F_SIZE))
		return;
	if (multiport(c)) {
		if (c->ports[0].added)
			ctrl_send(c, 0, VIRTIO_CONSOLE_RESIZE, 0);
	} else {
		vhu_config_changed(&c->vhu);
	}
}

void
port_set_size(struct port *p, unsigned cols, unsigned rows)
{
	struct console *c = p->con;

	if (p->id != 0 || !cols || !rows || cols > 65535 || rows > 65535 ||
	    (cols == c->cols && rows == c->rows))
		return;
	c->cols = cols;
	c->rows = rows;
	console_send_size(c);
}
