/* Outer headers for tunnel dispatch: IP-in-IP (RFC 2003) and GRE (RFC 2784, no options). */
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>

#include "packet.h"

#define GRE_HDR_LEN 4
#define OUTER_TTL 64
#define IPV4_VERSION_IHL_NO_OPTIONS 0x45

uint32_t ep_encap4_header(uint8_t *out, int kind, uint32_t src, uint32_t dst, uint32_t inner_len)
{
	uint32_t hdr_len = sizeof(struct rte_ipv4_hdr) + (kind == EP_ENCAP_GRE ? GRE_HDR_LEN : 0);
	/* Refused (0) rather than written with a wrapped total length. */
	if (unlikely((kind != EP_ENCAP_IPIP && kind != EP_ENCAP_GRE) ||
		     inner_len > UINT16_MAX - hdr_len))
		return 0;

	struct rte_ipv4_hdr ip = {
		.version_ihl = IPV4_VERSION_IHL_NO_OPTIONS,
		.total_length = rte_cpu_to_be_16((uint16_t)(hdr_len + inner_len)),
		.time_to_live = OUTER_TTL,
		.next_proto_id = (uint8_t)kind,
		.src_addr = src,
		.dst_addr = dst,
	};
	memcpy(out, &ip, sizeof(ip));
	uint16_t csum = ep_ipv4_header_csum(out, sizeof(ip));
	memcpy(out + offsetof(struct rte_ipv4_hdr, hdr_checksum), &csum, sizeof(csum));
	if (kind == EP_ENCAP_GRE) {
		/* No checksum, key or sequence bits, version 0; the payload is IPv4. */
		const uint8_t gre[GRE_HDR_LEN] = {0, 0, RTE_ETHER_TYPE_IPV4 >> 8,
						  RTE_ETHER_TYPE_IPV4 & 0xff};
		memcpy(out + sizeof(ip), gre, sizeof(gre));
	}
	return hdr_len;
}
