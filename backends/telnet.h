/*
 * backends/telnet.h - telnet (RFC 854, 855, 857, 858, 1073) for the
 * clients of a stream socket (clients.h), with --telnet.
 *
 * Clients get a character-mode console with no stty dance: the daemon
 * offers WILL ECHO and WILL SUPPRESS-GO-AHEAD and asks DO NAWS
 * (telnet_hello()).  Input: commands are parsed out (telnet_input()), a
 * window size report sets the console's size, CR NUL and CR LF become
 * CR.  Output: every IAC (0xff) the guest writes is doubled
 * (telnet_send(), a reader's encoding, session.h); it costs one send per
 * TELNET_CHUNK stream bytes whatever they are, and a reader gets at most
 * its budget per pass, so no guest and no client can stall the loop.
 */
#ifndef TELNET_H
#define TELNET_H

#include <stddef.h>

#include "../console.h"

/* Where the input parser is, and a suboption being read. */
struct telnet_in {
	unsigned char state, cr;
	unsigned char sb[8];
	size_t sb_len;
};

/* Offer our options to a new client; its fresh, empty socket buffer
 * takes the few bytes without blocking. */
void telnet_hello(int fd);
/* Strip telnet commands from n bytes a client sent: the data goes to out
 * (never longer than in), a window size report to port.  Returns the
 * bytes of data in out. */
size_t telnet_input(struct telnet_in *t, struct port *port,
                    const unsigned char *in, size_t n, char *out);
/* The reader's encoding (reader_send_fn): the stream with IAC doubled. */
int telnet_send(struct sess *s, struct reader *r, int fd, size_t budget);

#endif
