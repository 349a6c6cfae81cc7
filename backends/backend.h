/*
 * backends/backend.h - what a backend is to the console device, and the
 * calls a backend may make back into the device (console.h).
 *
 * A backend is one way in to the consoles: a terminal, TCP clients, ...
 * Several may serve the same console at once (--backend=network,nested).
 * Console k is port p of device d, k = d * P + p for P ports per device;
 * every backend opens one endpoint per console k it serves.  It owns its
 * fds and takes part in the one select() loop through add_fds()/serve(),
 * like the vhost-user side does.  A backend that also serves something
 * once for all its consoles (the web backend's one HTTP port) has
 * backend-level hooks beside: start() makes its state before any open(),
 * every endpoint holds it (ep->shared), add_fds_shared()/serve_shared()
 * run once per pass, stop() frees it after the last close().
 *
 * Guest -> host: the device appends what the guest writes to the console's
 * session (session.h); each of the backend's clients is a reader of it and
 * is written to as fast as it takes the bytes.  A backend never blocks.
 *
 * Host -> guest: a backend reads input only when the guest has a receive
 * buffer, and at most that buffer's size: port_input_room() says how much,
 * port_input() hands the bytes over; or port_read_input() reads an fd
 * straight into all the buffers posted.  A flood of input waits in the
 * kernel's socket buffer, not in our memory.
 */
#ifndef BACKEND_H
#define BACKEND_H

#include <stddef.h>
#include <sys/select.h>
#include <sys/types.h>

#include "../console.h"   /* struct port and the port_* calls */

/* --web-origin: how many, and room for one serialized (web.c). */
#define WEB_ORIGINS_MAX 8
#define WEB_ORIGIN_LEN  300

struct backend_config {
	const char *tcp_address;   /* network: address to bind */
	unsigned tcp_port;         /* network: port of console 0 */
	int escape;                /* nested: escape character, -1 = none */
	const char *unix_path;     /* unix: socket of console k is this + k */
	unsigned unix_mode;        /* unix: its mode (0600) */
	long unix_gid;             /* unix: its group, -1: ours */
	const char *pty_link;      /* pty: symlink of console k is this + k */
	int telnet;                /* network: speak telnet to clients */
	const char *web_address;   /* web: address to bind */
	unsigned web_port;         /* web: the one port of every console */
	const char *web_assets;    /* web: the @xterm/xterm package, or NULL */
	const char *web_token;     /* web: required in each request, or NULL */
	/* web: the public origins a reverse proxy serves us as (--web-origin,
	 * checked with web_origin_serialize()), NULL-terminated */
	const char *web_origins[WEB_ORIGINS_MAX + 1];
	const char *web_view_token; /* web: or this one, for a read-only view */
	unsigned nports;           /* P, ports per device: k = d * P + p */
	const char *const *names;  /* port p's name (NULL: none), P entries */
};

/* What SIGHUP means to a way in: a terminal hung up on, or nothing. */
enum hup_result { HUP_GO_ON, HUP_QUIT };

/* One console as one way in serves it; the daemon sets all but priv
 * before open(). */
struct endpoint {
	const struct backend *be;
	void *shared;              /* the backend's start() state, or NULL */
	struct port *port;
	struct sess *sess;         /* the console's output, for readers */
	unsigned index;            /* console number k */
	unsigned device, port_id;  /* d and p: k = d * P + p */
	const char *name;          /* port p's name, or NULL */
	int quit;                  /* the user asked the daemon to quit */
	int read_only;             /* --read-only: its clients only view; they
	                              are counted in port->viewers and
	                              port->discarded */
	void *priv;                /* the backend's own state */
};

struct backend {
	const char *name;
	/* Start serving console ep->index: 0, or 1 when this backend does
	 * not serve that console, or -1 with a reason in err. */
	int (*open)(struct endpoint *ep, const struct backend_config *cfg,
	            char *err, size_t errlen);
	void (*close)(struct endpoint *ep);
	int (*add_fds)(struct endpoint *ep, fd_set *rd, fd_set *wr, int maxfd);
	void (*serve)(struct endpoint *ep, const fd_set *rd, const fd_set *wr);
	/* How a user reaches the console, for the start-up lines. */
	void (*describe)(struct endpoint *ep, char *buf, size_t len);
	/* The terminal was resized (SIGWINCH); may be NULL. */
	void (*winch)(struct endpoint *ep);
	/* SIGHUP came (the daemon reopens the log files either way): what
	 * this way in makes of it; NULL: nothing, the daemon goes on. */
	enum hup_result (*hangup)(struct endpoint *ep);

	/* Backend-level, all NULL or all set: the state every endpoint
	 * shares (NULL with a reason in err), its fds, and its end. */
	void *(*start)(const struct backend_config *cfg, char *err,
	               size_t errlen);
	int (*add_fds_shared)(void *shared, fd_set *rd, fd_set *wr, int maxfd);
	void (*serve_shared)(void *shared, const fd_set *rd, const fd_set *wr);
	void (*stop)(void *shared);
};

extern const struct backend backend_network;
extern const struct backend backend_nested;
extern const struct backend backend_unix;
extern const struct backend backend_pty;
extern const struct backend backend_web;

/* url ("https://Console.Example:443") as a browser's Origin header spells
 * it ("https://console.example"), into out; -1 if it is not
 * http(s)://host[:port] (web.c). */
int web_origin_serialize(const char *url, char *out, size_t len);

#endif
