/*
 * le.h - little-endian values, the one byte order of everything the
 * device and the driver exchange (virtio 1.x section 1.4).
 *
 * get_le16/get_le32/put_le16/put_le32 code a field in a byte buffer one
 * byte at a time: for the config space and control messages, copied out
 * of (or into) guest memory whole, at any alignment, on any host.
 *
 * le16_to_host/le32_to_host/le64_to_host turn a value already loaded (or
 * copied out) into host order; vhu.c uses them for its single aligned
 * loads of ring fields the guest writes concurrently (see there why).
 */
#ifndef LE_H
#define LE_H

#include <stdint.h>

static inline uint16_t
get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t
get_le32(const uint8_t *p)
{
	return get_le16(p) | (uint32_t)get_le16(p + 2) << 16;
}

static inline void
put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void
put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}

static inline uint16_t
le16_to_host(uint16_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return (uint16_t)(v >> 8 | v << 8);
#else
	return v;
#endif
}

static inline uint32_t
le32_to_host(uint32_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return __builtin_bswap32(v);
#else
	return v;
#endif
}

static inline uint64_t
le64_to_host(uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return __builtin_bswap64(v);
#else
	return v;
#endif
}

/* The same swap both ways. */
#define host_to_le16 le16_to_host
#define host_to_le32 le32_to_host

#endif
