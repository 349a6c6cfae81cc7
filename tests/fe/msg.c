/*
 * tests/fe/msg.c - vhost-user messaging and the connection
 * (contract: frontend.h).
 */
#include "frontend.h"

/* ---------------------------------------------------------------------- */
/* vhost-user messaging                                                    */


/* Wait until fd is readable; while waiting on the main socket, serve the
 * backend channel too.  false on timeout. */
static bool
wait_in(struct fe *fe, int fd, int64_t dl)
{
	for (;;) {
		struct pollfd pf[2] = { { fd, POLLIN, 0 }, { -1, POLLIN, 0 } };
		int n = 1, r;
		if (fd == fe->sock && fe->backend_fd >= 0)
			pf[n++].fd = fe->backend_fd;
		r = poll(pf, n, ms_left(dl));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail(fe, "poll: %s", strerror(errno));
		}
		if (r == 0)
			return false;
		if (pf[0].revents)
			return true;
		if (n > 1 && pf[1].revents)
			backend_service(fe);
		if (ms_left(dl) == 0)
			return false;
	}
}

/* 1 read, 0 EOF (or reset), -1 timeout.  Received fds are closed and
 * counted in m->nfds. */
static int
read_full(struct fe *fe, int fd, void *buf, size_t len, int64_t dl,
          struct vu_msg *m)
{
	size_t got = 0;
	while (got < len) {
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int) * 16)];
		} cb;
		struct iovec iov = { (char *)buf + got, len - got };
		struct msghdr mh = { 0 };
		struct cmsghdr *ch;
		ssize_t n;
		if (!wait_in(fe, fd, dl))
			return -1;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cb.b;
		mh.msg_controllen = sizeof cb.b;
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (errno == ECONNRESET)
				return 0;
			fail(fe, "recvmsg: %s", strerror(errno));
		}
		for (ch = CMSG_FIRSTHDR(&mh); ch; ch = CMSG_NXTHDR(&mh, ch)) {
			if (ch->cmsg_level == SOL_SOCKET &&
			    ch->cmsg_type == SCM_RIGHTS) {
				int k, nf = (int)((ch->cmsg_len - CMSG_LEN(0)) /
						  sizeof(int));
				for (k = 0; k < nf; k++) {
					int f;
					memcpy(&f,
					       CMSG_DATA(ch) + k * sizeof(int),
					       sizeof f);
					close(f);
					if (m)
						m->nfds++;
				}
			}
		}
		if (n == 0)
			return 0;
		got += (size_t)n;
	}
	return 1;
}

int
read_msg(struct fe *fe, int fd, struct vu_msg *m, int64_t dl)
{
	int r;
	m->nfds = 0;
	r = read_full(fe, fd, &m->h, VU_HDR_SIZE, dl, m);
	if (r <= 0)
		return r;
	if (m->h.size > sizeof m->p)
		fail(fe,
		     "message from the daemon claims %u payload bytes (request "
		     "%u flags 0x%x)",
		     m->h.size, m->h.request, m->h.flags);
	return read_full(fe, fd, m->p, m->h.size, dl, m);
}

/* The daemon may talk on the backend channel (CONFIG_CHANGE_MSG). */
void
backend_service(struct fe *fe)
{
	struct vu_msg m;
	int r = read_msg(fe, fe->backend_fd, &m, deadline_in(fe->timeout_s));
	if (r == 0) {
		close(fe->backend_fd);
		fe->backend_fd = -1;
		return;
	}
	if (r < 0)
		fail(fe, "backend channel: message cut short");
	note(fe, "backend channel: request %u flags 0x%x size %u", m.h.request,
	     m.h.flags, m.h.size);
	if (m.h.request == 2 && m.h.size == 0)
		fe->config_changes++;
	if (m.h.flags & VU_NEED_REPLY) {
		uint8_t b[20];
		put32(b, m.h.request);
		put32(b + 4, VU_VERSION | VU_REPLY);
		put32(b + 8, 8);
		put64(b + 12, 0);
		if (send(fe->backend_fd, b, sizeof b, MSG_NOSIGNAL) < 0)
			fail(fe, "backend channel reply: %s", strerror(errno));
	}
}

static int
send_fds(int fd, const void *buf, size_t len, const int *fds, int nfds)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int) * 16)]; } cb;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { 0 };
	size_t off;
	ssize_t n;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds > 0) {
		struct cmsghdr *ch;
		memset(&cb, 0, sizeof cb);
		mh.msg_control = cb.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		ch = CMSG_FIRSTHDR(&mh);
		ch->cmsg_level = SOL_SOCKET;
		ch->cmsg_type = SCM_RIGHTS;
		ch->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(ch), fds, sizeof(int) * (size_t)nfds);
	}
	do
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (off = (size_t)n; off < len; off += (size_t)n) {
		n = send(fd, (const char *)buf + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n < 0)
			return -errno;
	}
	return 0;
}

/* Send a message with a header of our choosing (size may lie). */
int
vu_send_raw(struct fe *fe, int fd, uint32_t req, uint32_t flags, uint32_t size,
            const void *payload, size_t len, const int *fds, int nfds)
{
	uint8_t b[VU_HDR_SIZE + 4096];
	if (len > 4096)
		fail(fe, "internal: payload too big");
	put32(b, req);
	put32(b + 4, flags);
	put32(b + 8, size);
	if (len)
		memcpy(b + VU_HDR_SIZE, payload, len);
	rec_msg(fe, fd, b, VU_HDR_SIZE + len, fds, nfds);
	return send_fds(fd, b, VU_HDR_SIZE + len, fds, nfds);
}

void
vu_send(struct fe *fe, uint32_t req, uint32_t flags, const void *payload,
        uint32_t size, const int *fds, int nfds)
{
	int r;
	if (fe->sock < 0)
		fail(fe, "%s: not connected", reqname(req));
	r = vu_send_raw(fe, fe->sock, req, flags, size, payload, size, fds,
			nfds);
	if (r < 0)
		fail(fe, "sending %s (%u): %s (daemon closed the connection?)",
		     reqname(req), req, strerror(-r));
}

void
recv_reply(struct fe *fe, struct vu_msg *m, const char *what)
{
	int r = read_msg(fe, fe->sock, m, deadline_in(fe->timeout_s));
	if (r == 0)
		fail(fe,
		     "%s: the daemon closed the connection instead of replying",
		     what);
	if (r < 0)
		fail(fe, "%s: no reply within %g s", what, fe->timeout_s);
	if (m->nfds)
		fail(fe, "%s: the reply carried %d fds", what, m->nfds);
}

/* A reply must be {req, 0x5, 8} + u64; returns the u64. */
uint64_t
reply_u64(struct fe *fe, uint32_t req, const char *what)
{
	struct vu_msg m;
	recv_reply(fe, &m, what);
	if (m.h.request != req || m.h.flags != (VU_VERSION | VU_REPLY) ||
	    m.h.size != 8)
		fail(fe,
		     "%s: reply header {request %u, flags 0x%x, size %u}, want "
		     "{%u, 0x5, 8}; payload %s",
		     what, m.h.request, m.h.flags, m.h.size, req,
		     hex(m.p, m.h.size));
	return get64(m.p);
}

/* The next reply is exactly these bytes (header + payload). */
void
expect_reply_bytes(struct fe *fe, const uint8_t *want, size_t len,
                   const char *what)
{
	struct vu_msg m;
	uint8_t got[VU_HDR_SIZE + 4096];
	recv_reply(fe, &m, what);
	memcpy(got, &m.h, VU_HDR_SIZE);
	memcpy(got + VU_HDR_SIZE, m.p, m.h.size);
	if (VU_HDR_SIZE + m.h.size != len || memcmp(got, want, len))
		fail(fe, "%s: reply [%s], want [%s]", what,
		     hex(got, VU_HDR_SIZE + m.h.size), hex(want, len));
}

void
expect_reply_u64_exact(struct fe *fe, uint32_t req, uint64_t v,
                       const char *what)
{
	uint8_t b[20];
	put32(b, req);
	put32(b + 4, VU_VERSION | VU_REPLY);
	put32(b + 8, 8);
	put64(b + 12, v);
	expect_reply_bytes(fe, b, sizeof b, what);
}

uint64_t
vu_get_u64(struct fe *fe, uint32_t req)
{
	vu_send(fe, req, VU_VERSION, NULL, 0, NULL, 0);
	return reply_u64(fe, req, reqname(req));
}

/* A request without a reply of its own: with REPLY_ACK, ask for the ack
 * and require exactly {req, 0x5, 8, u64 0}. */
void
vu_ok(struct fe *fe, uint32_t req, const void *p, uint32_t size, const int *fds,
      int nfds, const char *what)
{
	vu_send(fe, req, VU_VERSION | (fe->neg.reply_ack ? VU_NEED_REPLY : 0),
		p, size, fds, nfds);
	if (fe->neg.reply_ack)
		expect_reply_u64_exact(fe, req, 0, what);
}



/* With need_reply: the ack must be exactly {req, 0x5, 8} and non-zero. */
void
vu_fails(struct fe *fe, uint32_t req, const void *p, uint32_t size,
         const int *fds, int nfds, const char *what)
{
	uint64_t v;
	vu_send(fe, req, VU_VERSION | VU_NEED_REPLY, p, size, fds, nfds);
	v = reply_u64(fe, req, what);
	if (v == 0)
		fail(fe, "%s: acked 0 (success), want a failure (non-zero)",
		     what);
}



/* vu_ok (want_ok) or vu_fails (!want_ok) with a u64 payload. */
void
vu_u64(struct fe *fe, bool want_ok, uint32_t req, uint64_t v, const int *fds,
       int nfds, const char *what)
{
	uint8_t b[8];
	put64(b, v);
	if (want_ok)
		vu_ok(fe, req, b, 8, fds, nfds, what);
	else
		vu_fails(fe, req, b, 8, fds, nfds, what);
}

/* The same with a vring state payload {u32 index, u32 num}. */
void
vu_state(struct fe *fe, bool want_ok, uint32_t req, uint32_t idx, uint32_t num,
         const char *what)
{
	uint8_t b[8];
	put32(b, idx);
	put32(b + 4, num);
	if (want_ok)
		vu_ok(fe, req, b, 8, NULL, 0, what);
	else
		vu_fails(fe, req, b, 8, NULL, 0, what);
}

/* Wait for EOF on fd (the daemon closed it).  Data instead: failure. */
void
expect_eof_on(struct fe *fe, int fd, const char *what)
{
	int64_t dl = deadline_in(fe->timeout_s);
	for (;;) {
		struct pollfd pf = { fd, POLLIN, 0 };
		char b[256];
		ssize_t n;
		int r = poll(&pf, 1, ms_left(dl));
		if (r < 0 && errno == EINTR)
			continue;
		if (r > 0) {
			n = recv(fd, b, sizeof b, MSG_DONTWAIT);
			if (n == 0 ||
			    (n < 0 && (errno == ECONNRESET || errno == EPIPE)))
				return;
			if (n > 0)
				fail(fe,
				     "%s: got %zd bytes [%s] where the "
				     "connection should have been closed",
				     what, n, hex(b, (size_t)n));
		}
		if (ms_left(dl) == 0)
			fail(fe,
			     "%s: the daemon did not close the connection "
			     "within %g s",
			     what, fe->timeout_s);
	}
}

/* ---------------------------------------------------------------------- */
/* connection                                                              */


int
connect_once(struct fe *fe)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;
	if (strlen(fe->sock_path) >= sizeof a.sun_path)
		fail(fe, "socket path too long: %s", fe->sock_path);
	strcpy(a.sun_path, fe->sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail(fe, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

void
disconnect(struct fe *fe)
{
	if (fe->sock >= 0)
		close(fe->sock);
	fe->sock = -1;
	fe->sock_eof = false;
	if (fe->backend_fd >= 0)
		close(fe->backend_fd);
	fe->backend_fd = -1;
	memset(&fe->neg, 0, sizeof fe->neg);
	rings_forget(fe);
}

/* Connect and probe with GET_FEATURES; retry while the daemon is not there
 * yet or still busy with a previous frontend (it closes new connections). */
void
connect_probe(struct fe *fe)
{
	int64_t dl = deadline_in(fe->timeout_s);
	int last_err = 0;
	for (;;) {
		int fd = connect_once(fe);
		if (fd >= 0) {
			struct vu_msg m;
			int r;
			last_err = 0;
			r = vu_send_raw(fe, fd, VU_GET_FEATURES, VU_VERSION, 0,
					NULL, 0, NULL, 0);
			if (r == 0) {
				int64_t pd = now_ms() + 2000 < dl
						     ? now_ms() + 2000
						     : dl;
				r = read_msg(fe, fd, &m, pd);
				if (r > 0) {
					fe->sock = fd;
					fe->sock_eof = false;
					if (m.h.request != VU_GET_FEATURES ||
					    m.h.flags != 5 || m.h.size != 8)
						fail(fe,
						     "probe GET_FEATURES: "
						     "reply {%u, 0x%x, %u} %s",
						     m.h.request, m.h.flags,
						     m.h.size,
						     hex(m.p, m.h.size));
					fe->neg.features_offered = get64(m.p);
					return;
				}
			}
			close(fd);
			last_err = -1;
		} else if (errno != ENOENT && errno != ECONNREFUSED &&
			   errno != EAGAIN) {
			fail(fe, "connect %s: %s", fe->sock_path,
			     strerror(errno));
		} else {
			last_err = errno;
		}
		if (ms_left(dl) == 0) {
			if (last_err > 0)
				fail(fe, "connect %s: %s", fe->sock_path,
				     strerror(last_err));
			fail(fe,
			     "connect %s: the daemon keeps closing the "
			     "connection",
			     fe->sock_path);
		}
		poll(NULL, 0, 20);
	}
}
