/*
 * vhu.c - vhost-user backend: socket, messages, guest memory, virtqueues.
 * See vhu.h for the contract.  The layout: listening and connection
 * handling, message assembly, one handler per request behind dispatch(),
 * then guest memory, then the split virtqueue.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"
#include "le.h"
#include "trace.h"
#include "vhu.h"

#define PROTOCOL_FEATURES_OFFERED ( \
	1ull << VHOST_USER_PROTOCOL_F_MQ | \
	1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK | \
	1ull << VHOST_USER_PROTOCOL_F_BACKEND_REQ | \
	1ull << VHOST_USER_PROTOCOL_F_CONFIG | \
	1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)

/* What a request handler tells dispatch(). */
enum result {
	REQ_OK,       /* done; ack success if asked */
	REQ_FAIL,     /* refused; ack failure if asked, state unchanged */
	REQ_REPLY,    /* the handler filled m->payload/m->size: send it */
	REQ_CLOSED    /* dispatch() closed the connection (logged) */
};

static const char *request_name(uint32_t req);
static void conn_close(struct vhu_dev *d, enum vhu_end how, const char *why);
static void conn_accept(struct vhu_dev *d);
static void conn_serve(struct vhu_dev *d, const fd_set *rd);
static void conn_readable(struct vhu_dev *d);
static enum result dispatch(struct vhu_dev *d, struct vhu_msg *m);
static void device_reset(struct vhu_dev *d);
static void vring_reset(struct vhu_vring *vq);
static void vring_stop(struct vhu_vring *vq);
static void vring_update(struct vhu_dev *d, unsigned q);
static int ring_translate(struct vhu_dev *d, unsigned num, uint64_t desc_ua,
                          uint64_t avail_ua, uint64_t used_ua, uint8_t **desc,
                          uint8_t **avail, uint8_t **used);
static void vring_kicked(struct vhu_dev *d, unsigned q);
static void memory_unmap_all(struct vhu_dev *d);
static uint8_t *uaddr_to_host(struct vhu_dev *d, uint64_t uaddr, uint64_t len);
static int queue_running(const struct vhu_dev *d, unsigned q);

/* ---- little-endian access to guest-shared memory ---------------------- */

/*
 * Ring indices are written by the guest concurrently: read them with one
 * aligned load (a byte-wise read could tear), then swap (le.h).
 * Everything else is copied out once and then checked, so the guest
 * cannot change it under us.
 */
static uint16_t
load16(const uint8_t *p)
{
	return le16_to_host(*(const volatile uint16_t *)(const void *)p);
}

static void
store16(uint8_t *p, uint16_t v)
{
	*(volatile uint16_t *)(void *)p = host_to_le16(v);
}

static void
store32(uint8_t *p, uint32_t v)
{
	*(volatile uint32_t *)(void *)p = host_to_le32(v);
}

/* ---- setup and the socket --------------------------------------------- */

void
vhu_init(struct vhu_dev *d, unsigned index, const struct vhu_ops *ops,
         void *opaque, unsigned max_queue_size)
{
	unsigned i;

	memset(d, 0, sizeof *d);
	snprintf(d->name, sizeof d->name, "device %u", index);
	d->listen_fd = d->conn_fd = d->backend_fd = -1;
	d->ops = ops;
	d->opaque = opaque;
	d->max_queue_size = max_queue_size;
	for (i = 0; i < VHU_MAX_QUEUES; i++) {
		d->vq[i].kick_fd = d->vq[i].call_fd = d->vq[i].err_fd = -1;
		vring_reset(&d->vq[i]);
	}
	for (i = 0; i < VHOST_USER_MAX_FDS; i++)
		d->rx.fds[i] = -1;
}

int
vhu_adopt(struct vhu_dev *d, int fd, char *err, size_t errlen)
{
	struct stat st;
	int type;
	socklen_t len = sizeof type;

	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    type != SOCK_STREAM) {
		snprintf(err, errlen, "not a connected stream socket");
		return -1;
	}
	if (fd >= FD_SETSIZE) {
		snprintf(err, errlen, "over FD_SETSIZE");
		return -1;
	}
	set_nonblock(fd);
	set_cloexec(fd);
	snprintf(d->path, sizeof d->path, "fd %d", fd);
	d->conn_fd = fd;
	d->adopted = 1;
	return 0;
}

int
vhu_listen(struct vhu_dev *d, const char *path, char *err, size_t errlen)
{
	int fd = unix_listen(path, 4, err, errlen);

	if (fd < 0)
		return -1;
	d->listen_fd = fd;
	snprintf(d->path, sizeof d->path, "%s", path);
	return 0;
}

void
vhu_close(struct vhu_dev *d)
{
	if (d->conn_fd >= 0)
		conn_close(d, VHU_END_NONE, NULL);
	if (d->listen_fd >= 0) {
		close_fd(&d->listen_fd);
		unlink(d->path);
	}
}

int
vhu_has_feature(const struct vhu_dev *d, unsigned bit)
{
	return (d->features >> bit) & 1;
}

int
vhu_add_fds(struct vhu_dev *d, fd_set *rd, int maxfd)
{
	unsigned q;

	/* The listening socket stays selected while connected, so that a
	 * second frontend is told no at once instead of hanging. */
	if (d->listen_fd >= 0 && !accept_paused())
		maxfd = fd_watch(d->listen_fd, rd, maxfd);
	if (d->conn_fd < 0)
		return maxfd;
	maxfd = fd_watch(d->conn_fd, rd, maxfd);
	/* Kick fds are drained even when the device is broken: a pipe kick
	 * that nobody reads would end up blocking the guest. */
	for (q = 0; q < d->ops->num_queues; q++)
		if (d->vq[q].kick_fd >= 0)
			maxfd = fd_watch(d->vq[q].kick_fd, rd, maxfd);
	return maxfd;
}

void
vhu_serve(struct vhu_dev *d, const fd_set *rd)
{
	if (d->conn_fd >= 0)
		conn_serve(d, rd);
	/*
	 * The listener last: a frontend that closed and a new one that
	 * connected in the same pass are seen in that order, so the newcomer
	 * is not taken for a second frontend.  (And a connection accepted
	 * now is not looked at with this pass's fd set, which was about the
	 * old one that may have had the same fd number.)
	 */
	if (d->listen_fd >= 0 && FD_ISSET(d->listen_fd, rd))
		conn_accept(d);
}

static void
conn_serve(struct vhu_dev *d, const fd_set *rd)
{
	unsigned q;

	/* Kicks first: a message handled below may close these fds. */
	for (q = 0; q < d->ops->num_queues; q++) {
		int fd = d->vq[q].kick_fd;

		if (fd >= 0 && FD_ISSET(fd, rd))
			vring_kicked(d, q);
	}
	/* Then the queues a device left early on the previous pass. */
	for (q = 0; q < d->ops->num_queues; q++) {
		if (!d->vq[q].again)
			continue;
		d->vq[q].again = 0;
		if (queue_running(d, q))
			d->ops->queue_event(d->opaque, q);
	}
	if (d->conn_fd >= 0 && FD_ISSET(d->conn_fd, rd))
		conn_readable(d);
}

void
vhu_queue_again(struct vhu_dev *d, unsigned q)
{
	d->vq[q].again = 1;
}

int
vhu_has_work(const struct vhu_dev *d)
{
	unsigned q;

	for (q = 0; q < d->ops->num_queues; q++)
		if (d->vq[q].again && queue_running(d, q))
			return 1;
	return 0;
}

static void
conn_accept(struct vhu_dev *d)
{
	int fd = accept_conn(d->listen_fd, d->name);

	if (fd < 0)
		return;
	/* The frontend we have may be gone with its EOF (or reset) not read
	 * yet: read it now, its whole messages first, before judging. */
	if (d->conn_fd >= 0)
		conn_readable(d);
	if (d->conn_fd >= 0) {
		logmsg("%s: refusing a second frontend on %s (one is connected)",
		       d->name, d->path);
		close(fd);
		return;
	}
	if (fd >= FD_SETSIZE) {
		logmsg("%s: refusing frontend: descriptor %d is over FD_SETSIZE (%d)",
		       d->name, fd, FD_SETSIZE);
		close(fd);
		return;
	}
	d->conn_fd = fd;
	d->rx_have = 0;
	loginfo("%s: frontend connected on %s", d->name, d->path);
	if (d->ops->connected)
		d->ops->connected(d->opaque, 1);
}

/*
 * The frontend left or broke the protocol: close every fd, unmap memory,
 * put the device back to power-on state, and wait for the next one.
 */
static void
conn_close(struct vhu_dev *d, enum vhu_end how, const char *why)
{
	unsigned i;

	/* An orderly end is routine (--quiet leaves it out); an error is not. */
	if (why && d->adopted)
		logmsg("%s: frontend %s", d->name, why);
	else if (why && how == VHU_END_ORDERLY)
		loginfo("%s: frontend %s; waiting for a new one", d->name, why);
	else if (why)
		logmsg("%s: frontend %s; waiting for a new one", d->name, why);
	/* The only frontend there will be: an orderly end or not. */
	if (d->adopted)
		d->ended = how;
	close_fd(&d->conn_fd);
	close_fd(&d->backend_fd);
	for (i = 0; i < d->rx.nfds; i++)
		close_fd(&d->rx.fds[i]);
	d->rx.nfds = 0;
	d->rx_have = 0;
	device_reset(d);
	memory_unmap_all(d);
	if (why && d->ops->connected)
		d->ops->connected(d->opaque, 0);
	for (i = 0; i < VHU_MAX_QUEUES; i++) {
		vring_stop(&d->vq[i]);
		close_fd(&d->vq[i].call_fd);
		close_fd(&d->vq[i].err_fd);
		vring_reset(&d->vq[i]);
		d->vq[i].enabled = 0;
	}
	d->protocol_features = 0;
}

/* ---- message assembly -------------------------------------------------- */

/* Take the fds that came with a recvmsg() into the message being built. */
static int
take_fds(struct vhu_dev *d, struct msghdr *mh)
{
	struct cmsghdr *c;
	int ok = 1;

	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		int *fds = (int *)(void *)CMSG_DATA(c);
		size_t i, n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, &fds[i], sizeof fd);
			if (d->rx.nfds < VHOST_USER_MAX_FDS) {
				set_cloexec(fd);
				d->rx.fds[d->rx.nfds++] = fd;
			} else {
				close(fd);
				ok = 0;
			}
		}
	}
	if (mh->msg_flags & MSG_CTRUNC)
		ok = 0;
	return ok;
}

/* What one read of the connection gave. */
enum read_result {
	READ_CLOSED,  /* the connection ended or broke; it is closed now */
	READ_AGAIN,   /* nothing to read now */
	READ_PART,    /* part of a message: read again */
	READ_WHOLE    /* a whole message is in d->rx */
};

/*
 * Read what is there of the current message, once.  Reads never go past
 * the message's end, so the next one stays queued.  One function for the
 * header, the payload and the fds that ride with them: they share one
 * recvmsg() and its control buffer, and every way it can end (EOF, a
 * reset, too many fds, a bad size or version) closes the connection
 * here, with the reason, so the caller sees only the result.
 */
static enum read_result
conn_read_msg(struct vhu_dev *d)
{
	union {
		char buf[CMSG_SPACE(VHOST_USER_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	int in_header = d->rx_have < VHOST_USER_HDR_SIZE;
	struct msghdr mh;
	struct iovec iov;
	ssize_t n;

	if (in_header) {
		iov.iov_base = d->rx_hdr + d->rx_have;
		iov.iov_len = VHOST_USER_HDR_SIZE - d->rx_have;
	} else {
		iov.iov_base = d->rx.payload + (d->rx_have - VHOST_USER_HDR_SIZE);
		iov.iov_len = VHOST_USER_HDR_SIZE + d->rx.size - d->rx_have;
	}
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof ctl.buf;
	n = recvmsg(d->conn_fd, &mh, 0);
	if (n == 0) {
		if (d->rx_have)
			conn_close(d, VHU_END_ERROR, "closed the connection mid-message");
		else
			conn_close(d, VHU_END_ORDERLY, "disconnected");
		return READ_CLOSED;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return READ_AGAIN;
		logmsg("%s: reading from frontend: %s", d->name, strerror(errno));
		conn_close(d, VHU_END_ERROR, "connection failed");
		return READ_CLOSED;
	}
	if (!take_fds(d, &mh)) {
		conn_close(d, VHU_END_ERROR, "sent more than 8 fds with a message");
		return READ_CLOSED;
	}
	d->rx_have += n;
	if (!in_header)
		return d->rx_have == VHOST_USER_HDR_SIZE + d->rx.size ? READ_WHOLE
		                                                      : READ_PART;
	if (d->rx_have < VHOST_USER_HDR_SIZE)
		return READ_PART;
	memcpy(&d->rx.request, d->rx_hdr, 4);
	memcpy(&d->rx.flags, d->rx_hdr + 4, 4);
	memcpy(&d->rx.size, d->rx_hdr + 8, 4);
	if (d->rx.size > VHU_MAX_PAYLOAD) {
		logmsg("%s: %s with a %u-byte payload (max %d)", d->name,
		       request_name(d->rx.request), d->rx.size, VHU_MAX_PAYLOAD);
		conn_close(d, VHU_END_ERROR, "sent an oversized message");
		return READ_CLOSED;
	}
	if ((d->rx.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION) {
		logmsg("%s: message with protocol version %u", d->name,
		       d->rx.flags & VHOST_USER_VERSION_MASK);
		conn_close(d, VHU_END_ERROR, "speaks another protocol version");
		return READ_CLOSED;
	}
	return d->rx.size == 0 ? READ_WHOLE : READ_PART;
}

static int
send_reply(struct vhu_dev *d, struct vhu_msg *m)
{
	uint8_t buf[VHOST_USER_HDR_SIZE + VHU_MAX_PAYLOAD];
	uint32_t flags = VHOST_USER_VERSION | VHOST_USER_REPLY_MASK;
	ssize_t n;

	memcpy(buf, &m->request, 4);
	memcpy(buf + 4, &flags, 4);
	memcpy(buf + 8, &m->size, 4);
	memcpy(buf + VHOST_USER_HDR_SIZE, m->payload, m->size);
	/* A reply is tiny and the frontend waits for it: a full socket buffer
	 * here means the frontend is not reading, which we cannot fix. */
	n = send(d->conn_fd, buf, VHOST_USER_HDR_SIZE + m->size, MSG_NOSIGNAL);
	if (n != (ssize_t)(VHOST_USER_HDR_SIZE + m->size)) {
		logmsg("%s: cannot send reply to %s: %s", d->name,
		       request_name(m->request), n < 0 ? strerror(errno) : "short write");
		return -1;
	}
	return 0;
}

static void
conn_readable(struct vhu_dev *d)
{
	struct vhu_msg *m = &d->rx;
	enum read_result r;
	unsigned i;
	enum result res;
	int want_ack;

	/*
	 * Handle every whole message there is, and read on until the socket
	 * is empty: an EOF or a reset behind them (also behind half a
	 * message) closes the connection now, not on some later pass.
	 */
	for (;;) {
		r = conn_read_msg(d);
		if (r == READ_CLOSED || r == READ_AGAIN)
			return;
		if (r == READ_PART)
			continue;
		/* Traced before dispatch(): the handlers take fds and reuse the
		 * payload for the reply. */
		if (TRACE_ON(d->trace, TRACE_MSG))
			trace_request(d->name, request_name(m->request), m);
		res = dispatch(d, m);
		if (res == REQ_CLOSED)
			return;
		want_ack = m->flags & VHOST_USER_NEED_REPLY_MASK;

		/* Fds the handler did not take are not ours to keep. */
		for (i = 0; i < m->nfds; i++)
			close_fd(&m->fds[i]);
		m->nfds = 0;
		d->rx_have = 0;
		if (res != REQ_REPLY && want_ack) {
			uint64_t v = res == REQ_OK ? 0 : 1;

			m->size = sizeof v;
			memcpy(m->payload, &v, sizeof v);
			res = REQ_REPLY;
		} else {
			want_ack = 0;    /* a reply of its own, or none */
		}
		if (res == REQ_REPLY && TRACE_ON(d->trace, TRACE_MSG))
			trace_reply(d->name, request_name(m->request), m, want_ack);
		if (res == REQ_REPLY && send_reply(d, m) < 0) {
			conn_close(d, VHU_END_ERROR, "stopped reading replies");
			return;
		}
	}
}

/* ---- request handlers --------------------------------------------------- */

/* The u64 payload (its size was checked by dispatch()). */
static uint64_t
payload_u64(const struct vhu_msg *m)
{
	uint64_t v;

	memcpy(&v, m->payload, sizeof v);
	return v;
}

static enum result
reply_u64(struct vhu_msg *m, uint64_t v)
{
	m->size = sizeof v;
	memcpy(m->payload, &v, sizeof v);
	return REQ_REPLY;
}

static uint64_t
features_offered(const struct vhu_dev *d)
{
	return d->ops->features | 1ull << VHOST_USER_F_PROTOCOL_FEATURES;
}

static int
protocol_features_negotiated(const struct vhu_dev *d)
{
	return vhu_has_feature(d, VHOST_USER_F_PROTOCOL_FEATURES);
}

/* The vring named by the payload's first u32, or NULL (logged). */
static struct vhu_vring *
msg_vring(struct vhu_dev *d, const struct vhu_msg *m, unsigned *qp)
{
	uint32_t q;

	memcpy(&q, m->payload, sizeof q);
	if (q >= d->ops->num_queues) {
		logmsg("%s: %s: no queue %u (the device has %u)", d->name,
		       request_name(m->request), q, d->ops->num_queues);
		return NULL;
	}
	*qp = q;
	return &d->vq[q];
}

static enum result
handle_get_features(struct vhu_dev *d, struct vhu_msg *m)
{
	return reply_u64(m, features_offered(d));
}

static enum result
handle_set_features(struct vhu_dev *d, struct vhu_msg *m)
{
	uint64_t v = payload_u64(m);
	unsigned q;

	if (v & ~features_offered(d)) {
		logmsg("%s: SET_FEATURES: bits 0x%llx were not offered", d->name,
		       (unsigned long long)(v & ~features_offered(d)));
		return REQ_FAIL;
	}
	d->features = v;
	/* Without bit 30 there is no SET_VRING_ENABLE: started rings run. */
	if (!protocol_features_negotiated(d))
		for (q = 0; q < d->ops->num_queues; q++)
			if (d->vq[q].started && !d->vq[q].enabled) {
				d->vq[q].enabled = 1;
				vring_update(d, q);
			}
	return REQ_OK;
}

/* One frontend per connection already: SET_OWNER has nothing to claim. */
static enum result
handle_set_owner(struct vhu_dev *d, struct vhu_msg *m)
{
	(void)d;
	(void)m;
	return REQ_OK;
}

static enum result
handle_reset(struct vhu_dev *d, struct vhu_msg *m)
{
	(void)m;
	device_reset(d);
	return REQ_OK;
}

static enum result
handle_get_protocol_features(struct vhu_dev *d, struct vhu_msg *m)
{
	(void)d;
	return reply_u64(m, PROTOCOL_FEATURES_OFFERED);
}

static enum result
handle_set_protocol_features(struct vhu_dev *d, struct vhu_msg *m)
{
	uint64_t v = payload_u64(m);

	if (v & ~PROTOCOL_FEATURES_OFFERED) {
		logmsg("%s: SET_PROTOCOL_FEATURES: bits 0x%llx were not offered",
		       d->name, (unsigned long long)(v & ~PROTOCOL_FEATURES_OFFERED));
		return REQ_FAIL;
	}
	d->protocol_features = v;
	return REQ_OK;
}

static enum result
handle_get_queue_num(struct vhu_dev *d, struct vhu_msg *m)
{
	return reply_u64(m, d->ops->num_queues);
}

static enum result
handle_get_max_mem_slots(struct vhu_dev *d, struct vhu_msg *m)
{
	(void)d;
	return reply_u64(m, VHU_MAX_MEM_SLOTS);
}

/* ---- guest memory -------------------------------------------------------- */

struct region_desc {
	uint64_t gpa, size, uaddr, mmap_offset;
};

static void
region_read(const uint8_t *p, struct region_desc *r)
{
	memcpy(&r->gpa, p, 8);
	memcpy(&r->size, p + 8, 8);
	memcpy(&r->uaddr, p + 16, 8);
	memcpy(&r->mmap_offset, p + 24, 8);
}

/*
 * Map one region after checking it: sizes that do not overflow, and a file
 * at least mmap_offset + size long (a shorter one would SIGBUS us later).
 */
static int
region_map(struct vhu_dev *d, const char *req, const struct region_desc *rd,
           int fd, struct vhu_region *out)
{
	struct stat st;
	uint64_t end;
	void *p;

	if (rd->size == 0 || rd->gpa + rd->size < rd->gpa ||
	    rd->uaddr + rd->size < rd->uaddr ||
	    __builtin_add_overflow(rd->mmap_offset, rd->size, &end) ||
	    end > (uint64_t)SIZE_MAX) {
		logmsg("%s: %s: memory region gpa 0x%llx size 0x%llx: bad bounds",
		       d->name, req, (unsigned long long)rd->gpa,
		       (unsigned long long)rd->size);
		return -1;
	}
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < end) {
		logmsg("%s: %s: memory region gpa 0x%llx: its fd is shorter than "
		       "offset + size (%llu bytes)", d->name, req,
		       (unsigned long long)rd->gpa, (unsigned long long)end);
		return -1;
	}
	p = mmap(NULL, end, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		logmsg("%s: %s: mapping guest memory: %s", d->name, req, strerror(errno));
		return -1;
	}
	out->gpa = rd->gpa;
	out->size = rd->size;
	out->uaddr = rd->uaddr;
	out->mmap_offset = rd->mmap_offset;
	out->mmap_addr = p;
	out->mmap_size = end;
	return 0;
}

static void
region_unmap(struct vhu_region *r)
{
	if (r->mmap_addr)
		munmap(r->mmap_addr, r->mmap_size);
	memset(r, 0, sizeof *r);
}

static void
memory_unmap_all(struct vhu_dev *d)
{
	unsigned i;

	for (i = 0; i < d->nregions; i++)
		region_unmap(&d->regions[i]);
	d->nregions = 0;
	for (i = 0; i < VHU_MAX_QUEUES; i++)
		d->vq[i].desc = d->vq[i].avail = d->vq[i].used = NULL;
}

static int
regions_overlap(const struct vhu_region *a, uint64_t gpa, uint64_t size)
{
	return gpa < a->gpa + a->size && a->gpa < gpa + size;
}

/*
 * Memory changed: find the rings again (they may have moved or gone).
 * Every ring forgets its old mapping first, since vring_update() may call
 * the device, which may look at any ring, not only the one updated.
 */
static void
memory_changed(struct vhu_dev *d)
{
	unsigned q;

	for (q = 0; q < VHU_MAX_QUEUES; q++)
		d->vq[q].desc = d->vq[q].avail = d->vq[q].used = NULL;
	for (q = 0; q < d->ops->num_queues; q++)
		vring_update(d, q);
}

static enum result
handle_set_mem_table(struct vhu_dev *d, struct vhu_msg *m)
{
	struct vhu_region fresh[VHOST_MEMORY_BASELINE_NREGIONS];
	uint32_t n, i, j;

	memcpy(&n, m->payload, 4);
	/* user-mode-linux sends a payload sized for more regions than it
	 * uses: accept anything at least as long as the regions named. */
	if (n == 0 || n > VHOST_MEMORY_BASELINE_NREGIONS || m->size < 8 + 32 * n ||
	    m->nfds != n) {
		logmsg("%s: SET_MEM_TABLE: %u regions, %u fds, %u-byte payload",
		       d->name, n, m->nfds, m->size);
		return REQ_FAIL;
	}
	memset(fresh, 0, sizeof fresh);
	for (i = 0; i < n; i++) {
		struct region_desc rd;

		region_read(m->payload + 8 + 32 * i, &rd);
		for (j = 0; j < i; j++)
			if (regions_overlap(&fresh[j], rd.gpa, rd.size))
				break;
		if (j < i) {
			logmsg("%s: SET_MEM_TABLE: regions %u and %u overlap", d->name, j, i);
			goto fail;
		}
		if (region_map(d, "SET_MEM_TABLE", &rd, m->fds[i], &fresh[i]) < 0)
			goto fail;
	}
	/* All checked and mapped: now replace the old table. */
	memory_unmap_all(d);
	memcpy(d->regions, fresh, n * sizeof fresh[0]);
	d->nregions = n;
	memory_changed(d);
	return REQ_OK;
fail:
	for (j = 0; j < n; j++)
		region_unmap(&fresh[j]);
	return REQ_FAIL;
}

static enum result
handle_add_mem_reg(struct vhu_dev *d, struct vhu_msg *m)
{
	struct region_desc rd;
	unsigned i;

	if (m->nfds != 1) {
		logmsg("%s: ADD_MEM_REG with %u fds", d->name, m->nfds);
		return REQ_FAIL;
	}
	if (d->nregions >= VHU_MAX_MEM_SLOTS) {
		logmsg("%s: ADD_MEM_REG: all %d slots in use", d->name, VHU_MAX_MEM_SLOTS);
		return REQ_FAIL;
	}
	region_read(m->payload + 8, &rd);
	for (i = 0; i < d->nregions; i++)
		if (regions_overlap(&d->regions[i], rd.gpa, rd.size)) {
			logmsg("%s: ADD_MEM_REG: gpa 0x%llx overlaps region %u", d->name,
			       (unsigned long long)rd.gpa, i);
			return REQ_FAIL;
		}
	if (region_map(d, "ADD_MEM_REG", &rd, m->fds[0], &d->regions[d->nregions]) < 0)
		return REQ_FAIL;
	d->nregions++;
	memory_changed(d);
	return REQ_OK;
}

static enum result
handle_rem_mem_reg(struct vhu_dev *d, struct vhu_msg *m)
{
	struct region_desc rd;
	unsigned i;

	region_read(m->payload + 8, &rd);
	for (i = 0; i < d->nregions; i++) {
		struct vhu_region *r = &d->regions[i];

		if (r->gpa == rd.gpa && r->size == rd.size && r->uaddr == rd.uaddr)
			break;
	}
	if (i == d->nregions) {
		logmsg("%s: REM_MEM_REG: no region at gpa 0x%llx size 0x%llx",
		       d->name, (unsigned long long)rd.gpa, (unsigned long long)rd.size);
		return REQ_FAIL;
	}
	region_unmap(&d->regions[i]);
	d->regions[i] = d->regions[--d->nregions];
	memset(&d->regions[d->nregions], 0, sizeof d->regions[0]);
	memory_changed(d);
	return REQ_OK;
}

/* Host address of [uaddr, uaddr+len) in frontend virtual addresses, which
 * must lie inside one region (ring areas do). */
static uint8_t *
uaddr_to_host(struct vhu_dev *d, uint64_t uaddr, uint64_t len)
{
	unsigned i;

	for (i = 0; i < d->nregions; i++) {
		struct vhu_region *r = &d->regions[i];

		if (uaddr >= r->uaddr && len <= r->size && uaddr - r->uaddr <= r->size - len)
			return r->mmap_addr + r->mmap_offset + (uaddr - r->uaddr);
	}
	return NULL;
}

/* The region holding guest-physical address gpa, or NULL. */
static struct vhu_region *
gpa_region(struct vhu_dev *d, uint64_t gpa)
{
	unsigned i;

	for (i = 0; i < d->nregions; i++) {
		struct vhu_region *r = &d->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r;
	}
	return NULL;
}

/* Copy len bytes at guest-physical gpa, possibly across regions. */
static int
gpa_read(struct vhu_dev *d, uint64_t gpa, void *buf, size_t len)
{
	uint8_t *out = buf;

	while (len) {
		struct vhu_region *r = gpa_region(d, gpa);
		uint64_t off, chunk;

		if (!r)
			return -1;
		off = gpa - r->gpa;
		chunk = r->size - off < len ? r->size - off : len;
		memcpy(out, r->mmap_addr + r->mmap_offset + off, chunk);
		out += chunk;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}

/* ---- vring requests --------------------------------------------------- */

static void
vring_reset(struct vhu_vring *vq)
{
	vq->num = 0;
	vq->started = 0;
	vq->addr_set = 0;
	vq->desc_uaddr = vq->avail_uaddr = vq->used_uaddr = 0;
	vq->desc = vq->avail = vq->used = NULL;
	vq->last_avail = vq->used_idx = 0;
	vq->signalled_used = 0;
	vq->signalled_used_valid = 0;
	vq->notify_pending = 0;
	vq->again = 0;
}

static void
vring_stop(struct vhu_vring *vq)
{
	vq->started = 0;
	close_fd(&vq->kick_fd);
}

/*
 * Translate the ring's addresses (again: memory may have changed) and, if
 * the ring is now ready, let the device look at it once: the guest may
 * have queued buffers before the ring started.
 */
static void
vring_update(struct vhu_dev *d, unsigned q)
{
	struct vhu_vring *vq = &d->vq[q];

	vq->desc = vq->avail = vq->used = NULL;
	if (!vq->addr_set || !vq->num ||
	    ring_translate(d, vq->num, vq->desc_uaddr, vq->avail_uaddr,
	                   vq->used_uaddr, &vq->desc, &vq->avail, &vq->used) < 0)
		return;
	if (queue_running(d, q))
		d->ops->queue_event(d->opaque, q);
}

/*
 * Host addresses of a ring of num entries whose three areas start at the
 * given frontend addresses; -1 unless every area lies in guest memory and
 * is aligned as the spec requires, also in our mapping (ring indices are
 * read and written with single aligned accesses).
 */
static int
ring_translate(struct vhu_dev *d, unsigned num, uint64_t desc_ua,
               uint64_t avail_ua, uint64_t used_ua, uint8_t **desc,
               uint8_t **avail, uint8_t **used)
{
	uint8_t *dp = uaddr_to_host(d, desc_ua, 16ull * num);
	uint8_t *ap = uaddr_to_host(d, avail_ua, 6ull + 2ull * num);
	uint8_t *up = uaddr_to_host(d, used_ua, 6ull + 8ull * num);

	if (!dp || !ap || !up || (uintptr_t)dp % 16 || (uintptr_t)ap % 2 ||
	    (uintptr_t)up % 4)
		return -1;
	*desc = dp;
	*avail = ap;
	*used = up;
	return 0;
}

static enum result
handle_set_vring_num(struct vhu_dev *d, struct vhu_msg *m)
{
	struct vhu_vring *vq;
	uint32_t num;
	unsigned q;

	if (!(vq = msg_vring(d, m, &q)))
		return REQ_FAIL;
	memcpy(&num, m->payload + 4, 4);
	if (num == 0 || (num & (num - 1)) || num > d->max_queue_size) {
		logmsg("%s: SET_VRING_NUM: queue %u: size %u is not a power of two up to %u",
		       d->name, q, num, d->max_queue_size);
		return REQ_FAIL;
	}
	if (vq->started) {
		logmsg("%s: SET_VRING_NUM on running queue %u", d->name, q);
		return REQ_FAIL;
	}
	vq->num = num;
	vring_update(d, q);
	return REQ_OK;
}

static enum result
handle_set_vring_addr(struct vhu_dev *d, struct vhu_msg *m)
{
	uint64_t desc, used, avail;
	uint8_t *pd, *pa, *pu;
	struct vhu_vring *vq;
	unsigned q;

	if (!(vq = msg_vring(d, m, &q)))
		return REQ_FAIL;
	memcpy(&desc, m->payload + 8, 8);
	memcpy(&used, m->payload + 16, 8);
	memcpy(&avail, m->payload + 24, 8);
	if (desc % 16 || avail % 2 || used % 4) {
		logmsg("%s: SET_VRING_ADDR: queue %u: misaligned ring addresses",
		       d->name, q);
		return REQ_FAIL;
	}
	/* Checked before anything changes: a refused request leaves the
	 * ring as it was.  Without memory or size yet, vring_update() checks
	 * again once they come. */
	if (d->nregions && vq->num &&
	    ring_translate(d, vq->num, desc, avail, used, &pd, &pa, &pu) < 0) {
		logmsg("%s: SET_VRING_ADDR: queue %u: ring addresses are outside "
		       "guest memory", d->name, q);
		return REQ_FAIL;
	}
	vq->desc_uaddr = desc;
	vq->used_uaddr = used;
	vq->avail_uaddr = avail;
	vq->addr_set = 1;
	vring_update(d, q);
	return REQ_OK;
}

static enum result
handle_set_vring_base(struct vhu_dev *d, struct vhu_msg *m)
{
	struct vhu_vring *vq;
	uint32_t base;
	unsigned q;

	if (!(vq = msg_vring(d, m, &q)))
		return REQ_FAIL;
	memcpy(&base, m->payload + 4, 4);
	if (base > 0xffff || vq->started) {
		logmsg("%s: SET_VRING_BASE %u on queue %u%s", d->name, base, q,
		       vq->started ? " while it runs" : "");
		return REQ_FAIL;
	}
	vq->last_avail = vq->used_idx = base;
	vq->signalled_used_valid = 0;
	return REQ_OK;
}

static enum result
handle_get_vring_base(struct vhu_dev *d, struct vhu_msg *m)
{
	struct vhu_vring *vq;
	uint32_t state[2];
	unsigned q;

	if (!(vq = msg_vring(d, m, &q)))
		return REQ_FAIL;
	/* The frontend stops the ring to take its state: we hold no popped
	 * chains across passes, so last_avail is all there is to hand back. */
	vring_stop(vq);
	close_fd(&vq->call_fd);
	d->ops->reset(d->opaque, (int)q);
	state[0] = q;
	state[1] = vq->last_avail;
	m->size = sizeof state;
	memcpy(m->payload, state, sizeof state);
	return REQ_REPLY;
}

/* SET_VRING_KICK/CALL/ERR: u64 with the queue in bits 0-7 and bit 8 for
 * "no fd".  Returns the queue, or -1 (logged). */
static int
vring_fd_msg(struct vhu_dev *d, const struct vhu_msg *m, int *nofd)
{
	uint64_t v = payload_u64(m);
	unsigned q;

	q = v & VHOST_USER_VRING_IDX_MASK;
	*nofd = !!(v & VHOST_USER_VRING_NOFD_MASK);
	if (v & ~(uint64_t)(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD_MASK) ||
	    q >= d->ops->num_queues) {
		logmsg("%s: %s: bad argument 0x%llx", d->name,
		       request_name(m->request), (unsigned long long)v);
		return -1;
	}
	if (*nofd ? m->nfds != 0 : m->nfds != 1) {
		logmsg("%s: %s: %u fds with %s", d->name, request_name(m->request),
		       m->nfds, *nofd ? "the no-fd flag" : "no no-fd flag");
		return -1;
	}
	return (int)q;
}

/*
 * A kick fd must run dry when drained: an eventfd (an anonymous inode, no
 * file type) or a pipe, or a socket.  A regular file or a device such as
 * /dev/zero would be readable forever and keep the loop spinning.
 */
static int
kick_fd_usable(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return 0;
	return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) ||
	       (st.st_mode & S_IFMT) == 0;
}

static enum result
handle_set_vring_kick(struct vhu_dev *d, struct vhu_msg *m)
{
	struct vhu_vring *vq;
	int nofd, q = vring_fd_msg(d, m, &nofd);

	if (q < 0)
		return REQ_FAIL;
	if (nofd) {
		logmsg("%s: SET_VRING_KICK: queue %d: polling without a kick fd is not supported",
		       d->name, q);
		return REQ_FAIL;
	}
	if (m->fds[0] >= FD_SETSIZE) {
		logmsg("%s: SET_VRING_KICK: queue %d: fd %d is over FD_SETSIZE", d->name, q,
		       m->fds[0]);
		return REQ_FAIL;
	}
	if (!kick_fd_usable(m->fds[0])) {
		logmsg("%s: SET_VRING_KICK: queue %d: the fd is not an eventfd or a "
		       "pipe", d->name, q);
		return REQ_FAIL;
	}
	vq = &d->vq[q];
	close_fd(&vq->kick_fd);
	/* Non-blocking, so that a kick fd can be drained to empty. */
	set_nonblock(m->fds[0]);
	vq->kick_fd = m->fds[0];
	m->fds[0] = -1;
	vq->started = 1;
	if (!protocol_features_negotiated(d))
		vq->enabled = 1;
	vring_update(d, q);
	return REQ_OK;
}

/* Replace a call or err fd.  Never selected: keep it out of select()'s
 * range, and write it non-blocking: a full pipe means the guest has been
 * told enough already. */
static void
take_vring_fd(struct vhu_msg *m, int nofd, int *slot)
{
	close_fd(slot);
	if (nofd)
		return;
	set_nonblock(m->fds[0]);
	*slot = fd_move_high(m->fds[0]);
	m->fds[0] = -1;
}

static enum result
handle_set_vring_call(struct vhu_dev *d, struct vhu_msg *m)
{
	int nofd, q = vring_fd_msg(d, m, &nofd);

	if (q < 0)
		return REQ_FAIL;
	take_vring_fd(m, nofd, &d->vq[q].call_fd);
	d->vq[q].signalled_used_valid = 0;
	return REQ_OK;
}

static enum result
handle_set_vring_err(struct vhu_dev *d, struct vhu_msg *m)
{
	int nofd, q = vring_fd_msg(d, m, &nofd);

	if (q < 0)
		return REQ_FAIL;
	take_vring_fd(m, nofd, &d->vq[q].err_fd);
	return REQ_OK;
}

static enum result
handle_set_vring_enable(struct vhu_dev *d, struct vhu_msg *m)
{
	struct vhu_vring *vq;
	uint32_t on;
	unsigned q;

	if (!(vq = msg_vring(d, m, &q)))
		return REQ_FAIL;
	memcpy(&on, m->payload + 4, 4);
	if (on > 1) {
		logmsg("%s: SET_VRING_ENABLE %u on queue %u", d->name, on, q);
		return REQ_FAIL;
	}
	vq->enabled = on;
	if (on)
		vring_update(d, q);
	return REQ_OK;
}

static enum result
handle_set_backend_req_fd(struct vhu_dev *d, struct vhu_msg *m)
{
	if (m->nfds != 1) {
		logmsg("%s: SET_BACKEND_REQ_FD with %u fds", d->name, m->nfds);
		return REQ_FAIL;
	}
	close_fd(&d->backend_fd);
	d->backend_fd = fd_move_high(m->fds[0]);
	m->fds[0] = -1;
	return REQ_OK;
}

int
vhu_config_changed(struct vhu_dev *d)
{
	uint32_t hdr[3] = { VHOST_USER_BACKEND_CONFIG_CHANGE_MSG,
	                    VHOST_USER_VERSION, 0 };
	ssize_t n;

	/* Without need_reply: the frontend may be waiting on us right now. */
	if (d->backend_fd < 0 || !(d->protocol_features &
	                           1ull << VHOST_USER_PROTOCOL_F_CONFIG))
		return -1;
	n = send(d->backend_fd, hdr, sizeof hdr, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n != (ssize_t)sizeof hdr) {
		logmsg("%s: cannot send CONFIG_CHANGE_MSG: %s", d->name,
		       n < 0 ? strerror(errno) : "short write");
		return -1;
	}
	if (TRACE_ON(d->trace, TRACE_MSG))
		trace_backend_msg(d->name, "CONFIG_CHANGE_MSG");
	return 0;
}

/* GET/SET_CONFIG: the range [off, off+size) must lie in the config space,
 * and the payload be the header and exactly size bytes (as GET_CONFIG's
 * reply will be).  0, or -1 (logged). */
static int
config_range(struct vhu_dev *d, const struct vhu_msg *m, uint32_t *off,
             uint32_t *size)
{
	memcpy(off, m->payload, 4);
	memcpy(size, m->payload + 4, 4);
	if (*size > VHOST_USER_MAX_CONFIG_SIZE ||
	    m->size != VHOST_USER_CONFIG_HDR_SIZE + *size) {
		logmsg("%s: %s: %u config bytes in a %u-byte payload", d->name,
		       request_name(m->request), *size, m->size);
		return -1;
	}
	if (*off > d->ops->config_size || *size > d->ops->config_size - *off) {
		logmsg("%s: %s: bad range %u+%u (the config space has %u bytes)",
		       d->name, request_name(m->request), *off, *size,
		       d->ops->config_size);
		return -1;
	}
	return 0;
}

/* A refusal is a reply without payload (the request's rule says so). */
static enum result
handle_get_config(struct vhu_dev *d, struct vhu_msg *m)
{
	uint32_t off, size;

	if (config_range(d, m, &off, &size) < 0)
		return REQ_FAIL;
	memset(m->payload + VHOST_USER_CONFIG_HDR_SIZE, 0, size);
	if (d->ops->get_config(d->opaque, m->payload + VHOST_USER_CONFIG_HDR_SIZE,
	                       off, size) < 0) {
		logmsg("%s: GET_CONFIG: the device refused %u+%u", d->name, off, size);
		return REQ_FAIL;
	}
	m->size = VHOST_USER_CONFIG_HDR_SIZE + size;
	return REQ_REPLY;
}

static enum result
handle_set_config(struct vhu_dev *d, struct vhu_msg *m)
{
	uint32_t off, size;

	if (config_range(d, m, &off, &size) < 0)
		return REQ_FAIL;
	return d->ops->set_config(d->opaque, m->payload + VHOST_USER_CONFIG_HDR_SIZE,
	                          off, size) < 0 ? REQ_FAIL : REQ_OK;
}

/* ---- the request table and dispatch ------------------------------------ */

/* How a refused request is answered (vhost-user.rst). */
enum refusal {
	REFUSE_ACK,      /* a failure ack when need_reply asks for one */
	REFUSE_EMPTY,    /* its reply without payload (GET_CONFIG's "failed") */
	REFUSE_CLOSE     /* the frontend waits for a reply that could not say
	                  * no: close the connection rather than leave it
	                  * waiting forever */
};

/*
 * Every request's rule, in one place: its handler (NULL: not supported),
 * its payload size, checked once in dispatch() before the handler runs,
 * and how a refusal is answered: REFUSE_CLOSE or REFUSE_EMPTY for every
 * request the frontend always waits a reply of its own for.
 */
struct request_rule {
	const char *name;
	enum result (*handle)(struct vhu_dev *d, struct vhu_msg *m);
	uint16_t size;           /* the payload's size, exactly ... */
	uint16_t max;            /* ... or, when max is not 0, at least size
	                          * and at most max (the handler checks more) */
	enum refusal refusal;
};

#define STATE_SIZE    8      /* vring state: u32 index, u32 num */
#define U64_SIZE      8
#define ADDR_SIZE     40     /* vring address description */
#define MEM_REG_SIZE  40     /* u64 padding + one region */
/* u32 n, u32 padding, then n of 8 regions; user-mode Linux sends room for
 * two while naming one (protocol.md), so only the maximum is fixed here. */
#define MEM_TABLE_MIN 8
#define MEM_TABLE_MAX (8 + 32 * VHOST_MEMORY_BASELINE_NREGIONS)

static const struct request_rule request_rules[VHOST_USER_REQUEST_MAX] = {
	[VHOST_USER_GET_FEATURES] = { "GET_FEATURES",
		handle_get_features, 0, 0, REFUSE_CLOSE },
	[VHOST_USER_SET_FEATURES] = { "SET_FEATURES",
		handle_set_features, U64_SIZE, 0, REFUSE_ACK },
	[VHOST_USER_SET_OWNER] = { "SET_OWNER",
		handle_set_owner, 0, 0, REFUSE_ACK },
	[VHOST_USER_RESET_OWNER] = { "RESET_OWNER",
		handle_reset, 0, 0, REFUSE_ACK },
	[VHOST_USER_SET_MEM_TABLE] = { "SET_MEM_TABLE",
		handle_set_mem_table, MEM_TABLE_MIN, MEM_TABLE_MAX, REFUSE_ACK },
	[VHOST_USER_SET_LOG_BASE] = { "SET_LOG_BASE", NULL, 0, 0, REFUSE_ACK },
	[VHOST_USER_SET_LOG_FD] = { "SET_LOG_FD", NULL, 0, 0, REFUSE_ACK },
	[VHOST_USER_SET_VRING_NUM] = { "SET_VRING_NUM",
		handle_set_vring_num, STATE_SIZE, 0, REFUSE_ACK },
	[VHOST_USER_SET_VRING_ADDR] = { "SET_VRING_ADDR",
		handle_set_vring_addr, ADDR_SIZE, 0, REFUSE_ACK },
	[VHOST_USER_SET_VRING_BASE] = { "SET_VRING_BASE",
		handle_set_vring_base, STATE_SIZE, 0, REFUSE_ACK },
	[VHOST_USER_GET_VRING_BASE] = { "GET_VRING_BASE",
		handle_get_vring_base, STATE_SIZE, 0, REFUSE_CLOSE },
	[VHOST_USER_SET_VRING_KICK] = { "SET_VRING_KICK",
		handle_set_vring_kick, U64_SIZE, 0, REFUSE_ACK },
	[VHOST_USER_SET_VRING_CALL] = { "SET_VRING_CALL",
		handle_set_vring_call, U64_SIZE, 0, REFUSE_ACK },
	[VHOST_USER_SET_VRING_ERR] = { "SET_VRING_ERR",
		handle_set_vring_err, U64_SIZE, 0, REFUSE_ACK },
	[VHOST_USER_GET_PROTOCOL_FEATURES] = { "GET_PROTOCOL_FEATURES",
		handle_get_protocol_features, 0, 0, REFUSE_CLOSE },
	[VHOST_USER_SET_PROTOCOL_FEATURES] = { "SET_PROTOCOL_FEATURES",
		handle_set_protocol_features, U64_SIZE, 0, REFUSE_ACK },
	[VHOST_USER_GET_QUEUE_NUM] = { "GET_QUEUE_NUM",
		handle_get_queue_num, 0, 0, REFUSE_CLOSE },
	[VHOST_USER_SET_VRING_ENABLE] = { "SET_VRING_ENABLE",
		handle_set_vring_enable, STATE_SIZE, 0, REFUSE_ACK },
	[VHOST_USER_SEND_RARP] = { "SEND_RARP", NULL, 0, 0, REFUSE_ACK },
	[VHOST_USER_NET_SET_MTU] = { "NET_SET_MTU", NULL, 0, 0, REFUSE_ACK },
	[VHOST_USER_SET_BACKEND_REQ_FD] = { "SET_BACKEND_REQ_FD",
		handle_set_backend_req_fd, 0, 0, REFUSE_ACK },
	[VHOST_USER_IOTLB_MSG] = { "IOTLB_MSG", NULL, 0, 0, REFUSE_CLOSE },
	[VHOST_USER_SET_VRING_ENDIAN] = { "SET_VRING_ENDIAN", NULL, 0, 0, REFUSE_ACK },
	[VHOST_USER_GET_CONFIG] = { "GET_CONFIG", handle_get_config,
		VHOST_USER_CONFIG_HDR_SIZE, VHU_MAX_PAYLOAD, REFUSE_EMPTY },
	[VHOST_USER_SET_CONFIG] = { "SET_CONFIG", handle_set_config,
		VHOST_USER_CONFIG_HDR_SIZE, VHU_MAX_PAYLOAD, REFUSE_ACK },
	[VHOST_USER_CREATE_CRYPTO_SESSION] = { "CREATE_CRYPTO_SESSION",
		NULL, 0, 0, REFUSE_CLOSE },
	[VHOST_USER_CLOSE_CRYPTO_SESSION] = { "CLOSE_CRYPTO_SESSION",
		NULL, 0, 0, REFUSE_ACK },
	[VHOST_USER_POSTCOPY_ADVISE] = { "POSTCOPY_ADVISE", NULL, 0, 0, REFUSE_CLOSE },
	[VHOST_USER_POSTCOPY_LISTEN] = { "POSTCOPY_LISTEN", NULL, 0, 0, REFUSE_ACK },
	[VHOST_USER_POSTCOPY_END] = { "POSTCOPY_END", NULL, 0, 0, REFUSE_CLOSE },
	[VHOST_USER_GET_INFLIGHT_FD] = { "GET_INFLIGHT_FD", NULL, 0, 0, REFUSE_CLOSE },
	[VHOST_USER_SET_INFLIGHT_FD] = { "SET_INFLIGHT_FD", NULL, 0, 0, REFUSE_ACK },
	[VHOST_USER_GPU_SET_SOCKET] = { "GPU_SET_SOCKET", NULL, 0, 0, REFUSE_ACK },
	[VHOST_USER_RESET_DEVICE] = { "RESET_DEVICE",
		handle_reset, 0, 0, REFUSE_ACK },
	[VHOST_USER_VRING_KICK] = { "VRING_KICK", NULL, 0, 0, REFUSE_ACK },
	[VHOST_USER_GET_MAX_MEM_SLOTS] = { "GET_MAX_MEM_SLOTS",
		handle_get_max_mem_slots, 0, 0, REFUSE_CLOSE },
	[VHOST_USER_ADD_MEM_REG] = { "ADD_MEM_REG",
		handle_add_mem_reg, MEM_REG_SIZE, 0, REFUSE_ACK },
	[VHOST_USER_REM_MEM_REG] = { "REM_MEM_REG",
		handle_rem_mem_reg, MEM_REG_SIZE, 0, REFUSE_ACK },
	[VHOST_USER_SET_STATUS] = { "SET_STATUS", NULL, 0, 0, REFUSE_ACK },
	[VHOST_USER_GET_STATUS] = { "GET_STATUS", NULL, 0, 0, REFUSE_CLOSE },
	[VHOST_USER_GET_SHARED_OBJECT] = { "GET_SHARED_OBJECT",
		NULL, 0, 0, REFUSE_CLOSE },
	[VHOST_USER_SET_DEVICE_STATE_FD] = { "SET_DEVICE_STATE_FD",
		NULL, 0, 0, REFUSE_CLOSE },
	[VHOST_USER_CHECK_DEVICE_STATE] = { "CHECK_DEVICE_STATE",
		NULL, 0, 0, REFUSE_CLOSE },
};

/*
 * A request we do not know at all: one added to the protocol since, gated
 * by a protocol feature we never offered, so its sender has no business
 * waiting for a reply of its own; refused with an ack if asked for one.
 */
static const struct request_rule unknown_rule = {
	"unknown request", NULL, 0, 0, REFUSE_ACK
};

static const struct request_rule *
request_rule(uint32_t req)
{
	if (req < VHOST_USER_REQUEST_MAX && request_rules[req].name)
		return &request_rules[req];
	return &unknown_rule;
}

static const char *
request_name(uint32_t req)
{
	return request_rule(req)->name;
}

/* The payload is exactly as long as the request's, or within its range. */
static int
payload_size_ok(struct vhu_dev *d, const struct vhu_msg *m,
                const struct request_rule *rule)
{
	if (rule->max == 0 && m->size != rule->size) {
		logmsg("%s: %s: payload of %u bytes, need %u", d->name, rule->name,
		       m->size, rule->size);
		return 0;
	}
	if (rule->max != 0 && (m->size < rule->size || m->size > rule->max)) {
		logmsg("%s: %s: payload of %u bytes, need %u to %u", d->name,
		       rule->name, m->size, rule->size, rule->max);
		return 0;
	}
	return 1;
}

/* Close the connection over a request that must be answered and cannot be. */
static enum result
close_unanswerable(struct vhu_dev *d, const struct vhu_msg *m,
                   const struct request_rule *rule)
{
	char why[128];

	if (rule->handle)
		snprintf(why, sizeof why, "sent a %s that was refused, and its "
		         "reply cannot say so", rule->name);
	else
		snprintf(why, sizeof why, "sent %s (%u), which expects a reply "
		         "this backend cannot give", rule->name, m->request);
	conn_close(d, VHU_END_ERROR, why);
	return REQ_CLOSED;
}

/*
 * Check the payload's size, run the handler, and turn a refusal into what
 * the request's rule says: REQ_FAIL (acked if asked), a reply without
 * payload, or the connection closed (REQ_CLOSED).  Never silence where
 * the frontend waits.
 */
static enum result
dispatch(struct vhu_dev *d, struct vhu_msg *m)
{
	const struct request_rule *rule = request_rule(m->request);
	int res;

	if (!rule->handle) {
		if (rule->refusal == REFUSE_CLOSE)
			return close_unanswerable(d, m, rule);
		logmsg("%s: %s (%u) is not supported", d->name, rule->name,
		       m->request);
		return REQ_FAIL;
	}
	res = payload_size_ok(d, m, rule) ? rule->handle(d, m) : REQ_FAIL;
	if (res != REQ_FAIL)
		return res;
	switch (rule->refusal) {
	case REFUSE_EMPTY:
		m->size = 0;
		return REQ_REPLY;
	case REFUSE_CLOSE:
		return close_unanswerable(d, m, rule);
	default:
		return REQ_FAIL;
	}
}

/* Back to power-on state, memory kept: rings stopped, features cleared. */
static void
device_reset(struct vhu_dev *d)
{
	unsigned q;

	for (q = 0; q < VHU_MAX_QUEUES; q++) {
		vring_stop(&d->vq[q]);
		vring_reset(&d->vq[q]);
		d->vq[q].enabled = 0;
	}
	d->features = 0;
	d->broken = 0;
	d->ops->reset(d->opaque, -1);
}

/* ---- split virtqueue ---------------------------------------------------- */

static int
queue_running(const struct vhu_dev *d, unsigned q)
{
	const struct vhu_vring *vq = &d->vq[q];

	return !d->broken && q < d->ops->num_queues && vq->started &&
	       vq->enabled && vq->desc != NULL;
}

void
vhu_set_broken(struct vhu_dev *d, const char *fmt, ...)
{
	uint64_t one = 1;
	char why[256];
	va_list ap;
	unsigned q;

	if (d->broken)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	logmsg("%s: broken: %s; its queues stop until the frontend resets "
	       "the device or reconnects", d->name, why);
	d->broken = 1;
	for (q = 0; q < d->ops->num_queues; q++)
		if (d->vq[q].err_fd >= 0 &&
		    write_ready(d->vq[q].err_fd, &one, sizeof one) < 0) {
			/* EAGAIN: already signalled */
		}
}

#define KICK_READS_PER_PASS 64

static void
vring_kicked(struct vhu_dev *d, unsigned q)
{
	char buf[256];
	unsigned reads = 0;
	ssize_t n;

	/*
	 * An eventfd holds one counter, a pipe one byte per kick: read until
	 * nothing is left.  One read empties an eventfd (8 bytes) and a pipe
	 * that gave less than asked for, so only a full pipe read is tried
	 * again: one read per wakeup.  Each read only when poll() says it
	 * cannot block: the frontend shares this file description and may
	 * have cleared its O_NONBLOCK.  A pipe flooded with kicks is left for
	 * the next pass after KICK_READS_PER_PASS reads, so that other devices
	 * get theirs.
	 */
	do
		n = read_ready(d->vq[q].kick_fd, buf, sizeof buf);
	while ((n == (ssize_t)sizeof buf || (n < 0 && errno == EINTR)) &&
	       ++reads < KICK_READS_PER_PASS);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		/* The writer closed its end, or the fd failed: no more kicks
		 * will come (and select() would keep saying "readable"). */
		if (n < 0)
			logmsg("%s: queue %u: kick fd: %s; the queue stops", d->name,
			       q, strerror(errno));
		vring_stop(&d->vq[q]);
		return;
	}
	if (TRACE_ON(d->trace, TRACE_RING))
		trace_ring(d->name, q, "kick%s", queue_running(d, q) ? "" :
		           " (not running)");
	if (queue_running(d, q))
		d->ops->queue_event(d->opaque, q);
}

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

static void
desc_decode(const uint8_t *raw, struct desc *dsc)
{
	uint64_t a;
	uint32_t l;
	uint16_t f, n;

	memcpy(&a, raw, 8);
	memcpy(&l, raw + 8, 4);
	memcpy(&f, raw + 12, 2);
	memcpy(&n, raw + 14, 2);
	dsc->addr = le64_to_host(a);
	dsc->len = le32_to_host(l);
	dsc->flags = le16_to_host(f);
	dsc->next = le16_to_host(n);
}

/* Append the segments of one descriptor's buffer (possibly across regions). */
static int
map_buffer(struct vhu_dev *d, struct vhu_elem *e, const struct desc *dsc,
           unsigned q)
{
	uint64_t gpa = dsc->addr, left = dsc->len;
	int writable = dsc->flags & VIRTQ_DESC_F_WRITE;

	if (!writable && e->in_num) {
		vhu_set_broken(d, "queue %u: readable descriptor after a writable one", q);
		return -1;
	}
	/* As in QEMU: no empty buffers.  They carry nothing, and a chain of
	 * them would cost us steps without ever reaching the segment limit. */
	if (left == 0) {
		vhu_set_broken(d, "queue %u: zero-length buffer", q);
		return -1;
	}
	/* The spec caps a chain at 4 GiB; the lengths add up in a size_t. */
	if (e->out_len + e->in_len + left > UINT32_MAX) {
		vhu_set_broken(d, "queue %u: chain longer than 4 GiB", q);
		return -1;
	}
	if (gpa + left < gpa) {
		vhu_set_broken(d, "queue %u: buffer 0x%llx+%llu wraps around", q,
		               (unsigned long long)gpa, (unsigned long long)left);
		return -1;
	}
	while (left) {
		struct vhu_region *r = gpa_region(d, gpa);
		uint64_t off, chunk;
		struct iovec *iov;

		if (!r) {
			vhu_set_broken(d, "queue %u: buffer 0x%llx+%u is outside guest "
			               "memory", q, (unsigned long long)dsc->addr, dsc->len);
			return -1;
		}
		if (e->out_num + e->in_num == VHU_MAX_SEGS) {
			vhu_set_broken(d, "queue %u: chain has more than %d segments", q,
			               VHU_MAX_SEGS);
			return -1;
		}
		off = gpa - r->gpa;
		chunk = r->size - off < left ? r->size - off : left;
		iov = &e->iov[e->out_num + e->in_num];
		iov->iov_base = r->mmap_addr + r->mmap_offset + off;
		iov->iov_len = chunk;
		if (writable) {
			e->in_num++;
			e->in_len += chunk;
		} else {
			e->out_num++;
			e->out_len += chunk;
		}
		gpa += chunk;
		left -= chunk;
	}
	return 0;
}

/*
 * Walk the chain at head into e, checking every rule of the split ring:
 * indices in range, at most as many descriptors as the table holds (which
 * catches loops), indirect tables only as negotiated, well-formed and not
 * nested, and every buffer inside guest memory.
 */
static int
walk_chain(struct vhu_dev *d, unsigned q, uint16_t head, struct vhu_elem *e)
{
	struct vhu_vring *vq = &d->vq[q];
	uint64_t table = 0;        /* indirect table gpa; 0 = the ring's table */
	unsigned max = vq->num, count = 0, i = head;
	uint8_t raw[16];
	struct desc dsc;

	e->head = head;
	e->out_num = e->in_num = 0;
	e->out_len = e->in_len = 0;
	for (;;) {
		if (table) {
			if (gpa_read(d, table + 16ull * i, raw, 16) < 0) {
				vhu_set_broken(d, "queue %u: indirect table outside guest memory", q);
				return -1;
			}
		} else {
			memcpy(raw, vq->desc + 16 * i, 16);
		}
		desc_decode(raw, &dsc);
		if (dsc.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!vhu_has_feature(d, VIRTIO_RING_F_INDIRECT_DESC)) {
				vhu_set_broken(d, "queue %u: indirect descriptor not negotiated", q);
				return -1;
			}
			if (table || count) {
				vhu_set_broken(d, "queue %u: indirect descriptor inside a chain", q);
				return -1;
			}
			if (dsc.flags & VIRTQ_DESC_F_NEXT || dsc.len == 0 || dsc.len % 16 ||
			    dsc.addr == 0) {
				vhu_set_broken(d, "queue %u: malformed indirect descriptor "
				               "(len %u, flags 0x%x)", q, dsc.len, dsc.flags);
				return -1;
			}
			/* No chain is longer than the largest queue: without this
			 * bound a loop of empty descriptors in a 4 GiB table would
			 * cost us 2^28 steps before it is caught. */
			if (dsc.len / 16 > VIRTQ_MAX_SIZE) {
				vhu_set_broken(d, "queue %u: indirect table of %u entries "
				               "(max %d)", q, dsc.len / 16, VIRTQ_MAX_SIZE);
				return -1;
			}
			table = dsc.addr;
			max = dsc.len / 16;
			i = 0;
			continue;
		}
		if (++count > max) {
			vhu_set_broken(d, "queue %u: descriptor chain loops", q);
			return -1;
		}
		if (map_buffer(d, e, &dsc, q) < 0)
			return -1;
		if (!(dsc.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		i = dsc.next;
		if (i >= max) {
			vhu_set_broken(d, "queue %u: next index %u out of range (%u)", q, i, max);
			return -1;
		}
	}
}

static uint16_t
avail_idx(const struct vhu_vring *vq)
{
	return load16(vq->avail + 2);
}

/* With EVENT_IDX, ask for a kick when the guest adds past last_avail;
 * then look again, since it may have added one just before. */
static int
queue_empty_after_rearm(struct vhu_dev *d, struct vhu_vring *vq)
{
	if (!vhu_has_feature(d, VIRTIO_RING_F_EVENT_IDX))
		return 1;
	store16(vq->used + 4 + 8 * vq->num, vq->last_avail);
	atomic_thread_fence(memory_order_seq_cst);
	return avail_idx(vq) == vq->last_avail;
}

static int
queue_take(struct vhu_dev *d, unsigned q, struct vhu_elem *e, int consume)
{
	struct vhu_vring *vq = &d->vq[q];
	uint16_t avail, head;

	if (!queue_running(d, q))
		return 0;
	avail = avail_idx(vq);
	if ((uint16_t)(avail - vq->last_avail) > vq->num) {
		vhu_set_broken(d, "queue %u: avail index moved from %u to %u (size %u)",
		               q, vq->last_avail, avail, vq->num);
		return -1;
	}
	if (avail == vq->last_avail) {
		if (queue_empty_after_rearm(d, vq))
			return 0;
		avail = avail_idx(vq);
	}
	/* Read the ring entry only after seeing the index that published it. */
	atomic_thread_fence(memory_order_acquire);
	head = load16(vq->avail + 4 + 2 * (vq->last_avail % vq->num));
	if (head >= vq->num) {
		vhu_set_broken(d, "queue %u: head %u out of range (%u)", q, head, vq->num);
		return -1;
	}
	if (walk_chain(d, q, head, e) < 0)
		return -1;
	if (TRACE_ON(d->trace, TRACE_RING))
		trace_ring(d->name, q, "%s head %u: out %zu bytes (%u seg), in %zu "
		           "bytes (%u seg), avail entry %u", consume ? "take" : "peek",
		           head, e->out_len, e->out_num, e->in_len, e->in_num,
		           vq->last_avail);
	if (consume)
		vq->last_avail++;
	return 1;
}

int
vhu_queue_pop(struct vhu_dev *d, unsigned q, struct vhu_elem *e)
{
	return queue_take(d, q, e, 1);
}

int
vhu_queue_peek(struct vhu_dev *d, unsigned q, struct vhu_elem *e)
{
	return queue_take(d, q, e, 0);
}

void
vhu_queue_push(struct vhu_dev *d, unsigned q, const struct vhu_elem *e,
               uint32_t len)
{
	vhu_queue_complete(d, q, e->head, len);
}

void
vhu_queue_unpop(struct vhu_dev *d, unsigned q, unsigned n)
{
	if (queue_running(d, q))
		d->vq[q].last_avail -= n;
	if (n && TRACE_ON(d->trace, TRACE_RING))
		trace_ring(d->name, q, "put back %u chain%s", n, n == 1 ? "" : "s");
}

void
vhu_queue_complete(struct vhu_dev *d, unsigned q, uint16_t head, uint32_t len)
{
	struct vhu_vring *vq = &d->vq[q];
	uint8_t *slot;

	if (!queue_running(d, q))
		return;
	slot = vq->used + 4 + 8 * (vq->used_idx % vq->num);
	store32(slot, head);
	store32(slot + 4, len);
	/* The entry must be visible before the index that publishes it. */
	atomic_thread_fence(memory_order_release);
	vq->used_idx++;
	store16(vq->used + 2, vq->used_idx);
	vq->notify_pending = 1;
	if (TRACE_ON(d->trace, TRACE_RING))
		trace_ring(d->name, q, "used head %u len %u (used idx %u)", head, len,
		           vq->used_idx);
}

static int
should_notify(struct vhu_dev *d, struct vhu_vring *vq)
{
	uint16_t old, new, event;
	int valid;

	/* Our used idx store must be visible before we read the guest's
	 * suppression state, or both sides could skip the notification. */
	atomic_thread_fence(memory_order_seq_cst);
	if (!vhu_has_feature(d, VIRTIO_RING_F_EVENT_IDX))
		return !(load16(vq->avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	old = vq->signalled_used;
	new = vq->signalled_used = vq->used_idx;
	valid = vq->signalled_used_valid;
	vq->signalled_used_valid = 1;
	if (!valid)
		return 1;
	event = load16(vq->avail + 4 + 2 * vq->num);
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

void
vhu_flush_notify(struct vhu_dev *d)
{
	uint64_t one = 1;
	unsigned q;

	for (q = 0; q < d->ops->num_queues; q++) {
		struct vhu_vring *vq = &d->vq[q];

		if (!vq->notify_pending)
			continue;
		vq->notify_pending = 0;
		if (vq->call_fd < 0 || !queue_running(d, q) || !should_notify(d, vq)) {
			if (TRACE_ON(d->trace, TRACE_RING))
				trace_ring(d->name, q, "no notification (%s)", vq->call_fd < 0 ?
				           "no call fd" : !queue_running(d, q) ?
				           "not running" : "the guest suppressed it");
			continue;
		}
		/* EAGAIN: a full pipe or eventfd already says "look". */
		if (write_ready(vq->call_fd, &one, sizeof one) < 0 && errno != EAGAIN)
			logmsg("%s: queue %u: notifying the guest: %s", d->name, q,
			       strerror(errno));
		else if (TRACE_ON(d->trace, TRACE_RING))
			trace_ring(d->name, q, "notify (call fd)");
	}
}

size_t
vhu_elem_to_buf(const struct vhu_elem *e, void *buf, size_t len)
{
	uint8_t *out = buf;
	size_t done = 0;
	unsigned i;

	for (i = 0; i < e->out_num && done < len; i++) {
		size_t n = e->iov[i].iov_len < len - done ? e->iov[i].iov_len : len - done;

		memcpy(out + done, e->iov[i].iov_base, n);
		done += n;
	}
	return done;
}

size_t
vhu_buf_to_elem(const struct vhu_elem *e, const void *buf, size_t len)
{
	const uint8_t *in = buf;
	size_t done = 0;
	unsigned i;

	for (i = e->out_num; i < e->out_num + e->in_num && done < len; i++) {
		size_t n = e->iov[i].iov_len < len - done ? e->iov[i].iov_len : len - done;

		memcpy(e->iov[i].iov_base, in + done, n);
		done += n;
	}
	return done;
}

