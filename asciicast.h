/*
 * asciicast.h - a recording of one console's session as an asciicast v2
 * file (--record=PATH: console k to PATHk), for `asciinema play` or
 * `asciinema cat`.
 *
 * The file is one JSON header line, then one JSON event per line:
 *
 *     {"version": 2, "width": 80, "height": 24, "timestamp": 1796307601,
 *      "env": {"TERM": "xterm-256color"}}           (one line)
 *     [0.013207, "o", "login: "]                   guest output
 *     [4.500031, "r", "100x30"]                    the console's new size
 *
 * The time of an event is seconds since the header, on the monotonic
 * clock (a step of the wall clock does not reorder events), with 6
 * decimals.  The format wants valid UTF-8 in its JSON strings: guest bytes
 * that are not are written as U+FFFD, and a character cut between two
 * bursts of output is kept whole (its first bytes wait for the next).
 *
 * The file is opened as the log is (a regular file only, never through a
 * symbolic link, never waiting) but truncated: a recording is one header
 * and its events.  cast_reopen() (SIGHUP) starts a new file with a new
 * header, after the operator moved the old one away.  Writes never block
 * the loop; an error is said once, until a write works again.
 */
#ifndef ASCIICAST_H
#define ASCIICAST_H

#include <stddef.h>
#include <time.h>

struct asciicast {
	unsigned index;               /* console k, for messages */
	char *path;                   /* NULL: not recording */
	int fd;                       /* -1: no file (until the next reopen) */
	struct timespec start;        /* the header's time, monotonic */
	unsigned cols, rows;          /* the size last recorded */
	unsigned char carry[3];       /* a UTF-8 character's first bytes */
	size_t ncarry;
	char *buf;                    /* one event, as written */
	size_t bufcap;
	int failed;                   /* a write error was said */
};

/* Not recording: cast_output() and the rest do nothing. */
void cast_init(struct asciicast *c, unsigned index);
/* Start recording to path with the console's size (0 x 0: 80 x 24).
 * -1 with a reason in err when the file is unusable. */
int cast_open(struct asciicast *c, const char *path, unsigned cols,
              unsigned rows, char *err, size_t errlen);
/* Guest output: one "o" event. */
void cast_output(struct asciicast *c, const void *p, size_t n);
/* The console's size changed: one "r" event. */
void cast_resize(struct asciicast *c, unsigned cols, unsigned rows);
/* SIGHUP: close the file, open path again, a new header.  A file that
 * cannot be opened is said once; nothing is recorded until the next. */
int cast_reopen(struct asciicast *c);
void cast_close(struct asciicast *c);

#endif
