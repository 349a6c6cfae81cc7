/*
 * tests/fe/frontend.h - a vhost-user frontend that plays QEMU and a Linux
 * virtio console driver against vhost-device-console, for the test suite.
 *
 * usage: frontend [--timeout=S] [-v] SOCK STEP [STEP...]
 *        frontend --pattern N     print N bytes of the data pattern, exit
 *        frontend --help
 *
 * Connects to the daemon's vhost-user socket SOCK (retrying, within the
 * timeout, while the socket is absent or the daemon still closes new
 * connections because it has not yet seen a previous frontend go away: the
 * connection is probed with GET_FEATURES), then runs the steps in order.  At
 * the first failure it prints one line to stderr and exits 1; it exits 0
 * when every step passed.  Every wait is bounded by the timeout (default
 * 10 s) and sleeps in poll() on the call fds and the socket.
 *
 * Guest memory: one 8 MiB memfd filled with a known byte pattern, handed to
 * the daemon as TWO regions (gpa 0x100000 and 0x500000, 4 MiB each, with
 * unrelated frontend addresses and the second at mmap_offset 4 MiB).  The
 * rings live in region 0; the first port0 receive buffer straddles the
 * region boundary (with init --tx-cross: the first transmit buffer does),
 * the other data buffers live in region 1.
 *
 * Driver behaviour follows Linux's virtio_ring.c: descriptors, write
 * barrier, avail idx, then a kick unless suppressed (used flags, or
 * avail_event with EVENT_IDX); used_event is written and the used idx
 * re-read after it; descriptors are reused only after their used entry.
 * Receive queues are looked at only when their call fd fires, so a missing
 * notification makes the step time out (it would hang Linux); transmit
 * queues are polled while buffers are out, as hvc spins on them.  Used
 * entries must name an outstanding head; transmit buffers must come back
 * with used len 0, control messages with 8.  -v prints a timestamped trace.
 *
 * Steps (options follow the step name and start with "--"; TEXT may use
 * the escapes \n \r \t \\ \0 \xHH):
 *
 *   init [--no-event-idx] [--no-indirect] [--queue-size=N] [--pipes]
 *        [--no-protocol-features] [--no-reply-ack] [--add-mem-reg]
 *        [--tx-cross] [--base=B] [--size] [--no-multiport] [--ports=N]
 *        QEMU's start sequence: GET_FEATURES, GET_PROTOCOL_FEATURES,
 *        SET_PROTOCOL_FEATURES, GET_QUEUE_NUM, GET_MAX_MEM_SLOTS,
 *        SET_BACKEND_REQ_FD, SET_OWNER, GET_FEATURES, GET_CONFIG,
 *        SET_FEATURES, SET_MEM_TABLE (or two ADD_MEM_REG), per queue
 *        SET_VRING_NUM/BASE/ADDR/KICK/CALL, then SET_VRING_ENABLE(1).  With
 *        REPLY_ACK every request that has no reply of its own is sent with
 *        need_reply and its ack must be 0.  --pipes: kick/call fds are pipes
 *        (as user-mode-linux passes) instead of eventfds; --base=B starts
 *        every ring at index B (to cross the u16 wrap early); --ports=N:
 *        the device has N ports (only port 0's rings are set up; the others
 *        are driven with the ctrl-* steps).
 *   handshake [--rx-bufs=N] [--resize=COLSxROWS]
 *        Fill the control receiveq, DEVICE_READY -> expect PORT_ADD(0,1);
 *        fill port0 receiveq (N buffers, default min(64, queue size)),
 *        PORT_READY(0,1) -> expect CONSOLE_PORT(0,1) then PORT_OPEN(0,1),
 *        each with used len 8; then send PORT_OPEN(0,1) as Linux does;
 *        --resize: then expect RESIZE(0) with that size (init --size).
 *   write TEXT            guest output, one buffer per 4096 bytes, each
 *                         waited for (used len must be 0), as hvc does
 *   write-chain TEXT      one buffer as a chain of up to 3 descriptors
 *   write-indirect TEXT   one buffer through an indirect table (3 entries)
 *   expect-resize COLS ROWS   the next control message is RESIZE(0) with
 *                         le16 cols, le16 rows (negotiate with init --size)
 *   expect-config-size COLS ROWS   GET_CONFIG shows this cols and rows
 *   expect-config-change [SECONDS] CONFIG_CHANGE_MSG on the backend channel
 *   emerg-write [--whole] CHAR     SET_CONFIG of emerg_wr at offset 8 (4
 *                         bytes), or --whole: all 12 bytes at offset 0
 *   clear-nonblock        clear O_NONBLOCK on the kick and call fds
 *                         (shared with the daemon), as a hostile frontend may
 *   write-burst N TEXT    N buffers all holding TEXT, made available
 *                         together with one kick
 *   write-bytes N [--inflight=K]
 *                         N bytes of the data pattern in 4096-byte buffers,
 *                         up to K (default 8, at most 256: a full ring) in
 *                         flight; --repeat: the first buffer's bytes in
 *                         every buffer (benchmarks: the guest costs little)
 *   expect TEXT [SECONDS] wait until TEXT is in what the device wrote into
 *                         the port0 receive buffers; consumes through TEXT
 *   expect-all N T1..TN [SECONDS]
 *                         wait until all N texts appeared, in any order
 *   expect-bytes N [SECONDS]
 *                         the next N bytes received are the data pattern
 *   read-bytes N [--check] [SECONDS]
 *                         host -> guest throughput: receive N bytes, each
 *                         buffer posted again as soon as it is used; the
 *                         bytes are counted, not kept (--check: they are
 *                         the data pattern); prints "read-bytes: N bytes
 *                         in T ns" on stdout (handshake --rx-bufs=256 keeps
 *                         a 256-entry ring full)
 *   echo-loop N [SECONDS] write back every byte received, at once, until N
 *                         bytes went back (keystroke round trips)
 *   check-memory          every byte never handed to the device as
 *                         device-writable (buffers, used rings) still holds
 *                         what the frontend put there
 *   reset                 guest reset as QEMU does it: SET_VRING_ENABLE(0)
 *                         and GET_VRING_BASE per queue (indices checked),
 *                         fresh rings from the base, SET_FEATURES, rings
 *                         started again (memory not resent), handshake
 *   reset-device          RESET_DEVICE, then SET_FEATURES, memory table and
 *                         rings again (a handshake step must follow)
 *   close                 close the connection
 *   reconnect             close and connect again (init must follow)
 *   expect-eof [SECONDS]  the daemon closes the connection
 *   hold FILE [SECONDS]   keep serving the rings until FILE exists
 *                         (default 30 s); tolerates the daemon closing
 *   Hostile rings, each on queue Q (default 1, port0 transmitq; 0 is the
 *   port0 receiveq, used once host input arrives): the daemon must refuse
 *   the chain (mark the device broken) and never complete it:
 *   corrupt-head [Q]      avail ring entry >= queue size
 *   corrupt-next [Q]      NEXT index >= queue size
 *   desc-loop [Q]         two descriptors NEXT-linked in a cycle
 *   desc-oob [Q]          buffer address outside guest memory
 *   desc-oob-edge [Q]     buffer running past the end of guest memory
 *   desc-wrap [Q]         address + length wraps around 2^64
 *   avail-jump [Q]        avail idx advanced by queue size + 1
 *   indirect-bad-len [Q]  indirect table length not a multiple of 16
 *   indirect-nested [Q]   an indirect descriptor inside an indirect table
 *   desc-empty [Q]        a zero-length buffer
 *   indirect-huge [Q]     an indirect table of 65536 entries (the queue
 *                         maximum is 32768) whose first entry is an empty
 *                         descriptor chained to itself
 *   Protocol checks, each on a fresh connection, each checking the exact
 *   reply bytes (header {request, 0x5, size} + payload) and invalid
 *   variants:
 *   proto-features        GET_FEATURES = 0x170000002, SET_FEATURES
 *   proto-protocol-features  GET/SET_PROTOCOL_FEATURES (0x8229)
 *   proto-misc            GET_QUEUE_NUM 4, GET_MAX_MEM_SLOTS 32, SET_OWNER,
 *                         need_reply on a GET gives exactly one reply
 *   proto-config          GET_CONFIG whole/partial/invalid
 *   proto-config-read, -config-invalid  one part of proto-config each
 *   proto-unknown         unknown request with and without need_reply
 *   proto-mem-table       SET_MEM_TABLE valid, long payload, invalid ones
 *   proto-mem-reg         ADD_MEM_REG / REM_MEM_REG
 *   proto-mem-reg-acked, -mem-reg-refused  one part of proto-mem-reg each
 *   proto-vring           SET_VRING_NUM/BASE/KICK/CALL/ENABLE validation
 *   proto-vring-num, -base-index, -kick-nofd, -kick-bad-queue,
 *   proto-vring-kick-endless, -call, -enable-index
 *                         one part of proto-vring each, on its own
 *   proto-vring-base      GET_VRING_BASE values, stops the ring, restart
 *   proto-vring-base-values, -vring-base-stop  the same, stopping earlier
 *   proto-vring-enable    rings idle until SET_VRING_ENABLE(1)
 *   proto-oversize        268-byte payload accepted, 269 drops the link,
 *                         a new connection works
 *   proto-truncated       connections closed mid-header / mid-payload,
 *                         then a new connection works
 *   proto-second-frontend a second connection is closed, the first works
 *   proto-stray-fds       fds on messages that carry none are closed
 *   proto-reconnect-at-once  100 times: leave (idle, mid-header,
 *                         mid-payload, after whole messages), connect at
 *                         once without retrying: served every time
 *   proto-second-live-mid-message  a live frontend with half a message
 *                         queued still holds the socket
 *   proto-get-vring-base-bad  GET_VRING_BASE on a missing queue: closed
 *   proto-unsupported-reply  unsupported requests that have a reply of
 *                         their own (GET_STATUS, ...): closed
 *   proto-need-reply-all  need_reply on every handled request: exactly one
 *                         reply; refusals exactly one failure ack
 *   proto-long            every fixed-size request one byte too long:
 *                         refused (a GET: closed)
 *
 * Failed "fd closed" checks use a pipe's write end as the fd: once the
 * daemon closes its copy, the read end here sees EOF.
 *
 * The harness is one program in a few modules, declared below in this
 * order: mem.c, msg.c, ring.c, steps.c, hostile.c, proto.c and main.c (the
 * step table); the recorder, record.c, is declared in tests/record.h.  All of its state is one struct fe, made by
 * main() and passed by pointer to every function that needs more than its
 * arguments; a step is a function void step_NAME(struct fe *) that takes
 * its arguments with arg_next()/opt_next() and calls fail() at the first
 * mismatch.
 */
#ifndef FRONTEND_H
#define FRONTEND_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../../virtio_console.h"
#include "../record.h"

/* ---------------------------------------------------------------------- */
/* vhost-user and virtio constants                                         */

enum {
	VU_GET_FEATURES = 1, VU_SET_FEATURES = 2, VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4, VU_SET_MEM_TABLE = 5, VU_SET_LOG_BASE = 6,
	VU_SET_LOG_FD = 7, VU_SET_VRING_NUM = 8, VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10, VU_GET_VRING_BASE = 11, VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13, VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15, VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17, VU_SET_VRING_ENABLE = 18,
	VU_SET_BACKEND_REQ_FD = 21, VU_GET_CONFIG = 24, VU_SET_CONFIG = 25,
	VU_RESET_DEVICE = 34, VU_GET_MAX_MEM_SLOTS = 36, VU_ADD_MEM_REG = 37,
	VU_REM_MEM_REG = 38,
};
#define VU_VERSION    0x1u
#define VU_REPLY      0x4u
#define VU_NEED_REPLY 0x8u
#define VU_HDR_SIZE   12
#define VU_NOFD       (1ull << 8)

#define VU_F_PROTOCOL_FEATURES 30
#define PF_MQ                  0
#define PF_LOG_SHMFD           1
#define PF_REPLY_ACK           3
#define PF_BACKEND_REQ         5
#define PF_CONFIG              9
#define PF_CONFIGURE_MEM_SLOTS 15

#define BIT(n) (1ull << (n))

/* The contract this harness checks. */
#define WANT_FEATURES (BIT(VIRTIO_F_VERSION_1) | BIT(VU_F_PROTOCOL_FEATURES) | \
	BIT(VIRTIO_RING_F_EVENT_IDX) | BIT(VIRTIO_RING_F_INDIRECT_DESC) | \
	BIT(VIRTIO_CONSOLE_F_SIZE) | BIT(VIRTIO_CONSOLE_F_MULTIPORT) | \
	BIT(VIRTIO_CONSOLE_F_EMERG_WRITE))
#define WANT_PFEATURES (BIT(PF_MQ) | BIT(PF_REPLY_ACK) | BIT(PF_BACKEND_REQ) | \
	BIT(PF_CONFIG) | BIT(PF_CONFIGURE_MEM_SLOTS))
#define WANT_QUEUE_NUM 4
#define WANT_MEM_SLOTS 32
#define MAX_PAYLOAD    268	/* largest payload the daemon accepts */

#define VRING_DESC_F_NEXT     1
#define VRING_DESC_F_WRITE    2
#define VRING_DESC_F_INDIRECT 4
#define VRING_USED_F_NO_NOTIFY 1

/* ---------------------------------------------------------------------- */
/* guest memory layout                                                     */

#define MEM_SIZE    (8u << 20)
#define REGION_SIZE (4u << 20)
#define GPA_BASE    ((uint64_t)0x100000)
#define GPA_END     (GPA_BASE + MEM_SIZE)
#define BOUNDARY    (GPA_BASE + REGION_SIZE)
#define UADDR0      0x10000000000ull	/* frontend "virtual" address, region 0 */
#define UADDR1      0x20000000000ull	/* region 1: not contiguous with 0 */
#define BUF_SIZE    4096u
#define RX0_MAX     256	/* handshake --rx-bufs up to this */
#define RX0_DEFAULT 64
#define TX0_SLOTS   256	/* write-bytes --inflight up to this: a full ring */
#define CRX_MAX     16
#define CTX_SLOTS   16
#define CTX_SIZE    64u
#define IND_SLOTS   32
#define IND_SIZE    4096u
#define NQ          4
#define MAX_QSIZE   32768u

enum { TK_NONE, TK_RX0, TK_TX0, TK_CRX, TK_CTX, TK_BAD };

struct tok {
	uint8_t kind;
	bool busy;
	uint16_t ndesc;
	int slot;
	int ind;
	uint32_t wlen;
};

struct vq {
	unsigned num;
	bool active;		/* rings handed to the daemon */
	uint64_t desc, avail, used;	/* gpa */
	uint16_t avail_idx;	/* next avail slot, free running */
	uint16_t pub_idx;	/* avail idx last published */
	uint16_t last_used;	/* next used entry to consume */
	uint16_t *freel;
	unsigned nfree;
	struct tok *tok;
	unsigned inflight;	/* good chains not yet used */
	int kick_w, kick_r, call_r, call_w;
	uint64_t kicks, calls;
};



/* A vhost-user message as received (fds closed and counted). */
struct vu_msg {
	struct { uint32_t request, flags, size; } h;
	uint8_t p[4096];
	int nfds;
};

/* One buffer of a chain: guest address, length, device-writable. */
struct seg { uint64_t gpa; uint32_t len; bool w; };

/* Control messages the device sent, not yet consumed. */
struct cmsg { uint32_t id; uint16_t event, value; uint32_t len; uint8_t payload[8]; };

/* What was negotiated on the current connection. */
struct negotiated {
	uint64_t features_offered, features;
	uint64_t pfeatures_offered, pfeatures;
	bool proto, reply_ack, event_idx, indirect;
};

/* The init step's options, kept for reset and handshake. */
struct initopt {
	bool no_event_idx, no_indirect, pipes, no_proto, no_reply_ack;
	bool size, no_multiport;
	bool add_mem_reg, tx_cross;
	unsigned qsize;
	uint16_t base;
	unsigned ports;	/* --ports=N: max_nr_ports to expect (rings: port 0's only) */
};

/*
 * All of the harness's state: one instance, made by main() and passed to
 * every function that needs more than its arguments.
 */
struct fe {
	/* the run: where, which step, how verbose, how patient */
	const char *sock_path;
	const char *cur_step;
	int step_no;
	int verbose;
	double timeout_s;
	int64_t t_start;	/* -v timestamps count from here */

	/* the steps' arguments: argv[ai] is the next one to take */
	int argc, ai;
	char **argv;

	/* guest memory, its shadow (what the driver wrote) and which bytes
	 * the device may write (wmap) */
	int memfd;
	uint8_t *mem, *shadow, *wmap;

	/* the rings and the buffers behind them */
	struct vq vq[NQ];
	uint64_t ind_base, crx_base, ctx_base, rx0_base, tx0_base;
	bool ind_busy[IND_SLOTS], rx0_busy[RX0_MAX], tx0_busy[TX0_SLOTS];
	bool crx_busy[CRX_MAX], ctx_busy[CTX_SLOTS];
	unsigned rx0_nbufs, crx_nbufs;	/* how many to keep posted */
	unsigned tx0_next;
	/* write-bytes --repeat: slots that hold the repeated buffer already
	 * (its length), so that the guest's cost is the ring, not copying */
	bool tx_repeat;
	size_t tx0_repeat_len[TX0_SLOTS];

	/* the vhost-user connection and the backend channel */
	int sock;
	bool sock_eof;
	int service_tick_ms;	/* re-check the condition this often */
	int backend_fd;
	unsigned config_changes;	/* CONFIG_CHANGE_MSGs seen */
	struct negotiated neg;
	struct initopt iopt;

	/* bytes the device wrote into port0 receive buffers, not yet consumed */
	uint8_t *rxd;
	size_t rxd_len, rxd_cap;
	uint64_t rx_total;
	/* read-bytes: received bytes are counted (and checked), not kept */
	struct { bool on, check; uint64_t got; int64_t first; } rx_sink;

	/* control messages received, not yet consumed */
	struct cmsg cq[64];
	unsigned cq_head, cq_count;

	struct rec rec;	/* VC_RECORD */
};

/* mem.c: diagnostics (fail, note), time, byte helpers, the data and memory
 * patterns, guest memory (every driver write goes through gw*, so that
 * check-memory can tell what the device wrote) and its layout. */
int64_t now_ms(void);
void fail(struct fe *fe, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));
void note(struct fe *fe, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int64_t deadline_in(double s);
int ms_left(int64_t dl);
const char *reqname(uint32_t r);
const char *evname(uint16_t e);
const char *hex(const void *p, size_t n);
void put32(uint8_t *p, uint32_t v);
void put64(uint8_t *p, uint64_t v);
uint32_t get32(const uint8_t *p);
uint64_t get64(const uint8_t *p);
uint8_t data_pat(uint64_t k);
void mem_setup(struct fe *fe);
uint8_t *g2h(struct fe *fe, uint64_t gpa, uint64_t len);
void gw(struct fe *fe, uint64_t gpa, const void *p, size_t len);
void gw16(struct fe *fe, uint64_t gpa, uint16_t v);
void gw32(struct fe *fe, uint64_t gpa, uint32_t v);
void gw64(struct fe *fe, uint64_t gpa, uint64_t v);
void gzero(struct fe *fe, uint64_t gpa, size_t len);
void gstore16_release(struct fe *fe, uint64_t gpa, uint16_t v);
uint16_t gload16(struct fe *fe, uint64_t gpa);
uint32_t gload32(struct fe *fe, uint64_t gpa);
uint16_t sh16(struct fe *fe, uint64_t gpa);
void mark_writable(struct fe *fe, uint64_t gpa, uint64_t len);
uint64_t gpa2uaddr(uint64_t gpa);
void layout(struct fe *fe, unsigned n, bool tx_cross);
uint64_t rx0_gpa(struct fe *fe, int s);
uint64_t tx0_gpa(struct fe *fe, int s);
uint64_t crx_gpa(struct fe *fe, int s);
uint64_t ctx_gpa(struct fe *fe, int s);
uint64_t ind_gpa(struct fe *fe, int s);

/* msg.c: vhost-user messages (send, receive, exact replies, acks) and the
 * connection to the daemon. */
int read_msg(struct fe *fe, int fd, struct vu_msg *m, int64_t dl);
void backend_service(struct fe *fe);
int vu_send_raw(struct fe *fe, int fd, uint32_t req, uint32_t flags,
                uint32_t size, const void *payload, size_t len, const int *fds,
                int nfds);
void vu_send(struct fe *fe, uint32_t req, uint32_t flags, const void *payload,
             uint32_t size, const int *fds, int nfds);
void recv_reply(struct fe *fe, struct vu_msg *m, const char *what);
uint64_t reply_u64(struct fe *fe, uint32_t req, const char *what);
void expect_reply_bytes(struct fe *fe, const uint8_t *want, size_t len,
                        const char *what);
void expect_reply_u64_exact(struct fe *fe, uint32_t req, uint64_t v,
                            const char *what);
uint64_t vu_get_u64(struct fe *fe, uint32_t req);
void vu_ok(struct fe *fe, uint32_t req, const void *p, uint32_t size,
           const int *fds, int nfds, const char *what);
void vu_fails(struct fe *fe, uint32_t req, const void *p, uint32_t size,
              const int *fds, int nfds, const char *what);
void vu_u64(struct fe *fe, bool want_ok, uint32_t req, uint64_t v,
            const int *fds, int nfds, const char *what);
void vu_state(struct fe *fe, bool want_ok, uint32_t req, uint32_t idx,
              uint32_t num, const char *what);
void expect_eof_on(struct fe *fe, int fd, const char *what);
int connect_once(struct fe *fe);
void disconnect(struct fe *fe);
void connect_probe(struct fe *fe);

/* ring.c: the rings, driver side (Linux virtio_ring.c's rules), the
 * interrupt loop (service), control messages, and QEMU's negotiation and
 * ring setup. */
extern const char *const qname[NQ];
void buffers_forget(struct fe *fe);
void rings_forget(struct fe *fe);
void vq_init(struct fe *fe, int qi, unsigned n, uint16_t base);
void set_desc(struct fe *fe, uint64_t table, unsigned i, uint64_t addr,
              uint32_t len, uint16_t flags, uint16_t next);
uint16_t desc_alloc(struct fe *fe, struct vq *q);
int ind_alloc(struct fe *fe);
void avail_push(struct fe *fe, struct vq *q, uint16_t head);
uint16_t vq_add(struct fe *fe, struct vq *q, const struct seg *s, int n,
                bool indirect, int kind, int slot);
void kick(struct fe *fe, struct vq *q);
void vq_publish(struct fe *fe, struct vq *q, bool force_kick);
void rx_sink_take(struct fe *fe, const uint8_t *p, size_t n);
void rxd_consume(struct fe *fe, size_t n);
void rx0_refill(struct fe *fe);
void crx_refill(struct fe *fe);
void drain_fd(int fd);
bool service(struct fe *fe, int64_t dl, bool (*cond)(struct fe *, void *),
             void *arg, bool allow_eof);
void service_window(struct fe *fe, int ms);
void wait_q_idle(struct fe *fe, int qi, const char *what);
struct cmsg ctrl_next(struct fe *fe, const char *waiting_for);
void ctrl_expect(struct fe *fe, uint32_t id, uint16_t ev, uint16_t val);
void ctrl_send_len(struct fe *fe, uint32_t id, uint16_t ev, uint16_t val,
                   uint32_t len);
void ctrl_send(struct fe *fe, uint32_t id, uint16_t ev, uint16_t val);
void negotiate(struct fe *fe, bool want_proto, bool want_reply_ack);
void set_features(struct fe *fe);
void region_bytes(uint8_t *p, int r);
void set_memory(struct fe *fe, bool add_mem_reg);
void ring_start(struct fe *fe, int qi, uint16_t base);
void ring_enable(struct fe *fe, int qi, uint32_t on);
void rings_setup(struct fe *fe, bool enable);

/* steps.c: step arguments, and the setup and data steps. */
const char *opt_next(struct fe *fe);
const char *arg_next(struct fe *fe, const char *what);
bool parse_num(const char *s, double *out);
unsigned long long parse_ull(struct fe *fe, const char *s, const char *what);
double opt_seconds(struct fe *fe, double dflt);
int opt_queue(struct fe *fe);
const char *opt_value(struct fe *fe, const char *opt, const char *name);
uint8_t *unescape(struct fe *fe, const char *s, size_t *len);
void need_rings(struct fe *fe);
void step_init(struct fe *fe);
void handshake(struct fe *fe, unsigned rx_bufs);
unsigned default_rx_bufs(struct fe *fe);
void step_handshake(struct fe *fe);
void tx_submit(struct fe *fe, const uint8_t *data, size_t len, int mode);
void step_write_burst(struct fe *fe);
void step_write(struct fe *fe);
void step_write_chain(struct fe *fe);
void step_write_indirect(struct fe *fe);
void step_write_bytes(struct fe *fe);
int64_t now_ns(void);
void step_read_bytes(struct fe *fe);
void step_echo_loop(struct fe *fe);
void step_expect(struct fe *fe);
void step_expect_all(struct fe *fe);
void step_expect_bytes(struct fe *fe);
void step_check_memory(struct fe *fe);
void step_reset(struct fe *fe);
void step_reset_device(struct fe *fe);
void step_close(struct fe *fe);
void step_reconnect(struct fe *fe);
void step_expect_eof(struct fe *fe);
void step_hold(struct fe *fe);

/* hostile.c: the hostile ring steps (the device must refuse the chain). */
void step_corrupt_head(struct fe *fe);
void step_corrupt_next(struct fe *fe);
void step_desc_loop(struct fe *fe);
void step_desc_oob(struct fe *fe);
void step_desc_oob_edge(struct fe *fe);
void step_desc_wrap(struct fe *fe);
void step_avail_jump(struct fe *fe);
void step_indirect_bad_len(struct fe *fe);
void step_indirect_nested(struct fe *fe);
void step_indirect_huge(struct fe *fe);
void step_desc_empty(struct fe *fe);
void step_desc_wrong_dir(struct fe *fe);
void step_indirect_next(struct fe *fe);

/* proto.c: the protocol check steps (exact reply bytes, invalid variants). */
void step_proto_features(struct fe *fe);
void step_proto_protocol_features(struct fe *fe);
void step_proto_misc(struct fe *fe);
void step_proto_config(struct fe *fe);
void step_proto_config_read(struct fe *fe);
void step_proto_config_invalid(struct fe *fe);
void step_proto_unknown(struct fe *fe);
void step_proto_mem_table(struct fe *fe);
void step_proto_mem_reg(struct fe *fe);
void step_proto_mem_reg_acked(struct fe *fe);
void step_proto_mem_reg_refused(struct fe *fe);
void step_proto_vring(struct fe *fe);
void step_proto_vring_num(struct fe *fe);
void step_proto_vring_base_index(struct fe *fe);
void step_proto_vring_kick_nofd(struct fe *fe);
void step_proto_vring_kick_bad_queue(struct fe *fe);
void step_proto_vring_kick_endless(struct fe *fe);
void step_proto_vring_call(struct fe *fe);
void step_proto_vring_enable_index(struct fe *fe);
void step_proto_vring_base(struct fe *fe);
void step_proto_vring_base_values(struct fe *fe);
void step_proto_vring_base_stop(struct fe *fe);
void step_proto_vring_enable(struct fe *fe);
void step_proto_oversize(struct fe *fe);
void step_proto_truncated(struct fe *fe);
void step_proto_second_frontend(struct fe *fe);
void step_proto_stray_fds(struct fe *fe);
void step_ctrl_send(struct fe *fe);
void step_ctrl_give(struct fe *fe);
void step_ctrl_expect(struct fe *fe);
void step_ctrl_none(struct fe *fe);
void step_proto_short(struct fe *fe);
void step_proto_vring_index(struct fe *fe);
void step_proto_vring_addr(struct fe *fe);
void step_proto_mem_bounds(struct fe *fe);
void step_proto_kick_first(struct fe *fe);
void step_proto_reconnect_at_once(struct fe *fe);
void step_proto_second_live_mid_message(struct fe *fe);
void step_proto_get_vring_base_bad(struct fe *fe);
void step_proto_unsupported_reply(struct fe *fe);
void step_proto_need_reply_all(struct fe *fe);
void step_proto_long(struct fe *fe);
void expect_resize(struct fe *fe, unsigned long long cols,
                   unsigned long long rows);
void step_expect_resize(struct fe *fe);
void step_emerg_write(struct fe *fe);
void step_expect_config_size(struct fe *fe);
void step_expect_config_change(struct fe *fe);
void step_clear_nonblock(struct fe *fe);

#endif
