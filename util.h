/*
 * util.h - the few helpers every file needs: messages on stderr, die() that
 * cleans up first, and small fd utilities.
 *
 * Messages go to stderr as "vhost-device-console: ...".  While the nested
 * backend holds the terminal in raw mode a bare "\n" would not return the
 * carriage, so log_set_raw() switches line endings to "\r\n"; and since
 * the guest's output shares that terminal, a message starts on a line of
 * its own: "\r\n" first when the guest's last line is unfinished
 * (log_set_mid_line()).
 *
 * Routine messages (loginfo(): a client or frontend came or went, the
 * guest's port is ready) are left out with log_set_quiet(1) (--quiet);
 * warnings and errors (logmsg()) never are.
 */
#ifndef UTIL_H
#define UTIL_H

#include <stddef.h>
#include <sys/select.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <termios.h>
#include <time.h>

#define PROGNAME "vhost-device-console"

/* Exit statuses, documented in the man page. */
#define EXIT_RUNTIME 1   /* could not start, or failed while running */
#define EXIT_USAGE   2   /* bad command line */

/* One line on stderr.  A line over LOG_LINE_MAX bytes is cut, and the cut
 * says so: "...(+N bytes)". */
#define LOG_LINE_MAX 4096
void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void loginfo(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_set_quiet(int quiet);
void log_set_raw(int raw);
/* The raw terminal's cursor is not at the start of a line (the guest
 * wrote part of one): the next message ends it first. */
void log_set_mid_line(int mid);
/* Whether it is, for a line of one's own on that terminal. */
int log_in_mid_line(void);

/*
 * Bytes a client, the guest or the frontend sent, fit for a log line: each
 * control byte, DEL, byte over 0x7e and backslash becomes \xHH, so that
 * they can neither start a forged line nor reach the operator's terminal
 * as an escape sequence, and the escaping reads back unambiguously.  What
 * does not fit in buf (len bytes, at least ESC_MIN) is cut, and the cut
 * says how much was left out: "...(+N bytes)".  Returns buf, for use as a
 * logmsg() argument.  ESC_LEN is a good size for one field of a line.
 */
#define ESC_MIN 40
#define ESC_LEN 160
const char *esc(char *buf, size_t len, const void *p, size_t n);

/* die() runs the registered cleanup (restore the tty, unlink sockets), then
 * prints the message and exits with status. */
void die_set_cleanup(void (*fn)(void *), void *arg);
_Noreturn void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* systemd's readiness protocol: send STATE ("READY=1", "STOPPING=1") as
 * one datagram to $NOTIFY_SOCKET when it is set; nothing otherwise. */
void notify_service_manager(const char *state);

/* Raw mode by hand (cfmakeraw() is not POSIX): bytes pass unchanged. */
void termios_raw(struct termios *t);

int set_nonblock(int fd);
int set_cloexec(int fd);
/* Move an fd that is never passed to select() above FD_SETSIZE, keeping the
 * low numbers for the ones that are.  Returns the fd to use (the old one
 * when it cannot be moved). */
int fd_move_high(int fd);
/* Write all of buf to a blocking fd; -1 on error. */
ssize_t write_all(int fd, const void *buf, size_t len);
/* One write that cannot block, even on an fd whose O_NONBLOCK someone else
 * may clear (an fd received from the frontend shares its file description
 * with the sender): -1 with errno EAGAIN unless poll() says it is ready. */
ssize_t write_ready(int fd, const void *buf, size_t len);
/* The same for one read. */
ssize_t read_ready(int fd, void *buf, size_t len);
/* One writev() to a non-blocking fd, retried on EINTR: the bytes written,
 * 0 when it would block, -1 on an error. */
ssize_t writev_some(int fd, const struct iovec *iov, int cnt);
void close_fd(int *fd);   /* close if >= 0 and set to -1 */
/* Put fd in the select() set; returns the new highest fd (maxfd or fd). */
int fd_watch(int fd, fd_set *set, int maxfd);

/*
 * Listen on the UNIX stream socket path: a stale socket file left by an
 * earlier run is replaced; a socket someone still listens on, or a file
 * that is not a socket, is refused.  The socket is born with the umask's
 * mode (main sets 077: 0600).  Returns the fd (non-blocking, close-on-exec,
 * below FD_SETSIZE), or -1 with a reason in err.
 */
int unix_listen(const char *path, int backlog, char *err, size_t errlen);

/* Whether s is an IPv4 or IPv6 literal, as tcp_listen() takes it. */
int ip_address(const char *s);
/*
 * Listen on TCP port of address, an IPv4 or IPv6 literal (the caller
 * names the setting when it is not: ip_address()), for the backend named
 * what ("tcp", "web").  Sets where to "ADDR:PORT" or
 * "[ADDR]:PORT" for messages, and *loopback when the address parsed is a
 * loopback one (127.0.0.0/8, ::1, or ::ffff:127.x.y.z): decided from the
 * address, not its spelling.  Accepted sockets inherit TCP_NODELAY: a keystroke's echo goes out
 * at once, not after the ACK of the one before (Nagle), since output is
 * already batched per pass.  Returns the fd (non-blocking, close-on-exec,
 * below FD_SETSIZE), or -1 with a reason in err.
 */
int tcp_listen(const char *what, const char *address,
               unsigned port, int backlog, char *where, size_t wherelen,
               int *loopback, char *err, size_t errlen);
/* The peer of a connected socket as "HOST:PORT" ("" for a UNIX socket's
 * nameless peer); -1 when it is gone (reset before we took it). */
int peer_name(int fd, char *buf, size_t len);

/* *t = the CLOCK_MONOTONIC time ms milliseconds from now. */
void deadline_after(struct timespec *t, long ms);

/*
 * accept() for every listener.  Returns the new fd (non-blocking,
 * close-on-exec) or -1.  When accept() fails for want of fds or memory
 * (EMFILE, ENFILE, ENOBUFS, ENOMEM) the connection stays queued in the
 * kernel, and selecting the listener again would wake the loop at once,
 * forever.  So all listeners pause for ACCEPT_PAUSE_MS instead: fds are a
 * process-wide resource, and so is the pause.
 */
#define ACCEPT_PAUSE_MS 1000
int accept_conn(int listen_fd, const char *who);
/* Turn a connection away: send it the answer that says why, in one short
 * send, then close it.  Only for a fresh connection: its empty socket
 * buffer takes the answer without blocking. */
void conn_refuse(int fd, const char *answer, size_t len);
/* Whether listeners must stay out of the fd sets now. */
int accept_paused(void);
/* The select() timeout while paused: 0 and *ts set, or -1 (no timeout). */
int accept_pause_timeout(struct timespec *ts);

#endif
