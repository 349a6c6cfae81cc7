/*
 * tests/frontend.c - a vhost-user frontend that plays QEMU and a Linux
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
 *   proto-unknown         unknown request with and without need_reply
 *   proto-mem-table       SET_MEM_TABLE valid, long payload, invalid ones
 *   proto-mem-reg         ADD_MEM_REG / REM_MEM_REG
 *   proto-vring           SET_VRING_NUM/BASE/KICK/CALL/ENABLE validation
 *   proto-vring-base      GET_VRING_BASE values, stops the ring, restart
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
 */
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

#include "../virtio_console.h"

static const char usage_text[] =
"usage: frontend [--timeout=S] [-v] SOCK STEP [STEP...]\n"
"       frontend --pattern N\n"
"Plays QEMU + a Linux virtio console driver against a vhost-user console.\n"
"Steps (options after the step name; TEXT escapes: \\n \\r \\t \\\\ \\0 \\xHH):\n"
"  init [--no-event-idx] [--no-indirect] [--queue-size=N] [--pipes]\n"
"       [--no-protocol-features] [--no-reply-ack] [--add-mem-reg]\n"
"       [--tx-cross] [--base=B] [--ports=N]  QEMU start sequence, 4 rings\n"
"  handshake [--rx-bufs=N]               MULTIPORT handshake for port 0\n"
"  write TEXT | write-chain TEXT | write-indirect TEXT\n"
"  write-bytes N [--inflight=K] [--repeat]  N pattern bytes guest -> host\n"
"  expect TEXT [SECONDS]                 host -> guest text\n"
"  expect-all N T1..TN [SECONDS]         N texts in any order\n"
"  expect-bytes N [SECONDS]              N pattern bytes host -> guest\n"
"  read-bytes N [--check] [SECONDS]      N bytes host -> guest, counted and\n"
"                                        timed (benchmarks)\n"
"  echo-loop N [SECONDS]                 write back every byte received\n"
"  check-memory                          no write outside writable buffers\n"
"  reset                                 guest reset + handshake again\n"
"  reset-device                          RESET_DEVICE + rings again\n"
"  close | reconnect | expect-eof [SECONDS] | hold FILE [SECONDS]\n"
"  corrupt-head|corrupt-next|desc-loop|desc-oob|desc-oob-edge|desc-wrap|\n"
"  avail-jump|indirect-bad-len|indirect-nested|indirect-huge|desc-empty [Q]\n"
"                        hostile rings\n"
"  proto-features proto-protocol-features proto-misc proto-config\n"
"  proto-unknown proto-mem-table proto-mem-reg proto-vring proto-vring-base\n"
"  proto-vring-enable proto-oversize proto-truncated proto-second-frontend\n"
"  proto-stray-fds proto-reconnect-at-once proto-second-live-mid-message\n"
"  proto-get-vring-base-bad proto-unsupported-reply proto-need-reply-all\n"
"  proto-long                             exact-reply protocol checks\n"
"  ctrl-send ID EV VAL | ctrl-give N | ctrl-expect ID EV VAL | ctrl-none [S]\n"
"                                        control messages one by one\n"
"Exit 0 when all steps pass; else one diagnostic line and exit 1.\n";

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

static const char *qname[NQ] = {
	"port0 receiveq", "port0 transmitq", "control receiveq", "control transmitq"
};

/* ---------------------------------------------------------------------- */
/* globals                                                                 */

static const char *sock_path;
static const char *cur_step = "connect";
static int step_no;
static int verbose;
static double timeout_s = 10;

static int memfd = -1;
static uint8_t *mem, *shadow, *wmap;

static struct vq vq[NQ];
static uint64_t ind_base, crx_base, ctx_base, rx0_base, tx0_base;
static bool ind_busy[IND_SLOTS], rx0_busy[RX0_MAX], tx0_busy[TX0_SLOTS];
static bool crx_busy[CRX_MAX], ctx_busy[CTX_SLOTS];
static unsigned rx0_nbufs, crx_nbufs;	/* how many to keep posted */
static unsigned tx0_next;
/* write-bytes --repeat: slots that hold the repeated buffer already (its
 * length), so that the guest's cost is the ring, not copying */
static bool tx_repeat;
static size_t tx0_repeat_len[TX0_SLOTS];

static int sock = -1;
static bool sock_eof;
static int service_tick_ms = -1;	/* re-check the condition this often */
static int backend_fd = -1;
static unsigned config_changes;	/* CONFIG_CHANGE_MSGs seen */

static struct {
	uint64_t features_offered, features;
	uint64_t pfeatures_offered, pfeatures;
	bool proto, reply_ack, event_idx, indirect;
} c;

static struct initopt {
	bool no_event_idx, no_indirect, pipes, no_proto, no_reply_ack;
	bool size, no_multiport;
	bool add_mem_reg, tx_cross;
	unsigned qsize;
	uint16_t base;
	unsigned ports;	/* --ports=N: max_nr_ports to expect (rings: port 0's only) */
} iopt;

/* bytes the device wrote into port0 receive buffers, not yet consumed */
static uint8_t *rxd;
static size_t rxd_len, rxd_cap;
static uint64_t rx_total;
/* read-bytes: received bytes are counted (and checked), not kept */
static struct { bool on, check; uint64_t got; int64_t first; } rx_sink;
static int64_t now_ns(void);

/* control messages received, not yet consumed */
struct cmsg { uint32_t id; uint16_t event, value; uint32_t len; uint8_t payload[8]; };
static struct cmsg cq[64];
static unsigned cq_head, cq_count;

/* ---------------------------------------------------------------------- */
/* diagnostics and time                                                    */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t t_start;

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "frontend: step %d (%s): ", step_no, cur_step);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;
	if (!verbose)
		return;
	fprintf(stderr, "frontend: %6.3f ", (double)(now_ms() - t_start) / 1000);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}


static int64_t deadline_in(double s)
{
	return now_ms() + (int64_t)(s * 1000);
}

static int ms_left(int64_t dl)
{
	int64_t l = dl - now_ms();
	return l < 0 ? 0 : l > INT_MAX ? INT_MAX : (int)l;
}

static const char *reqname(uint32_t r)
{
	switch (r) {
	case VU_GET_FEATURES: return "GET_FEATURES";
	case VU_SET_FEATURES: return "SET_FEATURES";
	case VU_SET_OWNER: return "SET_OWNER";
	case VU_RESET_OWNER: return "RESET_OWNER";
	case VU_SET_MEM_TABLE: return "SET_MEM_TABLE";
	case VU_SET_VRING_NUM: return "SET_VRING_NUM";
	case VU_SET_VRING_ADDR: return "SET_VRING_ADDR";
	case VU_SET_VRING_BASE: return "SET_VRING_BASE";
	case VU_GET_VRING_BASE: return "GET_VRING_BASE";
	case VU_SET_VRING_KICK: return "SET_VRING_KICK";
	case VU_SET_VRING_CALL: return "SET_VRING_CALL";
	case VU_SET_VRING_ERR: return "SET_VRING_ERR";
	case VU_GET_PROTOCOL_FEATURES: return "GET_PROTOCOL_FEATURES";
	case VU_SET_PROTOCOL_FEATURES: return "SET_PROTOCOL_FEATURES";
	case VU_GET_QUEUE_NUM: return "GET_QUEUE_NUM";
	case VU_SET_VRING_ENABLE: return "SET_VRING_ENABLE";
	case VU_SET_BACKEND_REQ_FD: return "SET_BACKEND_REQ_FD";
	case VU_GET_CONFIG: return "GET_CONFIG";
	case VU_SET_CONFIG: return "SET_CONFIG";
	case VU_RESET_DEVICE: return "RESET_DEVICE";
	case VU_GET_MAX_MEM_SLOTS: return "GET_MAX_MEM_SLOTS";
	case VU_ADD_MEM_REG: return "ADD_MEM_REG";
	case VU_REM_MEM_REG: return "REM_MEM_REG";
	default: return "request";
	}
}

static const char *evname(uint16_t e)
{
	static const char *n[] = { "DEVICE_READY", "PORT_ADD", "PORT_REMOVE",
		"PORT_READY", "CONSOLE_PORT", "RESIZE", "PORT_OPEN", "PORT_NAME" };
	return e < 8 ? n[e] : "UNKNOWN";
}

/* hex of up to 72 bytes, for one-line diagnostics */
static const char *hex(const void *p, size_t n)
{
	static char buf[4][3 * 72 + 8];
	static int which;
	char *b = buf[which++ & 3], *o = b;
	const uint8_t *s = p;
	size_t i, m = n > 72 ? 72 : n;
	for (i = 0; i < m; i++)
		o += sprintf(o, "%s%02x", i ? " " : "", s[i]);
	if (m < n)
		strcpy(o, " ...");
	else
		*o = 0;
	return b;
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* ---------------------------------------------------------------------- */
/* patterns                                                                */

static uint8_t mem_pat(uint64_t off)
{
	return (uint8_t)((((uint32_t)off * 0x9E3779B1u) >> 24) ^ 0xA5);
}

static uint8_t data_pat(uint64_t k)
{
	uint32_t x = (uint32_t)k * 2654435761u;
	return (uint8_t)((x >> 24) ^ (x >> 13));
}

/* ---------------------------------------------------------------------- */
/* guest memory                                                            */

static void mem_setup(void)
{
	size_t i;
	memfd = memfd_create("guest-ram", MFD_CLOEXEC);
	if (memfd < 0)
		fail("memfd_create: %s", strerror(errno));
	if (ftruncate(memfd, MEM_SIZE) < 0)
		fail("ftruncate: %s", strerror(errno));
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (mem == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	shadow = malloc(MEM_SIZE);
	wmap = calloc(1, MEM_SIZE);
	if (!shadow || !wmap)
		fail("out of memory");
	for (i = 0; i < MEM_SIZE; i++)
		mem[i] = shadow[i] = mem_pat(i);
}

static bool gpa_ok(uint64_t gpa, uint64_t len)
{
	return gpa >= GPA_BASE && gpa <= GPA_END && len <= GPA_END - gpa;
}

static uint8_t *g2h(uint64_t gpa, uint64_t len)
{
	if (!gpa_ok(gpa, len))
		fail("internal: gpa 0x%" PRIx64 "+%" PRIu64 " outside guest memory", gpa, len);
	return mem + (gpa - GPA_BASE);
}

#include "record.h"	/* VC_RECORD=FILE: record runs as fuzz seeds */

/* Driver-side writes go to guest memory and to the shadow copy. */
static void gw(uint64_t gpa, const void *p, size_t len)
{
	rec_write(gpa, p, len);
	memcpy(g2h(gpa, len), p, len);
	memcpy(shadow + (gpa - GPA_BASE), p, len);
}

static void gw16(uint64_t gpa, uint16_t v) { uint16_t le = htole16(v); gw(gpa, &le, 2); }
static void gw32(uint64_t gpa, uint32_t v) { uint32_t le = htole32(v); gw(gpa, &le, 4); }
static void gw64(uint64_t gpa, uint64_t v) { uint64_t le = htole64(v); gw(gpa, &le, 8); }

static void gzero(uint64_t gpa, size_t len)
{
	rec_zero(gpa, len);
	memset(g2h(gpa, len), 0, len);
	memset(shadow + (gpa - GPA_BASE), 0, len);
}

static void gstore16_release(uint64_t gpa, uint16_t v)
{
	uint16_t le = htole16(v);
	rec_write(gpa, &le, 2);
	__atomic_store_n((uint16_t *)g2h(gpa, 2), le, __ATOMIC_RELEASE);
	memcpy(shadow + (gpa - GPA_BASE), &le, 2);
}

static uint16_t gload16(uint64_t gpa)
{
	return le16toh(__atomic_load_n((uint16_t *)g2h(gpa, 2), __ATOMIC_ACQUIRE));
}

static uint32_t gload32(uint64_t gpa)
{
	return le32toh(__atomic_load_n((uint32_t *)g2h(gpa, 4), __ATOMIC_RELAXED));
}

static uint16_t sh16(uint64_t gpa)
{
	uint16_t v;
	memcpy(&v, shadow + (gpa - GPA_BASE), 2);
	return le16toh(v);
}

static void mark_writable(uint64_t gpa, uint64_t len)
{
	if (gpa_ok(gpa, len))
		memset(wmap + (gpa - GPA_BASE), 1, len);
}

static uint64_t gpa2uaddr(uint64_t gpa)
{
	return gpa < BOUNDARY ? UADDR0 + (gpa - GPA_BASE) : UADDR1 + (gpa - BOUNDARY);
}

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

static void layout(unsigned n, bool tx_cross)
{
	uint64_t off = GPA_BASE + 0x1000, cross = BOUNDARY - 0x800;
	int q;
	for (q = 0; q < NQ; q++) {
		vq[q].desc = off = align_up(off, 4096);
		off += 16ull * n;
		vq[q].avail = off = align_up(off, 4096);
		off += 6 + 2ull * n;
		vq[q].used = off = align_up(off, 4096);
		off += 6 + 8ull * n;
	}
	ind_base = off = align_up(off, 4096);
	off += IND_SLOTS * IND_SIZE;
	crx_base = off;
	off += CRX_MAX * BUF_SIZE;
	ctx_base = off;
	off += CTX_SLOTS * CTX_SIZE;
	if (off > cross)
		fail("queue size %u too large for the memory layout", n);
	if (tx_cross) {
		tx0_base = cross;
		rx0_base = BOUNDARY + 0x100000 + 0x100;
	} else {
		rx0_base = cross;
		tx0_base = BOUNDARY + 0x100000 + 0x100;
	}
}

static uint64_t rx0_gpa(int s) { return rx0_base + (uint64_t)s * BUF_SIZE; }
static uint64_t tx0_gpa(int s) { return tx0_base + (uint64_t)s * BUF_SIZE; }
static uint64_t crx_gpa(int s) { return crx_base + (uint64_t)s * BUF_SIZE; }
static uint64_t ctx_gpa(int s) { return ctx_base + (uint64_t)s * CTX_SIZE; }
static uint64_t ind_gpa(int s) { return ind_base + (uint64_t)s * IND_SIZE; }

/* ---------------------------------------------------------------------- */
/* vhost-user messaging                                                    */

struct vu_msg {
	struct { uint32_t request, flags, size; } h;
	uint8_t p[4096];
	int nfds;
};

static void backend_service(void);

/* Wait until fd is readable; while waiting on the main socket, serve the
 * backend channel too.  false on timeout. */
static bool wait_in(int fd, int64_t dl)
{
	for (;;) {
		struct pollfd pf[2] = { { fd, POLLIN, 0 }, { -1, POLLIN, 0 } };
		int n = 1, r;
		if (fd == sock && backend_fd >= 0)
			pf[n++].fd = backend_fd;
		r = poll(pf, n, ms_left(dl));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail("poll: %s", strerror(errno));
		}
		if (r == 0)
			return false;
		if (pf[0].revents)
			return true;
		if (n > 1 && pf[1].revents)
			backend_service();
		if (ms_left(dl) == 0)
			return false;
	}
}

/* 1 read, 0 EOF (or reset), -1 timeout.  Received fds are closed and
 * counted in m->nfds. */
static int read_full(int fd, void *buf, size_t len, int64_t dl, struct vu_msg *m)
{
	size_t got = 0;
	while (got < len) {
		union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int) * 16)]; } cb;
		struct iovec iov = { (char *)buf + got, len - got };
		struct msghdr mh = { 0 };
		struct cmsghdr *ch;
		ssize_t n;
		if (!wait_in(fd, dl))
			return -1;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cb.b;
		mh.msg_controllen = sizeof cb.b;
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (errno == ECONNRESET)
				return 0;
			fail("recvmsg: %s", strerror(errno));
		}
		for (ch = CMSG_FIRSTHDR(&mh); ch; ch = CMSG_NXTHDR(&mh, ch)) {
			if (ch->cmsg_level == SOL_SOCKET && ch->cmsg_type == SCM_RIGHTS) {
				int k, nf = (int)((ch->cmsg_len - CMSG_LEN(0)) / sizeof(int));
				for (k = 0; k < nf; k++) {
					int f;
					memcpy(&f, CMSG_DATA(ch) + k * sizeof(int), sizeof f);
					close(f);
					if (m)
						m->nfds++;
				}
			}
		}
		if (n == 0)
			return 0;
		got += (size_t)n;
	}
	return 1;
}

static int read_msg(int fd, struct vu_msg *m, int64_t dl)
{
	int r;
	m->nfds = 0;
	r = read_full(fd, &m->h, VU_HDR_SIZE, dl, m);
	if (r <= 0)
		return r;
	if (m->h.size > sizeof m->p)
		fail("message from the daemon claims %u payload bytes (request %u flags 0x%x)",
		     m->h.size, m->h.request, m->h.flags);
	return read_full(fd, m->p, m->h.size, dl, m);
}

/* The daemon may talk on the backend channel (CONFIG_CHANGE_MSG). */
static void backend_service(void)
{
	struct vu_msg m;
	int r = read_msg(backend_fd, &m, deadline_in(timeout_s));
	if (r == 0) {
		close(backend_fd);
		backend_fd = -1;
		return;
	}
	if (r < 0)
		fail("backend channel: message cut short");
	note("backend channel: request %u flags 0x%x size %u", m.h.request, m.h.flags, m.h.size);
	if (m.h.request == 2 && m.h.size == 0)
		config_changes++;
	if (m.h.flags & VU_NEED_REPLY) {
		uint8_t b[20];
		put32(b, m.h.request);
		put32(b + 4, VU_VERSION | VU_REPLY);
		put32(b + 8, 8);
		put64(b + 12, 0);
		if (send(backend_fd, b, sizeof b, MSG_NOSIGNAL) < 0)
			fail("backend channel reply: %s", strerror(errno));
	}
}

static int send_fds(int fd, const void *buf, size_t len, const int *fds, int nfds)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int) * 16)]; } cb;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { 0 };
	size_t off;
	ssize_t n;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds > 0) {
		struct cmsghdr *ch;
		memset(&cb, 0, sizeof cb);
		mh.msg_control = cb.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		ch = CMSG_FIRSTHDR(&mh);
		ch->cmsg_level = SOL_SOCKET;
		ch->cmsg_type = SCM_RIGHTS;
		ch->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(ch), fds, sizeof(int) * (size_t)nfds);
	}
	do
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (off = (size_t)n; off < len; off += (size_t)n) {
		n = send(fd, (const char *)buf + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n < 0)
			return -errno;
	}
	return 0;
}

/* Send a message with a header of our choosing (size may lie). */
static int vu_send_raw(int fd, uint32_t req, uint32_t flags, uint32_t size,
		       const void *payload, size_t len, const int *fds, int nfds)
{
	uint8_t b[VU_HDR_SIZE + 4096];
	if (len > 4096)
		fail("internal: payload too big");
	put32(b, req);
	put32(b + 4, flags);
	put32(b + 8, size);
	if (len)
		memcpy(b + VU_HDR_SIZE, payload, len);
	rec_msg(fd, b, VU_HDR_SIZE + len, fds, nfds);
	return send_fds(fd, b, VU_HDR_SIZE + len, fds, nfds);
}

static void vu_send(uint32_t req, uint32_t flags, const void *payload, uint32_t size,
		    const int *fds, int nfds)
{
	int r;
	if (sock < 0)
		fail("%s: not connected", reqname(req));
	r = vu_send_raw(sock, req, flags, size, payload, size, fds, nfds);
	if (r < 0)
		fail("sending %s (%u): %s (daemon closed the connection?)", reqname(req), req,
		     strerror(-r));
}

static void recv_reply(struct vu_msg *m, const char *what)
{
	int r = read_msg(sock, m, deadline_in(timeout_s));
	if (r == 0)
		fail("%s: the daemon closed the connection instead of replying", what);
	if (r < 0)
		fail("%s: no reply within %g s", what, timeout_s);
	if (m->nfds)
		fail("%s: the reply carried %d fds", what, m->nfds);
}

/* A reply must be {req, 0x5, 8} + u64; returns the u64. */
static uint64_t reply_u64(uint32_t req, const char *what)
{
	struct vu_msg m;
	recv_reply(&m, what);
	if (m.h.request != req || m.h.flags != (VU_VERSION | VU_REPLY) || m.h.size != 8)
		fail("%s: reply header {request %u, flags 0x%x, size %u}, want {%u, 0x5, 8}; payload %s",
		     what, m.h.request, m.h.flags, m.h.size, req, hex(m.p, m.h.size));
	return get64(m.p);
}

/* The next reply is exactly these bytes (header + payload). */
static void expect_reply_bytes(const uint8_t *want, size_t len, const char *what)
{
	struct vu_msg m;
	uint8_t got[VU_HDR_SIZE + 4096];
	recv_reply(&m, what);
	memcpy(got, &m.h, VU_HDR_SIZE);
	memcpy(got + VU_HDR_SIZE, m.p, m.h.size);
	if (VU_HDR_SIZE + m.h.size != len || memcmp(got, want, len))
		fail("%s: reply [%s], want [%s]", what, hex(got, VU_HDR_SIZE + m.h.size),
		     hex(want, len));
}

static void expect_reply_u64_exact(uint32_t req, uint64_t v, const char *what)
{
	uint8_t b[20];
	put32(b, req);
	put32(b + 4, VU_VERSION | VU_REPLY);
	put32(b + 8, 8);
	put64(b + 12, v);
	expect_reply_bytes(b, sizeof b, what);
}

static uint64_t vu_get_u64(uint32_t req)
{
	vu_send(req, VU_VERSION, NULL, 0, NULL, 0);
	return reply_u64(req, reqname(req));
}

/* A request without a reply of its own: with REPLY_ACK, ask for the ack
 * and require exactly {req, 0x5, 8, u64 0}. */
static void vu_ok(uint32_t req, const void *p, uint32_t size, const int *fds, int nfds,
		  const char *what)
{
	vu_send(req, VU_VERSION | (c.reply_ack ? VU_NEED_REPLY : 0), p, size, fds, nfds);
	if (c.reply_ack)
		expect_reply_u64_exact(req, 0, what);
}



/* With need_reply: the ack must be exactly {req, 0x5, 8} and non-zero. */
static void vu_fails(uint32_t req, const void *p, uint32_t size, const int *fds, int nfds,
		     const char *what)
{
	uint64_t v;
	vu_send(req, VU_VERSION | VU_NEED_REPLY, p, size, fds, nfds);
	v = reply_u64(req, what);
	if (v == 0)
		fail("%s: acked 0 (success), want a failure (non-zero)", what);
}



/* vu_ok (want_ok) or vu_fails (!want_ok) with a u64 payload. */
static void vu_u64(bool want_ok, uint32_t req, uint64_t v, const int *fds, int nfds,
		   const char *what)
{
	uint8_t b[8];
	put64(b, v);
	if (want_ok)
		vu_ok(req, b, 8, fds, nfds, what);
	else
		vu_fails(req, b, 8, fds, nfds, what);
}

/* The same with a vring state payload {u32 index, u32 num}. */
static void vu_state(bool want_ok, uint32_t req, uint32_t idx, uint32_t num,
		     const char *what)
{
	uint8_t b[8];
	put32(b, idx);
	put32(b + 4, num);
	if (want_ok)
		vu_ok(req, b, 8, NULL, 0, what);
	else
		vu_fails(req, b, 8, NULL, 0, what);
}

/* Wait for EOF on fd (the daemon closed it).  Data instead: failure. */
static void expect_eof_on(int fd, const char *what)
{
	int64_t dl = deadline_in(timeout_s);
	for (;;) {
		struct pollfd pf = { fd, POLLIN, 0 };
		char b[256];
		ssize_t n;
		int r = poll(&pf, 1, ms_left(dl));
		if (r < 0 && errno == EINTR)
			continue;
		if (r > 0) {
			n = recv(fd, b, sizeof b, MSG_DONTWAIT);
			if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE)))
				return;
			if (n > 0)
				fail("%s: got %zd bytes [%s] where the connection should have been closed",
				     what, n, hex(b, (size_t)n));
		}
		if (ms_left(dl) == 0)
			fail("%s: the daemon did not close the connection within %g s", what, timeout_s);
	}
}

/* ---------------------------------------------------------------------- */
/* connection                                                              */

static void rings_forget(void);

static int connect_once(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;
	if (strlen(sock_path) >= sizeof a.sun_path)
		fail("socket path too long: %s", sock_path);
	strcpy(a.sun_path, sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void disconnect(void)
{
	if (sock >= 0)
		close(sock);
	sock = -1;
	sock_eof = false;
	if (backend_fd >= 0)
		close(backend_fd);
	backend_fd = -1;
	memset(&c, 0, sizeof c);
	rings_forget();
}

/* Connect and probe with GET_FEATURES; retry while the daemon is not there
 * yet or still busy with a previous frontend (it closes new connections). */
static void connect_probe(void)
{
	int64_t dl = deadline_in(timeout_s);
	int last_err = 0;
	for (;;) {
		int fd = connect_once();
		if (fd >= 0) {
			struct vu_msg m;
			int r;
			last_err = 0;
			r = vu_send_raw(fd, VU_GET_FEATURES, VU_VERSION, 0, NULL, 0, NULL, 0);
			if (r == 0) {
				int64_t pd = now_ms() + 2000 < dl ? now_ms() + 2000 : dl;
				r = read_msg(fd, &m, pd);
				if (r > 0) {
					sock = fd;
					sock_eof = false;
					if (m.h.request != VU_GET_FEATURES || m.h.flags != 5 || m.h.size != 8)
						fail("probe GET_FEATURES: reply {%u, 0x%x, %u} %s", m.h.request,
						     m.h.flags, m.h.size, hex(m.p, m.h.size));
					c.features_offered = get64(m.p);
					return;
				}
			}
			close(fd);
			last_err = -1;
		} else if (errno != ENOENT && errno != ECONNREFUSED && errno != EAGAIN) {
			fail("connect %s: %s", sock_path, strerror(errno));
		} else {
			last_err = errno;
		}
		if (ms_left(dl) == 0) {
			if (last_err > 0)
				fail("connect %s: %s", sock_path, strerror(last_err));
			fail("connect %s: the daemon keeps closing the connection", sock_path);
		}
		poll(NULL, 0, 20);
	}
}

/* ---------------------------------------------------------------------- */
/* rings (the driver side)                                                 */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void vq_close_fds(struct vq *q)
{
	if (q->kick_r == q->kick_w)
		q->kick_r = -1;
	if (q->call_r == q->call_w)
		q->call_w = -1;
	close_fd(&q->kick_r);
	close_fd(&q->kick_w);
	close_fd(&q->call_r);
	close_fd(&q->call_w);
}

/* Every buffer slot free again, nothing posted, no control message kept. */
static void buffers_forget(void)
{
	memset(ind_busy, 0, sizeof ind_busy);
	memset(rx0_busy, 0, sizeof rx0_busy);
	memset(tx0_busy, 0, sizeof tx0_busy);
	memset(crx_busy, 0, sizeof crx_busy);
	memset(ctx_busy, 0, sizeof ctx_busy);
	rx0_nbufs = crx_nbufs = 0;
	cq_count = cq_head = 0;
}

static void rings_forget(void)
{
	int q;
	for (q = 0; q < NQ; q++) {
		vq[q].active = false;
		vq[q].inflight = 0;
		vq_close_fds(&vq[q]);
	}
	buffers_forget();
}

static void vq_make_fds(struct vq *q, bool pipes)
{
	vq_close_fds(q);
	if (pipes) {
		int k[2], cl[2];
		if (pipe2(k, O_CLOEXEC) < 0 || pipe2(cl, O_CLOEXEC) < 0)
			fail("pipe2: %s", strerror(errno));
		q->kick_r = k[0];	/* daemon reads */
		q->kick_w = k[1];
		q->call_r = cl[0];
		q->call_w = cl[1];	/* daemon writes */
		fcntl(q->kick_w, F_SETFL, O_NONBLOCK);
		fcntl(q->call_r, F_SETFL, O_NONBLOCK);
	} else {
		q->kick_r = q->kick_w = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		q->call_r = q->call_w = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (q->kick_r < 0 || q->call_r < 0)
			fail("eventfd: %s", strerror(errno));
	}
}

/* Fresh ring memory and driver state, starting at index base. */
static void vq_init(int qi, unsigned n, uint16_t base)
{
	struct vq *q = &vq[qi];
	unsigned i;
	q->num = n;
	q->freel = realloc(q->freel, sizeof *q->freel * n);
	q->tok = realloc(q->tok, sizeof *q->tok * n);
	if (!q->freel || !q->tok)
		fail("out of memory");
	memset(q->tok, 0, sizeof *q->tok * n);
	for (i = 0; i < n; i++)
		q->freel[i] = (uint16_t)(n - 1 - i);
	q->nfree = n;
	q->inflight = 0;
	gzero(q->desc, 16ull * n);
	gzero(q->avail, 6 + 2ull * n);
	gzero(q->used, 6 + 8ull * n);
	gw16(q->avail + 2, base);
	gw16(q->used + 2, base);
	mark_writable(q->used, 6 + 8ull * n);
	q->avail_idx = q->pub_idx = q->last_used = base;
	if (c.event_idx)
		gw16(q->avail + 4 + 2ull * n, base);	/* used_event */
}

static void set_desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint64_t d = table + 16ull * i;
	gw64(d, addr);
	gw32(d + 8, len);
	gw16(d + 12, flags);
	gw16(d + 14, next);
}

static uint16_t desc_alloc(struct vq *q)
{
	if (!q->nfree)
		fail("internal: %s has no free descriptor", qname[q - vq]);
	return q->freel[--q->nfree];
}

static int ind_alloc(void)
{
	int i;
	for (i = 0; i < IND_SLOTS; i++)
		if (!ind_busy[i]) {
			ind_busy[i] = true;
			return i;
		}
	fail("internal: no free indirect table");
}

static void avail_push(struct vq *q, uint16_t head)
{
	gw16(q->avail + 4 + 2ull * (q->avail_idx % q->num), head);
	q->avail_idx++;
}

struct seg { uint64_t gpa; uint32_t len; bool w; };

/* Add a chain (direct or through an indirect table); returns the head. */
static uint16_t vq_add(struct vq *q, const struct seg *s, int n, bool indirect,
		       int kind, int slot)
{
	uint16_t head;
	uint32_t wlen = 0;
	struct tok *t;
	int i;
	if (indirect) {
		int ti = ind_alloc();
		uint64_t tg = ind_gpa(ti);
		for (i = 0; i < n; i++)
			set_desc(tg, (unsigned)i, s[i].gpa, s[i].len,
				 (uint16_t)((i < n - 1 ? VRING_DESC_F_NEXT : 0) |
					    (s[i].w ? VRING_DESC_F_WRITE : 0)),
				 (uint16_t)(i < n - 1 ? i + 1 : 0));
		head = desc_alloc(q);
		set_desc(q->desc, head, tg, 16u * (unsigned)n, VRING_DESC_F_INDIRECT, 0);
		t = &q->tok[head];
		t->ind = ti;
		t->ndesc = 1;
	} else {
		uint16_t idx[8];
		if (n > 8 || q->nfree < (unsigned)n)
			fail("internal: %s: no room for a %d-descriptor chain", qname[q - vq], n);
		for (i = 0; i < n; i++)
			idx[i] = desc_alloc(q);
		for (i = 0; i < n; i++)
			set_desc(q->desc, idx[i], s[i].gpa, s[i].len,
				 (uint16_t)((i < n - 1 ? VRING_DESC_F_NEXT : 0) |
					    (s[i].w ? VRING_DESC_F_WRITE : 0)),
				 i < n - 1 ? idx[i + 1] : 0);
		head = idx[0];
		t = &q->tok[head];
		t->ind = -1;
		t->ndesc = (uint16_t)n;
	}
	for (i = 0; i < n; i++)
		if (s[i].w) {
			mark_writable(s[i].gpa, s[i].len);
			wlen += s[i].len;
		}
	t->kind = (uint8_t)kind;
	t->busy = true;
	t->slot = slot;
	t->wlen = wlen;
	if (kind != TK_BAD)
		q->inflight++;
	avail_push(q, head);
	return head;
}

static void kick(struct vq *q)
{
	uint64_t one = 1;
	ssize_t n;
	rec_kick(q->kick_w);
	n = write(q->kick_w, &one, sizeof one);
	if (n < 0 && errno != EAGAIN)
		fail("kick %s: %s", qname[q - vq], strerror(errno));
	q->kicks++;
}

/* Publish new avail entries: barrier, avail idx, then kick unless the
 * device suppressed it (used flags, or avail_event with EVENT_IDX). */
static void vq_publish(struct vq *q, bool force_kick)
{
	uint16_t old = q->pub_idx, new = q->avail_idx;
	bool need;
	if (old == new && !force_kick)
		return;
	gstore16_release(q->avail + 2, new);
	q->pub_idx = new;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (c.event_idx) {
		uint16_t ae = gload16(q->used + 4 + 8ull * q->num);
		need = (uint16_t)(new - ae - 1) < (uint16_t)(new - old);
	} else {
		need = !(gload16(q->used) & VRING_USED_F_NO_NOTIFY);
	}
	if (need || force_kick)
		kick(q);
}

static void vq_free_chain(struct vq *q, uint16_t head)
{
	struct tok *t = &q->tok[head];
	uint16_t d = head;
	unsigned i;
	for (i = 0; i < t->ndesc; i++) {
		uint16_t flags = sh16(q->desc + 16ull * d + 12);
		uint16_t next = sh16(q->desc + 16ull * d + 14);
		q->freel[q->nfree++] = d;
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		d = next;
	}
	if (t->ind >= 0)
		ind_busy[t->ind] = false;
	t->busy = false;
	if (t->kind != TK_BAD)
		q->inflight--;
}

static void rxd_append(const uint8_t *p, size_t n)
{
	rec_input(p, n);
	if (rxd_len + n > rxd_cap) {
		rxd_cap = (rxd_len + n) * 2 + 65536;
		rxd = realloc(rxd, rxd_cap);
		if (!rxd)
			fail("out of memory");
	}
	memcpy(rxd + rxd_len, p, n);
	rxd_len += n;
	rx_total += n;
}

static void rx_sink_take(const uint8_t *p, size_t n)
{
	size_t i;
	if (n && !rx_sink.got)
		rx_sink.first = now_ns();
	if (rx_sink.check)
		for (i = 0; i < n; i++)
			if (p[i] != data_pat(rx_sink.got + i))
				fail("read-bytes: byte %" PRIu64 " is 0x%02x, want 0x%02x",
				     rx_sink.got + i, p[i], data_pat(rx_sink.got + i));
	rx_sink.got += n;
	rx_total += n;
}

static void rxd_consume(size_t n)
{
	if (!n)
		return;
	memmove(rxd, rxd + n, rxd_len - n);
	rxd_len -= n;
}

/* Post every free receive buffer of queue qi (slot s at base + s * 4096). */
static void refill(int qi, uint64_t base, unsigned nbufs, bool *busy, int tk)
{
	struct vq *q = &vq[qi];
	unsigned s;
	if (!q->active)
		return;
	for (s = 0; s < nbufs; s++) {
		struct seg sg = { base + (uint64_t)s * BUF_SIZE, BUF_SIZE, true };
		if (busy[s] || !q->nfree)
			continue;
		busy[s] = true;
		vq_add(q, &sg, 1, false, tk, (int)s);
	}
	vq_publish(q, false);
}

static void rx0_refill(void)
{
	refill(VIRTIO_CONSOLE_PORT0_RXQ, rx0_base, rx0_nbufs, rx0_busy, TK_RX0);
}

static void crx_refill(void)
{
	refill(VIRTIO_CONSOLE_CTRL_RXQ, crx_base, crx_nbufs, crx_busy, TK_CRX);
}

/* Consume used entries as Linux's virtqueue_get_buf does, then re-enable
 * callbacks (used_event = last_used with EVENT_IDX) and re-check. */
static void process_used(int qi)
{
	struct vq *q = &vq[qi];
	if (!q->active)
		return;
	for (;;) {
		uint16_t uidx = gload16(q->used + 2);
		if ((uint16_t)(uidx - q->last_used) > q->num)
			fail("%s: used idx %u jumped more than the queue size past %u",
			     qname[qi], uidx, q->last_used);
		while (q->last_used != uidx) {
			uint64_t e = q->used + 4 + 8ull * (q->last_used % q->num);
			uint32_t id = gload32(e), len = gload32(e + 4);
			struct tok *t;
			if (id >= q->num || !q->tok[id].busy)
				fail("%s: used entry %u has id %u, which is not an outstanding head",
				     qname[qi], q->last_used, id);
			t = &q->tok[id];
			switch (t->kind) {
			case TK_RX0:
				if (len > t->wlen)
					fail("%s: used len %u > buffer size %u", qname[qi], len, t->wlen);
				if (rx_sink.on)
					rx_sink_take(g2h(rx0_gpa(t->slot), len), len);
				else
					rxd_append(g2h(rx0_gpa(t->slot), len), len);
				note("%s: %u bytes received", qname[qi], len);
				rx0_busy[t->slot] = false;
				break;
			case TK_CRX: {
				const uint8_t *p = g2h(crx_gpa(t->slot), 8);
				struct cmsg *m;
				if (len < 8 || len > t->wlen)
					fail("%s: control message used len %u", qname[qi], len);
				if (cq_count == sizeof cq / sizeof cq[0])
					fail("too many unconsumed control messages");
				m = &cq[(cq_head + cq_count++) % (sizeof cq / sizeof cq[0])];
				m->id = le32toh(get32(p));
				m->event = (uint16_t)(p[4] | p[5] << 8);
				m->value = (uint16_t)(p[6] | p[7] << 8);
				m->len = len;
				memcpy(m->payload, g2h(crx_gpa(t->slot) + 8, 8),
				       len - 8 < 8 ? len - 8 : 8);
				note("control message id %u %s value %u len %u", m->id,
				     evname(m->event), m->value, len);
				crx_busy[t->slot] = false;
				break;
			}
			case TK_TX0:
			case TK_CTX:
				if (len != 0)
					fail("%s: transmit buffer (head %u) completed with used len %u, want 0",
					     qname[qi], id, len);
				if (t->kind == TK_TX0)
					tx0_busy[t->slot] = false;
				else
					ctx_busy[t->slot] = false;
				break;
			case TK_BAD:
				fail("%s: the device completed the corrupt chain (head %u, len %u) instead of refusing it",
				     qname[qi], id, len);
			default:
				fail("internal: token kind %u", t->kind);
			}
			vq_free_chain(q, (uint16_t)id);
			q->last_used++;
		}
		if (!c.event_idx)
			break;
		gstore16_release(q->avail + 4 + 2ull * q->num, q->last_used);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (gload16(q->used + 2) == q->last_used)
			break;
	}
	if (qi == VIRTIO_CONSOLE_PORT0_RXQ)
		rx0_refill();
	else if (qi == VIRTIO_CONSOLE_CTRL_RXQ)
		crx_refill();
}

static void sock_event(bool allow_eof)
{
	char b;
	ssize_t n = recv(sock, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno == ECONNRESET)) {
		if (!allow_eof)
			fail("the daemon closed the vhost-user connection");
		sock_eof = true;
		return;
	}
	if (n > 0) {
		struct vu_msg m;
		read_msg(sock, &m, deadline_in(timeout_s));
		fail("unsolicited message from the daemon: request %u flags 0x%x size %u [%s]",
		     m.h.request, m.h.flags, m.h.size, hex(m.p, m.h.size));
	}
}

static void drain_fd(int fd)
{
	char b[256];
	int i;
	for (i = 0; i < 64 && read(fd, b, sizeof b) > 0; i++)
		;
}

/* The interrupt handler loop.  Receive queues are looked at only when their
 * call fd fired (so a missing notification makes a step time out, as it
 * hangs Linux); transmit queues with buffers out are polled, as Linux spins
 * on them.  Returns when cond(arg) holds (true) or at dl (false). */
static bool service(int64_t dl, bool (*cond)(void *), void *arg, bool allow_eof)
{
	for (;;) {
		struct pollfd pf[2 + NQ];
		int who[2 + NQ];
		int n = 0, i, r, left, tmo;
		bool spin;
		if (cond && cond(arg))
			return true;
		left = ms_left(dl);
		if (left == 0)
			return !cond;
		if (sock >= 0 && !sock_eof) {
			pf[n] = (struct pollfd){ sock, POLLIN, 0 };
			who[n++] = -1;
		}
		if (backend_fd >= 0) {
			pf[n] = (struct pollfd){ backend_fd, POLLIN, 0 };
			who[n++] = -2;
		}
		for (i = 0; i < NQ; i++)
			if (vq[i].active) {
				pf[n] = (struct pollfd){ vq[i].call_r, POLLIN, 0 };
				who[n++] = i;
			}
		spin = (vq[1].active && vq[1].inflight) || (vq[3].active && vq[3].inflight);
		tmo = spin && left > 1 ? 1 : left;
		if (service_tick_ms > 0 && tmo > service_tick_ms)
			tmo = service_tick_ms;
		r = poll(pf, (nfds_t)n, tmo);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail("poll: %s", strerror(errno));
		}
		for (i = 0; i < n && r > 0; i++) {
			if (!pf[i].revents)
				continue;
			if (who[i] == -1)
				sock_event(allow_eof);
			else if (who[i] == -2)
				backend_service();
			else {
				drain_fd(pf[i].fd);
				vq[who[i]].calls++;
				process_used(who[i]);
			}
		}
		if (spin) {
			process_used(VIRTIO_CONSOLE_PORT0_TXQ);
			process_used(VIRTIO_CONSOLE_CTRL_TXQ);
		}
	}
}

/* A bounded window in which nothing must happen (negative checks). */
static void service_window(int ms)
{
	service(now_ms() + ms, NULL, NULL, false);
}

static bool cond_q_idle(void *arg)
{
	return vq[*(int *)arg].inflight == 0;
}

static void wait_q_idle(int qi, const char *what)
{
	if (!service(deadline_in(timeout_s), cond_q_idle, &qi, false))
		fail("%s: %s: %u buffer(s) not used by the device within %g s (avail idx %u, used idx %u)",
		     what, qname[qi], vq[qi].inflight, timeout_s, vq[qi].avail_idx,
		     gload16(vq[qi].used + 2));
}

static bool cond_cq(void *arg)
{
	(void)arg;
	return cq_count > 0;
}

static struct cmsg ctrl_next(const char *waiting_for)
{
	struct cmsg m;
	if (!service(deadline_in(timeout_s), cond_cq, NULL, false))
		fail("no control message within %g s while waiting for %s", timeout_s, waiting_for);
	m = cq[cq_head];
	cq_head = (cq_head + 1) % (sizeof cq / sizeof cq[0]);
	cq_count--;
	return m;
}

static void ctrl_expect(uint32_t id, uint16_t ev, uint16_t val)
{
	char what[64];
	struct cmsg m;
	snprintf(what, sizeof what, "%s(%u,%u)", evname(ev), id, val);
	m = ctrl_next(what);
	if (m.id != id || m.event != ev || m.value != val || m.len != 8)
		fail("control message id %u event %u (%s) value %u used len %u, want %s with used len 8",
		     m.id, m.event, evname(m.event), m.value, m.len, what);
}

/* A control message of len bytes (8, or fewer to be malformed). */
static void ctrl_send_len(uint32_t id, uint16_t ev, uint16_t val, uint32_t len)
{
	struct vq *q = &vq[VIRTIO_CONSOLE_CTRL_TXQ];
	uint8_t b[8];
	struct seg sg;
	int s;
	char what[64];
	for (s = 0; s < CTX_SLOTS && ctx_busy[s]; s++)
		;
	if (s == CTX_SLOTS || !q->nfree)
		fail("internal: control transmitq full");
	put32(b, htole32(id));
	b[4] = (uint8_t)ev;
	b[5] = (uint8_t)(ev >> 8);
	b[6] = (uint8_t)val;
	b[7] = (uint8_t)(val >> 8);
	gw(ctx_gpa(s), b, 8);
	ctx_busy[s] = true;
	sg = (struct seg){ ctx_gpa(s), len, false };
	vq_add(q, &sg, 1, false, TK_CTX, s);
	vq_publish(q, false);
	snprintf(what, sizeof what, "sending %s(%u,%u) in %u bytes", evname(ev), id, val, len);
	wait_q_idle(VIRTIO_CONSOLE_CTRL_TXQ, what);
}

static void ctrl_send(uint32_t id, uint16_t ev, uint16_t val)
{
	ctrl_send_len(id, ev, val, 8);
}

/* ---------------------------------------------------------------------- */
/* negotiation and ring setup (QEMU's side)                                */

static void negotiate(bool want_proto, bool want_reply_ack)
{
	uint64_t f;
	c.features_offered = vu_get_u64(VU_GET_FEATURES);
	f = c.features_offered;
	if (!(f & BIT(VIRTIO_F_VERSION_1)) || !(f & BIT(VIRTIO_CONSOLE_F_MULTIPORT)))
		fail("GET_FEATURES 0x%" PRIx64 " lacks VERSION_1 or MULTIPORT", f);
	c.proto = want_proto && (f & BIT(VU_F_PROTOCOL_FEATURES));
	if (c.proto) {
		uint64_t want = WANT_PFEATURES;
		if (!want_reply_ack)
			want &= ~BIT(PF_REPLY_ACK);
		c.pfeatures_offered = vu_get_u64(VU_GET_PROTOCOL_FEATURES);
		c.pfeatures = c.pfeatures_offered & want;
		c.reply_ack = c.pfeatures & BIT(PF_REPLY_ACK);
		vu_u64(true, VU_SET_PROTOCOL_FEATURES, c.pfeatures, NULL, 0, "SET_PROTOCOL_FEATURES");
		if (c.pfeatures & BIT(PF_MQ)) {
			uint64_t n = vu_get_u64(VU_GET_QUEUE_NUM);
			if (n < NQ)
				fail("GET_QUEUE_NUM %" PRIu64 " < %d", n, NQ);
		}
		if (c.pfeatures & BIT(PF_CONFIGURE_MEM_SLOTS)) {
			uint64_t n = vu_get_u64(VU_GET_MAX_MEM_SLOTS);
			if (n < 2)
				fail("GET_MAX_MEM_SLOTS %" PRIu64 " < 2", n);
		}
		if (c.pfeatures & BIT(PF_BACKEND_REQ)) {
			int sp[2];
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
				fail("socketpair: %s", strerror(errno));
			if (backend_fd >= 0)
				close(backend_fd);
			backend_fd = sp[0];
			vu_ok(VU_SET_BACKEND_REQ_FD, NULL, 0, &sp[1], 1, "SET_BACKEND_REQ_FD");
			close(sp[1]);
		}
	}
	vu_ok(VU_SET_OWNER, NULL, 0, NULL, 0, "SET_OWNER");
	f = vu_get_u64(VU_GET_FEATURES);
	if (f != c.features_offered)
		fail("second GET_FEATURES 0x%" PRIx64 " differs from the first 0x%" PRIx64, f,
		     c.features_offered);
	if (c.pfeatures & BIT(PF_CONFIG)) {
		uint8_t b[24] = { 0 };
		struct vu_msg m;
		put32(b + 4, VIRTIO_CONSOLE_CONFIG_SIZE);
		vu_send(VU_GET_CONFIG, VU_VERSION, b, sizeof b, NULL, 0);
		recv_reply(&m, "GET_CONFIG");
		if (m.h.request != VU_GET_CONFIG || m.h.flags != 5 || m.h.size != 24 ||
		    le32toh(get32(m.p + 12 + VIRTIO_CONSOLE_CONFIG_MAX_NR_PORTS)) !=
		    (iopt.ports ? iopt.ports : 1))
			fail("GET_CONFIG reply {%u, 0x%x, %u} [%s]", m.h.request, m.h.flags,
			     m.h.size, hex(m.p, m.h.size));
	}
}

static void set_features(void)
{
	uint64_t want = BIT(VIRTIO_F_VERSION_1);
	if (!iopt.no_multiport)
		want |= BIT(VIRTIO_CONSOLE_F_MULTIPORT);
	if (iopt.size)
		want |= BIT(VIRTIO_CONSOLE_F_SIZE);
	if (!iopt.no_event_idx)
		want |= BIT(VIRTIO_RING_F_EVENT_IDX);
	if (!iopt.no_indirect)
		want |= BIT(VIRTIO_RING_F_INDIRECT_DESC);
	if (c.proto)
		want |= BIT(VU_F_PROTOCOL_FEATURES);
	c.features = c.features_offered & want;
	c.event_idx = c.features & BIT(VIRTIO_RING_F_EVENT_IDX);
	c.indirect = c.features & BIT(VIRTIO_RING_F_INDIRECT_DESC);
	vu_u64(true, VU_SET_FEATURES, c.features, NULL, 0, "SET_FEATURES");
}

static void region_bytes(uint8_t *p, int r)
{
	put64(p, r ? BOUNDARY : GPA_BASE);
	put64(p + 8, REGION_SIZE);
	put64(p + 16, r ? UADDR1 : UADDR0);
	put64(p + 24, r ? REGION_SIZE : 0);
}

static void set_memory(bool add_mem_reg)
{
	if (add_mem_reg) {
		int r;
		for (r = 0; r < 2; r++) {
			uint8_t b[40] = { 0 };
			region_bytes(b + 8, r);
			vu_ok(VU_ADD_MEM_REG, b, sizeof b, &memfd, 1, "ADD_MEM_REG");
		}
	} else {
		uint8_t b[8 + 64] = { 0 };
		int fds[2] = { memfd, memfd };
		put32(b, 2);
		region_bytes(b + 8, 0);
		region_bytes(b + 40, 1);
		vu_ok(VU_SET_MEM_TABLE, b, sizeof b, fds, 2, "SET_MEM_TABLE");
	}
}

/* SET_VRING_NUM/BASE/ADDR/KICK/CALL for one queue, QEMU's order. */
static void ring_start(int qi, uint16_t base)
{
	struct vq *q = &vq[qi];
	uint8_t a[40] = { 0 };
	vu_state(true, VU_SET_VRING_NUM, (uint32_t)qi, q->num, "SET_VRING_NUM");
	vu_state(true, VU_SET_VRING_BASE, (uint32_t)qi, base, "SET_VRING_BASE");
	put32(a, (uint32_t)qi);
	put64(a + 8, gpa2uaddr(q->desc));
	put64(a + 16, gpa2uaddr(q->used));
	put64(a + 24, gpa2uaddr(q->avail));
	vu_ok(VU_SET_VRING_ADDR, a, sizeof a, NULL, 0, "SET_VRING_ADDR");
	vu_u64(true, VU_SET_VRING_KICK, (uint64_t)qi, &q->kick_r, 1, "SET_VRING_KICK");
	vu_u64(true, VU_SET_VRING_CALL, (uint64_t)qi, &q->call_w, 1, "SET_VRING_CALL");
	q->active = true;
}

static void ring_enable(int qi, uint32_t on)
{
	if (c.proto)
		vu_state(true, VU_SET_VRING_ENABLE, (uint32_t)qi, on, "SET_VRING_ENABLE");
}

static void rings_setup(bool enable)
{
	int q;
	layout(iopt.qsize, iopt.tx_cross);
	for (q = 0; q < NQ; q++) {
		vq_make_fds(&vq[q], iopt.pipes);
		vq_init(q, iopt.qsize, iopt.base);
	}
	for (q = 0; q < NQ; q++)
		ring_start(q, iopt.base);
	if (enable)
		for (q = 0; q < NQ; q++)
			ring_enable(q, 1);
}

/* ---------------------------------------------------------------------- */
/* step argument handling                                                  */

static int g_argc, g_ai;
static char **g_argv;

static const char *opt_next(void)
{
	if (g_ai < g_argc && !strncmp(g_argv[g_ai], "--", 2))
		return g_argv[g_ai++];
	return NULL;
}

static const char *arg_next(const char *what)
{
	if (g_ai >= g_argc)
		fail("missing argument: %s", what);
	return g_argv[g_ai++];
}

static bool parse_num(const char *s, double *out)
{
	char *e;
	double d;
	if (!s || !*s)
		return false;
	errno = 0;
	d = strtod(s, &e);
	if (*e || errno)
		return false;
	*out = d;
	return true;
}

static unsigned long long parse_ull(const char *s, const char *what)
{
	char *e;
	unsigned long long v;
	errno = 0;
	v = strtoull(s, &e, 0);
	if (!*s || *e || errno)
		fail("bad %s: %s", what, s);
	return v;
}

/* Optional trailing SECONDS argument. */
static double opt_seconds(double dflt)
{
	double d;
	if (g_ai < g_argc && parse_num(g_argv[g_ai], &d)) {
		g_ai++;
		return d;
	}
	return dflt;
}

static int opt_queue(void)
{
	double d;
	if (g_ai < g_argc && parse_num(g_argv[g_ai], &d)) {
		g_ai++;
		if (d < 0 || d >= NQ || d != (int)d)
			fail("bad queue index %s", g_argv[g_ai - 1]);
		return (int)d;
	}
	return VIRTIO_CONSOLE_PORT0_TXQ;
}

static const char *opt_value(const char *opt, const char *name)
{
	size_t l = strlen(name);
	if (!strncmp(opt, name, l)) {
		if (opt[l] == '=')
			return opt + l + 1;
		if (!opt[l])
			return arg_next(name);
	}
	return NULL;
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* TEXT with C escapes into a byte buffer (malloc'ed). */
static uint8_t *unescape(const char *s, size_t *len)
{
	uint8_t *o = malloc(strlen(s) + 1);
	size_t n = 0;
	if (!o)
		fail("out of memory");
	while (*s) {
		if (*s != '\\' || !s[1]) {
			o[n++] = (uint8_t)*s++;
			continue;
		}
		s++;
		switch (*s) {
		case 'n': o[n++] = '\n'; s++; break;
		case 'r': o[n++] = '\r'; s++; break;
		case 't': o[n++] = '\t'; s++; break;
		case '0': o[n++] = 0; s++; break;
		case '\\': o[n++] = '\\'; s++; break;
		case 'x':
			if (hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
				o[n++] = (uint8_t)(hexval(s[1]) * 16 + hexval(s[2]));
				s += 3;
				break;
			}
			/* fall through */
		default:
			o[n++] = '\\';
			break;
		}
	}
	*len = n;
	return o;
}

/* ---------------------------------------------------------------------- */
/* steps: setup and data                                                   */

static void need_rings(void)
{
	if (!vq[0].active)
		fail("the rings are not set up: run init first");
}

static void step_init(void)
{
	const char *o, *v;
	memset(&iopt, 0, sizeof iopt);
	iopt.qsize = 256;
	while ((o = opt_next())) {
		if (!strcmp(o, "--no-event-idx"))
			iopt.no_event_idx = true;
		else if (!strcmp(o, "--no-indirect"))
			iopt.no_indirect = true;
		else if (!strcmp(o, "--pipes"))
			iopt.pipes = true;
		else if (!strcmp(o, "--no-protocol-features"))
			iopt.no_proto = true;
		else if (!strcmp(o, "--no-reply-ack"))
			iopt.no_reply_ack = true;
		else if (!strcmp(o, "--add-mem-reg"))
			iopt.add_mem_reg = true;
		else if (!strcmp(o, "--tx-cross"))
			iopt.tx_cross = true;
		else if (!strcmp(o, "--size"))
			iopt.size = true;
		else if (!strcmp(o, "--no-multiport"))
			iopt.no_multiport = true;
		else if ((v = opt_value(o, "--queue-size")))
			iopt.qsize = (unsigned)parse_ull(v, "queue size");
		else if ((v = opt_value(o, "--base")))
			iopt.base = (uint16_t)parse_ull(v, "base");
		else if ((v = opt_value(o, "--ports")))
			iopt.ports = (unsigned)parse_ull(v, "ports");
		else
			fail("unknown init option %s", o);
	}
	if (!iopt.qsize || iopt.qsize > MAX_QSIZE || (iopt.qsize & (iopt.qsize - 1)))
		fail("--queue-size must be a power of two <= %u", MAX_QSIZE);
	if (iopt.add_mem_reg && iopt.no_proto)
		fail("--add-mem-reg needs protocol features");
	negotiate(!iopt.no_proto, !iopt.no_reply_ack);
	if (iopt.add_mem_reg && !(c.pfeatures & BIT(PF_CONFIGURE_MEM_SLOTS)))
		fail("--add-mem-reg: CONFIGURE_MEM_SLOTS not offered");
	set_features();
	set_memory(iopt.add_mem_reg);
	rings_setup(true);
	note("init: features 0x%" PRIx64 " protocol 0x%" PRIx64 " queue size %u", c.features,
	     c.pfeatures, iopt.qsize);
}

static void handshake(unsigned rx_bufs)
{
	need_rings();
	crx_nbufs = iopt.qsize < CRX_MAX ? iopt.qsize : CRX_MAX;
	crx_refill();
	ctrl_send(VIRTIO_CONSOLE_BAD_ID, VIRTIO_CONSOLE_DEVICE_READY, 1);
	ctrl_expect(0, VIRTIO_CONSOLE_PORT_ADD, 1);
	rx0_nbufs = rx_bufs;
	rx0_refill();
	ctrl_send(0, VIRTIO_CONSOLE_PORT_READY, 1);
	ctrl_expect(0, VIRTIO_CONSOLE_CONSOLE_PORT, 1);
	ctrl_expect(0, VIRTIO_CONSOLE_PORT_OPEN, 1);
	ctrl_send(0, VIRTIO_CONSOLE_PORT_OPEN, 1);
}

static unsigned default_rx_bufs(void)
{
	return iopt.qsize < RX0_DEFAULT ? iopt.qsize : RX0_DEFAULT;
}

static void expect_resize(unsigned long long cols, unsigned long long rows);

static void step_handshake(void)
{
	const char *o, *v;
	unsigned rx = default_rx_bufs();
	unsigned cols = 0, rows = 0;
	need_rings();
	while ((o = opt_next())) {
		if ((v = opt_value(o, "--rx-bufs")))
			rx = (unsigned)parse_ull(v, "rx buffers");
		else if ((v = opt_value(o, "--resize"))) {
			if (sscanf(v, "%ux%u", &cols, &rows) != 2)
				fail("handshake --resize=COLSxROWS: %s", v);
		} else
			fail("unknown handshake option %s", o);
	}
	if (rx > iopt.qsize)
		rx = iopt.qsize;
	if (rx > RX0_MAX)
		rx = RX0_MAX;
	handshake(rx);
	if (cols)
		expect_resize(cols, rows);
}

static bool cond_tx_slot(void *arg)
{
	return !tx0_busy[tx0_next % TX0_SLOTS] && vq[1].nfree >= *(unsigned *)arg;
}

/* One transmit buffer: mode 0 one descriptor, 1 a chain, 2 indirect. */
static void tx_submit(const uint8_t *data, size_t len, int mode)
{
	struct vq *q = &vq[VIRTIO_CONSOLE_PORT0_TXQ];
	struct seg sg[3];
	int s, n = 1, i;
	size_t off = 0;
	if (len == 0 || len > BUF_SIZE)
		fail("internal: tx length %zu", len);
	unsigned need;
	if (mode == 2 && !c.indirect)
		fail("indirect descriptors were not negotiated");
	if (mode) {
		n = len < 3 ? (int)len : 3;
		if (mode == 1 && (unsigned)n > q->num)
			n = (int)q->num;
	}
	need = mode == 1 ? (unsigned)n : 1;
	if (!service(deadline_in(timeout_s), cond_tx_slot, &need, false))
		fail("port0 transmitq: no buffer came back within %g s", timeout_s);
	s = (int)(tx0_next++ % TX0_SLOTS);
	tx0_busy[s] = true;
	if (!tx_repeat || tx0_repeat_len[s] != len)
		gw(tx0_gpa(s), data, len);
	tx0_repeat_len[s] = tx_repeat ? len : 0;
	for (i = 0; i < n; i++) {
		size_t l = i == n - 1 ? len - off : len / (size_t)n;
		sg[i] = (struct seg){ tx0_gpa(s) + off, (uint32_t)l, false };
		off += l;
	}
	vq_add(q, sg, n, mode == 2, TK_TX0, s);
	vq_publish(q, false);
}

/* write-burst N TEXT: N buffers, all holding TEXT, made available at once
 * with a single kick: more than the device takes in one pass. */
static void step_write_burst(void)
{
	struct vq *q = &vq[VIRTIO_CONSOLE_PORT0_TXQ];
	unsigned long long n = parse_ull(arg_next("N"), "buffer count"), i;
	unsigned need = 1;
	size_t len;
	uint8_t *t = unescape(arg_next("TEXT"), &len);
	struct seg sg;
	int s;
	need_rings();
	if (len == 0 || len > BUF_SIZE)
		fail("write-burst: TEXT must be 1..%u bytes", BUF_SIZE);
	if (!service(deadline_in(timeout_s), cond_tx_slot, &need, false))
		fail("port0 transmitq: no buffer came back within %g s", timeout_s);
	if (n > q->nfree)
		fail("write-burst: %llu buffers, the queue has %u free", n, q->nfree);
	s = (int)(tx0_next++ % TX0_SLOTS);
	tx0_busy[s] = true;
	gw(tx0_gpa(s), t, len);
	tx0_repeat_len[s] = 0;
	for (i = 0; i < n; i++) {
		sg = (struct seg){ tx0_gpa(s), (uint32_t)len, false };
		vq_add(q, &sg, 1, false, TK_TX0, s);
	}
	vq_publish(q, true);
	wait_q_idle(VIRTIO_CONSOLE_PORT0_TXQ, "write-burst");
}

static void write_text(int mode)
{
	size_t len, off;
	uint8_t *t = unescape(arg_next("TEXT"), &len);
	need_rings();
	for (off = 0; off < len; off += BUF_SIZE) {
		size_t l = len - off < BUF_SIZE ? len - off : BUF_SIZE;
		tx_submit(t + off, l, mode);
		wait_q_idle(VIRTIO_CONSOLE_PORT0_TXQ, "write");
	}
	free(t);
}

static void step_write(void) { write_text(0); }
static void step_write_chain(void) { write_text(1); }
static void step_write_indirect(void) { write_text(2); }

struct inflight_arg { unsigned max; };

static bool cond_inflight(void *arg)
{
	return vq[1].inflight < ((struct inflight_arg *)arg)->max;
}

static void step_write_bytes(void)
{
	unsigned long long n = parse_ull(arg_next("N"), "byte count"), k = 0;
	struct inflight_arg ia = { 8 };
	const char *o, *v;
	uint8_t b[BUF_SIZE];
	bool repeat = false;
	while ((o = opt_next())) {
		if ((v = opt_value(o, "--inflight")))
			ia.max = (unsigned)parse_ull(v, "inflight");
		else if (!strcmp(o, "--repeat"))
			repeat = true;
		else
			fail("unknown write-bytes option %s", o);
	}
	need_rings();
	if (ia.max < 1)
		ia.max = 1;
	if (ia.max > vq[1].num)
		ia.max = vq[1].num;
	if (ia.max > TX0_SLOTS)
		ia.max = TX0_SLOTS;
	while (k < n) {
		size_t l = n - k < BUF_SIZE ? (size_t)(n - k) : BUF_SIZE, i;
		/* data_pat(k + i), stepping the product: the benchmarks must
		 * not wait for the pattern */
		uint32_t x = (uint32_t)(repeat ? 0 : k) * 2654435761u;
		for (i = 0; i < l && (!repeat || k == 0); i++, x += 2654435761u)
			b[i] = (uint8_t)((x >> 24) ^ (x >> 13));
		if (!service(deadline_in(timeout_s), cond_inflight, &ia, false))
			fail("write-bytes: port0 transmitq stalled after %llu bytes", k);
		tx_repeat = repeat;
		tx_submit(b, l, 0);
		tx_repeat = false;
		k += l;
	}
	wait_q_idle(VIRTIO_CONSOLE_PORT0_TXQ, "write-bytes");
}

static bool cond_sink(void *arg)
{
	return rx_sink.got >= *(uint64_t *)arg;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* read-bytes N [--check] [SECONDS]: host -> guest throughput.  Every
 * receive buffer goes back to the device as soon as it is used; the bytes
 * are counted, not kept (--check: they must be the data pattern).  Prints
 * "read-bytes: N bytes in T ns" on stdout, timed from the first byte (as
 * bench/tcpbench's loopback baseline is). */
static void step_read_bytes(void)
{
	uint64_t n = parse_ull(arg_next("N"), "byte count");
	const char *o;
	double secs;
	bool check = false;
	while ((o = opt_next())) {
		if (!strcmp(o, "--check"))
			check = true;
		else
			fail("unknown read-bytes option %s", o);
	}
	secs = opt_seconds(timeout_s);
	need_rings();
	rx_sink.on = true;
	rx_sink.check = check;
	rx_sink.got = 0;
	/* What came during the steps before counts (the writer may start at
	 * once): it is the start of the N bytes. */
	rx_sink_take(rxd, rxd_len);
	rx_total -= rxd_len;
	rxd_consume(rxd_len);
	if (!service(deadline_in(secs), cond_sink, &n, false))
		fail("read-bytes: got %" PRIu64 " of %" PRIu64 " bytes within %g s",
		     rx_sink.got, n, secs);
	printf("read-bytes: %" PRIu64 " bytes in %" PRId64 " ns\n", rx_sink.got,
	       now_ns() - rx_sink.first);
	fflush(stdout);
	rx_sink.on = false;
	if (rx_sink.got > n)
		fail("read-bytes: %" PRIu64 " bytes, more than %" PRIu64, rx_sink.got, n);
}

static bool cond_rx_any(void *arg)
{
	(void)arg;
	return rxd_len > 0;
}

/* echo-loop N [SECONDS]: write back every byte received, as soon as it is
 * received (one transmit buffer per receive), until N bytes went back: the
 * guest end of the keystroke latency benchmark. */
static void step_echo_loop(void)
{
	uint64_t n = parse_ull(arg_next("N"), "byte count"), done = 0;
	double secs = opt_seconds(timeout_s);
	need_rings();
	while (done < n) {
		size_t l;
		if (!service(deadline_in(secs), cond_rx_any, NULL, false))
			fail("echo-loop: nothing received within %g s after %" PRIu64 " bytes",
			     secs, done);
		l = rxd_len < BUF_SIZE ? rxd_len : BUF_SIZE;
		tx_submit(rxd, l, 0);
		rxd_consume(l);
		done += l;
	}
	wait_q_idle(VIRTIO_CONSOLE_PORT0_TXQ, "echo-loop");
}

struct find_arg { const uint8_t *t; size_t len; };

static bool cond_find(void *arg)
{
	struct find_arg *f = arg;
	return f->len == 0 || (rxd_len && memmem(rxd, rxd_len, f->t, f->len));
}

static const char *printable(const uint8_t *p, size_t n)
{
	static char b[200];
	size_t i, o = 0;
	for (i = 0; i < n && o < sizeof b - 8; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			b[o++] = (char)p[i];
		else
			o += (size_t)sprintf(b + o, "\\x%02x", p[i]);
	}
	if (i < n)
		strcpy(b + o, "...");
	else
		b[o] = 0;
	return b;
}

static void step_expect(void)
{
	size_t len;
	uint8_t *t = unescape(arg_next("TEXT"), &len);
	double secs = opt_seconds(timeout_s);
	struct find_arg f = { t, len };
	uint8_t *at;
	need_rings();
	if (!service(deadline_in(secs), cond_find, &f, false))
		fail("expected \"%s\" within %g s; received (unconsumed, %zu bytes): \"%s\"",
		     printable(t, len), secs, rxd_len,
		     printable(rxd_len > 120 ? rxd + rxd_len - 120 : rxd, rxd_len > 120 ? 120 : rxd_len));
	at = len && rxd_len ? memmem(rxd, rxd_len, t, len) : NULL;
	if (at)
		rxd_consume((size_t)(at - rxd) + len);
	free(t);
}

struct all_arg { uint8_t **t; size_t *len; int n; };

static bool cond_all(void *arg)
{
	struct all_arg *a = arg;
	int i;
	for (i = 0; i < a->n; i++)
		if (!rxd_len || !memmem(rxd, rxd_len, a->t[i], a->len[i]))
			return false;
	return true;
}

static void step_expect_all(void)
{
	unsigned long long n = parse_ull(arg_next("N"), "count");
	struct all_arg a;
	size_t end = 0;
	double secs;
	int i;
	if (n < 1 || n > 64)
		fail("expect-all: count 1..64");
	a.n = (int)n;
	a.t = calloc(n, sizeof *a.t);
	a.len = calloc(n, sizeof *a.len);
	if (!a.t || !a.len)
		fail("out of memory");
	for (i = 0; i < a.n; i++)
		a.t[i] = unescape(arg_next("TEXT"), &a.len[i]);
	secs = opt_seconds(timeout_s);
	need_rings();
	if (!service(deadline_in(secs), cond_all, &a, false)) {
		for (i = 0; i < a.n && rxd_len && memmem(rxd, rxd_len, a.t[i], a.len[i]); i++)
			;
		fail("expect-all: \"%s\" not received within %g s; received: \"%s\"",
		     printable(a.t[i], a.len[i]), secs, printable(rxd, rxd_len));
	}
	for (i = 0; i < a.n; i++) {
		uint8_t *at = memmem(rxd, rxd_len, a.t[i], a.len[i]);
		size_t e = (size_t)(at - rxd) + a.len[i];
		if (e > end)
			end = e;
		free(a.t[i]);
	}
	rxd_consume(end);
	free(a.t);
	free(a.len);
}

static bool cond_rxlen(void *arg)
{
	return rxd_len >= *(size_t *)arg;
}

static void step_expect_bytes(void)
{
	size_t n = (size_t)parse_ull(arg_next("N"), "byte count"), i;
	double secs = opt_seconds(timeout_s);
	need_rings();
	if (!service(deadline_in(secs), cond_rxlen, &n, false))
		fail("expect-bytes: got %zu of %zu bytes within %g s", rxd_len, n, secs);
	for (i = 0; i < n; i++)
		if (rxd[i] != data_pat(i))
			fail("expect-bytes: byte %zu is 0x%02x, want 0x%02x (got [%s])", i, rxd[i],
			     data_pat(i), hex(rxd + i, n - i < 16 ? n - i : 16));
	rxd_consume(n);
}

static void step_check_memory(void)
{
	size_t i, bad = 0, first = 0, writable = 0;
	for (i = 0; i < MEM_SIZE; i++) {
		if (wmap[i]) {
			writable++;
			continue;
		}
		if (mem[i] != shadow[i] && !bad++)
			first = i;
	}
	if (bad)
		fail("check-memory: %zu byte(s) changed outside device-writable buffers, first at gpa 0x%" PRIx64
		     " (0x%02x, want 0x%02x): [%s]",
		     bad, GPA_BASE + first, mem[first], shadow[first],
		     hex(mem + first, MEM_SIZE - first < 16 ? MEM_SIZE - first : 16));
	note("check-memory: ok (%zu bytes device-writable)", writable);
}

static void stop_rings_and_check(void)
{
	int q;
	for (q = 0; q < NQ; q++)
		ring_enable(q, 0);
	for (q = 0; q < NQ; q++) {
		uint8_t b[8];
		struct vu_msg m;
		uint32_t last;
		uint16_t uidx;
		put32(b, (uint32_t)q);
		put32(b + 4, 0);
		vu_send(VU_GET_VRING_BASE, VU_VERSION, b, 8, NULL, 0);
		recv_reply(&m, "GET_VRING_BASE");
		if (m.h.request != VU_GET_VRING_BASE || m.h.flags != 5 || m.h.size != 8 ||
		    get32(m.p) != (uint32_t)q)
			fail("GET_VRING_BASE(%d): reply {%u, 0x%x, %u} [%s], want {11, 0x5, 8} index %d",
			     q, m.h.request, m.h.flags, m.h.size, hex(m.p, m.h.size), q);
		last = get32(m.p + 4);
		uidx = gload16(vq[q].used + 2);
		if (last > 0xffff || (uint16_t)(vq[q].avail_idx - last) > vq[q].num ||
		    (uint16_t)(last - uidx) > vq[q].num)
			fail("GET_VRING_BASE(%d): last_avail %u inconsistent with avail idx %u, used idx %u",
			     q, last, vq[q].avail_idx, uidx);
		if ((q == 1 || q == 3) && last != vq[q].avail_idx)
			fail("GET_VRING_BASE(%d): last_avail %u, but every transmit buffer up to %u was used",
			     q, last, vq[q].avail_idx);
		vq[q].active = false;
	}
}

static void restart_rings(void)
{
	int q;
	for (q = 0; q < NQ; q++) {
		vq_init(q, iopt.qsize, iopt.base);
		vq[q].active = false;
	}
	buffers_forget();
	for (q = 0; q < NQ; q++)
		ring_start(q, iopt.base);
	for (q = 0; q < NQ; q++)
		ring_enable(q, 1);
}

static void step_reset(void)
{
	need_rings();
	stop_rings_and_check();
	set_features();
	restart_rings();
	handshake(default_rx_bufs());
}

static void step_reset_device(void)
{
	need_rings();
	vu_ok(VU_RESET_DEVICE, NULL, 0, NULL, 0, "RESET_DEVICE");
	set_features();
	set_memory(iopt.add_mem_reg);
	restart_rings();
}

static void step_close(void)
{
	disconnect();
}

static void step_reconnect(void)
{
	disconnect();
	connect_probe();
}

static bool cond_eof(void *arg)
{
	(void)arg;
	return sock_eof;
}

static void step_expect_eof(void)
{
	double secs = opt_seconds(timeout_s);
	if (sock < 0)
		fail("not connected");
	if (!service(deadline_in(secs), cond_eof, NULL, true))
		fail("the daemon did not close the connection within %g s", secs);
}

static bool cond_file(void *arg)
{
	return access((const char *)arg, F_OK) == 0;
}

static void step_hold(void)
{
	const char *f = arg_next("FILE");
	double secs = opt_seconds(30);
	bool ok;
	service_tick_ms = 20;	/* a file appearing wakes nothing up */
	ok = service(deadline_in(secs), cond_file, (void *)f, true);
	service_tick_ms = -1;
	if (!ok)
		fail("hold: %s did not appear within %g s", f, secs);
}

/* ---------------------------------------------------------------------- */
/* hostile rings                                                           */

enum { H_HEAD, H_NEXT, H_LOOP, H_OOB, H_OOB_EDGE, H_WRAP, H_JUMP, H_IND_LEN, H_IND_NEST,
       H_IND_HUGE, H_EMPTY, H_DIR, H_IND_NEXT };

static void hostile(int kind)
{
	int qi = opt_queue();
	struct vq *q = &vq[qi];
	bool w = qi == VIRTIO_CONSOLE_PORT0_RXQ || qi == VIRTIO_CONSOLE_CTRL_RXQ;
	uint16_t wf = w ? VRING_DESC_F_WRITE : 0;
	uint64_t buf;
	uint16_t d, d2;
	int t, t2;
	need_rings();
	if (q->nfree < 2)
		fail("hostile: %s has no free descriptors", qname[qi]);
	/* a harmless, valid buffer for the parts that are not the corruption */
	if (w) {
		buf = rx0_gpa(RX0_MAX - 1);
		mark_writable(buf, 64);
	} else {
		buf = tx0_gpa(TX0_SLOTS - 1);
		tx0_repeat_len[TX0_SLOTS - 1] = 0;
		gw(buf, "hostile", 7);
	}
	switch (kind) {
	case H_HEAD:
		gw16(q->avail + 4 + 2ull * (q->avail_idx % q->num), (uint16_t)(q->num + 5));
		q->avail_idx++;
		break;
	case H_NEXT:
		d = desc_alloc(q);
		set_desc(q->desc, d, buf, 16, (uint16_t)(VRING_DESC_F_NEXT | wf), (uint16_t)(q->num + 3));
		q->tok[d] = (struct tok){ TK_BAD, true, 1, -1, -1, 0 };
		avail_push(q, d);
		break;
	case H_LOOP:
		d = desc_alloc(q);
		d2 = desc_alloc(q);
		set_desc(q->desc, d, buf, 16, (uint16_t)(VRING_DESC_F_NEXT | wf), d2);
		set_desc(q->desc, d2, buf + 16, 16, (uint16_t)(VRING_DESC_F_NEXT | wf), d);
		q->tok[d] = (struct tok){ TK_BAD, true, 2, -1, -1, 0 };
		avail_push(q, d);
		break;
	case H_OOB:
	case H_OOB_EDGE:
	case H_WRAP:
	case H_EMPTY:
	case H_DIR:
		d = desc_alloc(q);
		if (kind == H_DIR)	/* readable on a receiveq, writable on a transmitq */
			set_desc(q->desc, d, buf, 16, (uint16_t)(wf ^ VRING_DESC_F_WRITE), 0);
		else if (kind == H_EMPTY)
			set_desc(q->desc, d, buf, 0, wf, 0);
		else if (kind == H_OOB)
			set_desc(q->desc, d, 0x80000000ull, 64, wf, 0);
		else if (kind == H_OOB_EDGE)
			set_desc(q->desc, d, GPA_END - 32, 64, wf, 0);
		else
			set_desc(q->desc, d, 0xfffffffffffff000ull, 0x2000, wf, 0);
		q->tok[d] = (struct tok){ TK_BAD, true, 1, -1, -1, 0 };
		avail_push(q, d);
		break;
	case H_JUMP:
		q->avail_idx = (uint16_t)(q->avail_idx + q->num + 1);
		break;
	case H_IND_LEN:
	case H_IND_NEST:
	case H_IND_HUGE:
	case H_IND_NEXT:
		if (!c.indirect)
			fail("indirect descriptors were not negotiated");
		t = ind_alloc();
		d = desc_alloc(q);
		if (kind == H_IND_LEN) {
			set_desc(ind_gpa(t), 0, buf, 16, wf, 0);
			set_desc(ind_gpa(t), 1, buf + 16, 8, wf, 0);
			set_desc(q->desc, d, ind_gpa(t), 24, VRING_DESC_F_INDIRECT, 0);
		} else if (kind == H_IND_NEXT) {
			/* a valid table, but the indirect descriptor also says NEXT */
			d2 = desc_alloc(q);
			set_desc(q->desc, d2, buf + 32, 16, wf, 0);
			set_desc(ind_gpa(t), 0, buf, 16, wf, 0);
			set_desc(q->desc, d, ind_gpa(t), 16,
				 (uint16_t)(VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT), d2);
		} else if (kind == H_IND_HUGE) {
			set_desc(ind_gpa(t), 0, buf, 0, (uint16_t)(VRING_DESC_F_NEXT | wf), 0);
			set_desc(q->desc, d, ind_gpa(t), 65536 * 16, VRING_DESC_F_INDIRECT, 0);
		} else {
			t2 = ind_alloc();
			set_desc(ind_gpa(t2), 0, buf, 16, wf, 0);
			set_desc(ind_gpa(t), 0, ind_gpa(t2), 16, VRING_DESC_F_INDIRECT, 0);
			set_desc(q->desc, d, ind_gpa(t), 16, VRING_DESC_F_INDIRECT, 0);
		}
		q->tok[d] = (struct tok){ TK_BAD, true, 1, -1, t, 0 };
		avail_push(q, d);
		break;
	}
	vq_publish(q, true);
}

static void step_corrupt_head(void) { hostile(H_HEAD); }
static void step_corrupt_next(void) { hostile(H_NEXT); }
static void step_desc_loop(void) { hostile(H_LOOP); }
static void step_desc_oob(void) { hostile(H_OOB); }
static void step_desc_oob_edge(void) { hostile(H_OOB_EDGE); }
static void step_desc_wrap(void) { hostile(H_WRAP); }
static void step_avail_jump(void) { hostile(H_JUMP); }
static void step_indirect_bad_len(void) { hostile(H_IND_LEN); }
static void step_indirect_nested(void) { hostile(H_IND_NEST); }
static void step_indirect_huge(void) { hostile(H_IND_HUGE); }
static void step_desc_empty(void) { hostile(H_EMPTY); }
static void step_desc_wrong_dir(void) { hostile(H_DIR); }
static void step_indirect_next(void) { hostile(H_IND_NEXT); }

/* ---------------------------------------------------------------------- */
/* protocol checks                                                         */

/* A pipe whose write end is handed to the daemon: after we close ours, the
 * read end sees EOF once the daemon closed its copy. */
struct canary { int r, w; };

static struct canary canary_new(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		fail("pipe2: %s", strerror(errno));
	return (struct canary){ p[0], p[1] };
}

static void canary_expect_closed(struct canary *k, const char *what)
{
	int64_t dl = deadline_in(timeout_s);
	close(k->w);
	for (;;) {
		struct pollfd pf = { k->r, POLLIN, 0 };
		int r = poll(&pf, 1, ms_left(dl));
		if (r < 0 && errno == EINTR)
			continue;
		if (r > 0 && (pf.revents & POLLHUP))
			break;
		if (r <= 0 || ms_left(dl) == 0)
			fail("%s: the daemon kept the fd open (not closed within %g s)", what, timeout_s);
		drain_fd(k->r);
	}
	close(k->r);
}

/* GET_FEATURES, GET/SET_PROTOCOL_FEATURES (everything offered that we
 * know), SET_OWNER: the state the protocol checks start from. */
static void proto_base(void)
{
	c.features_offered = vu_get_u64(VU_GET_FEATURES);
	c.proto = true;
	c.pfeatures_offered = vu_get_u64(VU_GET_PROTOCOL_FEATURES);
	c.pfeatures = c.pfeatures_offered & WANT_PFEATURES;
	c.reply_ack = true;
	vu_send(VU_SET_PROTOCOL_FEATURES, VU_VERSION | VU_NEED_REPLY, &c.pfeatures, 8, NULL, 0);
	expect_reply_u64_exact(VU_SET_PROTOCOL_FEATURES, 0, "SET_PROTOCOL_FEATURES (valid)");
	vu_ok(VU_SET_OWNER, NULL, 0, NULL, 0, "SET_OWNER");
}

static void proto_get_features_exact(const char *what)
{
	vu_send(VU_GET_FEATURES, VU_VERSION, NULL, 0, NULL, 0);
	expect_reply_u64_exact(VU_GET_FEATURES, WANT_FEATURES, what);
}

static void step_proto_features(void)
{
	proto_get_features_exact("GET_FEATURES");
	proto_base();
	/* need_reply on a request with its own reply: exactly one reply */
	vu_send(VU_GET_FEATURES, VU_VERSION | VU_NEED_REPLY, NULL, 0, NULL, 0);
	expect_reply_u64_exact(VU_GET_FEATURES, WANT_FEATURES, "GET_FEATURES with need_reply");
	vu_send(VU_GET_QUEUE_NUM, VU_VERSION, NULL, 0, NULL, 0);
	expect_reply_u64_exact(VU_GET_QUEUE_NUM, WANT_QUEUE_NUM,
			       "GET_QUEUE_NUM after GET_FEATURES+need_reply (a second reply?)");
	vu_u64(false, VU_SET_FEATURES, WANT_FEATURES | BIT(34), NULL, 0,
		     "SET_FEATURES with bit 34 (RING_PACKED, not offered)");
	vu_u64(false, VU_SET_FEATURES, WANT_FEATURES | BIT(3), NULL, 0,
		     "SET_FEATURES with bit 3 (not offered)");
	vu_u64(false, VU_SET_FEATURES, BIT(63), NULL, 0, "SET_FEATURES with bit 63");
	vu_send(VU_SET_FEATURES, VU_VERSION | VU_NEED_REPLY, (uint64_t[]){ WANT_FEATURES }, 8, NULL, 0);
	expect_reply_u64_exact(VU_SET_FEATURES, 0, "SET_FEATURES 0x170000002");
	vu_send(VU_SET_FEATURES, VU_VERSION | VU_NEED_REPLY,
		(uint64_t[]){ BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_CONSOLE_F_MULTIPORT) }, 8, NULL, 0);
	expect_reply_u64_exact(VU_SET_FEATURES, 0, "SET_FEATURES 0x100000002 (a subset)");
	proto_get_features_exact("GET_FEATURES after SET_FEATURES");
}

static void step_proto_protocol_features(void)
{
	uint64_t v;
	c.features_offered = vu_get_u64(VU_GET_FEATURES);
	vu_send(VU_GET_PROTOCOL_FEATURES, VU_VERSION, NULL, 0, NULL, 0);
	expect_reply_u64_exact(VU_GET_PROTOCOL_FEATURES, WANT_PFEATURES, "GET_PROTOCOL_FEATURES");
	v = WANT_PFEATURES;
	vu_send(VU_SET_PROTOCOL_FEATURES, VU_VERSION | VU_NEED_REPLY, &v, 8, NULL, 0);
	expect_reply_u64_exact(VU_SET_PROTOCOL_FEATURES, 0, "SET_PROTOCOL_FEATURES 0x8229");
	vu_u64(false, VU_SET_PROTOCOL_FEATURES, WANT_PFEATURES | BIT(PF_LOG_SHMFD), NULL, 0,
		     "SET_PROTOCOL_FEATURES with bit 1 (LOG_SHMFD, not offered)");
	vu_u64(false, VU_SET_PROTOCOL_FEATURES, WANT_PFEATURES | BIT(40), NULL, 0,
		     "SET_PROTOCOL_FEATURES with bit 40 (unknown)");
	vu_send(VU_SET_PROTOCOL_FEATURES, VU_VERSION | VU_NEED_REPLY, &v, 8, NULL, 0);
	expect_reply_u64_exact(VU_SET_PROTOCOL_FEATURES, 0, "SET_PROTOCOL_FEATURES 0x8229 again");
	vu_send(VU_GET_PROTOCOL_FEATURES, VU_VERSION, NULL, 0, NULL, 0);
	expect_reply_u64_exact(VU_GET_PROTOCOL_FEATURES, WANT_PFEATURES,
			       "GET_PROTOCOL_FEATURES after SET");
}

static void step_proto_misc(void)
{
	proto_base();
	vu_send(VU_GET_QUEUE_NUM, VU_VERSION, NULL, 0, NULL, 0);
	expect_reply_u64_exact(VU_GET_QUEUE_NUM, WANT_QUEUE_NUM, "GET_QUEUE_NUM");
	vu_send(VU_GET_MAX_MEM_SLOTS, VU_VERSION, NULL, 0, NULL, 0);
	expect_reply_u64_exact(VU_GET_MAX_MEM_SLOTS, WANT_MEM_SLOTS, "GET_MAX_MEM_SLOTS");
	/* need_reply on requests that have their own reply: one reply each */
	vu_send(VU_GET_QUEUE_NUM, VU_VERSION | VU_NEED_REPLY, NULL, 0, NULL, 0);
	vu_send(VU_GET_MAX_MEM_SLOTS, VU_VERSION | VU_NEED_REPLY, NULL, 0, NULL, 0);
	expect_reply_u64_exact(VU_GET_QUEUE_NUM, WANT_QUEUE_NUM, "GET_QUEUE_NUM with need_reply");
	expect_reply_u64_exact(VU_GET_MAX_MEM_SLOTS, WANT_MEM_SLOTS,
			       "GET_MAX_MEM_SLOTS with need_reply (after GET_QUEUE_NUM's single reply)");
	vu_send(VU_SET_OWNER, VU_VERSION | VU_NEED_REPLY, NULL, 0, NULL, 0);
	expect_reply_u64_exact(VU_SET_OWNER, 0, "SET_OWNER again");
	proto_get_features_exact("GET_FEATURES at the end");
}

/* The 12-byte header of a reply: same request, flags exactly 0x5. */
static void want_reply(uint8_t *want, uint32_t req, uint32_t size)
{
	put32(want, req);
	put32(want + 4, 5);
	put32(want + 8, size);
}

/* A whole successful GET_CONFIG reply for [off, off+size) of the console's
 * config (the daemon's default size 80x24, max_nr_ports 1, all else 0);
 * returns its length. */
static size_t want_config_reply(uint8_t *want, uint32_t off, uint32_t size)
{
	uint8_t cfg[VIRTIO_CONSOLE_CONFIG_SIZE] = { 0 };
	cfg[VIRTIO_CONSOLE_CONFIG_COLS] = 80;		/* le16 80 */
	cfg[VIRTIO_CONSOLE_CONFIG_ROWS] = 24;		/* le16 24 */
	cfg[VIRTIO_CONSOLE_CONFIG_MAX_NR_PORTS] = 1;	/* le32 1 */
	want_reply(want, VU_GET_CONFIG, 12 + size);
	put32(want + 12, off);
	put32(want + 16, size);
	put32(want + 20, 0);
	memcpy(want + 24, cfg + off, size);
	return VU_HDR_SIZE + 12 + size;
}

static void config_req(uint32_t off, uint32_t size, uint32_t flags, uint32_t datalen, uint8_t *b)
{
	memset(b, 0, 12 + datalen);
	put32(b, off);
	put32(b + 4, size);
	put32(b + 8, flags);
}

static void step_proto_config(void)
{
	uint8_t b[12 + 256], want[VU_HDR_SIZE + 12 + 256];
	proto_base();
	/* whole config */
	config_req(0, 12, 0, 12, b);
	vu_send(VU_GET_CONFIG, VU_VERSION, b, 24, NULL, 0);
	expect_reply_bytes(want, want_config_reply(want, 0, 12), "GET_CONFIG offset 0 size 12");
	/* max_nr_ports alone */
	config_req(4, 4, 0, 4, b);
	vu_send(VU_GET_CONFIG, VU_VERSION, b, 16, NULL, 0);
	expect_reply_bytes(want, want_config_reply(want, 4, 4), "GET_CONFIG offset 4 size 4");
	/* invalid: header-only reply */
	want_reply(want, VU_GET_CONFIG, 0);
	config_req(8, 8, 0, 8, b);
	vu_send(VU_GET_CONFIG, VU_VERSION, b, 20, NULL, 0);
	expect_reply_bytes(want, VU_HDR_SIZE, "GET_CONFIG offset 8 size 8 (past the end)");
	config_req(0, 1000, 0, 12, b);
	vu_send(VU_GET_CONFIG, VU_VERSION, b, 24, NULL, 0);
	expect_reply_bytes(want, VU_HDR_SIZE, "GET_CONFIG size 1000 (> 256)");
	config_req(0xfffffff8u, 16, 0, 16, b);
	vu_send(VU_GET_CONFIG, VU_VERSION, b, 28, NULL, 0);
	expect_reply_bytes(want, VU_HDR_SIZE, "GET_CONFIG offset 0xfffffff8 size 16 (wraps)");
	config_req(0, 256, 0, 256, b);
	vu_send(VU_GET_CONFIG, VU_VERSION, b, 12 + 256, NULL, 0);
	expect_reply_bytes(want, VU_HDR_SIZE, "GET_CONFIG offset 0 size 256 (past the end)");
	/* still whole and in sync */
	config_req(0, 12, 0, 12, b);
	vu_send(VU_GET_CONFIG, VU_VERSION, b, 24, NULL, 0);
	expect_reply_bytes(want, want_config_reply(want, 0, 12), "GET_CONFIG again");
}

static void step_proto_unknown(void)
{
	uint8_t junk[16] = "0123456789abcdef";
	proto_base();
	vu_fails(99, NULL, 0, NULL, 0, "request 99 with need_reply");
	vu_fails(99, junk, sizeof junk, NULL, 0, "request 99 with 16 payload bytes and need_reply");
	vu_send(99, VU_VERSION, NULL, 0, NULL, 0);
	vu_send(99, VU_VERSION, junk, sizeof junk, NULL, 0);
	vu_send(0, VU_VERSION, NULL, 0, NULL, 0);
	proto_get_features_exact("GET_FEATURES after requests 99 and 0 without need_reply");
}

static void mem_table(uint8_t *b, uint32_t n)
{
	uint32_t i;
	memset(b, 0, 8 + 32 * (size_t)n);
	put32(b, n);
	for (i = 0; i < n; i++)
		region_bytes(b + 8 + 32 * i, (int)(i & 1));
}

static void step_proto_mem_table(void)
{
	uint8_t b[8 + 32 * 8 + 4];
	int fds[8], i;
	struct canary k;
	int small;
	proto_base();
	vu_u64(true, VU_SET_FEATURES, WANT_FEATURES, NULL, 0, "SET_FEATURES");
	/* valid, two regions */
	mem_table(b, 2);
	fds[0] = fds[1] = memfd;
	vu_ok(VU_SET_MEM_TABLE, b, 8 + 64, fds, 2, "SET_MEM_TABLE two regions");
	/* one region in a 72-byte payload, as user-mode-linux sends it */
	mem_table(b, 2);
	put32(b, 1);
	vu_ok(VU_SET_MEM_TABLE, b, 72, fds, 1, "SET_MEM_TABLE one region, 72-byte payload");
	/* nregions 9 (with the 8 regions that fit) */
	mem_table(b, 8);
	put32(b, 9);
	k = canary_new();
	for (i = 0; i < 8; i++)
		fds[i] = k.w;
	vu_fails(VU_SET_MEM_TABLE, b, 8 + 32 * 8, fds, 8, "SET_MEM_TABLE nregions 9");
	canary_expect_closed(&k, "SET_MEM_TABLE nregions 9");
	/* two regions, one fd */
	mem_table(b, 2);
	k = canary_new();
	vu_fails(VU_SET_MEM_TABLE, b, 8 + 64, &k.w, 1, "SET_MEM_TABLE two regions, one fd");
	canary_expect_closed(&k, "SET_MEM_TABLE two regions, one fd");
	/* one region, two fds */
	mem_table(b, 1);
	k = canary_new();
	fds[0] = memfd;
	fds[1] = k.w;
	vu_fails(VU_SET_MEM_TABLE, b, 8 + 32, fds, 2, "SET_MEM_TABLE one region, two fds");
	canary_expect_closed(&k, "SET_MEM_TABLE one region, two fds");
	/* payload shorter than 8 + 32n */
	mem_table(b, 2);
	k = canary_new();
	fds[0] = k.w;
	fds[1] = k.w;
	vu_fails(VU_SET_MEM_TABLE, b, 8 + 40, fds, 2, "SET_MEM_TABLE two regions in 48 bytes");
	canary_expect_closed(&k, "SET_MEM_TABLE two regions in 48 bytes");
	/* an fd shorter than mmap_offset + size */
	small = memfd_create("small", MFD_CLOEXEC);
	if (small < 0 || ftruncate(small, 4096) < 0)
		fail("memfd_create: %s", strerror(errno));
	mem_table(b, 2);
	fds[0] = memfd;
	fds[1] = small;
	vu_fails(VU_SET_MEM_TABLE, b, 8 + 64, fds, 2, "SET_MEM_TABLE with a 4 KiB fd for region 1");
	close(small);
	/* and a good table still works afterwards */
	mem_table(b, 2);
	fds[0] = fds[1] = memfd;
	vu_ok(VU_SET_MEM_TABLE, b, 8 + 64, fds, 2, "SET_MEM_TABLE two regions again");
	proto_get_features_exact("GET_FEATURES at the end");
}

static void step_proto_mem_reg(void)
{
	uint8_t b[40];
	int fds[2];
	struct canary k;
	int small;
	proto_base();
	vu_u64(true, VU_SET_FEATURES, WANT_FEATURES, NULL, 0, "SET_FEATURES");
	memset(b, 0, sizeof b);
	region_bytes(b + 8, 0);
	vu_ok(VU_ADD_MEM_REG, b, 40, &memfd, 1, "ADD_MEM_REG region 0");
	region_bytes(b + 8, 1);
	vu_ok(VU_ADD_MEM_REG, b, 40, &memfd, 1, "ADD_MEM_REG region 1");
	vu_ok(VU_REM_MEM_REG, b, 40, NULL, 0, "REM_MEM_REG region 1");
	vu_fails(VU_ADD_MEM_REG, b, 40, NULL, 0, "ADD_MEM_REG without an fd");
	k = canary_new();
	fds[0] = memfd;
	fds[1] = k.w;
	vu_fails(VU_ADD_MEM_REG, b, 40, fds, 2, "ADD_MEM_REG with two fds");
	canary_expect_closed(&k, "ADD_MEM_REG with two fds");
	k = canary_new();
	vu_fails(VU_ADD_MEM_REG, b, 20, &k.w, 1, "ADD_MEM_REG with a 20-byte payload");
	canary_expect_closed(&k, "ADD_MEM_REG with a 20-byte payload");
	small = memfd_create("small", MFD_CLOEXEC);
	if (small < 0 || ftruncate(small, 4096) < 0)
		fail("memfd_create: %s", strerror(errno));
	vu_fails(VU_ADD_MEM_REG, b, 40, &small, 1, "ADD_MEM_REG with a 4 KiB fd");
	close(small);
	vu_ok(VU_ADD_MEM_REG, b, 40, &memfd, 1, "ADD_MEM_REG region 1 again");
	proto_get_features_exact("GET_FEATURES at the end");
}

static void step_proto_vring(void)
{
	static const uint32_t bad_num[] = { 0, 3, 255, 65536, 0x10000000u, 0xffffffffu };
	static const uint32_t good_num[] = { 1, 2, 256, 1024, 32768 };
	struct canary k;
	size_t i;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		fail("eventfd: %s", strerror(errno));
	proto_base();
	vu_u64(true, VU_SET_FEATURES, WANT_FEATURES, NULL, 0, "SET_FEATURES");
	for (i = 0; i < sizeof good_num / sizeof good_num[0]; i++) {
		char what[64];
		snprintf(what, sizeof what, "SET_VRING_NUM {0, %u}", good_num[i]);
		vu_state(true, VU_SET_VRING_NUM, 0, good_num[i], what);
	}
	for (i = 0; i < sizeof bad_num / sizeof bad_num[0]; i++) {
		char what[64];
		snprintf(what, sizeof what, "SET_VRING_NUM {0, %u}", bad_num[i]);
		vu_state(false, VU_SET_VRING_NUM, 0, bad_num[i], what);
	}
	vu_state(true, VU_SET_VRING_NUM, 3, 256, "SET_VRING_NUM {3, 256}");
	vu_state(false, VU_SET_VRING_NUM, 4, 256, "SET_VRING_NUM {4, 256}");
	vu_state(false, VU_SET_VRING_NUM, 0xffffffffu, 256, "SET_VRING_NUM {0xffffffff, 256}");
	vu_state(true, VU_SET_VRING_BASE, 0, 0, "SET_VRING_BASE {0, 0}");
	vu_state(false, VU_SET_VRING_BASE, 4, 0, "SET_VRING_BASE {4, 0}");
	vu_u64(false, VU_SET_VRING_KICK, 0 | VU_NOFD, NULL, 0, "SET_VRING_KICK queue 0, bit 8 (no fd)");
	k = canary_new();
	vu_u64(false, VU_SET_VRING_KICK, 4, &k.w, 1, "SET_VRING_KICK queue 4 with an fd");
	canary_expect_closed(&k, "SET_VRING_KICK queue 4");
	/* a kick fd that never runs dry would keep the daemon busy forever */
	{
		int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
		if (zero < 0)
			fail("/dev/zero: %s", strerror(errno));
		vu_u64(false, VU_SET_VRING_KICK, 0, &zero, 1, "SET_VRING_KICK queue 0 with /dev/zero");
		close(zero);
	}
	vu_u64(true, VU_SET_VRING_CALL, 0, &efd, 1, "SET_VRING_CALL queue 0");
	k = canary_new();
	vu_u64(false, VU_SET_VRING_CALL, 9, &k.w, 1, "SET_VRING_CALL queue 9 with an fd");
	canary_expect_closed(&k, "SET_VRING_CALL queue 9");
	vu_state(true, VU_SET_VRING_ENABLE, 0, 1, "SET_VRING_ENABLE {0, 1}");
	vu_state(true, VU_SET_VRING_ENABLE, 0, 0, "SET_VRING_ENABLE {0, 0}");
	vu_state(false, VU_SET_VRING_ENABLE, 4, 1, "SET_VRING_ENABLE {4, 1}");
	close(efd);
	proto_get_features_exact("GET_FEATURES at the end");
}

/* Set up the connection like init (all features), without enabling. */
static void proto_rings(bool enable)
{
	memset(&iopt, 0, sizeof iopt);
	iopt.qsize = 256;
	negotiate(true, true);
	set_features();
	set_memory(false);
	rings_setup(enable);
}

static void get_vring_base_exact(uint32_t qi, uint32_t want_last, const char *what)
{
	uint8_t b[8], want[20];
	put32(b, qi);
	put32(b + 4, 0);
	vu_send(VU_GET_VRING_BASE, VU_VERSION, b, 8, NULL, 0);
	want_reply(want, VU_GET_VRING_BASE, 8);
	put32(want + 12, qi);
	put32(want + 16, want_last);
	expect_reply_bytes(want, sizeof want, what);
}

static void step_proto_vring_base(void)
{
	int q1 = VIRTIO_CONSOLE_PORT0_TXQ;
	struct vq *q = &vq[q1];
	uint16_t pending;
	proto_rings(true);
	handshake(default_rx_bufs());
	tx_submit((const uint8_t *)"x", 1, 0);
	wait_q_idle(q1, "write");
	/* control transmitq: DEVICE_READY, PORT_READY, PORT_OPEN */
	get_vring_base_exact(VIRTIO_CONSOLE_CTRL_TXQ, 3, "GET_VRING_BASE(3) after the handshake");
	vq[VIRTIO_CONSOLE_CTRL_TXQ].active = false;
	/* control receiveq: PORT_ADD, CONSOLE_PORT, PORT_OPEN were popped */
	get_vring_base_exact(VIRTIO_CONSOLE_CTRL_RXQ, 3, "GET_VRING_BASE(2) after the handshake");
	vq[VIRTIO_CONSOLE_CTRL_RXQ].active = false;
	get_vring_base_exact((uint32_t)q1, 1, "GET_VRING_BASE(1) after one write");
	/* the ring is stopped: a new buffer must stay untouched */
	tx_submit((const uint8_t *)"y", 1, 0);
	vq_publish(q, true);
	pending = (uint16_t)(q->avail_idx - 1);
	q->active = false;	/* stopped: not ours to poll */
	service_window(300);
	if (gload16(q->used + 2) != q->last_used)
		fail("the device used a buffer on port0 transmitq after GET_VRING_BASE stopped it");
	get_vring_base_exact((uint32_t)q1, pending, "GET_VRING_BASE(1) while stopped");
	vu_state(false, VU_SET_VRING_BASE, 7, 0, "SET_VRING_BASE {7, 0}");
	/* restart from the returned base: the pending buffer gets used */
	ring_start(q1, pending);
	ring_enable(q1, 1);
	wait_q_idle(q1, "restarted port0 transmitq");
	proto_get_features_exact("GET_FEATURES at the end");
}

static void step_proto_vring_enable(void)
{
	struct vq *ctx = &vq[VIRTIO_CONSOLE_CTRL_TXQ];
	struct seg sg;
	uint8_t b[8];
	proto_rings(false);
	/* rings are set up but not enabled: DEVICE_READY must wait */
	crx_nbufs = CRX_MAX;
	crx_refill();
	put32(b, VIRTIO_CONSOLE_BAD_ID);
	b[4] = VIRTIO_CONSOLE_DEVICE_READY;
	b[5] = 0;
	b[6] = 1;
	b[7] = 0;
	gw(ctx_gpa(0), b, 8);
	ctx_busy[0] = true;
	sg = (struct seg){ ctx_gpa(0), 8, false };
	vq_add(ctx, &sg, 1, false, TK_CTX, 0);
	vq_publish(ctx, true);
	service_window(300);
	if (!ctx->inflight)
		fail("control transmitq was used before SET_VRING_ENABLE(3, 1)");
	vu_state(false, VU_SET_VRING_ENABLE, 4, 1, "SET_VRING_ENABLE {4, 1}");
	ring_enable(VIRTIO_CONSOLE_CTRL_TXQ, 1);
	wait_q_idle(VIRTIO_CONSOLE_CTRL_TXQ, "DEVICE_READY after enabling the control transmitq");
	service_window(300);
	if (cq_count)
		fail("PORT_ADD arrived on the control receiveq before it was enabled");
	ring_enable(VIRTIO_CONSOLE_CTRL_RXQ, 1);
	ctrl_expect(0, VIRTIO_CONSOLE_PORT_ADD, 1);
	ring_enable(VIRTIO_CONSOLE_PORT0_RXQ, 1);
	ring_enable(VIRTIO_CONSOLE_PORT0_TXQ, 1);
	rx0_nbufs = default_rx_bufs();
	rx0_refill();
	ctrl_send(0, VIRTIO_CONSOLE_PORT_READY, 1);
	ctrl_expect(0, VIRTIO_CONSOLE_CONSOLE_PORT, 1);
	ctrl_expect(0, VIRTIO_CONSOLE_PORT_OPEN, 1);
	ctrl_send(0, VIRTIO_CONSOLE_PORT_OPEN, 1);
	/* disabling a ring stops it too */
	ring_enable(VIRTIO_CONSOLE_PORT0_TXQ, 0);
	tx_submit((const uint8_t *)"z", 1, 0);
	vq_publish(&vq[1], true);
	vq[1].active = false;
	service_window(300);
	if (gload16(vq[1].used + 2) != vq[1].last_used)
		fail("port0 transmitq was used after SET_VRING_ENABLE(1, 0)");
	vq[1].active = true;
	ring_enable(VIRTIO_CONSOLE_PORT0_TXQ, 1);
	wait_q_idle(VIRTIO_CONSOLE_PORT0_TXQ, "port0 transmitq after SET_VRING_ENABLE(1, 1)");
}

static void step_proto_oversize(void)
{
	uint8_t b[12 + 256 + 8], want[VU_HDR_SIZE];
	int r;
	proto_base();
	/* the largest accepted payload: 268 bytes */
	config_req(0, 256, 0, 256, b);
	vu_send(VU_GET_CONFIG, VU_VERSION, b, 268, NULL, 0);
	want_reply(want, VU_GET_CONFIG, 0);
	expect_reply_bytes(want, VU_HDR_SIZE, "GET_CONFIG with a 268-byte payload");
	memset(b, 0, sizeof b);
	vu_send(VU_SET_CONFIG, VU_VERSION | VU_NEED_REPLY, b, 268, NULL, 0);
	(void)reply_u64(VU_SET_CONFIG, "SET_CONFIG offset 0 size 0, 268-byte payload");
	proto_get_features_exact("GET_FEATURES after 268-byte payloads");
	/* 269: the daemon drops the connection */
	memset(b, 0, sizeof b);
	r = vu_send_raw(sock, VU_SET_CONFIG, VU_VERSION, 269, b, 269, NULL, 0);
	(void)r;
	expect_eof_on(sock, "SET_CONFIG with a 269-byte payload");
	disconnect();
	connect_probe();
	proto_get_features_exact("GET_FEATURES on a new connection after the drop");
	/* a header claiming 4 GiB */
	r = vu_send_raw(sock, VU_SET_MEM_TABLE, VU_VERSION, 0xffffffffu, NULL, 0, NULL, 0);
	(void)r;
	expect_eof_on(sock, "SET_MEM_TABLE claiming 0xffffffff payload bytes");
	disconnect();
	connect_probe();
	proto_base();
	proto_get_features_exact("GET_FEATURES on a third connection");
}

static void step_proto_truncated(void)
{
	uint8_t b[24] = { 0 };
	int r;
	/* half a header, then close */
	proto_base();
	put32(b, VU_GET_FEATURES);
	put32(b + 4, VU_VERSION);
	r = send(sock, b, 6, MSG_NOSIGNAL);
	(void)r;
	disconnect();
	connect_probe();
	proto_get_features_exact("GET_FEATURES after a connection closed mid-header");
	/* a header announcing 40 bytes, 10 sent, then close */
	proto_base();
	memset(b, 0, sizeof b);
	r = vu_send_raw(sock, VU_SET_MEM_TABLE, VU_VERSION, 40, b, 10, &memfd, 1);
	(void)r;
	disconnect();
	connect_probe();
	proto_get_features_exact("GET_FEATURES after a connection closed mid-payload");
	/* and the new connection is fully usable */
	proto_rings(true);
	handshake(default_rx_bufs());
}

static void step_proto_second_frontend(void)
{
	int b;
	int r;
	proto_rings(true);
	b = connect_once();
	if (b < 0) {
		if (errno == ECONNREFUSED || errno == EAGAIN)
			goto first_ok;	/* refused outright: fine too */
		fail("second connect: %s", strerror(errno));
	}
	r = vu_send_raw(b, VU_GET_FEATURES, VU_VERSION, 0, NULL, 0, NULL, 0);
	(void)r;
	expect_eof_on(b, "second frontend on the same socket");
	close(b);
first_ok:
	proto_get_features_exact("GET_FEATURES on the first connection");
	handshake(default_rx_bufs());
	tx_submit((const uint8_t *)"first still works\n", 18, 0);
	wait_q_idle(VIRTIO_CONSOLE_PORT0_TXQ, "write on the first connection");
}

static void step_proto_stray_fds(void)
{
	struct canary k;
	proto_base();
	k = canary_new();
	vu_send(VU_GET_FEATURES, VU_VERSION, NULL, 0, &k.w, 1);
	expect_reply_u64_exact(VU_GET_FEATURES, WANT_FEATURES, "GET_FEATURES carrying an fd");
	canary_expect_closed(&k, "fd sent with GET_FEATURES");
	k = canary_new();
	vu_send(VU_SET_OWNER, VU_VERSION | VU_NEED_REPLY, NULL, 0, &k.w, 1);
	(void)reply_u64(VU_SET_OWNER, "SET_OWNER carrying an fd");
	canary_expect_closed(&k, "fd sent with SET_OWNER");
	k = canary_new();
	vu_send(99, VU_VERSION, NULL, 0, &k.w, 1);
	canary_expect_closed(&k, "fd sent with unknown request 99");
	proto_get_features_exact("GET_FEATURES at the end");
}

/* ctrl-send [--len=N] ID EVENT VALUE: a control message from the guest. */
static void step_ctrl_send(void)
{
	const char *o, *v;
	unsigned long long len = 8, id, ev, val;
	while ((o = opt_next())) {
		if ((v = opt_value(o, "--len")))
			len = parse_ull(v, "--len");
		else
			fail("ctrl-send: unknown option %s", o);
	}
	id = parse_ull(arg_next("ctrl-send ID"), "ID");
	ev = parse_ull(arg_next("ctrl-send EVENT"), "EVENT");
	val = parse_ull(arg_next("ctrl-send VALUE"), "VALUE");
	if (len < 1 || len > 8)
		fail("ctrl-send: --len must be 1..8");
	ctrl_send_len((uint32_t)id, (uint16_t)ev, (uint16_t)val, (uint32_t)len);
}

/* ctrl-give N: post N control receive buffers (at most 16), e.g. only
 * after the device has piled up what it owes a guest that gave none. */
static void step_ctrl_give(void)
{
	unsigned long long n = parse_ull(arg_next("ctrl-give N"), "N");
	need_rings();
	if (n > CRX_MAX || n > iopt.qsize)
		fail("ctrl-give: at most %u buffers", CRX_MAX < iopt.qsize ? CRX_MAX : iopt.qsize);
	crx_nbufs = (unsigned)n;
	crx_refill();
}

/* ctrl-expect ID EVENT VALUE [ID EVENT VALUE...]: the next control
 * messages are exactly these, in this order (used len 8); the buffers
 * they came in are posted again. */
static void step_ctrl_expect(void)
{
	unsigned long long id, ev, val;
	double d;
	do {
		id = parse_ull(arg_next("ctrl-expect ID"), "ID");
		ev = parse_ull(arg_next("ctrl-expect EVENT"), "EVENT");
		val = parse_ull(arg_next("ctrl-expect VALUE"), "VALUE");
		ctrl_expect((uint32_t)id, (uint16_t)ev, (uint16_t)val);
		crx_refill();
	} while (g_ai < g_argc && parse_num(g_argv[g_ai], &d));
}

/* ctrl-none [SECONDS]: no control message arrives within SECONDS
 * (default 0.5) although buffers are posted: a negative check, so a
 * window rather than a wait for an event. */
static void step_ctrl_none(void)
{
	double s = opt_seconds(0.5);
	service_window((int)(s * 1000));
	if (cq_count)
		fail("ctrl-none: control message id %u event %u (%s) value %u len %u",
		     cq[cq_head].id, cq[cq_head].event, evname(cq[cq_head].event),
		     cq[cq_head].value, cq[cq_head].len);
}

static void expect_closed_and_reconnect(const char *what);

/* Every request with a fixed payload, one byte short and empty: refused
 * with a failure ack, and an fd that came along is closed; GET_VRING_BASE,
 * whose reply cannot say no, closes the connection. */
static void step_proto_short(void)
{
	static const struct { uint32_t req, need; bool fd; } fixed[] = {
		{ VU_SET_FEATURES, 8, false },     { VU_SET_PROTOCOL_FEATURES, 8, false },
		{ VU_SET_VRING_NUM, 8, false },    { VU_SET_VRING_BASE, 8, false },
		{ VU_SET_VRING_ENABLE, 8, false },
		{ VU_SET_VRING_ADDR, 40, false },  { VU_SET_VRING_KICK, 8, true },
		{ VU_SET_VRING_CALL, 8, true },    { VU_SET_VRING_ERR, 8, true },
		{ VU_SET_MEM_TABLE, 40, true },    { VU_ADD_MEM_REG, 40, true },
		{ VU_REM_MEM_REG, 40, false },     { VU_SET_CONFIG, 12, false },
	};
	uint8_t b[40] = { 0 }, want[VU_HDR_SIZE];
	char what[96];
	size_t i;
	int pass;
	proto_base();
	for (i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
		for (pass = 0; pass < 2; pass++) {
			uint32_t size = pass ? 0 : fixed[i].need - 1;
			struct canary k = canary_new();
			snprintf(what, sizeof what, "request %u with %u payload bytes (needs %u)",
				 fixed[i].req, size, fixed[i].need);
			vu_fails(fixed[i].req, b, size, &k.w, fixed[i].fd ? 1 : 0, what);
			if (fixed[i].fd)
				canary_expect_closed(&k, what);
			else {
				close(k.w);
				close(k.r);
			}
		}
	}
	/* GET_CONFIG has its own reply: a failure is a header-only one */
	vu_send(VU_GET_CONFIG, VU_VERSION | VU_NEED_REPLY, b, 11, NULL, 0);
	want_reply(want, VU_GET_CONFIG, 0);
	expect_reply_bytes(want, VU_HDR_SIZE, "GET_CONFIG with 11 payload bytes");
	vu_send(VU_GET_VRING_BASE, VU_VERSION, b, 7, NULL, 0);
	expect_closed_and_reconnect("GET_VRING_BASE with 7 payload bytes");
	proto_get_features_exact("GET_FEATURES at the end");
}

/* Every vring request naming a queue the device does not have (but
 * GET_VRING_BASE: proto-get-vring-base-bad). */
static void step_proto_vring_index(void)
{
	static const uint32_t bad_idx[] = { 4, 255, 256, 65535, 65536, 0xffffffffu };
	static const uint32_t by_state[] = { VU_SET_VRING_NUM, VU_SET_VRING_BASE,
					     VU_SET_VRING_ENABLE };
	/* KICK/CALL/ERR: queue in bits 0-7, bit 8 "no fd", the rest must be 0 */
	static const uint64_t bad_fdarg[] = { 4, 255, 0x10000, 0xffffffffu, 1ull << 32,
					      ~0ull };
	static const uint32_t by_fd[] = { VU_SET_VRING_KICK, VU_SET_VRING_CALL,
					  VU_SET_VRING_ERR };
	uint8_t a[40] = { 0 };
	char what[96];
	size_t i, j;
	proto_base();
	vu_u64(true, VU_SET_FEATURES, WANT_FEATURES, NULL, 0, "SET_FEATURES");
	for (i = 0; i < sizeof bad_idx / sizeof bad_idx[0]; i++) {
		for (j = 0; j < sizeof by_state / sizeof by_state[0]; j++) {
			snprintf(what, sizeof what, "request %u on queue %u", by_state[j], bad_idx[i]);
			vu_state(false, by_state[j], bad_idx[i], 1, what);
		}
		put32(a, bad_idx[i]);
		snprintf(what, sizeof what, "SET_VRING_ADDR on queue %u", bad_idx[i]);
		vu_fails(VU_SET_VRING_ADDR, a, sizeof a, NULL, 0, what);
	}
	for (i = 0; i < sizeof bad_fdarg / sizeof bad_fdarg[0]; i++)
		for (j = 0; j < sizeof by_fd / sizeof by_fd[0]; j++) {
			struct canary k = canary_new();
			snprintf(what, sizeof what, "request %u with argument 0x%llx", by_fd[j],
				 (unsigned long long)bad_fdarg[i]);
			vu_u64(false, by_fd[j], bad_fdarg[i], &k.w, 1, what);
			canary_expect_closed(&k, what);
		}
	proto_get_features_exact("GET_FEATURES at the end");
}

static void vring_addr(int qi, uint64_t desc, uint64_t used, uint64_t avail, bool want_ok,
		       const char *what)
{
	uint8_t a[40] = { 0 };
	put32(a, (uint32_t)qi);
	put64(a + 8, desc);
	put64(a + 16, used);
	put64(a + 24, avail);
	if (want_ok)
		vu_ok(VU_SET_VRING_ADDR, a, sizeof a, NULL, 0, what);
	else
		vu_fails(VU_SET_VRING_ADDR, a, sizeof a, NULL, 0, what);
}

/* Ring addresses unaligned or outside memory are refused and leave the
 * running ring as it was. */
static void step_proto_vring_addr(void)
{
	struct vq *q = &vq[VIRTIO_CONSOLE_PORT0_TXQ];
	int qi = VIRTIO_CONSOLE_PORT0_TXQ;
	uint64_t d, u, a;
	proto_rings(true);
	handshake(default_rx_bufs());
	d = gpa2uaddr(q->desc);
	u = gpa2uaddr(q->used);
	a = gpa2uaddr(q->avail);
	vring_addr(qi, d + 8, u, a, false, "SET_VRING_ADDR: desc not 16-aligned");
	vring_addr(qi, d, u + 2, a, false, "SET_VRING_ADDR: used not 4-aligned");
	vring_addr(qi, d, u, a + 1, false, "SET_VRING_ADDR: avail not 2-aligned");
	vring_addr(qi, 0x30000000000ull, u, a, false, "SET_VRING_ADDR: desc outside memory");
	vring_addr(qi, d, UADDR0 + REGION_SIZE - 8, a, false,
		   "SET_VRING_ADDR: used ring running past its region");
	vring_addr(qi, d, u, 0xfffffffffffffff0ull, false, "SET_VRING_ADDR: avail wraps");
	/* the ring still runs where it was */
	tx_submit((const uint8_t *)"x", 1, 0);
	wait_q_idle(qi, "write after refused SET_VRING_ADDRs");
}

/* Memory tables with bad regions are refused and the old memory stays. */
static void step_proto_mem_bounds(void)
{
	static const struct { uint64_t gpa, size, uaddr, off; const char *what; } bad[] = {
		{ 0x40000000, 0, UADDR0, 0, "a zero-size region" },
		{ 0xfffffffffffff000ull, 0x2000, UADDR0, 0, "gpa + size wraps" },
		{ 0x40000000, 0x1000, 0xfffffffffffff000ull, 0, "uaddr + size wraps" },
		{ 0x40000000, 0x1000, UADDR0, 0xfffffffffffff800ull, "mmap_offset + size wraps" },
		{ 0x40000000, REGION_SIZE, UADDR0, MEM_SIZE, "past the end of its fd" },
		{ GPA_BASE + 0x1000, 0x1000, UADDR0, 0, "overlapping region 0" },
		{ BOUNDARY - 0x800, 0x1000, UADDR0, 0, "overlapping regions 0 and 1" },
	};
	uint8_t b[8 + 32 * 2];
	int fds[2] = { memfd, memfd };
	char what[96];
	size_t i;
	unsigned slot;
	proto_rings(true);
	handshake(default_rx_bufs());
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		/* SET_MEM_TABLE: region 0 as it is, then the bad one */
		memset(b, 0, sizeof b);
		put32(b, 2);
		region_bytes(b + 8, 0);
		put64(b + 40, bad[i].gpa);
		put64(b + 48, bad[i].size);
		put64(b + 56, bad[i].uaddr);
		put64(b + 64, bad[i].off);
		snprintf(what, sizeof what, "SET_MEM_TABLE with %s", bad[i].what);
		vu_fails(VU_SET_MEM_TABLE, b, sizeof b, fds, 2, what);
		/* ADD_MEM_REG of the bad one next to the memory in use */
		snprintf(what, sizeof what, "ADD_MEM_REG of %s", bad[i].what);
		vu_fails(VU_ADD_MEM_REG, b + 32, 40, fds, 1, what);
	}
	/* ADD_MEM_REG past the 32 slots: 30 more fit beside the two */
	for (slot = 2; slot <= 32; slot++) {
		memset(b, 0, 40);
		put64(b + 8, 0x40000000ull + slot * 0x10000ull);
		put64(b + 16, 0x1000);
		put64(b + 24, 0x30000000000ull + slot * 0x10000ull);
		snprintf(what, sizeof what, "ADD_MEM_REG into slot %u", slot);
		if (slot < 32)
			vu_ok(VU_ADD_MEM_REG, b, 40, fds, 1, what);
		else
			vu_fails(VU_ADD_MEM_REG, b, 40, fds, 1, "ADD_MEM_REG of a 33rd region");
	}
	/* the device still runs on the memory it had */
	tx_submit((const uint8_t *)"x", 1, 0);
	wait_q_idle(VIRTIO_CONSOLE_PORT0_TXQ, "write after refused memory changes");
	step_check_memory();
}

/* Rings set up and kicked before any memory table: nothing happens (and
 * nothing breaks) until the memory comes; then the console works. */
static void step_proto_kick_first(void)
{
	int q;
	memset(&iopt, 0, sizeof iopt);
	iopt.qsize = 256;
	negotiate(true, true);
	set_features();
	rings_setup(true);
	for (q = 0; q < NQ; q++)
		kick(&vq[q]);
	service_window(200);
	set_memory(false);
	handshake(default_rx_bufs());
}

/* ---- issue 12: reconnects, mandatory replies, exact payload sizes ------ */

/* The daemon answers a GET_QUEUE_NUM next: proof that nothing else (a
 * second ack) was queued before it. */
static void expect_in_step(const char *what)
{
	char w[160];
	snprintf(w, sizeof w, "GET_QUEUE_NUM after %s (a stray reply before it?)", what);
	vu_send(VU_GET_QUEUE_NUM, VU_VERSION, NULL, 0, NULL, 0);
	expect_reply_u64_exact(VU_GET_QUEUE_NUM, WANT_QUEUE_NUM, w);
}

/* The daemon closes the connection (no reply first); then a fresh one. */
static void expect_closed_and_reconnect(const char *what)
{
	expect_eof_on(sock, what);
	disconnect();
	connect_probe();
	proto_base();
}

/*
 * proto-reconnect-at-once: 100 times, the frontend goes away and a new one
 * connects at once, with no retry and no delay: idle, after half a header,
 * after a header and half its payload (with an fd), after whole messages
 * (one whose reply is never read).  Each new connection must be served:
 * its GET_FEATURES answered, never closed as "a second frontend".
 */
static void step_proto_reconnect_at_once(void)
{
	uint8_t b[40] = { 0 };
	char what[96];
	int i, r;
	for (i = 0; i < 100; i++) {
		switch (i % 4) {
		case 1:		/* half a header */
			put32(b, VU_GET_FEATURES);
			put32(b + 4, VU_VERSION);
			r = send(sock, b, 6, MSG_NOSIGNAL);
			break;
		case 2:		/* a header announcing 40 bytes, 10 of them */
			r = vu_send_raw(sock, VU_SET_MEM_TABLE, VU_VERSION, 40, b, 10, &memfd, 1);
			break;
		case 3:		/* whole messages, the last one's reply unread */
			r = vu_send_raw(sock, VU_SET_OWNER, VU_VERSION, 0, NULL, 0, NULL, 0);
			r = vu_send_raw(sock, VU_GET_FEATURES, VU_VERSION, 0, NULL, 0, NULL, 0);
			break;
		default:	/* nothing */
			r = 0;
			break;
		}
		(void)r;
		disconnect();
		sock = connect_once();
		if (sock < 0)
			fail("cycle %d: connect: %s", i, strerror(errno));
		snprintf(what, sizeof what, "cycle %d (after way %d of leaving): GET_FEATURES on "
			 "the new connection", i, i % 4);
		vu_send(VU_GET_FEATURES, VU_VERSION, NULL, 0, NULL, 0);
		expect_reply_u64_exact(VU_GET_FEATURES, WANT_FEATURES, what);
	}
}

/* proto-second-live-mid-message: a frontend that is alive, half a message
 * queued, still holds the socket: a second one is closed, then the first
 * completes its message and gets the reply. */
static void step_proto_second_live_mid_message(void)
{
	uint8_t h[VU_HDR_SIZE];
	int b, r;
	proto_base();
	put32(h, VU_GET_FEATURES);
	put32(h + 4, VU_VERSION);
	put32(h + 8, 0);
	if (send(sock, h, 6, MSG_NOSIGNAL) != 6)
		fail("sending half a header: %s", strerror(errno));
	b = connect_once();
	if (b < 0)
		fail("second connect: %s", strerror(errno));
	r = vu_send_raw(b, VU_GET_FEATURES, VU_VERSION, 0, NULL, 0, NULL, 0);
	(void)r;
	expect_eof_on(b, "a second frontend while the first is mid-message");
	close(b);
	if (send(sock, h + 6, VU_HDR_SIZE - 6, MSG_NOSIGNAL) != VU_HDR_SIZE - 6)
		fail("sending the rest of the header: %s", strerror(errno));
	expect_reply_u64_exact(VU_GET_FEATURES, WANT_FEATURES,
			       "GET_FEATURES completed after the second frontend was refused");
}

/* proto-get-vring-base-bad: GET_VRING_BASE for a queue the device lacks
 * cannot be answered (any reply would be a ring state): the connection is
 * closed, with or without need_reply. */
static void step_proto_get_vring_base_bad(void)
{
	uint8_t b[8];
	proto_base();
	put32(b, 4);
	put32(b + 4, 0);
	vu_send(VU_GET_VRING_BASE, VU_VERSION, b, 8, NULL, 0);
	expect_closed_and_reconnect("GET_VRING_BASE for queue 4 (the device has 4)");
	put32(b, 0xffffffffu);
	vu_send(VU_GET_VRING_BASE, VU_VERSION | VU_NEED_REPLY, b, 8, NULL, 0);
	expect_closed_and_reconnect("GET_VRING_BASE for queue 0xffffffff with need_reply");
	get_vring_base_exact(0, 0, "GET_VRING_BASE(0) on a fresh connection");
}

/* proto-unsupported-reply: requests the daemon does not support whose
 * frontend always waits for a reply of their own: the connection is
 * closed, never left waiting. */
static void step_proto_unsupported_reply(void)
{
	static const struct { uint32_t req, size, flags; const char *name; } reqs[] = {
		{ 22, 24, 0, "IOTLB_MSG" },
		{ 26, 8, 0, "CREATE_CRYPTO_SESSION" },
		{ 28, 0, 0, "POSTCOPY_ADVISE" },
		{ 30, 0, 0, "POSTCOPY_END" },
		{ 31, 24, 0, "GET_INFLIGHT_FD" },
		{ 40, 0, 0, "GET_STATUS" },
		{ 40, 0, VU_NEED_REPLY, "GET_STATUS with need_reply" },
		{ 41, 16, 0, "GET_SHARED_OBJECT" },
		{ 42, 8, 0, "SET_DEVICE_STATE_FD" },
		{ 43, 0, 0, "CHECK_DEVICE_STATE" },
	};
	uint8_t b[24] = { 0 };
	size_t i;
	proto_base();
	for (i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
		vu_send(reqs[i].req, VU_VERSION | reqs[i].flags, b, reqs[i].size, NULL, 0);
		expect_closed_and_reconnect(reqs[i].name);
	}
	proto_get_features_exact("GET_FEATURES at the end");
}

/* proto-need-reply-all: need_reply on every request the daemon handles
 * gets exactly one reply: an ack of 0 (or, for a GET, its own reply), and
 * on a refused or unsupported request without a reply of its own exactly
 * one failure ack. */
static void step_proto_need_reply_all(void)
{
	static const uint32_t unsupported[] = { VU_SET_LOG_BASE, VU_SET_LOG_FD, 19, 20, 23,
						27, 29, 32, 33, 35, 39, 99 };
	uint8_t b[8 + 64], cfg[12 + 12], want[VU_HDR_SIZE + 12 + 12];
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int pf[2], fds[2];
	size_t i;
	char what[64];
	if (efd < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pf) < 0)
		fail("eventfd/socketpair: %s", strerror(errno));
	proto_base();	/* SET_PROTOCOL_FEATURES and SET_OWNER acked there */
	expect_in_step("SET_PROTOCOL_FEATURES and SET_OWNER");
	vu_send(VU_GET_FEATURES, VU_VERSION | VU_NEED_REPLY, NULL, 0, NULL, 0);
	expect_reply_u64_exact(VU_GET_FEATURES, WANT_FEATURES, "GET_FEATURES with need_reply");
	expect_in_step("GET_FEATURES with need_reply");
	vu_send(VU_GET_PROTOCOL_FEATURES, VU_VERSION | VU_NEED_REPLY, NULL, 0, NULL, 0);
	expect_reply_u64_exact(VU_GET_PROTOCOL_FEATURES, WANT_PFEATURES,
			       "GET_PROTOCOL_FEATURES with need_reply");
	expect_in_step("GET_PROTOCOL_FEATURES with need_reply");
	vu_send(VU_GET_MAX_MEM_SLOTS, VU_VERSION | VU_NEED_REPLY, NULL, 0, NULL, 0);
	expect_reply_u64_exact(VU_GET_MAX_MEM_SLOTS, WANT_MEM_SLOTS,
			       "GET_MAX_MEM_SLOTS with need_reply");
	expect_in_step("GET_MAX_MEM_SLOTS with need_reply");
	config_req(0, 12, 0, 12, cfg);
	vu_send(VU_GET_CONFIG, VU_VERSION | VU_NEED_REPLY, cfg, 24, NULL, 0);
	expect_reply_bytes(want, want_config_reply(want, 0, 12), "GET_CONFIG with need_reply");
	expect_in_step("GET_CONFIG with need_reply");
	vu_u64(true, VU_SET_FEATURES, WANT_FEATURES, NULL, 0, "SET_FEATURES");
	expect_in_step("SET_FEATURES");
	mem_table(b, 2);
	fds[0] = fds[1] = memfd;
	vu_ok(VU_SET_MEM_TABLE, b, 8 + 64, fds, 2, "SET_MEM_TABLE");
	expect_in_step("SET_MEM_TABLE");
	memset(b, 0, 40);
	region_bytes(b + 8, 1);
	vu_ok(VU_REM_MEM_REG, b, 40, NULL, 0, "REM_MEM_REG");
	expect_in_step("REM_MEM_REG");
	vu_ok(VU_ADD_MEM_REG, b, 40, &memfd, 1, "ADD_MEM_REG");
	expect_in_step("ADD_MEM_REG");
	vu_state(true, VU_SET_VRING_NUM, 0, 256, "SET_VRING_NUM");
	expect_in_step("SET_VRING_NUM");
	vu_state(true, VU_SET_VRING_BASE, 0, 0, "SET_VRING_BASE");
	expect_in_step("SET_VRING_BASE");
	{
		uint8_t a[40] = { 0 };
		put64(a + 8, UADDR0);
		put64(a + 16, UADDR0 + 0x2000);
		put64(a + 24, UADDR0 + 0x1000);
		vu_ok(VU_SET_VRING_ADDR, a, 40, NULL, 0, "SET_VRING_ADDR");
		expect_in_step("SET_VRING_ADDR");
	}
	vu_u64(true, VU_SET_VRING_CALL, 0, &efd, 1, "SET_VRING_CALL");
	expect_in_step("SET_VRING_CALL");
	vu_u64(true, VU_SET_VRING_ERR, 0, &efd, 1, "SET_VRING_ERR");
	expect_in_step("SET_VRING_ERR");
	vu_u64(true, VU_SET_VRING_KICK, 0, &efd, 1, "SET_VRING_KICK");
	expect_in_step("SET_VRING_KICK");
	vu_state(true, VU_SET_VRING_ENABLE, 0, 1, "SET_VRING_ENABLE");
	expect_in_step("SET_VRING_ENABLE");
	vu_send(VU_GET_VRING_BASE, VU_VERSION | VU_NEED_REPLY, (uint32_t[]){ 0, 0 }, 8, NULL, 0);
	want_reply(want, VU_GET_VRING_BASE, 8);
	put32(want + 12, 0);
	put32(want + 16, 0);
	expect_reply_bytes(want, VU_HDR_SIZE + 8, "GET_VRING_BASE with need_reply");
	expect_in_step("GET_VRING_BASE with need_reply");
	vu_ok(VU_SET_BACKEND_REQ_FD, NULL, 0, &pf[0], 1, "SET_BACKEND_REQ_FD");
	expect_in_step("SET_BACKEND_REQ_FD");
	config_req(8, 4, 0, 4, cfg);
	cfg[12] = '.';
	vu_ok(VU_SET_CONFIG, cfg, 16, NULL, 0, "SET_CONFIG (emerg_wr)");
	expect_in_step("SET_CONFIG");
	vu_ok(VU_RESET_DEVICE, NULL, 0, NULL, 0, "RESET_DEVICE");
	expect_in_step("RESET_DEVICE");
	vu_ok(VU_RESET_OWNER, NULL, 0, NULL, 0, "RESET_OWNER");
	expect_in_step("RESET_OWNER");
	/* refused: exactly one failure ack */
	vu_state(false, VU_SET_VRING_NUM, 0, 3, "SET_VRING_NUM {0, 3}");
	expect_in_step("a refused SET_VRING_NUM");
	for (i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
		snprintf(what, sizeof what, "unsupported request %u", unsupported[i]);
		vu_fails(unsupported[i], b, 8, NULL, 0, what);
		expect_in_step(what);
	}
	close(efd);
	close(pf[0]);
	close(pf[1]);
}

/* proto-long: every fixed-size request with one byte too many is refused:
 * a failure ack (its fd closed), or, for a request with a reply of its own,
 * the connection closed (GET_CONFIG: the header-only failure reply); the
 * variable ones past their maximum or not matching their own sizes too. */
static void step_proto_long(void)
{
	/* valid contents, so that only the size is wrong */
	static const struct { uint32_t req, size; bool fd; } acked[] = {
		{ VU_SET_OWNER, 0, false },           { VU_RESET_OWNER, 0, false },
		{ VU_RESET_DEVICE, 0, false },        { VU_SET_BACKEND_REQ_FD, 0, true },
		{ VU_SET_FEATURES, 8, false },        { VU_SET_PROTOCOL_FEATURES, 8, false },
		{ VU_SET_VRING_NUM, 8, false },       { VU_SET_VRING_BASE, 8, false },
		{ VU_SET_VRING_ENABLE, 8, false },    { VU_SET_VRING_ADDR, 40, false },
		{ VU_SET_VRING_KICK, 8, true },       { VU_SET_VRING_CALL, 8, true },
		{ VU_SET_VRING_ERR, 8, true },        { VU_REM_MEM_REG, 40, false },
	};
	static const struct { uint32_t req, size; } replied[] = {
		{ VU_GET_FEATURES, 0 }, { VU_GET_PROTOCOL_FEATURES, 0 }, { VU_GET_QUEUE_NUM, 0 },
		{ VU_GET_MAX_MEM_SLOTS, 0 }, { VU_GET_VRING_BASE, 8 },
	};
	uint8_t b[MAX_PAYLOAD] = { 0 }, want[VU_HDR_SIZE];
	char what[96];
	size_t i;
	proto_base();
	vu_u64(true, VU_SET_FEATURES, WANT_FEATURES, NULL, 0, "SET_FEATURES");
	for (i = 0; i < sizeof acked / sizeof acked[0]; i++) {
		struct canary k = canary_new();
		memset(b, 0, sizeof b);
		switch (acked[i].req) {
		case VU_SET_FEATURES: put64(b, WANT_FEATURES); break;
		case VU_SET_PROTOCOL_FEATURES: put64(b, WANT_PFEATURES); break;
		case VU_SET_VRING_NUM: put32(b + 4, 256); break;
		case VU_SET_VRING_ENABLE: put32(b + 4, 1); break;
		case VU_REM_MEM_REG: region_bytes(b + 8, 1); break;
		}
		snprintf(what, sizeof what, "%s with %u payload bytes (needs %u)",
			 reqname(acked[i].req), acked[i].size + 1, acked[i].size);
		vu_fails(acked[i].req, b, acked[i].size + 1, &k.w, acked[i].fd ? 1 : 0, what);
		if (acked[i].fd) {
			canary_expect_closed(&k, what);
		} else {
			close(k.w);
			close(k.r);
		}
	}
	memset(b, 0, sizeof b);
	region_bytes(b + 8, 1);
	vu_fails(VU_ADD_MEM_REG, b, 41, &memfd, 1, "ADD_MEM_REG with 41 payload bytes");
	mem_table(b, 1);
	vu_fails(VU_SET_MEM_TABLE, b, 8 + 32 * 8 + 1, &memfd, 1,
		 "SET_MEM_TABLE with 265 payload bytes (8 regions at most: 264)");
	config_req(8, 4, 0, 5, b);
	vu_fails(VU_SET_CONFIG, b, 12 + 4 + 1, NULL, 0, "SET_CONFIG of 4 bytes with 5 after the header");
	config_req(0, 12, 0, 13, b);
	vu_send(VU_GET_CONFIG, VU_VERSION, b, 12 + 12 + 1, NULL, 0);
	want_reply(want, VU_GET_CONFIG, 0);
	expect_reply_bytes(want, VU_HDR_SIZE, "GET_CONFIG of 12 bytes with 13 after the header");
	expect_in_step("the refusals");
	for (i = 0; i < sizeof replied / sizeof replied[0]; i++) {
		memset(b, 0, sizeof b);
		snprintf(what, sizeof what, "%s with %u payload bytes (needs %u)",
			 reqname(replied[i].req), replied[i].size + 1, replied[i].size);
		vu_send(replied[i].req, VU_VERSION, b, replied[i].size + 1, NULL, 0);
		expect_closed_and_reconnect(what);
	}
	proto_get_features_exact("GET_FEATURES at the end");
}

/* expect-resize COLS ROWS: the next control message is RESIZE for port 0,
 * its payload in the spec's order (le16 cols, le16 rows). */
static void expect_resize(unsigned long long cols, unsigned long long rows)
{
	struct cmsg m = ctrl_next("RESIZE");
	unsigned gc, gr;
	if (m.id != 0 || m.event != VIRTIO_CONSOLE_RESIZE || m.len != 12)
		fail("control message id %u event %u (%s) used len %u, want RESIZE(0) with used len 12",
		     m.id, m.event, evname(m.event), m.len);
	gc = (unsigned)(m.payload[0] | m.payload[1] << 8);
	gr = (unsigned)(m.payload[2] | m.payload[3] << 8);
	if (gc != cols || gr != rows)
		fail("RESIZE says cols %u rows %u, want cols %llu rows %llu", gc, gr, cols, rows);
}

static void step_expect_resize(void)
{
	unsigned long long cols = parse_ull(arg_next("COLS"), "cols");
	expect_resize(cols, parse_ull(arg_next("ROWS"), "rows"));
}

/* emerg-write [--whole] CHAR: write emerg_wr, as a driver with
 * F_EMERG_WRITE does: the 4 bytes at offset 8, or (--whole, as QEMU
 * forwards a guest's write) the whole 12-byte config at offset 0. */
static void step_emerg_write(void)
{
	const char *o;
	bool whole = false;
	uint8_t b[12 + 12];
	size_t len;
	uint8_t *ch;
	while ((o = opt_next())) {
		if (!strcmp(o, "--whole"))
			whole = true;
		else
			fail("emerg-write: unknown option %s", o);
	}
	ch = unescape(arg_next("CHAR"), &len);
	if (len != 1)
		fail("emerg-write: CHAR must be one byte");
	if (whole) {
		config_req(0, 12, 0, 12, b);
		b[12 + 4] = 1;		/* max_nr_ports as read: read-only anyway */
		b[12 + 8] = ch[0];
		vu_ok(VU_SET_CONFIG, b, 24, NULL, 0, "SET_CONFIG (whole, emerg_wr)");
	} else {
		config_req(8, 4, 0, 4, b);
		b[12] = ch[0];
		vu_ok(VU_SET_CONFIG, b, 16, NULL, 0, "SET_CONFIG (emerg_wr)");
	}
}

/* expect-config-size COLS ROWS: GET_CONFIG shows this size. */
static void step_expect_config_size(void)
{
	unsigned long long cols = parse_ull(arg_next("COLS"), "cols");
	unsigned long long rows = parse_ull(arg_next("ROWS"), "rows");
	uint8_t b[12 + 12], want[VU_HDR_SIZE + 12 + 12];
	size_t n;
	config_req(0, 12, 0, 12, b);
	vu_send(VU_GET_CONFIG, VU_VERSION, b, 24, NULL, 0);
	n = want_config_reply(want, 0, 12);
	want[24] = (uint8_t)cols;
	want[25] = (uint8_t)(cols >> 8);
	want[26] = (uint8_t)rows;
	want[27] = (uint8_t)(rows >> 8);
	expect_reply_bytes(want, n, "GET_CONFIG with the console's size");
}

static bool cond_config_change(void *arg)
{
	(void)arg;
	return config_changes > 0;
}

/* expect-config-change [SECONDS]: CONFIG_CHANGE_MSG on the backend channel. */
static void step_expect_config_change(void)
{
	double secs = opt_seconds(timeout_s);
	if (!service(deadline_in(secs), cond_config_change, NULL, false))
		fail("no CONFIG_CHANGE_MSG within %g s", secs);
	config_changes--;
}

/* clear-nonblock: a hostile frontend clears O_NONBLOCK on the kick fds
 * and call pipes it shares with the daemon (an fd sent is one file
 * description on both sides): the daemon must still never block. */
static void step_clear_nonblock(void)
{
	int q, fds[2], i, fl;
	need_rings();
	for (q = 0; q < NQ; q++) {
		/* an eventfd call fd is also the one we read: keep ours
		 * non-blocking there, and clear only a call pipe's write end */
		fds[0] = vq[q].kick_r;
		fds[1] = vq[q].call_w;
		for (i = 0; i < (vq[q].call_w != vq[q].call_r ? 2 : 1); i++) {
			fl = fcntl(fds[i], F_GETFL);
			if (fl < 0 || fcntl(fds[i], F_SETFL, fl & ~O_NONBLOCK) < 0)
				fail("fcntl: %s", strerror(errno));
		}
	}
}

/* ---------------------------------------------------------------------- */
/* main                                                                    */

struct step { const char *name; void (*fn)(void); };

static const struct step steps[] = {
	{ "init", step_init },
	{ "handshake", step_handshake },
	{ "write", step_write },
	{ "write-chain", step_write_chain },
	{ "write-indirect", step_write_indirect },
	{ "write-bytes", step_write_bytes },
	{ "expect-resize", step_expect_resize },
	{ "emerg-write", step_emerg_write },
	{ "expect-config-size", step_expect_config_size },
	{ "expect-config-change", step_expect_config_change },
	{ "write-burst", step_write_burst },
	{ "clear-nonblock", step_clear_nonblock },
	{ "expect", step_expect },
	{ "expect-all", step_expect_all },
	{ "expect-bytes", step_expect_bytes },
	{ "read-bytes", step_read_bytes },
	{ "echo-loop", step_echo_loop },
	{ "check-memory", step_check_memory },
	{ "reset", step_reset },
	{ "reset-device", step_reset_device },
	{ "close", step_close },
	{ "reconnect", step_reconnect },
	{ "expect-eof", step_expect_eof },
	{ "hold", step_hold },
	{ "corrupt-head", step_corrupt_head },
	{ "corrupt-next", step_corrupt_next },
	{ "desc-loop", step_desc_loop },
	{ "desc-oob", step_desc_oob },
	{ "desc-oob-edge", step_desc_oob_edge },
	{ "desc-wrap", step_desc_wrap },
	{ "avail-jump", step_avail_jump },
	{ "indirect-bad-len", step_indirect_bad_len },
	{ "indirect-nested", step_indirect_nested },
	{ "indirect-huge", step_indirect_huge },
	{ "desc-empty", step_desc_empty },
	{ "desc-wrong-dir", step_desc_wrong_dir },
	{ "indirect-next", step_indirect_next },
	{ "ctrl-send", step_ctrl_send },
	{ "ctrl-give", step_ctrl_give },
	{ "ctrl-expect", step_ctrl_expect },
	{ "ctrl-none", step_ctrl_none },
	{ "proto-short", step_proto_short },
	{ "proto-vring-index", step_proto_vring_index },
	{ "proto-vring-addr", step_proto_vring_addr },
	{ "proto-mem-bounds", step_proto_mem_bounds },
	{ "proto-kick-first", step_proto_kick_first },
	{ "proto-features", step_proto_features },
	{ "proto-protocol-features", step_proto_protocol_features },
	{ "proto-misc", step_proto_misc },
	{ "proto-config", step_proto_config },
	{ "proto-unknown", step_proto_unknown },
	{ "proto-mem-table", step_proto_mem_table },
	{ "proto-mem-reg", step_proto_mem_reg },
	{ "proto-vring", step_proto_vring },
	{ "proto-vring-base", step_proto_vring_base },
	{ "proto-vring-enable", step_proto_vring_enable },
	{ "proto-oversize", step_proto_oversize },
	{ "proto-truncated", step_proto_truncated },
	{ "proto-second-frontend", step_proto_second_frontend },
	{ "proto-stray-fds", step_proto_stray_fds },
	{ "proto-reconnect-at-once", step_proto_reconnect_at_once },
	{ "proto-second-live-mid-message", step_proto_second_live_mid_message },
	{ "proto-get-vring-base-bad", step_proto_get_vring_base_bad },
	{ "proto-unsupported-reply", step_proto_unsupported_reply },
	{ "proto-need-reply-all", step_proto_need_reply_all },
	{ "proto-long", step_proto_long },
};

int main(int argc, char **argv)
{
	int i;
	size_t k;
	signal(SIGPIPE, SIG_IGN);
	t_start = now_ms();
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage_text, stdout);
			return 0;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			verbose = 1;
		} else if (!strncmp(a, "--timeout=", 10)) {
			double d;
			if (!parse_num(a + 10, &d) || d <= 0)
				fail("bad --timeout");
			timeout_s = d;
		} else if (!strcmp(a, "--pattern") && i + 1 < argc) {
			unsigned long long n = parse_ull(argv[i + 1], "--pattern count"), j;
			uint8_t b[BUF_SIZE];
			for (j = 0; j < n;) {
				size_t l = n - j < sizeof b ? (size_t)(n - j) : sizeof b, x;
				for (x = 0; x < l; x++)
					b[x] = data_pat(j + x);
				if (fwrite(b, 1, l, stdout) != l)
					return 1;
				j += l;
			}
			return fflush(stdout) ? 1 : 0;
		} else {
			fprintf(stderr, "frontend: unknown option %s\n%s", a, usage_text);
			return 2;
		}
	}
	if (argc - i < 2) {
		fputs(usage_text, stderr);
		return 2;
	}
	sock_path = argv[i++];
	for (k = 0; k < NQ; k++)
		vq[k].kick_r = vq[k].kick_w = vq[k].call_r = vq[k].call_w = -1;
	g_argv = argv;
	g_argc = argc;
	mem_setup();
	connect_probe();
	for (g_ai = i; g_ai < argc;) {
		const char *name = argv[g_ai++];
		for (k = 0; k < sizeof steps / sizeof steps[0]; k++)
			if (!strcmp(steps[k].name, name))
				break;
		step_no++;
		cur_step = name;
		if (k == sizeof steps / sizeof steps[0])
			fail("unknown step \"%s\" (see --help)", name);
		note("step %d: %s", step_no, name);
		steps[k].fn();
		/* A control message the next step waits for may arrive while
		 * this one runs (a client's resize races the write before). */
		if (cq_count && !(g_ai < argc && !strcmp(argv[g_ai], "expect-resize"))) {
			struct cmsg *m = &cq[cq_head];
			fail("unexpected control message id %u event %u (%s) value %u len %u",
			     m->id, m->event, evname(m->event), m->value, m->len);
		}
	}
	return 0;
}
