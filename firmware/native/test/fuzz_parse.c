/* libFuzzer target: ep_parse (and the fast path, which must agree) on arbitrary bytes, then the
 * rewriters on what it accepts.
 *
 * Beyond "no crash, no out-of-bounds access" it checks the parser's promises (offsets inside
 * the frame and ordered) and that NAT and TTL fix checksums exactly: the copy gets correct
 * checksums first, so after the incremental fix they must equal a recomputation from scratch.
 * The input is copied to a buffer of exactly its size so ASan catches any read past it. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "fast_path.h"
#include "packet.h"
#include "packet6.h"

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

static uint16_t load16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t load32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static void store16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* Rewrite values taken from the input's MAC addresses and last byte (bytes the parser does not
 * interpret), so the fuzzer steers them too. */
struct rewrite {
	uint32_t src, dst;
	uint16_t sport, dport;
	uint8_t zero_udp_csum, fix_icmp_csum, tunnel;
};

static struct rewrite rewrite_from(const uint8_t *data, size_t size)
{
	uint8_t bytes[13] = {0};
	memcpy(bytes, data, size < 12 ? size : 12);
	bytes[12] = size ? data[size - 1] : 0;
	struct rewrite r;
	memcpy(&r.src, bytes, 4);
	memcpy(&r.dst, bytes + 4, 4);
	memcpy(&r.sport, bytes + 8, 2);
	memcpy(&r.dport, bytes + 10, 2);
	r.zero_udp_csum = bytes[12] & 1;
	/* A valid echo request checksum is needed to reach the reply code at all. */
	r.fix_icmp_csum = bytes[12] & 2;
	r.tunnel = bytes[12] & 4 ? EP_ENCAP_GRE : EP_ENCAP_IPIP;
	return r;
}

static void check_meta(const struct ep_meta *m, uint32_t len)
{
	if (m->kind == EP_PKT_DROP) {
		CHECK(m->drop > EP_DROP_NONE && m->drop < EP_DROP__COUNT);
		return;
	}
	CHECK(m->kind <= EP_PKT_OTHER && m->drop == EP_DROP_NONE);
	CHECK(m->l3_off == 14 || m->l3_off == 18);
	CHECK(m->key.pad[0] == 0 && m->key.pad[1] == 0);
	if (m->kind == EP_PKT_OTHER)
		return;
	CHECK((uint32_t)m->l3_off + m->l3_len <= len);
	if (m->kind == EP_PKT_ARP)
		return;
	CHECK(m->key.family == (m->kind == EP_PKT_IPV4 ? 4 : 6));
	if (m->l4_off) {
		CHECK(m->l4_off > m->l3_off && m->payload_off > m->l4_off);
		CHECK(m->payload_off <= (uint32_t)m->l3_off + m->l3_len);
	} else {
		CHECK(m->payload_off == 0 && m->key.sport == 0 && m->key.dport == 0);
	}
}

static void fuzz_nat_and_ttl(uint8_t *frame, uint32_t len, const struct ep_meta *parsed,
			     const struct rewrite *r)
{
	struct ep_meta m = *parsed;
	uint8_t *ip = frame + m.l3_off;
	uint32_t hdr_len = (ip[0] & 0x0f) * 4u;

	store16(ip + 10, ep_ipv4_header_csum(ip, hdr_len));
	uint8_t *l4_csum = NULL;
	if (m.l4_off && !(m.flags & EP_META_FRAGMENT)) {
		uint32_t csum_off = m.key.proto == IPPROTO_TCP ? 16 : m.key.proto == IPPROTO_UDP ? 6 : 2;
		l4_csum = frame + m.l4_off + csum_off;
		store16(l4_csum, ep_ipv4_l4_csum(ip, m.l3_len));
		if (m.key.proto == IPPROTO_UDP && r->zero_udp_csum)
			store16(l4_csum, 0);
	}
	uint16_t l4_csum_before = l4_csum ? load16(l4_csum) : 0;
	uint32_t src_before = load32(ip + 12);

	if (ep_nat4(frame, &m, r->src, r->sport, r->dst, r->dport) == 0) {
		CHECK(l4_csum != NULL);
		CHECK(load16(ip + 10) == ep_ipv4_header_csum(ip, hdr_len));
		if (m.key.proto == IPPROTO_UDP && l4_csum_before == 0)
			CHECK(load16(l4_csum) == 0);
		else
			CHECK(load16(l4_csum) == ep_ipv4_l4_csum(ip, m.l3_len));
		CHECK(load32(ip + 12) == (r->src ? r->src : src_before));
		struct ep_meta again;
		CHECK(ep_parse(frame, len, &again) == EP_PKT_IPV4);
		CHECK(memcmp(&again.key, &m.key, sizeof(m.key)) == 0);
	} else {
		CHECK(l4_csum == NULL || m.key.proto == IPPROTO_ICMP);
	}

	uint8_t ttl_before = ip[8];
	uint8_t ttl = ep_ipv4_dec_ttl(frame, &m);
	CHECK(ttl == (ttl_before ? ttl_before - 1 : 0) && ip[8] == ttl);
	CHECK(load16(ip + 10) == ep_ipv4_header_csum(ip, hdr_len));
}

/* IPv6: NAT66 keeps a correct L4 checksum equal to a recomputation; NDP and echo replies, when
 * given, are well-formed and correctly checksummed. */
static uint16_t fold16(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* One's complement sum of len bytes as stored (an odd last byte padded with zero). */
static uint32_t sum_bytes(const uint8_t *p, uint32_t len)
{
	uint32_t sum = 0;
	for (uint32_t i = 0; i + 1 < len; i += 2)
		sum = fold16(sum + load16(p + i));
	if (len & 1) {
		uint8_t last[2] = { p[len - 1], 0 };
		sum = fold16(sum + load16(last));
	}
	return sum;
}

static void fuzz_ipv6(const uint8_t *data, uint32_t len, const struct ep_meta *parsed, const uint8_t own_mac[6])
{
	uint8_t *frame = malloc(len + 128);
	memcpy(frame, data, len);
	struct ep_meta m = *parsed;
	uint8_t proto = m.key.proto;
	uint32_t csum_off = proto == IPPROTO_TCP ? 16 : proto == IPPROTO_UDP ? 6 : 2;
	if (m.l4_off && (proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_ICMPV6)) {
		const uint8_t *ip = frame + m.l3_off;
		uint32_t l4_len = (uint32_t)m.l3_off + m.l3_len - m.l4_off;
		store16(frame + m.l4_off + csum_off, ep_ipv6_l4_csum(ip, frame + m.l4_off, l4_len, proto, csum_off));
		/* with its L4 checksum valid, the packet's sum read off it equals the sum of its bytes */
		uint32_t derived;
		if (ep_ipv6_packet_sum(frame, &m, &derived) == 0)
			CHECK(fold16(derived) == fold16(sum_bytes(ip, m.l3_len)));
		uint8_t src[16], dst[16];
		for (int i = 0; i < 16; i++) {
			src[i] = data[i % 12];
			dst[i] = data[(i + 5) % 12];
		}
		uint8_t last = data[len - 1];
		if (ep_nat6(frame, &m, last & 1 ? src : NULL, (uint16_t)(last & 4 ? load16(data + 8) : 0), last & 2 ? dst : NULL,
			    (uint16_t)(last & 8 ? load16(data + 10) : 0)) == 0) {
			uint16_t stored = load16(frame + m.l4_off + csum_off);
			uint16_t fresh = ep_ipv6_l4_csum(ip, frame + m.l4_off, l4_len, proto, csum_off);
			CHECK(stored == fresh || (proto == IPPROTO_UDP && (stored == 0xffff || stored == 0) && fresh == 0));
		}
	}
	memcpy(frame, data, len);
	if ((data[len - 1] & 16) && parsed->l4_off && proto == IPPROTO_ICMPV6) /* reach past the checksum check */
		store16(frame + parsed->l4_off + 2, ep_ipv6_l4_csum(frame + parsed->l3_off, frame + parsed->l4_off,
								   (uint32_t)parsed->l3_off + parsed->l3_len - parsed->l4_off,
								   IPPROTO_ICMPV6, 2));
	struct ep_ndp nd;
	if (ep_ndp_parse(frame, parsed, &nd) == 0 && nd.type == EP_ND_NEIGHBOR_SOLICIT) {
		uint32_t reply = ep_ndp_advert(frame, len + 128, parsed, &nd, own_mac, own_mac);
		CHECK(reply == (uint32_t)parsed->l3_off + 72);
		struct ep_meta rm;
		CHECK(ep_parse(frame, reply, &rm) == EP_PKT_IPV6 && ep_is_ndp(frame, &rm));
		struct ep_ndp na;
		CHECK(ep_ndp_parse(frame, &rm, &na) == 0 && na.type == EP_ND_NEIGHBOR_ADVERT && na.has_lladdr);
		CHECK(memcmp(na.lladdr, own_mac, 6) == 0 && memcmp(na.target, nd.target, 16) == 0);
	}
	memcpy(frame, data, len);
	uint32_t reply = ep_icmp6_echo_reply(frame, len, parsed, own_mac);
	CHECK(reply == 0 || reply == len);
	free(frame);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t own_mac[6] = {0x02, 0, 0, 0, 0, 0x99};
	uint32_t len = (uint32_t)size;
	uint8_t *frame = malloc(size ? size : 1);
	memcpy(frame, data, size);

	struct ep_meta m;
	int kind = ep_parse(frame, len, &m);
	CHECK(kind == m.kind);
	check_meta(&m, len);
	struct ep_meta fast; /* the worker's fast path must agree on every frame */
	CHECK(ep_parse_fast(frame, len, &fast) == kind && memcmp(&fast, &m, sizeof(m)) == 0);
	CHECK(memcmp(frame, data, size) == 0);

	if (kind == EP_PKT_IPV4) {
		struct rewrite r = rewrite_from(data, size);
		fuzz_nat_and_ttl(frame, len, &m, &r);
		uint8_t outer[24];
		uint32_t outer_len = ep_encap4_header(outer, r.tunnel, r.src, r.dst, m.l3_len);
		CHECK(outer_len == (r.tunnel == EP_ENCAP_GRE ? 24u : 20u));
		CHECK(load16(outer + 10) == ep_ipv4_header_csum(outer, 20));

		memcpy(frame, data, size);
		if (r.fix_icmp_csum && m.key.proto == IPPROTO_ICMP && m.l4_off &&
		    !(m.flags & EP_META_FRAGMENT))
			store16(frame + m.l4_off + 2, ep_ipv4_l4_csum(frame + m.l3_off, m.l3_len));
		uint32_t reply = ep_icmp_echo_reply(frame, len, &m, own_mac);
		CHECK(reply <= len);
		if (reply) {
			struct ep_meta rm;
			CHECK(ep_parse(frame, reply, &rm) == EP_PKT_IPV4);
			CHECK(load16(frame + rm.l4_off + 2) ==
			      ep_ipv4_l4_csum(frame + rm.l3_off, rm.l3_len));
		}
	} else if (kind == EP_PKT_IPV6) {
		fuzz_ipv6(data, len, &m, own_mac);
	} else if (kind == EP_PKT_ARP) {
		uint32_t ip, sender;
		uint8_t mac[6];
		if (ep_arp_sender(frame, &m, &sender, mac) == 0) {
			memcpy(&ip, frame + m.l3_off + 24, 4);
			CHECK(ep_arp_target_ip(frame, &m) == ip);
			uint32_t reply = ep_arp_reply(frame, len, &m, own_mac, ip);
			CHECK(reply <= len);
			CHECK((reply != 0) == (ep_arp_op(data, &m) == 1));
			if (reply) {
				CHECK(ep_arp_op(frame, &m) == 2 && memcmp(frame + 6, own_mac, 6) == 0);
				CHECK(ep_arp_target_ip(frame, &m) == sender);
			}
		}
	}
	free(frame);
	return 0;
}
