/* asciicast.c - recordings in asciicast v2.  See asciicast.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "asciicast.h"

/* Guest bytes per "o" event at most: a long burst becomes several events
 * of the same time, and the event buffer stays bounded. */
#define CAST_CHUNK (64 * 1024)
/* The most one input byte becomes in a JSON string: a control byte is
 * \u00XX. */
#define JSON_MAX_PER_BYTE 6
/* Room for "[1234567890.123456, \"o\", \"" and "\"]\n". */
#define EVENT_FRAME 64

static const char replacement[] = "\xef\xbf\xbd";   /* U+FFFD in UTF-8 */

void
cast_init(struct asciicast *c, unsigned index)
{
	memset(c, 0, sizeof *c);
	c->index = index;
	c->fd = -1;
}

/* Write what is in c->buf; an error is said once, until writes work. */
static void
cast_write(struct asciicast *c, size_t len)
{
	if (c->fd < 0)
		return;
	if (write_all(c->fd, c->buf, len) < 0) {
		if (!c->failed)
			logmsg("console %u: recording %s: %s; output is not recorded "
			       "until this clears", c->index, c->path, strerror(errno));
		c->failed = 1;
		return;
	}
	c->failed = 0;
}

/* c->buf has room for need bytes; 0, or -1 when memory is short. */
static int
reserve(struct asciicast *c, size_t need)
{
	char *p;

	if (need <= c->bufcap)
		return 0;
	if (!(p = realloc(c->buf, need)))
		return -1;
	c->buf = p;
	c->bufcap = need;
	return 0;
}

/* The first line: what a player needs before any event. */
static void
write_header(struct asciicast *c)
{
	int n;

	clock_gettime(CLOCK_MONOTONIC, &c->start);
	if (reserve(c, 256) < 0)
		return;
	n = snprintf(c->buf, c->bufcap, "{\"version\": 2, \"width\": %u, "
	             "\"height\": %u, \"timestamp\": %lld, \"env\": {\"TERM\": "
	             "\"xterm-256color\"}}\n", c->cols, c->rows,
	             (long long)time(NULL));
	cast_write(c, (size_t)n);
}

/*
 * Open the file as the log is (see session.c log_open()): a regular file
 * only, never through a symbolic link, never waiting for a FIFO's reader.
 * O_TRUNC comes after the checks (ftruncate): opening a FIFO or a device
 * with O_TRUNC must not touch it.  -1 with a reason in why.
 */
static int
open_file(struct asciicast *c, const char **why)
{
	struct stat st;

	c->fd = open(c->path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NONBLOCK |
	             O_NOFOLLOW | O_NOCTTY, 0600);
	if (c->fd < 0) {
		*why = errno == ELOOP ? "a symbolic link (refused)" :
		       errno == ENXIO ? "not a regular file (refused)" :
		       strerror(errno);
		return -1;
	}
	if (fstat(c->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*why = "not a regular file (refused)";
		close_fd(&c->fd);
		return -1;
	}
	if (ftruncate(c->fd, 0) < 0) {
		*why = strerror(errno);
		close_fd(&c->fd);
		return -1;
	}
	return 0;
}

int
cast_open(struct asciicast *c, const char *path, unsigned cols,
          unsigned rows, char *err, size_t errlen)
{
	const char *why = "out of memory";

	c->cols = cols && rows ? cols : 80;
	c->rows = cols && rows ? rows : 24;
	if (!(c->path = strdup(path)) || open_file(c, &why) < 0) {
		snprintf(err, errlen, "recording %s: %s", path, why);
		free(c->path);
		c->path = NULL;
		return -1;
	}
	write_header(c);
	return 0;
}

/* How long a UTF-8 sequence starting with b is (0: b cannot start one),
 * and the range its second byte must be in (RFC 3629: no overlong forms,
 * no surrogates, nothing past U+10FFFF). */
static size_t
utf8_seq(unsigned char b, unsigned char *lo, unsigned char *hi)
{
	*lo = 0x80;
	*hi = 0xbf;
	if (b >= 0xc2 && b <= 0xdf)
		return 2;
	if (b >= 0xe0 && b <= 0xef) {
		if (b == 0xe0)
			*lo = 0xa0;
		else if (b == 0xed)
			*hi = 0x9f;
		return 3;
	}
	if (b >= 0xf0 && b <= 0xf4) {
		if (b == 0xf0)
			*lo = 0x90;
		else if (b == 0xf4)
			*hi = 0x8f;
		return 4;
	}
	return 0;
}

/* One ASCII byte inside a JSON string: ", \ and control bytes escaped. */
static void
json_ascii(char *out, size_t *len, unsigned char b)
{
	static const char hex[] = "0123456789abcdef";

	if (b == '"' || b == '\\') {
		out[(*len)++] = '\\';
		out[(*len)++] = (char)b;
	} else if (b < 0x20 || b == 0x7f) {
		memcpy(out + *len, "\\u00", 4);
		out[*len + 4] = hex[b >> 4];
		out[*len + 5] = hex[b & 15];
		*len += 6;
	} else {
		out[(*len)++] = (char)b;
	}
}

/*
 * Append s (n bytes) to out as the inside of a JSON string: valid UTF-8
 * only, the longest invalid start of a sequence as one U+FFFD.  A
 * character cut at the end is not written: returns how many of the n
 * bytes were taken (n - 0..3).  out needs room for JSON_MAX_PER_BYTE * n;
 * *len grows by what was written.
 */
static size_t
cast_json_utf8(char *out, size_t *len, const unsigned char *s, size_t n)
{
	unsigned char lo, hi;
	size_t i = 0, k, seq;

	while (i < n) {
		if (s[i] < 0x80) {
			json_ascii(out, len, s[i++]);
			continue;
		}
		seq = utf8_seq(s[i], &lo, &hi);
		for (k = 1; k < seq && i + k < n; k++)
			if (s[i + k] < (k == 1 ? lo : 0x80) ||
			    s[i + k] > (k == 1 ? hi : 0xbf))
				break;
		if (seq && k < seq && i + k == n)
			return i;           /* cut at the end: wait for the rest */
		if (!seq || k < seq) {
			/* The longest valid start of a sequence is one U+FFFD, as
			 * decoders that follow Unicode's advice replace it. */
			memcpy(out + *len, replacement, 3);
			*len += 3;
			i += seq ? k : 1;
			continue;
		}
		memcpy(out + *len, s + i, seq);
		*len += seq;
		i += seq;
	}
	return n;
}

/* "[seconds since the header, " with 6 decimals. */
static size_t
event_time(const struct asciicast *c, char *out)
{
	struct timespec now;
	long long sec;
	long nsec;

	clock_gettime(CLOCK_MONOTONIC, &now);
	sec = (long long)(now.tv_sec - c->start.tv_sec);
	nsec = now.tv_nsec - c->start.tv_nsec;
	if (nsec < 0) {
		sec--;
		nsec += 1000000000L;
	}
	return (size_t)snprintf(out, EVENT_FRAME, "[%lld.%06ld, ", sec,
	                        nsec / 1000);
}

/* One "o" event of the carried bytes and up to CAST_CHUNK new ones;
 * returns how many new ones it took.  With flush, an incomplete
 * character at the end is written as U+FFFD instead of carried. */
static size_t
output_event(struct asciicast *c, const unsigned char *p, size_t n, int flush)
{
	unsigned char in[sizeof c->carry + CAST_CHUNK];
	size_t len, inlen, took;

	if (n > CAST_CHUNK)
		n = CAST_CHUNK;
	memcpy(in, c->carry, c->ncarry);
	memcpy(in + c->ncarry, p, n);
	inlen = c->ncarry + n;
	if (reserve(c, JSON_MAX_PER_BYTE * inlen + 2 * EVENT_FRAME) < 0)
		return n;                 /* out of memory: this burst is lost */
	len = event_time(c, c->buf);
	memcpy(c->buf + len, "\"o\", \"", 6);
	len += 6;
	took = cast_json_utf8(c->buf, &len, in, inlen);
	c->ncarry = inlen - took;
	memcpy(c->carry, in + took, c->ncarry);
	if (flush && c->ncarry) {
		memcpy(c->buf + len, replacement, 3);
		len += 3;
		c->ncarry = 0;
	}
	memcpy(c->buf + len, "\"]\n", 3);
	/* Bytes that are all carried make no event: nothing to show yet. */
	if (took || flush)
		cast_write(c, len + 3);
	return n;
}

void
cast_output(struct asciicast *c, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t done = 0;

	if (!c->path)
		return;
	while (done < n)
		done += output_event(c, s + done, n - done, 0);
}

void
cast_resize(struct asciicast *c, unsigned cols, unsigned rows)
{
	size_t len;

	if (!c->path || (cols == c->cols && rows == c->rows))
		return;
	c->cols = cols;
	c->rows = rows;
	if (reserve(c, 2 * EVENT_FRAME) < 0)
		return;
	len = event_time(c, c->buf);
	len += (size_t)snprintf(c->buf + len, EVENT_FRAME, "\"r\", \"%ux%u\"]\n",
	                        cols, rows);
	cast_write(c, len);
}

/* A character still cut at the end of the file is not coming: U+FFFD. */
static void
flush_carry(struct asciicast *c)
{
	if (c->ncarry)
		output_event(c, (const unsigned char *)"", 0, 1);
}

int
cast_reopen(struct asciicast *c)
{
	const char *why;

	if (!c->path)
		return 0;
	flush_carry(c);
	close_fd(&c->fd);
	c->failed = 0;
	if (open_file(c, &why) < 0) {
		logmsg("console %u: cannot reopen recording %s: %s; not recording "
		       "until the next SIGHUP", c->index, c->path, why);
		return -1;
	}
	write_header(c);
	return 0;
}

void
cast_close(struct asciicast *c)
{
	if (c->path)
		flush_carry(c);
	close_fd(&c->fd);
	free(c->path);
	free(c->buf);
	c->path = c->buf = NULL;
	c->bufcap = 0;
}
