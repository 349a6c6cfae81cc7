/*
 * backends/websocket.h - the parts of WebSocket (RFC 6455) that are pure
 * computation: the opening handshake's accept value (SHA-1, FIPS 180-4,
 * and base64, RFC 4648, both written here) and frame headers.  No I/O:
 * web.c does that, and tests/wsunit.c checks these against the published
 * vectors.
 *
 * A frame (RFC 6455 section 5.2):
 *
 *     byte 0: FIN RSV1 RSV2 RSV3 opcode(4)
 *     byte 1: MASK payload-len(7)       126: 16-bit length follows,
 *                                       127: 64-bit length follows
 *     [extended length] [masking key, 4 bytes, if MASK] payload
 *
 * Clients mask every frame, servers never do.
 */
#ifndef WEBSOCKET_H
#define WEBSOCKET_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_LEN 20
/* The value RFC 6455 appends to the client's key before hashing. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* base64 of a SHA-1 digest, and its NUL. */
#define WS_ACCEPT_LEN 29
/* The longest header a frame can have: 2 + 8 (length) + 4 (mask). */
#define WS_HEADER_MAX 14
/* A control frame's payload is at most this long (section 5.5). */
#define WS_CONTROL_MAX 125

enum ws_opcode {
	WS_CONTINUATION = 0x0, WS_TEXT = 0x1, WS_BINARY = 0x2,
	WS_CLOSE = 0x8, WS_PING = 0x9, WS_PONG = 0xa
};

/* Close status codes (section 7.4.1). */
enum ws_status {
	WS_NORMAL = 1000, WS_GOING_AWAY = 1001, WS_PROTOCOL_ERROR = 1002,
	WS_POLICY = 1008, WS_TOO_BIG = 1009
};

struct ws_frame {
	int fin, rsv, opcode, masked;
	uint64_t len;                /* payload length */
	unsigned char mask[4];
	size_t header_len;           /* bytes before the payload */
};

void sha1(const void *data, size_t len, unsigned char digest[SHA1_LEN]);
/* base64 of len bytes into out (with '=' padding and a NUL); returns the
 * length, or 0 when out is too small (it needs 4 * ceil(len / 3) + 1). */
size_t base64_encode(const void *in, size_t len, char *out, size_t outlen);
/* Whether key is what a client must send: base64 of 16 bytes. */
int ws_key_valid(const char *key);
/* Sec-WebSocket-Accept for Sec-WebSocket-Key key. */
void ws_accept(const char *key, char accept[WS_ACCEPT_LEN]);
/* Read the header at buf (n bytes there): 1 with f filled in, 0 when more
 * bytes are needed. */
int ws_parse_header(const unsigned char *buf, size_t n, struct ws_frame *f);
/* A server frame's header (FIN set, not masked) for a payload of len
 * bytes, with the shortest length encoding as the RFC requires; returns
 * its size (2, 4 or 10). */
size_t ws_put_header(unsigned char *buf, int opcode, uint64_t len);
/* Unmask n payload bytes that start off bytes into the payload. */
void ws_unmask(unsigned char *p, size_t n, const unsigned char mask[4],
               uint64_t off);

#endif
