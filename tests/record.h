/*
 * tests/record.h - VC_RECORD=FILE: tests/frontend appends what it does to
 * FILE as the event stream the fuzz targets replay (the format is in
 * fuzz/fuzz.h): the messages it sends with the kind of every fd attached,
 * its guest memory writes, its kicks, and the host input it receives.  So
 * every run of the harness can seed the fuzzers.  Without VC_RECORD every
 * function here does nothing.
 *
 * The recorder lives in tests/fe/record.c; its state is struct rec, one
 * in the harness's struct fe (it uses fe->memfd and the guest memory
 * layout, GPA_BASE and MEM_SIZE, of tests/fe/frontend.h).  Whoever ends
 * the program calls rec_flush_write() first: fail() and main() do.
 * Connections are told apart by their socket's inode; one that closed is
 * recorded as closed at the next event.
 */
#ifndef RECORD_H
#define RECORD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

enum { REC_SESSION = 1, REC_CONNECT, REC_CLOSE, REC_MSG, REC_WRITE, REC_ZERO,
       REC_KICK, REC_INPUT };
enum { RF_GUEST, RF_MEMFD, RF_EVENTFD, RF_PIPE_R, RF_PIPE_W, RF_SOCKET,
       RF_OTHER };
#define REC_SLOTS 4
#define REC_PEERS 256
#define REC_WMAX  65535
#define REC_FDS   15	/* fds per message the format carries */

struct rec_fd { int fd; dev_t dev; ino_t ino; int kind; bool live; };

/* The recorder's state (struct fe has one). */
struct rec {
	FILE *f;
	bool tried;
	struct rec_fd conn[REC_SLOTS];
	struct rec_fd peer[REC_PEERS];	/* fds sent that have a far end */
	unsigned npeers;
	uint8_t w[REC_WMAX];	/* adjacent writes, merged into one event */
	uint64_t woff;
	size_t wlen;
};

struct fe;

/* Each records one event (a no-op without VC_RECORD). */
void rec_flush_write(struct fe *fe);
void rec_msg(struct fe *fe, int fd, const uint8_t *b, size_t len,
             const int *fds, int nfds);
void rec_kick(struct fe *fe, int fd);
void rec_write(struct fe *fe, uint64_t gpa, const void *p, size_t len);
void rec_zero(struct fe *fe, uint64_t gpa, size_t len);
void rec_input(struct fe *fe, const uint8_t *p, size_t len);

#endif
