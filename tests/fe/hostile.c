/*
 * tests/fe/hostile.c - hostile rings
 * (contract: frontend.h).
 */
#include "frontend.h"

/* ---------------------------------------------------------------------- */
/* hostile rings                                                           */

enum { H_HEAD, H_NEXT, H_LOOP, H_OOB, H_OOB_EDGE, H_WRAP, H_JUMP, H_IND_LEN,
       H_IND_NEST, H_IND_HUGE, H_EMPTY, H_DIR, H_IND_NEXT };

static void
hostile(struct fe *fe, int kind)
{
	int qi = opt_queue(fe);
	struct vq *q = &fe->vq[qi];
	bool w =
		qi == VIRTIO_CONSOLE_PORT0_RXQ || qi == VIRTIO_CONSOLE_CTRL_RXQ;
	uint16_t wf = w ? VRING_DESC_F_WRITE : 0;
	uint64_t buf;
	uint16_t d, d2;
	int t, t2;
	need_rings(fe);
	if (q->nfree < 2)
		fail(fe, "hostile: %s has no free descriptors", qname[qi]);
	/* a harmless, valid buffer for the parts that are not the corruption */
	if (w) {
		buf = rx0_gpa(fe, RX0_MAX - 1);
		mark_writable(fe, buf, 64);
	} else {
		buf = tx0_gpa(fe, TX0_SLOTS - 1);
		fe->tx0_repeat_len[TX0_SLOTS - 1] = 0;
		gw(fe, buf, "hostile", 7);
	}
	switch (kind) {
	case H_HEAD:
		gw16(fe, q->avail + 4 + 2ull * (q->avail_idx % q->num),
		     (uint16_t)(q->num + 5));
		q->avail_idx++;
		break;
	case H_NEXT:
		d = desc_alloc(fe, q);
		set_desc(fe, q->desc, d, buf, 16,
			 (uint16_t)(VRING_DESC_F_NEXT | wf),
			 (uint16_t)(q->num + 3));
		q->tok[d] = (struct tok){ TK_BAD, true, 1, -1, -1, 0 };
		avail_push(fe, q, d);
		break;
	case H_LOOP:
		d = desc_alloc(fe, q);
		d2 = desc_alloc(fe, q);
		set_desc(fe, q->desc, d, buf, 16,
			 (uint16_t)(VRING_DESC_F_NEXT | wf), d2);
		set_desc(fe, q->desc, d2, buf + 16, 16,
			 (uint16_t)(VRING_DESC_F_NEXT | wf), d);
		q->tok[d] = (struct tok){ TK_BAD, true, 2, -1, -1, 0 };
		avail_push(fe, q, d);
		break;
	case H_OOB:
	case H_OOB_EDGE:
	case H_WRAP:
	case H_EMPTY:
	case H_DIR:
		d = desc_alloc(fe, q);
		if (kind ==
		    H_DIR) /* readable on a receiveq, writable on a transmitq */
			set_desc(fe, q->desc, d, buf, 16,
				 (uint16_t)(wf ^ VRING_DESC_F_WRITE), 0);
		else if (kind == H_EMPTY)
			set_desc(fe, q->desc, d, buf, 0, wf, 0);
		else if (kind == H_OOB)
			set_desc(fe, q->desc, d, 0x80000000ull, 64, wf, 0);
		else if (kind == H_OOB_EDGE)
			set_desc(fe, q->desc, d, GPA_END - 32, 64, wf, 0);
		else
			set_desc(fe, q->desc, d, 0xfffffffffffff000ull, 0x2000,
				 wf, 0);
		q->tok[d] = (struct tok){ TK_BAD, true, 1, -1, -1, 0 };
		avail_push(fe, q, d);
		break;
	case H_JUMP:
		q->avail_idx = (uint16_t)(q->avail_idx + q->num + 1);
		break;
	case H_IND_LEN:
	case H_IND_NEST:
	case H_IND_HUGE:
	case H_IND_NEXT:
		if (!fe->neg.indirect)
			fail(fe, "indirect descriptors were not negotiated");
		t = ind_alloc(fe);
		d = desc_alloc(fe, q);
		if (kind == H_IND_LEN) {
			set_desc(fe, ind_gpa(fe, t), 0, buf, 16, wf, 0);
			set_desc(fe, ind_gpa(fe, t), 1, buf + 16, 8, wf, 0);
			set_desc(fe, q->desc, d, ind_gpa(fe, t), 24,
				 VRING_DESC_F_INDIRECT, 0);
		} else if (kind == H_IND_NEXT) {
			/* a valid table, but the indirect descriptor also
			 * says NEXT */
			d2 = desc_alloc(fe, q);
			set_desc(fe, q->desc, d2, buf + 32, 16, wf, 0);
			set_desc(fe, ind_gpa(fe, t), 0, buf, 16, wf, 0);
			set_desc(fe, q->desc, d, ind_gpa(fe, t), 16,
				 (uint16_t)(VRING_DESC_F_INDIRECT |
					    VRING_DESC_F_NEXT),
				 d2);
		} else if (kind == H_IND_HUGE) {
			set_desc(fe, ind_gpa(fe, t), 0, buf, 0,
				 (uint16_t)(VRING_DESC_F_NEXT | wf), 0);
			set_desc(fe, q->desc, d, ind_gpa(fe, t), 65536 * 16,
				 VRING_DESC_F_INDIRECT, 0);
		} else {
			t2 = ind_alloc(fe);
			set_desc(fe, ind_gpa(fe, t2), 0, buf, 16, wf, 0);
			set_desc(fe, ind_gpa(fe, t), 0, ind_gpa(fe, t2), 16,
				 VRING_DESC_F_INDIRECT, 0);
			set_desc(fe, q->desc, d, ind_gpa(fe, t), 16,
				 VRING_DESC_F_INDIRECT, 0);
		}
		q->tok[d] = (struct tok){ TK_BAD, true, 1, -1, t, 0 };
		avail_push(fe, q, d);
		break;
	}
	vq_publish(fe, q, true);
}

void
step_corrupt_head(struct fe *fe)
{
	hostile(fe, H_HEAD);
}
void
step_corrupt_next(struct fe *fe)
{
	hostile(fe, H_NEXT);
}
void
step_desc_loop(struct fe *fe)
{
	hostile(fe, H_LOOP);
}
void
step_desc_oob(struct fe *fe)
{
	hostile(fe, H_OOB);
}
void
step_desc_oob_edge(struct fe *fe)
{
	hostile(fe, H_OOB_EDGE);
}
void
step_desc_wrap(struct fe *fe)
{
	hostile(fe, H_WRAP);
}
void
step_avail_jump(struct fe *fe)
{
	hostile(fe, H_JUMP);
}
void
step_indirect_bad_len(struct fe *fe)
{
	hostile(fe, H_IND_LEN);
}
void
step_indirect_nested(struct fe *fe)
{
	hostile(fe, H_IND_NEST);
}
void
step_indirect_huge(struct fe *fe)
{
	hostile(fe, H_IND_HUGE);
}
void
step_desc_empty(struct fe *fe)
{
	hostile(fe, H_EMPTY);
}
void
step_desc_wrong_dir(struct fe *fe)
{
	hostile(fe, H_DIR);
}
void
step_indirect_next(struct fe *fe)
{
	hostile(fe, H_IND_NEXT);
}
