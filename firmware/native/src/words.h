/* 16-bit words as they sit in packet memory (unaligned, no byte swap) and their one's complement
 * sums: the sum does not depend on byte order, so checksums are stored as computed. Shared by the
 * checksum and packet rewriting code (checksum.c, nat.c, packet6.c, encap6.c). */
#ifndef EP_WORDS_H
#define EP_WORDS_H

#include <stdint.h>
#include <string.h>

static inline uint16_t load16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void store16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* Sum of len bytes as words; an odd last byte counts as its word padded with zero. */
static inline uint32_t sum_words(const uint8_t *p, uint32_t len, uint32_t acc)
{
	uint32_t i = 0;
	for (; i + 1 < len; i += 2)
		acc += load16(p + i);
	if (i < len) {
		uint8_t last[2] = { p[i], 0 };
		acc += load16(last);
	}
	return acc;
}

/* Two folds bring any 32-bit sum into 16 bits (the first leaves at most 0x1fffe). */
static inline uint16_t fold(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

#endif
