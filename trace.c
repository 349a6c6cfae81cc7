/*
 * trace.c - the --trace printers: vhost-user messages, control messages
 * and ring events decoded into one line each.  See trace.h.
 *
 * Layouts are those of docs/interop/vhost-user.rst (messages, in the
 * host's byte order) and of the virtio spec 5.3.6.2 (control messages,
 * little-endian).  A request is traced before dispatch() checks it, so
 * every decoder looks only at the bytes the payload really has.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "le.h"
#include "trace.h"
#include "util.h"
#include "virtio_console.h"

/* Room for a decoded line; logmsg() cuts (and says so) beyond 4 KiB. */
#define TRACE_LINE 1024

/* The transport's and the console's feature bits (virtio spec 6, 5.3.3),
 * and vhost-user's bit 30. */
static const char *const feature_names[64] = {
	[VIRTIO_CONSOLE_F_SIZE] = "CONSOLE_F_SIZE",
	[VIRTIO_CONSOLE_F_MULTIPORT] = "CONSOLE_F_MULTIPORT",
	[VIRTIO_CONSOLE_F_EMERG_WRITE] = "CONSOLE_F_EMERG_WRITE",
	[24] = "NOTIFY_ON_EMPTY",
	[27] = "ANY_LAYOUT",
	[VIRTIO_RING_F_INDIRECT_DESC] = "RING_F_INDIRECT_DESC",
	[VIRTIO_RING_F_EVENT_IDX] = "RING_F_EVENT_IDX",
	[VHOST_USER_F_PROTOCOL_FEATURES] = "PROTOCOL_FEATURES",
	[VIRTIO_F_VERSION_1] = "VERSION_1",
	[33] = "ACCESS_PLATFORM",
	[34] = "RING_PACKED",
	[35] = "IN_ORDER",
	[36] = "ORDER_PLATFORM",
	[37] = "SR_IOV",
	[38] = "NOTIFICATION_DATA",
	[39] = "NOTIF_CONFIG_DATA",
	[40] = "RING_RESET",
};

/* vhost-user's protocol feature bits, as vhost-user.rst numbers them. */
static const char *const protocol_feature_names[64] = {
	"PROTOCOL_F_MQ", "PROTOCOL_F_LOG_SHMFD", "PROTOCOL_F_RARP",
	"PROTOCOL_F_REPLY_ACK", "PROTOCOL_F_NET_MTU", "PROTOCOL_F_BACKEND_REQ",
	"PROTOCOL_F_CROSS_ENDIAN", "PROTOCOL_F_CRYPTO_SESSION",
	"PROTOCOL_F_PAGEFAULT", "PROTOCOL_F_CONFIG",
	"PROTOCOL_F_BACKEND_SEND_FD", "PROTOCOL_F_HOST_NOTIFIER",
	"PROTOCOL_F_INFLIGHT_SHMFD", "PROTOCOL_F_RESET_DEVICE",
	"PROTOCOL_F_INBAND_NOTIFICATIONS", "PROTOCOL_F_CONFIGURE_MEM_SLOTS",
	"PROTOCOL_F_STATUS", "PROTOCOL_F_XEN_MMAP", "PROTOCOL_F_SHARED_OBJECT",
	"PROTOCOL_F_DEVICE_STATE",
};

/* Control events (virtio spec 5.3.6.2), by the names Linux and QEMU use. */
static const char *const ctrl_event_names[] = {
	[VIRTIO_CONSOLE_DEVICE_READY] = "DEVICE_READY",
	[VIRTIO_CONSOLE_PORT_ADD] = "PORT_ADD",
	[VIRTIO_CONSOLE_PORT_REMOVE] = "PORT_REMOVE",
	[VIRTIO_CONSOLE_PORT_READY] = "PORT_READY",
	[VIRTIO_CONSOLE_CONSOLE_PORT] = "CONSOLE_PORT",
	[VIRTIO_CONSOLE_RESIZE] = "RESIZE",
	[VIRTIO_CONSOLE_PORT_OPEN] = "PORT_OPEN",
	[VIRTIO_CONSOLE_PORT_NAME] = "PORT_NAME",
};

/* Append printf-style to the line being built; a full line stays full. */
static void
put(char *line, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
put(char *line, size_t len, const char *fmt, ...)
{
	size_t at = strlen(line);
	va_list ap;

	if (at + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(line + at, len - at, fmt, ap);
	va_end(ap);
}

/* " 0x... (NAME NAME bit 47)": the value, then each bit set by name. */
static void
put_bits(char *line, size_t len, uint64_t v, const char *const names[64])
{
	const char *sep = " (";
	unsigned b;

	put(line, len, " 0x%llx", (unsigned long long)v);
	for (b = 0; b < 64; b++) {
		if (!(v >> b & 1))
			continue;
		if (names[b])
			put(line, len, "%s%s", sep, names[b]);
		else
			put(line, len, "%sbit %u", sep, b);
		sep = " ";
	}
	if (v)
		put(line, len, ")");
}

static uint64_t
get_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

static uint32_t
get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

/* Config bytes, in hex: they are the guest's and the frontend's. */
static void
put_hex(char *line, size_t len, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		put(line, len, "%s%02x", i ? "" : " ", p[i]);
}

/* One region of SET_MEM_TABLE or ADD/REM_MEM_REG (32 bytes). */
static void
put_region(char *line, size_t len, const uint8_t *p)
{
	put(line, len, " gpa 0x%llx size 0x%llx uaddr 0x%llx offset 0x%llx",
	    (unsigned long long)get_u64(p), (unsigned long long)get_u64(p + 8),
	    (unsigned long long)get_u64(p + 16), (unsigned long long)get_u64(p + 24));
}

/* SET_MEM_TABLE: the count, then each region that the payload holds. */
static void
put_mem_table(char *line, size_t len, const struct vhu_msg *m)
{
	uint32_t n, i;

	n = get_u32(m->payload);
	put(line, len, " %u region%s", n, n == 1 ? "" : "s");
	for (i = 0; i < n && 8 + 32 * (i + 1) <= m->size; i++) {
		put(line, len, "; %u:", i);
		put_region(line, len, m->payload + 8 + 32 * i);
	}
	if (i < n)
		put(line, len, "; the payload ends after %u", i);
}

/* SET_VRING_KICK/CALL/ERR: the queue in bits 0-7, bit 8 "no fd". */
static void
put_vring_fd(char *line, size_t len, uint64_t v)
{
	put(line, len, " q%u%s", (unsigned)(v & VHOST_USER_VRING_IDX_MASK),
	    v & VHOST_USER_VRING_NOFD_MASK ? " no fd (polling)" : "");
	if (v & ~(uint64_t)(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD_MASK))
		put(line, len, " (argument 0x%llx)", (unsigned long long)v);
}

/* The payload of request m, as far as it goes.  One case per request in
 * one switch, as dispatch() has one handler per request: long, but each
 * case is a line or two and the reader finds a request where vhu.c would
 * have it. */
static void
put_request_payload(char *line, size_t len, const struct vhu_msg *m)
{
	const uint8_t *p = m->payload;

	switch (m->request) {
	case VHOST_USER_SET_FEATURES:
		if (m->size >= 8)
			put_bits(line, len, get_u64(p), feature_names);
		return;
	case VHOST_USER_SET_PROTOCOL_FEATURES:
		if (m->size >= 8)
			put_bits(line, len, get_u64(p), protocol_feature_names);
		return;
	case VHOST_USER_SET_MEM_TABLE:
		if (m->size >= 8)
			put_mem_table(line, len, m);
		return;
	case VHOST_USER_ADD_MEM_REG:
	case VHOST_USER_REM_MEM_REG:
		if (m->size >= 40)
			put_region(line, len, p + 8);
		return;
	case VHOST_USER_SET_VRING_NUM:
		if (m->size >= 8)
			put(line, len, " q%u num %u", get_u32(p), get_u32(p + 4));
		return;
	case VHOST_USER_SET_VRING_BASE:
		if (m->size >= 8)
			put(line, len, " q%u base %u", get_u32(p), get_u32(p + 4));
		return;
	case VHOST_USER_GET_VRING_BASE:
		if (m->size >= 4)
			put(line, len, " q%u", get_u32(p));
		return;
	case VHOST_USER_SET_VRING_ENABLE:
		if (m->size >= 8)
			put(line, len, " q%u %s", get_u32(p),
			    get_u32(p + 4) ? "enable" : "disable");
		return;
	case VHOST_USER_SET_VRING_ADDR:
		/* u32 index, u32 flags, u64 desc, used, avail, log */
		if (m->size >= 40)
			put(line, len, " q%u flags %u desc 0x%llx avail 0x%llx "
			    "used 0x%llx log 0x%llx", get_u32(p), get_u32(p + 4),
			    (unsigned long long)get_u64(p + 8),
			    (unsigned long long)get_u64(p + 24),
			    (unsigned long long)get_u64(p + 16),
			    (unsigned long long)get_u64(p + 32));
		return;
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		if (m->size >= 8)
			put_vring_fd(line, len, get_u64(p));
		return;
	case VHOST_USER_GET_CONFIG:
	case VHOST_USER_SET_CONFIG:
		/* u32 offset, u32 size, u32 flags, then the bytes */
		if (m->size >= VHOST_USER_CONFIG_HDR_SIZE)
			put(line, len, " offset %u size %u flags %u", get_u32(p),
			    get_u32(p + 4), get_u32(p + 8));
		if (m->request == VHOST_USER_SET_CONFIG)
			put_hex(line, len, p + VHOST_USER_CONFIG_HDR_SIZE,
			        m->size > VHOST_USER_CONFIG_HDR_SIZE ?
			        m->size - VHOST_USER_CONFIG_HDR_SIZE : 0);
		return;
	}
	/* Anything else this backend reads nothing of: just its size. */
	if (m->size)
		put(line, len, " (%u-byte payload)", m->size);
}

void
trace_request(const char *dev, const char *name, const struct vhu_msg *m)
{
	char line[TRACE_LINE] = "";

	put(line, sizeof line, "%s", name);
	if (strcmp(name, "unknown request") == 0)
		put(line, sizeof line, " %u", m->request);
	put_request_payload(line, sizeof line, m);
	if (m->flags & VHOST_USER_NEED_REPLY_MASK)
		put(line, sizeof line, " [need_reply]");
	if (m->nfds)
		put(line, sizeof line, " [%u fd%s]", m->nfds, m->nfds == 1 ? "" : "s");
	logmsg("trace: %s: <- %s", dev, line);
}

void
trace_reply(const char *dev, const char *name, const struct vhu_msg *m,
            int ack)
{
	char line[TRACE_LINE] = "";
	const uint8_t *p = m->payload;

	if (ack) {
		logmsg("trace: %s: -> ack %s %llu (%s)", dev, name,
		       (unsigned long long)get_u64(p), get_u64(p) ? "refused" : "ok");
		return;
	}
	switch (m->request) {
	case VHOST_USER_GET_FEATURES:
		put_bits(line, sizeof line, get_u64(p), feature_names);
		break;
	case VHOST_USER_GET_PROTOCOL_FEATURES:
		put_bits(line, sizeof line, get_u64(p), protocol_feature_names);
		break;
	case VHOST_USER_GET_QUEUE_NUM:
	case VHOST_USER_GET_MAX_MEM_SLOTS:
		put(line, sizeof line, " %llu", (unsigned long long)get_u64(p));
		break;
	case VHOST_USER_GET_VRING_BASE:
		put(line, sizeof line, " q%u base %u", get_u32(p), get_u32(p + 4));
		break;
	case VHOST_USER_GET_CONFIG:
		if (m->size < VHOST_USER_CONFIG_HDR_SIZE) {
			put(line, sizeof line, " empty (refused)");
			break;
		}
		put(line, sizeof line, " offset %u size %u", get_u32(p), get_u32(p + 4));
		put_hex(line, sizeof line, p + VHOST_USER_CONFIG_HDR_SIZE,
		        m->size - VHOST_USER_CONFIG_HDR_SIZE);
		break;
	default:
		put(line, sizeof line, " (%u-byte payload)", m->size);
	}
	logmsg("trace: %s: -> reply %s%s", dev, name, line);
}

void
trace_backend_msg(const char *dev, const char *name)
{
	logmsg("trace: %s: -> %s (backend channel)", dev, name);
}

void
trace_ctrl(unsigned dev, int to_guest, const uint8_t *msg, size_t len,
           int rows_first)
{
	const char *dir = to_guest ? "->" : "<-";
	char name[ESC_LEN], what[16];
	uint32_t id;
	uint16_t event, value;

	if (len < VIRTIO_CONSOLE_CONTROL_SIZE) {
		logmsg("trace: device %u: ctrl %s short message (%zu bytes)", dev, dir,
		       len);
		return;
	}
	id = get_le32(msg);
	event = get_le16(msg + 4);
	value = get_le16(msg + 6);
	if (event < sizeof ctrl_event_names / sizeof ctrl_event_names[0])
		snprintf(what, sizeof what, "%s", ctrl_event_names[event]);
	else
		snprintf(what, sizeof what, "event %u", event);
	msg += VIRTIO_CONSOLE_CONTROL_SIZE;
	len -= VIRTIO_CONSOLE_CONTROL_SIZE;
	if (event == VIRTIO_CONSOLE_PORT_NAME && len)
		logmsg("trace: device %u: ctrl %s %s id %u value %u \"%s\"", dev, dir,
		       what, id, value, esc(name, sizeof name, msg, len));
	else if (event == VIRTIO_CONSOLE_RESIZE && len >= 4)
		logmsg("trace: device %u: ctrl %s %s id %u cols %u rows %u", dev, dir,
		       what, id, get_le16(msg + (rows_first ? 2 : 0)),
		       get_le16(msg + (rows_first ? 0 : 2)));
	else if (id == VIRTIO_CONSOLE_BAD_ID)   /* DEVICE_READY names no port */
		logmsg("trace: device %u: ctrl %s %s id none value %u", dev, dir, what,
		       value);
	else
		logmsg("trace: device %u: ctrl %s %s id %u value %u", dev, dir, what,
		       id, value);
}

void
trace_ring(const char *dev, unsigned q, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	logmsg("trace: %s: ring q%u %s", dev, q, what);
}
