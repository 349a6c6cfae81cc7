/*
 * tests/fe/record.c - VC_RECORD: the recorder (contract and format:
 * tests/record.h).
 */
#include "frontend.h"

static void
rec_put(struct fe *fe, uint64_t v, int n)
{
	int i;
	for (i = 0; i < n; i++)
		fputc((int)(v >> 8 * i) & 0xff, fe->rec.f);
}

void
rec_flush_write(struct fe *fe)
{
	if (!fe->rec.wlen)
		return;
	rec_put(fe, REC_WRITE, 1);
	rec_put(fe, fe->rec.woff, 4);
	rec_put(fe, fe->rec.wlen, 2);
	fwrite(fe->rec.w, 1, fe->rec.wlen, fe->rec.f);
	fe->rec.wlen = 0;
}

/* The file, opened (and a session started) on first use; NULL: not
 * recording. */
static FILE *
rec_file(struct fe *fe)
{
	const char *path = getenv("VC_RECORD");
	if (fe->rec.tried)
		return fe->rec.f;
	fe->rec.tried = true;
	if (!path)
		return NULL;
	if (!(fe->rec.f = fopen(path, "ab")))
		fail(fe, "VC_RECORD: %s: %s", path, strerror(errno));
	rec_put(fe, REC_SESSION, 1);
	rec_put(fe, MEM_SIZE, 4);
	return fe->rec.f;
}

static bool
rec_same(const struct rec_fd *r, int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && st.st_dev == r->dev &&
	       st.st_ino == r->ino;
}

/* Before any event: connections closed since the last one, closed first. */
static bool
rec_begin(struct fe *fe)
{
	int s;
	if (!rec_file(fe))
		return false;
	for (s = 0; s < REC_SLOTS; s++)
		if (fe->rec.conn[s].live &&
		    !rec_same(&fe->rec.conn[s], fe->rec.conn[s].fd)) {
			rec_flush_write(fe);
			rec_put(fe, REC_CLOSE, 1);
			rec_put(fe, (uint64_t)s, 1);
			fe->rec.conn[s].live = false;
		}
	return true;
}

static int
rec_fd_kind(struct fe *fe, int fd, uint32_t *size)
{
	struct stat st, g;
	char path[64], link[64];
	ssize_t n;
	if (fstat(fd, &st) < 0)
		return RF_OTHER;
	if (fstat(fe->memfd, &g) == 0 && st.st_dev == g.st_dev &&
	    st.st_ino == g.st_ino)
		return RF_GUEST;
	if (S_ISREG(st.st_mode)) {
		*size = (uintmax_t)st.st_size > UINT32_MAX
				? UINT32_MAX
				: (uint32_t)st.st_size;
		return RF_MEMFD;
	}
	if (S_ISFIFO(st.st_mode))
		return (fcntl(fd, F_GETFL) & O_ACCMODE) == O_WRONLY ? RF_PIPE_W
								    : RF_PIPE_R;
	if (S_ISSOCK(st.st_mode))
		return RF_SOCKET;
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof link - 1);
	if (n > 0) {
		link[n] = 0;
		if (!strcmp(link, "anon_inode:[eventfd]"))
			return RF_EVENTFD;
	}
	return RF_OTHER;
}

/* The connection's slot; a new connection is recorded as CONNECT. */
static int
rec_slot(struct fe *fe, int fd)
{
	struct stat st;
	int s;
	for (s = 0; s < REC_SLOTS; s++)
		if (fe->rec.conn[s].live && fe->rec.conn[s].fd == fd &&
		    rec_same(&fe->rec.conn[s], fd))
			return s;
	for (s = 0; s < REC_SLOTS - 1 && fe->rec.conn[s].live; s++)
		;
	if (fstat(fd, &st) < 0)
		st.st_dev = st.st_ino = 0;
	fe->rec.conn[s] =
		(struct rec_fd){ fd, st.st_dev, st.st_ino, RF_SOCKET, true };
	rec_put(fe, REC_CONNECT, 1);
	rec_put(fe, (uint64_t)s, 1);
	return s;
}

void
rec_msg(struct fe *fe, int fd, const uint8_t *b, size_t len, const int *fds,
        int nfds)
{
	int i, s, n = nfds < REC_FDS ? nfds : REC_FDS;
	if (!rec_begin(fe))
		return;
	rec_flush_write(fe);
	s = rec_slot(fe, fd);
	rec_put(fe, REC_MSG, 1);
	rec_put(fe, (uint64_t)s, 1);
	rec_put(fe, len, 2);
	fwrite(b, 1, len, fe->rec.f);
	rec_put(fe, (uint64_t)n, 1);
	for (i = 0; i < n; i++) {
		uint32_t size = 0;
		int kind = rec_fd_kind(fe, fds[i], &size);
		struct stat st;
		rec_put(fe, (uint64_t)kind, 1);
		if (kind == RF_MEMFD)
			rec_put(fe, size, 4);
		if (kind >= RF_EVENTFD && kind <= RF_SOCKET &&
		    fe->rec.npeers < REC_PEERS && fstat(fds[i], &st) == 0)
			fe->rec.peer[fe->rec.npeers++] =
				(struct rec_fd){ fds[i], st.st_dev, st.st_ino,
						 kind, true };
	}
}

/* A kick written to fd: the peer it reaches, the latest sent.  Eventfds
 * share one inode, so for them the fd number tells. */
void
rec_kick(struct fe *fe, int fd)
{
	int i;
	if (!rec_begin(fe))
		return;
	for (i = (int)fe->rec.npeers - 1; i >= 0; i--)
		if (rec_same(&fe->rec.peer[i], fd) &&
		    (fe->rec.peer[i].kind != RF_EVENTFD ||
		     fe->rec.peer[i].fd == fd))
			break;
	if (i < 0)
		return;
	rec_flush_write(fe);
	rec_put(fe, REC_KICK, 1);
	rec_put(fe, (uint64_t)i, 1);
}

void
rec_write(struct fe *fe, uint64_t gpa, const void *p, size_t len)
{
	const uint8_t *src = p;
	if (!rec_begin(fe))
		return;
	while (len) {
		size_t n;
		if (fe->rec.wlen &&
		    (gpa - GPA_BASE != fe->rec.woff + fe->rec.wlen ||
		     fe->rec.wlen == REC_WMAX))
			rec_flush_write(fe);
		if (!fe->rec.wlen)
			fe->rec.woff = gpa - GPA_BASE;
		n = len < REC_WMAX - fe->rec.wlen ? len
						  : REC_WMAX - fe->rec.wlen;
		memcpy(fe->rec.w + fe->rec.wlen, src, n);
		fe->rec.wlen += n;
		gpa += n;
		src += n;
		len -= n;
	}
}

void
rec_zero(struct fe *fe, uint64_t gpa, size_t len)
{
	if (!rec_begin(fe))
		return;
	rec_flush_write(fe);
	rec_put(fe, REC_ZERO, 1);
	rec_put(fe, gpa - GPA_BASE, 4);
	rec_put(fe, len, 4);
}

void
rec_input(struct fe *fe, const uint8_t *p, size_t len)
{
	if (!rec_begin(fe))
		return;
	rec_flush_write(fe);
	while (len) {
		size_t n = len < 65535 ? len : 65535;
		rec_put(fe, REC_INPUT, 1);
		rec_put(fe, n, 2);
		fwrite(p, 1, n, fe->rec.f);
		p += n;
		len -= n;
	}
}
