/*
 * session.h - one console's shared session: the guest's output
 * kept once, in a ring, and read by every way in at its own pace.
 *
 * The device appends what the guest writes (sess_write); it is never
 * copied per client.  Each reader (a TCP client, the terminal, ...) has
 * its own position in the stream:
 *
 *     ring:   [ wpos - kept ............................ wpos )
 *                 ^ a new reader starts here (at most `history` back)
 *                           ^ a slow reader             ^ a live reader
 *
 * A new reader is first sent a copy of the history, filtered for a
 * terminal (replay.h), and reads the ring from the live position on.
 *
 * Nothing is lost silently.  A reader that falls out of the ring skips
 * ahead to the oldest byte kept and is told at the gap:
 * "[vhost-device-console: N bytes of output skipped]"; stderr says when
 * it starts and how much once the reader catches up.  Bytes that leave the
 * ring before any reader saw them are counted too (and are in the log file
 * when there is one).  Both counts are summed up on exit.
 *
 * Events are told the same way, not kept: "frontend disconnected", "the
 * guest's console closed", "stopping" (sess_notice()), to the readers
 * there at the time, at the place in the stream where it happened (after
 * what the guest wrote before).  It is in no history and no log file: it
 * is news for whoever is watching, not the guest's output.
 *
 * Every notice is a line of its own, "[vhost-device-console: ...]\r\n",
 * with "\r\n" before it only when what the reader got so far ends inside
 * a line (mid_line): a blank line would split the guest's output, or
 * stand between two notices.
 */
#ifndef SESSION_H
#define SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* The ring is at least this big even with --history=0: the slack a slow
 * reader has before it skips. */
#define SESS_MIN_RING (64 * 1024)
#define SESS_DEFAULT_HISTORY (64 * 1024)
/* Stream bytes one reader is sent per loop pass at most: however many
 * readers and consoles there are, and however much history a reader
 * replays (--history up to 64 MiB), one pass ends soon and every other fd
 * is served.  A reader with more pending stays in the write set, so
 * select() returns at once for the rest.  As much as the smallest ring:
 * a reader that keeps up still ends each pass caught up, with the whole
 * ring as slack before the guest could overtake it (console.c takes the
 * first chain of a pass whatever the readers' room). */
#define SESS_PASS_MAX SESS_MIN_RING

struct sess;
struct reader;
/* Who else sees the session as it happens (a recording): the guest's
 * output as sess_write() gets it, and the console's size as it changes.
 * The session keeps nothing of it. */
struct sess_tap {
	void (*output)(void *arg, const void *p, size_t n);
	void (*resize)(void *arg, unsigned cols, unsigned rows);
};

/* What a reader is told between the guest's bytes (sess_notice()). */
enum sess_event {
	SESS_FRONTEND_CONNECTED,
	SESS_FRONTEND_DISCONNECTED,
	SESS_GUEST_OPENED,             /* the guest opened its console port */
	SESS_GUEST_CLOSED,             /* ... closed it, or the device reset */
	SESS_STOPPING                  /* the daemon is exiting */
};
/* Events a reader can have waiting: a frontend that comes and goes faster
 * than the reader reads replaces the newest, and never grows the queue. */
#define READER_EVENTS_MAX 4
/* How a reader's bytes reach its fd when they are not sent as they are
 * (telnet doubles IAC): send the skip notice and up to budget stream
 * bytes, with reader_notice()/reader_peek()/reader_advance().  Returns as
 * reader_flush() does. */
typedef int reader_send_fn(struct sess *s, struct reader *r, int fd,
                           size_t budget);

struct reader {
	struct reader *next;          /* the session's list */
	const char *name;             /* "client 127.0.0.1:4000", for messages */
	uint64_t pos;                 /* next stream byte this reader gets */
	unsigned long long skipped;   /* bytes it missed, ever */
	unsigned long long told;      /* skipped, when last told */
	unsigned long long logged;    /* skipped, when last logged */
	char notice[96];              /* "[... N bytes ... skipped]" being sent */
	size_t notice_len, notice_off;
	unsigned long long notice_n;  /* the N in it */
	reader_send_fn *send;         /* its encoding; NULL: bytes as they are */
	unsigned owed;                /* bytes the encoding owes for stream
	                               * bytes already counted as sent */
	int blocked;                  /* its fd said EAGAIN: wait for select() */
	char *replay;                 /* the history, as replay.h makes it,
	                               * sent before pos; NULL: none left */
	size_t replay_len, replay_off;
	int mid_line;                 /* what it got so far ends inside a line
	                               * (not after "\n"): a notice ends
	                               * that line first */
	struct {                      /* events not yet told, oldest first */
		uint64_t pos;         /* told once the reader is here */
		enum sess_event what;
	} ev[READER_EVENTS_MAX];
	unsigned nev;
	int notice_event;             /* the notice under way is ev[0]'s */
	int no_events;                /* not told (the terminal has the log) */
};

struct sess {
	unsigned index;               /* console k */
	char *ring;
	size_t cap;                   /* ring size */
	size_t history;               /* replayed to a new reader */
	uint64_t wpos;                /* bytes the guest wrote, ever */
	uint64_t seen;                /* end of what some reader was given */
	unsigned long long unseen;    /* left the ring before anyone saw it */
	unsigned long long skipped;   /* skipped by readers, all told */
	int unseen_said;              /* logged since a reader last caught up */
	struct reader *readers;
	unsigned nreaders;
	int log_fd;
	char *log_path;
	int log_failed;               /* a write error was reported */
	int log_timestamps;           /* each log line starts with its UTC time */
	int log_midline;              /* the last byte logged was not LF */
	const struct sess_tap *tap;   /* NULL: none */
	void *tap_arg;
};

/* history: bytes a new reader replays (0: none); log_path may be NULL.
 * Returns -1 with a reason in err (out of memory, log file unusable). */
int sess_init(struct sess *s, unsigned index, size_t history,
              const char *log_path, char *err, size_t errlen);
/* Summary of what was lost, then free everything. */
void sess_free(struct sess *s);
/* The guest wrote these bytes: keep them, log them. */
void sess_write(struct sess *s, const void *p, size_t n);
/* Reopen the log file (SIGHUP, for logrotate).  With log_timestamps the
 * new file starts with a prefix, mid-line or not. */
int sess_reopen_log(struct sess *s);
/* The console's size changed: tell the tap. */
void sess_resize(struct sess *s, unsigned cols, unsigned rows);

/* Tell every reader that wants events (not no_events) of this one, at the
 * end of what the guest has written so far: the same event twice at one
 * place is told once. */
void sess_notice(struct sess *s, enum sess_event what);
/* Whether some reader has an event not yet told (the last flush on exit
 * waits for these, a little). */
int sess_notice_pending(const struct sess *s);

/* A new reader starts with the replay of the history (replay.h: from a
 * line start or the last full-screen reset, without the questions a
 * terminal would answer), a copy taken now, then live output. */
void reader_attach(struct sess *s, struct reader *r, const char *name);
void reader_detach(struct sess *s, struct reader *r);
/* Whether the reader has anything to be sent (bytes or a notice). */
int reader_pending(const struct sess *s, const struct reader *r);
/* Send what the reader has to fd, through its encoding, until it would
 * block or SESS_PASS_MAX stream bytes went out.  1: sent all or its
 * share of this pass; 0: the fd would block (the reader waits for
 * select()); -1 on an error (the reader's connection is gone). */
int reader_flush(struct sess *s, struct reader *r, int fd);
/* For a backend's serve(): flush now if the reader has something and its
 * fd is writable (per select()) or was not full last time: output the
 * device added this pass goes out without a trip through select(), and a
 * full fd costs no syscall per pass.  -1 when the connection is gone. */
int reader_serve(struct sess *s, struct reader *r, int fd, int writable);

/* For an encoding (reader_send_fn).  The skip notice owed, if any, goes
 * before the stream, and an event's notice once the reader reached its
 * place: what is left of it to send, *len bytes, or NULL;
 * reader_notice_sent() says how much went out.  The notice is text, the
 * same in every encoding.  reader_peek() stops at the next event's place,
 * so an encoding that asks for a notice before each peek gets them in
 * order. */
const char *reader_notice(struct reader *r, size_t *len);
void reader_notice_sent(struct reader *r, size_t n);
/* The reader's pending stream bytes, at most max, as one or two spans of
 * the ring (it wraps); *cnt spans.  Returns how many bytes. */
size_t reader_peek(const struct sess *s, const struct reader *r, size_t max,
                   struct iovec span[2], int *cnt);
/* n of them went out: move the reader on. */
void reader_advance(struct sess *s, struct reader *r, size_t n);
/* Bytes the guest may write before the slowest reader would have to skip
 * (for ports that hold the guest back instead of dropping). */
size_t sess_room(const struct sess *s);
/* The same, counting only readers not waiting for select() (their socket
 * was full last time): how much the guest may write in one pass before a
 * reader that is still taking bytes would have to skip. */
size_t sess_room_live(const struct sess *s);

/* For a way in that wraps the output (the web backend frames it): copy
 * up to max bytes the reader has pending (a skip notice first, then the
 * stream) into buf and count them as sent.  Returns how many; 0 when
 * nothing is pending.  The reader's policy is unchanged: one that does not
 * take its bytes in time skips ahead and the notice says so. */
size_t reader_take(struct sess *s, struct reader *r, void *buf, size_t max);

#endif
