/*
 * tests/fe/ring.c - the rings (driver side), negotiation and ring setup
 * (contract: frontend.h).
 */
#include "frontend.h"

/* ---------------------------------------------------------------------- */
/* rings (the driver side)                                                 */

const char *const qname[NQ] = { "port0 receiveq", "port0 transmitq",
				"control receiveq", "control transmitq" };

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void
vq_close_fds(struct vq *q)
{
	if (q->kick_r == q->kick_w)
		q->kick_r = -1;
	if (q->call_r == q->call_w)
		q->call_w = -1;
	close_fd(&q->kick_r);
	close_fd(&q->kick_w);
	close_fd(&q->call_r);
	close_fd(&q->call_w);
}

/* Every buffer slot free again, nothing posted, no control message kept. */
void
buffers_forget(struct fe *fe)
{
	memset(fe->ind_busy, 0, sizeof fe->ind_busy);
	memset(fe->rx0_busy, 0, sizeof fe->rx0_busy);
	memset(fe->tx0_busy, 0, sizeof fe->tx0_busy);
	memset(fe->crx_busy, 0, sizeof fe->crx_busy);
	memset(fe->ctx_busy, 0, sizeof fe->ctx_busy);
	fe->rx0_nbufs = fe->crx_nbufs = 0;
	fe->cq_count = fe->cq_head = 0;
}

void
rings_forget(struct fe *fe)
{
	int q;
	for (q = 0; q < NQ; q++) {
		fe->vq[q].active = false;
		fe->vq[q].inflight = 0;
		vq_close_fds(&fe->vq[q]);
	}
	buffers_forget(fe);
}

static void
vq_make_fds(struct fe *fe, struct vq *q, bool pipes)
{
	vq_close_fds(q);
	if (pipes) {
		int k[2], cl[2];
		if (pipe2(k, O_CLOEXEC) < 0 || pipe2(cl, O_CLOEXEC) < 0)
			fail(fe, "pipe2: %s", strerror(errno));
		q->kick_r = k[0];	/* daemon reads */
		q->kick_w = k[1];
		q->call_r = cl[0];
		q->call_w = cl[1];	/* daemon writes */
		fcntl(q->kick_w, F_SETFL, O_NONBLOCK);
		fcntl(q->call_r, F_SETFL, O_NONBLOCK);
	} else {
		q->kick_r = q->kick_w = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		q->call_r = q->call_w = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (q->kick_r < 0 || q->call_r < 0)
			fail(fe, "eventfd: %s", strerror(errno));
	}
}

/* Fresh ring memory and driver state, starting at index base. */
void
vq_init(struct fe *fe, int qi, unsigned n, uint16_t base)
{
	struct vq *q = &fe->vq[qi];
	unsigned i;
	q->num = n;
	q->freel = realloc(q->freel, sizeof *q->freel * n);
	q->tok = realloc(q->tok, sizeof *q->tok * n);
	if (!q->freel || !q->tok)
		fail(fe, "out of memory");
	memset(q->tok, 0, sizeof *q->tok * n);
	for (i = 0; i < n; i++)
		q->freel[i] = (uint16_t)(n - 1 - i);
	q->nfree = n;
	q->inflight = 0;
	gzero(fe, q->desc, 16ull * n);
	gzero(fe, q->avail, 6 + 2ull * n);
	gzero(fe, q->used, 6 + 8ull * n);
	gw16(fe, q->avail + 2, base);
	gw16(fe, q->used + 2, base);
	mark_writable(fe, q->used, 6 + 8ull * n);
	q->avail_idx = q->pub_idx = q->last_used = base;
	if (fe->neg.event_idx)
		gw16(fe, q->avail + 4 + 2ull * n, base);	/* used_event */
}

void
set_desc(struct fe *fe, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
         uint16_t flags, uint16_t next)
{
	uint64_t d = table + 16ull * i;
	gw64(fe, d, addr);
	gw32(fe, d + 8, len);
	gw16(fe, d + 12, flags);
	gw16(fe, d + 14, next);
}

uint16_t
desc_alloc(struct fe *fe, struct vq *q)
{
	if (!q->nfree)
		fail(fe, "internal: %s has no free descriptor",
		     qname[q - fe->vq]);
	return q->freel[--q->nfree];
}

int
ind_alloc(struct fe *fe)
{
	int i;
	for (i = 0; i < IND_SLOTS; i++)
		if (!fe->ind_busy[i]) {
			fe->ind_busy[i] = true;
			return i;
		}
	fail(fe, "internal: no free indirect table");
}

void
avail_push(struct fe *fe, struct vq *q, uint16_t head)
{
	gw16(fe, q->avail + 4 + 2ull * (q->avail_idx % q->num), head);
	q->avail_idx++;
}

/* Add a chain (direct or through an indirect table); returns the head. */
uint16_t
vq_add(struct fe *fe, struct vq *q, const struct seg *s, int n, bool indirect,
       int kind, int slot)
{
	uint16_t head;
	uint32_t wlen = 0;
	struct tok *t;
	int i;
	if (indirect) {
		int ti = ind_alloc(fe);
		uint64_t tg = ind_gpa(fe, ti);
		for (i = 0; i < n; i++)
			set_desc(fe, tg, (unsigned)i, s[i].gpa, s[i].len,
				 (uint16_t)((i < n - 1 ? VRING_DESC_F_NEXT
						       : 0) |
					    (s[i].w ? VRING_DESC_F_WRITE : 0)),
				 (uint16_t)(i < n - 1 ? i + 1 : 0));
		head = desc_alloc(fe, q);
		set_desc(fe, q->desc, head, tg, 16u * (unsigned)n,
			 VRING_DESC_F_INDIRECT, 0);
		t = &q->tok[head];
		t->ind = ti;
		t->ndesc = 1;
	} else {
		uint16_t idx[8];
		if (n > 8 || q->nfree < (unsigned)n)
			fail(fe,
			     "internal: %s: no room for a %d-descriptor chain",
			     qname[q - fe->vq], n);
		for (i = 0; i < n; i++)
			idx[i] = desc_alloc(fe, q);
		for (i = 0; i < n; i++)
			set_desc(fe, q->desc, idx[i], s[i].gpa, s[i].len,
				 (uint16_t)((i < n - 1 ? VRING_DESC_F_NEXT
						       : 0) |
					    (s[i].w ? VRING_DESC_F_WRITE : 0)),
				 i < n - 1 ? idx[i + 1] : 0);
		head = idx[0];
		t = &q->tok[head];
		t->ind = -1;
		t->ndesc = (uint16_t)n;
	}
	for (i = 0; i < n; i++)
		if (s[i].w) {
			mark_writable(fe, s[i].gpa, s[i].len);
			wlen += s[i].len;
		}
	t->kind = (uint8_t)kind;
	t->busy = true;
	t->slot = slot;
	t->wlen = wlen;
	if (kind != TK_BAD)
		q->inflight++;
	avail_push(fe, q, head);
	return head;
}

void
kick(struct fe *fe, struct vq *q)
{
	uint64_t one = 1;
	ssize_t n;
	rec_kick(fe, q->kick_w);
	n = write(q->kick_w, &one, sizeof one);
	if (n < 0 && errno != EAGAIN)
		fail(fe, "kick %s: %s", qname[q - fe->vq], strerror(errno));
	q->kicks++;
}

/* Publish new avail entries: barrier, avail idx, then kick unless the
 * device suppressed it (used flags, or avail_event with EVENT_IDX). */
void
vq_publish(struct fe *fe, struct vq *q, bool force_kick)
{
	uint16_t old = q->pub_idx, new = q->avail_idx;
	bool need;
	if (old == new && !force_kick)
		return;
	gstore16_release(fe, q->avail + 2, new);
	q->pub_idx = new;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (fe->neg.event_idx) {
		uint16_t ae = gload16(fe, q->used + 4 + 8ull * q->num);
		need = (uint16_t)(new - ae - 1) < (uint16_t)(new - old);
	} else {
		need = !(gload16(fe, q->used) & VRING_USED_F_NO_NOTIFY);
	}
	if (need || force_kick)
		kick(fe, q);
}

static void
vq_free_chain(struct fe *fe, struct vq *q, uint16_t head)
{
	struct tok *t = &q->tok[head];
	uint16_t d = head;
	unsigned i;
	for (i = 0; i < t->ndesc; i++) {
		uint16_t flags = sh16(fe, q->desc + 16ull * d + 12);
		uint16_t next = sh16(fe, q->desc + 16ull * d + 14);
		q->freel[q->nfree++] = d;
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		d = next;
	}
	if (t->ind >= 0)
		fe->ind_busy[t->ind] = false;
	t->busy = false;
	if (t->kind != TK_BAD)
		q->inflight--;
}

static void
rxd_append(struct fe *fe, const uint8_t *p, size_t n)
{
	rec_input(fe, p, n);
	if (fe->rxd_len + n > fe->rxd_cap) {
		fe->rxd_cap = (fe->rxd_len + n) * 2 + 65536;
		fe->rxd = realloc(fe->rxd, fe->rxd_cap);
		if (!fe->rxd)
			fail(fe, "out of memory");
	}
	memcpy(fe->rxd + fe->rxd_len, p, n);
	fe->rxd_len += n;
	fe->rx_total += n;
}

void
rx_sink_take(struct fe *fe, const uint8_t *p, size_t n)
{
	size_t i;
	if (n && !fe->rx_sink.got)
		fe->rx_sink.first = now_ns();
	if (fe->rx_sink.check)
		for (i = 0; i < n; i++)
			if (p[i] != data_pat(fe->rx_sink.got + i))
				fail(fe,
				     "read-bytes: byte %" PRIu64
				     " is 0x%02x, want 0x%02x",
				     fe->rx_sink.got + i, p[i],
				     data_pat(fe->rx_sink.got + i));
	fe->rx_sink.got += n;
	fe->rx_total += n;
}

void
rxd_consume(struct fe *fe, size_t n)
{
	if (!n)
		return;
	memmove(fe->rxd, fe->rxd + n, fe->rxd_len - n);
	fe->rxd_len -= n;
}

/* Post every free receive buffer of queue qi (slot s at base + s * 4096). */
static void
refill(struct fe *fe, int qi, uint64_t base, unsigned nbufs, bool *busy, int tk)
{
	struct vq *q = &fe->vq[qi];
	unsigned s;
	if (!q->active)
		return;
	for (s = 0; s < nbufs; s++) {
		struct seg sg = { base + (uint64_t)s * BUF_SIZE, BUF_SIZE,
				  true };
		if (busy[s] || !q->nfree)
			continue;
		busy[s] = true;
		vq_add(fe, q, &sg, 1, false, tk, (int)s);
	}
	vq_publish(fe, q, false);
}

void
rx0_refill(struct fe *fe)
{
	refill(fe, VIRTIO_CONSOLE_PORT0_RXQ, fe->rx0_base, fe->rx0_nbufs,
	       fe->rx0_busy, TK_RX0);
}

void
crx_refill(struct fe *fe)
{
	refill(fe, VIRTIO_CONSOLE_CTRL_RXQ, fe->crx_base, fe->crx_nbufs,
	       fe->crx_busy, TK_CRX);
}

/* Consume used entries as Linux's virtqueue_get_buf does, then re-enable
 * callbacks (used_event = last_used with EVENT_IDX) and re-check. */
static void
process_used(struct fe *fe, int qi)
{
	struct vq *q = &fe->vq[qi];
	if (!q->active)
		return;
	for (;;) {
		uint16_t uidx = gload16(fe, q->used + 2);
		if ((uint16_t)(uidx - q->last_used) > q->num)
			fail(fe,
			     "%s: used idx %u jumped more than the queue size "
			     "past %u",
			     qname[qi], uidx, q->last_used);
		while (q->last_used != uidx) {
			uint64_t e =
				q->used + 4 + 8ull * (q->last_used % q->num);
			uint32_t id = gload32(fe, e), len = gload32(fe, e + 4);
			struct tok *t;
			if (id >= q->num || !q->tok[id].busy)
				fail(fe,
				     "%s: used entry %u has id %u, which is "
				     "not an outstanding head",
				     qname[qi], q->last_used, id);
			t = &q->tok[id];
			switch (t->kind) {
			case TK_RX0:
				if (len > t->wlen)
					fail(fe,
					     "%s: used len %u > buffer size %u",
					     qname[qi], len, t->wlen);
				if (fe->rx_sink.on)
					rx_sink_take(fe,
						     g2h(fe,
							 rx0_gpa(fe, t->slot),
							 len),
						     len);
				else
					rxd_append(fe,
						   g2h(fe, rx0_gpa(fe, t->slot),
						       len),
						   len);
				note(fe, "%s: %u bytes received", qname[qi],
				     len);
				fe->rx0_busy[t->slot] = false;
				break;
			case TK_CRX: {
				const uint8_t *p =
					g2h(fe, crx_gpa(fe, t->slot), 8);
				struct cmsg *m;
				if (len < 8 || len > t->wlen)
					fail(fe,
					     "%s: control message used len %u",
					     qname[qi], len);
				if (fe->cq_count ==
				    sizeof fe->cq / sizeof fe->cq[0])
					fail(fe, "too many unconsumed control "
						 "messages");
				m = &fe->cq[(fe->cq_head + fe->cq_count++) %
					    (sizeof fe->cq / sizeof fe->cq[0])];
				m->id = le32toh(get32(p));
				m->event = (uint16_t)(p[4] | p[5] << 8);
				m->value = (uint16_t)(p[6] | p[7] << 8);
				m->len = len;
				memcpy(m->payload,
				       g2h(fe, crx_gpa(fe, t->slot) + 8, 8),
				       len - 8 < 8 ? len - 8 : 8);
				note(fe,
				     "control message id %u %s value %u len %u",
				     m->id, evname(m->event), m->value, len);
				fe->crx_busy[t->slot] = false;
				break;
			}
			case TK_TX0:
			case TK_CTX:
				if (len != 0)
					fail(fe,
					     "%s: transmit buffer (head %u) "
					     "completed with used len %u, want "
					     "0",
					     qname[qi], id, len);
				if (t->kind == TK_TX0)
					fe->tx0_busy[t->slot] = false;
				else
					fe->ctx_busy[t->slot] = false;
				break;
			case TK_BAD:
				fail(fe,
				     "%s: the device completed the corrupt "
				     "chain (head %u, len %u) instead of "
				     "refusing it",
				     qname[qi], id, len);
			default:
				fail(fe, "internal: token kind %u", t->kind);
			}
			vq_free_chain(fe, q, (uint16_t)id);
			q->last_used++;
		}
		if (!fe->neg.event_idx)
			break;
		gstore16_release(fe, q->avail + 4 + 2ull * q->num,
				 q->last_used);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (gload16(fe, q->used + 2) == q->last_used)
			break;
	}
	if (qi == VIRTIO_CONSOLE_PORT0_RXQ)
		rx0_refill(fe);
	else if (qi == VIRTIO_CONSOLE_CTRL_RXQ)
		crx_refill(fe);
}

static void
sock_event(struct fe *fe, bool allow_eof)
{
	char b;
	ssize_t n = recv(fe->sock, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno == ECONNRESET)) {
		if (!allow_eof)
			fail(fe, "the daemon closed the vhost-user connection");
		fe->sock_eof = true;
		return;
	}
	if (n > 0) {
		struct vu_msg m;
		read_msg(fe, fe->sock, &m, deadline_in(fe->timeout_s));
		fail(fe,
		     "unsolicited message from the daemon: request %u flags "
		     "0x%x size %u [%s]",
		     m.h.request, m.h.flags, m.h.size, hex(m.p, m.h.size));
	}
}

void
drain_fd(int fd)
{
	char b[256];
	int i;
	for (i = 0; i < 64 && read(fd, b, sizeof b) > 0; i++)
		;
}

/* The interrupt handler loop.  Receive queues are looked at only when their
 * call fd fired (so a missing notification makes a step time out, as it
 * hangs Linux); transmit queues with buffers out are polled, as Linux spins
 * on them.  Returns when cond(arg) holds (true) or at dl (false). */
bool
service(struct fe *fe, int64_t dl, bool (*cond)(struct fe *, void *), void *arg,
        bool allow_eof)
{
	for (;;) {
		struct pollfd pf[2 + NQ];
		int who[2 + NQ];
		int n = 0, i, r, left, tmo;
		bool spin;
		if (cond && cond(fe, arg))
			return true;
		left = ms_left(dl);
		if (left == 0)
			return !cond;
		if (fe->sock >= 0 && !fe->sock_eof) {
			pf[n] = (struct pollfd){ fe->sock, POLLIN, 0 };
			who[n++] = -1;
		}
		if (fe->backend_fd >= 0) {
			pf[n] = (struct pollfd){ fe->backend_fd, POLLIN, 0 };
			who[n++] = -2;
		}
		for (i = 0; i < NQ; i++)
			if (fe->vq[i].active) {
				pf[n] = (struct pollfd){ fe->vq[i].call_r,
							 POLLIN, 0 };
				who[n++] = i;
			}
		spin = (fe->vq[1].active && fe->vq[1].inflight) ||
		       (fe->vq[3].active && fe->vq[3].inflight);
		tmo = spin && left > 1 ? 1 : left;
		if (fe->service_tick_ms > 0 && tmo > fe->service_tick_ms)
			tmo = fe->service_tick_ms;
		r = poll(pf, (nfds_t)n, tmo);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail(fe, "poll: %s", strerror(errno));
		}
		for (i = 0; i < n && r > 0; i++) {
			if (!pf[i].revents)
				continue;
			if (who[i] == -1)
				sock_event(fe, allow_eof);
			else if (who[i] == -2)
				backend_service(fe);
			else {
				drain_fd(pf[i].fd);
				fe->vq[who[i]].calls++;
				process_used(fe, who[i]);
			}
		}
		if (spin) {
			process_used(fe, VIRTIO_CONSOLE_PORT0_TXQ);
			process_used(fe, VIRTIO_CONSOLE_CTRL_TXQ);
		}
	}
}

/* A bounded window in which nothing must happen (negative checks). */
void
service_window(struct fe *fe, int ms)
{
	service(fe, now_ms() + ms, NULL, NULL, false);
}

static bool
cond_q_idle(struct fe *fe, void *arg)
{
	return fe->vq[*(int *)arg].inflight == 0;
}

void
wait_q_idle(struct fe *fe, int qi, const char *what)
{
	if (!service(fe, deadline_in(fe->timeout_s), cond_q_idle, &qi, false))
		fail(fe,
		     "%s: %s: %u buffer(s) not used by the device within %g s "
		     "(avail idx %u, used idx %u)",
		     what, qname[qi], fe->vq[qi].inflight, fe->timeout_s,
		     fe->vq[qi].avail_idx, gload16(fe, fe->vq[qi].used + 2));
}

static bool
cond_cq(struct fe *fe, void *arg)
{
	(void)arg;
	return fe->cq_count > 0;
}

struct cmsg
ctrl_next(struct fe *fe, const char *waiting_for)
{
	struct cmsg m;
	if (!service(fe, deadline_in(fe->timeout_s), cond_cq, NULL, false))
		fail(fe, "no control message within %g s while waiting for %s",
		     fe->timeout_s, waiting_for);
	m = fe->cq[fe->cq_head];
	fe->cq_head = (fe->cq_head + 1) % (sizeof fe->cq / sizeof fe->cq[0]);
	fe->cq_count--;
	return m;
}

void
ctrl_expect(struct fe *fe, uint32_t id, uint16_t ev, uint16_t val)
{
	char what[64];
	struct cmsg m;
	snprintf(what, sizeof what, "%s(%u,%u)", evname(ev), id, val);
	m = ctrl_next(fe, what);
	if (m.id != id || m.event != ev || m.value != val || m.len != 8)
		fail(fe,
		     "control message id %u event %u (%s) value %u used len "
		     "%u, want %s with used len 8",
		     m.id, m.event, evname(m.event), m.value, m.len, what);
}

/* A control message of len bytes (8, or fewer to be malformed). */
void
ctrl_send_len(struct fe *fe, uint32_t id, uint16_t ev, uint16_t val,
              uint32_t len)
{
	struct vq *q = &fe->vq[VIRTIO_CONSOLE_CTRL_TXQ];
	uint8_t b[8];
	struct seg sg;
	int s;
	char what[64];
	for (s = 0; s < CTX_SLOTS && fe->ctx_busy[s]; s++)
		;
	if (s == CTX_SLOTS || !q->nfree)
		fail(fe, "internal: control transmitq full");
	put32(b, htole32(id));
	b[4] = (uint8_t)ev;
	b[5] = (uint8_t)(ev >> 8);
	b[6] = (uint8_t)val;
	b[7] = (uint8_t)(val >> 8);
	gw(fe, ctx_gpa(fe, s), b, 8);
	fe->ctx_busy[s] = true;
	sg = (struct seg){ ctx_gpa(fe, s), len, false };
	vq_add(fe, q, &sg, 1, false, TK_CTX, s);
	vq_publish(fe, q, false);
	snprintf(what, sizeof what, "sending %s(%u,%u) in %u bytes", evname(ev),
		 id, val, len);
	wait_q_idle(fe, VIRTIO_CONSOLE_CTRL_TXQ, what);
}

void
ctrl_send(struct fe *fe, uint32_t id, uint16_t ev, uint16_t val)
{
	ctrl_send_len(fe, id, ev, val, 8);
}

/* ---------------------------------------------------------------------- */
/* negotiation and ring setup (QEMU's side)                                */

void
negotiate(struct fe *fe, bool want_proto, bool want_reply_ack)
{
	uint64_t f;
	fe->neg.features_offered = vu_get_u64(fe, VU_GET_FEATURES);
	f = fe->neg.features_offered;
	if (!(f & BIT(VIRTIO_F_VERSION_1)) ||
	    !(f & BIT(VIRTIO_CONSOLE_F_MULTIPORT)))
		fail(fe,
		     "GET_FEATURES 0x%" PRIx64 " lacks VERSION_1 or MULTIPORT",
		     f);
	fe->neg.proto = want_proto && (f & BIT(VU_F_PROTOCOL_FEATURES));
	if (fe->neg.proto) {
		uint64_t want = WANT_PFEATURES;
		if (!want_reply_ack)
			want &= ~BIT(PF_REPLY_ACK);
		fe->neg.pfeatures_offered =
			vu_get_u64(fe, VU_GET_PROTOCOL_FEATURES);
		fe->neg.pfeatures = fe->neg.pfeatures_offered & want;
		fe->neg.reply_ack = fe->neg.pfeatures & BIT(PF_REPLY_ACK);
		vu_u64(fe, true, VU_SET_PROTOCOL_FEATURES, fe->neg.pfeatures,
		       NULL, 0, "SET_PROTOCOL_FEATURES");
		if (fe->neg.pfeatures & BIT(PF_MQ)) {
			uint64_t n = vu_get_u64(fe, VU_GET_QUEUE_NUM);
			if (n < NQ)
				fail(fe, "GET_QUEUE_NUM %" PRIu64 " < %d", n,
				     NQ);
		}
		if (fe->neg.pfeatures & BIT(PF_CONFIGURE_MEM_SLOTS)) {
			uint64_t n = vu_get_u64(fe, VU_GET_MAX_MEM_SLOTS);
			if (n < 2)
				fail(fe, "GET_MAX_MEM_SLOTS %" PRIu64 " < 2",
				     n);
		}
		if (fe->neg.pfeatures & BIT(PF_BACKEND_REQ)) {
			int sp[2];
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				       sp) < 0)
				fail(fe, "socketpair: %s", strerror(errno));
			if (fe->backend_fd >= 0)
				close(fe->backend_fd);
			fe->backend_fd = sp[0];
			vu_ok(fe, VU_SET_BACKEND_REQ_FD, NULL, 0, &sp[1], 1,
			      "SET_BACKEND_REQ_FD");
			close(sp[1]);
		}
	}
	vu_ok(fe, VU_SET_OWNER, NULL, 0, NULL, 0, "SET_OWNER");
	f = vu_get_u64(fe, VU_GET_FEATURES);
	if (f != fe->neg.features_offered)
		fail(fe,
		     "second GET_FEATURES 0x%" PRIx64
		     " differs from the first 0x%" PRIx64,
		     f, fe->neg.features_offered);
	if (fe->neg.pfeatures & BIT(PF_CONFIG)) {
		uint8_t b[24] = { 0 };
		struct vu_msg m;
		put32(b + 4, VIRTIO_CONSOLE_CONFIG_SIZE);
		vu_send(fe, VU_GET_CONFIG, VU_VERSION, b, sizeof b, NULL, 0);
		recv_reply(fe, &m, "GET_CONFIG");
		if (m.h.request != VU_GET_CONFIG || m.h.flags != 5 ||
		    m.h.size != 24 ||
		    le32toh(get32(m.p + 12 +
				  VIRTIO_CONSOLE_CONFIG_MAX_NR_PORTS)) !=
			    (fe->iopt.ports ? fe->iopt.ports : 1))
			fail(fe, "GET_CONFIG reply {%u, 0x%x, %u} [%s]",
			     m.h.request, m.h.flags, m.h.size,
			     hex(m.p, m.h.size));
	}
}

void
set_features(struct fe *fe)
{
	uint64_t want = BIT(VIRTIO_F_VERSION_1);
	if (!fe->iopt.no_multiport)
		want |= BIT(VIRTIO_CONSOLE_F_MULTIPORT);
	if (fe->iopt.size)
		want |= BIT(VIRTIO_CONSOLE_F_SIZE);
	if (!fe->iopt.no_event_idx)
		want |= BIT(VIRTIO_RING_F_EVENT_IDX);
	if (!fe->iopt.no_indirect)
		want |= BIT(VIRTIO_RING_F_INDIRECT_DESC);
	if (fe->neg.proto)
		want |= BIT(VU_F_PROTOCOL_FEATURES);
	fe->neg.features = fe->neg.features_offered & want;
	fe->neg.event_idx = fe->neg.features & BIT(VIRTIO_RING_F_EVENT_IDX);
	fe->neg.indirect = fe->neg.features & BIT(VIRTIO_RING_F_INDIRECT_DESC);
	vu_u64(fe, true, VU_SET_FEATURES, fe->neg.features, NULL, 0,
	       "SET_FEATURES");
}

void
region_bytes(uint8_t *p, int r)
{
	put64(p, r ? BOUNDARY : GPA_BASE);
	put64(p + 8, REGION_SIZE);
	put64(p + 16, r ? UADDR1 : UADDR0);
	put64(p + 24, r ? REGION_SIZE : 0);
}

void
set_memory(struct fe *fe, bool add_mem_reg)
{
	if (add_mem_reg) {
		int r;
		for (r = 0; r < 2; r++) {
			uint8_t b[40] = { 0 };
			region_bytes(b + 8, r);
			vu_ok(fe, VU_ADD_MEM_REG, b, sizeof b, &fe->memfd, 1,
			      "ADD_MEM_REG");
		}
	} else {
		uint8_t b[8 + 64] = { 0 };
		int fds[2] = { fe->memfd, fe->memfd };
		put32(b, 2);
		region_bytes(b + 8, 0);
		region_bytes(b + 40, 1);
		vu_ok(fe, VU_SET_MEM_TABLE, b, sizeof b, fds, 2,
		      "SET_MEM_TABLE");
	}
}

/* SET_VRING_NUM/BASE/ADDR/KICK/CALL for one queue, QEMU's order. */
void
ring_start(struct fe *fe, int qi, uint16_t base)
{
	struct vq *q = &fe->vq[qi];
	uint8_t a[40] = { 0 };
	vu_state(fe, true, VU_SET_VRING_NUM, (uint32_t)qi, q->num,
		 "SET_VRING_NUM");
	vu_state(fe, true, VU_SET_VRING_BASE, (uint32_t)qi, base,
		 "SET_VRING_BASE");
	put32(a, (uint32_t)qi);
	put64(a + 8, gpa2uaddr(q->desc));
	put64(a + 16, gpa2uaddr(q->used));
	put64(a + 24, gpa2uaddr(q->avail));
	vu_ok(fe, VU_SET_VRING_ADDR, a, sizeof a, NULL, 0, "SET_VRING_ADDR");
	vu_u64(fe, true, VU_SET_VRING_KICK, (uint64_t)qi, &q->kick_r, 1,
	       "SET_VRING_KICK");
	vu_u64(fe, true, VU_SET_VRING_CALL, (uint64_t)qi, &q->call_w, 1,
	       "SET_VRING_CALL");
	q->active = true;
}

void
ring_enable(struct fe *fe, int qi, uint32_t on)
{
	if (fe->neg.proto)
		vu_state(fe, true, VU_SET_VRING_ENABLE, (uint32_t)qi, on,
			 "SET_VRING_ENABLE");
}

void
rings_setup(struct fe *fe, bool enable)
{
	int q;
	layout(fe, fe->iopt.qsize, fe->iopt.tx_cross);
	for (q = 0; q < NQ; q++) {
		vq_make_fds(fe, &fe->vq[q], fe->iopt.pipes);
		vq_init(fe, q, fe->iopt.qsize, fe->iopt.base);
	}
	for (q = 0; q < NQ; q++)
		ring_start(fe, q, fe->iopt.base);
	if (enable)
		for (q = 0; q < NQ; q++)
			ring_enable(fe, q, 1);
}
