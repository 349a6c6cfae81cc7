/*
 * vhost-device-console - a vhost-user backend for the VirtIO console.
 *
 * This file is the daemon: the command line (one option table that drives
 * getopt_long, --help and each option's check), start-up, signals, and
 * the one select() loop.  The device itself is console.c (console.h);
 * vhu.c speaks vhost-user and walks the rings; the files in backends/
 * carry each console to a terminal, TCP or UNIX clients, a pty or a
 * browser, through the console's session (session.h: history,
 * log, readers).  The daemon owns the ways in: one endpoint per backend
 * that serves a console, which the device never sees.
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
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "asciicast.h"
#include "backends/backend.h"
#include "console.h"
#include "trace.h"
#include "util.h"
#include "vhu.h"

#define MAX_DEVICES      256
#define MAX_BACKENDS     5       /* ways in that can serve one console: all */
#define MAX_HISTORY      (64u << 20)
#define DEFAULT_TCP_PORT 12345
#define DEFAULT_WEB_PORT 8080
#define DEFAULT_ESCAPE   0x1d    /* Ctrl-] */
#define DEFAULT_COLS     80      /* the size a guest is told until a */
#define DEFAULT_ROWS     24      /* terminal, telnet or the web says */
#define MAX_OPTIONS      40      /* rows of the option table, at most */
#define STOP_FLUSH_MS    500     /* the last notice's time to go out */

/* A number in --help, from its #define. */
#define STR(x)  #x
#define XSTR(x) STR(x)

/* --help states the default history as a number: keep them in step. */
_Static_assert(SESS_DEFAULT_HISTORY == 65536, "--help says 65536");

struct options {
	const char *socket_path;
	int fd;                      /* --fd: a connected socket, or -1 */
	unsigned socket_mode;        /* of the vhost-user sockets */
	long socket_gid;             /* their group, -1: ours */
	unsigned socket_count;
	const struct backend *backends[MAX_BACKENDS];
	unsigned nbackends;
	struct backend_config be;
	/* --read-only: the ways in whose clients only view */
	const struct backend *read_only[MAX_BACKENDS];
	unsigned nread_only;
	struct vc_config dev;        /* what every device is */
	const char *names[MAX_PORTS];  /* port p's name, or NULL (dev.names) */
	unsigned history;
	const char *log_file;        /* prefix; NULL: no log */
	int log_timestamps;          /* each log line starts with its UTC time */
	const char *record;          /* prefix of the recordings; NULL: none */
	/* --tcp-address and --web-address as resolved: numeric, what
	 * tcp_listen() binds (be.tcp_address and be.web_address point here). */
	char tcp_numeric[NI_MAXHOST], web_numeric[NI_MAXHOST];
	int quiet;                   /* --quiet: no routine messages */
	unsigned char given[MAX_OPTIONS];  /* option table row i was used */
};

/* The ways in to one console: an endpoint per backend that serves it. */
/* Device d, and the ways in to its consoles: one flat list, port by
 * port, that every walk over them takes. */
struct served_device {
	struct vc_device vc;
	struct asciicast rec[MAX_PORTS];  /* port p's recording (--record) */
	struct endpoint ep[MAX_PORTS * MAX_BACKENDS];
	unsigned nep;
};

struct daemon {
	struct options opt;
	void *shared[MAX_BACKENDS];  /* backend b's start() state, or NULL */
	struct served_device *devs;
	unsigned ndevs;
};

static void parse_options(int argc, char **argv, struct options *o);
static void raise_fd_limit(void);
static void signals_setup(sigset_t *waitmask);
static void on_signal(int sig);
static void start(struct daemon *dm);
static void cleanup(void *arg);
static int run(struct daemon *dm, const sigset_t *waitmask);

/* The only state the signal handlers touch. */
static volatile sig_atomic_t got_term, got_hup, got_winch, got_usr1;

/* ---- command line ------------------------------------------------------ */

/*
 * One row per option: what getopt_long is told, what --help says, and how
 * the value is checked and where it goes (target: a member of struct
 * options, through offsetof; lo and hi: parse_uint's range).  A row with
 * no help is shown together with the next one.
 */
struct option_row {
	const char *name;            /* --name */
	char letter;                 /* -l, or 0 */
	const char *arg;             /* the value's name in --help; NULL: none */
	const char *help;            /* --help's lines for it, '\n' between */
	void (*parse)(const struct option_row *r, const char *val,
	              struct options *o);
	size_t target;
	unsigned lo, hi;
};

static _Noreturn void usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static void parse_uint(const struct option_row *r, const char *val,
                       struct options *o);
static void parse_bytes(const struct option_row *r, const char *val,
                        struct options *o);
static void parse_fd(const struct option_row *r, const char *val,
                     struct options *o);
static void parse_path(const struct option_row *r, const char *val,
                       struct options *o);
static void parse_address(const struct option_row *r, const char *val,
                          struct options *o);
static void parse_flag(const struct option_row *r, const char *val,
                       struct options *o);
static void parse_mode(const struct option_row *r, const char *val,
                       struct options *o);
static void parse_group(const struct option_row *r, const char *val,
                        struct options *o);
static void parse_backends(const struct option_row *r, const char *val,
                           struct options *o);
static void parse_token(const struct option_row *r, const char *val,
                        struct options *o);
static void parse_web_origin(const struct option_row *r, const char *val,
                             struct options *o);
static void parse_port(const struct option_row *r, const char *val,
                       struct options *o);
static void parse_console_name(const struct option_row *r, const char *val,
                               struct options *o);
static void parse_size(const struct option_row *r, const char *val,
                       struct options *o);
static void parse_read_only(const struct option_row *r, const char *val,
                            struct options *o);
static void parse_resize_order(const struct option_row *r, const char *val,
                               struct options *o);
static void parse_queue_size(const struct option_row *r, const char *val,
                             struct options *o);
static void parse_escape(const struct option_row *r, const char *val,
                         struct options *o);
static void parse_trace(const struct option_row *r, const char *val,
                        struct options *o);
static void print_capabilities(const struct option_row *r, const char *val,
                               struct options *o);
static void print_help(const struct option_row *r, const char *val,
                       struct options *o);
static void print_version(const struct option_row *r, const char *val,
                          struct options *o);

#define AT(member) offsetof(struct options, member)

static const struct option_row option_table[] = {
	{ "socket-path", 's', "PATH", "vhost-user socket prefix (required, or --fd)",
	  parse_path, AT(socket_path), 0, 0 },
	{ "socket-mode", 0, "MODE", "mode of the vhost-user sockets (default 0600)",
	  parse_mode, AT(socket_mode), 0, 0 },
	{ "socket-group", 0, "GROUP", "their group (the frontend may run as another\n"
	  "user: e.g. --socket-mode=0660 --socket-group=kvm)",
	  parse_group, AT(socket_gid), 0, 0 },
	{ "fd", 0, "N", "serve the connected socket N instead (one\n"
	  "device); exit when it ends: 0 after an orderly\n"
	  "close, 1 after a protocol error",
	  parse_fd, AT(fd), 0, INT_MAX },
	{ "print-capabilities", 0, NULL, "print the backend's JSON capabilities, exit",
	  print_capabilities, 0, 0, 0 },
	{ "socket-count", 'c', "N", "number of devices, 1-" XSTR(MAX_DEVICES)
	  " (default 1)",
	  parse_uint, AT(socket_count), 1, MAX_DEVICES },
	{ "backend", 'b', "LIST", "ways in, comma-separated (default nested):\n"
	  "nested: this terminal (console 0)\n"
	  "network: TCP port --tcp-port + k\n"
	  "unix (or uds): UNIX socket --unix-path + k\n"
	  "pty: a pseudo-terminal per console\n"
	  "web: a browser, http://ADDR:PORT/console/k",
	  parse_backends, 0, 0, 0 },
	{ "tcp-port", 'p', "PORT", "first TCP port (default "
	  XSTR(DEFAULT_TCP_PORT) ")",
	  parse_uint, AT(be.tcp_port), 1, 65535 },
	{ "telnet", 0, NULL, "network: speak telnet (character mode, window\n"
	  "size) so that plain `telnet HOST PORT` works",
	  parse_flag, AT(be.telnet), 0, 0 },
	{ "tcp-address", 0, "ADDR", "address or host name to listen on (default\n"
	  "127.0.0.1); anyone who reaches it gets the\n"
	  "guest's console",
	  parse_address, AT(be.tcp_address), 0, 0 },
	{ "unix-path", 0, "PREFIX", "unix backend socket prefix",
	  parse_path, AT(be.unix_path), 0, 0 },
	{ "unix-mode", 0, "MODE", NULL,
	  parse_mode, AT(be.unix_mode), 0, 0 },
	{ "unix-group", 0, "GROUP", "its sockets' mode (default\n"
	  "0600) and group",
	  parse_group, AT(be.unix_gid), 0, 0 },
	{ "pty-link", 0, "PREFIX", "pty backend: symlink PREFIX + k to console k's pty",
	  parse_path, AT(be.pty_link), 0, 0 },
	{ "web-port", 0, "PORT", "web: the one port of every console (default "
	  XSTR(DEFAULT_WEB_PORT) ")",
	  parse_uint, AT(be.web_port), 1, 65535 },
	{ "web-address", 0, "ADDR", "web: address or host name to listen on\n"
	  "(default 127.0.0.1)",
	  parse_address, AT(be.web_address), 0, 0 },
	{ "web-assets", 0, "DIR", "web: the @xterm/xterm npm package (or the folder\n"
	  "npm installed it into); without it the page\n"
	  "shows plain text",
	  parse_path, AT(be.web_assets), 0, 0 },
	{ "web-token", 0, "TOKEN", "web: every request must carry ?token=TOKEN or\n"
	  "'Authorization: Bearer TOKEN'",
	  parse_token, AT(be.web_token), 0, 0 },
	{ "web-origin", 0, "URL", "web: a public origin, scheme://host[:port], a\n"
	  "reverse proxy serves the consoles as (repeatable)",
	  parse_web_origin, 0, 0, 0 },
	{ "web-view-token", 0, "TOKEN", "web: a second token (needs --web-token) that\n"
	  "gives a read-only view",
	  parse_token, AT(be.web_view_token), 0, 0 },
	{ "read-only", 0, "LIST", "ways in whose clients only view: they get the\n"
	  "output, their input is discarded and counted",
	  parse_read_only, 0, 0, 0 },
	{ "port", 0, "NAME", "add a generic port named NAME (repeatable,\n"
	  "up to " XSTR(MAX_PORTS) " ports in all, each name once; '-'\n"
	  "for no name); any way in but nested alone",
	  parse_port, 0, 0, 0 },
	{ "console-name", 0, "NAME", "a name for port 0 too",
	  parse_console_name, 0, 0, 0 },
	{ "history", 0, "BYTES", "output a new client replays first, up to 64M\n"
	  "(default 64K; 0 turns it off)",
	  parse_bytes, AT(history), 0, MAX_HISTORY },
	{ "log-file", 0, "PATH", "append console k's output to PATHk",
	  parse_path, AT(log_file), 0, 0 },
	{ "log-timestamps", 0, NULL, "start each line of the log files with its UTC\n"
	  "time (ISO 8601, milliseconds)",
	  parse_flag, AT(log_timestamps), 0, 0 },
	{ "record", 0, "PATH", "record console k's session to PATHk, an asciicast\n"
	  "v2 file (asciinema play/cat)",
	  parse_path, AT(record), 0, 0 },
	{ "size", 0, "COLSxROWS", "terminal size told to the guest (default\n"
	  XSTR(DEFAULT_COLS) "x" XSTR(DEFAULT_ROWS) "); the nested terminal, a telnet\n"
	  "client or the web page replaces it",
	  parse_size, 0, 0, 0 },
	{ "resize-order", 0, "ORDER", "RESIZE payload order: cols-rows (default: the\n"
	  "virtio spec, Linux 6.15, fixed stable kernels)\n"
	  "or rows-cols (older Linux guests)",
	  parse_resize_order, 0, 0, 0 },
	{ "max-queue-size", 'q', "N", "largest virtqueue accepted, a power of two\n"
	  "up to 32768 (default 32768)",
	  parse_queue_size, 0, 1, VIRTQ_MAX_SIZE },
	{ "escape", 'e', "CHAR", "nested escape key: ^X notation, one character,\n"
	  "or 'none' (default ^]); the key then q quits,\n"
	  "the key twice sends it once",
	  parse_escape, 0, 0, 0 },
	{ "trace", 0, "[=LEVEL]", "trace on stderr what the frontend and the guest\n"
	  "say: 1 (the default) every vhost-user and\n"
	  "control message, 2 also ring events",
	  parse_trace, AT(dev.trace), TRACE_MSG, TRACE_MAX },
	{ "quiet", 0, NULL, "leave out routine messages (clients and the\n"
	  "frontend coming and going); warnings stay",
	  parse_flag, AT(quiet), 0, 0 },
	{ "help", 'h', NULL, "show this help", print_help, 0, 0, 0 },
	{ "version", 'V', NULL, "show the version", print_version, 0, 0, 0 },
};

#define NOPTIONS (sizeof option_table / sizeof option_table[0])
_Static_assert(NOPTIONS <= MAX_OPTIONS, "struct options' given[] is too small");

/* getopt_long returns OPTION_VAL + i for a long option of row i. */
#define OPTION_VAL 256

static const char usage_head[] =
"usage: " PROGNAME " --socket-path=PATH [options]\n"
"\n"
"A vhost-user backend for a VirtIO console (virtio id 3).  Device d listens\n"
"on the UNIX socket PATHd (PATH0, PATH1, ...) for a vhost-user frontend such\n"
"as QEMU or user-mode-linux, and carries its ports to the host.  Console\n"
"k = d * P + p is port p of device d (P ports per device; port 0 is the\n"
"guest's hvc0).\n"
"\n";

static const char usage_tail[] =
"\n"
"Frontends need 2 * (P + 1) virtqueues and a 12-byte config space: with one\n"
"port, QEMU 10.2: -device vhost-user-test-device-pci,chardev=c0,virtio-id=3,\n"
"num_vqs=4,config_size=12 (num_vqs=6 with one --port, and so on).\n"
"SIGTERM or SIGINT stops the daemon; SIGHUP reopens the log files (with\n"
"the nested backend it stops the daemon: its terminal is gone) and starts\n"
"new recordings; SIGUSR1 prints what is served, with byte counts.  Exit\n"
"status 2: a bad command line; 1: could not start, or failed while running.\n";

#define HELP_COLUMN 29   /* where the help lines start */

/* "--name=ARG", with "-l, " before it if it has a letter. */
static void
option_label(const struct option_row *r, char *buf, size_t len)
{
	size_t n = strlen(buf);

	if (r->letter)
		snprintf(buf + n, len - n, "-%c, --%s%s%s", r->letter, r->name,
		         r->arg && *r->arg != '[' ? "=" : "", r->arg ? r->arg : "");
	else
		snprintf(buf + n, len - n, "    --%s%s%s", r->name,
		         r->arg && *r->arg != '[' ? "=" : "", r->arg ? r->arg : "");
}

/* One entry of --help: the label (rows without help join the next), then
 * the help lines, each at HELP_COLUMN. */
static void
usage_entry(FILE *f, const struct option_row *rows, size_t n)
{
	char label[128] = "  ";
	const char *line, *help = rows[n - 1].help;
	size_t i, len;
	int col;

	for (i = 0; i < n; i++) {
		if (i)
			snprintf(label + strlen(label), sizeof label - strlen(label),
			         ", --%s=%s", rows[i].name, rows[i].arg);
		else
			option_label(&rows[i], label, sizeof label);
	}
	len = strlen(label);
	col = len + 3 > HELP_COLUMN ? (int)len + 3 : HELP_COLUMN;
	for (line = help; *line; line += len + (line[len] == '\n')) {
		len = strcspn(line, "\n");
		fprintf(f, "%-*s%.*s\n", col, line == help ? label : "", (int)len,
		        line);
		col = HELP_COLUMN;
	}
}

static void
usage(FILE *f)
{
	size_t i, first = 0;

	fputs(usage_head, f);
	for (i = 0; i < NOPTIONS; i++) {
		if (!option_table[i].help)
			continue;   /* shown with the next row */
		usage_entry(f, option_table + first, i - first + 1);
		first = i + 1;
	}
	fputs(usage_tail, f);
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

static void *
target(struct options *o, const struct option_row *r)
{
	return (char *)o + r->target;
}

static unsigned
number(const struct option_row *r, const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < r->lo || v > r->hi)
		usage_error("--%s: '%s' is not a number from %u to %u", r->name, s,
		            r->lo, r->hi);
	return (unsigned)v;
}

static void
parse_uint(const struct option_row *r, const char *val, struct options *o)
{
	*(unsigned *)target(o, r) = number(r, val);
}

/* A byte count, with K, M or G for KiB, MiB, GiB as the docs write them
 * ("64K"); the range is checked on the bytes. */
static void
parse_bytes(const struct option_row *r, const char *val, struct options *o)
{
	static const char units[] = "KMG";
	const char *u;
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(val, &end, 10);
	if (end != val && *end && !end[1] && (u = strchr(units, *end)) &&
	    v <= r->hi) {
		v <<= 10 * (u - units + 1);       /* at most 2^56: no overflow */
		end++;
	}
	if (errno || end == val || *end || *val == '-' || v < r->lo || v > r->hi)
		usage_error("--%s: '%s' is not a size from %u to %uM (bytes, or "
		            "with K, M or G)", r->name, val, r->lo, r->hi >> 20);
	*(unsigned *)target(o, r) = (unsigned)v;
}

static void
parse_fd(const struct option_row *r, const char *val, struct options *o)
{
	*(int *)target(o, r) = (int)number(r, val);
}

static void
parse_path(const struct option_row *r, const char *val, struct options *o)
{
	if (!*val)
		usage_error("--%s: empty path", r->name);
	*(const char **)target(o, r) = val;
}

/* An address or host name: resolved once the options are all known, by
 * resolve_address(), and only if its backend is used. */
static void
parse_address(const struct option_row *r, const char *val, struct options *o)
{
	if (!*val)
		usage_error("--%s: empty address", r->name);
	*(const char **)target(o, r) = val;
}

static void
parse_flag(const struct option_row *r, const char *val, struct options *o)
{
	(void)val;
	*(int *)target(o, r) = 1;
}

/* An octal mode for the sockets, 0600 to 0777: the owner keeps access. */
static void
parse_mode(const struct option_row *r, const char *val, struct options *o)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(val, &end, 8);
	if (errno || end == val || *end || v > 0777 || (v & 0600) != 0600)
		usage_error("--%s: '%s' is not an octal mode from 0600 to 0777",
		            r->name, val);
	*(unsigned *)target(o, r) = (unsigned)v;
}

/* A group name or number. */
static void
parse_group(const struct option_row *r, const char *val, struct options *o)
{
	struct group *g;
	char *end;
	unsigned long v;

	if ((g = getgrnam(val))) {
		*(long *)target(o, r) = (long)g->gr_gid;
		return;
	}
	errno = 0;
	v = strtoul(val, &end, 10);
	if (errno || end == val || *end || v > INT_MAX)
		usage_error("--%s: no group '%s'", r->name, val);
	*(long *)target(o, r) = (long)v;
}

/* The way in named by the len bytes at name ("uds" is "unix", as in the
 * Rust tool), or NULL. */
static const struct backend *
backend_named(const char *name, size_t len)
{
	static const struct { const char *name; const struct backend *be; } known[] = {
		{ "nested", &backend_nested }, { "network", &backend_network },
		{ "unix", &backend_unix }, { "uds", &backend_unix },
		{ "pty", &backend_pty }, { "web", &backend_web },
	};
	size_t i;

	for (i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strlen(known[i].name) == len && strncmp(known[i].name, name, len) == 0)
			return known[i].be;
	return NULL;
}

/* A list of ways in, "network,nested", each once, into list (*n of them). */
static void
parse_backend_list(const struct option_row *r, const char *val,
                   const struct backend **list, unsigned *n)
{
	const struct backend *be;
	const char *p = val;
	size_t len;
	unsigned j;

	*n = 0;
	for (;;) {
		len = strcspn(p, ",");
		if (!(be = backend_named(p, len)))
			usage_error("--%s: '%.*s' is not nested, network, unix, pty "
			            "or web", r->name, (int)len, p);
		for (j = 0; j < *n; j++)
			if (list[j] == be)
				usage_error("--%s: %s is listed twice", r->name, be->name);
		list[(*n)++] = be;
		if (!p[len])
			return;
		p += len + 1;
	}
}

static void
parse_backends(const struct option_row *r, const char *val, struct options *o)
{
	parse_backend_list(r, val, o->backends, &o->nbackends);
}

static void
parse_read_only(const struct option_row *r, const char *val, struct options *o)
{
	parse_backend_list(r, val, o->read_only, &o->nread_only);
}

/* The token goes in URLs as it is: no character may need escaping. */
static void
parse_token(const struct option_row *r, const char *val, struct options *o)
{
	/* At most 64 bytes: the URLs printed with it are never cut. */
	if (!*val || strlen(val) > 64 || val[strspn(val, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-._~")])
		usage_error("--%s: use 1 to 64 letters, digits and - . _ ~", r->name);
	*(const char **)target(o, r) = val;
}

/* Checked as the web backend compares it (web_origin_serialize()). */
static void
parse_web_origin(const struct option_row *r, const char *val,
                 struct options *o)
{
	char origin[WEB_ORIGIN_LEN];
	unsigned i;

	if (web_origin_serialize(val, origin, sizeof origin) < 0)
		usage_error("--%s: '%s' is not http(s)://host[:port] with nothing "
		            "after it, e.g. https://console.example", r->name, val);
	for (i = 0; o->be.web_origins[i]; i++)
		;
	if (i == WEB_ORIGINS_MAX)
		usage_error("--%s: at most %d origins", r->name, WEB_ORIGINS_MAX);
	o->be.web_origins[i] = val;
}

/* A port name becomes /dev/virtio-ports/NAME in the guest. */
static void
check_name(const struct option_row *r, const char *name)
{
	const char *p;

	if (!*name || strlen(name) > MAX_NAME)
		usage_error("--%s: a name has 1 to %d bytes", r->name, MAX_NAME);
	for (p = name; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '/' || *p == 0x7f)
			usage_error("--%s: '%s': no spaces, slashes or control "
			            "characters in a name", r->name, name);
}

static void
parse_port(const struct option_row *r, const char *val, struct options *o)
{
	if (o->dev.nports == MAX_PORTS)
		usage_error("--%s: at most %d ports per device", r->name, MAX_PORTS);
	if (strcmp(val, "-") != 0)
		check_name(r, val);
	o->names[o->dev.nports++] = strcmp(val, "-") ? val : NULL;
}

static void
parse_console_name(const struct option_row *r, const char *val,
                   struct options *o)
{
	check_name(r, val);
	o->names[0] = val;
}

/* "80x24" */
static void
parse_size(const struct option_row *r, const char *val, struct options *o)
{
	char *x;
	unsigned long c, rows;

	errno = 0;
	c = strtoul(val, &x, 10);
	if (errno || x == val || *val == '-' || (*x != 'x' && *x != 'X'))
		usage_error("--%s: '%s' is not COLSxROWS", r->name, val);
	rows = strtoul(x + 1, &x, 10);
	if (errno || *x || c < 1 || c > 65535 || rows < 1 || rows > 65535)
		usage_error("--%s: '%s' is not COLSxROWS (1-65535 each)", r->name, val);
	o->dev.cols = c;
	o->dev.rows = rows;
}

static void
parse_resize_order(const struct option_row *r, const char *val,
                   struct options *o)
{
	if (strcmp(val, "cols-rows") == 0)
		o->dev.resize_order = RESIZE_COLS_ROWS;
	else if (strcmp(val, "rows-cols") == 0)
		o->dev.resize_order = RESIZE_ROWS_COLS;
	else
		usage_error("--%s: '%s' is not cols-rows or rows-cols", r->name, val);
}

static void
parse_queue_size(const struct option_row *r, const char *val, struct options *o)
{
	unsigned n = number(r, val);

	if (n & (n - 1))
		usage_error("--%s: %u is not a power of two", r->name, n);
	o->dev.max_queue_size = n;
}

/* "^]" (caret notation), a single character, or "none". */
static void
parse_escape(const struct option_row *r, const char *s, struct options *o)
{
	if (strcmp(s, "none") == 0) {
		o->be.escape = -1;
	} else if (s[0] == '^' && s[1] == '?' && !s[2]) {
		o->be.escape = 0x7f;
	} else if (s[0] == '^' && !s[2] && ((s[1] >= '@' && s[1] <= '_') ||
	                                    (s[1] >= 'a' && s[1] <= 'z'))) {
		o->be.escape = s[1] & 0x1f;
	} else if (s[0] && !s[1]) {
		o->be.escape = (unsigned char)s[0];
	} else {
		usage_error("--%s: '%s' is not ^X, one character, or 'none'",
		            r->name, s);
	}
}

/* --trace alone is level 1 (an arg starting '[' is optional). */
static void
parse_trace(const struct option_row *r, const char *val, struct options *o)
{
	*(unsigned *)target(o, r) = val ? number(r, val) : TRACE_MSG;
}

/* The backend program conventions: this one answer, whatever else the
 * command line says (parse_options() looks for it first). */
static void
print_capabilities(const struct option_row *r, const char *val,
                   struct options *o)
{
	(void)r;
	(void)val;
	(void)o;
	printf("{\"type\": \"console\"}\n");
	exit(0);
}

static void
print_help(const struct option_row *r, const char *val, struct options *o)
{
	(void)r;
	(void)val;
	(void)o;
	usage(stdout);
	exit(0);
}

static void
print_version(const struct option_row *r, const char *val, struct options *o)
{
	(void)r;
	(void)val;
	(void)o;
	printf(PROGNAME " " VERSION "\n");
	exit(0);
}

/* The table as getopt_long wants it: long options, and the short-option
 * string (':' first, so that a missing value is told apart). */
static void
getopt_tables(struct option *longopts, char *shortopts)
{
	size_t i;

	*shortopts++ = ':';
	for (i = 0; i < NOPTIONS; i++) {
		const struct option_row *r = &option_table[i];

		longopts[i].name = r->name;
		/* An argument shown as "[=ARG]" may be left out. */
		longopts[i].has_arg = !r->arg ? no_argument :
		                      *r->arg == '[' ? optional_argument : required_argument;
		longopts[i].flag = NULL;
		longopts[i].val = OPTION_VAL + (int)i;
		if (r->letter) {
			*shortopts++ = r->letter;
			if (r->arg)
				*shortopts++ = ':';
		}
	}
	memset(&longopts[NOPTIONS], 0, sizeof longopts[0]);
	*shortopts = '\0';
}

/* The row getopt_long's answer ch names: a long option's value, or a
 * short option's letter; NULL for none. */
static const struct option_row *
row_of(int ch)
{
	size_t i;

	if (ch >= OPTION_VAL && (size_t)(ch - OPTION_VAL) < NOPTIONS)
		return &option_table[ch - OPTION_VAL];
	for (i = 0; ch > 0 && i < NOPTIONS; i++)
		if (option_table[i].letter == ch)
			return &option_table[i];
	return NULL;
}

/*
 * A long option getopt_long refused, told in our words: the C libraries
 * word (and sort) these cases differently, so the table decides.  arg is
 * "--name" or "--name=value"; name may be an abbreviation.
 */
static _Noreturn void
bad_long_option(const char *arg)
{
	const char *name = arg + 2;
	size_t len = strcspn(name, "="), i, n = 0;
	const struct option_row *match = NULL;
	char all[512] = "";

	for (i = 0; i < NOPTIONS; i++) {
		const struct option_row *r = &option_table[i];

		if (strncmp(r->name, name, len) != 0)
			continue;
		if (strlen(r->name) == len) {      /* exact: no ambiguity */
			match = r;
			n = 1;
			break;
		}
		match = r;
		n++;
		snprintf(all + strlen(all), sizeof all - strlen(all), "%s--%s",
		         n > 1 ? ", " : "", r->name);
	}
	if (n == 0)
		usage_error("unknown option --%.*s", (int)len, name);
	if (n > 1)
		usage_error("ambiguous option --%.*s: %s", (int)len, name, all);
	if (!match->arg && name[len] == '=')
		usage_error("--%s takes no value", match->name);
	if (match->arg && name[len] != '=')
		usage_error("option --%s needs a value", match->name);
	usage_error("bad option %s", arg);
}

/* getopt_long's '?' or ':' (a missing value): which option, and why. */
static _Noreturn void
bad_option(int ch, const char *arg)
{
	const struct option_row *r = row_of(optopt);

	if (ch == ':' && r && optopt >= OPTION_VAL)
		usage_error("option --%s needs a value", r->name);
	if (ch == ':' && r)
		usage_error("option -%c (--%s) needs a value", r->letter, r->name);
	if (optopt > 0 && optopt < OPTION_VAL)
		usage_error("unknown option -%c", optopt);
	if (arg && strncmp(arg, "--", 2) == 0)
		bad_long_option(arg);
	usage_error("bad option %s", arg ? arg : "");
}

/* be is one of the n ways in of list. */
static int
listed(const struct backend *const *list, unsigned n, const struct backend *be)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (list[i] == be)
			return 1;
	return 0;
}

static int
has_backend(const struct options *o, const struct backend *be)
{
	return listed(o->backends, o->nbackends, be);
}

/* Way in be only views (--read-only). */
static int
is_read_only(const struct options *o, const struct backend *be)
{
	return listed(o->read_only, o->nread_only, be);
}

/* Option --name was on the command line. */
static int
given(const struct options *o, const char *name)
{
	size_t i;

	for (i = 0; i < NOPTIONS; i++)
		if (strcmp(option_table[i].name, name) == 0)
			return o->given[i];
	return 0;
}

/* --read-only names ways in that are used; --web-view-token is a second
 * token: with no first one everyone has full access already. */
static void
check_read_only(const struct options *o)
{
	unsigned i;

	for (i = 0; i < o->nread_only; i++)
		if (!has_backend(o, o->read_only[i]))
			usage_error("--read-only: %s is not in --backend",
			            o->read_only[i]->name);
	if (o->be.web_view_token && !has_backend(o, &backend_web))
		usage_error("--web-view-token needs --backend=web");
	if (o->be.web_view_token && !o->be.web_token)
		usage_error("--web-view-token needs --web-token (without it every "
		            "browser has full access)");
	if (o->be.web_view_token && strcmp(o->be.web_view_token,
	                                   o->be.web_token) == 0)
		usage_error("--web-view-token must differ from --web-token");
}

static void
set_defaults(struct options *o)
{
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
	o->dev.max_queue_size = VIRTQ_MAX_SIZE;
	o->dev.nports = 1;
	o->dev.names = o->names;
	/* A guest told 0x0 has no size at all (stty size fails, lines wrap
	 * wrongly): it gets a terminal's usual size until one is known. */
	o->dev.cols = DEFAULT_COLS;
	o->dev.rows = DEFAULT_ROWS;
	o->dev.resize_order = RESIZE_COLS_ROWS;
	o->history = SESS_DEFAULT_HISTORY;
}

/*
 * --NAME's address as tcp_listen() binds it: a numeric address as it is,
 * a host name as getaddrinfo() resolves it (its first address), into buf.
 * A name that does not resolve is the command line's fault.
 */
static const char *
resolve_address(const char *name, const char *addr, char *buf, size_t len)
{
	struct addrinfo hints, *res;
	int e;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(addr, NULL, &hints, &res) == 0) {
		freeaddrinfo(res);
		return addr;          /* numeric: tcp_listen() reads it as is */
	}
	hints.ai_flags = 0;
	if ((e = getaddrinfo(addr, NULL, &hints, &res)) != 0)
		usage_error("--%s: cannot resolve '%s': %s", name, addr,
		            gai_strerror(e));
	e = getnameinfo(res->ai_addr, res->ai_addrlen, buf, len, NULL, 0,
	                NI_NUMERICHOST);
	freeaddrinfo(res);
	if (e != 0)
		usage_error("--%s: '%s': %s", name, addr, gai_strerror(e));
	return buf;
}

/* PREFIX + k, for every console (or device) k up to last, fits in max
 * bytes: refused here, before anything is made, not half-way through. */
static void
check_prefix(const char *name, const char *prefix, unsigned last, size_t max)
{
	if (prefix && (size_t)snprintf(NULL, 0, "%s%u", prefix, last) > max)
		usage_error("--%s: %s%u is over %zu bytes", name, prefix, last, max);
}

/* Whether chown() to gid can succeed: it is one of our groups (or we are
 * root).  Otherwise the sockets could never be opened up as asked. */
static int
group_is_ours(long gid)
{
	gid_t *groups;
	int i, n, ours = 0;

	if (gid < 0 || geteuid() == 0 || (gid_t)gid == getegid())
		return 1;
	if ((n = getgroups(0, NULL)) <= 0 ||
	    !(groups = calloc((size_t)n, sizeof *groups)))
		return 0;
	n = getgroups(n, groups);
	for (i = 0; i < n; i++)
		ours |= groups[i] == (gid_t)gid;
	free(groups);
	return ours;
}

/* Each port name once: the guest's /dev/virtio-ports/NAME is one link. */
static void
check_names_unique(const struct options *o)
{
	unsigned i, j;

	for (i = 0; i < o->dev.nports; i++)
		for (j = i + 1; j < o->dev.nports; j++)
			if (o->names[i] && o->names[j] &&
			    strcmp(o->names[i], o->names[j]) == 0)
				usage_error("%s: the name '%s' is given to ports %u and %u",
				            i ? "--port" : "--console-name", o->names[i],
				            i, j);
}

/* What no single option can check: the options together.  Everything the
 * command line decides is checked here, so that a bad one exits 2 before
 * anything is made (see EXIT STATUS in the man page).  Long as a list is
 * long: one rule per statement, in the order --help gives the options. */
static void
check_options(struct options *o)
{
	unsigned nconsoles;

	int network = has_backend(o, &backend_network);

	if (o->fd >= 0 && o->socket_path)
		usage_error("--fd and --socket-path exclude each other");
	if (o->fd >= 0 && o->socket_count > 1)
		usage_error("--fd serves one device: drop --socket-count");
	if (!o->socket_path && o->fd < 0)
		usage_error("--socket-path (or --fd) is required");
	if (has_backend(o, &backend_nested) && o->socket_count > 1)
		usage_error("the nested backend serves one device: use "
		            "--socket-count=1 or --backend=network");
	if (!network && !has_backend(o, &backend_unix) &&
	    !has_backend(o, &backend_pty) && !has_backend(o, &backend_web) &&
	    o->dev.nports > 1)
		usage_error("--port: generic ports need --backend=network, unix, "
		            "pty or web (the terminal carries console 0 only)");
	if (!network && (given(o, "tcp-port") || given(o, "tcp-address")))
		usage_error("--tcp-port and --tcp-address need --backend=network");
	if (o->be.telnet && !network)
		usage_error("--telnet needs --backend=network");
	if ((given(o, "web-port") || given(o, "web-address") ||
	     given(o, "web-assets") || given(o, "web-token") ||
	     given(o, "web-origin")) && !has_backend(o, &backend_web))
		usage_error("--web-port, --web-address, --web-assets, --web-token "
		            "and --web-origin need --backend=web");
	check_read_only(o);
	if (o->be.pty_link && !has_backend(o, &backend_pty))
		usage_error("--pty-link needs --backend=pty");
	if (has_backend(o, &backend_unix) != (o->be.unix_path != NULL))
		usage_error(o->be.unix_path ? "--unix-path needs --backend=unix"
		                            : "--backend=unix needs --unix-path");
	if (network &&
	    o->be.tcp_port + o->socket_count * o->dev.nports - 1 > 65535)
		usage_error("--tcp-port: %u + %u consoles goes past port 65535",
		            o->be.tcp_port, o->socket_count * o->dev.nports);
	check_names_unique(o);
	nconsoles = o->socket_count * o->dev.nports;
	check_prefix("socket-path", o->socket_path, o->socket_count - 1,
	             sizeof ((struct sockaddr_un *)0)->sun_path - 1);
	check_prefix("unix-path", o->be.unix_path, nconsoles - 1,
	             sizeof ((struct sockaddr_un *)0)->sun_path - 1);
	check_prefix("log-file", o->log_file, nconsoles - 1, PATH_MAX - 1);
	check_prefix("record", o->record, nconsoles - 1, PATH_MAX - 1);
	if (o->log_timestamps && !o->log_file)
		usage_error("--log-timestamps needs --log-file");
	/* backends/pty.c keeps the link's path in 128 bytes */
	check_prefix("pty-link", o->be.pty_link, nconsoles - 1, 127);
	if (!group_is_ours(o->socket_gid))
		usage_error("--socket-group: %ld is not one of our groups: the "
		            "sockets' group cannot be set to it", o->socket_gid);
	if (has_backend(o, &backend_unix) && !group_is_ours(o->be.unix_gid))
		usage_error("--unix-group: %ld is not one of our groups: the "
		            "sockets' group cannot be set to it", o->be.unix_gid);
	if (network)
		o->be.tcp_address = resolve_address("tcp-address", o->be.tcp_address,
		                                    o->tcp_numeric,
		                                    sizeof o->tcp_numeric);
	if (has_backend(o, &backend_web))
		o->be.web_address = resolve_address("web-address", o->be.web_address,
		                                    o->web_numeric,
		                                    sizeof o->web_numeric);
	o->be.nports = o->dev.nports;
	o->be.names = o->names;
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	struct option longopts[NOPTIONS + 1];
	char shortopts[2 * NOPTIONS + 2];
	const struct option_row *r;
	int ch, i;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--print-capabilities") == 0)
			print_capabilities(NULL, NULL, o);
	set_defaults(o);
	getopt_tables(longopts, shortopts);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (ch == '?' || ch == ':' || !(r = row_of(ch)))
			bad_option(ch, optind > 1 ? argv[optind - 1] : NULL);
		o->given[r - option_table] = 1;
		r->parse(r, optarg, o);
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	check_options(o);
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
	unsigned d, p, e;

	for (d = 0; d < dm->ndevs; d++) {
		struct served_device *sd = &dm->devs[d];

		for (e = 0; e < sd->nep; e++)
			sd->ep[e].be->close(&sd->ep[e]);
		sd->nep = 0;
		for (p = 0; p < sd->vc.nports; p++)
			if (sd->vc.ports[p].sess.ring) {
				sess_free(&sd->vc.ports[p].sess);
				cast_close(&sd->rec[p]);
			}
		vc_device_close(&sd->vc);
	}
	for (d = 0; d < dm->opt.nbackends; d++)
		if (dm->shared[d]) {
			dm->opt.backends[d]->stop(dm->shared[d]);
			dm->shared[d] = NULL;
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

/* The session's tap, for a recording. */
static void
record_output(void *arg, const void *p, size_t n)
{
	cast_output(arg, p, n);
}

static void
record_resize(void *arg, unsigned cols, unsigned rows)
{
	cast_resize(arg, cols, rows);
}

static const struct sess_tap record_tap = { record_output, record_resize };

/* --record: console k's session to PATHk, from its size at start. */
static void
start_recording(const struct options *o, struct served_device *sd,
                unsigned p)
{
	struct port *pt = &sd->vc.ports[p];
	char err[PATH_MAX + 64], path[PATH_MAX];

	cast_init(&sd->rec[p], pt->k);
	if (!o->record)
		return;
	if (snprintf(path, sizeof path, "%s%u", o->record, pt->k) >=
	    (int)sizeof path)
		die(EXIT_RUNTIME, "recording path too long: %s%u", o->record, pt->k);
	if (cast_open(&sd->rec[p], path, sd->vc.cols, sd->vc.rows, err,
	              sizeof err) < 0)
		die(EXIT_RUNTIME, "%s", err);
	pt->sess.tap = &record_tap;
	pt->sess.tap_arg = &sd->rec[p];
}

/* Console k (port p of sd): its session, and one endpoint per backend
 * that serves it. */
static void
start_port(const struct daemon *dm, struct served_device *sd, unsigned p)
{
	const struct options *o = &dm->opt;
	struct port *pt = &sd->vc.ports[p];
	char err[256], log[PATH_MAX];
	unsigned b;
	int r;

	if (o->log_file && snprintf(log, sizeof log, "%s%u", o->log_file, pt->k) >=
	    (int)sizeof log)
		die(EXIT_RUNTIME, "log file path too long: %s%u", o->log_file, pt->k);
	if (sess_init(&pt->sess, pt->k, port_replay(pt, o->history),
	              o->log_file ? log : NULL, err, sizeof err) < 0)
		die(EXIT_RUNTIME, "%s", err);
	pt->sess.log_timestamps = o->log_timestamps;
	start_recording(o, sd, p);
	for (b = 0; b < o->nbackends; b++) {
		struct endpoint *ep = &sd->ep[sd->nep];

		memset(ep, 0, sizeof *ep);
		ep->be = o->backends[b];
		ep->shared = dm->shared[b];
		ep->port = pt;
		ep->sess = &pt->sess;
		ep->index = pt->k;
		ep->device = sd->vc.index;
		ep->port_id = pt->id;
		ep->name = pt->name;
		ep->read_only = is_read_only(o, ep->be);
		if ((r = ep->be->open(ep, &o->be, err, sizeof err)) < 0)
			die(EXIT_RUNTIME, "%s", err);
		if (r > 0)
			continue;      /* this way in does not serve console k */
		sd->nep++;
	}
}

/* The start-up line of console k: how to reach it, every way in. */
static void
describe_port(const struct options *o, const struct port *pt,
              struct served_device *sd)
{
	/* Room for every way in, the log and recording paths: nothing is cut here (what
	 * is over logmsg()'s line is cut there, and says so). */
	char desc[PATH_MAX + 160], where[(MAX_BACKENDS + 2) * sizeof desc] = "", log[PATH_MAX];
	unsigned e;

	for (e = 0; e < sd->nep; e++) {
		if (sd->ep[e].port != pt)
			continue;
		append(where, sizeof where, where[0] ? "; " : "");
		sd->ep[e].be->describe(&sd->ep[e], desc, sizeof desc);
		append(where, sizeof where, desc);
	}
	if (o->log_file) {
		snprintf(log, sizeof log, "%s%u", o->log_file, pt->k);
		append(where, sizeof where, where[0] ? "; log " : "log ");
		append(where, sizeof where, log);
	}
	if (o->record) {
		snprintf(log, sizeof log, "%s%u", o->record, pt->k);
		append(where, sizeof where, where[0] ? "; recording " : "recording ");
		append(where, sizeof where, log);
	}
	logmsg("console %u: device %u port %u%s%s%s: %s", pt->k, pt->vc->index,
	       pt->id, pt->name ? " \"" : "", pt->name ? pt->name : "",
	       pt->name ? "\"" : "", where);
}

/* Device d's vhost-user side: the connection --fd gave, or socket PATHd. */
static void
start_vhost_user(const struct options *o, struct vc_device *vc, unsigned d)
{
	char path[sizeof vc->vhu.path], err[256];

	if (o->fd >= 0) {
		if (vhu_adopt(&vc->vhu, o->fd, err, sizeof err) < 0)
			die(EXIT_RUNTIME, "--fd=%d: %s", o->fd, err);
		return;
	}
	if (snprintf(path, sizeof path, "%s%u", o->socket_path, d) >=
	    (int)sizeof path)
		die(EXIT_RUNTIME, "socket path too long: %s%u", o->socket_path, d);
	if (vhu_listen(&vc->vhu, path, err, sizeof err) < 0)
		die(EXIT_RUNTIME, "%s", err);
	/* Born 0600 (umask in main), then opened up as asked. */
	if (chmod(path, o->socket_mode) < 0 ||
	    (o->socket_gid >= 0 && chown(path, (uid_t)-1, (gid_t)o->socket_gid) < 0))
		die(EXIT_RUNTIME, "%s: cannot set mode %04o%s: %s", path,
		    o->socket_mode, o->socket_gid >= 0 ? " and group" : "",
		    strerror(errno));
}

static void
start_device(struct daemon *dm, struct served_device *sd, unsigned d)
{
	unsigned p;

	vc_device_init(&sd->vc, &dm->opt.dev, d);
	dm->ndevs = d + 1;
	start_vhost_user(&dm->opt, &sd->vc, d);
	for (p = 0; p < sd->vc.nports; p++)
		start_port(dm, sd, p);
}

/* What a backend serves once for all its consoles, before any of them. */
static void
start_backends(struct daemon *dm)
{
	char err[256];
	unsigned b;

	for (b = 0; b < dm->opt.nbackends; b++) {
		const struct backend *be = dm->opt.backends[b];

		if (be->start &&
		    !(dm->shared[b] = be->start(&dm->opt.be, err, sizeof err)))
			die(EXIT_RUNTIME, "%s", err);
	}
}

/* The addresses to bind, named as the user gave them: a runtime error
 * (status 1), like a bind that fails, not a usage one. */
static void
check_addresses(const struct options *o)
{
	if (has_backend(o, &backend_network) && !ip_address(o->be.tcp_address))
		die(EXIT_RUNTIME, "--tcp-address: '%s' is not an IP address",
		    o->be.tcp_address);
	if (has_backend(o, &backend_web) && !ip_address(o->be.web_address))
		die(EXIT_RUNTIME, "--web-address: '%s' is not an IP address",
		    o->be.web_address);
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

	check_addresses(o);
	dm->devs = calloc(o->socket_count, sizeof *dm->devs);
	if (!dm->devs)
		die(EXIT_RUNTIME, "out of memory");
	die_set_cleanup(cleanup, dm);
	start_backends(dm);
	for (d = 0; d < o->socket_count; d++)
		start_device(dm, &dm->devs[d], d);
	for (d = 0; d < dm->ndevs; d++) {
		struct served_device *sd = &dm->devs[d];

		logmsg("device %u: vhost-user %s %s, %u port%s", d,
		       o->fd >= 0 ? "connection" : "socket", sd->vc.vhu.path,
		       sd->vc.nports, sd->vc.nports == 1 ? "" : "s");
		for (p = 0; p < sd->vc.nports; p++)
			describe_port(o, &sd->vc.ports[p], sd);
	}
	logmsg("ready: %u device%s listening", dm->ndevs, dm->ndevs == 1 ? "" : "s");
	notify_service_manager("READY=1");
}

/* Console p of sd: its clients, writers apart from viewers, and its
 * bytes. */
static void
print_port_status(const struct served_device *sd, unsigned p)
{
	const struct port *pt = &sd->vc.ports[p];
	/* Every client is a reader of the session, viewers too. */
	unsigned writers = pt->sess.nreaders - pt->viewers;

	logmsg("status:   console %u (port %u%s%s%s): %s, %u client%s, "
	       "out %llu bytes, in %llu, skipped %llu, never read %llu; "
	       "%u writer%s, %u viewer%s; viewers typed %llu bytes, discarded",
	       pt->k, p, pt->name ? " \"" : "", pt->name ? pt->name : "",
	       pt->name ? "\"" : "",
	       pt->guest_open ? "open in the guest" : "closed in the guest",
	       pt->sess.nreaders, pt->sess.nreaders == 1 ? "" : "s",
	       (unsigned long long)pt->sess.wpos, pt->bytes_in,
	       pt->sess.skipped, pt->sess.unseen,
	       writers, writers == 1 ? "" : "s", pt->viewers,
	       pt->viewers == 1 ? "" : "s", pt->discarded);
}

/* SIGUSR1: what is served, one line per device and per console. */
static void
print_status(struct daemon *dm)
{
	unsigned d, p;

	for (d = 0; d < dm->ndevs; d++) {
		struct vc_device *vc = &dm->devs[d].vc;

		logmsg("status: device %u (%s): %s%s%s", d, vc->vhu.path,
		       vc->vhu.conn_fd >= 0 ? "frontend connected" : "no frontend",
		       vc->ports[0].added ? ", driver ready" : "",
		       vc->vhu.broken ? ", BROKEN" : "");
		for (p = 0; p < vc->nports; p++)
			print_port_status(&dm->devs[d], p);
	}
}

/* SIGWINCH: every way in that follows a terminal's size rereads it. */
static void
winch_all(struct daemon *dm)
{
	unsigned d, e;

	for (d = 0; d < dm->ndevs; d++) {
		struct served_device *sd = &dm->devs[d];

		for (e = 0; e < sd->nep; e++)
			if (sd->ep[e].be->winch)
				sd->ep[e].be->winch(&sd->ep[e]);
		/* A RESIZE may be in the ring now: notify. */
		vhu_flush_notify(&sd->vc.vhu);
	}
}

/* SIGHUP to every way in: HUP_QUIT when one of them says so. */
static enum hup_result
hangup_all(struct daemon *dm)
{
	enum hup_result res = HUP_GO_ON;
	unsigned d, e;

	for (d = 0; d < dm->ndevs; d++)
		for (e = 0; e < dm->devs[d].nep; e++) {
			struct endpoint *ep = &dm->devs[d].ep[e];

			if (ep->be->hangup && ep->be->hangup(ep) == HUP_QUIT)
				res = HUP_QUIT;
		}
	return res;
}

/* What a signal asks for, between two passes. */
static void
handle_signals(struct daemon *dm)
{
	unsigned d, p;
	int logs_failed = 0, casts_failed = 0;

	if (got_usr1) {
		got_usr1 = 0;
		print_status(dm);
	}
	if (got_hup && !got_term) {
		got_hup = 0;
		if (hangup_all(dm) == HUP_QUIT) {
			got_term = SIGHUP;
			return;
		}
		/* Said done only when it was: each failure has its line. */
		for (d = 0; d < dm->ndevs; d++)
			for (p = 0; p < dm->devs[d].vc.nports; p++) {
				logs_failed |= sess_reopen_log(&dm->devs[d].vc.ports[p].sess);
				casts_failed |= cast_reopen(&dm->devs[d].rec[p]);
			}
		if (dm->opt.log_file && !logs_failed)
			loginfo("SIGHUP: log files reopened");
		if (dm->opt.record && !casts_failed)
			loginfo("SIGHUP: recordings started anew");
	}
	if (got_winch) {
		got_winch = 0;
		winch_all(dm);
	}
}

/* A user asked to quit (the terminal's escape key). */
static int
quit_asked(const struct daemon *dm)
{
	unsigned d, e;

	for (d = 0; d < dm->ndevs; d++)
		for (e = 0; e < dm->devs[d].nep; e++)
			if (dm->devs[d].ep[e].quit)
				return 1;
	return 0;
}

/* Every fd the next wait watches, vhost-user's and every way in's; *busy:
 * a device has chains left from the last pass. */
static int
watch_fds(struct daemon *dm, fd_set *rd, fd_set *wr, int *busy)
{
	unsigned d, e;
	int maxfd = -1;

	FD_ZERO(rd);
	FD_ZERO(wr);
	*busy = 0;
	for (d = 0; d < dm->ndevs; d++) {
		struct served_device *sd = &dm->devs[d];

		*busy |= vhu_has_work(&sd->vc.vhu);
		maxfd = vhu_add_fds(&sd->vc.vhu, rd, maxfd);
		for (e = 0; e < sd->nep; e++)
			maxfd = sd->ep[e].be->add_fds(&sd->ep[e], rd, wr, maxfd);
	}
	for (d = 0; d < dm->opt.nbackends; d++)
		if (dm->shared[d])
			maxfd = dm->opt.backends[d]->add_fds_shared(dm->shared[d],
			                                            rd, wr, maxfd);
	return maxfd;
}

/* Hand each ready fd to the code that owns it, device by device.  Returns
 * -1, or the daemon's exit status once the --fd frontend's end came. */
static int
serve_ready(struct daemon *dm, const fd_set *rd, const fd_set *wr)
{
	unsigned d, e;

	for (d = 0; d < dm->ndevs; d++) {
		struct served_device *sd = &dm->devs[d];
		struct vc_device *vc = &sd->vc;

		vhu_serve(&vc->vhu, rd);
		/* The guest gets its transmit buffers back before the
		 * backends write their bytes out: it refills the ring
		 * while we write (one notification each, see vhu.h). */
		vhu_flush_notify(&vc->vhu);
		for (e = 0; e < sd->nep; e++)
			sd->ep[e].be->serve(&sd->ep[e], rd, wr);
		vc_after_pass(vc);
		vhu_flush_notify(&vc->vhu);
		/* With --fd the one frontend's end is the daemon's. */
		if (vc->vhu.ended != VHU_END_NONE)
			return vc->vhu.ended == VHU_END_ORDERLY ? 0 : EXIT_RUNTIME;
	}
	for (d = 0; d < dm->opt.nbackends; d++)
		if (dm->shared[d])
			dm->opt.backends[d]->serve_shared(dm->shared[d], rd, wr);
	return -1;
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
	int maxfd, n, busy, status;

	for (;;) {
		handle_signals(dm);
		if (got_term)
			return 0;
		if (quit_asked(dm))
			return 0;
		maxfd = watch_fds(dm, &rd, &wr, &busy);
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
		if ((status = serve_ready(dm, &rd, &wr)) >= 0)
			return status;
	}
}

/* Whether a console's reader still has an event to be told. */
static int
notices_pending(const struct daemon *dm)
{
	unsigned d;

	for (d = 0; d < dm->ndevs; d++)
		if (sess_notice_pending(&dm->devs[d].vc.ports[0].sess))
			return 1;
	return 0;
}

static long
ms_until(const struct timespec *end)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (end->tv_sec - now.tv_sec) * 1000 +
	       (end->tv_nsec - now.tv_nsec) / 1000000;
}

/*
 * On the way out every console's readers are told "stopping", after the
 * output they have not had yet: a client of socat or nc sees why the
 * connection ends.  Best effort and bounded: passes that only write
 * (nothing is read, nobody new is taken), for STOP_FLUSH_MS at most; a
 * reader that does not take its bytes by then is closed without them.
 */
static void
tell_stopping(struct daemon *dm)
{
	struct timespec end, wait;
	fd_set rd, wr;
	int maxfd, busy;
	long ms;
	unsigned d;

	for (d = 0; d < dm->ndevs; d++)
		sess_notice(&dm->devs[d].vc.ports[0].sess, SESS_STOPPING);
	deadline_after(&end, STOP_FLUSH_MS);
	while (notices_pending(dm) && (ms = ms_until(&end)) > 0) {
		maxfd = watch_fds(dm, &rd, &wr, &busy);
		FD_ZERO(&rd);
		wait.tv_sec = ms / 1000;
		wait.tv_nsec = ms % 1000 * 1000000L;
		/* Signals stay blocked: a second SIGTERM waits for the end. */
		if (pselect(maxfd + 1, NULL, &wr, NULL, &wait, NULL) < 0 &&
		    errno != EINTR)
			return;
		(void)serve_ready(dm, &rd, &wr);
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
	log_set_quiet(dm.opt.quiet);
	/* Sockets and log files are ours alone until opened up on purpose. */
	umask(077);
	raise_fd_limit();
	signals_setup(&waitmask);
	start(&dm);
	status = run(&dm, &waitmask);
	if (got_term)
		logmsg("%s: shutting down", strsignal(got_term));
	notify_service_manager("STOPPING=1");
	tell_stopping(&dm);
	cleanup(&dm);
	free(dm.devs);
	return status;
}
