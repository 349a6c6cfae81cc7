/*
 * backends/pty.c - consoles on pseudo-terminals ("pty").
 *
 * Console k gets a pty of its own; the start-up line prints the slave's
 * path (/dev/pts/N), and --pty-link=PREFIX also makes the symlink PREFIX +
 * k to it.  Only a symlink is ever replaced there (one left by an earlier
 * run); any other file is refused.  At exit the link is removed only if it
 * is still ours: a symlink to our pty.  Any terminal program opens that: screen, minicom, picocom,
 * cu, or tools that consume a pty.  The slave side is raw, so bytes pass
 * unchanged.
 *
 * The pty is a client of the console only while a program has the slave
 * open: its reader is attached then (the status and the web index count
 * it, a generic port is open to the guest), and each program that opens
 * the slave starts with the history, like a new TCP client.  Meanwhile
 * output goes only to the history, not into the pty's buffer; what a
 * program left unread when it closed is dropped from the pty (it is in
 * the history).  We learn of opens without polling (Linux): an inotify
 * watch on the slave's path wakes us on every open and close by any
 * process, and the master says which it was: it hangs up (POLLHUP, reads
 * EIO) while nobody has the slave open, and is not watched then.  We open
 * the slave ourselves only to make it raw (the setting stays with the
 * pty) and to drop what the last program left.
 *
 * Terminal programs (screen, picocom, minicom) flush the pty as they set
 * it up, after our replay may already be in it.  Packet mode (TIOCPKT)
 * tells us: a master read then starts with a status byte, TIOCPKT_DATA (0)
 * before data, or flags alone, TIOCPKT_FLUSHREAD when the slave's input
 * (what we wrote) was flushed.  A flush before the program typed anything
 * rewinds the reader to the history start, so the replay lands after it.
 *
 * Elsewhere (no inotify) we keep a slave fd open ourselves, as a serial
 * line with nobody listening: without it the master would hang up and
 * select() say "readable" forever.  The pty then counts as a client all
 * the time: output fills the pty's own buffer, then skips (counted, as for
 * a slow client), and a program that opens the slave gets what the
 * buffer kept.
 *
 * Read-only (--read-only=pty): the program that has the slave open is a
 * viewer; what it types is read and discarded, counted, and said when it
 * closes the slave.
 */
/* posix_openpt(), grantpt(), unlockpt(), ptsname() are XSI. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/inotify.h>
#endif

#include "../util.h"
#include "backend.h"


struct pty {
	int master, slave;
	int watch;                   /* inotify fd on the slave's path, or -1 */
	int open;                    /* a program has the slave open: the
	                              * reader is attached */
	int fresh;                   /* opened, nothing typed yet: a flush
	                              * rewinds the replay */
	int packet;                  /* the master is in packet mode */
	char path[64];               /* the slave's /dev/pts/N */
	char link[128];              /* --pty-link + k, or "" */
	struct reader rd;
	struct hold hold;            /* input the guest could not take yet */
	unsigned long long discarded; /* read-only: bytes typed, dropped */
};

static int
slave_raw(int fd)
{
	struct termios t;

	if (tcgetattr(fd, &t) < 0)
		return -1;
	termios_raw(&t);
	return tcsetattr(fd, TCSANOW, &t);
}

/* Make the link to the pty, replacing only a symlink (an earlier run's):
 * a file someone else put at that path is theirs.  -1 with a reason. */
static int
link_make(struct pty *p, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(p->link, &st) == 0) {
		if (!S_ISLNK(st.st_mode)) {
			snprintf(err, errlen, "--pty-link: %s exists and is not a "
			         "symbolic link; refusing to replace it", p->link);
			return -1;
		}
		unlink(p->link);
	}
	if (symlink(p->path, p->link) < 0) {
		snprintf(err, errlen, "--pty-link: %s: %s", p->link, strerror(errno));
		return -1;
	}
	return 0;
}

/* Remove the link only while it is still ours: a symlink to our pty. */
static void
link_remove(const struct pty *p)
{
	char to[sizeof p->path];
	ssize_t n;

	n = readlink(p->link, to, sizeof to);
	if (n > 0 && (size_t)n < sizeof to && (size_t)n == strlen(p->path) &&
	    memcmp(to, p->path, (size_t)n) == 0)
		unlink(p->link);
}

/* A program opened the slave: the pty is a client, replaying history. */
static void
slave_opened(struct endpoint *ep, struct pty *p)
{
	reader_attach(ep->sess, &p->rd, p->path);
	p->open = 1;
	p->fresh = 1;
	p->discarded = 0;
	ep->port->viewers += ep->read_only;
}

/*
 * The last program closed the slave: no client any more.  What it left
 * unread is in the history; dropped from the pty (by an open of our own,
 * flushing the slave's input), it cannot come again before the next
 * opener's replay.  Our open and close wake the watch once more, and the
 * check then finds the slave closed still.
 */
static void
slave_closed(struct endpoint *ep, struct pty *p)
{
	int fd;

	reader_detach(ep->sess, &p->rd);
	p->open = 0;
	if (ep->read_only) {
		ep->port->viewers--;
		logmsg("console %u: %s (read-only) left; %llu bytes of its input "
		       "discarded", ep->index, p->path, p->discarded);
	}
	if ((fd = open(p->path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)) >= 0) {
		tcflush(fd, TCIFLUSH);
		close(fd);
	}
}

/* Whether any program has the slave open: once the last one closed it,
 * the master hangs up (and reads EIO) until the next open. */
static int
slave_is_open(const struct pty *p)
{
	struct pollfd pfd = { .fd = p->master, .events = POLLIN };

	return !(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP));
}

/* Follow the slave's state: attach or detach the reader. */
static void
slave_check(struct endpoint *ep, struct pty *p)
{
	int now = slave_is_open(p);

	if (now && !p->open)
		slave_opened(ep, p);
	else if (!now && p->open)
		slave_closed(ep, p);
}

/*
 * Learn of opens and closes of the slave by events (Linux): an inotify
 * watch on its path wakes us on every open() and every last close of what
 * an open() made, by any process.  The events are only a wake-up:
 * inotify merges identical events in a row (two opens) and may overflow,
 * so the state is read from the master each time (slave_is_open()).  Our
 * own slave fd is closed once the watch is there (that close wakes it
 * once, harmlessly), so the master is hung up until a program opens the
 * slave, and is not watched meanwhile: no wake-ups while nobody is there.
 * Without inotify (or when it fails: out of watches) our slave fd stays
 * open and the pty counts as open all the time.
 */
static void
watch_start(struct endpoint *ep, struct pty *p)
{
	p->watch = -1;
#ifdef __linux__
	const char *why = NULL;

	if ((p->watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
		why = strerror(errno);
	else if (p->watch >= FD_SETSIZE)
		why = "descriptor over FD_SETSIZE";
	else if (inotify_add_watch(p->watch, p->path, IN_OPEN | IN_CLOSE_WRITE |
	                           IN_CLOSE_NOWRITE) < 0)
		why = strerror(errno);
	if (!why) {
		close_fd(&p->slave);
		slave_check(ep, p);
		return;
	}
	logmsg("console %u: %s: cannot watch who opens it (inotify: %s); it "
	       "counts as a client all the time", ep->index, p->path, why);
	close_fd(&p->watch);
#endif
	slave_opened(ep, p);
}

/* Read and drop the watch's events: 1 when there were any. */
static int
watch_drain(struct pty *p)
{
#ifdef __linux__
	_Alignas(struct inotify_event) char buf[64 * sizeof(struct inotify_event)];
	int any = 0;

	while (read(p->watch, buf, sizeof buf) > 0)
		any = 1;
	return any;
#else
	(void)p;
	return 0;
#endif
}

/* Packet mode, where there is one: the opener's flush becomes visible. */
static void
packet_start(struct pty *p)
{
#ifdef TIOCPKT
	int one = 1;

	p->packet = ioctl(p->master, TIOCPKT, &one) == 0;
#else
	(void)p;
#endif
}

/* A status byte without data: on a flush of what we wrote, before the
 * program typed, the replay starts again after the flush. */
static void
packet_status(struct endpoint *ep, struct pty *p, unsigned char status)
{
#ifdef TIOCPKT
	if ((status & TIOCPKT_FLUSHREAD) && p->fresh && p->open) {
		reader_detach(ep->sess, &p->rd);
		reader_attach(ep->sess, &p->rd, p->path);
	}
#else
	(void)ep, (void)p, (void)status;
#endif
}

static int
pty_open(struct endpoint *ep, const struct backend_config *cfg, char *err,
         size_t errlen)
{
	struct pty *p = calloc(1, sizeof *p);
	const char *name;

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	p->slave = p->watch = -1;
	p->master = posix_openpt(O_RDWR | O_NOCTTY);
	if (p->master < 0 || grantpt(p->master) < 0 || unlockpt(p->master) < 0 ||
	    !(name = ptsname(p->master)) || strlen(name) >= sizeof p->path) {
		snprintf(err, errlen, "console %u: cannot make a pty: %s", ep->index,
		         strerror(errno));
		goto fail;
	}
	strcpy(p->path, name);
	p->slave = open(p->path, O_RDWR | O_NOCTTY);
	if (p->slave < 0 || slave_raw(p->slave) < 0 || set_nonblock(p->master) < 0 ||
	    set_cloexec(p->master) < 0 || set_cloexec(p->slave) < 0) {
		snprintf(err, errlen, "%s: %s", p->path, strerror(errno));
		goto fail;
	}
	if (p->master >= FD_SETSIZE) {
		snprintf(err, errlen, "%s: descriptor over FD_SETSIZE", p->path);
		goto fail;
	}
	if (cfg->pty_link) {
		if (snprintf(p->link, sizeof p->link, "%s%u", cfg->pty_link,
		             ep->index) >= (int)sizeof p->link) {
			snprintf(err, errlen, "--pty-link: path too long: %s%u",
			         cfg->pty_link, ep->index);
			goto fail;
		}
		if (link_make(p, err, errlen) < 0)
			goto fail;
	}
	packet_start(p);
	watch_start(ep, p);
	ep->priv = p;
	return 0;
fail:
	if (p->master >= 0)
		close(p->master);
	if (p->slave >= 0)
		close(p->slave);
	free(p);
	return -1;
}

static void
pty_close(struct endpoint *ep)
{
	struct pty *p = ep->priv;

	if (!p)
		return;
	if (p->open) {
		reader_detach(ep->sess, &p->rd);
		ep->port->viewers -= ep->read_only;
	}
	close_fd(&p->watch);
	if (p->link[0])
		link_remove(p);
	close(p->master);
	close_fd(&p->slave);
	free(p);
	ep->priv = NULL;
}

static void
pty_describe(struct endpoint *ep, char *buf, size_t len)
{
	struct pty *p = ep->priv;

	if (p->link[0])
		snprintf(buf, len, "pty %s (%s)", p->path, p->link);
	else
		snprintf(buf, len, "pty %s", p->path);
}

static int
pty_add_fds(struct endpoint *ep, fd_set *rd, fd_set *wr, int maxfd)
{
	struct pty *p = ep->priv;

	/* closed, the master is hung up: "readable" all the time */
	if (p->open && (hold_room(&p->hold) > 0 || port_input_room(ep->port) > 0))
		maxfd = fd_watch(p->master, rd, maxfd);
	if (p->open && reader_pending(ep->sess, &p->rd))
		maxfd = fd_watch(p->master, wr, maxfd);
	if (p->watch >= 0)
		maxfd = fd_watch(p->watch, rd, maxfd);
	return maxfd;
}

/* What a program typed: into the hold, then to the guest as its buffers
 * come; a full hold leaves the rest in the pty.  In packet mode a read is
 * a status byte alone, or TIOCPKT_DATA and the data.  -1 when the master
 * is hung up (EIO: nobody has the slave open). */
static int
master_read(struct endpoint *ep, struct pty *p)
{
	char buf[sizeof p->hold.buf + 1];
	size_t room = hold_room(&p->hold), skip = p->packet;
	ssize_t n;

	n = read(p->master, buf, room + skip);
	if (n <= 0)
		return n < 0 && errno == EIO ? -1 : 0;
	if (skip && buf[0] != 0) {
		packet_status(ep, p, (unsigned char)buf[0]);
		return 0;
	}
	if ((size_t)n == skip)
		return 0;
	p->fresh = 0;
	if (ep->read_only) {          /* a viewer: dropped, counted */
		p->discarded += (size_t)n - skip;
		ep->port->discarded += (size_t)n - skip;
		return 0;
	}
	memcpy(p->hold.buf + p->hold.len, buf + skip, (size_t)n - skip);
	p->hold.len += (size_t)n - skip;
	hold_feed(ep->port, &p->hold);
	return 0;
}

static void
pty_serve(struct endpoint *ep, const fd_set *rd, const fd_set *wr)
{
	struct pty *p = ep->priv;

	int check = p->watch >= 0 && FD_ISSET(p->watch, rd) && watch_drain(p);

	if (p->hold.len)
		hold_feed(ep->port, &p->hold);
	/* On an open or close, what the last program typed before it left
	 * is read first: the master gives it before it says EIO. */
	if ((FD_ISSET(p->master, rd) || check) && hold_room(&p->hold) > 0 &&
	    master_read(ep, p) < 0)
		check = 1;
	if (check)
		slave_check(ep, p);
	if (p->open && reader_serve(ep->sess, &p->rd, p->master,
	                             FD_ISSET(p->master, wr)) < 0)
		logmsg("console %u: %s: %s", ep->index, p->path, strerror(errno));
}

const struct backend backend_pty = {
	.name = "pty",
	.open = pty_open,
	.close = pty_close,
	.add_fds = pty_add_fds,
	.serve = pty_serve,
	.describe = pty_describe,
};
