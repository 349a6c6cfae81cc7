/* replay.c - the replay of a terminal's history.  See replay.h. */
#include <stdlib.h>
#include <string.h>

#include "replay.h"

#define BEL 0x07
#define ENQ 0x05
#define ESC 0x1b
#define CAN 0x18
#define SUB 0x1a

/* What a piece of the history is, to the replay. */
enum piece {
	P_TEXT,         /* bytes to render, no escape in them */
	P_SEQ,          /* an escape sequence that only draws */
	P_QUERY,        /* a question the terminal answers: left out */
	P_RESET,        /* a full-screen reset: the replay may start here */
	P_RIS,          /* the terminal's full reset: a reset, and off the
	                 * alternate screen */
	P_HOME,         /* cursor home: a reset if an erase below follows */
	P_ERASE_BELOW,  /* erase from the cursor to the end of the screen */
	P_ALT_ENTER,    /* to the alternate screen: a reset too */
	P_ALT_LEAVE,    /* back to the normal screen */
	P_PARTIAL,      /* a sequence the history ends in: the rest is live */
};

/* A control sequence (ECMA-48 5.4): ESC [, a private prefix, parameter
 * bytes, intermediate bytes, the final byte. */
struct csi {
	char prefix;            /* '<' '=' '>' '?', or 0 */
	const char *param;      /* the parameter bytes after the prefix */
	size_t nparam;
	char inter;             /* the last intermediate byte, or 0 */
	char final;
};

/* The control sequences a terminal answers (xterm's ctlseqs, which
 * xterm.js and tmux follow), by prefix, intermediate and final byte. */
static const struct csi_query {
	char prefix, inter, final;
} csi_queries[] = {
	{ 0,   0,   'n' },      /* DSR: status, cursor position (ESC [ 6 n) */
	{ '?', 0,   'n' },      /* DSR, DEC forms (ESC [ ? 6 n, ...) */
	{ 0,   0,   'c' },      /* DA1, primary device attributes */
	{ '>', 0,   'c' },      /* DA2, secondary */
	{ '=', 0,   'c' },      /* DA3, tertiary */
	{ 0,   '$', 'p' },      /* DECRQM, an ANSI mode */
	{ '?', '$', 'p' },      /* DECRQM, a DEC mode */
	{ 0,   '$', 'w' },      /* DECRQPSR, presentation state */
	{ 0,   '*', 'y' },      /* DECRQCRA, checksum of an area */
	{ '>', 0,   'q' },      /* XTVERSION */
	{ '?', 0,   'u' },      /* the kitty keyboard protocol's flags */
	{ 0,   0,   'x' },      /* DECREQTPARM, terminal parameters */
	{ '?', 0,   'S' },      /* XTSMGRAPHICS */
};

/* Whether field v (digits) is one of the ';'-separated parameters. */
static int
csi_has_param(const struct csi *c, const char *v)
{
	size_t vl = strlen(v), i = 0, j;

	while (i <= c->nparam) {
		for (j = i; j < c->nparam && c->param[j] != ';'; j++)
			;
		if (j - i == vl && !memcmp(c->param + i, v, vl))
			return 1;
		i = j + 1;
	}
	return 0;
}

static int
csi_params_are(const struct csi *c, const char *v)
{
	return c->nparam == strlen(v) && !memcmp(c->param, v, c->nparam);
}

/* CSI Ps t reports the window's state, place, size or title for Ps 11,
 * 13-16 and 18-21; its other forms move or resize it, answering nothing. */
static int
csi_is_window_report(const struct csi *c)
{
	static const char *const reports[] = {
		"11", "13", "14", "15", "16", "18", "19", "20", "21",
	};
	size_t i, first;

	if (c->prefix || c->inter || c->final != 't')
		return 0;
	for (first = 0; first < c->nparam && c->param[first] != ';'; first++)
		;
	for (i = 0; i < sizeof reports / sizeof reports[0]; i++)
		if (first == strlen(reports[i]) &&
		    !memcmp(c->param, reports[i], first))
			return 1;
	return 0;
}

static enum piece
csi_kind(const struct csi *c)
{
	size_t i;

	for (i = 0; i < sizeof csi_queries / sizeof csi_queries[0]; i++)
		if (c->prefix == csi_queries[i].prefix &&
		    c->inter == csi_queries[i].inter &&
		    c->final == csi_queries[i].final)
			return P_QUERY;
	if (csi_is_window_report(c))
		return P_QUERY;
	if (c->inter)
		return P_SEQ;
	if (!c->prefix && c->final == 'J')          /* ED */
		return csi_params_are(c, "2") ? P_RESET :
		       csi_params_are(c, "") || csi_params_are(c, "0") ?
		       P_ERASE_BELOW : P_SEQ;
	if (!c->prefix && c->final == 'H' &&        /* CUP to 1;1 */
	    (csi_params_are(c, "") || csi_params_are(c, "1") ||
	     csi_params_are(c, "1;1") || csi_params_are(c, ";")))
		return P_HOME;
	if (c->prefix == '?' && (c->final == 'h' || c->final == 'l') &&
	    (csi_has_param(c, "1049") || csi_has_param(c, "1047") ||
	     csi_has_param(c, "47")))                /* the alternate screen */
		return c->final == 'h' ? P_ALT_ENTER : P_ALT_LEAVE;
	return P_SEQ;
}

/*
 * ESC [ at p[0..1]: the control sequence, its length and kind.  As in
 * xterm, a C0 control inside one is acted on and the sequence goes on;
 * ESC, CAN and SUB (and any byte that cannot be in one) end it unfinished,
 * drawn as nothing.
 */
static size_t
csi_at(const char *p, size_t n, enum piece *kind)
{
	struct csi c = { 0, NULL, 0, 0, 0 };
	size_t i = 2;

	if (i < n && p[i] >= '<' && p[i] <= '?')
		c.prefix = p[i++];
	c.param = p + i;
	for (; i < n; i++) {
		unsigned char b = (unsigned char)p[i];

		if (b >= 0x30 && b <= 0x3f && !c.inter) {
			c.nparam = (size_t)(p + i + 1 - c.param);
		} else if (b >= 0x20 && b <= 0x2f) {
			c.inter = (char)b;
		} else if (b >= 0x40 && b <= 0x7e) {
			c.final = (char)b;
			*kind = csi_kind(&c);
			return i + 1;
		} else if (b >= 0x20 || b == ESC || b == CAN || b == SUB) {
			*kind = P_SEQ;
			return i;
		}
	}
	*kind = P_PARTIAL;
	return n;
}

/* Whether an OSC's text asks: a ';'-separated field that is "?" (OSC 4 ;
 * 1 ; ?, OSC 11 ; ?, OSC 52 ; c ; ? ...). */
static int
osc_asks(const char *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (t[i] == '?' && i > 0 && t[i - 1] == ';' &&
		    (i + 1 == n || t[i + 1] == ';'))
			return 1;
	return 0;
}

/*
 * A string sequence at p: OSC (ESC ]), DCS (ESC P), SOS, PM, APC, up to
 * ST (ESC \) or, for OSC, BEL.  CAN and SUB cancel it, and another ESC
 * ends it (xterm).  DCS $ q (DECRQSS) and DCS + q (XTGETTCAP) ask, as
 * does an OSC with a "?" field.
 */
static size_t
string_at(const char *p, size_t n, enum piece *kind)
{
	const char *text = p + 2;
	size_t i;

	for (i = 2; i < n; i++) {
		size_t tn = i - 2, end;

		if (p[i] == BEL && p[1] == ']')
			end = i + 1;
		else if (p[i] == CAN || p[i] == SUB)
			end = i + 1;
		else if (p[i] == ESC && i + 1 == n)
			break;                   /* ST or not: the rest is live */
		else if (p[i] == ESC)
			end = p[i + 1] == '\\' ? i + 2 : i;
		else
			continue;
		*kind = P_SEQ;
		if (p[1] == ']' && osc_asks(text, tn))
			*kind = P_QUERY;
		if (p[1] == 'P' && tn >= 2 && (text[0] == '$' || text[0] == '+') &&
		    text[1] == 'q')
			*kind = P_QUERY;
		return end;
	}
	*kind = P_PARTIAL;
	return n;
}

/* The piece of the history at p, n > 0 bytes: its kind, and its length. */
static size_t
piece_at(const char *p, size_t n, enum piece *kind)
{
	size_t i;

	if (p[0] == ENQ) {                  /* answerback */
		*kind = P_QUERY;
		return 1;
	}
	if (p[0] != ESC) {
		for (i = 1; i < n && p[i] != ESC && p[i] != ENQ; i++)
			;
		*kind = P_TEXT;
		return i;
	}
	if (n == 1) {
		*kind = P_PARTIAL;
		return 1;
	}
	switch (p[1]) {
	case '[':
		return csi_at(p, n, kind);
	case ']': case 'P': case 'X': case '^': case '_':
		return string_at(p, n, kind);
	case 'c':                           /* RIS, the full reset */
		*kind = P_RIS;
		return 2;
	case 'Z':                           /* DECID: identify the terminal */
		*kind = P_QUERY;
		return 2;
	}
	/* ESC, intermediates, a final byte (ECMA-35): ESC 7, ESC ( B, ... */
	for (i = 1; i < n && p[i] >= 0x20 && p[i] <= 0x2f; i++)
		;
	if (i == n) {
		*kind = P_PARTIAL;
		return n;
	}
	*kind = P_SEQ;
	return p[i] >= 0x30 && p[i] <= 0x7e ? i + 1 : i;
}

#define NONE ((size_t)-1)

/*
 * Where the replay starts in h (n bytes; at_start: h is the stream from its
 * first byte): at the last full-screen reset (ESC [ H ESC [ J counts as
 * one), else at the first line start, else (one endless line) at h.  A
 * reset made on the alternate screen also needs the sequence that entered
 * it (the program's exit returns from it): *alt says where, or NONE.
 */
static size_t
replay_start(const char *h, size_t n, int at_start, size_t *alt)
{
	size_t at, len, line = at_start ? 0 : NONE, reset = NONE, home = NONE;
	size_t alt_on = NONE;
	enum piece kind;
	const char *nl;

	*alt = NONE;
	for (at = 0; at < n; at += len) {
		len = piece_at(h + at, n - at, &kind);
		if (kind == P_TEXT && line == NONE &&
		    (nl = memchr(h + at, '\n', len)))
			line = (size_t)(nl + 1 - h);
		if (kind == P_ALT_ENTER)
			alt_on = at;
		if (kind == P_ALT_LEAVE || kind == P_RIS)
			alt_on = NONE;
		if (kind == P_RESET || kind == P_RIS || kind == P_ALT_ENTER ||
		    (kind == P_ERASE_BELOW && home != NONE)) {
			reset = kind == P_ERASE_BELOW ? home : at;
			*alt = alt_on == reset ? NONE : alt_on;
		}
		home = kind == P_HOME ? at : NONE;
	}
	if (reset != NONE)
		return reset;
	return line != NONE ? line : 0;
}

int
replay_build(const struct iovec *span, int cnt, int at_start, char **out,
             size_t *len)
{
	size_t n = 0, at = 0, from, piece, alt;
	enum piece kind;
	char *h;
	int i;

	*out = NULL;
	*len = 0;
	for (i = 0; i < cnt; i++)
		n += span[i].iov_len;
	if (!n)
		return 0;
	if (!(h = malloc(n)))
		return -1;
	/* One straight copy, across the ring's wrap; filtered in place (what
	 * is kept never moves forward). */
	for (n = 0, i = 0; i < cnt; n += span[i].iov_len, i++)
		memcpy(h + n, span[i].iov_base, span[i].iov_len);
	from = replay_start(h, n, at_start, &alt);
	if (alt != NONE) {              /* before the reset, on the alternate
	                                 * screen: the sequence that got there */
		at = piece_at(h + alt, n - alt, &kind);
		memmove(h, h + alt, at);
	}
	for (; from < n; from += piece) {
		piece = piece_at(h + from, n - from, &kind);
		if (kind == P_QUERY)
			continue;
		memmove(h + at, h + from, piece);
		at += piece;
	}
	if (!at) {
		free(h);
		return 0;
	}
	*out = h;
	*len = at;
	return 0;
}
