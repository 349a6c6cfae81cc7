/* backends/websocket.c - SHA-1, base64, frame headers.  See websocket.h. */
#include <string.h>

#include "websocket.h"

/* ---- SHA-1 (FIPS 180-4, section 6.1) ------------------------------------ */

static uint32_t
rol(uint32_t x, unsigned n)
{
	return x << n | x >> (32 - n);
}

/* One 64-byte block into the hash state h[5] (section 6.1.2). */
static void
sha1_block(uint32_t h[5], const unsigned char *block)
{
	uint32_t w[80], a, b, c, d, e, f, k, t;
	unsigned i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 |
		       (uint32_t)block[4 * i + 2] << 8 | block[4 * i + 3];
	for (i = 16; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
	for (i = 0; i < 80; i++) {
		/* The four rounds' functions and constants (section 4.1.1, 4.2.1). */
		if (i < 20)
			f = (b & c) | (~b & d), k = 0x5a827999;
		else if (i < 40)
			f = b ^ c ^ d, k = 0x6ed9eba1;
		else if (i < 60)
			f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
		else
			f = b ^ c ^ d, k = 0xca62c1d6;
		t = rol(a, 5) + f + e + k + w[i];
		e = d, d = c, c = rol(b, 30), b = a, a = t;
	}
	h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

void
sha1(const void *data, size_t len, unsigned char digest[SHA1_LEN])
{
	uint32_t h[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476,
	                  0xc3d2e1f0 };
	const unsigned char *p = data;
	unsigned char last[128];
	uint64_t bits = (uint64_t)len * 8;
	size_t rest, pad, i;

	for (; len >= 64; p += 64, len -= 64)
		sha1_block(h, p);
	/* Padding (section 5.1.1): 0x80, zeros, the length in bits as a
	 * 64-bit big-endian number; one block or two. */
	rest = len;
	memcpy(last, p, rest);
	last[rest] = 0x80;
	pad = rest < 56 ? 64 : 128;
	memset(last + rest + 1, 0, pad - rest - 1);
	for (i = 0; i < 8; i++)
		last[pad - 1 - i] = (unsigned char)(bits >> (8 * i));
	sha1_block(h, last);
	if (pad == 128)
		sha1_block(h, last + 64);
	for (i = 0; i < 20; i++)
		digest[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

/* ---- base64 (RFC 4648, section 4) --------------------------------------- */

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
base64_encode(const void *in, size_t len, char *out, size_t outlen)
{
	const unsigned char *p = in;
	size_t i, o = 0;
	uint32_t v;

	if (outlen < (len + 2) / 3 * 4 + 1)
		return 0;
	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)p[i] << 16 | p[i + 1] << 8 | p[i + 2];
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = b64[v >> 6 & 63];
		out[o++] = b64[v & 63];
	}
	if (i < len) {             /* 1 or 2 bytes left: pad with '=' */
		v = (uint32_t)p[i] << 16 | (i + 1 < len ? p[i + 1] << 8 : 0);
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = i + 1 < len ? b64[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

/* 16 bytes are 22 base64 digits and "==" (section 4.1: "a randomly
 * selected 16-byte value that has been base64-encoded"). */
int
ws_key_valid(const char *key)
{
	size_t i;

	if (strlen(key) != 24 || strcmp(key + 22, "==") != 0)
		return 0;
	for (i = 0; i < 22; i++)
		if (!strchr(b64, key[i]) || !key[i])
			return 0;
	/* The last digit holds 2 bits of data and 4 zero bits. */
	return (strchr(b64, key[21]) - b64) % 16 == 0;
}

void
ws_accept(const char *key, char accept[WS_ACCEPT_LEN])
{
	char buf[64 + sizeof WS_GUID];
	unsigned char digest[SHA1_LEN];
	size_t n = strlen(key);

	if (n > 64)
		n = 64;            /* a valid key has 24 */
	memcpy(buf, key, n);
	memcpy(buf + n, WS_GUID, sizeof WS_GUID - 1);
	sha1(buf, n + sizeof WS_GUID - 1, digest);
	base64_encode(digest, SHA1_LEN, accept, WS_ACCEPT_LEN);
}

/* ---- frames (section 5.2) ----------------------------------------------- */

int
ws_parse_header(const unsigned char *buf, size_t n, struct ws_frame *f)
{
	size_t need = 2, i;

	if (n < 2)
		return 0;
	f->fin = buf[0] >> 7;
	f->rsv = buf[0] >> 4 & 7;
	f->opcode = buf[0] & 0x0f;
	f->masked = buf[1] >> 7;
	f->len = buf[1] & 0x7f;
	if (f->len == 126)
		need += 2;
	else if (f->len == 127)
		need += 8;
	if (f->masked)
		need += 4;
	if (n < need)
		return 0;
	if (f->len >= 126) {
		size_t bytes = f->len == 126 ? 2 : 8;

		f->len = 0;
		for (i = 0; i < bytes; i++)
			f->len = f->len << 8 | buf[2 + i];
	}
	if (f->masked)
		memcpy(f->mask, buf + need - 4, 4);
	f->header_len = need;
	return 1;
}

size_t
ws_put_header(unsigned char *buf, int opcode, uint64_t len)
{
	size_t i;

	buf[0] = 0x80 | (opcode & 0x0f);
	if (len < 126) {
		buf[1] = (unsigned char)len;
		return 2;
	}
	if (len <= 0xffff) {
		buf[1] = 126;
		buf[2] = (unsigned char)(len >> 8);
		buf[3] = (unsigned char)len;
		return 4;
	}
	buf[1] = 127;
	for (i = 0; i < 8; i++)
		buf[2 + i] = (unsigned char)(len >> (56 - 8 * i));
	return 10;
}

void
ws_unmask(unsigned char *p, size_t n, const unsigned char mask[4], uint64_t off)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] ^= mask[(off + i) % 4];
}
