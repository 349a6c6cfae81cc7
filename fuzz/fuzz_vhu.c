/*
 * fuzz/fuzz_vhu.c - libFuzzer target: arbitrary vhost-user message streams,
 * with synthetic fds, into the daemon's dispatcher (vhu_serve()), with the
 * console device and guest activity behind it.
 *
 * Input: an event stream as fuzz.h describes it, every event allowed.  A
 * recording of tests/frontend (VC_RECORD=FILE) is such an input as it is:
 * the seeds are recordings of the test harness (see fuzz/run.sh).
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct event ev;

	frontend_begin();
	while (event_next(&in, EV_ALL, &ev))
		event_run(&ev);
	frontend_end();
	return 0;
}
