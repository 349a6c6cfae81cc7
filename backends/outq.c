/* backends/outq.c - the bounded output queue.  See backend.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "backend.h"

int
outq_init(struct outq *q, size_t cap)
{
	memset(q, 0, sizeof *q);
	q->cap = cap;
	q->buf = malloc(cap);
	return q->buf ? 0 : -1;
}

void
outq_free(struct outq *q)
{
	free(q->buf);
	q->buf = NULL;
	q->head = q->len = 0;
}

size_t
outq_put(struct outq *q, const void *p, size_t n)
{
	const char *src = p;
	size_t drop = 0, tail, first;

	if (n > q->cap) {          /* only the newest cap bytes can stay */
		drop += n - q->cap;
		src += n - q->cap;
		n = q->cap;
	}
	if (q->len + n > q->cap) { /* make room by dropping the oldest */
		size_t over = q->len + n - q->cap;

		q->head = (q->head + over) % q->cap;
		q->len -= over;
		drop += over;
	}
	tail = (q->head + q->len) % q->cap;
	first = q->cap - tail < n ? q->cap - tail : n;
	memcpy(q->buf + tail, src, first);
	memcpy(q->buf, src + first, n - first);
	q->len += n;
	q->dropped += drop;
	return drop;
}

int
outq_flush(struct outq *q, int fd)
{
	while (q->len) {
		struct iovec iov[2];
		size_t first = q->cap - q->head < q->len ? q->cap - q->head : q->len;
		ssize_t n;
		int cnt = 1;

		iov[0].iov_base = q->buf + q->head;
		iov[0].iov_len = first;
		if (first < q->len) {
			iov[1].iov_base = q->buf;
			iov[1].iov_len = q->len - first;
			cnt = 2;
		}
		n = writev(fd, iov, cnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
		q->head = (q->head + n) % q->cap;
		q->len -= n;
	}
	q->head = 0;
	return 0;
}

int
outq_send(struct outq *q, int fd, const void *p, size_t n, size_t *dropped)
{
	const char *src = p;
	ssize_t w;

	*dropped = 0;
	while (q->len == 0 && n > 0) {
		w = write(fd, src, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -1;
			break;
		}
		src += w;
		n -= w;
	}
	if (n > 0)
		*dropped = outq_put(q, src, n);
	return 0;
}

void
outq_move(struct outq *dst, struct outq *src)
{
	size_t first;

	if (!src->len)
		return;
	first = src->cap - src->head < src->len ? src->cap - src->head : src->len;
	outq_put(dst, src->buf + src->head, first);
	outq_put(dst, src->buf, src->len - first);
	src->head = src->len = 0;
}
