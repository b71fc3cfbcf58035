/* The worker's per-packet fast path over raw frame bytes, inline so a hit costs no calls: the
 * common frame (untagged Ethernet, IPv4 without options, not a fragment, TCP or UDP) parsed in
 * one go, and the prepared NAT of an exact-match flow. Everything else takes the general code in
 * parse.c and nat.c, whose results these must equal (test_packet and the fuzz target compare). */
#ifndef EP_FAST_PATH_H
#define EP_FAST_PATH_H

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_byteorder.h>

#include "packet.h"

#define EP_FAST_L3_OFF 14 /* Ethernet header, no tag */
#define EP_FAST_L4_OFF 34 /* IPv4 header without options */

static inline uint16_t ep_load16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint32_t ep_load32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void ep_store16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

static inline void ep_store32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* One's complement "new - old" of a 16-bit field, as a partial sum to add to ~checksum. */
static inline uint32_t ep_csum_delta16(uint16_t old_val, uint16_t new_val)
{
	return (uint32_t)(uint16_t)~old_val + new_val;
}

/* RFC 1624 eqn. 3 with the field changes already summed (one's complement) into delta. */
static inline uint16_t ep_csum_apply_delta(uint16_t csum, uint32_t delta)
{
	uint32_t sum = (uint16_t)~csum + delta;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* ep_parse for any frame, with the checks of the common case done here (a frame failing any of
 * them gets ep_parse, which also names the reason). */
static inline int ep_parse_fast(const uint8_t *frame, uint32_t len, struct ep_meta *m)
{
	const uint8_t *ip = frame + EP_FAST_L3_OFF;
	const uint8_t *l4 = frame + EP_FAST_L4_OFF;
	if (unlikely(len < EP_FAST_L4_OFF + 8) || ep_load16(frame + 12) != RTE_BE16(0x0800) || ip[0] != 0x45)
		return ep_parse(frame, len, m);
	uint32_t total = rte_be_to_cpu_16(ep_load16(ip + 2));
	uint8_t proto = ip[9];
	/* more-fragments flag or a fragment offset */
	if (unlikely(total > len - EP_FAST_L3_OFF || (ep_load16(ip + 6) & RTE_BE16(0x3fff)) != 0))
		return ep_parse(frame, len, m);
	uint32_t l4_len = total - 20; /* total >= 20 + 8: the checks below need it first */
	uint32_t payload_off;
	uint8_t tcp_flags = 0;
	if (proto == IPPROTO_UDP) {
		uint32_t udp_len = total >= 28 ? rte_be_to_cpu_16(ep_load16(l4 + 4)) : 0;
		if (unlikely(udp_len < 8 || udp_len > l4_len))
			return ep_parse(frame, len, m);
		payload_off = EP_FAST_L4_OFF + 8;
	} else if (proto == IPPROTO_TCP) {
		uint32_t hdr_len = total >= 40 ? (l4[12] >> 4) * 4u : 0;
		if (unlikely(hdr_len < 20 || hdr_len > l4_len))
			return ep_parse(frame, len, m);
		tcp_flags = l4[13] & 0x3f;
		payload_off = EP_FAST_L4_OFF + hdr_len;
	} else {
		return ep_parse(frame, len, m);
	}
	*m = (struct ep_meta){
		.kind = EP_PKT_IPV4,
		.tcp_flags = tcp_flags,
		.l3_off = EP_FAST_L3_OFF,
		.l4_off = EP_FAST_L4_OFF,
		.l3_len = (uint16_t)total,
		.payload_off = (uint16_t)payload_off,
		.key = { .sport = ep_load16(l4), .dport = ep_load16(l4 + 2), .proto = proto, .family = 4 },
	};
	memcpy(m->key.src, ip + 12, 4);
	memcpy(m->key.dst, ip + 16, 4);
	return EP_PKT_IPV4;
}

/* NAT of an exact-match TCP/UDP flow with its checksum deltas prepared (ep_nat4_prepare): four
 * stores and two checksum fixes. The packet's key must equal the prepared key (TCP or UDP, not a
 * fragment). ttl_delta, a TTL change the caller made, joins the IPv4 header checksum fix (0: none).
 * m->key is left as it was (the fast path needs it no more). */
static inline void ep_nat4_prepared(uint8_t *frame, const struct ep_meta *m, uint32_t new_src, uint16_t new_sport,
				    uint32_t new_dst, uint16_t new_dport, uint16_t ip_delta, uint16_t l4_delta,
				    uint32_t ttl_delta)
{
	uint8_t *ip = frame + m->l3_off;
	uint8_t *l4 = frame + m->l4_off;
	ep_store32(ip + 12, new_src);
	ep_store32(ip + 16, new_dst);
	ep_store16(l4, new_sport); /* the ports sit at the same offsets in TCP and UDP */
	ep_store16(l4 + 2, new_dport);
	ep_store16(ip + 10, ep_csum_apply_delta(ep_load16(ip + 10), ip_delta + ttl_delta));
	uint8_t *l4_csum_p = l4 + (m->key.proto == IPPROTO_TCP ? 16 : 6);
	uint16_t l4_csum = ep_load16(l4_csum_p);
	uint16_t fixed = ep_csum_apply_delta(l4_csum, l4_delta);
	if (m->key.proto == IPPROTO_UDP) /* 0 is "no checksum" and stays; a computed 0 is sent as -0 */
		fixed = l4_csum == 0 ? 0 : (fixed == 0 ? 0xffff : fixed);
	ep_store16(l4_csum_p, fixed);
}

#endif
