/*
 * backends/web.c - the consoles in a web browser.
 *
 * One HTTP/1.1 server on --web-address (127.0.0.1 by default) port
 * --web-port serves every console:
 *
 *     GET /                      the consoles: device, port, name, clients
 *     GET /console/k             console k's page (xterm.js, web/console.html)
 *     GET /console/k/ws          console k as a WebSocket (RFC 6455)
 *     GET /assets/xterm.js       the terminal emulator, from --web-assets
 *     GET /assets/xterm.css
 *
 * A WebSocket is one more client of the console's shared session, like a
 * TCP client (clients.h): it gets the history, then live output, in binary
 * frames; binary frames it sends are typed into the guest, through the
 * same bounded hold; a text frame {"cols":C,"rows":R} reports the
 * browser's terminal size (most recent report wins).  A browser that does
 * not keep up skips ahead and is told, as a TCP client is.
 *
 * Everything runs in the daemon's select() loop and nothing blocks: each
 * connection has its own buffers and waits for select() when the socket
 * is full or empty.  One request per connection (Connection: close),
 * except the upgrade to a WebSocket.
 *
 * Who may connect: the Host header must name our port (or none, on port 80,
 * as browsers do there) and, when we listen on a loopback address, a
 * loopback address or localhost (a web page elsewhere that points its own
 * name at 127.0.0.1, DNS rebinding, is refused), an Origin header must be
 * this server, and with --web-token every request but the two
 * assets must carry ?token=TOKEN or "Authorization: Bearer TOKEN".
 *
 * Behind a reverse proxy (README): each --web-origin names a public origin,
 * scheme://host[:port], that the proxy serves us as.  A Host that is one
 * of them (its host[:port]) names this server too, and an Origin that is
 * one of them is our own page; the token check stays as it is.
 *
 * Read-only viewers: a request with --web-view-token instead, or any on a
 * read-only web (--read-only=web), only views.  Its WebSocket gets the
 * output like any other, and a first text message {"readonly":true} that
 * tells the page to show so and send nothing; what it types anyway is
 * discarded and counted (port->discarded), and its size reports are
 * ignored (the console's size is the writers' to set).  The index links carry the
 * token the request came with, never the other: a viewer does not learn
 * the full token.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util.h"
#include "backend.h"
#include "websocket.h"
#include "web-page.h"            /* WEB_PAGE: web/console.html */

#define WEB_CONNS_MAX   32       /* connections at once, every console */
#define WEB_SOCKETS_MAX 16       /* WebSockets per console, as CLIENTS_MAX */
#define WEB_REQUEST_MAX 8192     /* request line and headers; 431 beyond */
#define WEB_FRAME_MAX   4096     /* a client frame's payload; 1009 beyond */
#define WEB_CONTROL_MAX 128      /* a text (control) message */

/* A WebSocket's output buffer: a frame of up to 64 KiB (what the history
 * ring holds at least, so a browser that keeps up gets one frame, one
 * send() per pass, as a TCP client gets one writev()), and room for the
 * control frames. */
#define WEB_FRAME_OUT   65535
#define WEB_OUT         (WEB_FRAME_OUT + 4 + 1024)
#define WEB_ASSET_MAX   (8 << 20)
#define WEB_BACKLOG     64
/* The @xterm/xterm release the page is written for (web/package.json). */
#define XTERM_VERSION   "6.0.0"

/*
 * A connection's life:
 *   REQUEST    reading the request (the server serves it)
 *   WEBSOCKET  upgraded: a reader of console ep's session (ep serves it)
 *   CLOSING    the last bytes (a response, a close frame) go out, then our
 *              side is shut and what the peer still sends is read and
 *              dropped until it closes: closing with unread input would
 *              reset the connection and could lose those last bytes.
 */
enum conn_state { C_REQUEST, C_WEBSOCKET, C_CLOSING };

struct web_server;

struct web_conn {
	struct web_server *srv;
	int fd;
	enum conn_state state;
	unsigned long serial;        /* arrival order: the oldest goes first */
	char name[80];               /* "web 127.0.0.1:40000" */
	struct endpoint *ep;         /* its console, while a WebSocket */
	char *out;                   /* to send: a response, or frames */
	size_t out_len, out_off, out_cap;
	int blocked;                 /* the socket was full: wait for select() */
	int shut;                    /* CLOSING: our side is shut down */
	char req[WEB_REQUEST_MAX];
	size_t req_len;
	/* WebSocket */
	struct reader rd;
	unsigned char rx[WS_HEADER_MAX + WEB_FRAME_MAX];  /* a whole frame fits */
	size_t rx_len;
	int msg_op;                  /* opcode of a fragmented message, or -1 */
	char ctl[WEB_CONTROL_MAX];   /* a text message being put together */
	size_t ctl_len;
	struct hold hold;            /* input the guest could not take yet */
	int stalled;                 /* hold and rx full, more input waiting in
	                                the kernel: not read (see ws_stalled()) */
	int read_only;               /* a viewer: its input is discarded */
	unsigned long long discarded; /* bytes of its input discarded */
};

/*
 * A browser reaches every console through one port: so one server, the
 * backend's shared state (backend.h: web_start() to web_stop()).  It
 * serves the listener and the connections not tied to a console (one
 * request being read, a connection closing) once per pass
 * (web_add_fds_shared()/web_serve_shared()); each console's endpoint
 * serves its own WebSockets, right after its device ran, so guest output
 * goes out in the same pass.
 */
struct web_server {
	int listen_fd;
	char where[80];              /* "127.0.0.1:8080", "[::1]:8080" */
	unsigned port;
	int loopback;                /* listening on a loopback address */
	const struct backend_config *cfg;
	/* --web-origin, serialized as a browser's Origin header is */
	char origins[WEB_ORIGINS_MAX][WEB_ORIGIN_LEN];
	unsigned norigins;
	char assets[PATH_MAX];       /* the xterm.js package, "" if not found */
	struct endpoint **eps;       /* the consoles served */
	unsigned neps;
	struct web_conn *c[WEB_CONNS_MAX];
	unsigned n;
	unsigned long serial;
};

/* ---- start and stop ---------------------------------------------------- */

static int
web_listen(struct web_server *w, const struct backend_config *cfg, char *err,
           size_t errlen)
{
	w->listen_fd = tcp_listen("web", cfg->web_address,
	                          cfg->web_port, WEB_BACKLOG, w->where,
	                          sizeof w->where, &w->loopback, err, errlen);
	w->port = cfg->web_port;
	return w->listen_fd < 0 ? -1 : 0;
}

static int
is_file(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	return snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path &&
	       stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* --web-assets names the @xterm/xterm package (lib/xterm.js, css/xterm.css)
 * or the folder npm installed it into. */
static void
find_assets(struct web_server *w, const char *dir)
{
	static const char *const where[] = { "", "/node_modules/@xterm/xterm" };
	char pkg[PATH_MAX];
	size_t i;

	if (!dir) {
		logmsg("web: no --web-assets: pages show plain text; for a terminal "
		       "install xterm.js (README: the web backend)");
		return;
	}
	for (i = 0; i < sizeof where / sizeof where[0]; i++) {
		snprintf(pkg, sizeof pkg, "%s%s", dir, where[i]);
		if (is_file(pkg, "lib/xterm.js") && is_file(pkg, "css/xterm.css")) {
			snprintf(w->assets, sizeof w->assets, "%s", pkg);
			return;
		}
	}
	logmsg("warning: web: no lib/xterm.js and css/xterm.css in %s: pages show "
	       "plain text; install with: npm install --prefix %s @xterm/xterm@"
	       XTERM_VERSION, dir, dir);
}

/* ---- public origins (--web-origin) -------------------------------------- */

/* Lower-case s (n bytes) into out (room checked by the caller). */
static void
lower(char *out, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		out[i] = s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i];
}

/* The length of the host at the start of s: a name or IPv4 address, or an
 * IPv6 address in brackets; 0 if there is none. */
static size_t
host_len(const char *s)
{
	size_t n;

	if (s[0] == '[') {
		n = 1 + strspn(s + 1, "0123456789abcdefABCDEF:.");
		return n > 1 && s[n] == ']' ? n + 1 : 0;
	}
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	              "0123456789-.");
}

/*
 * The ASCII serialization of the origin url names (RFC 6454, 6.2), what a
 * browser sends as Origin: scheme and host in lower case, the port left
 * out when it is the scheme's default.  Nothing else may follow: no
 * path, no user, so that what an operator writes is what is compared.
 */
int
web_origin_serialize(const char *url, char *out, size_t len)
{
	static const char *const scheme[] = { "http", "https" };
	static const unsigned port_default[] = { 80, 443 };
	const char *p = NULL, *host;
	unsigned long port;
	size_t i, n;
	char *end;
	int w;

	for (i = 0; i < 2; i++) {
		n = strlen(scheme[i]);
		if (strncasecmp(url, scheme[i], n) == 0 &&
		    strncmp(url + n, "://", 3) == 0) {
			p = url + n + 3;
			break;
		}
	}
	if (!p || !(n = host_len(p)) || n > 255)
		return -1;
	host = p;
	p += n;
	port = port_default[i];
	if (*p == ':') {
		if (p[1] < '0' || p[1] > '9')
			return -1;
		errno = 0;
		port = strtoul(p + 1, &end, 10);
		if (errno || port < 1 || port > 65535)
			return -1;
		p = end;
	}
	if (*p)
		return -1;
	w = snprintf(out, len, "%s://", scheme[i]);
	if (w < 0 || (size_t)w + n + 7 > len)
		return -1;
	lower(out + w, host, n);
	w += n;
	if (port == port_default[i])
		out[w] = '\0';
	else
		snprintf(out + w, len - w, ":%lu", port);
	return 0;
}

/* Whether origin (a header's value) is one of the --web-origin ones. */
static int
origin_listed(const struct web_server *srv, const char *origin)
{
	char o[WEB_ORIGIN_LEN];
	unsigned i;

	if (web_origin_serialize(origin, o, sizeof o) < 0)
		return 0;
	for (i = 0; i < srv->norigins; i++)
		if (strcmp(o, srv->origins[i]) == 0)
			return 1;
	return 0;
}

/* Whether host (the Host header) is a --web-origin's host[:port]: that
 * origin, with the Host in place of its host and port, is the same. */
static int
host_listed(const struct web_server *srv, const char *host)
{
	char url[WEB_ORIGIN_LEN], o[WEB_ORIGIN_LEN];
	unsigned i;
	int n;

	for (i = 0; i < srv->norigins; i++) {
		n = snprintf(url, sizeof url, "%.*s%s",
		             (int)(strstr(srv->origins[i], "://") + 3 -
		                   srv->origins[i]), srv->origins[i], host);
		/* a Host too long for an origin is none of ours: never
		 * compare what is left of it after a cut */
		if (n >= 0 && n < (int)sizeof url &&
		    web_origin_serialize(url, o, sizeof o) == 0 &&
		    strcmp(o, srv->origins[i]) == 0)
			return 1;
	}
	return 0;
}

/* The --web-origin values, serialized once (the options checked them). */
static void
keep_origins(struct web_server *w, const struct backend_config *cfg)
{
	const char *const *u;

	for (u = cfg->web_origins; *u && w->norigins < WEB_ORIGINS_MAX; u++)
		if (web_origin_serialize(*u, w->origins[w->norigins],
		                         sizeof w->origins[0]) == 0)
			logmsg("web: also served as %s (--web-origin)",
			       w->origins[w->norigins++]);
}

static void *
web_start(const struct backend_config *cfg, char *err, size_t errlen)
{
	struct web_server *w = calloc(1, sizeof *w);

	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (web_listen(w, cfg, err, errlen) < 0) {
		free(w);
		return NULL;
	}
	w->cfg = cfg;
	keep_origins(w, cfg);
	if (!w->loopback)
		logmsg("warning: web consoles listen on %s: anyone who can reach it "
		       "gets the guest's console%s", w->where,
		       cfg->web_token ? "" : " (no --web-token)");
	find_assets(w, cfg->web_assets);
	return w;
}

static int
web_open(struct endpoint *ep, const struct backend_config *cfg, char *err,
         size_t errlen)
{
	struct web_server *srv = ep->shared;
	struct endpoint **eps;

	(void)cfg;
	if (!(eps = realloc(srv->eps, (srv->neps + 1) * sizeof *eps))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	srv->eps = eps;
	srv->eps[srv->neps++] = ep;
	return 0;
}

/* ---- connections -------------------------------------------------------- */

/* A viewer's WebSocket ends: one viewer less, and what it typed said
 * once (why NULL: the daemon is closing, nothing to say). */
static void
viewer_left(struct web_conn *c, const char *why)
{
	c->ep->port->viewers--;
	if (why)
		logmsg("console %u: %s (read-only) %s; %llu bytes of its input "
		       "discarded", c->ep->index, c->name, why, c->discarded);
}

static void
conn_free(struct web_conn *c, const char *why)
{
	struct web_server *srv = c->srv;
	unsigned i;

	if (c->state == C_WEBSOCKET && c->read_only) {
		viewer_left(c, why);
		reader_detach(c->ep->sess, &c->rd);
	} else if (c->state == C_WEBSOCKET) {
		/* Lost input is worth a warning; a browser leaving is
		 * routine (--quiet). */
		if (why && c->hold.len)
			logmsg("console %u: %s %s; some of its input never "
			       "reached the guest", c->ep->index, c->name, why);
		else if (why)
			loginfo("console %u: %s %s", c->ep->index, c->name, why);
		reader_detach(c->ep->sess, &c->rd);
	}
	close(c->fd);
	for (i = 0; srv->c[i] != c; i++)
		;
	srv->c[i] = srv->c[--srv->n];
	free(c->out);
	free(c);
}

static void
web_close(struct endpoint *ep)
{
	struct web_server *srv = ep->shared;
	unsigned i;

	for (i = 0; i < srv->n; )
		if (srv->c[i]->ep == ep)
			conn_free(srv->c[i], NULL);
		else
			i++;
	for (i = 0; i < srv->neps && srv->eps[i] != ep; i++)
		;
	if (i < srv->neps)
		srv->eps[i] = srv->eps[--srv->neps];
}

/* After every console's close(): what is left is the server's own. */
static void
web_stop(void *shared)
{
	struct web_server *srv = shared;

	while (srv->n)
		conn_free(srv->c[0], NULL);
	close_fd(&srv->listen_fd);
	free(srv->eps);
	free(srv);
}

/* Send what is in out until done or the socket is full; -1 on an error. */
static int
conn_write(struct web_conn *c)
{
	ssize_t n;

	while (c->out_off < c->out_len) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		         MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->blocked = 1;
			return 0;
		}
		if (n < 0)
			return -1;
		c->out_off += n;
	}
	c->out_off = c->out_len = 0;
	c->blocked = 0;
	return 0;
}

/* Start the lingering close (see enum conn_state). */
static void
conn_closing(struct web_conn *c)
{
	if (c->state == C_WEBSOCKET && c->read_only)
		viewer_left(c, "left");
	if (c->state == C_WEBSOCKET)
		reader_detach(c->ep->sess, &c->rd);
	c->state = C_CLOSING;
	c->ep = NULL;
}

/* CLOSING: send the rest, shut our side, drop what comes until the peer
 * closes.  -1 when the connection can go. */
static int
conn_linger(struct web_conn *c, int readable)
{
	char buf[4096];
	ssize_t n;

	if (conn_write(c) < 0)
		return -1;
	if (c->out_len)
		return 0;
	if (!c->shut) {
		shutdown(c->fd, SHUT_WR);
		c->shut = 1;
	}
	while (readable && (n = read(c->fd, buf, sizeof buf)) != 0) {
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	}
	return readable ? -1 : 0;
}

/* Turn a fresh connection away with a 503 that says why. */
static void
refuse_now(int fd, const char *why)
{
	char msg[256];
	int len;

	len = snprintf(msg, sizeof msg, "HTTP/1.1 503 Service Unavailable\r\n"
	               "Content-Type: text/plain\r\nContent-Length: %zu\r\n"
	               "Connection: close\r\n\r\n%s\n", strlen(why) + 1, why);
	conn_refuse(fd, msg, len < (int)sizeof msg ? (size_t)len : sizeof msg - 1);
}

/* Whether c has nothing in flight: it is still sending its request, or
 * lingering with its response all sent.  Never one whose response is
 * still going out: cutting that would truncate a page or an asset. */
static int
conn_idle(const struct web_conn *c)
{
	return c->state == C_REQUEST ||
	       (c->state == C_CLOSING && c->out_off >= c->out_len);
}

/* The oldest idle connection, for a new one to take its place when all
 * are in use: a browser that opens a connection and sends nothing cannot
 * keep the others out. */
static struct web_conn *
oldest_idle(struct web_server *srv)
{
	struct web_conn *old = NULL;
	unsigned i;

	for (i = 0; i < srv->n; i++)
		if (conn_idle(srv->c[i]) &&
		    (!old || srv->c[i]->serial < old->serial))
			old = srv->c[i];
	return old;
}

static void
web_accept(struct web_server *srv)
{
	struct web_conn *c, *old;
	char name[64];
	int fd;

	fd = accept_conn(srv->listen_fd, srv->where);
	if (fd < 0)
		return;
	if (peer_name(fd, name, sizeof name) < 0) {
		close(fd);
		return;
	}
	if (fd >= FD_SETSIZE) {
		logmsg("web: refusing %s: descriptor over FD_SETSIZE", name);
		refuse_now(fd, "the daemon has too many connections; try again later");
		return;
	}
	if (srv->n == WEB_CONNS_MAX) {
		if (!(old = oldest_idle(srv))) {
			logmsg("web: refusing %s: %d connections already", name,
			       WEB_CONNS_MAX);
			refuse_now(fd, "too many connections; try again later");
			return;
		}
		conn_free(old, NULL);
	}
	if (!(c = calloc(1, sizeof *c))) {
		refuse_now(fd, "the daemon is out of memory; try again later");
		return;
	}
	c->srv = srv;
	c->fd = fd;
	c->state = C_REQUEST;
	c->serial = ++srv->serial;
	c->msg_op = -1;
	snprintf(c->name, sizeof c->name, "web %s", name);
	srv->c[srv->n++] = c;
}

/* ---- HTTP ---------------------------------------------------------------- */

struct request {
	char *method, *target, *version;
	char *path, *query;
	const char *host, *origin, *upgrade, *connection, *key, *ws_version,
	           *authorization;
	int bad_header;
};

/* The reason phrases of the statuses we send (RFC 9110). */
static const char *
reason(int status)
{
	switch (status) {
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 426: return "Upgrade Required";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	}
	return "Error";
}

/* Answer and close: the whole response goes into out, then CLOSING. */
static void
respond(struct web_conn *c, int status, const char *type, const char *extra,
        const void *body, size_t len)
{
	char head[512];
	int hl;

	hl = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	              "Content-Length: %zu\r\nCache-Control: no-store\r\n"
	              "X-Content-Type-Options: nosniff\r\n%sConnection: close\r\n\r\n",
	              status, reason(status), type, len, extra ? extra : "");
	free(c->out);
	c->out_off = 0;
	c->out_len = c->out_cap = 0;
	if (!(c->out = malloc(hl + len))) {
		conn_closing(c);
		return;
	}
	memcpy(c->out, head, hl);
	memcpy(c->out + hl, body, len);
	c->out_len = c->out_cap = hl + len;
	conn_closing(c);
}

/* An error answer: the status, and why in one line (also logged; the
 * method and path are the client's bytes, escaped, and why must be too). */
static void
refuse(struct web_conn *c, const struct request *rq, int status,
       const char *extra, const char *why)
{
	char body[ESC_LEN + 256], method[ESC_MIN], path[ESC_LEN];
	int len;

	if (rq)
		logmsg("web: %s: %s %s: %d %s", c->name,
		       esc(method, sizeof method, rq->method, strlen(rq->method)),
		       esc(path, sizeof path, rq->path, strlen(rq->path)),
		       status, why);
	else
		logmsg("web: %s: %d %s", c->name, status, why);
	len = snprintf(body, sizeof body, "%d %s: %s\n", status, reason(status), why);
	respond(c, status, "text/plain; charset=utf-8", extra, body, len);
}

/* refuse() with why naming what the client sent (n bytes of value, escaped
 * here). */
static void
refuse_value(struct web_conn *c, const struct request *rq, int status,
             const char *why, const char *value, size_t n)
{
	char e[ESC_LEN], msg[ESC_LEN + 64];

	snprintf(msg, sizeof msg, "%s: '%s'", why, esc(e, sizeof e, value, n));
	refuse(c, rq, status, NULL, msg);
}

/* Whether the comma-separated header value list has token (any case). */
static int
has_token(const char *list, const char *token)
{
	size_t n = strlen(token);
	const char *p = list;

	while (p && *p) {
		p += strspn(p, " \t,");
		if (strncasecmp(p, token, n) == 0 && strchr(" \t,", p[n]))
			return 1;
		p = strchr(p, ',');
	}
	return 0;
}

/* The line at text ends at CR LF: cut it there and return what follows;
 * NULL when it does not.  Only CR LF ends a line: a bare LF is a byte of
 * the line (and the request is malformed), never a line of its own, so
 * no header can hide behind one. */
static char *
crlf_line(char *text)
{
	char *crlf = strstr(text, "\r\n");

	if (!crlf)
		return NULL;
	*crlf = '\0';
	return crlf + 2;
}

/* Split the request (NUL-terminated, CRLF lines) into rq; -1: malformed. */
static int
parse_request(char *text, struct request *rq)
{
	char *line, *next, *colon, *v, *end;

	memset(rq, 0, sizeof *rq);
	if (!(next = crlf_line(text)))
		return -1;
	rq->method = text;
	if (!(rq->target = strchr(text, ' ')))
		return -1;
	*rq->target++ = '\0';
	if (!(rq->version = strchr(rq->target, ' ')))
		return -1;
	*rq->version++ = '\0';
	if (!*rq->method || rq->target[0] != '/' ||
	    (strcmp(rq->version, "HTTP/1.1") && strcmp(rq->version, "HTTP/1.0")))
		return -1;
	for (line = next; strncmp(line, "\r\n", 2) != 0; line = next) {
		if (!(next = crlf_line(line)))
			return -1;
		if (!(colon = strchr(line, ':')) || colon == line)
			return -1;
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (end = v + strlen(v); end > v && (end[-1] == ' ' || end[-1] == '\t'); )
			*--end = '\0';
#define HEADER(field, hname) \
		if (strcasecmp(line, hname) == 0) { \
			if (rq->field) \
				return -1;        /* twice: which one counts? */ \
			rq->field = v; \
		}
		HEADER(host, "Host")
		HEADER(origin, "Origin")
		HEADER(upgrade, "Upgrade")
		HEADER(connection, "Connection")
		HEADER(key, "Sec-WebSocket-Key")
		HEADER(ws_version, "Sec-WebSocket-Version")
		HEADER(authorization, "Authorization")
#undef HEADER
	}
	rq->path = rq->target;
	if ((rq->query = strchr(rq->target, '?')))
		*rq->query++ = '\0';
	return 0;
}

/* Whether name (n bytes, an IPv6 address in brackets) is a loopback
 * address, however spelled: a DNS rebinding page can only send its own
 * host name, never an address. */
static int
loopback_literal(const char *name, size_t n)
{
	char addr[64];
	unsigned char bin[16];

	if (n >= 2 && name[0] == '[' && name[n - 1] == ']') {
		name++;
		n -= 2;
	}
	if (n >= sizeof addr)
		return 0;
	memcpy(addr, name, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET, addr, bin) == 1)
		return bin[0] == 127;
	if (inet_pton(AF_INET6, addr, bin) != 1)
		return 0;
	/* ::1, or an IPv4 loopback address mapped into IPv6 */
	return (memcmp(bin, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0) ||
	       (memcmp(bin, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0 &&
	        bin[12] == 127);
}

/*
 * Host names this server (see the comment at the top).  Its port must be
 * ours; a browser leaves it out when it is http's default, 80.  When we
 * listen on loopback, the name must be localhost or a loopback address
 * (the one we listen on, however spelled); otherwise any name will do.
 */
static int
host_ok(const struct web_server *srv, const char *host)
{
	const char *colon = strrchr(host, ':'), *bracket = strchr(host, ']');
	char port[8];
	size_t n;

	/* "[::1]:8080": the port is after the bracket; "[::1]" has none. */
	if (colon && host[0] == '[' && (!bracket || colon < bracket))
		colon = NULL;
	n = colon ? (size_t)(colon - host) : strlen(host);
	snprintf(port, sizeof port, "%u", srv->port);
	if (colon ? strcmp(colon + 1, port) != 0 : srv->port != 80)
		return 0;
	if (!srv->loopback)
		return 1;
	return (n == 9 && strncasecmp(host, "localhost", 9) == 0) ||
	       loopback_literal(host, n);
}

/* Compare without stopping at the first difference: how long a wrong
 * token takes says nothing about how much of it was right. */
static int
token_equal(const char *a, const char *b, size_t blen)
{
	size_t alen = strlen(a), i;
	unsigned char d = alen != blen;

	for (i = 0; i < blen; i++)
		d |= (unsigned char)(i < alen ? a[i] : 0) ^ (unsigned char)b[i];
	return d == 0;
}

/* Whether the request carries token want, in its Authorization header or
 * its query. */
static int
carries_token(const struct request *rq, const char *want)
{
	const char *p, *end;

	if (rq->authorization && strncasecmp(rq->authorization, "Bearer ", 7) == 0 &&
	    token_equal(want, rq->authorization + 7, strlen(rq->authorization + 7)))
		return 1;
	for (p = rq->query; p && *p; p = *end ? end + 1 : end) {
		end = p + strcspn(p, "&");
		if (strncmp(p, "token=", 6) == 0 &&
		    token_equal(want, p + 6, end - p - 6))
			return 1;
	}
	return 0;
}

/* The access the request's token gives: ACCESS_NONE, ACCESS_VIEW
 * (--web-view-token) or ACCESS_FULL (--web-token, or no token needed). */
enum access { ACCESS_NONE, ACCESS_VIEW, ACCESS_FULL };

static enum access
token_access(const struct web_server *srv, const struct request *rq)
{
	const struct backend_config *cfg = srv->cfg;

	if (!cfg->web_token || carries_token(rq, cfg->web_token))
		return ACCESS_FULL;
	if (cfg->web_view_token && carries_token(rq, cfg->web_view_token))
		return ACCESS_VIEW;
	return ACCESS_NONE;
}

/* "/console/k" or "/console/k/ws": the console's endpoint, and whether it
 * is the WebSocket; NULL if no such console is served. */
static struct endpoint *
console_path(const struct web_server *srv, const char *path, int *ws)
{
	const char *p = path + strlen("/console/");
	unsigned long k;
	char *end;
	unsigned i;

	if (strncmp(path, "/console/", 9) != 0 || *p < '0' || *p > '9')
		return NULL;
	errno = 0;
	k = strtoul(p, &end, 10);
	if (errno || (*end && strcmp(end, "/ws") != 0) || (*p == '0' && end - p > 1))
		return NULL;
	*ws = *end != '\0';
	for (i = 0; i < srv->neps; i++)
		if (srv->eps[i]->index == k)
			return srv->eps[i];
	return NULL;
}

/* Append s to the page buf (len bytes, *at used) as far as it fits. */
static void
page_add(char *buf, size_t len, size_t *at, const char *s)
{
	size_t n = strlen(s);

	if (*at + n < len) {
		memcpy(buf + *at, s, n + 1);
		*at += n;
	}
}

/* The same with <>&" escaped: a port name is the guest owner's text. */
static void
page_add_text(char *buf, size_t len, size_t *at, const char *s)
{
	char one[2] = { 0, 0 };

	for (; *s; s++) {
		one[0] = *s;
		page_add(buf, len, at, *s == '<' ? "&lt;" : *s == '>' ? "&gt;" :
		         *s == '&' ? "&amp;" : *s == '"' ? "&quot;" : one);
	}
}

/* GET /: one row per console, its links with token (the one the request
 * carried), or none. */
static void
serve_index(struct web_conn *c, const char *token)
{
	struct web_server *srv = c->srv;
	size_t len = 2048 + srv->neps * (512 + 6 * 128), at = 0;
	char *page = malloc(len), row[512];
	unsigned i;

	if (!page) {
		refuse(c, NULL, 500, NULL, "out of memory");
		return;
	}
	page[0] = '\0';
	page_add(page, len, &at, "<!DOCTYPE html>\n<html><head>"
	        "<meta charset=\"utf-8\"><title>" PROGNAME "</title>"
	        "<style>body{font-family:sans-serif}td,th{padding:2px 12px;"
	        "text-align:left}</style></head><body>\n<h1>" PROGNAME "</h1>\n"
	        "<table>\n<tr><th>console</th><th>device</th><th>port</th>"
	        "<th>name</th><th>clients connected</th><th>writers</th>"
	        "<th>viewers</th></tr>\n");
	for (i = 0; i < srv->neps; i++) {
		struct endpoint *ep = srv->eps[i];

		snprintf(row, sizeof row, "<tr><td><a href=\"/console/%u%s%s\">"
		         "console %u</a></td><td>%u</td><td>%u</td><td>", ep->index,
		         token ? "?token=" : "", token ? token : "", ep->index,
		         ep->device, ep->port_id);
		page_add(page, len, &at, row);
		page_add_text(page, len, &at, ep->name ? ep->name : "");
		/* Every client is a reader of the session, viewers too. */
		snprintf(row, sizeof row, "</td><td>%u</td><td>%u</td><td>%u</td>"
		         "</tr>\n", ep->sess->nreaders,
		         ep->sess->nreaders - ep->port->viewers, ep->port->viewers);
		page_add(page, len, &at, row);
	}
	page_add(page, len, &at, "</table>\n</body></html>\n");
	respond(c, 200, "text/html; charset=utf-8", NULL, page, at);
	free(page);
}

/* GET /assets/xterm.js, /assets/xterm.css: these two files only, from
 * the package --web-assets names (no path from the request is used). */
static void
serve_asset(struct web_conn *c, const struct request *rq, const char *file,
            const char *type)
{
	struct web_server *srv = c->srv;
	char path[PATH_MAX + 32];
	struct stat st;
	char *body = NULL;
	int fd;

	if (!srv->assets[0]) {
		refuse(c, rq, 404, NULL, "no --web-assets with xterm.js");
		return;
	}
	snprintf(path, sizeof path, "%s/%s", srv->assets, file);
	/* A regular file read whole at once: the asset is small and on
	 * local disk, and then the response goes out without blocking. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0 ||
	    !S_ISREG(st.st_mode) || st.st_size > WEB_ASSET_MAX ||
	    !(body = malloc(st.st_size ? st.st_size : 1)) ||
	    read(fd, body, st.st_size) != st.st_size) {
		if (fd >= 0)
			close(fd);
		free(body);
		refuse(c, rq, 500, NULL, "cannot read the asset");
		return;
	}
	close(fd);
	respond(c, 200, type, NULL, body, st.st_size);
	free(body);
}

static int ws_probe(struct web_conn *c);
static int frame_append(struct web_conn *c, int opcode, const void *payload,
                        size_t len);

/* The opening handshake (RFC 6455 section 4.2): switch to frames, and
 * become a reader of the console's session. */
static void
upgrade(struct web_conn *c, const struct request *rq, struct endpoint *ep,
        size_t extra)
{
	struct web_server *srv = c->srv;
	char accept[WS_ACCEPT_LEN];
	unsigned i, n = 0;

	if (!rq->upgrade || strcasecmp(rq->upgrade, "websocket") != 0 ||
	    !rq->connection || !has_token(rq->connection, "upgrade") || !rq->key) {
		refuse(c, rq, 400, NULL, "not a WebSocket handshake");
		return;
	}
	if (!rq->ws_version || strcmp(rq->ws_version, "13") != 0) {
		refuse(c, rq, 426, "Sec-WebSocket-Version: 13\r\n",
		       "WebSocket version 13 only");
		return;
	}
	if (!ws_key_valid(rq->key)) {
		refuse(c, rq, 400, NULL, "Sec-WebSocket-Key is not 16 bytes in base64");
		return;
	}
	for (i = 0; i < srv->n; i++)
		n += srv->c[i]->ep == ep;
	/* Full: a stalled one whose peer has gone answered ws_stalled()'s
	 * ping with a reset, and writing to it now fails: its slot is free. */
	for (i = 0; n >= WEB_SOCKETS_MAX && i < srv->n; ) {
		struct web_conn *s = srv->c[i];

		if (s->ep == ep && s->stalled && ws_probe(s) < 0) {
			conn_free(s, "went away");  /* another takes place i */
			n--;
		} else {
			i++;
		}
	}
	if (n >= WEB_SOCKETS_MAX) {
		refuse(c, rq, 503, NULL, "this console has too many web clients");
		return;
	}
	if (extra > sizeof c->rx) {
		refuse(c, rq, 400, NULL, "frames sent before the handshake ended");
		return;
	}
	if (!(c->out = malloc(WEB_OUT))) {
		refuse(c, rq, 503, NULL, "out of memory");
		return;
	}
	c->out_cap = WEB_OUT;
	ws_accept(rq->key, accept);
	c->out_len = snprintf(c->out, c->out_cap, "HTTP/1.1 101 Switching Protocols\r\n"
	                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	                      "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
	c->state = C_WEBSOCKET;
	c->ep = ep;
	/* Frames a client sent right behind its request are the first input. */
	memcpy(c->rx, c->req + c->req_len - extra, extra);
	c->rx_len = extra;
	reader_attach(ep->sess, &c->rd, c->name);
	if (ep->read_only)
		c->read_only = 1;
	if (c->read_only) {
		static const char tell[] = "{\"readonly\":true}";

		/* The page learns it first, before any output. */
		frame_append(c, WS_TEXT, tell, sizeof tell - 1);
		ep->port->viewers++;
	}
	loginfo("console %u: %s connected%s", ep->index, c->name,
	       c->read_only ? " (read-only)" : "");
}

/*
 * A whole request is in req (len bytes through the blank line): answer.
 * Long, as a list of checks in the order they must be made: what the
 * request is, that it names this server and comes from our own page, the
 * public assets, then the token, then the page or console asked for.
 * Split up, the order that keeps a console behind its token would hide.
 */
static void
handle_request(struct web_conn *c, size_t len)
{
	struct request rq;
	struct endpoint *ep;
	char text[WEB_REQUEST_MAX + 1];
	enum access access;
	int ws = 0, direct;

	memcpy(text, c->req, len);
	text[len] = '\0';
	if (parse_request(text, &rq) < 0) {
		size_t first = 0;

		/* Its first line says what it was (from req: parse_request()
		 * has cut text up). */
		while (first < len && c->req[first] != '\r' && c->req[first] != '\n')
			first++;
		refuse_value(c, NULL, 400, "malformed request", c->req, first);
		return;
	}
	if (strcmp(rq.method, "GET") != 0) {
		refuse(c, &rq, 405, "Allow: GET\r\n", "only GET is served");
		return;
	}
	if (!rq.host) {
		refuse(c, &rq, 400, NULL, "no Host header");
		return;
	}
	direct = host_ok(c->srv, rq.host);
	if (!direct && !host_listed(c->srv, rq.host)) {
		refuse_value(c, &rq, 403, "Host is not this server", rq.host,
		             strlen(rq.host));
		return;
	}
	/* A browser says which page made the request: only our own, at a
	 * public origin or, reached directly, at the Host it asked for
	 * (through a proxy, http:// + Host is not a page the proxy serves). */
	if (rq.origin && !origin_listed(c->srv, rq.origin) &&
	    (!direct || strncmp(rq.origin, "http://", 7) != 0 ||
	     strcasecmp(rq.origin + 7, rq.host) != 0)) {
		refuse_value(c, &rq, 403, "Origin is not this server",
		             rq.origin, strlen(rq.origin));
		return;
	}
	if (strcmp(rq.path, "/assets/xterm.js") == 0) {
		serve_asset(c, &rq, "lib/xterm.js", "text/javascript");
		return;
	}
	if (strcmp(rq.path, "/assets/xterm.css") == 0) {
		serve_asset(c, &rq, "css/xterm.css", "text/css");
		return;
	}
	/* Every browser asks for one: no icon, and no 404 in the log. */
	if (strcmp(rq.path, "/favicon.ico") == 0) {
		respond(c, 204, "image/x-icon", NULL, "", 0);
		return;
	}
	if ((access = token_access(c->srv, &rq)) == ACCESS_NONE) {
		refuse(c, &rq, 403, NULL, "wrong or missing token");
		return;
	}
	c->read_only = access == ACCESS_VIEW;
	if (strcmp(rq.path, "/") == 0) {
		serve_index(c, access == ACCESS_VIEW ? c->srv->cfg->web_view_token :
		               c->srv->cfg->web_token);
		return;
	}
	if (!(ep = console_path(c->srv, rq.path, &ws))) {
		refuse(c, &rq, 404, NULL, "no such page or console");
		return;
	}
	if (ws)
		upgrade(c, &rq, ep, c->req_len - len);
	else
		respond(c, 200, "text/html; charset=utf-8", NULL, WEB_PAGE,
		        sizeof WEB_PAGE - 1);
}

/* Just past the empty line that ends the headers, or NULL (memmem() is
 * not POSIX).  A sender that ends its lines with bare LFs is answered
 * too (400, parse_request() wants CR LF), not left waiting: LF LF and LF
 * CR LF end a request as well. */
static char *
blank_line(char *buf, size_t len)
{
	size_t i;

	/* An empty line: LF, then LF or CR LF (CR LF CR LF among them). */
	for (i = 0; i + 2 <= len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return buf + i + 2;
		if (i + 3 <= len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return buf + i + 3;
	}
	return NULL;
}

/* REQUEST: read until the blank line that ends the headers.  -1 when the
 * peer has gone. */
static int
request_read(struct web_conn *c)
{
	char *end;
	ssize_t n;

	for (;;) {
		n = read(c->fd, c->req + c->req_len, sizeof c->req - c->req_len);
		if (n == 0)
			return -1;
		if (n < 0)
			return errno == EINTR ? 0 :
			       errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		c->req_len += n;
		if ((end = blank_line(c->req, c->req_len))) {
			handle_request(c, end - c->req);
			return 0;
		}
		if (c->req_len == sizeof c->req) {
			refuse(c, NULL, 431, NULL, "request headers over 8 KiB");
			return 0;
		}
	}
}

/* ---- WebSocket frames ---------------------------------------------------- */

/* Move what is left to send to the front of out. */
static void
out_compact(struct web_conn *c)
{
	memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
	c->out_len -= c->out_off;
	c->out_off = 0;
}

/* Append a frame to out if there is room; 0 if there is not. */
static int
frame_append(struct web_conn *c, int opcode, const void *payload, size_t len)
{
	unsigned char head[WS_HEADER_MAX];
	size_t hl = ws_put_header(head, opcode, len);

	if (c->out_cap - c->out_len < hl + len)
		return 0;
	memcpy(c->out + c->out_len, head, hl);
	memcpy(c->out + c->out_len + hl, payload, len);
	c->out_len += hl + len;
	return 1;
}

/* Fail the connection (section 7.1.7): a close frame with status and
 * reason, then the lingering close. */
static void
ws_fail(struct web_conn *c, int status, const char *why)
{
	unsigned char body[WS_CONTROL_MAX];
	size_t n = strlen(why);

	logmsg("console %u: %s: %s; closing it", c->ep->index, c->name, why);
	if (n > WS_CONTROL_MAX - 2)
		n = WS_CONTROL_MAX - 2;
	body[0] = status >> 8;
	body[1] = status & 0xff;
	memcpy(body + 2, why, n);
	/* What is queued goes first; without room for the close frame the
	 * connection just ends. */
	out_compact(c);
	frame_append(c, WS_CLOSE, body, n + 2);
	conn_closing(c);
}

/* A text message: the page's size report {"cols":C,"rows":R}. */
static void
ws_control(struct web_conn *c)
{
	unsigned long cols = 0, rows = 0;
	const char *p;

	if (c->read_only)
		return;               /* the size is the writers' to set */
	c->ctl[c->ctl_len] = '\0';
	if ((p = strstr(c->ctl, "\"cols\":")))
		cols = strtoul(p + 7, NULL, 10);
	if ((p = strstr(c->ctl, "\"rows\":")))
		rows = strtoul(p + 7, NULL, 10);
	if (cols >= 1 && cols <= 65535 && rows >= 1 && rows <= 65535)
		port_set_size(c->ep->port, (unsigned)cols, (unsigned)rows);
}

/*
 * One whole frame in rx: act on it.  1 when it was used up, 0 when it must
 * wait (the hold or out has no room for it yet), -1 when the connection
 * was failed.
 */
static int
ws_frame(struct web_conn *c, const struct ws_frame *f, unsigned char *payload)
{
	unsigned char code[2] = { WS_NORMAL >> 8, WS_NORMAL & 0xff };
	char why[ESC_LEN];

	switch (f->opcode) {
	case WS_PING:                 /* answered with the same payload */
		if (c->out_cap - c->out_len < f->len + 2)
			return 0;
		ws_unmask(payload, f->len, f->mask, 0);
		frame_append(c, WS_PONG, payload, f->len);
		return 1;
	case WS_PONG:
		return 1;
	case WS_CLOSE:                /* echo its status, then close */
		ws_unmask(payload, f->len, f->mask, 0);
		if (f->len >= 2)
			memcpy(code, payload, 2);
		if (f->len > 2)       /* the reason is the client's text */
			loginfo("console %u: %s disconnected (close %u '%s')",
			       c->ep->index, c->name, code[0] << 8 | code[1],
			       esc(why, sizeof why, payload + 2, f->len - 2));
		else
			loginfo("console %u: %s disconnected", c->ep->index, c->name);
		frame_append(c, WS_CLOSE, code, 2);
		conn_closing(c);
		return -1;
	}
	/* Data: a new message, or the next fragment of the current one. */
	if ((f->opcode == WS_CONTINUATION) != (c->msg_op >= 0)) {
		ws_fail(c, WS_PROTOCOL_ERROR, f->opcode ? "new message inside a "
		        "fragmented one" : "continuation of no message");
		return -1;
	}
	if ((f->opcode == WS_BINARY || c->msg_op == WS_BINARY) && c->read_only) {
		/* A viewer's keystrokes: counted, dropped. */
		c->discarded += f->len;
		c->ep->port->discarded += f->len;
	} else if (f->opcode == WS_BINARY || c->msg_op == WS_BINARY) {
		/* Keystrokes: straight to the hold, fragment by fragment. */
		if (hold_room(&c->hold) < f->len)
			return 0;
		ws_unmask(payload, f->len, f->mask, 0);
		memcpy(c->hold.buf + c->hold.len, payload, f->len);
		c->hold.len += f->len;
	} else {
		if (sizeof c->ctl - 1 - c->ctl_len < f->len) {
			ws_fail(c, WS_TOO_BIG, "text message too big");
			return -1;
		}
		ws_unmask(payload, f->len, f->mask, 0);
		memcpy(c->ctl + c->ctl_len, payload, f->len);
		c->ctl_len += f->len;
		if (f->fin)
			ws_control(c);
	}
	if (f->opcode != WS_CONTINUATION)
		c->msg_op = f->opcode;
	if (f->fin) {
		c->msg_op = -1;
		c->ctl_len = 0;
	}
	return 1;
}

/* The frames in rx, in order, as far as they can be used now.  A header is
 * checked as soon as it is in: a frame we will refuse is not waited for. */
static void
ws_frames(struct web_conn *c)
{
	struct ws_frame f;
	size_t used = 0;
	int r;

	while (c->state == C_WEBSOCKET &&
	       ws_parse_header(c->rx + used, c->rx_len - used, &f)) {
		const char *bad = NULL;

		if (f.rsv)
			bad = "reserved bits set";
		else if (!f.masked)
			bad = "unmasked frame from the client";
		else if (f.opcode >= 3 && f.opcode <= 7)
			bad = "unknown data opcode";
		else if (f.opcode > 0xa)
			bad = "unknown control opcode";
		else if ((f.opcode & 8) && (!f.fin || f.len > WS_CONTROL_MAX))
			bad = "fragmented or long control frame";
		if (bad) {
			ws_fail(c, WS_PROTOCOL_ERROR, bad);
			return;
		}
		if (f.len > WEB_FRAME_MAX) {
			ws_fail(c, WS_TOO_BIG, "frame over 4096 bytes");
			return;
		}
		if (c->rx_len - used < f.header_len + f.len)
			break;                /* the rest is on its way */
		r = ws_frame(c, &f, c->rx + used + f.header_len);
		if (r <= 0)
			break;
		used += f.header_len + f.len;
	}
	if (c->state == C_WEBSOCKET) {
		memmove(c->rx, c->rx + used, c->rx_len - used);
		c->rx_len -= used;
	}
}

/* A ping with no payload; -1 when the socket says the peer has gone. */
static int
ws_probe(struct web_conn *c)
{
	out_compact(c);
	if (!frame_append(c, WS_PING, "", 0))
		return 0;             /* out is full: it is being written */
	return conn_write(c);
}

/*
 * rx and the hold are full (the guest takes no input) and select() says
 * the socket is readable: is the peer gone, or is more input waiting?
 * Typed input is not dropped, so it stays in the kernel until the guest
 * reads (a flood waits there); but a peer that closes must still be seen,
 * or 16 such "ghosts" would hold a console's WebSocket slots forever.
 * Portably (POLLRDHUP is Linux's), a 1-byte peek tells an EOF or a reset
 * (0 or an error: -1 here, the peer is gone) from input.  Input is
 * "stalled": the socket leaves the read set, since select() would report
 * it at once again, and EOF behind that input cannot be seen without
 * reading it.  So a ping probes the peer instead: a peer that has closed
 * answers it with a reset, and the next write to it fails; upgrade()
 * writes again to the stalled ones when their console's slots are full.
 */
static int
ws_stalled(struct web_conn *c)
{
	char b;
	ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
	               errno != EINTR))
		return -1;
	if (n > 0 && !c->stalled) {
		c->stalled = 1;
		return ws_probe(c);
	}
	return 0;
}

/* Read frames while rx has room.  -1 when the peer has gone. */
static int
ws_read(struct web_conn *c)
{
	ssize_t n;

	if (c->rx_len == sizeof c->rx)
		return ws_stalled(c);
	c->stalled = 0;
	while (c->state == C_WEBSOCKET && c->rx_len < sizeof c->rx) {
		n = read(c->fd, c->rx + c->rx_len, sizeof c->rx - c->rx_len);
		if (n == 0)
			return -1;
		if (n < 0)
			return errno == EINTR ? 0 :
			       errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		c->rx_len += n;
		ws_frames(c);
		if (c->state == C_WEBSOCKET && c->hold.len)
			hold_feed(c->ep->port, &c->hold);
	}
	return 0;
}

/* Session output into out as one binary frame, while out has room: the
 * frame's header is the longest it can be (4 bytes: a payload of at most
 * 65535) and moves up when the payload turns out short. */
static size_t
ws_fill(struct web_conn *c)
{
	size_t room, n;
	char *at;

	out_compact(c);
	if (!reader_pending(c->ep->sess, &c->rd) || c->out_cap - c->out_len < 256)
		return 0;
	at = c->out + c->out_len;
	room = c->out_cap - c->out_len - 4;
	if (room > WEB_FRAME_OUT)
		room = WEB_FRAME_OUT;
	n = reader_take(c->ep->sess, &c->rd, at + 4, room);
	if (n < 126)
		memmove(at + 2, at + 4, n);
	c->out_len += ws_put_header((unsigned char *)at, WS_BINARY, n) + n;
	return n;
}

/* ---- the select() loop ---------------------------------------------------- */

/* A connection's fds: reading is how input comes, and how a peer that
 * left is seen; a WebSocket is read while a whole frame fits, and while
 * full until more input is seen waiting (ws_stalled()); a closing
 * connection once its last bytes are out.  Writable wakes the loop for
 * output the last pass had no budget left for (ws_serve()). */
static int
conn_add_fds(struct web_conn *c, fd_set *rd, fd_set *wr, int maxfd)
{
	if (c->state == C_REQUEST || (c->state == C_CLOSING && c->shut) ||
	    (c->state == C_WEBSOCKET &&
	     (c->rx_len < sizeof c->rx || !c->stalled)))
		maxfd = fd_watch(c->fd, rd, maxfd);
	if (c->out_off < c->out_len || (c->state == C_WEBSOCKET &&
	    reader_pending(c->ep->sess, &c->rd)))
		maxfd = fd_watch(c->fd, wr, maxfd);
	return maxfd;
}

/* The console's WebSockets. */
static int
web_add_fds(struct endpoint *ep, fd_set *rd, fd_set *wr, int maxfd)
{
	struct web_server *srv = ep->shared;
	unsigned i;

	for (i = 0; i < srv->n; i++)
		if (srv->c[i]->ep == ep)
			maxfd = conn_add_fds(srv->c[i], rd, wr, maxfd);
	return maxfd;
}

/* The server's own: the listener, requests, closing connections. */
static int
web_add_fds_shared(void *shared, fd_set *rd, fd_set *wr, int maxfd)
{
	struct web_server *srv = shared;
	unsigned i;

	if (!accept_paused())
		maxfd = fd_watch(srv->listen_fd, rd, maxfd);
	for (i = 0; i < srv->n; i++)
		if (!srv->c[i]->ep)
			maxfd = conn_add_fds(srv->c[i], rd, wr, maxfd);
	return maxfd;
}

/* One WebSocket's turn: output, held input, new input; at most
 * SESS_PASS_MAX bytes of output, the rest next pass.  -1: gone. */
static int
ws_serve(struct web_conn *c, int readable, int writable)
{
	size_t taken = 0;

	if (c->hold.len)
		hold_feed(c->ep->port, &c->hold);
	/* Frames that waited for room in the hold or in out. */
	if (c->rx_len)
		ws_frames(c);
	if (c->state == C_WEBSOCKET && readable && ws_read(c) < 0)
		return -1;
	if (c->state != C_WEBSOCKET)
		return 0;
	do {
		taken += ws_fill(c);
		if ((!c->blocked || writable) && conn_write(c) < 0)
			return -1;
	} while (!c->blocked && reader_pending(c->ep->sess, &c->rd) &&
	         taken < SESS_PASS_MAX);
	return 0;
}

/* A request read, or the lingering close; -1 when c can go. */
static int
conn_serve(struct web_conn *c, int readable)
{
	if (c->state == C_REQUEST && readable && request_read(c) < 0)
		return -1;
	/* A request answered: on to closing. */
	if (c->state == C_CLOSING && conn_linger(c, readable && c->shut) < 0)
		return -1;
	return 0;
}

/* The console's WebSockets: output, input, and a failed one's closing. */
static void
web_serve(struct endpoint *ep, const fd_set *rd, const fd_set *wr)
{
	struct web_server *srv = ep->shared;
	unsigned i = 0;

	while (i < srv->n) {
		struct web_conn *c = srv->c[i];
		int readable = FD_ISSET(c->fd, rd);

		if (c->ep != ep || c->state != C_WEBSOCKET) {
			i++;
			continue;
		}
		if (ws_serve(c, readable, FD_ISSET(c->fd, wr)) < 0) {
			conn_free(c, "went away");
			continue;
		}
		if (conn_serve(c, readable) < 0) {
			conn_free(c, NULL);
			continue;
		}
		i++;
	}
}

/* The connections no console has, then new ones. */
static void
web_serve_shared(void *shared, const fd_set *rd, const fd_set *wr)
{
	struct web_server *srv = shared;
	unsigned i = 0;

	(void)wr;
	while (i < srv->n) {
		struct web_conn *c = srv->c[i];

		if (c->ep || conn_serve(c, FD_ISSET(c->fd, rd)) == 0)
			i++;
		else
			conn_free(c, NULL);
	}
	if (FD_ISSET(srv->listen_fd, rd))
		web_accept(srv);
}

/* The URL, whole: the caller's buffer has room for the longest address
 * and the longest --web-token (64 bytes, checked with the options); were
 * it ever cut, the cut would show, not leave a URL that looks right. */
static void
web_describe(struct endpoint *ep, char *buf, size_t len)
{
	struct web_server *srv = ep->shared;
	const char *token = srv->cfg->web_token;
	int n;

	n = snprintf(buf, len, "web http://%s/console/%u%s%s", srv->where,
	             ep->index, token ? "?token=" : "", token ? token : "");
	if (n >= (int)len && len > 4)
		memcpy(buf + len - 4, "...", 4);
}

const struct backend backend_web = {
	.name = "web",
	.open = web_open,
	.close = web_close,
	.add_fds = web_add_fds,
	.serve = web_serve,
	.describe = web_describe,
	.start = web_start,
	.add_fds_shared = web_add_fds_shared,
	.serve_shared = web_serve_shared,
	.stop = web_stop,
};
