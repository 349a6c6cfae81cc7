/*
 * replay.h - what a new client of a terminal is replayed of its history.
 *
 * A new client's terminal (socat in a terminal, xterm.js, tmux, screen)
 * renders the history, and it also answers every question the history
 * asks a terminal: a shell prompt's cursor-position query (ESC [ 6 n)
 * kept from an hour ago would make each new viewer type "ESC [ 7 ; 8 R"
 * into the guest, into an editor or a `cat > file`.  So the replay is a
 * filtered copy of the history:
 *
 *   - it starts at the last full-screen reset kept (clear screen, ESC [ H
 *     ESC [ J, entering the alternate screen, ESC c), so a full-screen
 *     program's screen comes out whole and not as 64 KiB of redraws;
 *     without one, at the first line start (the history was cut in the
 *     middle of a line, perhaps of an escape sequence);
 *   - it holds nothing a terminal answers: device status reports (CSI n),
 *     device attributes (CSI c, CSI > c, CSI = c, ESC Z), window reports
 *     (CSI 11..21 t), mode and setting reports (CSI $ p, DCS $ q, DCS + q,
 *     CSI $ w, CSI * y, CSI > q, CSI ? u, CSI x, CSI ? S), any OSC with a
 *     "?" field (colour and clipboard queries: OSC 4/10/11/52...), and ENQ.
 *
 * Only the replay is filtered: live output is the guest's, and a guest
 * that asks now gets its answers.  A sequence the history ends in the
 * middle of is kept as it is: the rest of it is live.  7-bit sequences
 * only (ESC [, not the C1 byte 0x9b, which UTF-8 terminals do not take).
 */
#ifndef REPLAY_H
#define REPLAY_H

#include <stddef.h>
#include <sys/uio.h>

/* The replay of the history, cnt spans in stream order (at_start: they
 * begin with the stream's first byte, a line start): a malloc'd copy in
 * *out, *len bytes (NULL and 0 when it is empty).  0, or -1 when out of
 * memory. */
int replay_build(const struct iovec *span, int cnt, int at_start, char **out,
                 size_t *len);

#endif
