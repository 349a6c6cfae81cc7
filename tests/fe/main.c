/*
 * tests/fe/main.c - the step table and main()
 * (contract: frontend.h).
 */
#include "frontend.h"

static const char usage_text[] =
	"usage: frontend [--timeout=S] [-v] SOCK STEP [STEP...]\n"
	"       frontend --pattern N\n"
	"Plays QEMU + a Linux virtio console driver against a vhost-user\n"
	"console.  Steps (options after the step name; TEXT escapes:\n"
	"\\n \\r \\t \\\\ \\0 \\xHH):\n"
	"  init [--no-event-idx] [--no-indirect] [--queue-size=N] [--pipes]\n"
	"       [--no-protocol-features] [--no-reply-ack] [--add-mem-reg]\n"
	"       [--tx-cross] [--base=B] [--ports=N]\n"
	"                        QEMU start sequence, 4 rings\n"
	"  handshake [--rx-bufs=N]\n"
	"                        MULTIPORT handshake for port 0\n"
	"  write TEXT | write-chain TEXT | write-indirect TEXT\n"
	"  write-bytes N [--inflight=K] [--repeat]\n"
	"                        N pattern bytes guest -> host\n"
	"  expect TEXT [SECONDS] host -> guest text\n"
	"  expect-all N T1..TN [SECONDS]\n"
	"                        N texts in any order\n"
	"  expect-bytes N [SECONDS]\n"
	"                        N pattern bytes host -> guest\n"
	"  read-bytes N [--check] [SECONDS]\n"
	"                        N bytes host -> guest, counted and\n"
	"                        timed (benchmarks)\n"
	"  echo-loop N [SECONDS] write back every byte received\n"
	"  check-memory          no write outside writable buffers\n"
	"  reset                 guest reset + handshake again\n"
	"  reset-device          RESET_DEVICE + rings again\n"
	"  close | reconnect | expect-eof [SECONDS] | hold FILE [SECONDS]\n"
	"  corrupt-head|corrupt-next|desc-loop|desc-oob|desc-oob-edge|\n"
	"  desc-wrap|avail-jump|indirect-bad-len|indirect-nested|\n"
	"  indirect-huge|desc-empty [Q]\n"
	"                        hostile rings\n"
	"  proto-features proto-protocol-features proto-misc\n"
	"  proto-config proto-config-read proto-config-invalid\n"
	"  proto-unknown proto-mem-table proto-mem-reg proto-mem-reg-acked\n"
	"  proto-mem-reg-refused proto-vring proto-vring-num\n"
	"  proto-vring-base-index proto-vring-kick-nofd\n"
	"  proto-vring-kick-bad-queue proto-vring-kick-endless\n"
	"  proto-vring-call proto-vring-enable-index proto-vring-base\n"
	"  proto-vring-base-values proto-vring-base-stop\n"
	"  proto-vring-enable proto-oversize proto-truncated\n"
	"  proto-second-frontend proto-stray-fds proto-reconnect-at-once\n"
	"  proto-second-live-mid-message proto-get-vring-base-bad\n"
	"  proto-unsupported-reply proto-need-reply-all proto-long\n"
	"                        exact-reply protocol checks\n"
	"  ctrl-send ID EV VAL | ctrl-give N | ctrl-expect ID EV VAL |\n"
	"  ctrl-none [S]         control messages one by one\n"
	"Exit 0 when all steps pass; else one diagnostic line and exit 1.\n";

/* ---------------------------------------------------------------------- */
/* main                                                                    */

struct step { const char *name; void (*fn)(struct fe *); };

static const struct step steps[] = {
	{ "init", step_init },
	{ "handshake", step_handshake },
	{ "write", step_write },
	{ "write-chain", step_write_chain },
	{ "write-indirect", step_write_indirect },
	{ "write-bytes", step_write_bytes },
	{ "expect-resize", step_expect_resize },
	{ "emerg-write", step_emerg_write },
	{ "expect-config-size", step_expect_config_size },
	{ "expect-config-change", step_expect_config_change },
	{ "write-burst", step_write_burst },
	{ "clear-nonblock", step_clear_nonblock },
	{ "expect", step_expect },
	{ "expect-all", step_expect_all },
	{ "expect-bytes", step_expect_bytes },
	{ "read-bytes", step_read_bytes },
	{ "echo-loop", step_echo_loop },
	{ "check-memory", step_check_memory },
	{ "reset", step_reset },
	{ "reset-device", step_reset_device },
	{ "close", step_close },
	{ "reconnect", step_reconnect },
	{ "expect-eof", step_expect_eof },
	{ "hold", step_hold },
	{ "corrupt-head", step_corrupt_head },
	{ "corrupt-next", step_corrupt_next },
	{ "desc-loop", step_desc_loop },
	{ "desc-oob", step_desc_oob },
	{ "desc-oob-edge", step_desc_oob_edge },
	{ "desc-wrap", step_desc_wrap },
	{ "avail-jump", step_avail_jump },
	{ "indirect-bad-len", step_indirect_bad_len },
	{ "indirect-nested", step_indirect_nested },
	{ "indirect-huge", step_indirect_huge },
	{ "desc-empty", step_desc_empty },
	{ "desc-wrong-dir", step_desc_wrong_dir },
	{ "indirect-next", step_indirect_next },
	{ "ctrl-send", step_ctrl_send },
	{ "ctrl-give", step_ctrl_give },
	{ "ctrl-expect", step_ctrl_expect },
	{ "ctrl-none", step_ctrl_none },
	{ "proto-short", step_proto_short },
	{ "proto-vring-index", step_proto_vring_index },
	{ "proto-vring-addr", step_proto_vring_addr },
	{ "proto-mem-bounds", step_proto_mem_bounds },
	{ "proto-kick-first", step_proto_kick_first },
	{ "proto-features", step_proto_features },
	{ "proto-protocol-features", step_proto_protocol_features },
	{ "proto-misc", step_proto_misc },
	{ "proto-config", step_proto_config },
	{ "proto-config-read", step_proto_config_read },
	{ "proto-config-invalid", step_proto_config_invalid },
	{ "proto-unknown", step_proto_unknown },
	{ "proto-mem-table", step_proto_mem_table },
	{ "proto-mem-reg", step_proto_mem_reg },
	{ "proto-mem-reg-acked", step_proto_mem_reg_acked },
	{ "proto-mem-reg-refused", step_proto_mem_reg_refused },
	{ "proto-vring", step_proto_vring },
	{ "proto-vring-num", step_proto_vring_num },
	{ "proto-vring-base-index", step_proto_vring_base_index },
	{ "proto-vring-kick-nofd", step_proto_vring_kick_nofd },
	{ "proto-vring-kick-bad-queue", step_proto_vring_kick_bad_queue },
	{ "proto-vring-kick-endless", step_proto_vring_kick_endless },
	{ "proto-vring-call", step_proto_vring_call },
	{ "proto-vring-enable-index", step_proto_vring_enable_index },
	{ "proto-vring-base", step_proto_vring_base },
	{ "proto-vring-base-values", step_proto_vring_base_values },
	{ "proto-vring-base-stop", step_proto_vring_base_stop },
	{ "proto-vring-enable", step_proto_vring_enable },
	{ "proto-oversize", step_proto_oversize },
	{ "proto-truncated", step_proto_truncated },
	{ "proto-second-frontend", step_proto_second_frontend },
	{ "proto-stray-fds", step_proto_stray_fds },
	{ "proto-reconnect-at-once", step_proto_reconnect_at_once },
	{ "proto-second-live-mid-message", step_proto_second_live_mid_message },
	{ "proto-get-vring-base-bad", step_proto_get_vring_base_bad },
	{ "proto-unsupported-reply", step_proto_unsupported_reply },
	{ "proto-need-reply-all", step_proto_need_reply_all },
	{ "proto-long", step_proto_long },
};

int
main(int argc, char **argv)
{
	struct fe state = {
		.cur_step = "connect",
		.timeout_s = 10,
		.memfd = -1,
		.sock = -1,
		.backend_fd = -1,
		.service_tick_ms = -1,
	};
	struct fe *fe = &state;
	int i;
	size_t k;
	signal(SIGPIPE, SIG_IGN);
	fe->t_start = now_ms();
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage_text, stdout);
			return 0;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			fe->verbose = 1;
		} else if (!strncmp(a, "--timeout=", 10)) {
			double d;
			if (!parse_num(a + 10, &d) || d <= 0)
				fail(fe, "bad --timeout");
			fe->timeout_s = d;
		} else if (!strcmp(a, "--pattern") && i + 1 < argc) {
			unsigned long long n = parse_ull(fe, argv[i + 1],
							 "--pattern count"),
					   j;
			uint8_t b[BUF_SIZE];
			for (j = 0; j < n;) {
				size_t l = n - j < sizeof b ? (size_t)(n - j)
							    : sizeof b,
				       x;
				for (x = 0; x < l; x++)
					b[x] = data_pat(j + x);
				if (fwrite(b, 1, l, stdout) != l)
					return 1;
				j += l;
			}
			return fflush(stdout) ? 1 : 0;
		} else {
			fprintf(stderr, "frontend: unknown option %s\n%s", a,
				usage_text);
			return 2;
		}
	}
	if (argc - i < 2) {
		fputs(usage_text, stderr);
		return 2;
	}
	fe->sock_path = argv[i++];
	for (k = 0; k < NQ; k++)
		fe->vq[k].kick_r = fe->vq[k].kick_w = fe->vq[k].call_r =
			fe->vq[k].call_w = -1;
	fe->argv = argv;
	fe->argc = argc;
	mem_setup(fe);
	connect_probe(fe);
	for (fe->ai = i; fe->ai < argc;) {
		const char *name = argv[fe->ai++];
		for (k = 0; k < sizeof steps / sizeof steps[0]; k++)
			if (!strcmp(steps[k].name, name))
				break;
		fe->step_no++;
		fe->cur_step = name;
		if (k == sizeof steps / sizeof steps[0])
			fail(fe, "unknown step \"%s\" (see --help)", name);
		note(fe, "step %d: %s", fe->step_no, name);
		steps[k].fn(fe);
		/* A control message the next step waits for may arrive while
		 * this one runs (a client's resize races the write before). */
		if (fe->cq_count && !(fe->ai < argc &&
				      !strcmp(argv[fe->ai], "expect-resize"))) {
			struct cmsg *m = &fe->cq[fe->cq_head];
			fail(fe, "unexpected control message id %u event %u "
			     "(%s) value %u len %u", m->id, m->event,
			     evname(m->event), m->value, m->len);
		}
	}
	rec_flush_write(fe);
	return 0;
}
