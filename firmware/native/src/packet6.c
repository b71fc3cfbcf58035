/* NAT66, hop limit, neighbour discovery and ICMPv6 echo on raw frames (see packet6.h).
 *
 * Checksums are summed over 16-bit words exactly as they sit in memory: the one's complement sum
 * does not depend on byte order, so no word is swapped and results are stored as computed. */
#include <netinet/in.h>
#include <string.h>

#include "packet6.h"
#include "words.h"

#define IP6_HDR_LEN 40
#define IP6_PAYLOAD_LEN 4
#define IP6_NEXT_HDR 6
#define IP6_HOP_LIMIT 7
#define IP6_SRC 8
#define IP6_DST 24
#define ETH_HDR_LEN 14
#define ND_HOP_LIMIT 255
#define ND_MSG_LEN 24 /* type, code, checksum, flags/reserved, target */
#define ND_OPT_SOURCE_LLADDR 1
#define ND_OPT_TARGET_LLADDR 2
#define ND_NA_FLAG_SOLICITED 0x40
#define ND_NA_FLAG_OVERRIDE 0x20
#define ECHO_REPLY_HOP_LIMIT 64

/* RFC 1624 eqn. 3 over any number of changed words: HC' = ~(~HC + sum(~m) + sum(m')). */
static inline uint32_t word_change(uint16_t old_val, uint16_t new_val)
{
	return (uint32_t)(uint16_t)~old_val + new_val;
}

static uint32_t addr_change(const uint8_t *old_addr, const uint8_t *new_addr)
{
	uint32_t acc = 0;
	for (int i = 0; i < 16; i += 2)
		acc += word_change(load16(old_addr + i), load16(new_addr + i));
	return acc;
}

static inline uint16_t csum_apply(uint16_t csum, uint32_t change)
{
	return (uint16_t)~fold((uint32_t)(uint16_t)~csum + change);
}

uint16_t ep_ipv6_l4_csum(const uint8_t *ip6, const uint8_t *l4, uint32_t l4_len, uint8_t proto, uint32_t csum_off)
{
	uint8_t pseudo[8] = { (uint8_t)(l4_len >> 24), (uint8_t)(l4_len >> 16), (uint8_t)(l4_len >> 8), (uint8_t)l4_len,
			      0, 0, 0, proto };
	uint32_t acc = sum_words(ip6 + IP6_SRC, 32, 0);
	acc = sum_words(pseudo, sizeof(pseudo), acc);
	acc = sum_words(l4, csum_off, acc);
	acc = sum_words(l4 + csum_off + 2, l4_len - csum_off - 2, acc);
	/* csum_off is even for every protocol, so skipping the field keeps the word alignment */
	return (uint16_t)~fold(acc);
}

void ep_nat6_addresses(uint8_t *frame, struct ep_meta *m, const uint8_t *new_src, const uint8_t *new_dst)
{
	uint8_t *ip = frame + m->l3_off;
	if (new_src) {
		memcpy(ip + IP6_SRC, new_src, 16);
		memcpy(m->key.src, new_src, 16);
	}
	if (new_dst) {
		memcpy(ip + IP6_DST, new_dst, 16);
		memcpy(m->key.dst, new_dst, 16);
	}
}

int ep_ipv6_fragment_id(const uint8_t *frame, const struct ep_meta *m, uint32_t *id)
{
	if (m->kind != EP_PKT_IPV6)
		return -1;
	uint32_t off = (uint32_t)m->l3_off + IP6_HDR_LEN, end = (uint32_t)m->l3_off + m->l3_len;
	uint8_t next = frame[m->l3_off + IP6_NEXT_HDR];
	while (off + 8 <= end) {
		if (next == IPPROTO_FRAGMENT) {
			*id = (uint32_t)load16(frame + off + 4) << 16 | load16(frame + off + 6);
			return 0;
		}
		if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS)
			return -1;
		next = frame[off];
		off += (frame[off + 1] + 1u) * 8u;
	}
	return -1;
}

static int is_icmp6_error(uint8_t type)
{
	return type >= 1 && type <= 4; /* unreachable, packet too big, time exceeded, parameter problem */
}

int ep_icmp6_quoted(const uint8_t *frame, const struct ep_meta *m, struct ep_flow_key *quoted)
{
	if (m->kind != EP_PKT_IPV6 || m->key.proto != IPPROTO_ICMPV6 || m->l4_off == 0)
		return -1;
	uint32_t end = (uint32_t)m->l3_off + m->l3_len;
	uint32_t q = (uint32_t)m->l4_off + 8;
	if (!is_icmp6_error(frame[m->l4_off]) || q + IP6_HDR_LEN + 8 > end || (frame[q] >> 4) != 6)
		return -1;
	uint8_t proto = frame[q + IP6_NEXT_HDR];
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return -1;
	const uint8_t *ql4 = frame + q + IP6_HDR_LEN;
	ep_key_set6(quoted, proto, frame + q + IP6_SRC, load16(ql4), frame + q + IP6_DST, load16(ql4 + 2));
	return 0;
}

void ep_icmp6_error_nat(uint8_t *frame, struct ep_meta *m, const uint8_t *new_dst, const uint8_t *new_qsrc,
			uint16_t new_qsport, const uint8_t *new_qdst, uint16_t new_qdport)
{
	uint8_t *ip = frame + m->l3_off;
	uint8_t *icmp = frame + m->l4_off;
	uint32_t icmp_len = (uint32_t)m->l3_off + m->l3_len - m->l4_off;
	uint8_t *q = icmp + 8;
	uint8_t *ql4 = q + IP6_HDR_LEN;
	uint32_t quoted_l4_len = icmp_len - 8 - IP6_HDR_LEN;

	/* quoted addresses and ports, and the quoted L4 checksum (it covers them) when quoted */
	uint32_t change = addr_change(q + IP6_SRC, new_qsrc) + word_change(load16(ql4), new_qsport);
	memcpy(q + IP6_SRC, new_qsrc, 16);
	store16(ql4, new_qsport);
	if (new_qdst) {
		change += addr_change(q + IP6_DST, new_qdst) + word_change(load16(ql4 + 2), new_qdport);
		memcpy(q + IP6_DST, new_qdst, 16);
		store16(ql4 + 2, new_qdport);
	}
	uint32_t csum_off = q[IP6_NEXT_HDR] == IPPROTO_UDP ? 6 : 16;
	if (csum_off + 2 <= quoted_l4_len) {
		uint16_t csum = load16(ql4 + csum_off);
		if (csum != 0 || q[IP6_NEXT_HDR] != IPPROTO_UDP) {
			csum = csum_apply(csum, change);
			store16(ql4 + csum_off, q[IP6_NEXT_HDR] == IPPROTO_UDP && csum == 0 ? 0xffff : csum);
		}
	}

	/* outer destination, then the ICMPv6 checksum over the rewritten message (errors are short) */
	memcpy(ip + IP6_DST, new_dst, 16);
	memcpy(m->key.dst, new_dst, 16);
	store16(icmp + 2, ep_ipv6_l4_csum(ip, icmp, icmp_len, IPPROTO_ICMPV6, 2));
}

int ep_nat6(uint8_t *frame, struct ep_meta *m, const uint8_t *new_src, uint16_t new_sport, const uint8_t *new_dst,
	    uint16_t new_dport)
{
	if (m->kind != EP_PKT_IPV6 || m->l4_off == 0)
		return -1;
	uint8_t *ip = frame + m->l3_off;
	uint8_t *l4 = frame + m->l4_off;
	uint32_t csum_off, sport_off = 0, dport_off = 2;
	switch (m->key.proto) {
	case IPPROTO_TCP:
		csum_off = 16;
		break;
	case IPPROTO_UDP:
		csum_off = 6;
		break;
	case IPPROTO_ICMPV6:
		/* echo: the identifier stands for the port of whichever side the key names it */
		if (l4[0] != EP_ICMP6_ECHO_REQUEST && l4[0] != EP_ICMP6_ECHO_REPLY)
			return -1;
		csum_off = 2;
		sport_off = dport_off = 4;
		if (l4[0] == EP_ICMP6_ECHO_REQUEST)
			new_dport = 0;
		else
			new_sport = 0;
		break;
	default:
		return -1;
	}
	uint32_t change = 0;
	if (new_src) {
		change += addr_change(ip + IP6_SRC, new_src);
		memcpy(ip + IP6_SRC, new_src, 16);
		memcpy(m->key.src, new_src, 16);
	}
	if (new_dst) {
		change += addr_change(ip + IP6_DST, new_dst);
		memcpy(ip + IP6_DST, new_dst, 16);
		memcpy(m->key.dst, new_dst, 16);
	}
	if (new_sport) {
		change += word_change(load16(l4 + sport_off), new_sport);
		store16(l4 + sport_off, new_sport);
		m->key.sport = new_sport;
	}
	if (new_dport) {
		change += word_change(load16(l4 + dport_off), new_dport);
		store16(l4 + dport_off, new_dport);
		m->key.dport = new_dport;
	}
	uint16_t csum = load16(l4 + csum_off);
	if (m->key.proto == IPPROTO_UDP && csum == 0)
		return 0;
	csum = csum_apply(csum, change);
	if (m->key.proto == IPPROTO_UDP && csum == 0)
		csum = 0xffff;
	store16(l4 + csum_off, csum);
	return 0;
}

void ep_ipv6_set_dscp(uint8_t *frame, const struct ep_meta *m, uint8_t dscp)
{
	/* traffic class = the 8 bits after the 4-bit version; its low 2 bits (ECN) are kept. IPv6 has
	 * no header checksum and TCP/UDP's pseudo header leaves the traffic class out. */
	uint8_t *ip = frame + m->l3_off;
	uint8_t tc = (uint8_t)((ip[0] & 0x0f) << 4 | ip[1] >> 4);
	tc = (uint8_t)(dscp << 2 | (tc & 0x03));
	ip[0] = (uint8_t)((ip[0] & 0xf0) | tc >> 4);
	ip[1] = (uint8_t)((ip[1] & 0x0f) | (tc & 0x0f) << 4);
}

uint8_t ep_ipv6_dec_hop_limit(uint8_t *frame, const struct ep_meta *m)
{
	uint8_t *hop = frame + m->l3_off + IP6_HOP_LIMIT;
	if (*hop <= 1)
		return 0;
	return --*hop;
}

int ep_is_ndp(const uint8_t *frame, const struct ep_meta *m)
{
	if (m->kind != EP_PKT_IPV6 || m->key.proto != IPPROTO_ICMPV6 || m->l4_off == 0)
		return 0;
	uint8_t type = frame[m->l4_off];
	return type == EP_ND_NEIGHBOR_SOLICIT || type == EP_ND_NEIGHBOR_ADVERT;
}

int ep_ndp_parse(const uint8_t *frame, const struct ep_meta *m, struct ep_ndp *out)
{
	if (!ep_is_ndp(frame, m) || (m->flags & EP_META_FRAGMENT))
		return -1;
	const uint8_t *ip = frame + m->l3_off;
	const uint8_t *icmp = frame + m->l4_off;
	uint32_t len = (uint32_t)m->l3_off + m->l3_len - m->l4_off;
	if (ip[IP6_HOP_LIMIT] != ND_HOP_LIMIT || icmp[1] != 0 || len < ND_MSG_LEN)
		return -1;
	if (ep_ipv6_l4_csum(ip, icmp, len, IPPROTO_ICMPV6, 2) != load16(icmp + 2))
		return -1;
	const uint8_t *target = icmp + 8;
	if (target[0] == 0xff)
		return -1; /* multicast target */
	struct ep_ndp nd;
	memset(&nd, 0, sizeof(nd));
	nd.type = icmp[0];
	memcpy(nd.target, target, 16);
	memcpy(nd.src, ip + IP6_SRC, 16);
	uint8_t wanted = nd.type == EP_ND_NEIGHBOR_SOLICIT ? ND_OPT_SOURCE_LLADDR : ND_OPT_TARGET_LLADDR;
	for (uint32_t at = ND_MSG_LEN; at < len;) {
		if (len - at < 2)
			return -1;
		uint32_t opt_len = (uint32_t)icmp[at + 1] * 8;
		if (opt_len == 0 || opt_len > len - at)
			return -1;
		if (icmp[at] == wanted && opt_len == 8) {
			nd.has_lladdr = 1;
			memcpy(nd.lladdr, icmp + at + 2, 6);
		}
		at += opt_len;
	}
	/* duplicate address detection (source ::) must not carry a source link-layer option */
	if (nd.type == EP_ND_NEIGHBOR_SOLICIT && ep_addr6_is_zero(nd.src) && nd.has_lladdr)
		return -1;
	*out = nd;
	return 0;
}

/* IPv6 header + ICMPv6 NS/NA with one link-layer option, written at ip. */
static void write_nd(uint8_t *ip, uint8_t type, uint8_t flags, const uint8_t src[16], const uint8_t dst[16],
		     const uint8_t target[16], uint8_t option, const uint8_t mac[6])
{
	static const uint8_t version_class_flow[4] = { 0x60, 0, 0, 0 };
	memcpy(ip, version_class_flow, 4);
	ip[IP6_PAYLOAD_LEN] = 0;
	ip[IP6_PAYLOAD_LEN + 1] = ND_MSG_LEN + 8;
	ip[IP6_NEXT_HDR] = IPPROTO_ICMPV6;
	ip[IP6_HOP_LIMIT] = ND_HOP_LIMIT;
	memmove(ip + IP6_SRC, src, 16);
	memmove(ip + IP6_DST, dst, 16);
	uint8_t *icmp = ip + IP6_HDR_LEN;
	icmp[0] = type;
	icmp[1] = 0;
	icmp[4] = flags;
	icmp[5] = icmp[6] = icmp[7] = 0;
	memmove(icmp + 8, target, 16);
	icmp[ND_MSG_LEN] = option;
	icmp[ND_MSG_LEN + 1] = 1;
	memcpy(icmp + ND_MSG_LEN + 2, mac, 6);
	store16(icmp + 2, ep_ipv6_l4_csum(ip, icmp, ND_MSG_LEN + 8, IPPROTO_ICMPV6, 2));
}

uint32_t ep_ndp_advert(uint8_t *frame, uint32_t cap, const struct ep_meta *m, const struct ep_ndp *ns,
		       const uint8_t own_mac[6], const uint8_t answer_mac[6])
{
	static const uint8_t all_nodes[16] = { 0xff, 0x02, [15] = 1 };
	static const uint8_t all_nodes_mac[6] = { 0x33, 0x33, 0, 0, 0, 1 };
	uint32_t len = (uint32_t)m->l3_off + IP6_HDR_LEN + ND_MSG_LEN + 8;
	if (ns->type != EP_ND_NEIGHBOR_SOLICIT || cap < len)
		return 0;
	int dad = ep_addr6_is_zero(ns->src);
	/* to the solicitor's MAC: from its option, else the frame's source */
	uint8_t to_mac[6];
	memcpy(to_mac, dad ? all_nodes_mac : ns->has_lladdr ? ns->lladdr : frame + 6, 6);
	memcpy(frame, to_mac, 6);
	memcpy(frame + 6, own_mac, 6);
	uint8_t target[16], to[16];
	memcpy(target, ns->target, 16);
	memcpy(to, dad ? all_nodes : ns->src, 16);
	write_nd(frame + m->l3_off, EP_ND_NEIGHBOR_ADVERT, (uint8_t)((dad ? 0 : ND_NA_FLAG_SOLICITED) | ND_NA_FLAG_OVERRIDE),
		 target, to, target, ND_OPT_TARGET_LLADDR, answer_mac);
	return len;
}

uint32_t ep_ndp_solicit(uint8_t *out, const uint8_t src_mac[6], const uint8_t src_ip[16], const uint8_t target[16])
{
	uint8_t solicited_node[16] = { 0xff, 0x02, [11] = 1, [12] = 0xff };
	memcpy(solicited_node + 13, target + 13, 3);
	const uint8_t to_mac[6] = { 0x33, 0x33, 0xff, target[13], target[14], target[15] };
	memcpy(out, to_mac, 6);
	memcpy(out + 6, src_mac, 6);
	out[12] = 0x86;
	out[13] = 0xdd;
	write_nd(out + ETH_HDR_LEN, EP_ND_NEIGHBOR_SOLICIT, 0, src_ip, solicited_node, target, ND_OPT_SOURCE_LLADDR,
		 src_mac);
	return EP_NDP_FRAME_LEN;
}

uint32_t ep_icmp6_echo_reply(uint8_t *frame, uint32_t len, const struct ep_meta *m, const uint8_t own_mac[6])
{
	if (m->kind != EP_PKT_IPV6 || m->key.proto != IPPROTO_ICMPV6 || m->l4_off != m->l3_off + IP6_HDR_LEN ||
	    (m->flags & EP_META_FRAGMENT))
		return 0; /* extension headers (a routing header would need the reply reversed) are not answered */
	uint8_t *ip = frame + m->l3_off;
	uint8_t *icmp = frame + m->l4_off;
	if (icmp[0] != EP_ICMP6_ECHO_REQUEST || icmp[1] != 0 || ip[IP6_DST] == 0xff)
		return 0;
	uint8_t addr[16];
	memcpy(addr, ip + IP6_SRC, 16);
	memcpy(ip + IP6_SRC, ip + IP6_DST, 16);
	memcpy(ip + IP6_DST, addr, 16);
	ip[IP6_HOP_LIMIT] = ECHO_REPLY_HOP_LIMIT;
	uint16_t before = load16(icmp);
	icmp[0] = EP_ICMP6_ECHO_REPLY;
	/* swapping the addresses leaves the pseudo-header sum as it was: only the type changed */
	store16(icmp + 2, csum_apply(load16(icmp + 2), word_change(before, load16(icmp))));
	memcpy(frame, frame + 6, 6);
	memcpy(frame + 6, own_mac, 6);
	return len;
}
