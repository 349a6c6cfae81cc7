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
 * The master is one more reader of the console's session.  We keep a
 * slave fd open ourselves: without it the master sees EIO (and select()
 * says "readable" forever) whenever no program has the slave open, and a
 * program closing and reopening the slave would find the pty gone.  So the
 * port stays connected, like a serial line with nobody listening: output
 * meanwhile fills the pty's own buffer, then skips (counted, as for a slow
 * client), and a program that opens the slave gets what the buffer kept.
 */
/* posix_openpt(), grantpt(), unlockpt(), ptsname() are XSI. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "../util.h"
#include "backend.h"


struct pty {
	int master, slave;
	char path[64];               /* the slave's /dev/pts/N */
	char link[128];              /* --pty-link + k, or "" */
	struct reader rd;
	struct hold hold;            /* input the guest could not take yet */
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
	p->slave = -1;
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
	reader_attach(ep->sess, &p->rd, p->path);
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
	reader_detach(ep->sess, &p->rd);
	if (p->link[0])
		link_remove(p);
	close(p->master);
	close(p->slave);
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

	if (hold_room(&p->hold) > 0 || port_input_room(ep->port) > 0)
		maxfd = fd_watch(p->master, rd, maxfd);
	if (reader_pending(ep->sess, &p->rd))
		maxfd = fd_watch(p->master, wr, maxfd);
	return maxfd;
}

static void
pty_serve(struct endpoint *ep, const fd_set *rd, const fd_set *wr)
{
	struct pty *p = ep->priv;
	ssize_t n;

	if (reader_serve(ep->sess, &p->rd, p->master, FD_ISSET(p->master, wr)) < 0)
		logmsg("console %u: %s: %s", ep->index, p->path, strerror(errno));
	if (p->hold.len)
		hold_feed(ep->port, &p->hold);
	/* What a program typed: into the hold, then to the guest as its
	 * buffers come; a full hold leaves the rest in the pty. */
	if (FD_ISSET(p->master, rd) && hold_room(&p->hold) > 0) {
		n = read(p->master, p->hold.buf + p->hold.len, hold_room(&p->hold));
		if (n > 0) {
			p->hold.len += n;
			hold_feed(ep->port, &p->hold);
		}
	}
}

const struct backend backend_pty = {
	.name = "pty",
	.open = pty_open,
	.close = pty_close,
	.add_fds = pty_add_fds,
	.serve = pty_serve,
	.describe = pty_describe,
};
