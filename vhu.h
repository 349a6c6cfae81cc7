/*
 * vhu.h - the vhost-user backend side: one listening socket, the frontend
 * connection on it, guest memory, and split virtqueues.
 *
 * Contract.  The caller owns the select() loop.  Every pass it calls
 * vhu_add_fds() to put this device's fds (the listening socket or the
 * frontend connection, and the kick fd of every started ring) into the read
 * set, and after select() vhu_serve() to handle whichever were ready.  vhu
 * never blocks: the connection is non-blocking and a message is assembled
 * across passes.  Requests are handled one small function each, found in
 * one table that also holds each request's payload size (checked before
 * the handler runs) and how it is refused; replies follow
 * docs/interop/vhost-user.rst exactly.
 *
 * Replies.  A request that has a reply of its own (every GET_*) gets
 * exactly that one reply; any other gets exactly one ack (u64 0 done,
 * non-zero refused) when its need_reply flag is set, whether or not
 * REPLY_ACK was negotiated, and nothing otherwise.  A refused GET_CONFIG
 * is answered without payload, as vhost-user says; any other request
 * whose reply the frontend waits for (GET_VRING_BASE for a queue the
 * device lacks, a request we do not support such as GET_STATUS) closes the
 * connection with one line on stderr: no frontend is left waiting.
 *
 * Connections.  The connection is served before the listening socket, and
 * read until it has nothing more (or ends): a frontend that left is seen
 * gone before a new one is judged, and only a live one makes the next
 * refused.
 *
 * The device (the console) plugs in through struct vhu_ops: its feature
 * bits, queue count and config space, and callbacks when a queue has work
 * (kicked, or just started) and when the device must return to power-on
 * state (the frontend left or sent RESET_*).
 *
 * Guest input is untrusted: every ring index, descriptor, length and
 * address is checked.  A ring that breaks the rules marks the device
 * "broken": a message on stderr, error fds signalled, the queues stop until
 * the frontend resets the device or reconnects.  The daemon goes on.
 *
 * Tracing (trace.h): with d->trace set (the caller sets it after
 * vhu_init()), every request and reply is traced and, at TRACE_RING, every
 * kick, chain taken, returned or put back, and notification sent.
 */
#ifndef VHU_H
#define VHU_H

#include <stddef.h>
#include <stdint.h>
#include <sys/select.h>
#include <sys/uio.h>

#include "virtio.h"

/* Backend -> frontend requests on the backend channel. */
#define VHOST_USER_BACKEND_CONFIG_CHANGE_MSG 2

/* vhost-user requests (frontend -> backend), as named in vhost-user.rst. */
enum vhu_request {
	VHOST_USER_GET_FEATURES = 1,
	VHOST_USER_SET_FEATURES = 2,
	VHOST_USER_SET_OWNER = 3,
	VHOST_USER_RESET_OWNER = 4,
	VHOST_USER_SET_MEM_TABLE = 5,
	VHOST_USER_SET_LOG_BASE = 6,
	VHOST_USER_SET_LOG_FD = 7,
	VHOST_USER_SET_VRING_NUM = 8,
	VHOST_USER_SET_VRING_ADDR = 9,
	VHOST_USER_SET_VRING_BASE = 10,
	VHOST_USER_GET_VRING_BASE = 11,
	VHOST_USER_SET_VRING_KICK = 12,
	VHOST_USER_SET_VRING_CALL = 13,
	VHOST_USER_SET_VRING_ERR = 14,
	VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	VHOST_USER_GET_QUEUE_NUM = 17,
	VHOST_USER_SET_VRING_ENABLE = 18,
	VHOST_USER_SEND_RARP = 19,
	VHOST_USER_NET_SET_MTU = 20,
	VHOST_USER_SET_BACKEND_REQ_FD = 21,
	VHOST_USER_IOTLB_MSG = 22,
	VHOST_USER_SET_VRING_ENDIAN = 23,
	VHOST_USER_GET_CONFIG = 24,
	VHOST_USER_SET_CONFIG = 25,
	VHOST_USER_CREATE_CRYPTO_SESSION = 26,
	VHOST_USER_CLOSE_CRYPTO_SESSION = 27,
	VHOST_USER_POSTCOPY_ADVISE = 28,
	VHOST_USER_POSTCOPY_LISTEN = 29,
	VHOST_USER_POSTCOPY_END = 30,
	VHOST_USER_GET_INFLIGHT_FD = 31,
	VHOST_USER_SET_INFLIGHT_FD = 32,
	VHOST_USER_GPU_SET_SOCKET = 33,
	VHOST_USER_RESET_DEVICE = 34,
	VHOST_USER_VRING_KICK = 35,
	VHOST_USER_GET_MAX_MEM_SLOTS = 36,
	VHOST_USER_ADD_MEM_REG = 37,
	VHOST_USER_REM_MEM_REG = 38,
	VHOST_USER_SET_STATUS = 39,
	VHOST_USER_GET_STATUS = 40,
	VHOST_USER_GET_SHARED_OBJECT = 41,
	VHOST_USER_SET_DEVICE_STATE_FD = 42,
	VHOST_USER_CHECK_DEVICE_STATE = 43,
	VHOST_USER_REQUEST_MAX
};

/* Header flags. */
#define VHOST_USER_VERSION          0x1
#define VHOST_USER_VERSION_MASK     0x3
#define VHOST_USER_REPLY_MASK       0x4
#define VHOST_USER_NEED_REPLY_MASK  0x8

/* GET_FEATURES bit 30: the frontend may use GET/SET_PROTOCOL_FEATURES. */
#define VHOST_USER_F_PROTOCOL_FEATURES 30

/* Protocol feature bits. */
#define VHOST_USER_PROTOCOL_F_MQ                  0
#define VHOST_USER_PROTOCOL_F_LOG_SHMFD           1
#define VHOST_USER_PROTOCOL_F_REPLY_ACK           3
#define VHOST_USER_PROTOCOL_F_BACKEND_REQ         5
#define VHOST_USER_PROTOCOL_F_CONFIG              9
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE       13
#define VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS 15
#define VHOST_USER_PROTOCOL_F_STATUS             16

#define VHOST_USER_HDR_SIZE        12
#define VHOST_USER_MAX_FDS          8
#define VHOST_USER_CONFIG_HDR_SIZE 12
#define VHOST_USER_MAX_CONFIG_SIZE 256
#define VHOST_MEMORY_BASELINE_NREGIONS 8
#define VHOST_USER_VRING_IDX_MASK  0xffu
#define VHOST_USER_VRING_NOFD_MASK (1u << 8)
/* The largest payload we accept: GET/SET_CONFIG with 256 bytes of data. */
#define VHU_MAX_PAYLOAD (VHOST_USER_CONFIG_HDR_SIZE + VHOST_USER_MAX_CONFIG_SIZE)

/* Transport feature bits (virtio spec 6): virtio.h. */

/* Split virtqueue (virtio spec 2.7). */
#define VIRTQ_DESC_F_NEXT      1
#define VIRTQ_DESC_F_WRITE     2
#define VIRTQ_DESC_F_INDIRECT  4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1
#define VIRTQ_MAX_SIZE 32768

#define VHU_MAX_QUEUES    64     /* 2 * (max_nr_ports + 1) for up to 31 ports */
#define VHU_MAX_MEM_SLOTS 32     /* answer to GET_MAX_MEM_SLOTS */
#define VHU_MAX_SEGS      1024   /* iovecs in one element (IOV_MAX on Linux) */

struct vhu_region {
	uint64_t gpa, size, uaddr, mmap_offset;
	uint8_t *mmap_addr;      /* start of the mapping (file offset 0) */
	size_t mmap_size;
};

struct vhu_vring {
	unsigned num;            /* queue size; 0 until SET_VRING_NUM */
	int kick_fd, call_fd, err_fd;
	int started;             /* kick fd received, not stopped since */
	int enabled;             /* SET_VRING_ENABLE (or implied, without bit 30) */
	int addr_set;
	uint64_t desc_uaddr, avail_uaddr, used_uaddr;
	uint8_t *desc, *avail, *used;   /* host addresses; NULL = not mapped */
	uint16_t last_avail;     /* next avail entry we will read */
	uint16_t used_idx;       /* next used entry we will write */
	uint16_t signalled_used; /* used idx at our last notification */
	int signalled_used_valid;
	int notify_pending;      /* pushed since the last notification */
	int again;               /* the device stopped early: run it next pass */
};

/* One chain: device-readable segments first, then device-writable ones. */
struct vhu_elem {
	uint16_t head;
	unsigned out_num, in_num;        /* segment counts */
	size_t out_len, in_len;          /* byte counts */
	struct iovec iov[VHU_MAX_SEGS];  /* out segments, then in segments */
};

struct vhu_ops {
	uint64_t features;       /* device feature bits offered */
	unsigned num_queues;
	uint32_t config_size;
	/* Fill/accept config bytes [off, off+len); 0 ok, -1 refused. */
	int (*get_config)(void *opaque, uint8_t *buf, uint32_t off, uint32_t len);
	int (*set_config)(void *opaque, const uint8_t *buf, uint32_t off, uint32_t len);
	/* Queue q may have work: it was kicked, started or enabled. */
	void (*queue_event)(void *opaque, unsigned q);
	/* Back to power-on state: frontend gone, RESET_OWNER/RESET_DEVICE, or
	 * a ring was stopped by GET_VRING_BASE (q; -1 for the whole device). */
	void (*reset)(void *opaque, int q);
	/* A frontend connected (up 1) or left (up 0, after reset), for the
	 * device to tell its users; may be NULL.  Not called at vhu_close(). */
	void (*connected)(void *opaque, int up);
};

struct vhu_msg {
	uint32_t request, flags, size;
	uint8_t payload[VHU_MAX_PAYLOAD];
	int fds[VHOST_USER_MAX_FDS];
	unsigned nfds;
};

/* How the connection of an adopted frontend (vhu_adopt) ended. */
enum vhu_end {
	VHU_END_NONE,      /* it has not */
	VHU_END_ORDERLY,   /* the frontend closed it between messages */
	VHU_END_ERROR      /* a protocol error, or closed mid-message */
};

struct vhu_dev {
	char name[32];           /* "device 0", for messages */
	char path[108];          /* the listening socket's path */
	int listen_fd, conn_fd, backend_fd;
	int adopted;             /* serving a connection given with --fd */
	enum vhu_end ended;      /* adopted, and it ended: how */
	unsigned max_queue_size;
	uint64_t features;           /* acked by SET_FEATURES */
	uint64_t protocol_features;  /* acked by SET_PROTOCOL_FEATURES */
	int broken;
	int trace;               /* --trace level (trace.h); 0: off */
	unsigned nregions;
	struct vhu_region regions[VHU_MAX_MEM_SLOTS];
	struct vhu_vring vq[VHU_MAX_QUEUES];
	uint8_t rx_hdr[VHOST_USER_HDR_SIZE];
	struct vhu_msg rx;       /* message being assembled */
	size_t rx_have;          /* header + payload bytes in rx so far */
	const struct vhu_ops *ops;
	void *opaque;
};

/* Set up (no fds yet); vhu_listen() binds PATH, replacing a stale socket
 * file and refusing one that another process listens on.  Returns 0, or -1
 * with a reason in err. */
void vhu_init(struct vhu_dev *d, unsigned index, const struct vhu_ops *ops,
              void *opaque, unsigned max_queue_size);
int vhu_listen(struct vhu_dev *d, const char *path, char *err, size_t errlen);
/* Serve fd, a connected socket a management layer passed (--fd), instead
 * of listening; when it ends, d->ended says how (the daemon exits then).
 * Returns -1 with a reason in err if fd is not a usable socket (the
 * reason does not name fd: the caller says where it came from). */
int vhu_adopt(struct vhu_dev *d, int fd, char *err, size_t errlen);
/* Close everything and unlink the socket (at exit). */
void vhu_close(struct vhu_dev *d);

int vhu_add_fds(struct vhu_dev *d, fd_set *rd, int maxfd);
void vhu_serve(struct vhu_dev *d, const fd_set *rd);
/*
 * Fairness: a device handles a bounded number of chains per call and, when
 * more are waiting, asks for queue_event(q) again on the next pass instead
 * of waiting for a kick.  While any queue waits so, the loop must poll
 * rather than block: vhu_has_work() says so.
 */
void vhu_queue_again(struct vhu_dev *d, unsigned q);
int vhu_has_work(const struct vhu_dev *d);
/* Deliver the notifications deferred by vhu_queue_push() this pass. */
void vhu_flush_notify(struct vhu_dev *d);

int vhu_has_feature(const struct vhu_dev *d, unsigned bit);
/* Tell the frontend that the config space changed (CONFIG_CHANGE_MSG on
 * the backend channel); 0 sent, -1 no channel or it failed (logged). */
int vhu_config_changed(struct vhu_dev *d);

/*
 * Virtqueues, for the device.  A queue that is not running (stopped,
 * disabled, unmapped, or the device broken) simply looks empty.
 *
 * Take the next chain: 1 got one, 0 ring empty (or not running), -1 the
 * ring is corrupt (the device is now broken).
 */
int vhu_queue_pop(struct vhu_dev *d, unsigned q, struct vhu_elem *e);
/* Like pop, but leaves the chain in the ring: to size a read first. */
int vhu_queue_peek(struct vhu_dev *d, unsigned q, struct vhu_elem *e);
/* Return a chain to the guest with len bytes written; the notification is
 * sent by vhu_flush_notify() (one per batch). */
void vhu_queue_push(struct vhu_dev *d, unsigned q, const struct vhu_elem *e,
                    uint32_t len);
/* The same by head alone, for a device that keeps several chains popped
 * (their segments copied out of the scratch element). */
void vhu_queue_complete(struct vhu_dev *d, unsigned q, uint16_t head,
                        uint32_t len);
/* Put back the last n chains popped and not pushed: the next pops take
 * them again (a read that filled fewer buffers than were taken). */
void vhu_queue_unpop(struct vhu_dev *d, unsigned q, unsigned n);
void vhu_set_broken(struct vhu_dev *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Copy between a flat buffer and an element's segments. */
size_t vhu_elem_to_buf(const struct vhu_elem *e, void *buf, size_t len);
size_t vhu_buf_to_elem(const struct vhu_elem *e, const void *buf, size_t len);


#endif
