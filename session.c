/* session.c - the shared session of one console.  See session.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "replay.h"
#include "util.h"
#include "session.h"

static void caught_up(struct sess *s, struct reader *r);

static uint64_t
oldest_kept(const struct sess *s)
{
	return s->wpos < s->cap ? 0 : s->wpos - s->cap;
}

/*
 * Open the log file: a regular file only, never through a symlink, and
 * never waiting.  Whoever can write the log's directory could otherwise
 * put a FIFO there (open() would block the whole loop until a reader
 * came, with SIGTERM blocked too), or a link to a file we must not
 * append to.  O_NONBLOCK makes open() of a FIFO return at once; writes
 * to a regular file never wait for a reader.  -1 with a reason in why.
 */
static int
log_open(struct sess *s, const char **why)
{
	struct stat st;

	s->log_fd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
	                 O_NONBLOCK | O_NOFOLLOW | O_NOCTTY, 0600);
	if (s->log_fd < 0) {
		/* ENXIO: a FIFO with no reader, or a socket */
		*why = errno == ELOOP ? "a symbolic link (refused)" :
		       errno == ENXIO ? "not a regular file (refused)" :
		       strerror(errno);
		return -1;
	}
	if (fstat(s->log_fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*why = "not a regular file (refused)";
		close_fd(&s->log_fd);
		return -1;
	}
	return 0;
}

int
sess_init(struct sess *s, unsigned index, size_t history, const char *log_path,
          char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	s->index = index;
	s->history = history;
	s->cap = history > SESS_MIN_RING ? history : SESS_MIN_RING;
	s->log_fd = -1;
	if (!(s->ring = malloc(s->cap))) {
		snprintf(err, errlen, "console %u: out of memory for %zu bytes of "
		         "history", index, s->cap);
		return -1;
	}
	if (log_path) {
		const char *why = "out of memory";

		if (!(s->log_path = strdup(log_path)) || log_open(s, &why) < 0) {
			snprintf(err, errlen, "log file %s: %s", log_path, why);
			free(s->log_path);
			free(s->ring);
			s->log_path = s->ring = NULL;
			return -1;
		}
	}
	return 0;
}

void
sess_free(struct sess *s)
{
	if (s->unseen)
		logmsg("console %u: %llu bytes of guest output left the history "
		       "before anyone read them%s", s->index, s->unseen,
		       s->log_path ? " (they are in the log file)" : "");
	if (s->skipped)
		logmsg("console %u: clients that did not keep up skipped %llu bytes "
		       "of output in all", s->index, s->skipped);
	close_fd(&s->log_fd);
	free(s->log_path);
	free(s->ring);
	s->ring = s->log_path = NULL;
}

/* A log that cannot be reopened is said once; that console logs nothing
 * until the next SIGHUP. */
int
sess_reopen_log(struct sess *s)
{
	const char *why;

	if (!s->log_path)
		return 0;
	close_fd(&s->log_fd);
	s->log_failed = 0;
	s->log_midline = 0;      /* the new file's first line gets its time */
	if (log_open(s, &why) < 0) {
		logmsg("console %u: cannot reopen log file %s: %s; not logging "
		       "until the next SIGHUP", s->index, s->log_path, why);
		return -1;
	}
	return 0;
}

void
sess_resize(struct sess *s, unsigned cols, unsigned rows)
{
	if (s->tap)
		s->tap->resize(s->tap_arg, cols, rows);
}

/* A log write; an error is said once until writes work again, and never
 * stops the console. */
static void
log_write(struct sess *s, const void *p, size_t n)
{
	if (write_all(s->log_fd, p, n) < 0) {
		if (!s->log_failed)
			logmsg("console %u: log file %s: %s; output is not logged "
			       "until this clears", s->index, s->log_path, strerror(errno));
		s->log_failed = 1;
		return;
	}
	s->log_failed = 0;
}

/* "2026-12-03T14:20:01.123Z ": UTC, ISO 8601, milliseconds.  The wall
 * clock, not the monotonic one: the point is to read the log against
 * other logs. */
#define STAMP_LEN 25
static void
log_stamp(char out[STAMP_LEN + 1])
{
	struct timespec now;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	/* 19 bytes until year 9999; the milliseconds are 3 digits */
	strftime(out, STAMP_LEN + 1, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + 19, STAMP_LEN + 1 - 19, ".%03uZ ",
	         (unsigned)(now.tv_nsec / 1000000) % 1000);
}

/*
 * The bytes with a time before each line: a line gets its prefix when its
 * first byte is logged (a partial line has the time it started; the rest
 * of it, however much later, gets none) and ends at LF, so CR LF keeps
 * its CR and a lone CR (a progress bar redrawing) is not a new line.
 * Staged in a buffer: one write per STAGE bytes, not two per line.
 */
#define STAGE 4096
static void
log_stamped(struct sess *s, const char *p, size_t n)
{
	char stage[STAGE], stamp[STAMP_LEN + 1];
	const char *lf;
	size_t len = 0, take;

	stamp[0] = '\0';
	while (n) {
		if (!s->log_midline) {
			if (!stamp[0])
				log_stamp(stamp);    /* one time for the whole burst */
			if (len + STAMP_LEN >= sizeof stage) {
				log_write(s, stage, len);
				len = 0;
			}
			memcpy(stage + len, stamp, STAMP_LEN);
			len += STAMP_LEN;
			s->log_midline = 1;
		}
		lf = memchr(p, '\n', n);
		take = lf ? (size_t)(lf - p) + 1 : n;
		if (take > sizeof stage - len)
			take = sizeof stage - len;
		memcpy(stage + len, p, take);
		len += take;
		if (p[take - 1] == '\n')
			s->log_midline = 0;
		p += take;
		n -= take;
		if (len == sizeof stage) {
			log_write(s, stage, len);
			len = 0;
		}
	}
	if (len)
		log_write(s, stage, len);
}

/* Every byte goes to the log. */
static void
log_bytes(struct sess *s, const void *p, size_t n)
{
	if (s->log_fd < 0 || !n)
		return;
	if (s->log_timestamps)
		log_stamped(s, p, n);
	else
		log_write(s, p, n);
}

/* Readers that the new bytes overtake skip to the oldest byte kept. */
static void
overtake_readers(struct sess *s)
{
	uint64_t oldest = oldest_kept(s);
	struct reader *r;

	for (r = s->readers; r; r = r->next) {
		if (r->pos >= oldest)
			continue;
		if (r->skipped == r->logged)   /* a new episode */
			logmsg("console %u: %s is not reading; it skips output it "
			       "cannot take", s->index, r->name);
		r->skipped += oldest - r->pos;
		s->skipped += oldest - r->pos;
		r->pos = oldest;
	}
}

void
sess_write(struct sess *s, const void *p, size_t n)
{
	const char *src = p;
	uint64_t evict_to;
	size_t at, first;

	log_bytes(s, p, n);
	if (s->tap)
		s->tap->output(s->tap_arg, p, n);
	if (n > s->cap) {           /* only the newest cap bytes can stay */
		src += n - s->cap;
		s->wpos += n - s->cap;
		n = s->cap;
	}
	/* What leaves the ring now, and whether anyone saw it. */
	evict_to = s->wpos + n < s->cap ? 0 : s->wpos + n - s->cap;
	if (evict_to > s->seen) {
		if (!s->unseen_said && !s->nreaders)
			logmsg("console %u: nobody connected; keeping only the last "
			       "%zu bytes of output", s->index, s->cap);
		s->unseen_said = 1;
		s->unseen += evict_to - s->seen;
		s->seen = evict_to;
	}
	at = s->wpos % s->cap;
	first = s->cap - at < n ? s->cap - at : n;
	memcpy(s->ring + at, src, first);
	memcpy(s->ring, src + first, n - first);
	s->wpos += n;
	/* Without history nobody will ever replay what nobody reads now. */
	if (!s->nreaders && !s->history) {
		s->unseen += s->wpos - s->seen;
		s->seen = s->wpos;
	}
	overtake_readers(s);
}

/* len stream bytes from pos, as one or two spans of the ring (it wraps). */
static int
ring_spans(const struct sess *s, uint64_t pos, size_t len, struct iovec span[2])
{
	size_t at = pos % s->cap;

	span[0].iov_base = s->ring + at;
	span[0].iov_len = s->cap - at < len ? s->cap - at : len;
	span[1].iov_base = s->ring;
	span[1].iov_len = len - span[0].iov_len;
	return span[1].iov_len ? 2 : 1;
}

/*
 * The last `history` bytes, as a new reader's terminal should get them
 * (replay.h), copied: the reader then reads the ring from the live
 * position, and what replay.h leaves out is left out of the replay only.
 * The copy is the reader's until sent (at most history bytes a reader).
 * Every byte kept is now given, or left out on purpose: none of it can
 * leave the ring unseen.
 */
static void
replay_prepare(struct sess *s, struct reader *r)
{
	uint64_t kept = s->wpos - oldest_kept(s), from;
	struct iovec span[2];
	int cnt;

	if (kept > s->history)
		kept = s->history;
	if (!kept)
		return;
	from = s->wpos - kept;
	cnt = ring_spans(s, from, (size_t)kept, span);
	if (replay_build(span, cnt, from == 0, &r->replay, &r->replay_len) < 0)
		logmsg("console %u: out of memory for the history; %s gets live "
		       "output only", s->index, r->name);
	if (s->seen < s->wpos)
		s->seen = s->wpos;
}

/* n bytes of the replay went out; once all did, the reader is live. */
static void
replay_sent(struct sess *s, struct reader *r, size_t n)
{
	r->replay_off += n;
	if (r->replay_off < r->replay_len)
		return;
	free(r->replay);
	r->replay = NULL;
	r->replay_len = r->replay_off = 0;
	if (r->pos == s->wpos)
		caught_up(s, r);
}

void
reader_attach(struct sess *s, struct reader *r, const char *name)
{
	memset(r, 0, sizeof *r);
	r->name = name;
	r->pos = s->wpos;
	replay_prepare(s, r);
	r->next = s->readers;
	s->readers = r;
	s->nreaders++;
}

void
reader_detach(struct sess *s, struct reader *r)
{
	struct reader **pp;

	free(r->replay);
	r->replay = NULL;

	for (pp = &s->readers; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			s->nreaders--;
			return;
		}
	}
}

int
reader_pending(const struct sess *s, const struct reader *r)
{
	return r->replay || r->pos < s->wpos || r->notice_off ||
	       r->skipped != r->told || r->owed || r->nev;
}

/* ---- events (sess_notice) ---------------------------------------------- */

static const char *
event_text(enum sess_event what)
{
	switch (what) {
	case SESS_FRONTEND_CONNECTED:    return "frontend connected";
	case SESS_FRONTEND_DISCONNECTED: return "frontend disconnected";
	case SESS_GUEST_OPENED:          return "the guest opened the console";
	case SESS_GUEST_CLOSED:          return "the guest closed the console";
	case SESS_STOPPING:              return "stopping";
	}
	return "?";
}

/* Queue one event for r at pos.  Full: the newest is replaced, so that a
 * frontend flapping faster than r reads costs nothing, and the last thing
 * r hears is the state now. */
static void
event_queue(struct reader *r, uint64_t pos, enum sess_event what)
{
	unsigned last = r->nev - 1;

	if (r->nev && r->ev[last].pos == pos && r->ev[last].what == what)
		return;
	/* ev[0] may be under way (notice_off): never the one replaced. */
	if (r->nev == READER_EVENTS_MAX)
		r->nev--;
	r->ev[r->nev].pos = pos;
	r->ev[r->nev].what = what;
	r->nev++;
}

void
sess_notice(struct sess *s, enum sess_event what)
{
	struct reader *r;

	for (r = s->readers; r; r = r->next)
		if (!r->no_events)
			event_queue(r, s->wpos, what);
}

int
sess_notice_pending(const struct sess *s)
{
	const struct reader *r;

	for (r = s->readers; r; r = r->next)
		if (r->nev)
			return 1;
	return 0;
}

/* The oldest event is to be told now: the reader has reached its place
 * (or skipped past it). */
static int
event_due(const struct reader *r)
{
	return r->nev && r->ev[0].pos <= r->pos;
}

static void
event_told(struct reader *r)
{
	memmove(&r->ev[0], &r->ev[1], --r->nev * sizeof r->ev[0]);
}

/* len stream bytes from the reader's place, or fewer: up to the next
 * event's place, where its notice goes. */
static size_t
stop_at_event(const struct reader *r, size_t len)
{
	if (r->nev && r->ev[0].pos > r->pos && r->ev[0].pos - r->pos < len)
		return (size_t)(r->ev[0].pos - r->pos);
	return len;
}

/* What a notice starts with: "\r\n" to end the line the reader is in,
 * nothing at a line's start (a blank line would split the guest's
 * output, or stand between two notices). */
static const char *
line_end(const struct reader *r)
{
	return r->mid_line ? "\r\n" : "";
}

/* The notice a reader owes, started when none is under way: the skip
 * notice "[...: N bytes of output skipped]" first (it marks the gap), else
 * the oldest event's, once the reader has reached its place. */
const char *
reader_notice(struct reader *r, size_t *len)
{
	/* Nothing is told in the middle of the replay: the gap and the
	 * events are in what comes after it. */
	if (r->replay)
		return NULL;
	if (r->notice_off == 0) {
		if (r->skipped != r->told) {
			r->notice_event = 0;
			r->notice_n = r->skipped - r->told;
			r->notice_len = snprintf(r->notice, sizeof r->notice,
			        "%s[" PROGNAME ": %llu bytes of output skipped]\r\n",
			        line_end(r), r->notice_n);
		} else if (event_due(r)) {
			r->notice_event = 1;
			r->notice_len = snprintf(r->notice, sizeof r->notice,
			        "%s[" PROGNAME ": %s]\r\n", line_end(r),
			        event_text(r->ev[0].what));
		} else {
			return NULL;
		}
	}
	*len = r->notice_len - r->notice_off;
	return r->notice + r->notice_off;
}

void
reader_notice_sent(struct reader *r, size_t n)
{
	r->notice_off += n;
	if (r->notice_off < r->notice_len)
		return;
	r->notice_off = 0;
	r->mid_line = 0;                 /* a notice ends with "\r\n" */
	if (r->notice_event)
		event_told(r);
	else
		r->told += r->notice_n;
}

/* The reader has all there is: say how much it skipped, if it did. */
static void
caught_up(struct sess *s, struct reader *r)
{
	if (r->logged != r->skipped) {
		logmsg("console %u: %s caught up; %llu bytes of output were "
		       "skipped", s->index, r->name, r->skipped - r->logged);
		r->logged = r->skipped;
	}
	s->unseen_said = 0;
}

/* The replay first, on its own: a skip notice may be owed between it and
 * the ring's bytes. */
size_t
reader_peek(const struct sess *s, const struct reader *r, size_t max,
            struct iovec span[2], int *cnt)
{
	size_t len;

	if (r->replay) {
		len = r->replay_len - r->replay_off;
		if (len > max)
			len = max;
		span[0].iov_base = r->replay + r->replay_off;
		span[0].iov_len = len;
		*cnt = 1;
		return len;
	}
	len = s->wpos - r->pos;
	if (len > max)
		len = max;
	len = stop_at_event(r, len);
	*cnt = ring_spans(s, r->pos, len, span);
	return len;
}

void
reader_advance(struct sess *s, struct reader *r, size_t n)
{
	if (r->replay) {
		if (n)
			r->mid_line = r->replay[r->replay_off + n - 1] != '\n';
		replay_sent(s, r, n);
		return;
	}
	/* The bytes were just peeked: the last is still in the ring. */
	if (n)
		r->mid_line = s->ring[(r->pos + n - 1) % s->cap] != '\n';
	r->pos += n;
	if (r->pos > s->seen)
		s->seen = r->pos;
	if (r->pos == s->wpos)
		caught_up(s, r);
}

/*
 * What a reader skipped is said at the gap, before anything else: the
 * bytes skipped were the oldest.  Until its first byte is out, a notice
 * keeps counting all that was skipped.  1 said, 0 would block, -1 error.
 */
static int
send_notice(struct reader *r, int fd)
{
	struct iovec iov;
	ssize_t n;

	while ((iov.iov_base = (void *)reader_notice(r, &iov.iov_len))) {
		if ((n = writev_some(fd, &iov, 1)) <= 0)
			return (int)n;
		reader_notice_sent(r, (size_t)n);
	}
	return 1;
}

/* The stream as it is: one writev() per ring span pair, until budget. */
static int
send_plain(struct sess *s, struct reader *r, int fd, size_t budget)
{
	struct iovec span[2];
	size_t len;
	ssize_t n;
	int cnt;

	for (;;) {
		/* Notices first, each time: the peek stops at an event, and
		 * none comes due before the replay is out. */
		if ((cnt = send_notice(r, fd)) <= 0)
			return cnt;
		if (!budget || !(len = reader_peek(s, r, budget, span, &cnt)))
			return 1;
		if ((n = writev_some(fd, span, cnt)) <= 0)
			return (int)n;
		reader_advance(s, r, (size_t)n);
		budget -= (size_t)n;
	}
}

int
reader_flush(struct sess *s, struct reader *r, int fd)
{
	reader_send_fn *send = r->send ? r->send : send_plain;
	int rc = send(s, r, fd, SESS_PASS_MAX);

	r->blocked = rc == 0;
	return rc < 0 ? -1 : 0;
}

int
reader_serve(struct sess *s, struct reader *r, int fd, int writable)
{
	if (!reader_pending(s, r) || (r->blocked && !writable))
		return 0;
	return reader_flush(s, r, fd);
}

size_t
sess_room(const struct sess *s)
{
	size_t room = s->cap;
	struct reader *r;

	for (r = s->readers; r; r = r->next)
		if (s->cap - (s->wpos - r->pos) < room)
			room = s->cap - (s->wpos - r->pos);
	return room;
}

size_t
sess_room_live(const struct sess *s)
{
	size_t room = s->cap;
	struct reader *r;

	for (r = s->readers; r; r = r->next)
		if (!r->blocked && s->cap - (s->wpos - r->pos) < room)
			room = s->cap - (s->wpos - r->pos);
	return room;
}

size_t
reader_take(struct sess *s, struct reader *r, void *buf, size_t max)
{
	char *out = buf;
	const char *notice;
	struct iovec span[2];
	size_t n = 0, len;
	int cnt, i;

	/* Notices go first, as in send_plain(): one marks the gap, and
	 * the peek stops at an event's place. */
	for (;;) {
		while (n < max && (notice = reader_notice(r, &len))) {
			if (len > max - n)
				len = max - n;
			memcpy(out + n, notice, len);
			n += len;
			reader_notice_sent(r, len);
		}
		if (reader_notice(r, &len))
			return n;                     /* buf is full */
		if (!(len = reader_peek(s, r, max - n, span, &cnt)))
			return n;
		for (i = 0; i < cnt; i++) {
			memcpy(out + n, span[i].iov_base, span[i].iov_len);
			n += span[i].iov_len;
		}
		reader_advance(s, r, len);
	}
}
