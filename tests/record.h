/*
 * tests/record.h - VC_RECORD=FILE: tests/frontend appends what it does to
 * FILE as the event stream the fuzz targets replay (the format is in
 * fuzz/fuzz.h): the messages it sends with the kind of every fd attached,
 * its guest memory writes, its kicks, and the host input it receives.  So
 * every run of the harness can seed the fuzzers.  Without VC_RECORD every
 * function here does nothing.
 *
 * Included by frontend.c after its guest memory helpers (it uses memfd,
 * GPA_BASE and MEM_SIZE).  Connections are told apart by their socket's
 * inode; one that closed is recorded as closed at the next event.
 */

enum { REC_SESSION = 1, REC_CONNECT, REC_CLOSE, REC_MSG, REC_WRITE, REC_ZERO,
       REC_KICK, REC_INPUT };
enum { RF_GUEST, RF_MEMFD, RF_EVENTFD, RF_PIPE_R, RF_PIPE_W, RF_SOCKET, RF_OTHER };
#define REC_SLOTS 4
#define REC_PEERS 256
#define REC_WMAX  65535
#define REC_FDS   15	/* fds per message the format carries */

struct rec_fd { int fd; dev_t dev; ino_t ino; int kind; bool live; };

static struct {
	FILE *f;
	bool tried;
	struct rec_fd conn[REC_SLOTS];
	struct rec_fd peer[REC_PEERS];	/* fds sent that have a far end */
	unsigned npeers;
	uint8_t w[REC_WMAX];	/* adjacent writes, merged into one event */
	uint64_t woff;
	size_t wlen;
} rec;

static void rec_put(uint64_t v, int n)
{
	int i;
	for (i = 0; i < n; i++)
		fputc((int)(v >> 8 * i) & 0xff, rec.f);
}

static void rec_flush_write(void)
{
	if (!rec.wlen)
		return;
	rec_put(REC_WRITE, 1);
	rec_put(rec.woff, 4);
	rec_put(rec.wlen, 2);
	fwrite(rec.w, 1, rec.wlen, rec.f);
	rec.wlen = 0;
}

/* The file, opened (and a session started) on first use; NULL: not recording. */
static FILE *rec_file(void)
{
	const char *path = getenv("VC_RECORD");
	if (rec.tried)
		return rec.f;
	rec.tried = true;
	if (!path)
		return NULL;
	if (!(rec.f = fopen(path, "ab")))
		fail("VC_RECORD: %s: %s", path, strerror(errno));
	atexit(rec_flush_write);
	rec_put(REC_SESSION, 1);
	rec_put(MEM_SIZE, 4);
	return rec.f;
}

static bool rec_same(const struct rec_fd *r, int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && st.st_dev == r->dev && st.st_ino == r->ino;
}

/* Before any event: connections closed since the last one, closed first. */
static bool rec_begin(void)
{
	int s;
	if (!rec_file())
		return false;
	for (s = 0; s < REC_SLOTS; s++)
		if (rec.conn[s].live && !rec_same(&rec.conn[s], rec.conn[s].fd)) {
			rec_flush_write();
			rec_put(REC_CLOSE, 1);
			rec_put((uint64_t)s, 1);
			rec.conn[s].live = false;
		}
	return true;
}

static int rec_fd_kind(int fd, uint32_t *size)
{
	struct stat st, g;
	char path[64], link[64];
	ssize_t n;
	if (fstat(fd, &st) < 0)
		return RF_OTHER;
	if (fstat(memfd, &g) == 0 && st.st_dev == g.st_dev && st.st_ino == g.st_ino)
		return RF_GUEST;
	if (S_ISREG(st.st_mode)) {
		*size = (uintmax_t)st.st_size > UINT32_MAX ? UINT32_MAX : (uint32_t)st.st_size;
		return RF_MEMFD;
	}
	if (S_ISFIFO(st.st_mode))
		return (fcntl(fd, F_GETFL) & O_ACCMODE) == O_WRONLY ? RF_PIPE_W : RF_PIPE_R;
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
static int rec_slot(int fd)
{
	struct stat st;
	int s;
	for (s = 0; s < REC_SLOTS; s++)
		if (rec.conn[s].live && rec.conn[s].fd == fd && rec_same(&rec.conn[s], fd))
			return s;
	for (s = 0; s < REC_SLOTS - 1 && rec.conn[s].live; s++)
		;
	if (fstat(fd, &st) < 0)
		st.st_dev = st.st_ino = 0;
	rec.conn[s] = (struct rec_fd){ fd, st.st_dev, st.st_ino, RF_SOCKET, true };
	rec_put(REC_CONNECT, 1);
	rec_put((uint64_t)s, 1);
	return s;
}

static void rec_msg(int fd, const uint8_t *b, size_t len, const int *fds, int nfds)
{
	int i, s, n = nfds < REC_FDS ? nfds : REC_FDS;
	if (!rec_begin())
		return;
	rec_flush_write();
	s = rec_slot(fd);
	rec_put(REC_MSG, 1);
	rec_put((uint64_t)s, 1);
	rec_put(len, 2);
	fwrite(b, 1, len, rec.f);
	rec_put((uint64_t)n, 1);
	for (i = 0; i < n; i++) {
		uint32_t size = 0;
		int kind = rec_fd_kind(fds[i], &size);
		struct stat st;
		rec_put((uint64_t)kind, 1);
		if (kind == RF_MEMFD)
			rec_put(size, 4);
		if (kind >= RF_EVENTFD && kind <= RF_SOCKET && rec.npeers < REC_PEERS &&
		    fstat(fds[i], &st) == 0)
			rec.peer[rec.npeers++] = (struct rec_fd){ fds[i], st.st_dev, st.st_ino,
								  kind, true };
	}
}

/* A kick written to fd: the peer it reaches, the latest sent.  Eventfds
 * share one inode, so for them the fd number tells. */
static void rec_kick(int fd)
{
	int i;
	if (!rec_begin())
		return;
	for (i = (int)rec.npeers - 1; i >= 0; i--)
		if (rec_same(&rec.peer[i], fd) &&
		    (rec.peer[i].kind != RF_EVENTFD || rec.peer[i].fd == fd))
			break;
	if (i < 0)
		return;
	rec_flush_write();
	rec_put(REC_KICK, 1);
	rec_put((uint64_t)i, 1);
}

static void rec_write(uint64_t gpa, const void *p, size_t len)
{
	const uint8_t *src = p;
	if (!rec_begin())
		return;
	while (len) {
		size_t n;
		if (rec.wlen && (gpa - GPA_BASE != rec.woff + rec.wlen || rec.wlen == REC_WMAX))
			rec_flush_write();
		if (!rec.wlen)
			rec.woff = gpa - GPA_BASE;
		n = len < REC_WMAX - rec.wlen ? len : REC_WMAX - rec.wlen;
		memcpy(rec.w + rec.wlen, src, n);
		rec.wlen += n;
		gpa += n;
		src += n;
		len -= n;
	}
}

static void rec_zero(uint64_t gpa, size_t len)
{
	if (!rec_begin())
		return;
	rec_flush_write();
	rec_put(REC_ZERO, 1);
	rec_put(gpa - GPA_BASE, 4);
	rec_put(len, 4);
}

static void rec_input(const uint8_t *p, size_t len)
{
	if (!rec_begin())
		return;
	rec_flush_write();
	while (len) {
		size_t n = len < 65535 ? len : 65535;
		rec_put(REC_INPUT, 1);
		rec_put(n, 2);
		fwrite(p, 1, n, rec.f);
		p += n;
		len -= n;
	}
}
