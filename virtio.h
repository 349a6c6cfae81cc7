/*
 * virtio.h - the transport's feature bits (virtio 1.x section 6), the one
 * place they are defined: vhu.h (the rings they describe) and
 * virtio_console.h (for the test frontend, which speaks the whole device)
 * both include it.
 */
#ifndef VIRTIO_H
#define VIRTIO_H

#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1          32

#endif
