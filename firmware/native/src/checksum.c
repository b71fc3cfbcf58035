/* Internet checksums (RFC 1071) computed from scratch, and RFC 1624 incremental updates.
 *
 * All 16-bit words are summed exactly as they sit in memory: one's complement addition is byte
 * order independent, so nothing is swapped and the results can be stored back as they are. */
#include <netinet/in.h>
#include <string.h>

#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "packet.h"
#include "words.h"

static inline uint32_t words_of32(uint32_t v)
{
	return (v & 0xffff) + (v >> 16);
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). Unlike eqn. 2 it never turns a non-zero sum into
 * +0, so the result equals a checksum computed from scratch. */
uint16_t ep_csum_update16(uint16_t csum, uint16_t old_val, uint16_t new_val)
{
	return (uint16_t)~fold((uint32_t)(uint16_t)~csum + (uint16_t)~old_val + new_val);
}

uint16_t ep_csum_update32(uint16_t csum, uint32_t old_val, uint32_t new_val)
{
	return (uint16_t)~fold((uint32_t)(uint16_t)~csum + words_of32(~old_val) + words_of32(new_val));
}

/* Sum of a header with its checksum field (at csum_off) counted as zero, so callers can compare
 * the result with the stored value without clearing it first. */
static uint32_t sum_skipping_csum(const uint8_t *p, uint32_t len, uint32_t csum_off)
{
	return rte_raw_cksum(p, csum_off) + rte_raw_cksum(p + csum_off + 2, len - csum_off - 2);
}

uint16_t ep_ipv4_header_csum(const uint8_t *ip, uint32_t ihl_bytes)
{
	return (uint16_t)~fold(
		sum_skipping_csum(ip, ihl_bytes, offsetof(struct rte_ipv4_hdr, hdr_checksum)));
}

/* 0 for other protocols or a datagram too short for its L4 header: there is nothing to sum. */
uint16_t ep_ipv4_l4_csum(const uint8_t *ip, uint32_t len)
{
	uint32_t hdr_len = (ip[offsetof(struct rte_ipv4_hdr, version_ihl)] & 0x0f) * 4u;
	uint8_t proto = ip[offsetof(struct rte_ipv4_hdr, next_proto_id)];
	uint32_t csum_off, min_len;

	switch (proto) {
	case IPPROTO_TCP:
		csum_off = offsetof(struct rte_tcp_hdr, cksum);
		min_len = sizeof(struct rte_tcp_hdr);
		break;
	case IPPROTO_UDP:
		csum_off = offsetof(struct rte_udp_hdr, dgram_cksum);
		min_len = sizeof(struct rte_udp_hdr);
		break;
	case IPPROTO_ICMP:
		csum_off = offsetof(struct rte_icmp_hdr, icmp_cksum);
		min_len = sizeof(struct rte_icmp_hdr);
		break;
	default:
		return 0;
	}
	if (len < hdr_len + min_len)
		return 0;

	uint32_t l4_len = len - hdr_len;
	uint32_t sum = sum_skipping_csum(ip + hdr_len, l4_len, csum_off);
	if (proto == IPPROTO_ICMP)
		return (uint16_t)~fold(sum);

	uint32_t src, dst;
	memcpy(&src, ip + offsetof(struct rte_ipv4_hdr, src_addr), 4);
	memcpy(&dst, ip + offsetof(struct rte_ipv4_hdr, dst_addr), 4);
	sum += words_of32(src) + words_of32(dst) + rte_cpu_to_be_16((uint16_t)proto) +
	       rte_cpu_to_be_16((uint16_t)l4_len);
	uint16_t csum = (uint16_t)~fold(sum);
	/* RFC 768: a UDP checksum of 0 means "none", so a computed 0 is sent as its equivalent -0. */
	if (proto == IPPROTO_UDP && csum == 0)
		csum = 0xffff;
	return csum;
}
