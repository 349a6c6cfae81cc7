/*
 * virtio_console.h - the VirtIO console device as the virtio spec defines it
 * ("Console Device", virtio 1.x section 5.3), written out here because the
 * daemon must not depend on the Linux uapi headers.  Names follow the spec.
 *
 * Everything the device and the driver exchange is little endian (le.h).
 */
#ifndef VIRTIO_CONSOLE_H
#define VIRTIO_CONSOLE_H

#include <stdint.h>

#include "virtio.h"   /* the transport feature bits the device offers */

#define VIRTIO_ID_CONSOLE 3

/* Device feature bits. */
#define VIRTIO_CONSOLE_F_SIZE        0  /* cols/rows in config are valid */
#define VIRTIO_CONSOLE_F_MULTIPORT   1  /* control queues, max_nr_ports */
#define VIRTIO_CONSOLE_F_EMERG_WRITE 2  /* emerg_wr in config */

/*
 * Config space: le16 cols, le16 rows, le32 max_nr_ports, le32 emerg_wr.
 * Kept as offsets: the struct is never overlaid on guest-visible bytes.
 */
#define VIRTIO_CONSOLE_CONFIG_COLS         0
#define VIRTIO_CONSOLE_CONFIG_ROWS         2
#define VIRTIO_CONSOLE_CONFIG_MAX_NR_PORTS 4
#define VIRTIO_CONSOLE_CONFIG_EMERG_WR     8
#define VIRTIO_CONSOLE_CONFIG_SIZE         12

/*
 * Queues.  Port 0 uses 0 (receiveq, device writes) and 1 (transmitq, driver
 * writes); with F_MULTIPORT, 2 and 3 are the control receiveq/transmitq and
 * port N >= 1 uses 4+2(N-1) and 5+2(N-1).
 */
#define VIRTIO_CONSOLE_PORT0_RXQ 0
#define VIRTIO_CONSOLE_PORT0_TXQ 1
#define VIRTIO_CONSOLE_CTRL_RXQ  2
#define VIRTIO_CONSOLE_CTRL_TXQ  3

/* Control message: le32 id, le16 event, le16 value, then payload. */
struct virtio_console_control {
	uint32_t id;
	uint16_t event;
	uint16_t value;
};
#define VIRTIO_CONSOLE_CONTROL_SIZE 8

/* Control events (direction in the comment). */
#define VIRTIO_CONSOLE_DEVICE_READY  0  /* driver -> device, id 0xffffffff */
#define VIRTIO_CONSOLE_DEVICE_ADD    1  /* device -> driver ("PORT_ADD") */
#define VIRTIO_CONSOLE_DEVICE_REMOVE 2  /* device -> driver ("PORT_REMOVE") */
#define VIRTIO_CONSOLE_PORT_READY    3  /* driver -> device */
#define VIRTIO_CONSOLE_CONSOLE_PORT  4  /* device -> driver */
#define VIRTIO_CONSOLE_RESIZE        5  /* device -> driver */
#define VIRTIO_CONSOLE_PORT_OPEN     6  /* both ways */
#define VIRTIO_CONSOLE_PORT_NAME     7  /* device -> driver */

/* Linux and QEMU call the spec's DEVICE_ADD/REMOVE by these names. */
#define VIRTIO_CONSOLE_PORT_ADD    VIRTIO_CONSOLE_DEVICE_ADD
#define VIRTIO_CONSOLE_PORT_REMOVE VIRTIO_CONSOLE_DEVICE_REMOVE

#define VIRTIO_CONSOLE_BAD_ID 0xffffffffu

#endif
