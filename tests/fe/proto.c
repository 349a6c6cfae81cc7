/*
 * tests/fe/proto.c - protocol checks
 * (contract: frontend.h).
 */
#include "frontend.h"

static void expect_closed_and_reconnect(struct fe *fe, const char *what);

/* ---------------------------------------------------------------------- */
/* protocol checks                                                         */

/* A pipe whose write end is handed to the daemon: after we close ours, the
 * read end sees EOF once the daemon closed its copy. */
struct canary { int r, w; };

static struct canary
canary_new(struct fe *fe)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		fail(fe, "pipe2: %s", strerror(errno));
	return (struct canary){ p[0], p[1] };
}

static void
canary_expect_closed(struct fe *fe, struct canary *k, const char *what)
{
	int64_t dl = deadline_in(fe->timeout_s);
	close(k->w);
	for (;;) {
		struct pollfd pf = { k->r, POLLIN, 0 };
		int r = poll(&pf, 1, ms_left(dl));
		if (r < 0 && errno == EINTR)
			continue;
		if (r > 0 && (pf.revents & POLLHUP))
			break;
		if (r <= 0 || ms_left(dl) == 0)
			fail(fe,
			     "%s: the daemon kept the fd open (not closed "
			     "within %g s)",
			     what, fe->timeout_s);
		drain_fd(k->r);
	}
	close(k->r);
}

/* GET_FEATURES, GET/SET_PROTOCOL_FEATURES (everything offered that we
 * know), SET_OWNER: the state the protocol checks start from. */
static void
proto_base(struct fe *fe)
{
	fe->neg.features_offered = vu_get_u64(fe, VU_GET_FEATURES);
	fe->neg.proto = true;
	fe->neg.pfeatures_offered = vu_get_u64(fe, VU_GET_PROTOCOL_FEATURES);
	fe->neg.pfeatures = fe->neg.pfeatures_offered & WANT_PFEATURES;
	fe->neg.reply_ack = true;
	vu_send(fe, VU_SET_PROTOCOL_FEATURES, VU_VERSION | VU_NEED_REPLY,
		&fe->neg.pfeatures, 8, NULL, 0);
	expect_reply_u64_exact(fe, VU_SET_PROTOCOL_FEATURES, 0,
			       "SET_PROTOCOL_FEATURES (valid)");
	vu_ok(fe, VU_SET_OWNER, NULL, 0, NULL, 0, "SET_OWNER");
}

static void
proto_get_features_exact(struct fe *fe, const char *what)
{
	vu_send(fe, VU_GET_FEATURES, VU_VERSION, NULL, 0, NULL, 0);
	expect_reply_u64_exact(fe, VU_GET_FEATURES, WANT_FEATURES, what);
}

void
step_proto_features(struct fe *fe)
{
	proto_get_features_exact(fe, "GET_FEATURES");
	proto_base(fe);
	/* need_reply on a request with its own reply: exactly one reply */
	vu_send(fe, VU_GET_FEATURES, VU_VERSION | VU_NEED_REPLY, NULL, 0, NULL,
		0);
	expect_reply_u64_exact(fe, VU_GET_FEATURES, WANT_FEATURES,
			       "GET_FEATURES with need_reply");
	vu_send(fe, VU_GET_QUEUE_NUM, VU_VERSION, NULL, 0, NULL, 0);
	expect_reply_u64_exact(fe, VU_GET_QUEUE_NUM, WANT_QUEUE_NUM,
			       "GET_QUEUE_NUM after GET_FEATURES+need_reply (a "
			       "second reply?)");
	vu_u64(fe, false, VU_SET_FEATURES, WANT_FEATURES | BIT(34), NULL, 0,
		     "SET_FEATURES with bit 34 (RING_PACKED, not offered)");
	vu_u64(fe, false, VU_SET_FEATURES, WANT_FEATURES | BIT(3), NULL, 0,
		     "SET_FEATURES with bit 3 (not offered)");
	vu_u64(fe, false, VU_SET_FEATURES, BIT(63), NULL, 0,
	       "SET_FEATURES with bit 63");
	vu_send(fe, VU_SET_FEATURES, VU_VERSION | VU_NEED_REPLY,
		(uint64_t[]){ WANT_FEATURES }, 8, NULL, 0);
	expect_reply_u64_exact(fe, VU_SET_FEATURES, 0,
			       "SET_FEATURES 0x170000002");
	vu_send(fe, VU_SET_FEATURES, VU_VERSION | VU_NEED_REPLY,
		(uint64_t[]){ BIT(VIRTIO_F_VERSION_1) |
			      BIT(VIRTIO_CONSOLE_F_MULTIPORT) },
		8, NULL, 0);
	expect_reply_u64_exact(fe, VU_SET_FEATURES, 0,
			       "SET_FEATURES 0x100000002 (a subset)");
	proto_get_features_exact(fe, "GET_FEATURES after SET_FEATURES");
}

void
step_proto_protocol_features(struct fe *fe)
{
	uint64_t v;
	fe->neg.features_offered = vu_get_u64(fe, VU_GET_FEATURES);
	vu_send(fe, VU_GET_PROTOCOL_FEATURES, VU_VERSION, NULL, 0, NULL, 0);
	expect_reply_u64_exact(fe, VU_GET_PROTOCOL_FEATURES, WANT_PFEATURES,
			       "GET_PROTOCOL_FEATURES");
	v = WANT_PFEATURES;
	vu_send(fe, VU_SET_PROTOCOL_FEATURES, VU_VERSION | VU_NEED_REPLY, &v, 8,
		NULL, 0);
	expect_reply_u64_exact(fe, VU_SET_PROTOCOL_FEATURES, 0,
			       "SET_PROTOCOL_FEATURES 0x8229");
	vu_u64(fe, false, VU_SET_PROTOCOL_FEATURES,
	       WANT_PFEATURES | BIT(PF_LOG_SHMFD), NULL, 0,
	       "SET_PROTOCOL_FEATURES with bit 1 (LOG_SHMFD, not offered)");
	vu_u64(fe, false, VU_SET_PROTOCOL_FEATURES, WANT_PFEATURES | BIT(40),
	       NULL, 0, "SET_PROTOCOL_FEATURES with bit 40 (unknown)");
	vu_send(fe, VU_SET_PROTOCOL_FEATURES, VU_VERSION | VU_NEED_REPLY, &v, 8,
		NULL, 0);
	expect_reply_u64_exact(fe, VU_SET_PROTOCOL_FEATURES, 0,
			       "SET_PROTOCOL_FEATURES 0x8229 again");
	vu_send(fe, VU_GET_PROTOCOL_FEATURES, VU_VERSION, NULL, 0, NULL, 0);
	expect_reply_u64_exact(fe, VU_GET_PROTOCOL_FEATURES, WANT_PFEATURES,
			       "GET_PROTOCOL_FEATURES after SET");
}

void
step_proto_misc(struct fe *fe)
{
	proto_base(fe);
	vu_send(fe, VU_GET_QUEUE_NUM, VU_VERSION, NULL, 0, NULL, 0);
	expect_reply_u64_exact(fe, VU_GET_QUEUE_NUM, WANT_QUEUE_NUM,
			       "GET_QUEUE_NUM");
	vu_send(fe, VU_GET_MAX_MEM_SLOTS, VU_VERSION, NULL, 0, NULL, 0);
	expect_reply_u64_exact(fe, VU_GET_MAX_MEM_SLOTS, WANT_MEM_SLOTS,
			       "GET_MAX_MEM_SLOTS");
	/* need_reply on requests that have their own reply: one reply each */
	vu_send(fe, VU_GET_QUEUE_NUM, VU_VERSION | VU_NEED_REPLY, NULL, 0, NULL,
		0);
	vu_send(fe, VU_GET_MAX_MEM_SLOTS, VU_VERSION | VU_NEED_REPLY, NULL, 0,
		NULL, 0);
	expect_reply_u64_exact(fe, VU_GET_QUEUE_NUM, WANT_QUEUE_NUM,
			       "GET_QUEUE_NUM with need_reply");
	expect_reply_u64_exact(fe, VU_GET_MAX_MEM_SLOTS, WANT_MEM_SLOTS,
			       "GET_MAX_MEM_SLOTS with need_reply (after "
			       "GET_QUEUE_NUM's single reply)");
	vu_send(fe, VU_SET_OWNER, VU_VERSION | VU_NEED_REPLY, NULL, 0, NULL, 0);
	expect_reply_u64_exact(fe, VU_SET_OWNER, 0, "SET_OWNER again");
	proto_get_features_exact(fe, "GET_FEATURES at the end");
}

/* The 12-byte header of a reply: same request, flags exactly 0x5. */
static void
want_reply(uint8_t *want, uint32_t req, uint32_t size)
{
	put32(want, req);
	put32(want + 4, 5);
	put32(want + 8, size);
}

/* A whole successful GET_CONFIG reply for [off, off+size) of the console's
 * config (the default size 80x24, max_nr_ports 1, all else 0); returns
 * its length. */
static size_t
want_config_reply(uint8_t *want, uint32_t off, uint32_t size)
{
	uint8_t cfg[VIRTIO_CONSOLE_CONFIG_SIZE] = { 0 };
	cfg[VIRTIO_CONSOLE_CONFIG_COLS] = 80;		/* le16 80: the default size */
	cfg[VIRTIO_CONSOLE_CONFIG_ROWS] = 24;		/* le16 24 */
	cfg[VIRTIO_CONSOLE_CONFIG_MAX_NR_PORTS] = 1;	/* le32 1 */
	want_reply(want, VU_GET_CONFIG, 12 + size);
	put32(want + 12, off);
	put32(want + 16, size);
	put32(want + 20, 0);
	memcpy(want + 24, cfg + off, size);
	return VU_HDR_SIZE + 12 + size;
}

static void
config_req(uint32_t off, uint32_t size, uint32_t flags, uint32_t datalen,
           uint8_t *b)
{
	memset(b, 0, 12 + datalen);
	put32(b, off);
	put32(b + 4, size);
	put32(b + 8, flags);
}

/* GET_CONFIG: the whole config, then max_nr_ports alone, answered exactly. */
static void
config_reads(struct fe *fe)
{
	uint8_t b[12 + 12], want[VU_HDR_SIZE + 12 + 12];
	config_req(0, 12, 0, 12, b);
	vu_send(fe, VU_GET_CONFIG, VU_VERSION, b, 24, NULL, 0);
	expect_reply_bytes(fe, want, want_config_reply(want, 0, 12),
			   "GET_CONFIG offset 0 size 12");
	config_req(4, 4, 0, 4, b);
	vu_send(fe, VU_GET_CONFIG, VU_VERSION, b, 16, NULL, 0);
	expect_reply_bytes(fe, want, want_config_reply(want, 4, 4),
			   "GET_CONFIG offset 4 size 4");
}

/* GET_CONFIG of a range past the end, over 256 bytes or wrapping: a
 * header-only reply each, and the connection still in sync after them. */
static void
config_invalid(struct fe *fe)
{
	uint8_t b[12 + 256], want[VU_HDR_SIZE + 12 + 256];
	want_reply(want, VU_GET_CONFIG, 0);
	config_req(8, 8, 0, 8, b);
	vu_send(fe, VU_GET_CONFIG, VU_VERSION, b, 20, NULL, 0);
	expect_reply_bytes(fe, want, VU_HDR_SIZE,
			   "GET_CONFIG offset 8 size 8 (past the end)");
	config_req(0, 1000, 0, 12, b);
	vu_send(fe, VU_GET_CONFIG, VU_VERSION, b, 24, NULL, 0);
	expect_reply_bytes(fe, want, VU_HDR_SIZE,
			   "GET_CONFIG size 1000 (> 256)");
	config_req(0xfffffff8u, 16, 0, 16, b);
	vu_send(fe, VU_GET_CONFIG, VU_VERSION, b, 28, NULL, 0);
	expect_reply_bytes(fe, want, VU_HDR_SIZE,
			   "GET_CONFIG offset 0xfffffff8 size 16 (wraps)");
	config_req(0, 256, 0, 256, b);
	vu_send(fe, VU_GET_CONFIG, VU_VERSION, b, 12 + 256, NULL, 0);
	expect_reply_bytes(fe, want, VU_HDR_SIZE,
			   "GET_CONFIG offset 0 size 256 (past the end)");
	/* still whole and in sync */
	config_req(0, 12, 0, 12, b);
	vu_send(fe, VU_GET_CONFIG, VU_VERSION, b, 24, NULL, 0);
	expect_reply_bytes(fe, want, want_config_reply(want, 0, 12),
			   "GET_CONFIG again");
}

/* proto-config: both on one connection (fuzz/run.sh records it). */
void
step_proto_config(struct fe *fe)
{
	proto_base(fe);
	config_reads(fe);
	config_invalid(fe);
}

void
step_proto_config_read(struct fe *fe)
{
	proto_base(fe);
	config_reads(fe);
}

void
step_proto_config_invalid(struct fe *fe)
{
	proto_base(fe);
	config_invalid(fe);
}

void
step_proto_unknown(struct fe *fe)
{
	uint8_t junk[16] = "0123456789abcdef";
	proto_base(fe);
	vu_fails(fe, 99, NULL, 0, NULL, 0, "request 99 with need_reply");
	vu_fails(fe, 99, junk, sizeof junk, NULL, 0,
		 "request 99 with 16 payload bytes and need_reply");
	vu_send(fe, 99, VU_VERSION, NULL, 0, NULL, 0);
	vu_send(fe, 99, VU_VERSION, junk, sizeof junk, NULL, 0);
	vu_send(fe, 0, VU_VERSION, NULL, 0, NULL, 0);
	proto_get_features_exact(
		fe, "GET_FEATURES after requests 99 and 0 without need_reply");
}

static void
mem_table(uint8_t *b, uint32_t n)
{
	uint32_t i;
	memset(b, 0, 8 + 32 * (size_t)n);
	put32(b, n);
	for (i = 0; i < n; i++)
		region_bytes(b + 8 + 32 * i, (int)(i & 1));
}

void
step_proto_mem_table(struct fe *fe)
{
	uint8_t b[8 + 32 * 8 + 4];
	int fds[8], i;
	struct canary k;
	int small;
	proto_base(fe);
	vu_u64(fe, true, VU_SET_FEATURES, WANT_FEATURES, NULL, 0,
	       "SET_FEATURES");
	/* valid, two regions */
	mem_table(b, 2);
	fds[0] = fds[1] = fe->memfd;
	vu_ok(fe, VU_SET_MEM_TABLE, b, 8 + 64, fds, 2,
	      "SET_MEM_TABLE two regions");
	/* one region in a 72-byte payload, as user-mode-linux sends it */
	mem_table(b, 2);
	put32(b, 1);
	vu_ok(fe, VU_SET_MEM_TABLE, b, 72, fds, 1,
	      "SET_MEM_TABLE one region, 72-byte payload");
	/* nregions 9 (with the 8 regions that fit) */
	mem_table(b, 8);
	put32(b, 9);
	k = canary_new(fe);
	for (i = 0; i < 8; i++)
		fds[i] = k.w;
	vu_fails(fe, VU_SET_MEM_TABLE, b, 8 + 32 * 8, fds, 8,
		 "SET_MEM_TABLE nregions 9");
	canary_expect_closed(fe, &k, "SET_MEM_TABLE nregions 9");
	/* two regions, one fd */
	mem_table(b, 2);
	k = canary_new(fe);
	vu_fails(fe, VU_SET_MEM_TABLE, b, 8 + 64, &k.w, 1,
		 "SET_MEM_TABLE two regions, one fd");
	canary_expect_closed(fe, &k, "SET_MEM_TABLE two regions, one fd");
	/* one region, two fds */
	mem_table(b, 1);
	k = canary_new(fe);
	fds[0] = fe->memfd;
	fds[1] = k.w;
	vu_fails(fe, VU_SET_MEM_TABLE, b, 8 + 32, fds, 2,
		 "SET_MEM_TABLE one region, two fds");
	canary_expect_closed(fe, &k, "SET_MEM_TABLE one region, two fds");
	/* payload shorter than 8 + 32n */
	mem_table(b, 2);
	k = canary_new(fe);
	fds[0] = k.w;
	fds[1] = k.w;
	vu_fails(fe, VU_SET_MEM_TABLE, b, 8 + 40, fds, 2,
		 "SET_MEM_TABLE two regions in 48 bytes");
	canary_expect_closed(fe, &k, "SET_MEM_TABLE two regions in 48 bytes");
	/* an fd shorter than mmap_offset + size */
	small = memfd_create("small", MFD_CLOEXEC);
	if (small < 0 || ftruncate(small, 4096) < 0)
		fail(fe, "memfd_create: %s", strerror(errno));
	mem_table(b, 2);
	fds[0] = fe->memfd;
	fds[1] = small;
	vu_fails(fe, VU_SET_MEM_TABLE, b, 8 + 64, fds, 2,
		 "SET_MEM_TABLE with a 4 KiB fd for region 1");
	close(small);
	/* and a good table still works afterwards */
	mem_table(b, 2);
	fds[0] = fds[1] = fe->memfd;
	vu_ok(fe, VU_SET_MEM_TABLE, b, 8 + 64, fds, 2,
	      "SET_MEM_TABLE two regions again");
	proto_get_features_exact(fe, "GET_FEATURES at the end");
}

/* ADD_MEM_REG of both regions and REM_MEM_REG of the second: acked. */
static void
mem_reg_acked(struct fe *fe)
{
	uint8_t b[40];
	memset(b, 0, sizeof b);
	region_bytes(b + 8, 0);
	vu_ok(fe, VU_ADD_MEM_REG, b, 40, &fe->memfd, 1, "ADD_MEM_REG region 0");
	region_bytes(b + 8, 1);
	vu_ok(fe, VU_ADD_MEM_REG, b, 40, &fe->memfd, 1, "ADD_MEM_REG region 1");
	vu_ok(fe, VU_REM_MEM_REG, b, 40, NULL, 0, "REM_MEM_REG region 1");
}

/* ADD_MEM_REG of region 1 without an fd, with two, with a short payload or
 * a 4 KiB fd: refused, each fd closed; then the right one is acked. */
static void
mem_reg_refused(struct fe *fe)
{
	uint8_t b[40];
	int fds[2];
	struct canary k;
	int small;
	memset(b, 0, sizeof b);
	region_bytes(b + 8, 1);
	vu_fails(fe, VU_ADD_MEM_REG, b, 40, NULL, 0,
		 "ADD_MEM_REG without an fd");
	k = canary_new(fe);
	fds[0] = fe->memfd;
	fds[1] = k.w;
	vu_fails(fe, VU_ADD_MEM_REG, b, 40, fds, 2, "ADD_MEM_REG with two fds");
	canary_expect_closed(fe, &k, "ADD_MEM_REG with two fds");
	k = canary_new(fe);
	vu_fails(fe, VU_ADD_MEM_REG, b, 20, &k.w, 1,
		 "ADD_MEM_REG with a 20-byte payload");
	canary_expect_closed(fe, &k, "ADD_MEM_REG with a 20-byte payload");
	small = memfd_create("small", MFD_CLOEXEC);
	if (small < 0 || ftruncate(small, 4096) < 0)
		fail(fe, "memfd_create: %s", strerror(errno));
	vu_fails(fe, VU_ADD_MEM_REG, b, 40, &small, 1,
		 "ADD_MEM_REG with a 4 KiB fd");
	close(small);
	vu_ok(fe, VU_ADD_MEM_REG, b, 40, &fe->memfd, 1,
	      "ADD_MEM_REG region 1 again");
}

/* SET_VRING_NUM: powers of two up to 32768 on queues 0..3, nothing else. */
static void
vring_num_checks(struct fe *fe)
{
	static const uint32_t bad_num[] = { 0, 3, 255, 65536, 0x10000000u,
					    0xffffffffu };
	static const uint32_t good_num[] = { 1, 2, 256, 1024, 32768 };
	size_t i;
	for (i = 0; i < sizeof good_num / sizeof good_num[0]; i++) {
		char what[64];
		snprintf(what, sizeof what, "SET_VRING_NUM {0, %u}",
			 good_num[i]);
		vu_state(fe, true, VU_SET_VRING_NUM, 0, good_num[i], what);
	}
	for (i = 0; i < sizeof bad_num / sizeof bad_num[0]; i++) {
		char what[64];
		snprintf(what, sizeof what, "SET_VRING_NUM {0, %u}",
			 bad_num[i]);
		vu_state(fe, false, VU_SET_VRING_NUM, 0, bad_num[i], what);
	}
	vu_state(fe, true, VU_SET_VRING_NUM, 3, 256, "SET_VRING_NUM {3, 256}");
	vu_state(fe, false, VU_SET_VRING_NUM, 4, 256, "SET_VRING_NUM {4, 256}");
	vu_state(fe, false, VU_SET_VRING_NUM, 0xffffffffu, 256,
		 "SET_VRING_NUM {0xffffffff, 256}");
}

static void
vring_base_checks(struct fe *fe)
{
	vu_state(fe, true, VU_SET_VRING_BASE, 0, 0, "SET_VRING_BASE {0, 0}");
	vu_state(fe, false, VU_SET_VRING_BASE, 4, 0, "SET_VRING_BASE {4, 0}");
}

static void
vring_kick_nofd(struct fe *fe)
{
	vu_u64(fe, false, VU_SET_VRING_KICK, 0 | VU_NOFD, NULL, 0,
	       "SET_VRING_KICK queue 0, bit 8 (no fd)");
}

static void
vring_kick_bad_queue(struct fe *fe)
{
	struct canary k = canary_new(fe);
	vu_u64(fe, false, VU_SET_VRING_KICK, 4, &k.w, 1,
	       "SET_VRING_KICK queue 4 with an fd");
	canary_expect_closed(fe, &k, "SET_VRING_KICK queue 4");
}

/* A kick fd that never runs dry would keep the daemon busy forever. */
static void
vring_kick_endless(struct fe *fe)
{
	int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	if (zero < 0)
		fail(fe, "/dev/zero: %s", strerror(errno));
	vu_u64(fe, false, VU_SET_VRING_KICK, 0, &zero, 1,
	       "SET_VRING_KICK queue 0 with /dev/zero");
	close(zero);
}

static void
vring_call_checks(struct fe *fe)
{
	struct canary k;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		fail(fe, "eventfd: %s", strerror(errno));
	vu_u64(fe, true, VU_SET_VRING_CALL, 0, &efd, 1,
	       "SET_VRING_CALL queue 0");
	k = canary_new(fe);
	vu_u64(fe, false, VU_SET_VRING_CALL, 9, &k.w, 1,
	       "SET_VRING_CALL queue 9 with an fd");
	canary_expect_closed(fe, &k, "SET_VRING_CALL queue 9");
	close(efd);
}

static void
vring_enable_checks(struct fe *fe)
{
	vu_state(fe, true, VU_SET_VRING_ENABLE, 0, 1,
		 "SET_VRING_ENABLE {0, 1}");
	vu_state(fe, true, VU_SET_VRING_ENABLE, 0, 0,
		 "SET_VRING_ENABLE {0, 0}");
	vu_state(fe, false, VU_SET_VRING_ENABLE, 4, 1,
		 "SET_VRING_ENABLE {4, 1}");
}

/* Checks run in order between the negotiation (features set) and a final
 * GET_FEATURES that shows the connection still served: one step per part
 * for a test of one rule, all parts in one step for the fuzz seed. */
static void
parts_checks(struct fe *fe, void (*const *part)(struct fe *), size_t n)
{
	size_t i;
	proto_base(fe);
	vu_u64(fe, true, VU_SET_FEATURES, WANT_FEATURES, NULL, 0,
	       "SET_FEATURES");
	for (i = 0; i < n; i++)
		part[i](fe);
	proto_get_features_exact(fe, "GET_FEATURES at the end");
}

#define PARTS_STEP(name, ...) \
void \
name(struct fe *fe) \
{ \
	static void (*const part[])(struct fe *) = { __VA_ARGS__ }; \
	parts_checks(fe, part, sizeof part / sizeof part[0]); \
}

/* proto-vring: all of them on one connection (fuzz/run.sh records it). */
PARTS_STEP(step_proto_vring, vring_num_checks, vring_base_checks,
	   vring_kick_nofd, vring_kick_bad_queue, vring_kick_endless,
	   vring_call_checks, vring_enable_checks)
PARTS_STEP(step_proto_vring_num, vring_num_checks)
PARTS_STEP(step_proto_vring_base_index, vring_base_checks)
PARTS_STEP(step_proto_vring_kick_nofd, vring_kick_nofd)
PARTS_STEP(step_proto_vring_kick_bad_queue, vring_kick_bad_queue)
PARTS_STEP(step_proto_vring_kick_endless, vring_kick_endless)
PARTS_STEP(step_proto_vring_call, vring_call_checks)
PARTS_STEP(step_proto_vring_enable_index, vring_enable_checks)

/* proto-mem-reg: both on one connection (fuzz/run.sh records it). */
PARTS_STEP(step_proto_mem_reg, mem_reg_acked, mem_reg_refused)
PARTS_STEP(step_proto_mem_reg_acked, mem_reg_acked)
PARTS_STEP(step_proto_mem_reg_refused, mem_reg_refused)

/* Set up the connection like init (all features), without enabling. */
static void
proto_rings(struct fe *fe, bool enable)
{
	memset(&fe->iopt, 0, sizeof fe->iopt);
	fe->iopt.qsize = 256;
	negotiate(fe, true, true);
	set_features(fe);
	set_memory(fe, false);
	rings_setup(fe, enable);
}

static void
get_vring_base_exact(struct fe *fe, uint32_t qi, uint32_t want_last,
                     const char *what)
{
	uint8_t b[8], want[20];
	put32(b, qi);
	put32(b + 4, 0);
	vu_send(fe, VU_GET_VRING_BASE, VU_VERSION, b, 8, NULL, 0);
	want_reply(want, VU_GET_VRING_BASE, 8);
	put32(want + 12, qi);
	put32(want + 16, want_last);
	expect_reply_bytes(fe, want, sizeof want, what);
}

/* After the handshake and one write, GET_VRING_BASE of the control queues
 * and of port0's transmitq answers the next avail index of each. */
static void
vring_base_values(struct fe *fe)
{
	int q1 = VIRTIO_CONSOLE_PORT0_TXQ;
	proto_rings(fe, true);
	handshake(fe, default_rx_bufs(fe));
	tx_submit(fe, (const uint8_t *)"x", 1, 0);
	wait_q_idle(fe, q1, "write");
	/* control transmitq: DEVICE_READY, PORT_READY, PORT_OPEN */
	get_vring_base_exact(fe, VIRTIO_CONSOLE_CTRL_TXQ, 3,
			     "GET_VRING_BASE(3) after the handshake");
	fe->vq[VIRTIO_CONSOLE_CTRL_TXQ].active = false;
	/* control receiveq: PORT_ADD, CONSOLE_PORT, PORT_OPEN were popped */
	get_vring_base_exact(fe, VIRTIO_CONSOLE_CTRL_RXQ, 3,
			     "GET_VRING_BASE(2) after the handshake");
	fe->vq[VIRTIO_CONSOLE_CTRL_RXQ].active = false;
	get_vring_base_exact(fe, (uint32_t)q1, 1,
			     "GET_VRING_BASE(1) after one write");
}

/* Port0's transmitq stopped by GET_VRING_BASE leaves a new buffer unused,
 * and says so when asked again; returns that buffer's avail index. */
static uint16_t
vring_base_stopped(struct fe *fe)
{
	int q1 = VIRTIO_CONSOLE_PORT0_TXQ;
	struct vq *q = &fe->vq[q1];
	uint16_t pending;
	tx_submit(fe, (const uint8_t *)"y", 1, 0);
	vq_publish(fe, q, true);
	pending = (uint16_t)(q->avail_idx - 1);
	q->active = false;	/* stopped: not ours to poll */
	service_window(fe, 300);
	if (gload16(fe, q->used + 2) != q->last_used)
		fail(fe, "the device used a buffer on port0 transmitq after "
		     "GET_VRING_BASE stopped it");
	get_vring_base_exact(fe, (uint32_t)q1, pending,
			     "GET_VRING_BASE(1) while stopped");
	vu_state(fe, false, VU_SET_VRING_BASE, 7, 0, "SET_VRING_BASE {7, 0}");
	return pending;
}

/* Restarted from the base GET_VRING_BASE returned, port0's transmitq uses
 * the buffer left pending while it was stopped. */
static void
vring_base_restart(struct fe *fe, uint16_t pending)
{
	int q1 = VIRTIO_CONSOLE_PORT0_TXQ;
	ring_start(fe, q1, pending);
	ring_enable(fe, q1, 1);
	wait_q_idle(fe, q1, "restarted port0 transmitq");
}

/* proto-vring-base: values, stop and restart (fuzz/run.sh records it); each
 * needs the one before, so the smaller steps stop earlier. */
void
step_proto_vring_base(struct fe *fe)
{
	vring_base_values(fe);
	vring_base_restart(fe, vring_base_stopped(fe));
	proto_get_features_exact(fe, "GET_FEATURES at the end");
}

void
step_proto_vring_base_values(struct fe *fe)
{
	vring_base_values(fe);
	proto_get_features_exact(fe, "GET_FEATURES at the end");
}

void
step_proto_vring_base_stop(struct fe *fe)
{
	vring_base_values(fe);
	vring_base_stopped(fe);
	proto_get_features_exact(fe, "GET_FEATURES at the end");
}

void
step_proto_vring_enable(struct fe *fe)
{
	struct vq *ctx = &fe->vq[VIRTIO_CONSOLE_CTRL_TXQ];
	struct seg sg;
	uint8_t b[8];
	proto_rings(fe, false);
	/* rings are set up but not enabled: DEVICE_READY must wait */
	fe->crx_nbufs = CRX_MAX;
	crx_refill(fe);
	put32(b, VIRTIO_CONSOLE_BAD_ID);
	b[4] = VIRTIO_CONSOLE_DEVICE_READY;
	b[5] = 0;
	b[6] = 1;
	b[7] = 0;
	gw(fe, ctx_gpa(fe, 0), b, 8);
	fe->ctx_busy[0] = true;
	sg = (struct seg){ ctx_gpa(fe, 0), 8, false };
	vq_add(fe, ctx, &sg, 1, false, TK_CTX, 0);
	vq_publish(fe, ctx, true);
	service_window(fe, 300);
	if (!ctx->inflight)
		fail(fe, "control transmitq was used before "
			 "SET_VRING_ENABLE(3, 1)");
	vu_state(fe, false, VU_SET_VRING_ENABLE, 4, 1,
		 "SET_VRING_ENABLE {4, 1}");
	ring_enable(fe, VIRTIO_CONSOLE_CTRL_TXQ, 1);
	wait_q_idle(fe, VIRTIO_CONSOLE_CTRL_TXQ,
		    "DEVICE_READY after enabling the control transmitq");
	service_window(fe, 300);
	if (fe->cq_count)
		fail(fe, "PORT_ADD arrived on the control receiveq before it "
			 "was enabled");
	ring_enable(fe, VIRTIO_CONSOLE_CTRL_RXQ, 1);
	ctrl_expect(fe, 0, VIRTIO_CONSOLE_PORT_ADD, 1);
	ring_enable(fe, VIRTIO_CONSOLE_PORT0_RXQ, 1);
	ring_enable(fe, VIRTIO_CONSOLE_PORT0_TXQ, 1);
	fe->rx0_nbufs = default_rx_bufs(fe);
	rx0_refill(fe);
	ctrl_send(fe, 0, VIRTIO_CONSOLE_PORT_READY, 1);
	ctrl_expect(fe, 0, VIRTIO_CONSOLE_CONSOLE_PORT, 1);
	ctrl_expect(fe, 0, VIRTIO_CONSOLE_PORT_OPEN, 1);
	ctrl_send(fe, 0, VIRTIO_CONSOLE_PORT_OPEN, 1);
	/* disabling a ring stops it too */
	ring_enable(fe, VIRTIO_CONSOLE_PORT0_TXQ, 0);
	tx_submit(fe, (const uint8_t *)"z", 1, 0);
	vq_publish(fe, &fe->vq[1], true);
	fe->vq[1].active = false;
	service_window(fe, 300);
	if (gload16(fe, fe->vq[1].used + 2) != fe->vq[1].last_used)
		fail(fe,
		     "port0 transmitq was used after SET_VRING_ENABLE(1, 0)");
	fe->vq[1].active = true;
	ring_enable(fe, VIRTIO_CONSOLE_PORT0_TXQ, 1);
	wait_q_idle(fe, VIRTIO_CONSOLE_PORT0_TXQ,
		    "port0 transmitq after SET_VRING_ENABLE(1, 1)");
}

void
step_proto_oversize(struct fe *fe)
{
	uint8_t b[12 + 256 + 8], want[VU_HDR_SIZE];
	int r;
	proto_base(fe);
	/* the largest accepted payload: 268 bytes */
	config_req(0, 256, 0, 256, b);
	vu_send(fe, VU_GET_CONFIG, VU_VERSION, b, 268, NULL, 0);
	want_reply(want, VU_GET_CONFIG, 0);
	expect_reply_bytes(fe, want, VU_HDR_SIZE,
			   "GET_CONFIG with a 268-byte payload");
	memset(b, 0, sizeof b);
	vu_send(fe, VU_SET_CONFIG, VU_VERSION | VU_NEED_REPLY, b, 268, NULL, 0);
	(void)reply_u64(fe, VU_SET_CONFIG,
			"SET_CONFIG offset 0 size 0, 268-byte payload");
	proto_get_features_exact(fe, "GET_FEATURES after 268-byte payloads");
	/* 269: the daemon drops the connection */
	memset(b, 0, sizeof b);
	r = vu_send_raw(fe, fe->sock, VU_SET_CONFIG, VU_VERSION, 269, b, 269,
			NULL, 0);
	(void)r;
	expect_eof_on(fe, fe->sock, "SET_CONFIG with a 269-byte payload");
	disconnect(fe);
	connect_probe(fe);
	proto_get_features_exact(
		fe, "GET_FEATURES on a new connection after the drop");
	/* a header claiming 4 GiB */
	r = vu_send_raw(fe, fe->sock, VU_SET_MEM_TABLE, VU_VERSION, 0xffffffffu,
			NULL, 0, NULL, 0);
	(void)r;
	expect_eof_on(fe, fe->sock,
		      "SET_MEM_TABLE claiming 0xffffffff payload bytes");
	disconnect(fe);
	connect_probe(fe);
	proto_base(fe);
	proto_get_features_exact(fe, "GET_FEATURES on a third connection");
}

void
step_proto_truncated(struct fe *fe)
{
	uint8_t b[24] = { 0 };
	int r;
	/* half a header, then close */
	proto_base(fe);
	put32(b, VU_GET_FEATURES);
	put32(b + 4, VU_VERSION);
	r = send(fe->sock, b, 6, MSG_NOSIGNAL);
	(void)r;
	disconnect(fe);
	connect_probe(fe);
	proto_get_features_exact(
		fe, "GET_FEATURES after a connection closed mid-header");
	/* a header announcing 40 bytes, 10 sent, then close */
	proto_base(fe);
	memset(b, 0, sizeof b);
	r = vu_send_raw(fe, fe->sock, VU_SET_MEM_TABLE, VU_VERSION, 40, b, 10,
			&fe->memfd, 1);
	(void)r;
	disconnect(fe);
	connect_probe(fe);
	proto_get_features_exact(
		fe, "GET_FEATURES after a connection closed mid-payload");
	/* and the new connection is fully usable */
	proto_rings(fe, true);
	handshake(fe, default_rx_bufs(fe));
}

void
step_proto_second_frontend(struct fe *fe)
{
	int b;
	int r;
	proto_rings(fe, true);
	b = connect_once(fe);
	if (b < 0) {
		if (errno == ECONNREFUSED || errno == EAGAIN)
			goto first_ok;	/* refused outright: fine too */
		fail(fe, "second connect: %s", strerror(errno));
	}
	r = vu_send_raw(fe, b, VU_GET_FEATURES, VU_VERSION, 0, NULL, 0, NULL,
			0);
	(void)r;
	expect_eof_on(fe, b, "second frontend on the same socket");
	close(b);
first_ok:
	proto_get_features_exact(fe, "GET_FEATURES on the first connection");
	handshake(fe, default_rx_bufs(fe));
	tx_submit(fe, (const uint8_t *)"first still works\n", 18, 0);
	wait_q_idle(fe, VIRTIO_CONSOLE_PORT0_TXQ,
		    "write on the first connection");
}

void
step_proto_stray_fds(struct fe *fe)
{
	struct canary k;
	proto_base(fe);
	k = canary_new(fe);
	vu_send(fe, VU_GET_FEATURES, VU_VERSION, NULL, 0, &k.w, 1);
	expect_reply_u64_exact(fe, VU_GET_FEATURES, WANT_FEATURES,
			       "GET_FEATURES carrying an fd");
	canary_expect_closed(fe, &k, "fd sent with GET_FEATURES");
	k = canary_new(fe);
	vu_send(fe, VU_SET_OWNER, VU_VERSION | VU_NEED_REPLY, NULL, 0, &k.w, 1);
	(void)reply_u64(fe, VU_SET_OWNER, "SET_OWNER carrying an fd");
	canary_expect_closed(fe, &k, "fd sent with SET_OWNER");
	k = canary_new(fe);
	vu_send(fe, 99, VU_VERSION, NULL, 0, &k.w, 1);
	canary_expect_closed(fe, &k, "fd sent with unknown request 99");
	proto_get_features_exact(fe, "GET_FEATURES at the end");
}

/* ctrl-send [--len=N] ID EVENT VALUE: a control message from the guest. */
void
step_ctrl_send(struct fe *fe)
{
	const char *o, *v;
	unsigned long long len = 8, id, ev, val;
	while ((o = opt_next(fe))) {
		if ((v = opt_value(fe, o, "--len")))
			len = parse_ull(fe, v, "--len");
		else
			fail(fe, "ctrl-send: unknown option %s", o);
	}
	id = parse_ull(fe, arg_next(fe, "ctrl-send ID"), "ID");
	ev = parse_ull(fe, arg_next(fe, "ctrl-send EVENT"), "EVENT");
	val = parse_ull(fe, arg_next(fe, "ctrl-send VALUE"), "VALUE");
	if (len < 1 || len > 8)
		fail(fe, "ctrl-send: --len must be 1..8");
	ctrl_send_len(fe, (uint32_t)id, (uint16_t)ev, (uint16_t)val,
		      (uint32_t)len);
}

/* ctrl-give N: post N control receive buffers (at most 16), e.g. only
 * after the device has piled up what it owes a guest that gave none. */
void
step_ctrl_give(struct fe *fe)
{
	unsigned long long n = parse_ull(fe, arg_next(fe, "ctrl-give N"), "N");
	need_rings(fe);
	if (n > CRX_MAX || n > fe->iopt.qsize)
		fail(fe, "ctrl-give: at most %u buffers",
		     CRX_MAX < fe->iopt.qsize ? CRX_MAX : fe->iopt.qsize);
	fe->crx_nbufs = (unsigned)n;
	crx_refill(fe);
}

/* ctrl-expect ID EVENT VALUE [ID EVENT VALUE...]: the next control
 * messages are exactly these, in this order (used len 8); the buffers
 * they came in are posted again. */
void
step_ctrl_expect(struct fe *fe)
{
	unsigned long long id, ev, val;
	double d;
	do {
		id = parse_ull(fe, arg_next(fe, "ctrl-expect ID"), "ID");
		ev = parse_ull(fe, arg_next(fe, "ctrl-expect EVENT"), "EVENT");
		val = parse_ull(fe, arg_next(fe, "ctrl-expect VALUE"), "VALUE");
		ctrl_expect(fe, (uint32_t)id, (uint16_t)ev, (uint16_t)val);
		crx_refill(fe);
	} while (fe->ai < fe->argc && parse_num(fe->argv[fe->ai], &d));
}

/* ctrl-none [SECONDS]: no control message arrives within SECONDS
 * (default 0.5) although buffers are posted: a negative check, so a
 * window rather than a wait for an event. */
void
step_ctrl_none(struct fe *fe)
{
	double s = opt_seconds(fe, 0.5);
	service_window(fe, (int)(s * 1000));
	if (fe->cq_count)
		fail(fe,
		     "ctrl-none: control message id %u event %u (%s) value %u "
		     "len %u",
		     fe->cq[fe->cq_head].id, fe->cq[fe->cq_head].event,
		     evname(fe->cq[fe->cq_head].event),
		     fe->cq[fe->cq_head].value, fe->cq[fe->cq_head].len);
}


/* Every request with a fixed payload, one byte short and empty: refused
 * with a failure ack, and an fd that came along is closed; GET_VRING_BASE,
 * whose reply cannot say no, closes the connection. */
void
step_proto_short(struct fe *fe)
{
	static const struct { uint32_t req, need; bool fd;
	} fixed[] = {
		{ VU_SET_FEATURES, 8, false },
		{ VU_SET_PROTOCOL_FEATURES, 8, false },
		{ VU_SET_VRING_NUM, 8, false },
		{ VU_SET_VRING_BASE, 8, false },
		{ VU_SET_VRING_ENABLE, 8, false },
		{ VU_SET_VRING_ADDR, 40, false },
		{ VU_SET_VRING_KICK, 8, true },
		{ VU_SET_VRING_CALL, 8, true },
		{ VU_SET_VRING_ERR, 8, true },
		{ VU_SET_MEM_TABLE, 40, true },
		{ VU_ADD_MEM_REG, 40, true },
		{ VU_REM_MEM_REG, 40, false },
		{ VU_SET_CONFIG, 12, false },
	};
	uint8_t b[40] = { 0 }, want[VU_HDR_SIZE];
	char what[96];
	size_t i;
	int pass;
	proto_base(fe);
	for (i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
		for (pass = 0; pass < 2; pass++) {
			uint32_t size = pass ? 0 : fixed[i].need - 1;
			struct canary k = canary_new(fe);
			snprintf(what, sizeof what,
				 "request %u with %u payload bytes (needs %u)",
				 fixed[i].req, size, fixed[i].need);
			vu_fails(fe, fixed[i].req, b, size, &k.w,
				 fixed[i].fd ? 1 : 0, what);
			if (fixed[i].fd)
				canary_expect_closed(fe, &k, what);
			else {
				close(k.w);
				close(k.r);
			}
		}
	}
	/* GET_CONFIG has its own reply: a failure is a header-only one */
	vu_send(fe, VU_GET_CONFIG, VU_VERSION | VU_NEED_REPLY, b, 11, NULL, 0);
	want_reply(want, VU_GET_CONFIG, 0);
	expect_reply_bytes(fe, want, VU_HDR_SIZE,
			   "GET_CONFIG with 11 payload bytes");
	vu_send(fe, VU_GET_VRING_BASE, VU_VERSION, b, 7, NULL, 0);
	expect_closed_and_reconnect(fe, "GET_VRING_BASE with 7 payload bytes");
	proto_get_features_exact(fe, "GET_FEATURES at the end");
}

/* Every vring request naming a queue the device does not have (but
 * GET_VRING_BASE: proto-get-vring-base-bad). */
void
step_proto_vring_index(struct fe *fe)
{
	static const uint32_t bad_idx[] = { 4, 255, 256, 65535, 65536,
					    0xffffffffu };
	static const uint32_t by_state[] = { VU_SET_VRING_NUM,
					     VU_SET_VRING_BASE,
					     VU_SET_VRING_ENABLE };
	/* KICK/CALL/ERR: queue in bits 0-7, bit 8 "no fd", the rest 0 */
	static const uint64_t bad_fdarg[] = { 4, 255, 0x10000, 0xffffffffu,
					      1ull << 32, ~0ull };
	static const uint32_t by_fd[] = { VU_SET_VRING_KICK, VU_SET_VRING_CALL,
					  VU_SET_VRING_ERR };
	uint8_t a[40] = { 0 };
	char what[96];
	size_t i, j;
	proto_base(fe);
	vu_u64(fe, true, VU_SET_FEATURES, WANT_FEATURES, NULL, 0,
	       "SET_FEATURES");
	for (i = 0; i < sizeof bad_idx / sizeof bad_idx[0]; i++) {
		for (j = 0; j < sizeof by_state / sizeof by_state[0]; j++) {
			snprintf(what, sizeof what, "request %u on queue %u",
				 by_state[j], bad_idx[i]);
			vu_state(fe, false, by_state[j], bad_idx[i], 1, what);
		}
		put32(a, bad_idx[i]);
		snprintf(what, sizeof what, "SET_VRING_ADDR on queue %u",
			 bad_idx[i]);
		vu_fails(fe, VU_SET_VRING_ADDR, a, sizeof a, NULL, 0, what);
	}
	for (i = 0; i < sizeof bad_fdarg / sizeof bad_fdarg[0]; i++)
		for (j = 0; j < sizeof by_fd / sizeof by_fd[0]; j++) {
			struct canary k = canary_new(fe);
			snprintf(what, sizeof what,
				 "request %u with argument 0x%llx", by_fd[j],
				 (unsigned long long)bad_fdarg[i]);
			vu_u64(fe, false, by_fd[j], bad_fdarg[i], &k.w, 1,
			       what);
			canary_expect_closed(fe, &k, what);
		}
	proto_get_features_exact(fe, "GET_FEATURES at the end");
}

static void
vring_addr(struct fe *fe, int qi, uint64_t desc, uint64_t used, uint64_t avail,
           bool want_ok, const char *what)
{
	uint8_t a[40] = { 0 };
	put32(a, (uint32_t)qi);
	put64(a + 8, desc);
	put64(a + 16, used);
	put64(a + 24, avail);
	if (want_ok)
		vu_ok(fe, VU_SET_VRING_ADDR, a, sizeof a, NULL, 0, what);
	else
		vu_fails(fe, VU_SET_VRING_ADDR, a, sizeof a, NULL, 0, what);
}

/* Ring addresses unaligned or outside memory are refused and leave the
 * running ring as it was. */
void
step_proto_vring_addr(struct fe *fe)
{
	struct vq *q = &fe->vq[VIRTIO_CONSOLE_PORT0_TXQ];
	int qi = VIRTIO_CONSOLE_PORT0_TXQ;
	uint64_t d, u, a;
	proto_rings(fe, true);
	handshake(fe, default_rx_bufs(fe));
	d = gpa2uaddr(q->desc);
	u = gpa2uaddr(q->used);
	a = gpa2uaddr(q->avail);
	vring_addr(fe, qi, d + 8, u, a, false,
		   "SET_VRING_ADDR: desc not 16-aligned");
	vring_addr(fe, qi, d, u + 2, a, false,
		   "SET_VRING_ADDR: used not 4-aligned");
	vring_addr(fe, qi, d, u, a + 1, false,
		   "SET_VRING_ADDR: avail not 2-aligned");
	vring_addr(fe, qi, 0x30000000000ull, u, a, false,
		   "SET_VRING_ADDR: desc outside memory");
	vring_addr(fe, qi, d, UADDR0 + REGION_SIZE - 8, a, false,
		   "SET_VRING_ADDR: used ring running past its region");
	vring_addr(fe, qi, d, u, 0xfffffffffffffff0ull, false,
		   "SET_VRING_ADDR: avail wraps");
	/* the ring still runs where it was */
	tx_submit(fe, (const uint8_t *)"x", 1, 0);
	wait_q_idle(fe, qi, "write after refused SET_VRING_ADDRs");
}

/* Memory tables with bad regions are refused and the old memory stays. */
void
step_proto_mem_bounds(struct fe *fe)
{
	static const struct {
		uint64_t gpa, size, uaddr, off;
		const char *what;
	} bad[] = {
		{ 0x40000000, 0, UADDR0, 0, "a zero-size region" },
		{ 0xfffffffffffff000ull, 0x2000, UADDR0, 0,
		  "gpa + size wraps" },
		{ 0x40000000, 0x1000, 0xfffffffffffff000ull, 0,
		  "uaddr + size wraps" },
		{ 0x40000000, 0x1000, UADDR0, 0xfffffffffffff800ull,
		  "mmap_offset + size wraps" },
		{ 0x40000000, REGION_SIZE, UADDR0, MEM_SIZE,
		  "past the end of its fd" },
		{ GPA_BASE + 0x1000, 0x1000, UADDR0, 0,
		  "overlapping region 0" },
		{ BOUNDARY - 0x800, 0x1000, UADDR0, 0,
		  "overlapping regions 0 and 1" },
	};
	uint8_t b[8 + 32 * 2];
	int fds[2] = { fe->memfd, fe->memfd };
	char what[96];
	size_t i;
	unsigned slot;
	proto_rings(fe, true);
	handshake(fe, default_rx_bufs(fe));
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		/* SET_MEM_TABLE: region 0 as it is, then the bad one */
		memset(b, 0, sizeof b);
		put32(b, 2);
		region_bytes(b + 8, 0);
		put64(b + 40, bad[i].gpa);
		put64(b + 48, bad[i].size);
		put64(b + 56, bad[i].uaddr);
		put64(b + 64, bad[i].off);
		snprintf(what, sizeof what, "SET_MEM_TABLE with %s",
			 bad[i].what);
		vu_fails(fe, VU_SET_MEM_TABLE, b, sizeof b, fds, 2, what);
		/* ADD_MEM_REG of the bad one next to the memory in use */
		snprintf(what, sizeof what, "ADD_MEM_REG of %s", bad[i].what);
		vu_fails(fe, VU_ADD_MEM_REG, b + 32, 40, fds, 1, what);
	}
	/* ADD_MEM_REG past the 32 slots: 30 more fit beside the two */
	for (slot = 2; slot <= 32; slot++) {
		memset(b, 0, 40);
		put64(b + 8, 0x40000000ull + slot * 0x10000ull);
		put64(b + 16, 0x1000);
		put64(b + 24, 0x30000000000ull + slot * 0x10000ull);
		snprintf(what, sizeof what, "ADD_MEM_REG into slot %u", slot);
		if (slot < 32)
			vu_ok(fe, VU_ADD_MEM_REG, b, 40, fds, 1, what);
		else
			vu_fails(fe, VU_ADD_MEM_REG, b, 40, fds, 1,
				 "ADD_MEM_REG of a 33rd region");
	}
	/* the device still runs on the memory it had */
	tx_submit(fe, (const uint8_t *)"x", 1, 0);
	wait_q_idle(fe, VIRTIO_CONSOLE_PORT0_TXQ,
		    "write after refused memory changes");
	step_check_memory(fe);
}

/* Rings set up and kicked before any memory table: nothing happens (and
 * nothing breaks) until the memory comes; then the console works. */
void
step_proto_kick_first(struct fe *fe)
{
	int q;
	memset(&fe->iopt, 0, sizeof fe->iopt);
	fe->iopt.qsize = 256;
	negotiate(fe, true, true);
	set_features(fe);
	rings_setup(fe, true);
	for (q = 0; q < NQ; q++)
		kick(fe, &fe->vq[q]);
	service_window(fe, 200);
	set_memory(fe, false);
	handshake(fe, default_rx_bufs(fe));
}

/* ---- issue 12: reconnects, mandatory replies, exact payload sizes ------ */

/* The daemon answers a GET_QUEUE_NUM next: proof that nothing else (a
 * second ack) was queued before it. */
static void
expect_in_step(struct fe *fe, const char *what)
{
	char w[160];
	snprintf(w, sizeof w,
		 "GET_QUEUE_NUM after %s (a stray reply before it?)", what);
	vu_send(fe, VU_GET_QUEUE_NUM, VU_VERSION, NULL, 0, NULL, 0);
	expect_reply_u64_exact(fe, VU_GET_QUEUE_NUM, WANT_QUEUE_NUM, w);
}

/* The daemon closes the connection (no reply first); then a fresh one. */
static void
expect_closed_and_reconnect(struct fe *fe, const char *what)
{
	expect_eof_on(fe, fe->sock, what);
	disconnect(fe);
	connect_probe(fe);
	proto_base(fe);
}

/*
 * proto-reconnect-at-once: 100 times, the frontend goes away and a new one
 * connects at once, with no retry and no delay: idle, after half a header,
 * after a header and half its payload (with an fd), after whole messages
 * (one whose reply is never read).  Each new connection must be served:
 * its GET_FEATURES answered, never closed as "a second frontend".
 */
void
step_proto_reconnect_at_once(struct fe *fe)
{
	uint8_t b[40] = { 0 };
	char what[96];
	int i, r;
	for (i = 0; i < 100; i++) {
		switch (i % 4) {
		case 1:		/* half a header */
			put32(b, VU_GET_FEATURES);
			put32(b + 4, VU_VERSION);
			r = send(fe->sock, b, 6, MSG_NOSIGNAL);
			break;
		case 2:		/* a header announcing 40 bytes, 10 of them */
			r = vu_send_raw(fe, fe->sock, VU_SET_MEM_TABLE,
					VU_VERSION, 40, b, 10, &fe->memfd, 1);
			break;
		case 3: /* whole messages, the last one's reply unread */
			r = vu_send_raw(fe, fe->sock, VU_SET_OWNER, VU_VERSION,
					0, NULL, 0, NULL, 0);
			r = vu_send_raw(fe, fe->sock, VU_GET_FEATURES,
					VU_VERSION, 0, NULL, 0, NULL, 0);
			break;
		default:	/* nothing */
			r = 0;
			break;
		}
		(void)r;
		disconnect(fe);
		fe->sock = connect_once(fe);
		if (fe->sock < 0)
			fail(fe, "cycle %d: connect: %s", i, strerror(errno));
		snprintf(what, sizeof what,
			 "cycle %d (after way %d of leaving): GET_FEATURES on "
			 "the new connection",
			 i, i % 4);
		vu_send(fe, VU_GET_FEATURES, VU_VERSION, NULL, 0, NULL, 0);
		expect_reply_u64_exact(fe, VU_GET_FEATURES, WANT_FEATURES,
				       what);
	}
}

/* proto-second-live-mid-message: a frontend that is alive, half a message
 * queued, still holds the socket: a second one is closed, then the first
 * completes its message and gets the reply. */
void
step_proto_second_live_mid_message(struct fe *fe)
{
	uint8_t h[VU_HDR_SIZE];
	int b, r;
	proto_base(fe);
	put32(h, VU_GET_FEATURES);
	put32(h + 4, VU_VERSION);
	put32(h + 8, 0);
	if (send(fe->sock, h, 6, MSG_NOSIGNAL) != 6)
		fail(fe, "sending half a header: %s", strerror(errno));
	b = connect_once(fe);
	if (b < 0)
		fail(fe, "second connect: %s", strerror(errno));
	r = vu_send_raw(fe, b, VU_GET_FEATURES, VU_VERSION, 0, NULL, 0, NULL,
			0);
	(void)r;
	expect_eof_on(fe, b,
		      "a second frontend while the first is mid-message");
	close(b);
	if (send(fe->sock, h + 6, VU_HDR_SIZE - 6, MSG_NOSIGNAL) !=
	    VU_HDR_SIZE - 6)
		fail(fe, "sending the rest of the header: %s", strerror(errno));
	expect_reply_u64_exact(
		fe, VU_GET_FEATURES, WANT_FEATURES,
		"GET_FEATURES completed after the second frontend was refused");
}

/* proto-get-vring-base-bad: GET_VRING_BASE for a queue the device lacks
 * cannot be answered (any reply would be a ring state): the connection is
 * closed, with or without need_reply. */
void
step_proto_get_vring_base_bad(struct fe *fe)
{
	uint8_t b[8];
	proto_base(fe);
	put32(b, 4);
	put32(b + 4, 0);
	vu_send(fe, VU_GET_VRING_BASE, VU_VERSION, b, 8, NULL, 0);
	expect_closed_and_reconnect(
		fe, "GET_VRING_BASE for queue 4 (the device has 4)");
	put32(b, 0xffffffffu);
	vu_send(fe, VU_GET_VRING_BASE, VU_VERSION | VU_NEED_REPLY, b, 8, NULL,
		0);
	expect_closed_and_reconnect(
		fe, "GET_VRING_BASE for queue 0xffffffff with need_reply");
	get_vring_base_exact(fe, 0, 0,
			     "GET_VRING_BASE(0) on a fresh connection");
}

/* proto-unsupported-reply: requests the daemon does not support whose
 * frontend always waits for a reply of their own: the connection is
 * closed, never left waiting. */
void
step_proto_unsupported_reply(struct fe *fe)
{
	static const struct {
		uint32_t req, size, flags;
		const char *name;
	} reqs[] = {
		{ 22, 24, 0, "IOTLB_MSG" },
		{ 26, 8, 0, "CREATE_CRYPTO_SESSION" },
		{ 28, 0, 0, "POSTCOPY_ADVISE" },
		{ 30, 0, 0, "POSTCOPY_END" },
		{ 31, 24, 0, "GET_INFLIGHT_FD" },
		{ 40, 0, 0, "GET_STATUS" },
		{ 40, 0, VU_NEED_REPLY, "GET_STATUS with need_reply" },
		{ 41, 16, 0, "GET_SHARED_OBJECT" },
		{ 42, 8, 0, "SET_DEVICE_STATE_FD" },
		{ 43, 0, 0, "CHECK_DEVICE_STATE" },
	};
	uint8_t b[24] = { 0 };
	size_t i;
	proto_base(fe);
	for (i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
		vu_send(fe, reqs[i].req, VU_VERSION | reqs[i].flags, b,
			reqs[i].size, NULL, 0);
		expect_closed_and_reconnect(fe, reqs[i].name);
	}
	proto_get_features_exact(fe, "GET_FEATURES at the end");
}

/* proto-need-reply-all: need_reply on every request the daemon handles
 * gets exactly one reply: an ack of 0 (or, for a GET, its own reply), and
 * on a refused or unsupported request without a reply of its own exactly
 * one failure ack. */
void
step_proto_need_reply_all(struct fe *fe)
{
	static const uint32_t unsupported[] = { VU_SET_LOG_BASE, VU_SET_LOG_FD,
						19, 20, 23, 27, 29, 32, 33, 35,
						39, 99 };
	uint8_t b[8 + 64], cfg[12 + 12], want[VU_HDR_SIZE + 12 + 12];
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int pf[2], fds[2];
	size_t i;
	char what[64];
	if (efd < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pf) < 0)
		fail(fe, "eventfd/socketpair: %s", strerror(errno));
	proto_base(fe);	/* SET_PROTOCOL_FEATURES and SET_OWNER acked there */
	expect_in_step(fe, "SET_PROTOCOL_FEATURES and SET_OWNER");
	vu_send(fe, VU_GET_FEATURES, VU_VERSION | VU_NEED_REPLY, NULL, 0, NULL,
		0);
	expect_reply_u64_exact(fe, VU_GET_FEATURES, WANT_FEATURES,
			       "GET_FEATURES with need_reply");
	expect_in_step(fe, "GET_FEATURES with need_reply");
	vu_send(fe, VU_GET_PROTOCOL_FEATURES, VU_VERSION | VU_NEED_REPLY, NULL,
		0, NULL, 0);
	expect_reply_u64_exact(fe, VU_GET_PROTOCOL_FEATURES, WANT_PFEATURES,
			       "GET_PROTOCOL_FEATURES with need_reply");
	expect_in_step(fe, "GET_PROTOCOL_FEATURES with need_reply");
	vu_send(fe, VU_GET_MAX_MEM_SLOTS, VU_VERSION | VU_NEED_REPLY, NULL, 0,
		NULL, 0);
	expect_reply_u64_exact(fe, VU_GET_MAX_MEM_SLOTS, WANT_MEM_SLOTS,
			       "GET_MAX_MEM_SLOTS with need_reply");
	expect_in_step(fe, "GET_MAX_MEM_SLOTS with need_reply");
	config_req(0, 12, 0, 12, cfg);
	vu_send(fe, VU_GET_CONFIG, VU_VERSION | VU_NEED_REPLY, cfg, 24, NULL,
		0);
	expect_reply_bytes(fe, want, want_config_reply(want, 0, 12),
			   "GET_CONFIG with need_reply");
	expect_in_step(fe, "GET_CONFIG with need_reply");
	vu_u64(fe, true, VU_SET_FEATURES, WANT_FEATURES, NULL, 0,
	       "SET_FEATURES");
	expect_in_step(fe, "SET_FEATURES");
	mem_table(b, 2);
	fds[0] = fds[1] = fe->memfd;
	vu_ok(fe, VU_SET_MEM_TABLE, b, 8 + 64, fds, 2, "SET_MEM_TABLE");
	expect_in_step(fe, "SET_MEM_TABLE");
	memset(b, 0, 40);
	region_bytes(b + 8, 1);
	vu_ok(fe, VU_REM_MEM_REG, b, 40, NULL, 0, "REM_MEM_REG");
	expect_in_step(fe, "REM_MEM_REG");
	vu_ok(fe, VU_ADD_MEM_REG, b, 40, &fe->memfd, 1, "ADD_MEM_REG");
	expect_in_step(fe, "ADD_MEM_REG");
	vu_state(fe, true, VU_SET_VRING_NUM, 0, 256, "SET_VRING_NUM");
	expect_in_step(fe, "SET_VRING_NUM");
	vu_state(fe, true, VU_SET_VRING_BASE, 0, 0, "SET_VRING_BASE");
	expect_in_step(fe, "SET_VRING_BASE");
	{
		uint8_t a[40] = { 0 };
		put64(a + 8, UADDR0);
		put64(a + 16, UADDR0 + 0x2000);
		put64(a + 24, UADDR0 + 0x1000);
		vu_ok(fe, VU_SET_VRING_ADDR, a, 40, NULL, 0, "SET_VRING_ADDR");
		expect_in_step(fe, "SET_VRING_ADDR");
	}
	vu_u64(fe, true, VU_SET_VRING_CALL, 0, &efd, 1, "SET_VRING_CALL");
	expect_in_step(fe, "SET_VRING_CALL");
	vu_u64(fe, true, VU_SET_VRING_ERR, 0, &efd, 1, "SET_VRING_ERR");
	expect_in_step(fe, "SET_VRING_ERR");
	vu_u64(fe, true, VU_SET_VRING_KICK, 0, &efd, 1, "SET_VRING_KICK");
	expect_in_step(fe, "SET_VRING_KICK");
	vu_state(fe, true, VU_SET_VRING_ENABLE, 0, 1, "SET_VRING_ENABLE");
	expect_in_step(fe, "SET_VRING_ENABLE");
	vu_send(fe, VU_GET_VRING_BASE, VU_VERSION | VU_NEED_REPLY,
		(uint32_t[]){ 0, 0 }, 8, NULL, 0);
	want_reply(want, VU_GET_VRING_BASE, 8);
	put32(want + 12, 0);
	put32(want + 16, 0);
	expect_reply_bytes(fe, want, VU_HDR_SIZE + 8,
			   "GET_VRING_BASE with need_reply");
	expect_in_step(fe, "GET_VRING_BASE with need_reply");
	vu_ok(fe, VU_SET_BACKEND_REQ_FD, NULL, 0, &pf[0], 1,
	      "SET_BACKEND_REQ_FD");
	expect_in_step(fe, "SET_BACKEND_REQ_FD");
	config_req(8, 4, 0, 4, cfg);
	cfg[12] = '.';
	vu_ok(fe, VU_SET_CONFIG, cfg, 16, NULL, 0, "SET_CONFIG (emerg_wr)");
	expect_in_step(fe, "SET_CONFIG");
	vu_ok(fe, VU_RESET_DEVICE, NULL, 0, NULL, 0, "RESET_DEVICE");
	expect_in_step(fe, "RESET_DEVICE");
	vu_ok(fe, VU_RESET_OWNER, NULL, 0, NULL, 0, "RESET_OWNER");
	expect_in_step(fe, "RESET_OWNER");
	/* refused: exactly one failure ack */
	vu_state(fe, false, VU_SET_VRING_NUM, 0, 3, "SET_VRING_NUM {0, 3}");
	expect_in_step(fe, "a refused SET_VRING_NUM");
	for (i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
		snprintf(what, sizeof what, "unsupported request %u",
			 unsupported[i]);
		vu_fails(fe, unsupported[i], b, 8, NULL, 0, what);
		expect_in_step(fe, what);
	}
	close(efd);
	close(pf[0]);
	close(pf[1]);
}

/* proto-long: every fixed-size request with one byte too many is refused:
 * a failure ack (its fd closed), or, for a request with a reply of its own,
 * the connection closed (GET_CONFIG: the header-only failure reply); the
 * variable ones past their maximum or not matching their own sizes too. */
void
step_proto_long(struct fe *fe)
{
	/* valid contents, so that only the size is wrong */
	static const struct { uint32_t req, size; bool fd; } acked[] = {
		{ VU_SET_OWNER, 0, false },     { VU_RESET_OWNER, 0, false },
		{ VU_RESET_DEVICE, 0, false },
		{ VU_SET_BACKEND_REQ_FD, 0, true },
		{ VU_SET_FEATURES, 8, false },
		{ VU_SET_PROTOCOL_FEATURES, 8, false },
		{ VU_SET_VRING_NUM, 8, false }, { VU_SET_VRING_BASE, 8, false },
		{ VU_SET_VRING_ENABLE, 8, false },
		{ VU_SET_VRING_ADDR, 40, false },
		{ VU_SET_VRING_KICK, 8, true }, { VU_SET_VRING_CALL, 8, true },
		{ VU_SET_VRING_ERR, 8, true },  { VU_REM_MEM_REG, 40, false },
	};
	static const struct { uint32_t req, size; } replied[] = {
		{ VU_GET_FEATURES, 0 }, { VU_GET_PROTOCOL_FEATURES, 0 },
		{ VU_GET_QUEUE_NUM, 0 }, { VU_GET_MAX_MEM_SLOTS, 0 },
		{ VU_GET_VRING_BASE, 8 },
	};
	uint8_t b[MAX_PAYLOAD] = { 0 }, want[VU_HDR_SIZE];
	char what[96];
	size_t i;
	proto_base(fe);
	vu_u64(fe, true, VU_SET_FEATURES, WANT_FEATURES, NULL, 0,
	       "SET_FEATURES");
	for (i = 0; i < sizeof acked / sizeof acked[0]; i++) {
		struct canary k = canary_new(fe);
		memset(b, 0, sizeof b);
		switch (acked[i].req) {
		case VU_SET_FEATURES: put64(b, WANT_FEATURES); break;
		case VU_SET_PROTOCOL_FEATURES: put64(b, WANT_PFEATURES); break;
		case VU_SET_VRING_NUM: put32(b + 4, 256); break;
		case VU_SET_VRING_ENABLE: put32(b + 4, 1); break;
		case VU_REM_MEM_REG: region_bytes(b + 8, 1); break;
		}
		snprintf(what, sizeof what,
			 "%s with %u payload bytes (needs %u)",
			 reqname(acked[i].req), acked[i].size + 1,
			 acked[i].size);
		vu_fails(fe, acked[i].req, b, acked[i].size + 1, &k.w,
			 acked[i].fd ? 1 : 0, what);
		if (acked[i].fd) {
			canary_expect_closed(fe, &k, what);
		} else {
			close(k.w);
			close(k.r);
		}
	}
	memset(b, 0, sizeof b);
	region_bytes(b + 8, 1);
	vu_fails(fe, VU_ADD_MEM_REG, b, 41, &fe->memfd, 1,
		 "ADD_MEM_REG with 41 payload bytes");
	mem_table(b, 1);
	vu_fails(fe, VU_SET_MEM_TABLE, b, 8 + 32 * 8 + 1, &fe->memfd, 1,
		 "SET_MEM_TABLE with 265 payload bytes (8 regions at most: "
		 "264)");
	config_req(8, 4, 0, 5, b);
	vu_fails(fe, VU_SET_CONFIG, b, 12 + 4 + 1, NULL, 0,
		 "SET_CONFIG of 4 bytes with 5 after the header");
	config_req(0, 12, 0, 13, b);
	vu_send(fe, VU_GET_CONFIG, VU_VERSION, b, 12 + 12 + 1, NULL, 0);
	want_reply(want, VU_GET_CONFIG, 0);
	expect_reply_bytes(fe, want, VU_HDR_SIZE,
			   "GET_CONFIG of 12 bytes with 13 after the header");
	expect_in_step(fe, "the refusals");
	for (i = 0; i < sizeof replied / sizeof replied[0]; i++) {
		memset(b, 0, sizeof b);
		snprintf(what, sizeof what,
			 "%s with %u payload bytes (needs %u)",
			 reqname(replied[i].req), replied[i].size + 1,
			 replied[i].size);
		vu_send(fe, replied[i].req, VU_VERSION, b, replied[i].size + 1,
			NULL, 0);
		expect_closed_and_reconnect(fe, what);
	}
	proto_get_features_exact(fe, "GET_FEATURES at the end");
}

/* expect-resize COLS ROWS: the next control message is RESIZE for port 0,
 * its payload in the spec's order (le16 cols, le16 rows). */
void
expect_resize(struct fe *fe, unsigned long long cols, unsigned long long rows)
{
	struct cmsg m = ctrl_next(fe, "RESIZE");
	unsigned gc, gr;
	if (m.id != 0 || m.event != VIRTIO_CONSOLE_RESIZE || m.len != 12)
		fail(fe,
		     "control message id %u event %u (%s) used len %u, want "
		     "RESIZE(0) with used len 12",
		     m.id, m.event, evname(m.event), m.len);
	gc = (unsigned)(m.payload[0] | m.payload[1] << 8);
	gr = (unsigned)(m.payload[2] | m.payload[3] << 8);
	if (gc != cols || gr != rows)
		fail(fe,
		     "RESIZE says cols %u rows %u, want cols %llu rows %llu",
		     gc, gr, cols, rows);
}

void
step_expect_resize(struct fe *fe)
{
	unsigned long long cols = parse_ull(fe, arg_next(fe, "COLS"), "cols");
	expect_resize(fe, cols, parse_ull(fe, arg_next(fe, "ROWS"), "rows"));
}

/* emerg-write [--whole] CHAR: write emerg_wr, as a driver with
 * F_EMERG_WRITE does: the 4 bytes at offset 8, or (--whole, as QEMU
 * forwards a guest's write) the whole 12-byte config at offset 0. */
void
step_emerg_write(struct fe *fe)
{
	const char *o;
	bool whole = false;
	uint8_t b[12 + 12];
	size_t len;
	uint8_t *ch;
	while ((o = opt_next(fe))) {
		if (!strcmp(o, "--whole"))
			whole = true;
		else
			fail(fe, "emerg-write: unknown option %s", o);
	}
	ch = unescape(fe, arg_next(fe, "CHAR"), &len);
	if (len != 1)
		fail(fe, "emerg-write: CHAR must be one byte");
	if (whole) {
		config_req(0, 12, 0, 12, b);
		b[12 + 4] = 1; /* max_nr_ports as read: read-only anyway */
		b[12 + 8] = ch[0];
		vu_ok(fe, VU_SET_CONFIG, b, 24, NULL, 0,
		      "SET_CONFIG (whole, emerg_wr)");
	} else {
		config_req(8, 4, 0, 4, b);
		b[12] = ch[0];
		vu_ok(fe, VU_SET_CONFIG, b, 16, NULL, 0,
		      "SET_CONFIG (emerg_wr)");
	}
}

/* expect-config-size COLS ROWS: GET_CONFIG shows this size. */
void
step_expect_config_size(struct fe *fe)
{
	unsigned long long cols = parse_ull(fe, arg_next(fe, "COLS"), "cols");
	unsigned long long rows = parse_ull(fe, arg_next(fe, "ROWS"), "rows");
	uint8_t b[12 + 12], want[VU_HDR_SIZE + 12 + 12];
	size_t n;
	config_req(0, 12, 0, 12, b);
	vu_send(fe, VU_GET_CONFIG, VU_VERSION, b, 24, NULL, 0);
	n = want_config_reply(want, 0, 12);
	want[24] = (uint8_t)cols;
	want[25] = (uint8_t)(cols >> 8);
	want[26] = (uint8_t)rows;
	want[27] = (uint8_t)(rows >> 8);
	expect_reply_bytes(fe, want, n, "GET_CONFIG with the console's size");
}

static bool
cond_config_change(struct fe *fe, void *arg)
{
	(void)arg;
	return fe->config_changes > 0;
}

/* expect-config-change [SECONDS]: CONFIG_CHANGE_MSG on the backend channel. */
void
step_expect_config_change(struct fe *fe)
{
	double secs = opt_seconds(fe, fe->timeout_s);
	if (!service(fe, deadline_in(secs), cond_config_change, NULL, false))
		fail(fe, "no CONFIG_CHANGE_MSG within %g s", secs);
	fe->config_changes--;
}

/* clear-nonblock: a hostile frontend clears O_NONBLOCK on the kick fds
 * and call pipes it shares with the daemon (an fd sent is one file
 * description on both sides): the daemon must still never block. */
void
step_clear_nonblock(struct fe *fe)
{
	int q, fds[2], i, fl;
	need_rings(fe);
	for (q = 0; q < NQ; q++) {
		/* an eventfd call fd is also the one we read: keep ours
		 * non-blocking there, and clear only a call pipe's write end */
		fds[0] = fe->vq[q].kick_r;
		fds[1] = fe->vq[q].call_w;
		for (i = 0; i < (fe->vq[q].call_w != fe->vq[q].call_r ? 2 : 1);
		     i++) {
			fl = fcntl(fds[i], F_GETFL);
			if (fl < 0 ||
			    fcntl(fds[i], F_SETFL, fl & ~O_NONBLOCK) < 0)
				fail(fe, "fcntl: %s", strerror(errno));
		}
	}
}
