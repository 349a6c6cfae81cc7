/*
 * tests/fe/steps.c - step arguments, and the setup and data steps
 * (contract: frontend.h).
 */
#include "frontend.h"

/* ---------------------------------------------------------------------- */
/* step argument handling                                                  */

const char *
opt_next(struct fe *fe)
{
	if (fe->ai < fe->argc && !strncmp(fe->argv[fe->ai], "--", 2))
		return fe->argv[fe->ai++];
	return NULL;
}

const char *
arg_next(struct fe *fe, const char *what)
{
	if (fe->ai >= fe->argc)
		fail(fe, "missing argument: %s", what);
	return fe->argv[fe->ai++];
}

bool
parse_num(const char *s, double *out)
{
	char *e;
	double d;
	if (!s || !*s)
		return false;
	errno = 0;
	d = strtod(s, &e);
	if (*e || errno)
		return false;
	*out = d;
	return true;
}

unsigned long long
parse_ull(struct fe *fe, const char *s, const char *what)
{
	char *e;
	unsigned long long v;
	errno = 0;
	v = strtoull(s, &e, 0);
	if (!*s || *e || errno)
		fail(fe, "bad %s: %s", what, s);
	return v;
}

/* Optional trailing SECONDS argument. */
double
opt_seconds(struct fe *fe, double dflt)
{
	double d;
	if (fe->ai < fe->argc && parse_num(fe->argv[fe->ai], &d)) {
		fe->ai++;
		return d;
	}
	return dflt;
}

int
opt_queue(struct fe *fe)
{
	double d;
	if (fe->ai < fe->argc && parse_num(fe->argv[fe->ai], &d)) {
		fe->ai++;
		if (d < 0 || d >= NQ || d != (int)d)
			fail(fe, "bad queue index %s", fe->argv[fe->ai - 1]);
		return (int)d;
	}
	return VIRTIO_CONSOLE_PORT0_TXQ;
}

const char *
opt_value(struct fe *fe, const char *opt, const char *name)
{
	size_t l = strlen(name);
	if (!strncmp(opt, name, l)) {
		if (opt[l] == '=')
			return opt + l + 1;
		if (!opt[l])
			return arg_next(fe, name);
	}
	return NULL;
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* TEXT with C escapes into a byte buffer (malloc'ed). */
uint8_t *
unescape(struct fe *fe, const char *s, size_t *len)
{
	uint8_t *o = malloc(strlen(s) + 1);
	size_t n = 0;
	if (!o)
		fail(fe, "out of memory");
	while (*s) {
		if (*s != '\\' || !s[1]) {
			o[n++] = (uint8_t)*s++;
			continue;
		}
		s++;
		switch (*s) {
		case 'n': o[n++] = '\n'; s++; break;
		case 'r': o[n++] = '\r'; s++; break;
		case 't': o[n++] = '\t'; s++; break;
		case '0': o[n++] = 0; s++; break;
		case '\\': o[n++] = '\\'; s++; break;
		case 'x':
			if (hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
				o[n++] = (uint8_t)(hexval(s[1]) * 16 +
						   hexval(s[2]));
				s += 3;
				break;
			}
			/* fall through */
		default:
			o[n++] = '\\';
			break;
		}
	}
	*len = n;
	return o;
}

/* ---------------------------------------------------------------------- */
/* steps: setup and data                                                   */

void
need_rings(struct fe *fe)
{
	if (!fe->vq[0].active)
		fail(fe, "the rings are not set up: run init first");
}

void
step_init(struct fe *fe)
{
	const char *o, *v;
	memset(&fe->iopt, 0, sizeof fe->iopt);
	fe->iopt.qsize = 256;
	while ((o = opt_next(fe))) {
		if (!strcmp(o, "--no-event-idx"))
			fe->iopt.no_event_idx = true;
		else if (!strcmp(o, "--no-indirect"))
			fe->iopt.no_indirect = true;
		else if (!strcmp(o, "--pipes"))
			fe->iopt.pipes = true;
		else if (!strcmp(o, "--no-protocol-features"))
			fe->iopt.no_proto = true;
		else if (!strcmp(o, "--no-reply-ack"))
			fe->iopt.no_reply_ack = true;
		else if (!strcmp(o, "--add-mem-reg"))
			fe->iopt.add_mem_reg = true;
		else if (!strcmp(o, "--tx-cross"))
			fe->iopt.tx_cross = true;
		else if (!strcmp(o, "--size"))
			fe->iopt.size = true;
		else if (!strcmp(o, "--no-multiport"))
			fe->iopt.no_multiport = true;
		else if ((v = opt_value(fe, o, "--queue-size")))
			fe->iopt.qsize =
				(unsigned)parse_ull(fe, v, "queue size");
		else if ((v = opt_value(fe, o, "--base")))
			fe->iopt.base = (uint16_t)parse_ull(fe, v, "base");
		else if ((v = opt_value(fe, o, "--ports")))
			fe->iopt.ports = (unsigned)parse_ull(fe, v, "ports");
		else
			fail(fe, "unknown init option %s", o);
	}
	if (!fe->iopt.qsize || fe->iopt.qsize > MAX_QSIZE ||
	    (fe->iopt.qsize & (fe->iopt.qsize - 1)))
		fail(fe, "--queue-size must be a power of two <= %u",
		     MAX_QSIZE);
	if (fe->iopt.add_mem_reg && fe->iopt.no_proto)
		fail(fe, "--add-mem-reg needs protocol features");
	negotiate(fe, !fe->iopt.no_proto, !fe->iopt.no_reply_ack);
	if (fe->iopt.add_mem_reg &&
	    !(fe->neg.pfeatures & BIT(PF_CONFIGURE_MEM_SLOTS)))
		fail(fe, "--add-mem-reg: CONFIGURE_MEM_SLOTS not offered");
	set_features(fe);
	set_memory(fe, fe->iopt.add_mem_reg);
	rings_setup(fe, true);
	note(fe,
	     "init: features 0x%" PRIx64 " protocol 0x%" PRIx64
	     " queue size %u",
	     fe->neg.features, fe->neg.pfeatures, fe->iopt.qsize);
}

void
handshake(struct fe *fe, unsigned rx_bufs)
{
	need_rings(fe);
	fe->crx_nbufs = fe->iopt.qsize < CRX_MAX ? fe->iopt.qsize : CRX_MAX;
	crx_refill(fe);
	ctrl_send(fe, VIRTIO_CONSOLE_BAD_ID, VIRTIO_CONSOLE_DEVICE_READY, 1);
	ctrl_expect(fe, 0, VIRTIO_CONSOLE_PORT_ADD, 1);
	fe->rx0_nbufs = rx_bufs;
	rx0_refill(fe);
	ctrl_send(fe, 0, VIRTIO_CONSOLE_PORT_READY, 1);
	ctrl_expect(fe, 0, VIRTIO_CONSOLE_CONSOLE_PORT, 1);
	ctrl_expect(fe, 0, VIRTIO_CONSOLE_PORT_OPEN, 1);
	ctrl_send(fe, 0, VIRTIO_CONSOLE_PORT_OPEN, 1);
}

unsigned
default_rx_bufs(struct fe *fe)
{
	return fe->iopt.qsize < RX0_DEFAULT ? fe->iopt.qsize : RX0_DEFAULT;
}


void
step_handshake(struct fe *fe)
{
	const char *o, *v;
	unsigned rx = default_rx_bufs(fe);
	unsigned cols = 0, rows = 0;
	need_rings(fe);
	while ((o = opt_next(fe))) {
		if ((v = opt_value(fe, o, "--rx-bufs")))
			rx = (unsigned)parse_ull(fe, v, "rx buffers");
		else if ((v = opt_value(fe, o, "--resize"))) {
			if (sscanf(v, "%ux%u", &cols, &rows) != 2)
				fail(fe, "handshake --resize=COLSxROWS: %s", v);
		} else
			fail(fe, "unknown handshake option %s", o);
	}
	if (rx > fe->iopt.qsize)
		rx = fe->iopt.qsize;
	if (rx > RX0_MAX)
		rx = RX0_MAX;
	handshake(fe, rx);
	if (cols)
		expect_resize(fe, cols, rows);
}

static bool
cond_tx_slot(struct fe *fe, void *arg)
{
	return !fe->tx0_busy[fe->tx0_next % TX0_SLOTS] &&
	       fe->vq[1].nfree >= *(unsigned *)arg;
}

/* One transmit buffer: mode 0 one descriptor, 1 a chain, 2 indirect. */
void
tx_submit(struct fe *fe, const uint8_t *data, size_t len, int mode)
{
	struct vq *q = &fe->vq[VIRTIO_CONSOLE_PORT0_TXQ];
	struct seg sg[3];
	int s, n = 1, i;
	size_t off = 0;
	if (len == 0 || len > BUF_SIZE)
		fail(fe, "internal: tx length %zu", len);
	unsigned need;
	if (mode == 2 && !fe->neg.indirect)
		fail(fe, "indirect descriptors were not negotiated");
	if (mode) {
		n = len < 3 ? (int)len : 3;
		if (mode == 1 && (unsigned)n > q->num)
			n = (int)q->num;
	}
	need = mode == 1 ? (unsigned)n : 1;
	if (!service(fe, deadline_in(fe->timeout_s), cond_tx_slot, &need,
		     false))
		fail(fe, "port0 transmitq: no buffer came back within %g s",
		     fe->timeout_s);
	s = (int)(fe->tx0_next++ % TX0_SLOTS);
	fe->tx0_busy[s] = true;
	if (!fe->tx_repeat || fe->tx0_repeat_len[s] != len)
		gw(fe, tx0_gpa(fe, s), data, len);
	fe->tx0_repeat_len[s] = fe->tx_repeat ? len : 0;
	for (i = 0; i < n; i++) {
		size_t l = i == n - 1 ? len - off : len / (size_t)n;
		sg[i] = (struct seg){ tx0_gpa(fe, s) + off, (uint32_t)l,
				      false };
		off += l;
	}
	vq_add(fe, q, sg, n, mode == 2, TK_TX0, s);
	vq_publish(fe, q, false);
}

/* write-burst N TEXT: N buffers, all holding TEXT, made available at once
 * with a single kick: more than the device takes in one pass. */
void
step_write_burst(struct fe *fe)
{
	struct vq *q = &fe->vq[VIRTIO_CONSOLE_PORT0_TXQ];
	unsigned long long n = parse_ull(fe, arg_next(fe, "N"), "buffer count"),
			   i;
	unsigned need = 1;
	size_t len;
	uint8_t *t = unescape(fe, arg_next(fe, "TEXT"), &len);
	struct seg sg;
	int s;
	need_rings(fe);
	if (len == 0 || len > BUF_SIZE)
		fail(fe, "write-burst: TEXT must be 1..%u bytes", BUF_SIZE);
	if (!service(fe, deadline_in(fe->timeout_s), cond_tx_slot, &need,
		     false))
		fail(fe, "port0 transmitq: no buffer came back within %g s",
		     fe->timeout_s);
	if (n > q->nfree)
		fail(fe, "write-burst: %llu buffers, the queue has %u free", n,
		     q->nfree);
	s = (int)(fe->tx0_next++ % TX0_SLOTS);
	fe->tx0_busy[s] = true;
	gw(fe, tx0_gpa(fe, s), t, len);
	fe->tx0_repeat_len[s] = 0;
	for (i = 0; i < n; i++) {
		sg = (struct seg){ tx0_gpa(fe, s), (uint32_t)len, false };
		vq_add(fe, q, &sg, 1, false, TK_TX0, s);
	}
	vq_publish(fe, q, true);
	wait_q_idle(fe, VIRTIO_CONSOLE_PORT0_TXQ, "write-burst");
}

static void
write_text(struct fe *fe, int mode)
{
	size_t len, off;
	uint8_t *t = unescape(fe, arg_next(fe, "TEXT"), &len);
	need_rings(fe);
	for (off = 0; off < len; off += BUF_SIZE) {
		size_t l = len - off < BUF_SIZE ? len - off : BUF_SIZE;
		tx_submit(fe, t + off, l, mode);
		wait_q_idle(fe, VIRTIO_CONSOLE_PORT0_TXQ, "write");
	}
	free(t);
}

void
step_write(struct fe *fe)
{
	write_text(fe, 0);
}
void
step_write_chain(struct fe *fe)
{
	write_text(fe, 1);
}
void
step_write_indirect(struct fe *fe)
{
	write_text(fe, 2);
}

struct inflight_arg { unsigned max; };

static bool
cond_inflight(struct fe *fe, void *arg)
{
	return fe->vq[1].inflight < ((struct inflight_arg *)arg)->max;
}

void
step_write_bytes(struct fe *fe)
{
	unsigned long long n = parse_ull(fe, arg_next(fe, "N"), "byte count"),
			   k = 0;
	struct inflight_arg ia = { 8 };
	const char *o, *v;
	uint8_t b[BUF_SIZE];
	bool repeat = false;
	while ((o = opt_next(fe))) {
		if ((v = opt_value(fe, o, "--inflight")))
			ia.max = (unsigned)parse_ull(fe, v, "inflight");
		else if (!strcmp(o, "--repeat"))
			repeat = true;
		else
			fail(fe, "unknown write-bytes option %s", o);
	}
	need_rings(fe);
	if (ia.max < 1)
		ia.max = 1;
	if (ia.max > fe->vq[1].num)
		ia.max = fe->vq[1].num;
	if (ia.max > TX0_SLOTS)
		ia.max = TX0_SLOTS;
	while (k < n) {
		size_t l = n - k < BUF_SIZE ? (size_t)(n - k) : BUF_SIZE, i;
		/* data_pat(k + i), stepping the product: the benchmarks must
		 * not wait for the pattern */
		uint32_t x = (uint32_t)(repeat ? 0 : k) * 2654435761u;
		for (i = 0; i < l && (!repeat || k == 0); i++, x += 2654435761u)
			b[i] = (uint8_t)((x >> 24) ^ (x >> 13));
		if (!service(fe, deadline_in(fe->timeout_s), cond_inflight, &ia,
			     false))
			fail(fe,
			     "write-bytes: port0 transmitq stalled after %llu "
			     "bytes",
			     k);
		fe->tx_repeat = repeat;
		tx_submit(fe, b, l, 0);
		fe->tx_repeat = false;
		k += l;
	}
	wait_q_idle(fe, VIRTIO_CONSOLE_PORT0_TXQ, "write-bytes");
}

static bool
cond_sink(struct fe *fe, void *arg)
{
	return fe->rx_sink.got >= *(uint64_t *)arg;
}

int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* read-bytes N [--check] [SECONDS]: host -> guest throughput.  Every
 * receive buffer goes back to the device as soon as it is used; the bytes
 * are counted, not kept (--check: they must be the data pattern).  Prints
 * "read-bytes: N bytes in T ns" on stdout, timed from the first byte (as
 * bench/tcpbench's loopback baseline is). */
void
step_read_bytes(struct fe *fe)
{
	uint64_t n = parse_ull(fe, arg_next(fe, "N"), "byte count");
	const char *o;
	double secs;
	bool check = false;
	while ((o = opt_next(fe))) {
		if (!strcmp(o, "--check"))
			check = true;
		else
			fail(fe, "unknown read-bytes option %s", o);
	}
	secs = opt_seconds(fe, fe->timeout_s);
	need_rings(fe);
	fe->rx_sink.on = true;
	fe->rx_sink.check = check;
	fe->rx_sink.got = 0;
	/* What came during the steps before counts (the writer may start at
	 * once): it is the start of the N bytes. */
	rx_sink_take(fe, fe->rxd, fe->rxd_len);
	fe->rx_total -= fe->rxd_len;
	rxd_consume(fe, fe->rxd_len);
	if (!service(fe, deadline_in(secs), cond_sink, &n, false))
		fail(fe,
		     "read-bytes: got %" PRIu64 " of %" PRIu64
		     " bytes within %g s",
		     fe->rx_sink.got, n, secs);
	printf("read-bytes: %" PRIu64 " bytes in %" PRId64 " ns\n",
	       fe->rx_sink.got, now_ns() - fe->rx_sink.first);
	fflush(stdout);
	fe->rx_sink.on = false;
	if (fe->rx_sink.got > n)
		fail(fe, "read-bytes: %" PRIu64 " bytes, more than %" PRIu64,
		     fe->rx_sink.got, n);
}

static bool
cond_rx_any(struct fe *fe, void *arg)
{
	(void)arg;
	return fe->rxd_len > 0;
}

/* echo-loop N [SECONDS]: write back every byte received, as soon as it is
 * received (one transmit buffer per receive), until N bytes went back: the
 * guest end of the keystroke latency benchmark. */
void
step_echo_loop(struct fe *fe)
{
	uint64_t n = parse_ull(fe, arg_next(fe, "N"), "byte count"), done = 0;
	double secs = opt_seconds(fe, fe->timeout_s);
	static uint8_t chunk[BUF_SIZE];
	need_rings(fe);
	while (done < n) {
		size_t l;
		if (!service(fe, deadline_in(secs), cond_rx_any, NULL, false))
			fail(fe,
			     "echo-loop: nothing received within %g s after "
			     "%" PRIu64 " bytes",
			     secs, done);
		/* Copied out first: tx_submit() serves the rings while it waits
		 * for room, and what arrives then may move fe->rxd. */
		l = fe->rxd_len < BUF_SIZE ? fe->rxd_len : BUF_SIZE;
		memcpy(chunk, fe->rxd, l);
		rxd_consume(fe, l);
		tx_submit(fe, chunk, l, 0);
		done += l;
	}
	wait_q_idle(fe, VIRTIO_CONSOLE_PORT0_TXQ, "echo-loop");
}

struct find_arg { const uint8_t *t; size_t len; };

static bool
cond_find(struct fe *fe, void *arg)
{
	struct find_arg *f = arg;
	return f->len == 0 ||
	       (fe->rxd_len && memmem(fe->rxd, fe->rxd_len, f->t, f->len));
}

/* The bytes P..P+N as printable text in B (escapes for the rest, "..."
 * when cut).  The caller owns B: a message that shows two texts (wanted and
 * received) needs two buffers, which one static buffer would not give. */
struct shown { char b[200]; };

static const char *
printable(struct shown *s, const uint8_t *p, size_t n)
{
	size_t i, o = 0;
	for (i = 0; i < n && o < sizeof s->b - 8; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			s->b[o++] = (char)p[i];
		else
			o += (size_t)sprintf(s->b + o, "\\x%02x", p[i]);
	}
	if (i < n)
		strcpy(s->b + o, "...");
	else
		s->b[o] = 0;
	return s->b;
}

/* The last (up to) 120 received bytes, not yet consumed, for a diagnostic. */
static const char *
printable_tail(struct shown *s, const struct fe *fe)
{
	size_t n = fe->rxd_len > 120 ? 120 : fe->rxd_len;
	/* nothing received may mean no buffer yet: no arithmetic on NULL */
	return printable(s, n ? fe->rxd + fe->rxd_len - n : fe->rxd, n);
}

void
step_expect(struct fe *fe)
{
	size_t len;
	uint8_t *t = unescape(fe, arg_next(fe, "TEXT"), &len);
	double secs = opt_seconds(fe, fe->timeout_s);
	struct find_arg f = { t, len };
	struct shown want, got;
	uint8_t *at;
	need_rings(fe);
	if (!service(fe, deadline_in(secs), cond_find, &f, false))
		fail(fe, "expected \"%s\" within %g s; "
		     "received (unconsumed, %zu bytes): \"%s\"",
		     printable(&want, t, len), secs, fe->rxd_len,
		     printable_tail(&got, fe));
	at = len && fe->rxd_len ? memmem(fe->rxd, fe->rxd_len, t, len) : NULL;
	if (at)
		rxd_consume(fe, (size_t)(at - fe->rxd) + len);
	free(t);
}

struct all_arg { uint8_t **t; size_t *len; int n; };

static bool
cond_all(struct fe *fe, void *arg)
{
	struct all_arg *a = arg;
	int i;
	for (i = 0; i < a->n; i++)
		if (!fe->rxd_len ||
		    !memmem(fe->rxd, fe->rxd_len, a->t[i], a->len[i]))
			return false;
	return true;
}

void
step_expect_all(struct fe *fe)
{
	unsigned long long n = parse_ull(fe, arg_next(fe, "N"), "count");
	struct all_arg a;
	size_t end = 0;
	double secs;
	int i;
	if (n < 1 || n > 64)
		fail(fe, "expect-all: count 1..64");
	a.n = (int)n;
	a.t = calloc(n, sizeof *a.t);
	a.len = calloc(n, sizeof *a.len);
	if (!a.t || !a.len)
		fail(fe, "out of memory");
	for (i = 0; i < a.n; i++)
		a.t[i] = unescape(fe, arg_next(fe, "TEXT"), &a.len[i]);
	secs = opt_seconds(fe, fe->timeout_s);
	need_rings(fe);
	if (!service(fe, deadline_in(secs), cond_all, &a, false)) {
		struct shown want, got;
		for (i = 0; i < a.n && fe->rxd_len &&
		     memmem(fe->rxd, fe->rxd_len, a.t[i], a.len[i]); i++)
			;
		fail(fe, "expect-all: \"%s\" not received within %g s; "
		     "received: \"%s\"", printable(&want, a.t[i], a.len[i]),
		     secs, printable_tail(&got, fe));
	}
	for (i = 0; i < a.n; i++) {
		uint8_t *at = memmem(fe->rxd, fe->rxd_len, a.t[i], a.len[i]);
		size_t e = (size_t)(at - fe->rxd) + a.len[i];
		if (e > end)
			end = e;
		free(a.t[i]);
	}
	rxd_consume(fe, end);
	free(a.t);
	free(a.len);
}

static bool
cond_rxlen(struct fe *fe, void *arg)
{
	return fe->rxd_len >= *(size_t *)arg;
}

void
step_expect_bytes(struct fe *fe)
{
	size_t n = (size_t)parse_ull(fe, arg_next(fe, "N"), "byte count"), i;
	double secs = opt_seconds(fe, fe->timeout_s);
	need_rings(fe);
	if (!service(fe, deadline_in(secs), cond_rxlen, &n, false))
		fail(fe, "expect-bytes: got %zu of %zu bytes within %g s",
		     fe->rxd_len, n, secs);
	for (i = 0; i < n; i++)
		if (fe->rxd[i] != data_pat(i))
			fail(fe,
			     "expect-bytes: byte %zu is 0x%02x, want 0x%02x "
			     "(got [%s])",
			     i, fe->rxd[i], data_pat(i),
			     hex(fe->rxd + i, n - i < 16 ? n - i : 16));
	rxd_consume(fe, n);
}

void
step_check_memory(struct fe *fe)
{
	size_t i, bad = 0, first = 0, writable = 0;
	for (i = 0; i < MEM_SIZE; i++) {
		if (fe->wmap[i]) {
			writable++;
			continue;
		}
		if (fe->mem[i] != fe->shadow[i] && !bad++)
			first = i;
	}
	if (bad)
		fail(fe,
		     "check-memory: %zu byte(s) changed outside "
		     "device-writable buffers, first at gpa 0x%" PRIx64
		     " (0x%02x, want 0x%02x): [%s]",
		     bad, GPA_BASE + first, fe->mem[first], fe->shadow[first],
		     hex(fe->mem + first,
			 MEM_SIZE - first < 16 ? MEM_SIZE - first : 16));
	note(fe, "check-memory: ok (%zu bytes device-writable)", writable);
}

static void
stop_rings_and_check(struct fe *fe)
{
	int q;
	for (q = 0; q < NQ; q++)
		ring_enable(fe, q, 0);
	for (q = 0; q < NQ; q++) {
		uint8_t b[8];
		struct vu_msg m;
		uint32_t last;
		uint16_t uidx;
		put32(b, (uint32_t)q);
		put32(b + 4, 0);
		vu_send(fe, VU_GET_VRING_BASE, VU_VERSION, b, 8, NULL, 0);
		recv_reply(fe, &m, "GET_VRING_BASE");
		if (m.h.request != VU_GET_VRING_BASE || m.h.flags != 5 ||
		    m.h.size != 8 || get32(m.p) != (uint32_t)q)
			fail(fe,
			     "GET_VRING_BASE(%d): reply {%u, 0x%x, %u} [%s], "
			     "want {11, 0x5, 8} index %d",
			     q, m.h.request, m.h.flags, m.h.size,
			     hex(m.p, m.h.size), q);
		last = get32(m.p + 4);
		uidx = gload16(fe, fe->vq[q].used + 2);
		if (last > 0xffff ||
		    (uint16_t)(fe->vq[q].avail_idx - last) > fe->vq[q].num ||
		    (uint16_t)(last - uidx) > fe->vq[q].num)
			fail(fe,
			     "GET_VRING_BASE(%d): last_avail %u inconsistent "
			     "with avail idx %u, used idx %u",
			     q, last, fe->vq[q].avail_idx, uidx);
		if ((q == 1 || q == 3) && last != fe->vq[q].avail_idx)
			fail(fe,
			     "GET_VRING_BASE(%d): last_avail %u, but every "
			     "transmit buffer up to %u was used",
			     q, last, fe->vq[q].avail_idx);
		fe->vq[q].active = false;
	}
}

static void
restart_rings(struct fe *fe)
{
	int q;
	for (q = 0; q < NQ; q++) {
		vq_init(fe, q, fe->iopt.qsize, fe->iopt.base);
		fe->vq[q].active = false;
	}
	buffers_forget(fe);
	for (q = 0; q < NQ; q++)
		ring_start(fe, q, fe->iopt.base);
	for (q = 0; q < NQ; q++)
		ring_enable(fe, q, 1);
}

void
step_reset(struct fe *fe)
{
	need_rings(fe);
	stop_rings_and_check(fe);
	set_features(fe);
	restart_rings(fe);
	handshake(fe, default_rx_bufs(fe));
}

void
step_reset_device(struct fe *fe)
{
	need_rings(fe);
	vu_ok(fe, VU_RESET_DEVICE, NULL, 0, NULL, 0, "RESET_DEVICE");
	set_features(fe);
	set_memory(fe, fe->iopt.add_mem_reg);
	restart_rings(fe);
}

void
step_close(struct fe *fe)
{
	disconnect(fe);
}

void
step_reconnect(struct fe *fe)
{
	disconnect(fe);
	connect_probe(fe);
}

static bool
cond_eof(struct fe *fe, void *arg)
{
	(void)arg;
	return fe->sock_eof;
}

void
step_expect_eof(struct fe *fe)
{
	double secs = opt_seconds(fe, fe->timeout_s);
	if (fe->sock < 0)
		fail(fe, "not connected");
	if (!service(fe, deadline_in(secs), cond_eof, NULL, true))
		fail(fe, "the daemon did not close the connection within %g s",
		     secs);
}

static bool
cond_file(struct fe *fe, void *arg)
{
	(void)fe;
	return access((const char *)arg, F_OK) == 0;
}

void
step_hold(struct fe *fe)
{
	const char *f = arg_next(fe, "FILE");
	double secs = opt_seconds(fe, 30);
	bool ok;
	fe->service_tick_ms = 20;	/* a file appearing wakes nothing up */
	ok = service(fe, deadline_in(secs), cond_file, (void *)f, true);
	fe->service_tick_ms = -1;
	if (!ok)
		fail(fe, "hold: %s did not appear within %g s", f, secs);
}
