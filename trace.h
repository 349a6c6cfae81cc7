/*
 * trace.h - --trace: what the daemon and the frontend say to each other,
 * one readable line each on stderr (through logmsg(), so "trace: " follows
 * the program's name).  docs/tour.md follows such a trace through the code.
 *
 *   TRACE_MSG (--trace, --trace=1): every vhost-user request by name with
 *     its decoded payload (feature bits by name, memory regions, ring
 *     addresses and sizes, which fds came), every reply and ack, and every
 *     MULTIPORT control message in both directions:
 *       trace: device 0: <- SET_VRING_ADDR q2 flags 0 desc 0x... ...
 *       trace: device 0: -> reply GET_FEATURES 0x... (VERSION_1 ...)
 *       trace: device 0: ctrl <- PORT_READY id 0 value 1
 *   TRACE_RING (--trace=2): also ring events: kicks, chains taken (with
 *     their lengths) and returned, chains put back, notifications sent.
 *
 * Contract.  The caller tests the level before it calls (TRACE_ON below):
 * with tracing off that is one predictable branch on an int, and nothing
 * is formatted and no function called.  The printers keep no state: they
 * take the device's name or number and what to print.  Anything the guest
 * or the frontend chose that is not a number (a port name, config bytes)
 * is escaped (esc(), util.h).
 */
#ifndef TRACE_H
#define TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "vhu.h"

enum trace_level {
	TRACE_OFF = 0,
	TRACE_MSG = 1,      /* messages, replies, control messages */
	TRACE_RING = 2,     /* and ring events */
	TRACE_MAX = TRACE_RING
};

/* Whether a device traced at level traces events of level want; tracing
 * is rare, so the compiler is told to lay out the "off" path straight. */
#define TRACE_ON(level, want) __builtin_expect((level) >= (want), 0)

/* A request as it came, before it is checked (a malformed one is traced
 * too, as far as its payload goes), with the fds that came with it. */
void trace_request(const char *dev, const char *name, const struct vhu_msg *m);
/* The reply to request m (its own, or the ack when ack is set). */
void trace_reply(const char *dev, const char *name, const struct vhu_msg *m,
                 int ack);
/* A message the backend sends on its own channel (CONFIG_CHANGE_MSG). */
void trace_backend_msg(const char *dev, const char *name);

/* A control message as it is on the wire: le32 id, le16 event, le16 value,
 * then PORT_NAME's name or RESIZE's two le16 (rows first when rows_first).
 * to_guest: device -> driver (control receiveq), else driver -> device. */
void trace_ctrl(unsigned dev, int to_guest, const uint8_t *msg, size_t len,
                int rows_first);

/* A ring event of queue q: "ring qQ " and the rest, printf-style. */
void trace_ring(const char *dev, unsigned q, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
