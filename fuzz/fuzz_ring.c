/*
 * fuzz/fuzz_ring.c - libFuzzer target: arbitrary guest memory and ring
 * state behind the console device: vhu_queue_pop/peek/push, descriptor
 * chains, notifications, and the console's queues (control handshake,
 * guest output, host input).
 *
 * Input: a fixed header that sets the device up, then events (fuzz.h).
 *
 *   u32 guest memory size
 *   u64 features            sent with SET_FEATURES (unoffered bits: refused)
 *   u8  regions             1 + regions % 4 regions of the guest memory,
 *   4 x { u64 gpa, size, uaddr, mmap_offset }        sent with SET_MEM_TABLE
 *   4 x queue { u8 flags, u16 num, u16 base, u64 desc, used, avail }
 *       flags bit 0: set the ring up: SET_VRING_NUM, _BASE, _ADDR (frontend
 *       addresses), _KICK and _CALL with eventfds, or pipes with bit 2 (as
 *       user-mode-linux passes them); bit 1: SET_VRING_ENABLE(1) after that
 *   WRITE and ZERO events: guest memory as it is before the setup
 *   WRITE, ZERO, KICK, INPUT and HANGUP events, where KICK and HANGUP name
 *       a queue (% 4), not a peer
 *
 * The setup goes through the real message handlers, so every state it
 * makes is one a frontend can reach.
 *
 * VC_SNAPSHOT=DIR in the environment makes seeds: each input is then a
 * recording of tests/frontend (an input of fuzz_vhu).  It is replayed, and
 * where a burst of guest activity starts (a KICK or INPUT when a ring runs)
 * the device and guest memory are written to DIR as an input of this
 * target, followed by the burst's events.  fuzz/run.sh does this.
 */
#include <poll.h>

#include "fuzz.h"

#define NQ          4
#define NREGIONS    4
#define HEADER_SIZE (4 + 8 + 1 + NREGIONS * 32 + NQ * (1 + 2 + 2 + 3 * 8))
#define RING_EVENTS (EV_GUEST | EV_BIT(EV_HANGUP))

enum { Q_SETUP = 1, Q_ENABLE = 2, Q_PIPES = 4 };

struct ring_setup {
	uint32_t mem_size;
	uint64_t features;
	unsigned nregions;
	struct { uint64_t gpa, size, uaddr, mmap_offset; } region[NREGIONS];
	struct {
		uint8_t flags;
		uint16_t num, base;
		uint64_t desc, used, avail;
	} queue[NQ];
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Peer number of each queue's kick fd, -1 without one. */
static int kick_peer[NQ];

/* ---- the header ----------------------------------------------------------- */

static uint64_t
get_le(const uint8_t **p, int n)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < n; i++)
		v |= (uint64_t)(*p)[i] << 8 * i;
	*p += n;
	return v;
}

static void
put_le(uint8_t **p, uint64_t v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		(*p)[i] = (uint8_t)(v >> 8 * i);
	*p += n;
}

static int
header_take(struct input *in, struct ring_setup *rs)
{
	const uint8_t *p;
	unsigned i;

	if (!take(in, HEADER_SIZE, &p))
		return 0;
	rs->mem_size = (uint32_t)get_le(&p, 4);
	rs->features = get_le(&p, 8);
	rs->nregions = 1 + (unsigned)get_le(&p, 1) % NREGIONS;
	for (i = 0; i < NREGIONS; i++) {
		rs->region[i].gpa = get_le(&p, 8);
		rs->region[i].size = get_le(&p, 8);
		rs->region[i].uaddr = get_le(&p, 8);
		rs->region[i].mmap_offset = get_le(&p, 8);
	}
	for (i = 0; i < NQ; i++) {
		rs->queue[i].flags = (uint8_t)get_le(&p, 1);
		rs->queue[i].num = (uint16_t)get_le(&p, 2);
		rs->queue[i].base = (uint16_t)get_le(&p, 2);
		rs->queue[i].desc = get_le(&p, 8);
		rs->queue[i].used = get_le(&p, 8);
		rs->queue[i].avail = get_le(&p, 8);
	}
	return 1;
}

static void
header_put(uint8_t *p, const struct ring_setup *rs)
{
	unsigned i;

	put_le(&p, rs->mem_size, 4);
	put_le(&p, rs->features, 8);
	put_le(&p, rs->nregions - 1, 1);
	for (i = 0; i < NREGIONS; i++) {
		put_le(&p, rs->region[i].gpa, 8);
		put_le(&p, rs->region[i].size, 8);
		put_le(&p, rs->region[i].uaddr, 8);
		put_le(&p, rs->region[i].mmap_offset, 8);
	}
	for (i = 0; i < NQ; i++) {
		put_le(&p, rs->queue[i].flags, 1);
		put_le(&p, rs->queue[i].num, 2);
		put_le(&p, rs->queue[i].base, 2);
		put_le(&p, rs->queue[i].desc, 8);
		put_le(&p, rs->queue[i].used, 8);
		put_le(&p, rs->queue[i].avail, 8);
	}
}

/* ---- the setup, as vhost-user requests ---------------------------------- */

static void
request(uint32_t req, const uint8_t *payload, uint32_t size,
        const struct fd_spec *fds, unsigned nfds)
{
	uint8_t buf[VHOST_USER_HDR_SIZE + 8 + 32 * NREGIONS], *p = buf;
	struct event ev;

	put_le(&p, req, 4);
	put_le(&p, VHOST_USER_VERSION, 4);
	put_le(&p, size, 4);
	memcpy(p, payload, size);
	memset(&ev, 0, sizeof ev);
	ev.op = EV_MSG;
	ev.bytes = buf;
	ev.len = VHOST_USER_HDR_SIZE + size;
	for (ev.nfds = 0; ev.nfds < nfds; ev.nfds++)
		ev.fds[ev.nfds] = fds[ev.nfds];
	event_run(&ev);
}

/* A request with a u64, or two u32s, as its payload. */
static void
request_u64(uint32_t req, uint64_t v, const struct fd_spec *fd)
{
	uint8_t b[8], *p = b;

	put_le(&p, v, 8);
	request(req, b, sizeof b, fd, fd != NULL);
}

static void
request_state(uint32_t req, uint32_t q, uint32_t v)
{
	request_u64(req, (uint64_t)v << 32 | q, NULL);
}

static void
set_mem_table(const struct ring_setup *rs)
{
	struct fd_spec guest[NREGIONS];
	uint8_t b[8 + 32 * NREGIONS], *p = b;
	unsigned i;

	put_le(&p, rs->nregions, 8);
	for (i = 0; i < rs->nregions; i++) {
		put_le(&p, rs->region[i].gpa, 8);
		put_le(&p, rs->region[i].size, 8);
		put_le(&p, rs->region[i].uaddr, 8);
		put_le(&p, rs->region[i].mmap_offset, 8);
		guest[i] = (struct fd_spec){ FD_GUEST, 0 };
	}
	request(VHOST_USER_SET_MEM_TABLE, b, 8 + 32 * rs->nregions, guest, rs->nregions);
}

static void
ring_setup(const struct ring_setup *rs, unsigned q)
{
	int pipes = rs->queue[q].flags & Q_PIPES;
	struct fd_spec kick = { pipes ? FD_PIPE_R : FD_EVENTFD, 0 };
	struct fd_spec call = { pipes ? FD_PIPE_W : FD_EVENTFD, 0 };
	uint8_t a[40] = { 0 }, *p = a;

	request_state(VHOST_USER_SET_VRING_NUM, q, rs->queue[q].num);
	request_state(VHOST_USER_SET_VRING_BASE, q, rs->queue[q].base);
	put_le(&p, q, 8);    /* index, flags 0 */
	put_le(&p, rs->queue[q].desc, 8);
	put_le(&p, rs->queue[q].used, 8);
	put_le(&p, rs->queue[q].avail, 8);
	request(VHOST_USER_SET_VRING_ADDR, a, sizeof a, NULL, 0);
	kick_peer[q] = (int)fe.npeers;
	request_u64(VHOST_USER_SET_VRING_KICK, q, &kick);
	request_u64(VHOST_USER_SET_VRING_CALL, q, &call);
}

/* In QEMU's order: features, memory, rings, then enable them. */
static void
device_setup(const struct ring_setup *rs)
{
	unsigned q;

	request_u64(VHOST_USER_SET_FEATURES, rs->features, NULL);
	set_mem_table(rs);
	for (q = 0; q < NQ; q++) {
		kick_peer[q] = -1;
		if (rs->queue[q].flags & Q_SETUP)
			ring_setup(rs, q);
	}
	for (q = 0; q < NQ; q++)
		if (rs->queue[q].flags & Q_ENABLE)
			request_state(VHOST_USER_SET_VRING_ENABLE, q, 1);
}

/* KICK and HANGUP name a queue here: its kick fd's peer. */
static void
ring_event_run(const struct event *ev)
{
	struct event e = *ev;

	if (e.op == EV_KICK || e.op == EV_HANGUP) {
		if (kick_peer[e.arg % NQ] < 0)
			return;
		e.arg = (uint8_t)kick_peer[e.arg % NQ];
	}
	event_run(&e);
}

static void
ring_fuzz(struct input in)
{
	struct ring_setup rs;
	struct event ev;
	int more;

	if (!header_take(&in, &rs))
		return;
	frontend_begin();
	memset(&ev, 0, sizeof ev);
	ev.op = EV_SESSION;
	ev.len = rs.mem_size;
	event_run(&ev);
	while ((more = event_next(&in, RING_EVENTS, &ev)) &&
	       (ev.op == EV_WRITE || ev.op == EV_ZERO))
		event_run(&ev);
	device_setup(&rs);
	for (; more; more = event_next(&in, RING_EVENTS, &ev))
		ring_event_run(&ev);
	frontend_end();
}

/* ---- seeds: snapshots of a replayed recording ---------------------------- */

#define SNAPSHOT_EVENTS 256  /* events after the state, at most */
#define ZERO_GAP        32   /* zero bytes that split a memory run */

struct snapshot {
	uint8_t *buf;
	size_t len, cap;
	unsigned nevents;
	int open;
};

static const char *snapshot_dir;

static void
snap_put(struct snapshot *s, const void *b, size_t n)
{
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		if (!(s->buf = realloc(s->buf, s->cap)))
			fuzz_fail("out of memory");
	}
	memcpy(s->buf + s->len, b, n);
	s->len += n;
}

static void
snap_put_le(struct snapshot *s, uint64_t v, int n)
{
	uint8_t b[8], *p = b;

	put_le(&p, v, n);
	snap_put(s, b, (size_t)n);
}

static void
snap_write_event(struct snapshot *s, uint32_t off, const uint8_t *b, uint32_t len)
{
	snap_put_le(s, EV_WRITE, 1);
	snap_put_le(s, off, 4);
	snap_put_le(s, len, 2);
	snap_put(s, b, len);
}

/* Guest memory as WRITE events: its runs of non-zero bytes, split where
 * ZERO_GAP zeros come in a row, and at 64 KiB. */
static void
snap_memory(struct snapshot *s)
{
	const uint8_t *mem = fe.guest;
	uint32_t size = fe.guest_size, i = 0, start, end;

	for (;;) {
		while (i < size && !mem[i])
			i++;
		if (i == size)
			return;
		start = end = i;
		for (; i < size && i - start < 65535 && i - end < ZERO_GAP; i++)
			if (mem[i])
				end = i + 1;
		snap_write_event(s, start, mem + start, end - start);
		i = end;
	}
}

static int
fd_is_pipe(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* The device's state as a header (0: nothing this target can express). */
static int
state_get(struct ring_setup *rs)
{
	const struct vhu_dev *d = &con.vhu;
	unsigned i, running = 0;

	if (!fe.guest || d->nregions < 1 || d->nregions > NREGIONS)
		return 0;
	memset(rs, 0, sizeof *rs);
	rs->mem_size = fe.guest_size;
	rs->features = d->features;
	rs->nregions = d->nregions;
	for (i = 0; i < d->nregions; i++) {
		rs->region[i].gpa = d->regions[i].gpa;
		rs->region[i].size = d->regions[i].size;
		rs->region[i].uaddr = d->regions[i].uaddr;
		rs->region[i].mmap_offset = d->regions[i].mmap_offset;
	}
	for (i = 0; i < NQ; i++) {
		const struct vhu_vring *vq = &d->vq[i];

		if (vq->kick_fd < 0 || !vq->addr_set || !vq->num)
			continue;
		running += vq->desc != NULL;
		rs->queue[i].flags = Q_SETUP | (vq->enabled ? Q_ENABLE : 0) |
		                     (fd_is_pipe(vq->kick_fd) ? Q_PIPES : 0);
		rs->queue[i].num = (uint16_t)vq->num;
		rs->queue[i].base = vq->last_avail;
		rs->queue[i].desc = vq->desc_uaddr;
		rs->queue[i].used = vq->used_uaddr;
		rs->queue[i].avail = vq->avail_uaddr;
	}
	return running > 0;
}

static void
snapshot_open(struct snapshot *s)
{
	uint8_t h[HEADER_SIZE];
	struct ring_setup rs;

	if (!state_get(&rs))
		return;
	header_put(h, &rs);
	snap_put(s, h, sizeof h);
	snap_memory(s);
	s->open = 1;
}

static void
snapshot_close(struct snapshot *s)
{
	char path[4096];
	uint64_t hash = 14695981039346656037ull;
	size_t i;
	FILE *f;

	if (s->open && s->nevents) {
		for (i = 0; i < s->len; i++)
			hash = (hash ^ s->buf[i]) * 1099511628211ull;
		snprintf(path, sizeof path, "%s/ring-%016llx", snapshot_dir,
		         (unsigned long long)hash);
		if (!(f = fopen(path, "wb")) || fwrite(s->buf, 1, s->len, f) != s->len ||
		    fclose(f))
			fuzz_fail("writing %s: %s", path, strerror(errno));
	}
	free(s->buf);
	memset(s, 0, sizeof *s);
}

static int
fd_readable(int fd)
{
	struct pollfd pf = { fd, POLLIN, 0 };

	return fd >= 0 && poll(&pf, 1, 0) > 0 && (pf.revents & POLLIN);
}

/* Run a KICK; which queue's kick fd did it reach?  -1: none. */
static int
kick_to_queue(const struct event *ev)
{
	int before[NQ], q, hit = -1;

	for (q = 0; q < NQ; q++)
		before[q] = fd_readable(con.vhu.vq[q].kick_fd);
	peer_kick(ev->arg);
	for (q = 0; q < NQ; q++)
		if (!before[q] && fd_readable(con.vhu.vq[q].kick_fd))
			hit = q;
	daemon_settle();
	return hit;
}

/* Run a guest event of an open snapshot, and add it there. */
static void
snapshot_event(struct snapshot *s, const struct event *ev)
{
	int q;

	s->nevents++;
	switch (ev->op) {
	case EV_KICK:
		if ((q = kick_to_queue(ev)) >= 0) {
			snap_put_le(s, EV_KICK, 1);
			snap_put_le(s, (uint64_t)q, 1);
		}
		return;
	case EV_WRITE:
		snap_write_event(s, ev->off, ev->bytes, ev->len);
		break;
	case EV_ZERO:
		snap_put_le(s, EV_ZERO, 1);
		snap_put_le(s, ev->off, 4);
		snap_put_le(s, ev->len, 4);
		break;
	default: /* EV_INPUT */
		snap_put_le(s, EV_INPUT, 1);
		snap_put_le(s, ev->len, 2);
		snap_put(s, ev->bytes, ev->len);
	}
	event_run(ev);
}

static void
snapshot_recording(struct input in)
{
	struct snapshot s = { 0 };
	struct event ev;

	frontend_begin();
	while (event_next(&in, EV_ALL, &ev)) {
		if (!(EV_GUEST & EV_BIT(ev.op)) || s.nevents == SNAPSHOT_EVENTS)
			snapshot_close(&s);
		if (!s.open && (ev.op == EV_KICK || ev.op == EV_INPUT))
			snapshot_open(&s);
		if (s.open)
			snapshot_event(&s, &ev);
		else
			event_run(&ev);
	}
	snapshot_close(&s);
	frontend_end();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int env_read;
	struct input in = { data, size };

	if (!env_read) {
		snapshot_dir = getenv("VC_SNAPSHOT");
		env_read = 1;
	}
	if (snapshot_dir)
		snapshot_recording(in);
	else
		ring_fuzz(in);
	return 0;
}
