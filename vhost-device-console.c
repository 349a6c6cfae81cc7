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
#include "console.h"
#include "util.h"
#include "vhu.h"
#include "virtio_console.h"

#define MAX_DEVICES      256
#define DEFAULT_TCP_PORT 12345
#define DEFAULT_WEB_PORT 8080
#define DEFAULT_ESCAPE   0x1d    /* Ctrl-] */

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
static void cleanup(void *arg);
static int run(struct daemon *dm, const sigset_t *waitmask);

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
			if (!*optarg || optarg[strspn(optarg, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "abcdefghijklmnopqrstuvwxyz0123456789-._~")])
				usage_error("--web-token: use letters, digits and - . _ ~");
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
	char where[512] = "", desc[160], log[PATH_MAX];
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
			die(EXIT_RUNTIME, "--fd=%d: %s", o->fd, err);
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
	if (has_backend(o, &backend_network) &&
	    strcmp(o->be.tcp_address, "127.0.0.1") != 0 &&
	    strcmp(o->be.tcp_address, "::1") != 0)
		logmsg("warning: consoles listen on %s: anyone who can reach it gets "
		       "the guest's console", o->be.tcp_address);
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
			if (c->vhu.ended != VHU_END_NONE)
				return c->vhu.ended == VHU_END_ORDERLY ? 0 : EXIT_RUNTIME;
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
