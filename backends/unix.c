/*
 * backends/unix.c - consoles on UNIX stream sockets ("unix", or "uds" as
 * the Rust tool calls it).
 *
 * Console k listens on the socket --unix-path + k, mode 0600 unless
 * --unix-mode/--unix-group say otherwise: only its owner (and root) may
 * connect, which makes this the safe way in on a
 * shared host, e.g. with
 *     socat -,raw,echo=0 UNIX-CONNECT:PATHk
 * A stale socket left by an earlier run is replaced; a live one or a file
 * that is not a socket is refused.  The socket is removed when the console
 * closes, if it is still the one we made.  Clients are served as clients.h
 * says; a UNIX peer has no address, so they are numbered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util.h"
#include "clients.h"

struct uds {
	struct clients cs;           /* first: ep->priv is both (clients.h) */
	char path[128];
	dev_t dev;                   /* the socket file we made, to remove */
	ino_t ino;                   /* only that one */
};

static int
uds_open(struct endpoint *ep, const struct backend_config *cfg, char *err,
         size_t errlen)
{
	struct uds *u;
	struct stat st;
	int fd;

	if (!(u = calloc(1, sizeof *u))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (snprintf(u->path, sizeof u->path, "%s%u", cfg->unix_path, ep->index) >=
	    (int)sizeof u->path) {
		snprintf(err, errlen, "unix socket path too long: %s%u",
		         cfg->unix_path, ep->index);
		free(u);
		return -1;
	}
	if ((fd = unix_listen(u->path, CLIENTS_BACKLOG, err, errlen)) < 0) {
		free(u);
		return -1;
	}
	/* Born 0600 (the daemon's umask), then opened up as asked. */
	if (chmod(u->path, cfg->unix_mode) < 0 ||
	    (cfg->unix_gid >= 0 && chown(u->path, (uid_t)-1, (gid_t)cfg->unix_gid) < 0) ||
	    lstat(u->path, &st) < 0) {
		snprintf(err, errlen, "%s: %s", u->path, strerror(errno));
		close(fd);
		unlink(u->path);
		free(u);
		return -1;
	}
	u->dev = st.st_dev;
	u->ino = st.st_ino;
	clients_init(&u->cs, fd, u->path);
	ep->priv = u;
	return 0;
}

static void
uds_close(struct endpoint *ep)
{
	struct uds *u = ep->priv;
	struct stat st;

	if (!u)
		return;
	clients_close(ep, &u->cs);
	/* Remove only the file we made, not one someone put in its place. */
	if (lstat(u->path, &st) == 0 && st.st_dev == u->dev && st.st_ino == u->ino)
		unlink(u->path);
	free(u);
	ep->priv = NULL;
}

static void
uds_describe(struct endpoint *ep, char *buf, size_t len)
{
	struct uds *u = ep->priv;

	snprintf(buf, len, "unix %s", u->path);
}

const struct backend backend_unix = {
	.name = "unix",
	.open = uds_open,
	.close = uds_close,
	.add_fds = clients_add_fds,
	.serve = clients_serve,
	.describe = uds_describe,
};
