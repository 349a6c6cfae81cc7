/*
 * vhost-device-console - a vhost-user backend for the VirtIO console.
 *
 * This file holds the command line, the one select() loop, and the
 * console device: config space, the MULTIPORT control handshake, and the
 * ports' queues.  vhu.c speaks vhost-user and walks the rings; the files
 * in backends/ carry each console to a terminal or TCP clients, through
 * the console's session (backends/session.h: history, log, readers).
 *
 * Numbering: device d has P ports (port 0 is the console, hvc0 in the
 * guest; ports 1.. are generic ports, /dev/vportNpM).  Console k = d*P + p
 * names port p of device d everywhere: TCP port --tcp-port + k, log file
 * --log-file + k.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "backends/backend.h"
#include "util.h"
#include "vhu.h"
#include "virtio_console.h"

#define MAX_DEVICES      256
#define MAX_PORTS        31      /* 2 * (31 + 1) = VHU_MAX_QUEUES queues */
#define MAX_BACKENDS     5       /* ways in that can serve one console: all */
#define MAX_NAME         127     /* a port name, in bytes */
#define MAX_HISTORY      (64u << 20)
#define DEFAULT_TCP_PORT 12345
#define DEFAULT_WEB_PORT 8080
#define DEFAULT_ESCAPE   0x1d    /* Ctrl-] */

/*
 * Chains a queue handler takes per pass before it yields to the other
 * devices (vhu_queue_again): a ring full of 1024-segment chains must not
 * stall everything else for the whole walk.
 */
#define CHAINS_PER_PASS 256

/* RESIZE's payload: the spec says cols then rows, and so do Linux 6.15 and
 * the stable kernels that took the fix (Debian's 6.1 does: tests/uml.bats
 * checks it); older Linux reads rows then cols (--resize-order). */
enum resize_order { RESIZE_COLS_ROWS, RESIZE_ROWS_COLS };

struct options {
	const char *socket_path;
	int fd;                      /* --fd: a connected socket, or -1 */
	unsigned socket_mode;        /* of the vhost-user sockets */
	long socket_gid;             /* their group, -1: ours */
	unsigned socket_count;
	const struct backend *backends[MAX_BACKENDS];
	unsigned nbackends;
	struct backend_config be;
	unsigned max_queue_size;
	int tcp_given;               /* --tcp-port or --tcp-address was used */
	int web_given;               /* a --web-* option was used */
	const char *names[MAX_PORTS];  /* port p's name, or NULL */
	unsigned nports;             /* P: ports per device */
	size_t history;
	const char *log_file;        /* prefix; NULL: no log */
	unsigned cols, rows;         /* --size, 0 x 0 if not given */
	enum resize_order resize_order;
};

/* A control message's header, either way.  PORT_NAME and RESIZE carry a
 * payload, built when the guest's buffer is there. */
struct ctrl_msg {
	uint32_t id;
	uint16_t event, value;
};

/*
 * The control messages the device owes the guest for a port.  They are
 * flags derived from state, not a queue: however often a state changes
 * while the guest gives no control buffers (a flood of window-size
 * reports, clients coming and going), nothing piles up and nothing that
 * carries state can be dropped.  PORT_OPEN's value and RESIZE's size are
 * read from the state when a buffer is there; ctrl_next() sends them in
 * the order Linux needs.
 */
enum {
	OWE_PORT_ADD     = 1 << 0,
	OWE_CONSOLE_PORT = 1 << 1,
	OWE_PORT_NAME    = 1 << 2,
	OWE_PORT_OPEN    = 1 << 3,
};

struct console;

/* One port of a device: its queues, its state in the guest, its session
 * and the endpoints that carry it to the host. */
struct port {
	struct console *con;
	unsigned id;                 /* p, the port number in the device */
	unsigned k;                  /* the console number */
	const char *name;            /* NULL: unnamed */
	unsigned rxq, txq;
	int added;                   /* the guest answered PORT_READY(1) */
	int guest_open;              /* the guest has it open */
	int host_open;               /* PORT_OPEN value last sent, -1: none */
	unsigned owed;               /* OWE_* control messages not yet sent */
	int tx_held;                 /* a transmit chain waits for room */
	unsigned long long bytes_in; /* host input given to the guest, ever */
	unsigned rx_chains;          /* receive chains the next read offers */
	struct sess sess;
	struct endpoint ep[MAX_BACKENDS];
	unsigned nep;
};

/* One device: a vhost-user socket and the ports behind it. */
struct console {
	unsigned index;
	struct vhu_dev vhu;
	struct vhu_ops ops;          /* console_ops with this device's queues */
	const struct options *opt;
	struct port ports[MAX_PORTS];
	unsigned nports;
	unsigned cols, rows;         /* the console's size, as the guest sees it */
	int resize_owed;             /* a RESIZE (of the size then) is owed */
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
static void parse_backends(const char *list, struct options *o);
static void parse_size(const char *s, struct options *o);
static unsigned parse_mode(const char *opt, const char *s);
static long parse_group(const char *opt, const char *s);
static void check_name(const char *opt, const char *name);
static void raise_fd_limit(void);
static void signals_setup(sigset_t *waitmask);
static void on_signal(int sig);
static void start(struct daemon *dm);
static void start_console(struct daemon *dm, struct console *c, unsigned d);
static void console_init(struct console *c, const struct options *o, unsigned d);
static void port_init(struct console *c, unsigned p);
static void cleanup(void *arg);
static int run(struct daemon *dm, const sigset_t *waitmask);
static void after_pass(struct console *c);

static int console_get_config(void *opaque, uint8_t *buf, uint32_t off,
                              uint32_t len);
static int console_set_config(void *opaque, const uint8_t *buf, uint32_t off,
                              uint32_t len);
static void console_queue_event(void *opaque, unsigned q);
static void console_reset(void *opaque, int q);
static struct port *port_of_queue(struct console *c, unsigned q);
static void ctrl_owe(struct port *p, unsigned what);
static void ctrl_flush(struct console *c);
static void ctrl_receive(struct console *c);
static void ctrl_handle(struct console *c, const struct ctrl_msg *m);
static void ctrl_port_ready(struct console *c, struct port *p);
static void ctrl_ignore(struct console *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void port_transmit(struct port *p);
static void port_update_open(struct port *p);
static void console_send_size(struct console *c);

/* What every device offers; num_queues is set per device (2 * (P + 1)). */
static const struct vhu_ops console_ops = {
	.features = 1ull << VIRTIO_F_VERSION_1 |
	            1ull << VIRTIO_RING_F_INDIRECT_DESC |
	            1ull << VIRTIO_RING_F_EVENT_IDX |
	            1ull << VIRTIO_CONSOLE_F_SIZE |
	            1ull << VIRTIO_CONSOLE_F_MULTIPORT |
	            1ull << VIRTIO_CONSOLE_F_EMERG_WRITE,
	.config_size = VIRTIO_CONSOLE_CONFIG_SIZE,
	.get_config = console_get_config,
	.set_config = console_set_config,
	.queue_event = console_queue_event,
	.reset = console_reset,
};

/* The only state the signal handlers touch. */
static volatile sig_atomic_t got_term, got_hup, got_winch, got_usr1;

/* ---- command line ------------------------------------------------------ */

static void
usage(FILE *f)
{
	fprintf(f,
"usage: " PROGNAME " --socket-path=PATH [options]\n"
"\n"
"A vhost-user backend for a VirtIO console (virtio id 3).  Device d listens\n"
"on the UNIX socket PATHd (PATH0, PATH1, ...) for a vhost-user frontend such\n"
"as QEMU or user-mode-linux, and carries its ports to the host.  Console\n"
"k = d * P + p is port p of device d (P ports per device; port 0 is the\n"
"guest's hvc0).\n"
"\n"
"  -s, --socket-path=PATH     vhost-user socket prefix (required, or --fd)\n"
"      --socket-mode=MODE     mode of the vhost-user sockets (default 0600)\n"
"      --socket-group=GROUP   their group (the frontend may run as another\n"
"                             user: e.g. --socket-mode=0660 --socket-group=kvm)\n"
"      --fd=N                 serve the connected socket N instead (one\n"
"                             device); exit when it ends: 0 after an orderly\n"
"                             close, 1 after a protocol error\n"
"      --print-capabilities   print the backend's JSON capabilities, exit\n"
"  -c, --socket-count=N       number of devices, 1-%d (default 1)\n"
"  -b, --backend=LIST         ways in, comma-separated (default nested):\n"
"                             nested: this terminal (console 0)\n"
"                             network: TCP port --tcp-port + k\n"
"                             unix (or uds): UNIX socket --unix-path + k\n"
"                             pty: a pseudo-terminal per console\n"
"                             web: a browser, http://ADDR:PORT/console/k\n"
"  -p, --tcp-port=PORT        first TCP port (default %d)\n"
"      --telnet               network: speak telnet (character mode, window\n"
"                             size) so that plain `telnet HOST PORT` works\n"
"      --tcp-address=ADDR     address to listen on (default 127.0.0.1);\n"
"                             anyone who reaches it gets the guest's console\n"
"      --unix-path=PREFIX     unix backend socket prefix\n"
"      --unix-mode=MODE, --unix-group=GROUP   its sockets' mode (default\n"
"                             0600) and group\n"
"      --pty-link=PREFIX      pty backend: symlink PREFIX + k to console k's pty\n"
"      --web-port=PORT        web: the one port of every console (default %d)\n"
"      --web-address=ADDR     web: address to listen on (default 127.0.0.1)\n"
"      --web-assets=DIR       web: the @xterm/xterm npm package (or the folder\n"
"                             npm installed it into); without it the page\n"
"                             shows plain text\n"
"      --web-token=TOKEN      web: every request must carry ?token=TOKEN or\n"
"                             'Authorization: Bearer TOKEN'\n"
"      --port=NAME            add a generic port named NAME (repeatable,\n"
"                             up to %d ports in all; '-' for no name)\n"
"      --console-name=NAME    a name for port 0 too\n"
"      --history=BYTES        output a new client replays first (default\n"
"                             %d; 0 turns it off)\n"
"      --log-file=PATH        append console k's output to PATHk\n"
"      --size=COLSxROWS       terminal size told to the guest at start\n"
"      --resize-order=ORDER   RESIZE payload order: cols-rows (default: the\n"
"                             virtio spec, Linux 6.15, fixed stable kernels)\n"
"                             or rows-cols (older Linux guests)\n"
"  -q, --max-queue-size=N     largest virtqueue accepted, a power of two\n"
"                             up to 32768 (default 32768)\n"
"  -e, --escape=CHAR          nested escape key: ^X notation, one character,\n"
"                             or 'none' (default ^]); ESC q quits, ESC ESC\n"
"                             sends ESC itself\n"
"  -h, --help                 show this help\n"
"  -V, --version              show the version\n"
"\n"
"Frontends need 2 * (P + 1) virtqueues and a 12-byte config space: with one\n"
"port, QEMU 10.2: -device vhost-user-test-device-pci,chardev=c0,virtio-id=3,\n"
"num_vqs=4,config_size=12 (num_vqs=6 with one --port, and so on).\n"
"SIGTERM or SIGINT stops the daemon; SIGHUP reopens the log files; SIGUSR1\n"
"prints what is served, with byte counts.\n",
	        MAX_DEVICES, DEFAULT_TCP_PORT, DEFAULT_WEB_PORT, MAX_PORTS,
	        SESS_DEFAULT_HISTORY);
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

/* "network,nested": each way in once ("uds" is "unix", as in the Rust tool). */
static void
parse_backends(const char *list, struct options *o)
{
	static const struct { const char *name; const struct backend *be; } known[] = {
		{ "nested", &backend_nested }, { "network", &backend_network },
		{ "unix", &backend_unix }, { "uds", &backend_unix },
		{ "pty", &backend_pty }, { "web", &backend_web },
	};
	const char *p = list;
	size_t len, i, j;

	o->nbackends = 0;
	for (;;) {
		len = strcspn(p, ",");
		for (i = 0; i < sizeof known / sizeof known[0]; i++)
			if (strlen(known[i].name) == len &&
			    strncmp(known[i].name, p, len) == 0)
				break;
		if (i == sizeof known / sizeof known[0])
			usage_error("--backend: '%.*s' is not nested, network, unix, pty "
			            "or web",
			            (int)len, p);
		for (j = 0; j < o->nbackends; j++)
			if (o->backends[j] == known[i].be)
				usage_error("--backend: %s is listed twice", known[i].be->name);
		o->backends[o->nbackends++] = known[i].be;
		if (!p[len])
			return;
		p += len + 1;
	}
}

static int
has_backend(const struct options *o, const struct backend *be)
{
	unsigned i;

	for (i = 0; i < o->nbackends; i++)
		if (o->backends[i] == be)
			return 1;
	return 0;
}

/* An octal mode for the sockets, 0600 to 0777: the owner keeps access. */
static unsigned
parse_mode(const char *opt, const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 8);
	if (errno || end == s || *end || v > 0777 || (v & 0600) != 0600)
		usage_error("%s: '%s' is not an octal mode from 0600 to 0777", opt, s);
	return (unsigned)v;
}

/* A group name or number. */
static long
parse_group(const char *opt, const char *s)
{
	struct group *g;
	char *end;
	unsigned long v;

	if ((g = getgrnam(s)))
		return (long)g->gr_gid;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > INT_MAX)
		usage_error("%s: no group '%s'", opt, s);
	return (long)v;
}

/* "80x24" */
static void
parse_size(const char *s, struct options *o)
{
	char *x;
	unsigned long c, r;

	errno = 0;
	c = strtoul(s, &x, 10);
	if (errno || x == s || *s == '-' || (*x != 'x' && *x != 'X'))
		usage_error("--size: '%s' is not COLSxROWS", s);
	r = strtoul(x + 1, &x, 10);
	if (errno || *x || c < 1 || c > 65535 || r < 1 || r > 65535)
		usage_error("--size: '%s' is not COLSxROWS (1-65535 each)", s);
	o->cols = c;
	o->rows = r;
}

/* A port name becomes /dev/virtio-ports/NAME in the guest. */
static void
check_name(const char *opt, const char *name)
{
	const char *p;

	if (!*name || strlen(name) > MAX_NAME)
		usage_error("%s: a name has 1 to %d bytes", opt, MAX_NAME);
	for (p = name; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '/' || *p == 0x7f)
			usage_error("%s: '%s': no spaces, slashes or control "
			            "characters in a name", opt, name);
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	enum { OPT_TCP_ADDRESS = 256, OPT_PORT, OPT_CONSOLE_NAME, OPT_HISTORY,
	       OPT_LOG_FILE, OPT_SIZE, OPT_RESIZE_ORDER, OPT_FD, OPT_SOCKET_MODE,
	       OPT_SOCKET_GROUP, OPT_UNIX_PATH, OPT_PTY_LINK, OPT_TELNET,
	       OPT_UNIX_MODE, OPT_UNIX_GROUP, OPT_WEB_PORT, OPT_WEB_ADDRESS,
	       OPT_WEB_ASSETS, OPT_WEB_TOKEN };
	static const struct option longopts[] = {
		{ "socket-path",    required_argument, NULL, 's' },
		{ "socket-count",   required_argument, NULL, 'c' },
		{ "fd",             required_argument, NULL, OPT_FD },
		{ "socket-mode",    required_argument, NULL, OPT_SOCKET_MODE },
		{ "socket-group",   required_argument, NULL, OPT_SOCKET_GROUP },
		{ "backend",        required_argument, NULL, 'b' },
		{ "tcp-port",       required_argument, NULL, 'p' },
		{ "tcp-address",    required_argument, NULL, OPT_TCP_ADDRESS },
		{ "unix-path",      required_argument, NULL, OPT_UNIX_PATH },
		{ "unix-mode",      required_argument, NULL, OPT_UNIX_MODE },
		{ "unix-group",     required_argument, NULL, OPT_UNIX_GROUP },
		{ "pty-link",       required_argument, NULL, OPT_PTY_LINK },
		{ "telnet",         no_argument,       NULL, OPT_TELNET },
		{ "web-port",       required_argument, NULL, OPT_WEB_PORT },
		{ "web-address",    required_argument, NULL, OPT_WEB_ADDRESS },
		{ "web-assets",     required_argument, NULL, OPT_WEB_ASSETS },
		{ "web-token",      required_argument, NULL, OPT_WEB_TOKEN },
		{ "port",           required_argument, NULL, OPT_PORT },
		{ "console-name",   required_argument, NULL, OPT_CONSOLE_NAME },
		{ "history",        required_argument, NULL, OPT_HISTORY },
		{ "log-file",       required_argument, NULL, OPT_LOG_FILE },
		{ "size",           required_argument, NULL, OPT_SIZE },
		{ "resize-order",   required_argument, NULL, OPT_RESIZE_ORDER },
		{ "max-queue-size", required_argument, NULL, 'q' },
		{ "escape",         required_argument, NULL, 'e' },
		{ "help",           no_argument,       NULL, 'h' },
		{ "version",        no_argument,       NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int ch, i;

	/* The backend program conventions: this one answer, whatever else
	 * the command line says. */
	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--print-capabilities") == 0) {
			printf("{\"type\": \"console\"}\n");
			exit(0);
		}
	memset(o, 0, sizeof *o);
	o->fd = -1;
	o->socket_mode = o->be.unix_mode = 0600;
	o->socket_gid = o->be.unix_gid = -1;
	o->socket_count = 1;
	o->backends[0] = &backend_nested;
	o->nbackends = 1;
	o->be.tcp_address = "127.0.0.1";
	o->be.tcp_port = DEFAULT_TCP_PORT;
	o->be.web_address = "127.0.0.1";
	o->be.web_port = DEFAULT_WEB_PORT;
	o->be.escape = DEFAULT_ESCAPE;
	o->max_queue_size = VIRTQ_MAX_SIZE;
	o->nports = 1;
	o->history = SESS_DEFAULT_HISTORY;
	o->resize_order = RESIZE_COLS_ROWS;
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
		case OPT_FD:
			o->fd = (int)parse_number("--fd", optarg, 0, INT_MAX);
			break;
		case OPT_SOCKET_MODE:
			o->socket_mode = parse_mode("--socket-mode", optarg);
			break;
		case OPT_SOCKET_GROUP:
			o->socket_gid = parse_group("--socket-group", optarg);
			break;
		case 'b':
			parse_backends(optarg, o);
			break;
		case 'p':
			o->be.tcp_port = parse_number("--tcp-port", optarg, 1, 65535);
			o->tcp_given = 1;
			break;
		case OPT_TCP_ADDRESS:
			o->be.tcp_address = optarg;
			o->tcp_given = 1;
			break;
		case OPT_UNIX_MODE:
			o->be.unix_mode = parse_mode("--unix-mode", optarg);
			break;
		case OPT_UNIX_GROUP:
			o->be.unix_gid = parse_group("--unix-group", optarg);
			break;
		case OPT_TELNET:
			o->be.telnet = 1;
			break;
		case OPT_WEB_PORT:
			o->be.web_port = parse_number("--web-port", optarg, 1, 65535);
			o->web_given = 1;
			break;
		case OPT_WEB_ADDRESS:
			o->be.web_address = optarg;
			o->web_given = 1;
			break;
		case OPT_WEB_ASSETS:
			if (!*optarg)
				usage_error("--web-assets: empty path");
			o->be.web_assets = optarg;
			o->web_given = 1;
			break;
		case OPT_WEB_TOKEN:
			/* It goes in URLs as it is: no character needs escaping. */
			if (!*optarg || strlen(optarg) > 64 || optarg[strspn(optarg, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "abcdefghijklmnopqrstuvwxyz0123456789-._~")])
				usage_error("--web-token: use 1 to 64 letters, digits and - . _ ~");
			o->be.web_token = optarg;
			o->web_given = 1;
			break;
		case OPT_PTY_LINK:
			if (!*optarg)
				usage_error("--pty-link: empty path");
			o->be.pty_link = optarg;
			break;
		case OPT_UNIX_PATH:
			if (!*optarg)
				usage_error("--unix-path: empty path");
			o->be.unix_path = optarg;
			break;
		case OPT_PORT:
			if (o->nports == MAX_PORTS)
				usage_error("--port: at most %d ports per device", MAX_PORTS);
			if (strcmp(optarg, "-") != 0)
				check_name("--port", optarg);
			o->names[o->nports++] = strcmp(optarg, "-") ? optarg : NULL;
			break;
		case OPT_CONSOLE_NAME:
			check_name("--console-name", optarg);
			o->names[0] = optarg;
			break;
		case OPT_HISTORY:
			o->history = parse_number("--history", optarg, 0, MAX_HISTORY);
			break;
		case OPT_LOG_FILE:
			if (!*optarg)
				usage_error("--log-file: empty path");
			o->log_file = optarg;
			break;
		case OPT_SIZE:
			parse_size(optarg, o);
			break;
		case OPT_RESIZE_ORDER:
			if (strcmp(optarg, "cols-rows") == 0)
				o->resize_order = RESIZE_COLS_ROWS;
			else if (strcmp(optarg, "rows-cols") == 0)
				o->resize_order = RESIZE_ROWS_COLS;
			else
				usage_error("--resize-order: '%s' is not cols-rows or "
				            "rows-cols", optarg);
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
	if (o->fd >= 0 && o->socket_path)
		usage_error("--fd and --socket-path exclude each other");
	if (o->fd >= 0 && o->socket_count > 1)
		usage_error("--fd serves one device: drop --socket-count");
	if (!o->socket_path && o->fd < 0)
		usage_error("--socket-path (or --fd) is required");
	if (has_backend(o, &backend_nested) && o->socket_count > 1)
		usage_error("the nested backend serves one device: use "
		            "--socket-count=1 or --backend=network");
	if (!has_backend(o, &backend_network) && !has_backend(o, &backend_unix) &&
	    !has_backend(o, &backend_pty) && !has_backend(o, &backend_web) &&
	    o->nports > 1)
		usage_error("--port: generic ports need --backend=network or unix "
		            "(the terminal carries console 0 only)");
	if (!has_backend(o, &backend_network) && o->tcp_given)
		usage_error("--tcp-port and --tcp-address need --backend=network");
	if (o->be.telnet && !has_backend(o, &backend_network))
		usage_error("--telnet needs --backend=network");
	if (o->web_given && !has_backend(o, &backend_web))
		usage_error("--web-port, --web-address, --web-assets and --web-token "
		            "need --backend=web");
	if (o->be.pty_link && !has_backend(o, &backend_pty))
		usage_error("--pty-link needs --backend=pty");
	if (has_backend(o, &backend_unix) != (o->be.unix_path != NULL))
		usage_error(o->be.unix_path ? "--unix-path needs --backend=unix"
		                            : "--backend=unix needs --unix-path");
	if (has_backend(o, &backend_network) &&
	    o->be.tcp_port + o->socket_count * o->nports - 1 > 65535)
		usage_error("--tcp-port: %u + %u consoles goes past port 65535",
		            o->be.tcp_port, o->socket_count * o->nports);
	o->be.nports = o->nports;
	o->be.names = o->names;
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
	if (sig == SIGWINCH)
		got_winch = 1;
	else if (sig == SIGUSR1)
		got_usr1 = 1;
	else if (sig == SIGHUP)
		got_hup = 1;
	else
		got_term = sig;
}

/*
 * Handlers only record the signal.  They stay blocked except inside
 * pselect(), so a signal can never slip in between the check of a flag
 * and the wait.
 */
static void
signals_setup(sigset_t *waitmask)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGWINCH, SIGUSR1 };
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
	unsigned i, p, e;

	for (i = 0; i < dm->ncons; i++) {
		struct console *c = &dm->cons[i];

		for (p = 0; p < c->nports; p++) {
			struct port *pt = &c->ports[p];

			for (e = 0; e < pt->nep; e++)
				pt->ep[e].be->close(&pt->ep[e]);
			pt->nep = 0;
			if (pt->sess.ring)
				sess_free(&pt->sess);
		}
		vhu_close(&c->vhu);
		if (c->bad_ctrl > 1)
			logmsg("device %u: %lu control messages from the guest were "
			       "ignored", c->index, c->bad_ctrl);
	}
}

/* Port p of device c: its place and queues (the session comes next). */
static void
port_init(struct console *c, unsigned p)
{
	struct port *pt = &c->ports[p];

	pt->con = c;
	pt->id = p;
	pt->k = c->index * c->nports + p;
	pt->name = c->opt->names[p];
	pt->rxq = p == 0 ? VIRTIO_CONSOLE_PORT0_RXQ : 2 + 2 * p;
	pt->txq = pt->rxq + 1;
	pt->host_open = -1;
}

/* Append s to the string in buf, as much as fits. */
static void
append(char *buf, size_t size, const char *s)
{
	size_t len = strlen(buf), n = strlen(s);

	if (n > size - 1 - len)
		n = size - 1 - len;
	memcpy(buf + len, s, n);
	buf[len + n] = '\0';
}

/* Port p of device d: its queues, session, and one endpoint per backend
 * that serves it; then the start-up line saying how to reach it. */
static void
start_port(struct daemon *dm, struct console *c, unsigned p)
{
	const struct options *o = &dm->opt;
	struct port *pt = &c->ports[p];
	char err[256], log[PATH_MAX];
	unsigned b;
	int r;

	port_init(c, p);
	if (o->log_file && snprintf(log, sizeof log, "%s%u", o->log_file, pt->k) >=
	    (int)sizeof log)
		die(EXIT_RUNTIME, "log file path too long: %s%u", o->log_file, pt->k);
	if (sess_init(&pt->sess, pt->k, o->history, o->log_file ? log : NULL,
	              err, sizeof err) < 0)
		die(EXIT_RUNTIME, "%s", err);
	for (b = 0; b < o->nbackends; b++) {
		struct endpoint *ep = &pt->ep[pt->nep];

		ep->be = o->backends[b];
		ep->port = pt;
		ep->sess = &pt->sess;
		ep->index = pt->k;
		if ((r = ep->be->open(ep, &o->be, err, sizeof err)) < 0)
			die(EXIT_RUNTIME, "%s", err);
		if (r > 0)
			continue;      /* this way in does not serve console k */
		pt->nep++;
	}
}

/* The start-up line of console k: how to reach it, every way in. */
static void
describe_port(const struct options *o, struct port *pt)
{
	/* Room for every way in and the log path: nothing is cut here (what
	 * is over logmsg()'s line is cut there, and says so). */
	char desc[PATH_MAX + 160], where[6 * sizeof desc] = "", log[PATH_MAX];
	unsigned e;

	for (e = 0; e < pt->nep; e++) {
		pt->ep[e].be->describe(&pt->ep[e], desc, sizeof desc);
		append(where, sizeof where, e ? "; " : "");
		append(where, sizeof where, desc);
	}
	if (o->log_file) {
		snprintf(log, sizeof log, "%s%u", o->log_file, pt->k);
		append(where, sizeof where, pt->nep ? "; log " : "log ");
		append(where, sizeof where, log);
	}
	logmsg("console %u: device %u port %u%s%s%s: %s", pt->k, pt->con->index,
	       pt->id, pt->name ? " \"" : "", pt->name ? pt->name : "",
	       pt->name ? "\"" : "", where);
}

/* Device d as the options describe it, before any socket or backend. */
static void
console_init(struct console *c, const struct options *o, unsigned d)
{
	c->index = d;
	c->opt = o;
	c->nports = o->nports;
	c->cols = o->cols;
	c->rows = o->rows;
	c->ops = console_ops;
	c->ops.num_queues = 2 * (o->nports + 1);
	vhu_init(&c->vhu, d, &c->ops, c, o->max_queue_size);
}

static void
start_console(struct daemon *dm, struct console *c, unsigned d)
{
	const struct options *o = &dm->opt;
	char path[sizeof c->vhu.path], err[256];
	unsigned p;

	console_init(c, o, d);
	dm->ncons = d + 1;
	if (o->fd >= 0) {
		if (vhu_adopt(&c->vhu, o->fd, err, sizeof err) < 0)
			die(EXIT_RUNTIME, "%s", err);
	} else {
		if (snprintf(path, sizeof path, "%s%u", o->socket_path, d) >=
		    (int)sizeof path)
			die(EXIT_RUNTIME, "socket path too long: %s%u", o->socket_path, d);
		if (vhu_listen(&c->vhu, path, err, sizeof err) < 0)
			die(EXIT_RUNTIME, "%s", err);
		/* Born 0600 (umask in main), then opened up as asked. */
		if (chmod(path, o->socket_mode) < 0 ||
		    (o->socket_gid >= 0 && chown(path, (uid_t)-1, (gid_t)o->socket_gid) < 0))
			die(EXIT_RUNTIME, "%s: cannot set mode %04o%s: %s", path,
			    o->socket_mode, o->socket_gid >= 0 ? " and group" : "",
			    strerror(errno));
	}
	for (p = 0; p < c->nports; p++)
		start_port(dm, c, p);
}

/*
 * Everything is set up before anything is said: a start-up failure is one
 * line on stderr.  Then one line per device and per console, and "ready".
 */
static void
start(struct daemon *dm)
{
	const struct options *o = &dm->opt;
	unsigned d, p;

	dm->cons = calloc(o->socket_count, sizeof *dm->cons);
	if (!dm->cons)
		die(EXIT_RUNTIME, "out of memory");
	die_set_cleanup(cleanup, dm);
	for (d = 0; d < o->socket_count; d++)
		start_console(dm, &dm->cons[d], d);
	for (d = 0; d < dm->ncons; d++) {
		struct console *c = &dm->cons[d];

		logmsg("device %u: vhost-user %s %s, %u port%s", d,
		       o->fd >= 0 ? "connection" : "socket", c->vhu.path, c->nports,
		       c->nports == 1 ? "" : "s");
		for (p = 0; p < c->nports; p++)
			describe_port(o, &c->ports[p]);
	}
	logmsg("ready: %u device%s listening", dm->ncons, dm->ncons == 1 ? "" : "s");
	notify_service_manager("READY=1");
}

/* SIGUSR1: what is served, one line per device and per console. */
static void
print_status(struct daemon *dm)
{
	unsigned i, p;

	for (i = 0; i < dm->ncons; i++) {
		struct console *c = &dm->cons[i];

		logmsg("status: device %u (%s): %s%s%s", i, c->vhu.path,
		       c->vhu.conn_fd >= 0 ? "frontend connected" : "no frontend",
		       c->ports[0].added ? ", driver ready" : "",
		       c->vhu.broken ? ", BROKEN" : "");
		for (p = 0; p < c->nports; p++) {
			struct port *pt = &c->ports[p];

			logmsg("status:   console %u (port %u%s%s%s): %s, %u client%s, "
			       "out %llu bytes, in %llu, skipped %llu, never read %llu",
			       pt->k, p, pt->name ? " \"" : "", pt->name ? pt->name : "",
			       pt->name ? "\"" : "",
			       pt->guest_open ? "open in the guest" : "closed in the guest",
			       pt->sess.nreaders, pt->sess.nreaders == 1 ? "" : "s",
			       (unsigned long long)pt->sess.wpos, pt->bytes_in,
			       pt->sess.skipped, pt->sess.unseen);
		}
	}
}

/* What a signal asks for, between two passes. */
static void
handle_signals(struct daemon *dm)
{
	unsigned i, p, e;

	if (got_usr1) {
		got_usr1 = 0;
		print_status(dm);
	}

	if (got_hup && !got_term) {
		got_hup = 0;
		/* The terminal hung up: the nested backend has lost its user. */
		if (has_backend(&dm->opt, &backend_nested)) {
			got_term = SIGHUP;
			return;
		}
		for (i = 0; i < dm->ncons; i++)
			for (p = 0; p < dm->cons[i].nports; p++)
				sess_reopen_log(&dm->cons[i].ports[p].sess);
		if (dm->opt.log_file)
			logmsg("SIGHUP: log files reopened");
	}
	if (got_winch) {
		got_winch = 0;
		for (i = 0; i < dm->ncons; i++) {
			for (p = 0; p < dm->cons[i].nports; p++)
				for (e = 0; e < dm->cons[i].ports[p].nep; e++) {
					struct endpoint *ep = &dm->cons[i].ports[p].ep[e];

					if (ep->be->winch)
						ep->be->winch(ep);
				}
			/* A RESIZE may be in the ring now: notify. */
			vhu_flush_notify(&dm->cons[i].vhu);
		}
	}
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
	unsigned i, p, e;
	int maxfd, n, busy;

	for (;;) {
		handle_signals(dm);
		if (got_term)
			return 0;
		FD_ZERO(&rd);
		FD_ZERO(&wr);
		maxfd = -1;
		busy = 0;
		for (i = 0; i < dm->ncons; i++) {
			struct console *c = &dm->cons[i];

			busy |= vhu_has_work(&c->vhu);
			maxfd = vhu_add_fds(&c->vhu, &rd, maxfd);
			for (p = 0; p < c->nports; p++)
				for (e = 0; e < c->ports[p].nep; e++) {
					struct endpoint *ep = &c->ports[p].ep[e];

					if (ep->quit)
						return 0;
					maxfd = ep->be->add_fds(ep, &rd, &wr, maxfd);
				}
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
			/* The guest gets its transmit buffers back before the
			 * backends write their bytes out: it refills the ring
			 * while we write (one notification each, see vhu.h). */
			vhu_flush_notify(&c->vhu);
			for (p = 0; p < c->nports; p++)
				for (e = 0; e < c->ports[p].nep; e++)
					c->ports[p].ep[e].be->serve(&c->ports[p].ep[e], &rd, &wr);
			after_pass(c);
			vhu_flush_notify(&c->vhu);
			/* With --fd the one frontend's end is the daemon's. */
			if (c->vhu.ended)
				return c->vhu.ended == 1 ? 0 : EXIT_RUNTIME;
		}
	}
}

int
main(int argc, char **argv)
{
	struct daemon dm;
	sigset_t waitmask;
	int status;

	memset(&dm, 0, sizeof dm);
	parse_options(argc, argv, &dm.opt);
	/* Sockets and log files are ours alone until opened up on purpose. */
	umask(077);
	raise_fd_limit();
	signals_setup(&waitmask);
	start(&dm);
	status = run(&dm, &waitmask);
	if (got_term)
		logmsg("%s: shutting down", strsignal(got_term));
	notify_service_manager("STOPPING=1");
	cleanup(&dm);
	free(dm.cons);
	return status;
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
multiport(struct console *c)
{
	return vhu_has_feature(&c->vhu, VIRTIO_CONSOLE_F_MULTIPORT);
}

static int
console_get_config(void *opaque, uint8_t *buf, uint32_t off, uint32_t len)
{
	struct console *c = opaque;
	uint8_t cfg[VIRTIO_CONSOLE_CONFIG_SIZE] = { 0 };

	put_le16(cfg + VIRTIO_CONSOLE_CONFIG_COLS, c->cols);
	put_le16(cfg + VIRTIO_CONSOLE_CONFIG_ROWS, c->rows);
	put_le32(cfg + VIRTIO_CONSOLE_CONFIG_MAX_NR_PORTS, c->nports);
	memcpy(buf, cfg + off, len);
	return 0;
}

/*
 * Only emerg_wr is writable (F_EMERG_WRITE): its low byte goes out on port
 * 0 at once, handshake or not.  QEMU writes the whole 12 bytes at offset 0,
 * other frontends just the 4 at offset 8: any write covering offset 8
 * counts.  Writes to the read-only fields change nothing.
 */
static int
console_set_config(void *opaque, const uint8_t *buf, uint32_t off, uint32_t len)
{
	struct console *c = opaque;

	if (off <= VIRTIO_CONSOLE_CONFIG_EMERG_WR &&
	    off + len > VIRTIO_CONSOLE_CONFIG_EMERG_WR)
		sess_write(&c->ports[0].sess, buf + (VIRTIO_CONSOLE_CONFIG_EMERG_WR - off), 1);
	return 0;
}

/* The port whose receiveq or transmitq q is, or NULL. */
static struct port *
port_of_queue(struct console *c, unsigned q)
{
	unsigned p;

	if (q == VIRTIO_CONSOLE_PORT0_RXQ || q == VIRTIO_CONSOLE_PORT0_TXQ)
		return &c->ports[0];
	if (q < 4 || !multiport(c))
		return NULL;
	p = (q - 2) / 2;
	return p < c->nports ? &c->ports[p] : NULL;
}

static void
console_queue_event(void *opaque, unsigned q)
{
	struct console *c = opaque;
	struct port *p;

	if (q == VIRTIO_CONSOLE_CTRL_TXQ) {
		if (multiport(c))
			ctrl_receive(c);
	} else if (q == VIRTIO_CONSOLE_CTRL_RXQ) {
		if (multiport(c))
			ctrl_flush(c);
	} else if ((p = port_of_queue(c, q)) && q == p->txq) {
		port_transmit(p);
	}
	/* A receiveq: new buffers; the backends see the room. */
}

/* The guest's view of every port starts over. */
static void
ports_forget_guest(struct console *c)
{
	unsigned p;

	for (p = 0; p < c->nports; p++) {
		c->ports[p].added = 0;
		c->ports[p].guest_open = 0;
		c->ports[p].host_open = -1;
		c->ports[p].owed = 0;
		c->ports[p].tx_held = 0;
	}
	c->resize_owed = 0;
}

/* A ring stopped or the device reset: the handshake starts over, and
 * messages meant for the old driver must not reach a new one. */
static void
console_reset(void *opaque, int q)
{
	struct console *c = opaque;
	struct port *p;

	if (q < 0 || q == VIRTIO_CONSOLE_CTRL_RXQ || q == VIRTIO_CONSOLE_CTRL_TXQ) {
		ports_forget_guest(c);
	} else if ((p = port_of_queue(c, (unsigned)q))) {
		p->tx_held = 0;
	}
}

/* The port owes the guest these messages (OWE_*); they leave when a
 * control buffer is there. */
static void
ctrl_owe(struct port *p, unsigned what)
{
	p->owed |= what;
	ctrl_flush(p->con);
}

/* Whether the host side of the port is there: the console port always
 * is, as on QEMU's virtconsole; a generic port while it has a client. */
static int
port_host_open(const struct port *p)
{
	return p->id == 0 || p->sess.nreaders > 0;
}

/*
 * The next message owed, in the order Linux needs: every PORT_ADD first
 * (a message for a port it does not know is ignored), then per port
 * CONSOLE_PORT (which makes the hvc), PORT_NAME, PORT_OPEN, and the
 * console's RESIZE last, since Linux applies it only to a port that is a
 * console already.  0 when nothing is owed.
 */
static int
ctrl_next(struct console *c, struct ctrl_msg *m)
{
	static const struct { unsigned owe; uint16_t event; } order[] = {
		{ OWE_CONSOLE_PORT, VIRTIO_CONSOLE_CONSOLE_PORT },
		{ OWE_PORT_NAME, VIRTIO_CONSOLE_PORT_NAME },
		{ OWE_PORT_OPEN, VIRTIO_CONSOLE_PORT_OPEN },
	};
	unsigned p, i;

	m->value = 1;
	for (p = 0; p < c->nports; p++) {
		if (c->ports[p].owed & OWE_PORT_ADD) {
			m->id = p;
			m->event = VIRTIO_CONSOLE_PORT_ADD;
			return 1;
		}
	}
	for (p = 0; p < c->nports; p++) {
		for (i = 0; i < sizeof order / sizeof order[0]; i++) {
			if (!(c->ports[p].owed & order[i].owe))
				continue;
			m->id = p;
			m->event = order[i].event;
			if (m->event == VIRTIO_CONSOLE_PORT_OPEN)
				m->value = (uint16_t)port_host_open(&c->ports[p]);
			return 1;
		}
	}
	if (c->resize_owed) {
		m->id = 0;
		m->event = VIRTIO_CONSOLE_RESIZE;
		m->value = 0;
		return 1;
	}
	return 0;
}

/* The message ctrl_next() gave is in the guest's buffer: no longer owed. */
static void
ctrl_sent(struct console *c, const struct ctrl_msg *m)
{
	struct port *p = &c->ports[m->id];

	switch (m->event) {
	case VIRTIO_CONSOLE_PORT_ADD:     p->owed &= ~OWE_PORT_ADD; break;
	case VIRTIO_CONSOLE_CONSOLE_PORT: p->owed &= ~OWE_CONSOLE_PORT; break;
	case VIRTIO_CONSOLE_PORT_NAME:    p->owed &= ~OWE_PORT_NAME; break;
	case VIRTIO_CONSOLE_PORT_OPEN:
		p->owed &= ~OWE_PORT_OPEN;
		p->host_open = m->value;
		break;
	case VIRTIO_CONSOLE_RESIZE:       c->resize_owed = 0; break;
	}
}

/* The bytes of a control message; PORT_NAME and RESIZE carry payload,
 * built now so that a RESIZE tells the latest size. */
static size_t
ctrl_encode(struct console *c, const struct ctrl_msg *m, uint8_t *msg)
{
	size_t len = VIRTIO_CONSOLE_CONTROL_SIZE, n;
	const char *name;

	put_le32(msg, m->id);
	put_le16(msg + 4, m->event);
	put_le16(msg + 6, m->value);
	if (m->event == VIRTIO_CONSOLE_PORT_NAME) {
		name = c->ports[m->id].name;
		n = strlen(name);
		memcpy(msg + len, name, n);
		len += n;
	} else if (m->event == VIRTIO_CONSOLE_RESIZE) {
		int spec = c->opt->resize_order == RESIZE_COLS_ROWS;

		put_le16(msg + len, spec ? c->cols : c->rows);
		put_le16(msg + len + 2, spec ? c->rows : c->cols);
		len += 4;
	}
	return len;
}

/* One message per control receive buffer, as Linux expects, while
 * anything is owed and the guest gives buffers. */
static void
ctrl_flush(struct console *c)
{
	uint8_t msg[VIRTIO_CONSOLE_CONTROL_SIZE + MAX_NAME + 1];
	struct ctrl_msg m;
	size_t len;

	while (ctrl_next(c, &m) &&
	       vhu_queue_pop(&c->vhu, VIRTIO_CONSOLE_CTRL_RXQ, &c->elem) == 1) {
		len = ctrl_encode(c, &m, msg);
		if (c->elem.out_num || c->elem.in_len < len) {
			vhu_set_broken(&c->vhu, "control receive buffer is %s",
			               c->elem.out_num ? "device-readable" : "too small");
			return;
		}
		vhu_buf_to_elem(&c->elem, msg, len);
		vhu_queue_push(&c->vhu, VIRTIO_CONSOLE_CTRL_RXQ, &c->elem, len);
		ctrl_sent(c, &m);
	}
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
	unsigned p;

	switch (m->event) {
	case VIRTIO_CONSOLE_DEVICE_READY:
		if (m->value != 1) {
			ctrl_ignore(c, "the guest driver failed to set up");
			return;
		}
		/* A (re)starting driver: announce every port. */
		ports_forget_guest(c);
		for (p = 0; p < c->nports; p++)
			c->ports[p].owed = OWE_PORT_ADD;
		ctrl_flush(c);
		return;
	case VIRTIO_CONSOLE_PORT_READY:
		if (m->id >= c->nports) {
			ctrl_ignore(c, "PORT_READY for unknown port %u", m->id);
			return;
		}
		if (m->value != 1) {
			ctrl_ignore(c, "the guest failed to add port %u", m->id);
			return;
		}
		ctrl_port_ready(c, &c->ports[m->id]);
		return;
	case VIRTIO_CONSOLE_PORT_OPEN:
		if (m->id >= c->nports) {
			ctrl_ignore(c, "PORT_OPEN for unknown port %u", m->id);
			return;
		}
		c->ports[m->id].guest_open = m->value != 0;
		return;
	default:
		ctrl_ignore(c, "unexpected control event %u from the guest", m->event);
	}
}

/* The guest has the port: tell it what it is (console, name, size) and
 * whether the host side is there (port_host_open()). */
static void
ctrl_port_ready(struct console *c, struct port *p)
{
	unsigned owe = OWE_PORT_OPEN;

	p->added = 1;
	if (p->id == 0) {
		logmsg("device %u: the guest's console port is ready", c->index);
		owe |= OWE_CONSOLE_PORT;
	} else {
		logmsg("console %u: the guest's port %u%s%s%s is ready", p->k, p->id,
		       p->name ? " \"" : "", p->name ? p->name : "",
		       p->name ? "\"" : "");
	}
	if (p->name)
		owe |= OWE_PORT_NAME;
	p->host_open = -1;       /* this driver has not been told yet */
	/* The size (sent last, see ctrl_next()) for the hvc of CONSOLE_PORT. */
	if (p->id == 0 && vhu_has_feature(&c->vhu, VIRTIO_CONSOLE_F_SIZE) &&
	    c->cols && c->rows)
		c->resize_owed = 1;
	ctrl_owe(p, owe);
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

/* A generic port takes a chain only when every reader has room for it:
 * the guest waits, nothing is dropped.  With no reader at all the host
 * side is closed and the guest was told so. */
static int
port_tx_room(struct port *p, size_t len)
{
	size_t room = sess_room(&p->sess);

	return p->sess.nreaders && (len <= room || room == p->sess.cap);
}

/*
 * Guest output.  The console port completes every buffer at once, since
 * the guest's hvc driver spins until it is used; readers that cannot keep
 * up skip ahead.  A generic port is data, not a terminal: its buffers
 * wait in the ring until the readers have room (real backpressure).
 */
static void
port_transmit(struct port *p)
{
	struct console *c = p->con;
	unsigned i, done;

	p->tx_held = 0;
	for (done = 0; done < CHAINS_PER_PASS; done++) {
		if (p->id != 0) {
			if (vhu_queue_peek(&c->vhu, p->txq, &c->elem) != 1)
				return;
			if (!port_tx_room(p, c->elem.out_len)) {
				p->tx_held = 1;   /* after_pass() tries again */
				return;
			}
		}
		if (vhu_queue_pop(&c->vhu, p->txq, &c->elem) != 1)
			return;
		if (c->elem.in_num) {
			vhu_set_broken(&c->vhu, "transmit buffer is device-writable");
			return;
		}
		for (i = 0; i < c->elem.out_num; i++)
			sess_write(&p->sess, c->elem.iov[i].iov_base,
			           c->elem.iov[i].iov_len);
		vhu_queue_push(&c->vhu, p->txq, &c->elem, 0);
	}
	vhu_queue_again(&c->vhu, p->txq);
}

/* A generic port's host side opens with its first client and closes with
 * its last: the guest is owed a PORT_OPEN while what it was told differs
 * from the state (a client that came and went before the guest gave a
 * buffer costs nothing). */
static void
port_update_open(struct port *p)
{
	int open = port_host_open(p);

	if (p->id == 0 || !p->added)
		return;
	if (open == p->host_open)
		p->owed &= ~OWE_PORT_OPEN;
	else if (!(p->owed & OWE_PORT_OPEN))
		ctrl_owe(p, OWE_PORT_OPEN);
}

/* After the backends ran: clients came or went, readers made room. */
static void
after_pass(struct console *c)
{
	unsigned p;

	for (p = 0; p < c->nports; p++) {
		port_update_open(&c->ports[p]);
		if (c->ports[p].tx_held)
			port_transmit(&c->ports[p]);
	}
}

size_t
port_input_room(struct port *p)
{
	struct console *c = p->con;

	/* The guest discards data for a generic port it has not opened:
	 * input waits (in the backend's bounded hold, then the socket). */
	if (p->id != 0 && !p->guest_open)
		return 0;
	if (vhu_queue_peek(&c->vhu, p->rxq, &c->elem) != 1)
		return 0;
	if (c->elem.out_num || c->elem.in_len == 0) {
		vhu_set_broken(&c->vhu, "receive buffer is %s",
		               c->elem.out_num ? "device-readable" : "empty");
		return 0;
	}
	return c->elem.in_len;
}

void
port_input(struct port *p, const void *buf, size_t len)
{
	struct console *c = p->con;
	size_t n;

	if (vhu_queue_pop(&c->vhu, p->rxq, &c->elem) != 1) {
		logmsg("console %u: %zu bytes of input lost: the receive buffer went "
		       "away", p->k, len);
		return;
	}
	n = vhu_buf_to_elem(&c->elem, buf, len);
	if (n < len)
		logmsg("console %u: %zu bytes of input lost: the receive buffer "
		       "shrank", p->k, len - n);
	vhu_queue_push(&c->vhu, p->rxq, &c->elem, n);
	p->bytes_in += n;
}

/*
 * Host input, the fast way: the receive chains the guest posted are taken
 * (each walked once), their segments gathered, and one readv() fills them
 * in order; the chains it did not reach go back to the ring.  Bounded by
 * RX_CHAINS_PER_READ chains and VHU_MAX_SEGS segments, so that a guest
 * with a huge ring cannot make one read unbounded.  How many chains are
 * offered adapts, as TCP's window does: twice as many after a read that
 * filled them all (a paste, a flood), as many as the last read used
 * after a short one (a keystroke walks one chain, not the whole ring).
 * The scratch is shared by every port: it lives only for this call.
 */
#define RX_CHAINS_PER_READ 64

size_t
port_read_input(struct port *p, int fd, ssize_t *n)
{
	static struct iovec iov[VHU_MAX_SEGS];
	static struct { uint16_t head; size_t len; } chain[RX_CHAINS_PER_READ];
	struct console *c = p->con;
	unsigned nchains = 0, niov = 0, i;
	size_t left, fill, room = 0;

	if (p->id != 0 && !p->guest_open)
		return 0;         /* see port_input_room() */
	if (p->rx_chains < 1 || p->rx_chains > RX_CHAINS_PER_READ)
		p->rx_chains = 1;
	while (nchains < p->rx_chains &&
	       vhu_queue_pop(&c->vhu, p->rxq, &c->elem) == 1) {
		if (c->elem.out_num) {
			vhu_set_broken(&c->vhu, "receive buffer is device-readable");
			return 0;
		}
		if (niov + c->elem.in_num > VHU_MAX_SEGS) {
			vhu_queue_unpop(&c->vhu, p->rxq, 1);
			break;
		}
		memcpy(iov + niov, c->elem.iov, c->elem.in_num * sizeof iov[0]);
		niov += c->elem.in_num;
		chain[nchains].head = c->elem.head;
		chain[nchains].len = c->elem.in_len;
		room += c->elem.in_len;
		nchains++;
	}
	/* A corrupt chain after good ones broke the device: read nothing
	 * (what it read could not be given to the guest). */
	if (!nchains || c->vhu.broken)
		return 0;
	do
		*n = readv(fd, iov, (int)niov);
	while (*n < 0 && errno == EINTR);
	left = *n > 0 ? (size_t)*n : 0;
	for (i = 0; i < nchains && left; i++) {
		fill = left < chain[i].len ? left : chain[i].len;
		vhu_queue_complete(&c->vhu, p->rxq, chain[i].head, (uint32_t)fill);
		left -= fill;
	}
	vhu_queue_unpop(&c->vhu, p->rxq, nchains - i);
	if (*n > 0 && (size_t)*n == room && nchains == p->rx_chains)
		p->rx_chains = 2 * nchains < RX_CHAINS_PER_READ ?
		               2 * nchains : RX_CHAINS_PER_READ;
	else if (*n > 0)
		p->rx_chains = i;
	p->bytes_in += *n > 0 ? (size_t)*n : 0;
	return room;
}

void
port_feed(struct port *p, char *buf, size_t *len)
{
	size_t room, n, done = 0;

	while (done < *len && (room = port_input_room(p)) > 0) {
		n = *len - done < room ? *len - done : room;
		port_input(p, buf + done, n);
		done += n;
	}
	memmove(buf, buf + done, *len - done);
	*len -= done;
}

/* Tell the guest the console's size: RESIZE with MULTIPORT (Linux ignores
 * the config then), else the config space and a config-change message. */
static void
console_send_size(struct console *c)
{
	if (!vhu_has_feature(&c->vhu, VIRTIO_CONSOLE_F_SIZE))
		return;
	if (multiport(c)) {
		/* One RESIZE owed at most, of the size when it is sent. */
		if (c->ports[0].added && !c->resize_owed) {
			c->resize_owed = 1;
			ctrl_flush(c);
		}
	} else {
		vhu_config_changed(&c->vhu);
	}
}

void
port_set_size(struct port *p, unsigned cols, unsigned rows)
{
	struct console *c = p->con;

	if (p->id != 0 || !cols || !rows || cols > 65535 || rows > 65535 ||
	    (cols == c->cols && rows == c->rows))
		return;
	c->cols = cols;
	c->rows = rows;
	console_send_size(c);
}
