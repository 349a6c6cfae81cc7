/*
 * vhost-device-console - a vhost-user backend for the VirtIO console.
 *
 * This file holds the command line, the one select() loop, and the
 * console device: config space, the MULTIPORT control handshake, and the
 * port's two queues.  vhu.c speaks vhost-user and walks the rings; the
 * files in backends/ carry each console to a terminal or TCP clients.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <unistd.h>

#include "backends/backend.h"
#include "util.h"
#include "vhu.h"
#include "virtio_console.h"

#define MAX_DEVICES      256
#define MAX_NR_PORTS     1       /* port 0, the console */
#define CTRL_PENDING_MAX 16      /* control messages waiting for a buffer */
#define DEFAULT_TCP_PORT 12345
#define DEFAULT_ESCAPE   0x1d    /* Ctrl-] */

struct options {
	const char *socket_path;
	unsigned socket_count;
	const struct backend *backend;
	struct backend_config be;
	unsigned max_queue_size;
	int tcp_given;               /* --tcp-port or --tcp-address was used */
};

struct ctrl_msg {
	uint32_t id;
	uint16_t event, value;
};

/* One device: a vhost-user socket and the console behind it. */
struct console {
	unsigned index;
	struct vhu_dev vhu;
	struct endpoint ep;
	struct ctrl_msg pending[CTRL_PENDING_MAX];
	unsigned npending;
	unsigned long bad_ctrl;      /* control messages ignored, ever */
	struct vhu_elem elem;        /* scratch chain, too big for the stack */
};

struct daemon {
	struct options opt;
	struct console *cons;
	unsigned ncons;
};

static void usage(FILE *f);
static _Noreturn void usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static void parse_options(int argc, char **argv, struct options *o);
static unsigned parse_number(const char *opt, const char *s, unsigned lo,
                             unsigned hi);
static int parse_escape(const char *s);
static void raise_fd_limit(void);
static void signals_setup(sigset_t *waitmask);
static void on_signal(int sig);
static void start(struct daemon *dm);
static void cleanup(void *arg);
static int run(struct daemon *dm, const sigset_t *waitmask);

static int console_get_config(void *opaque, uint8_t *buf, uint32_t off,
                              uint32_t len);
static int console_set_config(void *opaque, const uint8_t *buf, uint32_t off,
                              uint32_t len);
static void console_queue_event(void *opaque, unsigned q);
static void console_reset(void *opaque, int q);
static void ctrl_send(struct console *c, uint32_t id, uint16_t event,
                      uint16_t value);
static void ctrl_flush(struct console *c);
static void ctrl_receive(struct console *c);
static void ctrl_handle(struct console *c, const struct ctrl_msg *m);
static void ctrl_ignore(struct console *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void port_transmit(struct console *c);

static const struct vhu_ops console_ops = {
	.features = 1ull << VIRTIO_F_VERSION_1 |
	            1ull << VIRTIO_RING_F_INDIRECT_DESC |
	            1ull << VIRTIO_RING_F_EVENT_IDX |
	            1ull << VIRTIO_CONSOLE_F_MULTIPORT,
	.num_queues = 2 * (MAX_NR_PORTS + 1),
	.config_size = VIRTIO_CONSOLE_CONFIG_SIZE,
	.get_config = console_get_config,
	.set_config = console_set_config,
	.queue_event = console_queue_event,
	.reset = console_reset,
};

/*
 * Chains a queue handler takes per pass before it yields to the other
 * devices (vhu_queue_again): a ring full of 1024-segment chains must not
 * stall everything else for the whole walk.
 */
#define CHAINS_PER_PASS 256

/* The only state a signal handler touches. */
static volatile sig_atomic_t got_signal;

/* ---- command line ------------------------------------------------------ */

static void
usage(FILE *f)
{
	fprintf(f,
"usage: " PROGNAME " --socket-path=PATH [options]\n"
"\n"
"A vhost-user backend for a VirtIO console (virtio id 3).  Device i listens\n"
"on the UNIX socket PATHi (PATH0, PATH1, ...) for a vhost-user frontend such\n"
"as QEMU or user-mode-linux, and carries its console to the host.\n"
"\n"
"  -s, --socket-path=PATH     vhost-user socket prefix (required)\n"
"  -c, --socket-count=N       number of devices, 1-%d (default 1)\n"
"  -b, --backend=NAME         nested: this terminal (default; one device)\n"
"                             network: TCP port --tcp-port + i for device i\n"
"  -p, --tcp-port=PORT        first TCP port (default %d)\n"
"      --tcp-address=ADDR     address to listen on (default 127.0.0.1);\n"
"                             anyone who reaches it gets the guest's console\n"
"  -q, --max-queue-size=N     largest virtqueue accepted, a power of two\n"
"                             up to 32768 (default 32768)\n"
"  -e, --escape=CHAR          nested escape key: ^X notation, one character,\n"
"                             or 'none' (default ^]); ESC q quits, ESC ESC\n"
"                             sends ESC itself\n"
"  -h, --help                 show this help\n"
"  -V, --version              show the version\n"
"\n"
"Frontends need 4 virtqueues (num_vqs=4) and a 12-byte config space, e.g.\n"
"QEMU 10.2: -device vhost-user-test-device-pci,chardev=c0,virtio-id=3,\n"
"num_vqs=4,config_size=12.  SIGTERM or SIGINT stops the daemon.\n",
	        MAX_DEVICES, DEFAULT_TCP_PORT);
}

static void
usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	logmsg("%s (see --help)", msg);
	exit(EXIT_USAGE);
}

static unsigned
parse_number(const char *opt, const char *s, unsigned lo, unsigned hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < lo || v > hi)
		usage_error("%s: '%s' is not a number from %u to %u", opt, s, lo, hi);
	return (unsigned)v;
}

/* "^]" (caret notation), a single character, or "none". */
static int
parse_escape(const char *s)
{
	if (strcmp(s, "none") == 0)
		return -1;
	if (s[0] == '^' && s[1] && !s[2]) {
		if (s[1] == '?')
			return 0x7f;
		if ((s[1] >= '@' && s[1] <= '_') || (s[1] >= 'a' && s[1] <= 'z'))
			return (s[1] & 0x1f);
	}
	if (s[0] && !s[1])
		return (unsigned char)s[0];
	usage_error("--escape: '%s' is not ^X, one character, or 'none'", s);
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	enum { OPT_TCP_ADDRESS = 256 };
	static const struct option longopts[] = {
		{ "socket-path",    required_argument, NULL, 's' },
		{ "socket-count",   required_argument, NULL, 'c' },
		{ "backend",        required_argument, NULL, 'b' },
		{ "tcp-port",       required_argument, NULL, 'p' },
		{ "tcp-address",    required_argument, NULL, OPT_TCP_ADDRESS },
		{ "max-queue-size", required_argument, NULL, 'q' },
		{ "escape",         required_argument, NULL, 'e' },
		{ "help",           no_argument,       NULL, 'h' },
		{ "version",        no_argument,       NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	memset(o, 0, sizeof *o);
	o->socket_count = 1;
	o->backend = &backend_nested;
	o->be.tcp_address = "127.0.0.1";
	o->be.tcp_port = DEFAULT_TCP_PORT;
	o->be.escape = DEFAULT_ESCAPE;
	o->max_queue_size = VIRTQ_MAX_SIZE;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":s:c:b:p:q:e:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (!*optarg)
				usage_error("--socket-path: empty path");
			o->socket_path = optarg;
			break;
		case 'c':
			o->socket_count = parse_number("--socket-count", optarg, 1,
			                               MAX_DEVICES);
			break;
		case 'b':
			if (strcmp(optarg, "nested") == 0)
				o->backend = &backend_nested;
			else if (strcmp(optarg, "network") == 0)
				o->backend = &backend_network;
			else
				usage_error("--backend: '%s' is not nested or network", optarg);
			break;
		case 'p':
			o->be.tcp_port = parse_number("--tcp-port", optarg, 1, 65535);
			o->tcp_given = 1;
			break;
		case OPT_TCP_ADDRESS:
			o->be.tcp_address = optarg;
			o->tcp_given = 1;
			break;
		case 'q':
			o->max_queue_size = parse_number("--max-queue-size", optarg, 1,
			                                 VIRTQ_MAX_SIZE);
			if (o->max_queue_size & (o->max_queue_size - 1))
				usage_error("--max-queue-size: %u is not a power of two",
				            o->max_queue_size);
			break;
		case 'e':
			o->be.escape = parse_escape(optarg);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf(PROGNAME " " VERSION "\n");
			exit(0);
		case ':':
			usage_error("option %s needs a value", argv[optind - 1]);
		default:
			if (optopt)
				usage_error("unknown option -%c", optopt);
			usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (!o->socket_path)
		usage_error("--socket-path is required");
	if (o->backend == &backend_nested && o->socket_count > 1)
		usage_error("the nested backend serves one device: use "
		            "--socket-count=1 or --backend=network");
	if (o->backend != &backend_network && o->tcp_given)
		usage_error("--tcp-port and --tcp-address need --backend=network");
	if (o->backend == &backend_network &&
	    o->be.tcp_port + o->socket_count - 1 > 65535)
		usage_error("--tcp-port: %u + %u devices goes past port 65535",
		            o->be.tcp_port, o->socket_count);
}

/* ---- start, stop, and the loop ------------------------------------------ */

/* Room for call/err fds above FD_SETSIZE, where select() never looks. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
on_signal(int sig)
{
	got_signal = sig;
}

/*
 * Handlers only record the signal.  They stay blocked except inside
 * pselect(), so a signal can never slip in between the check of
 * got_signal and the wait.
 */
static void
signals_setup(sigset_t *waitmask)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	struct sigaction sa;
	sigset_t block;
	size_t i;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sigemptyset(&block);
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		sigaction(sigs[i], &sa, NULL);
		sigaddset(&block, sigs[i]);
	}
	sigprocmask(SIG_BLOCK, &block, waitmask);
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigdelset(waitmask, sigs[i]);
}

static void
cleanup(void *arg)
{
	struct daemon *dm = arg;
	unsigned i;

	for (i = 0; i < dm->ncons; i++) {
		struct console *c = &dm->cons[i];

		if (c->ep.priv)
			c->ep.be->close(&c->ep);
		vhu_close(&c->vhu);
		if (c->bad_ctrl > 1)
			logmsg("device %u: %lu control messages from the guest were "
			       "ignored", c->index, c->bad_ctrl);
	}
}

static void
start(struct daemon *dm)
{
	const struct options *o = &dm->opt;
	char path[sizeof dm->cons[0].vhu.path], err[256], where[160];
	unsigned i;

	dm->cons = calloc(o->socket_count, sizeof *dm->cons);
	if (!dm->cons)
		die(EXIT_RUNTIME, "out of memory");
	die_set_cleanup(cleanup, dm);
	for (i = 0; i < o->socket_count; i++) {
		struct console *c = &dm->cons[i];

		c->index = i;
		vhu_init(&c->vhu, i, &console_ops, c, o->max_queue_size);
		c->ep.be = o->backend;
		c->ep.con = c;
		c->ep.index = i;
		dm->ncons = i + 1;
		if (snprintf(path, sizeof path, "%s%u", o->socket_path, i) >=
		    (int)sizeof path)
			die(EXIT_RUNTIME, "socket path too long: %s%u", o->socket_path, i);
		if (vhu_listen(&c->vhu, path, err, sizeof err) < 0)
			die(EXIT_RUNTIME, "%s", err);
	}
	if (o->backend == &backend_network &&
	    strcmp(o->be.tcp_address, "127.0.0.1") != 0 &&
	    strcmp(o->be.tcp_address, "::1") != 0)
		logmsg("warning: consoles listen on %s: anyone who can reach it gets "
		       "the guest's console", o->be.tcp_address);
	for (i = 0; i < dm->ncons; i++) {
		struct console *c = &dm->cons[i];

		if (c->ep.be->open(&c->ep, &o->be, err, sizeof err) < 0)
			die(EXIT_RUNTIME, "%s", err);
		c->ep.be->describe(&c->ep, where, sizeof where);
		logmsg("device %u: vhost-user socket %s; console: %s", i,
		       c->vhu.path, where);
	}
	logmsg("ready: %u device%s listening", dm->ncons, dm->ncons == 1 ? "" : "s");
}

/*
 * The loop, in the manner of ii: rebuild the fd sets from the state every
 * pass, wait, and hand each ready fd to the code that owns it.
 */
static int
run(struct daemon *dm, const sigset_t *waitmask)
{
	struct timespec pause;
	fd_set rd, wr;
	unsigned i;
	int maxfd, n, busy;

	for (;;) {
		if (got_signal == SIGHUP && dm->opt.backend != &backend_nested)
			got_signal = 0;   /* reserved: reopening logs, later */
		if (got_signal)
			return 0;
		FD_ZERO(&rd);
		FD_ZERO(&wr);
		maxfd = -1;
		busy = 0;
		for (i = 0; i < dm->ncons; i++) {
			struct console *c = &dm->cons[i];

			if (c->ep.quit)
				return 0;
			busy |= vhu_has_work(&c->vhu);
			maxfd = vhu_add_fds(&c->vhu, &rd, maxfd);
			maxfd = c->ep.be->add_fds(&c->ep, &rd, &wr, maxfd);
		}
		/* Block, unless a device has chains left from the last pass
		 * (fairness, see vhu.h); wake in time to end an accept pause. */
		if (busy)
			pause.tv_sec = pause.tv_nsec = 0;
		n = pselect(maxfd + 1, &rd, &wr, NULL,
		            busy || accept_pause_timeout(&pause) == 0 ? &pause : NULL,
		            waitmask);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die(EXIT_RUNTIME, "select: %s", strerror(errno));
		}
		for (i = 0; i < dm->ncons; i++) {
			struct console *c = &dm->cons[i];

			vhu_serve(&c->vhu, &rd);
			c->ep.be->serve(&c->ep, &rd, &wr);
			vhu_flush_notify(&c->vhu);
		}
	}
}

int
main(int argc, char **argv)
{
	struct daemon dm;
	sigset_t waitmask;

	memset(&dm, 0, sizeof dm);
	parse_options(argc, argv, &dm.opt);
	raise_fd_limit();
	signals_setup(&waitmask);
	start(&dm);
	run(&dm, &waitmask);
	if (got_signal)
		logmsg("%s: shutting down", strsignal(got_signal));
	cleanup(&dm);
	free(dm.cons);
	return 0;
}

/* ---- the console device --------------------------------------------------- */

static void
put_le16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

static void
put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, v);
	put_le16(p + 2, v >> 16);
}

static int
console_get_config(void *opaque, uint8_t *buf, uint32_t off, uint32_t len)
{
	uint8_t cfg[VIRTIO_CONSOLE_CONFIG_SIZE] = { 0 };

	(void)opaque;
	/* cols and rows stay 0: F_SIZE is not offered. */
	put_le32(cfg + VIRTIO_CONSOLE_CONFIG_MAX_NR_PORTS, MAX_NR_PORTS);
	memcpy(buf, cfg + off, len);
	return 0;
}

static int
console_set_config(void *opaque, const uint8_t *buf, uint32_t off, uint32_t len)
{
	/* Every field is read-only without F_EMERG_WRITE: a write changes
	 * nothing, as on a real device. */
	(void)opaque;
	(void)buf;
	(void)off;
	(void)len;
	return 0;
}

static int
multiport(struct console *c)
{
	return vhu_has_feature(&c->vhu, VIRTIO_CONSOLE_F_MULTIPORT);
}

static void
console_queue_event(void *opaque, unsigned q)
{
	struct console *c = opaque;

	switch (q) {
	case VIRTIO_CONSOLE_PORT0_TXQ:
		port_transmit(c);
		break;
	case VIRTIO_CONSOLE_CTRL_TXQ:
		if (multiport(c))
			ctrl_receive(c);
		break;
	case VIRTIO_CONSOLE_CTRL_RXQ:
		if (multiport(c))
			ctrl_flush(c);
		break;
	default:
		/* Port 0 receiveq: new buffers; the loop sees the room. */
		break;
	}
}

/* A ring stopped or the device reset: the handshake starts over, and
 * messages meant for the old driver must not reach a new one. */
static void
console_reset(void *opaque, int q)
{
	struct console *c = opaque;

	if (q < 0 || q == VIRTIO_CONSOLE_CTRL_RXQ || q == VIRTIO_CONSOLE_CTRL_TXQ)
		c->npending = 0;
}

/* Queue a control message for the guest; it leaves when a buffer is there. */
static void
ctrl_send(struct console *c, uint32_t id, uint16_t event, uint16_t value)
{
	if (c->npending == CTRL_PENDING_MAX) {
		ctrl_ignore(c, "control queue full; the guest gives no buffers");
		return;
	}
	c->pending[c->npending].id = id;
	c->pending[c->npending].event = event;
	c->pending[c->npending].value = value;
	c->npending++;
	ctrl_flush(c);
}

/* One message per control receive buffer, as Linux expects. */
static void
ctrl_flush(struct console *c)
{
	uint8_t msg[VIRTIO_CONSOLE_CONTROL_SIZE];
	unsigned sent = 0;
	int r;

	while (sent < c->npending &&
	       (r = vhu_queue_pop(&c->vhu, VIRTIO_CONSOLE_CTRL_RXQ, &c->elem)) == 1) {
		const struct ctrl_msg *m = &c->pending[sent];

		if (c->elem.out_num || c->elem.in_len < sizeof msg) {
			vhu_set_broken(&c->vhu, "control receive buffer is %s",
			               c->elem.out_num ? "device-readable" : "too small");
			return;
		}
		put_le32(msg, m->id);
		put_le16(msg + 4, m->event);
		put_le16(msg + 6, m->value);
		vhu_buf_to_elem(&c->elem, msg, sizeof msg);
		vhu_queue_push(&c->vhu, VIRTIO_CONSOLE_CTRL_RXQ, &c->elem, sizeof msg);
		sent++;
	}
	memmove(c->pending, c->pending + sent,
	        (c->npending - sent) * sizeof c->pending[0]);
	c->npending -= sent;
}

/* The guest's control messages: complete each buffer at once (the guest
 * waits for DEVICE_READY's), then act on it. */
static void
ctrl_receive(struct console *c)
{
	uint8_t raw[VIRTIO_CONSOLE_CONTROL_SIZE];
	struct ctrl_msg m;
	unsigned done;
	size_t n;

	for (done = 0; done < CHAINS_PER_PASS; done++) {
		if (vhu_queue_pop(&c->vhu, VIRTIO_CONSOLE_CTRL_TXQ, &c->elem) != 1)
			return;
		if (c->elem.in_num) {
			vhu_set_broken(&c->vhu, "control transmit buffer is device-writable");
			return;
		}
		n = vhu_elem_to_buf(&c->elem, raw, sizeof raw);
		vhu_queue_push(&c->vhu, VIRTIO_CONSOLE_CTRL_TXQ, &c->elem, 0);
		if (n < sizeof raw) {
			ctrl_ignore(c, "short control message (%zu bytes)", n);
			continue;
		}
		m.id = raw[0] | raw[1] << 8 | raw[2] << 16 | (uint32_t)raw[3] << 24;
		m.event = raw[4] | raw[5] << 8;
		m.value = raw[6] | raw[7] << 8;
		ctrl_handle(c, &m);
	}
	vhu_queue_again(&c->vhu, VIRTIO_CONSOLE_CTRL_TXQ);
}

static void
ctrl_handle(struct console *c, const struct ctrl_msg *m)
{
	switch (m->event) {
	case VIRTIO_CONSOLE_DEVICE_READY:
		if (m->value != 1) {
			ctrl_ignore(c, "the guest driver failed to set up");
			return;
		}
		/* A (re)starting driver: announce the port. */
		ctrl_send(c, 0, VIRTIO_CONSOLE_PORT_ADD, 1);
		return;
	case VIRTIO_CONSOLE_PORT_READY:
		if (m->id >= MAX_NR_PORTS) {
			ctrl_ignore(c, "PORT_READY for unknown port %u", m->id);
			return;
		}
		if (m->value != 1) {
			ctrl_ignore(c, "the guest failed to add port %u", m->id);
			return;
		}
		logmsg("device %u: the guest's console port is ready", c->index);
		/* Port 0 is the console, and its host side is always there. */
		ctrl_send(c, m->id, VIRTIO_CONSOLE_CONSOLE_PORT, 1);
		ctrl_send(c, m->id, VIRTIO_CONSOLE_PORT_OPEN, 1);
		return;
	case VIRTIO_CONSOLE_PORT_OPEN:
		/* The console port is always connected on our side, so the
		 * guest opening or closing it changes nothing here. */
		return;
	default:
		ctrl_ignore(c, "unexpected control event %u from the guest", m->event);
	}
}

/*
 * A control message that makes no sense is a driver bug, not a memory
 * hazard: it is ignored, as QEMU's virtio-serial does.  The first one is
 * logged; the rest are only counted (a guest must not flood our stderr)
 * and summed up on exit.
 */
static void
ctrl_ignore(struct console *c, const char *fmt, ...)
{
	char what[160];
	va_list ap;

	if (c->bad_ctrl++)
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	logmsg("device %u: %s; ignored (further ones are only counted)",
	       c->index, what);
}

/* Guest output: hand every buffer to the backend and complete it at once,
 * since the guest's hvc driver spins until it is used. */
static void
port_transmit(struct console *c)
{
	unsigned i, done;

	for (done = 0; done < CHAINS_PER_PASS; done++) {
		if (vhu_queue_pop(&c->vhu, VIRTIO_CONSOLE_PORT0_TXQ, &c->elem) != 1)
			return;
		if (c->elem.in_num) {
			vhu_set_broken(&c->vhu, "transmit buffer is device-writable");
			return;
		}
		for (i = 0; i < c->elem.out_num; i++)
			c->ep.be->output(&c->ep, c->elem.iov[i].iov_base,
			                 c->elem.iov[i].iov_len);
		vhu_queue_push(&c->vhu, VIRTIO_CONSOLE_PORT0_TXQ, &c->elem, 0);
	}
	vhu_queue_again(&c->vhu, VIRTIO_CONSOLE_PORT0_TXQ);
}

size_t
console_input_room(struct console *c)
{
	if (vhu_queue_peek(&c->vhu, VIRTIO_CONSOLE_PORT0_RXQ, &c->elem) != 1)
		return 0;
	if (c->elem.out_num || c->elem.in_len == 0) {
		vhu_set_broken(&c->vhu, "receive buffer is %s",
		               c->elem.out_num ? "device-readable" : "empty");
		return 0;
	}
	return c->elem.in_len;
}

void
console_input(struct console *c, const void *buf, size_t len)
{
	size_t n;

	if (vhu_queue_pop(&c->vhu, VIRTIO_CONSOLE_PORT0_RXQ, &c->elem) != 1) {
		logmsg("device %u: %zu bytes of input lost: the receive buffer went "
		       "away", c->index, len);
		return;
	}
	n = vhu_buf_to_elem(&c->elem, buf, len);
	if (n < len)
		logmsg("device %u: %zu bytes of input lost: the receive buffer "
		       "shrank", c->index, len - n);
	vhu_queue_push(&c->vhu, VIRTIO_CONSOLE_PORT0_RXQ, &c->elem, n);
}
