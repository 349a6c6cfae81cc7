/*
 * tests/wsunit.c - backends/websocket.c against the published vectors:
 * SHA-1 from FIPS 180 (its examples "abc", the 448-bit message, one million
 * 'a'), the accept value of RFC 6455's section 1.3 example, base64 from RFC
 * 4648 section 10, and frame headers.  Prints one "ok"/"FAIL" line per
 * check; exits 1 if any failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backends/websocket.h"

static int failed;

static void
check(const char *what, const char *got, const char *want)
{
	int ok = strcmp(got, want) == 0;

	printf("%s %s: %s%s%s\n", ok ? "ok" : "FAIL", what, got,
	       ok ? "" : " want ", ok ? "" : want);
	failed |= !ok;
}

static void
check_sha1(const char *what, const void *data, size_t len, const char *want)
{
	unsigned char d[SHA1_LEN];
	char hex[2 * SHA1_LEN + 1];
	int i;

	sha1(data, len, d);
	for (i = 0; i < SHA1_LEN; i++)
		sprintf(hex + 2 * i, "%02x", d[i]);
	check(what, hex, want);
}

static void
check_b64(const char *in, const char *want)
{
	char out[32], what[32];

	base64_encode(in, strlen(in), out, sizeof out);
	snprintf(what, sizeof what, "base64 \"%s\"", in);
	check(what, out, want);
}

int
main(void)
{
	static const char m448[] =
		"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	char accept[WS_ACCEPT_LEN], got[64];
	unsigned char h[WS_HEADER_MAX];
	struct ws_frame f;
	char *million = malloc(1000000);

	if (!million)
		return 1;
	check_sha1("sha1 \"abc\"", "abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
	check_sha1("sha1 448 bits", m448, strlen(m448),
	           "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
	memset(million, 'a', 1000000);
	check_sha1("sha1 one million 'a'", million, 1000000,
	           "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
	check_sha1("sha1 \"\"", "", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	free(million);

	check_b64("", "");
	check_b64("f", "Zg==");
	check_b64("fo", "Zm8=");
	check_b64("foo", "Zm9v");
	check_b64("foob", "Zm9vYg==");
	check_b64("fooba", "Zm9vYmE=");
	check_b64("foobar", "Zm9vYmFy");

	ws_accept("dGhlIHNhbXBsZSBub25jZQ==", accept);
	check("accept for RFC 6455's example key", accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	check("the example key is valid",
	      ws_key_valid("dGhlIHNhbXBsZSBub25jZQ==") ? "yes" : "no", "yes");
	check("a 15-byte key is not", ws_key_valid("dGhlIHNhbXBsZSBub25j") ? "yes" : "no", "no");
	check("a key with a bad digit is not",
	      ws_key_valid("dGhlIHNhbXBsZSBub25j*Q==") ? "yes" : "no", "no");

	/* Headers: the shortest length encoding, and a masked client frame
	 * (RFC 6455 section 5.7's masked "Hello"). */
	snprintf(got, sizeof got, "%zu %zu %zu", ws_put_header(h, WS_BINARY, 125),
	         ws_put_header(h, WS_BINARY, 126), ws_put_header(h, WS_BINARY, 65536));
	check("header sizes for 125, 126, 65536 bytes", got, "2 4 10");
	{
		unsigned char hello[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
		                          0x7f, 0x9f, 0x4d, 0x51, 0x58 };

		if (ws_parse_header(hello, sizeof hello, &f) != 1)
			f.header_len = 0;
		ws_unmask(hello + f.header_len, f.len, f.mask, 0);
		snprintf(got, sizeof got, "fin %d op %d masked %d len %llu \"%.5s\"",
		         f.fin, f.opcode, f.masked, (unsigned long long)f.len,
		         (char *)hello + 6);
		check("RFC 6455 5.7 masked Hello", got,
		      "fin 1 op 1 masked 1 len 5 \"Hello\"");
		snprintf(got, sizeof got, "%d", ws_parse_header(hello, 5, &f));
		check("a header cut short needs more bytes", got, "0");
	}
	return failed;
}
