/* The exact-match key of a fixed affinity: one direction of one flow. */
#ifndef EP_FLOW_KEY_H
#define EP_FLOW_KEY_H

#include <stdint.h>
#include <string.h>

/* 40 bytes, no implicit padding, so the hash covers exactly these bytes. IPv4 addresses sit in
 * the first 4 bytes of src/dst with the other 12 zero; family tells them apart from IPv6. */
struct ep_flow_key {
	uint8_t src[16];
	uint8_t dst[16];
	uint16_t sport; /* network order; 0 for protocols without ports */
	uint16_t dport;
	uint8_t proto;
	uint8_t family; /* 4 or 6 */
	uint8_t pad[2]; /* always zero */
} __attribute__((aligned(8))); /* hashed as 8-byte words */

#ifdef __cplusplus
static_assert(sizeof(struct ep_flow_key) == 40, "flow key must be packed to 40 bytes");
#else
_Static_assert(sizeof(struct ep_flow_key) == 40, "flow key must be packed to 40 bytes");
#endif

static inline uint32_t ep_key_src4(const struct ep_flow_key *k)
{
	uint32_t v;
	memcpy(&v, k->src, 4);
	return v;
}

static inline uint32_t ep_key_dst4(const struct ep_flow_key *k)
{
	uint32_t v;
	memcpy(&v, k->dst, 4);
	return v;
}

static inline void ep_key_set4(struct ep_flow_key *k, uint8_t proto, uint32_t src, uint16_t sport,
			       uint32_t dst, uint16_t dport)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->src, &src, 4);
	memcpy(k->dst, &dst, 4);
	k->sport = sport;
	k->dport = dport;
	k->proto = proto;
	k->family = 4;
}

static inline void ep_key_set6(struct ep_flow_key *k, uint8_t proto, const uint8_t src[16], uint16_t sport,
			       const uint8_t dst[16], uint16_t dport)
{
	memcpy(k->src, src, 16);
	memcpy(k->dst, dst, 16);
	k->sport = sport;
	k->dport = dport;
	k->proto = proto;
	k->family = 6;
	k->pad[0] = k->pad[1] = 0;
}

/* An IPv6 address folded to 32 bits where an IPv4 address is expected (work units, rate limits). */
static inline uint32_t ep_addr6_fold(const uint8_t a[16])
{
	uint32_t w[4];
	memcpy(w, a, 16);
	return w[0] ^ w[1] ^ w[2] ^ w[3];
}

static inline int ep_addr6_is_zero(const uint8_t a[16])
{
	uint64_t w[2];
	memcpy(w, a, 16);
	return (w[0] | w[1]) == 0;
}

/* The 16 bytes the manager's affinity table is keyed by (rte_hash compares 16-byte keys with one
 * vector instruction and stores them in 32 bytes): an IPv4 key as it is, in two words built in
 * registers and hashed as they are; any other key as a digest of its 40 bytes, which a hit checks
 * against the whole key (see affinity_table.c). The low byte of rest is the family either way. */
struct ep_key16 {
	uint64_t addrs; /* IPv4: source << 32 | destination (each as stored in the packet) */
	uint64_t rest;  /* IPv4: sport << 48 | dport << 32 | proto << 8 | 4 */
};

static inline void ep_key16_of4(const struct ep_flow_key *k, struct ep_key16 *out)
{
	out->addrs = (uint64_t)ep_key_src4(k) << 32 | ep_key_dst4(k);
	out->rest = (uint64_t)k->sport << 48 | (uint64_t)k->dport << 32 | (uint32_t)k->proto << 8 | 4u;
}

static inline void ep_key_reverse(const struct ep_flow_key *k, struct ep_flow_key *r)
{
	memcpy(r->src, k->dst, 16);
	memcpy(r->dst, k->src, 16);
	r->sport = k->dport;
	r->dport = k->sport;
	r->proto = k->proto;
	r->family = k->family;
	r->pad[0] = r->pad[1] = 0;
}

#endif
