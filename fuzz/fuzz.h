/*
 * fuzz/fuzz.h - what both libFuzzer targets share: the daemon's own code
 * as it is (vhu.c, util.c, the console device console.c and the sessions
 * of session.c, all #included here: vhu.c with mmap/munmap and
 * util.c with its log fd redirected), a fake backend that calls the
 * device's port_* API, and a "frontend" that plays an
 * event stream against the device over a real vhost-user socket, the way
 * tests/frontend plays QEMU and the guest.  tests/frontend records its
 * runs in this format (VC_RECORD=FILE, tests/record.h): those recordings
 * are the seeds.
 *
 * The event stream.  Numbers are little-endian; a byte where an event
 * should start that names none (or none the target takes) is skipped; an
 * event cut short by the end of the input is dropped.
 *
 *   01 SESSION u32 size     A new frontend process: every connection and fd
 *                           of the previous one is closed, and there is
 *                           fresh guest memory: a zero-filled memfd of size
 *                           bytes (at most 16 MiB).
 *   02 CONNECT u8 slot      Connect slot (slot % 4) to the daemon's socket;
 *                           a connection open on that slot is closed first.
 *   03 CLOSE u8 slot        The frontend closes that connection.
 *   04 MSG u8 slot, u16 len, len bytes, u8 nfds, (nfds % 16) x FD
 *                           One sendmsg() of these bytes on that slot
 *                           (connected first if it is not): header and
 *                           payload as sent, so a size may lie and a
 *                           message may span events.  The fds ride along.
 *   05 WRITE u32 off, u16 len, len bytes     The guest writes its memory.
 *   06 ZERO u32 off, u32 len                 The guest zeroes its memory.
 *   07 KICK u8 peer         Write a u64 1 to that peer (see below).
 *   08 INPUT u16 len, len bytes              The host types these bytes.
 *   09 HANGUP u8 peer       The frontend closes its end of that peer.
 *
 *   FD: u8 kind (% 8), and for kind 1 a u32 size.
 *     0 the session's guest memory   1 another memfd of size bytes
 *     2 an eventfd   3 a pipe's read end   4 a pipe's write end
 *     5 one end of a socketpair      6 anything else (/dev/null)
 *     7 a file whose reads never end (/dev/zero)
 *   Kinds 2-5 have a far end the frontend keeps: the same eventfd, the
 *   pipe's other end, the other socket.  These are the "peers", numbered
 *   in the order sent (at most 256 per session); KICK and HANGUP take a
 *   peer number modulo their count.  A kick fd's peer is where kicks go.
 *
 * After every event but WRITE and ZERO the daemon's loop runs until it
 * has nothing left to do: vhu_serve(), the backend's serve(), the
 * device's vc_after_pass(), vhu_flush_notify(), as in run().  The fake
 * backend types pending INPUT whenever the guest has a receive buffer, and
 * reads console 0's output as one of its session's readers.
 *
 * What counts as a bug (besides ASan and UBSan): guest memory accessed
 * outside a live mapping (each one has a guard page after it, and what
 * vhu unmaps stays inaccessible until the input ends), input not landing in exactly one used entry of its
 * length, a malformed reply, a daemon loop that never settles, a
 * connection close the daemon does not notice or that leaves fds, ring
 * fds or mappings behind, and an fd leaked, or closed that was not the
 * daemon's.
 *
 * FUZZ_VERBOSE=1 in the environment shows the daemon's log, and what the
 * fake backend sends and receives.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static void fuzz_fail(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

/* ---- guest memory mappings: guard pages, quarantine, leak check -------- */

#define MAX_MAPPINGS 1024

struct mapping {
	uint8_t *base;
	size_t len;        /* as mapped by vhu */
	size_t reserved;   /* len in whole pages, plus the guard page */
	int live;          /* 0: unmapped by vhu, inaccessible until input end */
};

static struct mapping mappings[MAX_MAPPINGS];
static unsigned nmappings;
static size_t page_size;

static size_t
page_round(size_t n)
{
	return (n + page_size - 1) / page_size * page_size;
}

/* Give back the address space of everything vhu has unmapped. */
static void
quarantine_release(void)
{
	unsigned i, kept = 0;

	for (i = 0; i < nmappings; i++) {
		if (mappings[i].live)
			mappings[kept++] = mappings[i];
		else
			munmap(mappings[i].base, mappings[i].reserved);
	}
	nmappings = kept;
}

/* vhu's mmap(): the mapping, then an inaccessible guard page. */
static void *
fuzz_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	size_t reserved = page_round(len) + page_size;
	uint8_t *r;
	void *p;
	int e;

	if (nmappings == MAX_MAPPINGS)
		quarantine_release();
	if (nmappings == MAX_MAPPINGS)
		fuzz_fail("vhu holds %d guest memory mappings", MAX_MAPPINGS);
	r = mmap(addr, reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
	         -1, 0);
	if (r == MAP_FAILED)
		return MAP_FAILED;
	p = mmap(r, len, prot, flags | MAP_FIXED, fd, off);
	if (p == MAP_FAILED) {
		e = errno;
		munmap(r, reserved);
		errno = e;
		return MAP_FAILED;
	}
	mappings[nmappings++] = (struct mapping){ r, len, reserved, 1 };
	return p;
}

/* vhu's munmap(): must match a live mapping; the range stays reserved and
 * inaccessible, so that a stale pointer into it faults at once. */
static int
fuzz_munmap(void *addr, size_t len)
{
	unsigned i;

	for (i = 0; i < nmappings; i++)
		if (mappings[i].live && mappings[i].base == addr)
			break;
	if (i == nmappings || mappings[i].len != len)
		fuzz_fail("munmap(%p, %zu) matches no live mapping", addr, len);
	if (mmap(addr, page_round(len), PROT_NONE,
	         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED)
		fuzz_fail("quarantining an unmapped range: %s", strerror(errno));
	mappings[i].live = 0;
	return 0;
}

/* The code under test, with mmap/munmap redirected above. */
#define mmap fuzz_mmap
#define munmap fuzz_munmap
#include "../vhu.c"
#undef mmap
#undef munmap

/* util.c logs to STDERR_FILENO: make that /dev/null unless FUZZ_VERBOSE. */
static int log_fd = 2;
static int verbose;
#undef STDERR_FILENO
#define STDERR_FILENO log_fd
#include "../util.c"
#undef STDERR_FILENO
#define STDERR_FILENO 2
#include "../trace.c"

/* The device and the sessions, as the daemon links them; the fake
 * backend below is the only way in (backend.h says what one is). */
#include "../console.c"
#include "../replay.c"
#include "../session.c"
#include "../backends/backend.h"

static void
fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* ---- the event stream ------------------------------------------------- */

enum event_op {
	EV_SESSION = 1, EV_CONNECT, EV_CLOSE, EV_MSG, EV_WRITE, EV_ZERO,
	EV_KICK, EV_INPUT, EV_HANGUP,
	EV_LAST = EV_HANGUP
};
#define EV_BIT(op) (1u << (op))
#define EV_ALL     (EV_BIT(EV_LAST + 1) - 2)
/* What the guest (and the host's typist) does, as opposed to the
 * frontend process's vhost-user connections and fds. */
#define EV_GUEST   (EV_BIT(EV_WRITE) | EV_BIT(EV_ZERO) | EV_BIT(EV_KICK) | \
                    EV_BIT(EV_INPUT))

enum fd_kind {
	FD_GUEST, FD_MEMFD, FD_EVENTFD, FD_PIPE_R, FD_PIPE_W, FD_SOCKET, FD_OTHER,
	FD_ENDLESS, FD_KINDS
};

#define NSLOTS      4
#define MAX_PEERS   256
#define MAX_MSG_FDS 15
#define MAX_MEMFD   (16u << 20)
#define MAX_TYPED   65536
#define MAX_PASSES  1000       /* loop passes after one event (a 32768-entry
                                  ring takes 128 at 256 chains a pass) */

struct fd_spec {
	uint8_t kind;
	uint32_t size;             /* FD_MEMFD */
};

struct event {
	uint8_t op;
	uint8_t arg;               /* slot (CONNECT CLOSE MSG), peer (KICK HANGUP) */
	uint32_t off, len;         /* WRITE ZERO; len is the size for SESSION */
	const uint8_t *bytes;      /* len of them: MSG WRITE INPUT */
	unsigned nfds;
	struct fd_spec fds[MAX_MSG_FDS];
};

struct input {
	const uint8_t *p;
	size_t n;
};

static int
take(struct input *in, size_t len, const uint8_t **out)
{
	if (in->n < len)
		return 0;
	*out = in->p;
	in->p += len;
	in->n -= len;
	return 1;
}

static int
take_le(struct input *in, size_t len, uint32_t *v)
{
	const uint8_t *b;
	size_t i;

	if (!take(in, len, &b))
		return 0;
	for (*v = 0, i = 0; i < len; i++)
		*v |= (uint32_t)b[i] << 8 * i;
	return 1;
}

static int
take_fd_specs(struct input *in, struct event *ev)
{
	uint32_t n, kind, size;
	unsigned i;

	if (!take_le(in, 1, &n))
		return 0;
	ev->nfds = n % (MAX_MSG_FDS + 1);
	for (i = 0; i < ev->nfds; i++) {
		size = 0;
		if (!take_le(in, 1, &kind) ||
		    (kind % FD_KINDS == FD_MEMFD && !take_le(in, 4, &size)))
			return 0;
		ev->fds[i].kind = kind % FD_KINDS;
		ev->fds[i].size = size;
	}
	return 1;
}

/* The fields of an event whose op byte was just taken. */
static int
take_fields(struct input *in, struct event *ev)
{
	uint32_t v = 0;

	switch (ev->op) {
	case EV_SESSION:
		return take_le(in, 4, &ev->len);
	case EV_CONNECT: case EV_CLOSE: case EV_KICK: case EV_HANGUP:
		if (!take_le(in, 1, &v))
			return 0;
		ev->arg = (uint8_t)v;
		return 1;
	case EV_MSG:
		if (!take_le(in, 1, &v))
			return 0;
		ev->arg = (uint8_t)v;
		return take_le(in, 2, &ev->len) && take(in, ev->len, &ev->bytes) &&
		       take_fd_specs(in, ev);
	case EV_WRITE:
		return take_le(in, 4, &ev->off) && take_le(in, 2, &ev->len) &&
		       take(in, ev->len, &ev->bytes);
	case EV_ZERO:
		return take_le(in, 4, &ev->off) && take_le(in, 4, &ev->len);
	default: /* EV_INPUT */
		return take_le(in, 2, &ev->len) && take(in, ev->len, &ev->bytes);
	}
}

/* The next event of a kind in allowed (EV_BIT()s); 0 at the input's end. */
static int
event_next(struct input *in, unsigned allowed, struct event *ev)
{
	const uint8_t *op;

	for (;;) {
		if (!take(in, 1, &op))
			return 0;
		if (*op > EV_LAST || !(allowed & EV_BIT(*op)))
			continue;
		memset(ev, 0, sizeof *ev);
		ev->op = *op;
		return take_fields(in, ev);
	}
}

/* ---- the frontend and the device ---------------------------------------- */

/* A reply stream, parsed as it arrives: every reply must be well-formed. */
struct reply_parser {
	uint8_t hdr[VHOST_USER_HDR_SIZE];
	size_t have;               /* header bytes so far */
	uint32_t left;             /* payload bytes still to come */
	int eof;
};

static struct frontend {
	int guest_fd;              /* this session's guest memory, or -1 */
	uint8_t *guest;            /* our mapping of it (NULL when empty) */
	uint32_t guest_size;
	int slot[NSLOTS];          /* connections, -1 when closed */
	struct reply_parser reply[NSLOTS];
	int peer[MAX_PEERS];       /* far ends of the fds sent, -1 after HANGUP */
	unsigned npeers;
	uint8_t typed[MAX_TYPED];  /* host input not yet taken by the guest */
	size_t ntyped;
} fe;

static struct vc_device con;
static const char *port_names[MAX_PORTS];   /* no names */
static struct vc_config opts = {   /* one port, a size: RESIZE is reachable */
	.nports = 1, .names = port_names, .cols = 80, .rows = 24,
	.resize_order = RESIZE_COLS_ROWS, .max_queue_size = VIRTQ_MAX_SIZE,
};
static struct endpoint fake_ep;    /* console 0's one way in */
static struct reader out_reader;   /* reads console 0's output ... */
static int out_fd = -1;            /* ... into /dev/null */
static char sock_path[108];   /* as struct vhu_dev's path */

/* ---- the fake backend: a host side that types INPUT and reads output ---- */

static int
fake_add_fds(struct endpoint *ep, fd_set *rd, fd_set *wr, int maxfd)
{
	(void)ep;
	(void)rd;
	(void)wr;
	return maxfd;
}

/* Typed bytes go to the guest in one used entry of exactly their length. */
static void
type_into(struct port *p, size_t n)
{
	struct vhu_vring *vq = &p->vc->vhu.vq[p->rxq];
	uint16_t before = vq->used_idx;
	uint32_t len;

	port_input(p, fe.typed, n);
	if (verbose)
		logmsg("fuzz: %zu bytes typed: \"%.*s\"", n, (int)n, (const char *)fe.typed);
	if (vq->used_idx != (uint16_t)(before + 1))
		fuzz_fail("%zu bytes typed with room for them: used idx went %u -> %u",
		          n, before, vq->used_idx);
	memcpy(&len, vq->used + 4 + 8 * (before % vq->num) + 4, 4);
	len = le32_to_host(len);
	if (len != n)
		fuzz_fail("%zu bytes typed, used entry says %u", n, len);
}

static void
fake_serve(struct endpoint *ep, const fd_set *rd, const fd_set *wr)
{
	size_t room, n;

	(void)rd;
	(void)wr;
	/* The session copied the guest's output out of guest memory (the
	 * guard pages catch a read outside it); a reader takes it all. */
	if (reader_pending(ep->sess, &out_reader) &&
	    reader_flush(ep->sess, &out_reader, out_fd) < 0)
		fuzz_fail("writing output to /dev/null: %s", strerror(errno));
	while (fe.ntyped && (room = port_input_room(ep->port)) > 0) {
		n = room < fe.ntyped ? room : fe.ntyped;
		type_into(ep->port, n);
		memmove(fe.typed, fe.typed + n, fe.ntyped - n);
		fe.ntyped -= n;
	}
}

static const struct backend fake_backend = {
	.name = "fuzz",
	.add_fds = fake_add_fds,
	.serve = fake_serve,
};

/* ---- replies ------------------------------------------------------------ */

static void
reply_bytes(struct reply_parser *rp, const uint8_t *b, size_t n)
{
	uint32_t flags, size;

	while (n) {
		if (rp->left) {
			size_t k = n < rp->left ? n : rp->left;

			rp->left -= k;
			b += k;
			n -= k;
			continue;
		}
		rp->hdr[rp->have++] = *b++;
		n--;
		if (rp->have < VHOST_USER_HDR_SIZE)
			continue;
		rp->have = 0;
		memcpy(&flags, rp->hdr + 4, 4);
		memcpy(&size, rp->hdr + 8, 4);
		if (flags != (VHOST_USER_VERSION | VHOST_USER_REPLY_MASK) ||
		    size > VHU_MAX_PAYLOAD)
			fuzz_fail("reply with flags 0x%x and size %u", flags, size);
		rp->left = size;
	}
}

static void
replies_read(unsigned s)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	uint8_t buf[4096];
	struct iovec iov = { buf, sizeof buf };
	struct msghdr mh;
	ssize_t n;

	while (fe.slot[s] >= 0 && !fe.reply[s].eof) {
		memset(&mh, 0, sizeof mh);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof ctl.buf;
		n = recvmsg(fe.slot[s], &mh, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			fe.reply[s].eof = 1;
			return;
		}
		if (mh.msg_controllen)
			fuzz_fail("a reply came with ancillary data (fds?)");
		reply_bytes(&fe.reply[s], buf, (size_t)n);
	}
}

/* ---- the daemon's loop -------------------------------------------------- */

/* Passes of run()'s loop, without waiting, until a pass finds nothing to
 * do: no fd ready, no chains left from the last pass, nothing typed. */
static void
daemon_settle(void)
{
	unsigned pass, s;

	for (pass = 0; pass < MAX_PASSES; pass++) {
		struct timeval now = { 0, 0 };
		size_t typed = fe.ntyped;
		int maxfd, n, busy;
		fd_set rd, wr;

		FD_ZERO(&rd);
		FD_ZERO(&wr);
		busy = vhu_has_work(&con.vhu);
		maxfd = vhu_add_fds(&con.vhu, &rd, -1);
		maxfd = fake_ep.be->add_fds(&fake_ep, &rd, &wr, maxfd);
		n = select(maxfd + 1, &rd, &wr, NULL, &now);
		if (n < 0 && errno == EINTR)    /* libFuzzer's timer */
			continue;
		if (n < 0)
			fuzz_fail("select: %s", strerror(errno));
		vhu_serve(&con.vhu, &rd);
		fake_ep.be->serve(&fake_ep, &rd, &wr);
		vc_after_pass(&con);
		vhu_flush_notify(&con.vhu);
		for (s = 0; s < NSLOTS; s++)
			replies_read(s);
		if (n == 0 && !busy && fe.ntyped == typed)
			return;
	}
	fuzz_fail("the daemon's loop still has work after %d passes", MAX_PASSES);
}

/* ---- fds for messages ------------------------------------------------- */

static int
memfd_sized(uint32_t size)
{
	int fd = (int)syscall(SYS_memfd_create, "fuzz", 0u);

	if (fd < 0 || ftruncate(fd, size < MAX_MEMFD ? size : MAX_MEMFD) < 0)
		fuzz_fail("memfd: %s", strerror(errno));
	return fd;
}

static void
peer_add(int fd)
{
	if (fe.npeers < MAX_PEERS)
		fe.peer[fe.npeers++] = fd;
	else
		close(fd);
}

/* An fd to send; its far end, if any, becomes a peer. */
static int
fd_make(const struct fd_spec *f)
{
	int p[2], fd;

	switch (f->kind) {
	case FD_GUEST:
		return fe.guest_fd >= 0 ? dup(fe.guest_fd) : -1;
	case FD_MEMFD:
		return memfd_sized(f->size);
	case FD_EVENTFD:
		if ((fd = eventfd(0, EFD_NONBLOCK)) < 0)
			fuzz_fail("eventfd: %s", strerror(errno));
		peer_add(dup(fd));
		return fd;
	case FD_PIPE_R:
	case FD_PIPE_W:
		if (pipe(p) < 0)
			fuzz_fail("pipe: %s", strerror(errno));
		if (f->kind == FD_PIPE_R) {   /* the daemon reads: we keep p[1] */
			fd = p[0];
			p[0] = p[1];
		} else {
			fd = p[1];
		}
		set_nonblock(p[0]);
		peer_add(p[0]);
		return fd;
	case FD_SOCKET:
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, p) < 0)
			fuzz_fail("socketpair: %s", strerror(errno));
		set_nonblock(p[1]);
		peer_add(p[1]);
		return p[0];
	case FD_OTHER:
		return open("/dev/null", O_RDWR);
	default:
		return open("/dev/zero", O_RDWR);
	}
}

/* ---- events ------------------------------------------------------------- */

static void
slot_close(unsigned s)
{
	close_fd(&fe.slot[s]);
	memset(&fe.reply[s], 0, sizeof fe.reply[s]);
}

static void
slot_connect(unsigned s)
{
	struct sockaddr_un sa;

	slot_close(s);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, sock_path);
	fe.slot[s] = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fe.slot[s] < 0 || connect(fe.slot[s], (struct sockaddr *)&sa, sizeof sa) < 0)
		fuzz_fail("connecting to %s: %s", sock_path, strerror(errno));
	set_nonblock(fe.slot[s]);
}

static void
msg_send(const struct event *ev)
{
	union {
		char buf[CMSG_SPACE(MAX_MSG_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { (void *)ev->bytes, ev->len };
	unsigned s = ev->arg % NSLOTS, i, n = 0;
	int fds[MAX_MSG_FDS];
	struct msghdr mh;

	if (fe.slot[s] < 0) {
		slot_connect(s);
		daemon_settle();
	}
	for (i = 0; i < ev->nfds; i++)
		if ((fds[n] = fd_make(&ev->fds[i])) >= 0)
			n++;
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (n) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof ctl);
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	}
	/* Refused when the daemon has closed the connection: as for a frontend. */
	(void)sendmsg(fe.slot[s], &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	for (i = 0; i < n; i++)
		close(fds[i]);
}

/* The guest writes bytes within its memory. */
static void
guest_write(uint32_t off, const uint8_t *bytes, uint32_t len)
{
	if (!fe.guest || off >= fe.guest_size)
		return;
	memcpy(fe.guest + off, bytes, len < fe.guest_size - off ? len : fe.guest_size - off);
}

/* The guest zeroes its memory.  Whole pages are dropped from the memfd
 * instead (they read as zeros again, in every mapping): zeroing megabytes
 * page by page would take most of the fuzzer's time. */
static void
guest_zero(uint32_t off, uint32_t len)
{
	uint32_t first, end;

	if (!fe.guest || off >= fe.guest_size)
		return;
	if (len > fe.guest_size - off)
		len = fe.guest_size - off;
	first = (uint32_t)page_round(off);
	end = (off + len) / page_size * page_size;
	if (end <= first) {
		memset(fe.guest + off, 0, len);
		return;
	}
	memset(fe.guest + off, 0, first - off);
	if (madvise(fe.guest + first, end - first, MADV_REMOVE) < 0)
		fuzz_fail("dropping guest memory pages: %s", strerror(errno));
	memset(fe.guest + end, 0, off + len - end);
}

/* Write a kick to peer k; the caller lets the daemon see it. */
static void
peer_kick(unsigned k)
{
	uint64_t one = 1;

	if (fe.npeers && fe.peer[k % fe.npeers] >= 0)
		(void)write(fe.peer[k % fe.npeers], &one, sizeof one);
}

static void
typed_add(const uint8_t *b, size_t n)
{
	if (n > MAX_TYPED - fe.ntyped)
		n = MAX_TYPED - fe.ntyped;
	memcpy(fe.typed + fe.ntyped, b, n);
	fe.ntyped += n;
}

/* The frontend process exits: everything it held closes at once. */
static void
session_end(void)
{
	unsigned i;

	for (i = 0; i < NSLOTS; i++)
		slot_close(i);
	for (i = 0; i < fe.npeers; i++)
		close_fd(&fe.peer[i]);
	fe.npeers = 0;
	if (fe.guest)
		munmap(fe.guest, fe.guest_size);
	fe.guest = NULL;
	close_fd(&fe.guest_fd);
	fe.guest_size = 0;
	fe.ntyped = 0;
	daemon_settle();
}

static void
session_start(uint32_t size)
{
	session_end();
	fe.guest_size = size < MAX_MEMFD ? size : MAX_MEMFD;
	fe.guest_fd = memfd_sized(fe.guest_size);
	if (fe.guest_size && (fe.guest = mmap(NULL, fe.guest_size, PROT_READ | PROT_WRITE,
	                                      MAP_SHARED, fe.guest_fd, 0)) == MAP_FAILED)
		fuzz_fail("mapping guest memory: %s", strerror(errno));
}

static void
event_run(const struct event *ev)
{
	switch (ev->op) {
	case EV_SESSION:
		session_start(ev->len);
		return;
	case EV_CONNECT:
		slot_connect(ev->arg % NSLOTS);
		break;
	case EV_CLOSE:
		slot_close(ev->arg % NSLOTS);
		break;
	case EV_MSG:
		msg_send(ev);
		break;
	case EV_WRITE:
		guest_write(ev->off, ev->bytes, ev->len);
		return;
	case EV_ZERO:
		guest_zero(ev->off, ev->len);
		return;
	case EV_KICK:
		peer_kick(ev->arg);
		break;
	case EV_INPUT:
		typed_add(ev->bytes, ev->len);
		break;
	case EV_HANGUP:
		if (fe.npeers)
			close_fd(&fe.peer[ev->arg % fe.npeers]);
		break;
	}
	daemon_settle();
}

/* ---- one input: set up, and check everything is given back -------------- */

#define FD_SCAN_MAX 65536
static uint8_t fds_at_start[FD_SCAN_MAX / 8];

static void
fd_scan(uint8_t *set)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;

	if (!dir)
		fuzz_fail("/proc/self/fd: %s", strerror(errno));
	memset(set, 0, FD_SCAN_MAX / 8);
	while ((de = readdir(dir))) {
		int fd = atoi(de->d_name);

		if (de->d_name[0] != '.' && fd != dirfd(dir) && fd < FD_SCAN_MAX)
			set[fd / 8] |= 1u << fd % 8;
	}
	closedir(dir);
}

static void
fd_check(void)
{
	static uint8_t now[FD_SCAN_MAX / 8];
	int fd;

	fd_scan(now);
	if (!memcmp(now, fds_at_start, sizeof now))
		return;
	for (fd = 0; fd < FD_SCAN_MAX; fd++) {
		int was = fds_at_start[fd / 8] >> fd % 8 & 1, is = now[fd / 8] >> fd % 8 & 1;

		if (was != is)
			fuzz_fail("fd %d %s during the input", fd, is ? "leaked" : "was closed");
	}
}

/* Once per process, as the daemon's main() does what matters here. */
static void
fuzz_setup(void)
{
	struct sigaction sa;
	struct rlimit rl;
	const char *tmp;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	/* Room for call and err fds above FD_SETSIZE (fd_move_high()). */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	if (!verbose && (log_fd = open("/dev/null", O_WRONLY)) < 0)
		fuzz_fail("/dev/null: %s", strerror(errno));
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	if ((out_fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
		fuzz_fail("/dev/null: %s", strerror(errno));
	/* A crashed input leaves its socket file: in $TMPDIR, run.sh's. */
	if (!(tmp = getenv("TMPDIR")) || strlen(tmp) > sizeof sock_path - 32)
		tmp = "/tmp";
	snprintf(sock_path, sizeof sock_path, "%s/vc-fuzz-%ld.sock", tmp, (long)getpid());
}

static void
frontend_begin(void)
{
	static int setup_done;
	char err[256];
	unsigned i;

	if (!setup_done) {
		fuzz_setup();
		setup_done = 1;
	}
	fd_scan(fds_at_start);
	memset(&fe, 0, sizeof fe);
	fe.guest_fd = -1;
	for (i = 0; i < NSLOTS; i++)
		fe.slot[i] = -1;
	/* The daemon's own set-up of device 0, with the fake backend as the
	 * one way in to its console. */
	memset(&con, 0, sizeof con);
	vc_device_init(&con, &opts, 0);
	if (sess_init(&con.ports[0].sess, 0, 4096, NULL, err, sizeof err) < 0)
		fuzz_fail("%s", err);
	fake_ep = (struct endpoint){ .be = &fake_backend,
		.port = &con.ports[0], .sess = &con.ports[0].sess };
	reader_attach(&con.ports[0].sess, &out_reader, "fuzz reader");
	if (vhu_listen(&con.vhu, sock_path, err, sizeof err) < 0)
		fuzz_fail("%s", err);
}

/* The frontend leaves: the daemon must notice and give everything back. */
static void
frontend_end(void)
{
	unsigned q;

	session_end();
	if (con.vhu.conn_fd >= 0)
		fuzz_fail("the frontend closed every connection; the daemon kept one");
	if (con.vhu.backend_fd >= 0 || con.vhu.nregions || con.vhu.rx.nfds)
		fuzz_fail("after the frontend left: backend fd %d, %u regions, %u fds held",
		          con.vhu.backend_fd, con.vhu.nregions, con.vhu.rx.nfds);
	for (q = 0; q < VHU_MAX_QUEUES; q++)
		if (con.vhu.vq[q].kick_fd >= 0 || con.vhu.vq[q].call_fd >= 0 ||
		    con.vhu.vq[q].err_fd >= 0)
			fuzz_fail("after the frontend left: queue %u still has an fd", q);
	for (q = 0; q < nmappings; q++)
		if (mappings[q].live)
			fuzz_fail("after the frontend left: %zu bytes still mapped",
			          mappings[q].len);
	vhu_close(&con.vhu);
	reader_detach(&con.ports[0].sess, &out_reader);
	sess_free(&con.ports[0].sess);
	quarantine_release();
	fd_check();
}

#endif
