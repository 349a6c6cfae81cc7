/*
 * tests/fe/mem.c - diagnostics, time, patterns and guest memory
 * (contract: frontend.h).
 */
#include "frontend.h"

/* ---------------------------------------------------------------------- */
/* diagnostics and time                                                    */

int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
fail(struct fe *fe, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "frontend: step %d (%s): ", fe->step_no, fe->cur_step);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	rec_flush_write(fe);
	exit(1);
}

void
note(struct fe *fe, const char *fmt, ...)
{
	va_list ap;
	if (!fe->verbose)
		return;
	fprintf(stderr, "frontend: %6.3f ",
		(double)(now_ms() - fe->t_start) / 1000);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}


int64_t
deadline_in(double s)
{
	return now_ms() + (int64_t)(s * 1000);
}

int
ms_left(int64_t dl)
{
	int64_t l = dl - now_ms();
	return l < 0 ? 0 : l > INT_MAX ? INT_MAX : (int)l;
}

const char *
reqname(uint32_t r)
{
	switch (r) {
	case VU_GET_FEATURES: return "GET_FEATURES";
	case VU_SET_FEATURES: return "SET_FEATURES";
	case VU_SET_OWNER: return "SET_OWNER";
	case VU_RESET_OWNER: return "RESET_OWNER";
	case VU_SET_MEM_TABLE: return "SET_MEM_TABLE";
	case VU_SET_VRING_NUM: return "SET_VRING_NUM";
	case VU_SET_VRING_ADDR: return "SET_VRING_ADDR";
	case VU_SET_VRING_BASE: return "SET_VRING_BASE";
	case VU_GET_VRING_BASE: return "GET_VRING_BASE";
	case VU_SET_VRING_KICK: return "SET_VRING_KICK";
	case VU_SET_VRING_CALL: return "SET_VRING_CALL";
	case VU_SET_VRING_ERR: return "SET_VRING_ERR";
	case VU_GET_PROTOCOL_FEATURES: return "GET_PROTOCOL_FEATURES";
	case VU_SET_PROTOCOL_FEATURES: return "SET_PROTOCOL_FEATURES";
	case VU_GET_QUEUE_NUM: return "GET_QUEUE_NUM";
	case VU_SET_VRING_ENABLE: return "SET_VRING_ENABLE";
	case VU_SET_BACKEND_REQ_FD: return "SET_BACKEND_REQ_FD";
	case VU_GET_CONFIG: return "GET_CONFIG";
	case VU_SET_CONFIG: return "SET_CONFIG";
	case VU_RESET_DEVICE: return "RESET_DEVICE";
	case VU_GET_MAX_MEM_SLOTS: return "GET_MAX_MEM_SLOTS";
	case VU_ADD_MEM_REG: return "ADD_MEM_REG";
	case VU_REM_MEM_REG: return "REM_MEM_REG";
	default: return "request";
	}
}

const char *
evname(uint16_t e)
{
	static const char *n[] = { "DEVICE_READY", "PORT_ADD", "PORT_REMOVE",
		"PORT_READY", "CONSOLE_PORT", "RESIZE", "PORT_OPEN",
		"PORT_NAME" };
	return e < 8 ? n[e] : "UNKNOWN";
}

/* hex of up to 72 bytes, for one-line diagnostics */
const char *
hex(const void *p, size_t n)
{
	static char buf[4][3 * 72 + 8];
	static int which;
	char *b = buf[which++ & 3], *o = b;
	const uint8_t *s = p;
	size_t i, m = n > 72 ? 72 : n;
	for (i = 0; i < m; i++)
		o += sprintf(o, "%s%02x", i ? " " : "", s[i]);
	if (m < n)
		strcpy(o, " ...");
	else
		*o = 0;
	return b;
}

void
put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}
void
put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}
uint32_t
get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
uint64_t
get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* ---------------------------------------------------------------------- */
/* patterns                                                                */

static uint8_t
mem_pat(uint64_t off)
{
	return (uint8_t)((((uint32_t)off * 0x9E3779B1u) >> 24) ^ 0xA5);
}

uint8_t
data_pat(uint64_t k)
{
	uint32_t x = (uint32_t)k * 2654435761u;
	return (uint8_t)((x >> 24) ^ (x >> 13));
}

/* ---------------------------------------------------------------------- */
/* guest memory                                                            */

void
mem_setup(struct fe *fe)
{
	size_t i;
	fe->memfd = memfd_create("guest-ram", MFD_CLOEXEC);
	if (fe->memfd < 0)
		fail(fe, "memfd_create: %s", strerror(errno));
	if (ftruncate(fe->memfd, MEM_SIZE) < 0)
		fail(fe, "ftruncate: %s", strerror(errno));
	fe->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		       fe->memfd, 0);
	if (fe->mem == MAP_FAILED)
		fail(fe, "mmap: %s", strerror(errno));
	fe->shadow = malloc(MEM_SIZE);
	fe->wmap = calloc(1, MEM_SIZE);
	if (!fe->shadow || !fe->wmap)
		fail(fe, "out of memory");
	for (i = 0; i < MEM_SIZE; i++)
		fe->mem[i] = fe->shadow[i] = mem_pat(i);
}

static bool
gpa_ok(uint64_t gpa, uint64_t len)
{
	return gpa >= GPA_BASE && gpa <= GPA_END && len <= GPA_END - gpa;
}

uint8_t *
g2h(struct fe *fe, uint64_t gpa, uint64_t len)
{
	if (!gpa_ok(gpa, len))
		fail(fe,
		     "internal: gpa 0x%" PRIx64 "+%" PRIu64
		     " outside guest memory",
		     gpa, len);
	return fe->mem + (gpa - GPA_BASE);
}


/* shadow_at: the shadow copy's byte for guest address GPA (in range:
 * the caller has passed the same range through g2h). */
static uint8_t *
shadow_at(struct fe *fe, uint64_t gpa)
{
	return fe->shadow + (gpa - GPA_BASE);
}

/* Driver-side writes go to guest memory and to the shadow copy. */
void
gw(struct fe *fe, uint64_t gpa, const void *p, size_t len)
{
	rec_write(fe, gpa, p, len);
	memcpy(g2h(fe, gpa, len), p, len);
	memcpy(shadow_at(fe, gpa), p, len);
}

/* gw16, gw32, gw64 (frontend.h): a little-endian field, as the driver
 * stores it; one body for the three widths. */
#define GW_LE(name, type, htole)					\
	void								\
	name(struct fe *fe, uint64_t gpa, type v)			\
	{								\
		type le = htole(v);					\
		gw(fe, gpa, &le, sizeof le);				\
	}
GW_LE(gw16, uint16_t, htole16)
GW_LE(gw32, uint32_t, htole32)
GW_LE(gw64, uint64_t, htole64)
#undef GW_LE

void
gzero(struct fe *fe, uint64_t gpa, size_t len)
{
	rec_zero(fe, gpa, len);
	memset(g2h(fe, gpa, len), 0, len);
	memset(shadow_at(fe, gpa), 0, len);
}

void
gstore16_release(struct fe *fe, uint64_t gpa, uint16_t v)
{
	uint16_t le = htole16(v);
	rec_write(fe, gpa, &le, 2);
	__atomic_store_n((uint16_t *)g2h(fe, gpa, 2), le, __ATOMIC_RELEASE);
	memcpy(shadow_at(fe, gpa), &le, 2);
}

uint16_t
gload16(struct fe *fe, uint64_t gpa)
{
	return le16toh(
		__atomic_load_n((uint16_t *)g2h(fe, gpa, 2), __ATOMIC_ACQUIRE));
}

uint32_t
gload32(struct fe *fe, uint64_t gpa)
{
	return le32toh(
		__atomic_load_n((uint32_t *)g2h(fe, gpa, 4), __ATOMIC_RELAXED));
}

uint16_t
sh16(struct fe *fe, uint64_t gpa)
{
	uint16_t v;
	memcpy(&v, shadow_at(fe, gpa), 2);
	return le16toh(v);
}

void
mark_writable(struct fe *fe, uint64_t gpa, uint64_t len)
{
	if (gpa_ok(gpa, len))
		memset(fe->wmap + (gpa - GPA_BASE), 1, len);
}

uint64_t
gpa2uaddr(uint64_t gpa)
{
	return gpa < BOUNDARY ? UADDR0 + (gpa - GPA_BASE)
			      : UADDR1 + (gpa - BOUNDARY);
}

static uint64_t
align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

void
layout(struct fe *fe, unsigned n, bool tx_cross)
{
	uint64_t off = GPA_BASE + 0x1000, cross = BOUNDARY - 0x800;
	int q;
	for (q = 0; q < NQ; q++) {
		fe->vq[q].desc = off = align_up(off, 4096);
		off += 16ull * n;
		fe->vq[q].avail = off = align_up(off, 4096);
		off += 6 + 2ull * n;
		fe->vq[q].used = off = align_up(off, 4096);
		off += 6 + 8ull * n;
	}
	fe->ind_base = off = align_up(off, 4096);
	off += IND_SLOTS * IND_SIZE;
	fe->crx_base = off;
	off += CRX_MAX * BUF_SIZE;
	fe->ctx_base = off;
	off += CTX_SLOTS * CTX_SIZE;
	if (off > cross)
		fail(fe, "queue size %u too large for the memory layout", n);
	if (tx_cross) {
		fe->tx0_base = cross;
		fe->rx0_base = BOUNDARY + 0x100000 + 0x100;
	} else {
		fe->rx0_base = cross;
		fe->tx0_base = BOUNDARY + 0x100000 + 0x100;
	}
}

/* The accessors frontend.h declares, one an area of SIZE-byte slots at
 * fe->BASE: where slot s begins.  One arithmetic for all, written once. */
#define AREA_GPA(name, base, size)					\
	uint64_t							\
	name(struct fe *fe, int s)					\
	{								\
		return fe->base + (uint64_t)s * size;			\
	}
AREA_GPA(rx0_gpa, rx0_base, BUF_SIZE)
AREA_GPA(tx0_gpa, tx0_base, BUF_SIZE)
AREA_GPA(crx_gpa, crx_base, BUF_SIZE)
AREA_GPA(ctx_gpa, ctx_base, CTX_SIZE)
AREA_GPA(ind_gpa, ind_base, IND_SIZE)
#undef AREA_GPA
