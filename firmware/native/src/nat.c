/* Address/port rewriting and TTL decrement with incremental checksum fixes.
 *
 * ep_nat4 applies all four rewrites unconditionally ("0 = keep" is resolved to the old value, a
 * no-op for the checksum) and folds their checksum deltas into one update per checksum, so the
 * common cases take the same branch-free path whichever fields change. */
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "packet.h"
#include "words.h"

#define ICMP4_ECHO_REQUEST 8
#define ICMP4_ECHO_REPLY 0

static inline uint32_t load32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void store32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* One's complement "new - old" of a 16/32-bit field, as a partial sum to add to ~checksum. */
static inline uint32_t delta16(uint16_t old_val, uint16_t new_val)
{
	return (uint32_t)(uint16_t)~old_val + new_val;
}

static inline uint32_t delta32(uint32_t old_val, uint32_t new_val)
{
	return delta16((uint16_t)old_val, (uint16_t)new_val) +
	       delta16((uint16_t)(old_val >> 16), (uint16_t)(new_val >> 16));
}

/* RFC 1624 eqn. 3 with the field changes already summed into delta. */
static inline uint16_t apply_delta(uint16_t csum, uint32_t delta)
{
	uint32_t sum = (uint16_t)~csum + delta;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static bool all_zero(const uint8_t *p, uint32_t len)
{
	uint8_t any = 0;
	for (uint32_t i = 0; i < len; i++)
		any |= p[i];
	return any == 0;
}

int ep_nat4(uint8_t *frame, struct ep_meta *m, uint32_t new_src, uint16_t new_sport,
	    uint32_t new_dst, uint16_t new_dport)
{
	if (unlikely(m->kind != EP_PKT_IPV4 || (m->flags & EP_META_FRAGMENT) || m->l4_off == 0))
		return -1;

	uint8_t *ip = frame + m->l3_off;
	uint8_t *l4 = frame + m->l4_off;
	uint32_t csum_off, sport_off, dport_off;
	bool pseudo_header = true;
	uint16_t key_sport_mask = 0xffff, key_dport_mask = 0xffff;

	switch (m->key.proto) {
	case IPPROTO_TCP:
		csum_off = offsetof(struct rte_tcp_hdr, cksum);
		sport_off = offsetof(struct rte_tcp_hdr, src_port);
		dport_off = offsetof(struct rte_tcp_hdr, dst_port);
		break;
	case IPPROTO_UDP:
		csum_off = offsetof(struct rte_udp_hdr, dgram_cksum);
		sport_off = offsetof(struct rte_udp_hdr, src_port);
		dport_off = offsetof(struct rte_udp_hdr, dst_port);
		break;
	case IPPROTO_ICMP: {
		/* The echo identifier is rewritten by the port the key holds it in (see ep_parse):
		 * sport for a request, dport for a reply; the other rewrite value is ignored. Both
		 * "port" offsets name the identifier, so both stores below write the same value. */
		uint8_t type = l4[offsetof(struct rte_icmp_hdr, icmp_type)];
		if (type == ICMP4_ECHO_REQUEST) {
			new_dport = new_sport;
			key_dport_mask = 0;
		} else if (type == ICMP4_ECHO_REPLY) {
			new_sport = new_dport;
			key_sport_mask = 0;
		} else {
			return -1; /* errors quote the original packet, which would need rewriting too */
		}
		csum_off = offsetof(struct rte_icmp_hdr, icmp_cksum);
		sport_off = dport_off = offsetof(struct rte_icmp_hdr, icmp_ident);
		pseudo_header = false;
		break;
	}
	default:
		return -1;
	}

	uint8_t *src_p = ip + offsetof(struct rte_ipv4_hdr, src_addr);
	uint8_t *dst_p = ip + offsetof(struct rte_ipv4_hdr, dst_addr);
	uint32_t old_src = load32(src_p), old_dst = load32(dst_p);
	uint16_t old_sport = load16(l4 + sport_off), old_dport = load16(l4 + dport_off);
	uint32_t src = new_src ? new_src : old_src;
	uint32_t dst = new_dst ? new_dst : old_dst;
	uint16_t sport = new_sport ? new_sport : old_sport;
	uint16_t dport = new_dport ? new_dport : old_dport;

	uint32_t addr_delta = delta32(old_src, src) + delta32(old_dst, dst);
	/* ICMP: one identifier field, counted once. */
	uint32_t port_delta = delta16(old_dport, dport) +
			      (pseudo_header ? delta16(old_sport, sport) : 0);
	uint32_t l4_delta = port_delta + (pseudo_header ? addr_delta : 0);

	store32(src_p, src);
	store32(dst_p, dst);
	store16(l4 + sport_off, sport);
	store16(l4 + dport_off, dport);

	uint8_t *ip_csum_p = ip + offsetof(struct rte_ipv4_hdr, hdr_checksum);
	store16(ip_csum_p, apply_delta(load16(ip_csum_p), addr_delta));

	uint8_t *l4_csum_p = l4 + csum_off;
	uint16_t l4_csum = load16(l4_csum_p);
	uint16_t fixed = apply_delta(l4_csum, l4_delta);
	if (m->key.proto == IPPROTO_UDP) {
		/* 0 means "no checksum" and must stay so; a real checksum of 0 is sent as -0. */
		fixed = l4_csum == 0 ? 0 : (fixed == 0 ? 0xffff : fixed);
	} else if (unlikely(fixed == 0 && !pseudo_header)) {
		/* Eqn. 3 never yields -0, but an ICMP message without a pseudo header can sum to +0
		 * (all zero bytes) and then its checksum computed from scratch is 0xffff. */
		uint32_t icmp_len = (uint32_t)m->l3_off + m->l3_len - m->l4_off;
		if (all_zero(l4, csum_off) && all_zero(l4_csum_p + 2, icmp_len - csum_off - 2))
			fixed = 0xffff;
	}
	store16(l4_csum_p, fixed);

	memcpy(m->key.src, &src, 4);
	memcpy(m->key.dst, &dst, 4);
	m->key.sport = sport & key_sport_mask;
	m->key.dport = dport & key_dport_mask;
	return 0;
}

uint8_t ep_ipv4_dec_ttl(uint8_t *frame, const struct ep_meta *m)
{
	if (unlikely(m->kind != EP_PKT_IPV4))
		return 0;
	/* TTL shares a checksummed 16-bit word with the protocol byte. */
	uint8_t *word = frame + m->l3_off + offsetof(struct rte_ipv4_hdr, time_to_live);
	uint8_t *csum_p = frame + m->l3_off + offsetof(struct rte_ipv4_hdr, hdr_checksum);
	uint16_t old_word = load16(word);
	/* A TTL already at 0 stays 0 rather than wrapping to 255. */
	word[0] -= word[0] != 0;
	store16(csum_p, apply_delta(load16(csum_p), delta16(old_word, load16(word))));
	return word[0];
}

void ep_nat4_prepare(const struct ep_flow_key *k, uint32_t new_src, uint16_t new_sport, uint32_t new_dst,
		     uint16_t new_dport, uint16_t *ip_delta, uint16_t *l4_delta)
{
	uint32_t addr = delta32(ep_key_src4(k), new_src) + delta32(ep_key_dst4(k), new_dst);
	uint32_t ports = delta16(k->sport, new_sport) + delta16(k->dport, new_dport);
	*ip_delta = fold(addr);
	*l4_delta = fold(addr + ports);
}

void ep_ipv4_set_dscp(uint8_t *frame, const struct ep_meta *m, uint8_t dscp)
{
	/* TOS shares a checksummed 16-bit word with version/IHL; ECN (low 2 bits) is kept */
	uint8_t *word = frame + m->l3_off;
	uint8_t *csum_p = frame + m->l3_off + offsetof(struct rte_ipv4_hdr, hdr_checksum);
	uint16_t old_word = load16(word);
	word[1] = (uint8_t)((dscp << 2) | (word[1] & 0x03));
	store16(csum_p, apply_delta(load16(csum_p), delta16(old_word, load16(word))));
}

void ep_tcp_seq_adjust(uint8_t *frame, const struct ep_meta *m, uint32_t seq_delta, uint32_t initial_seq,
		       uint32_t ack_delta, uint32_t initial_ack)
{
	if (m->key.proto != IPPROTO_TCP || m->l4_off == 0)
		return;
	uint8_t *tcp = frame + m->l4_off;
	uint8_t *seq_p = tcp + offsetof(struct rte_tcp_hdr, sent_seq);
	uint8_t *ack_p = tcp + offsetof(struct rte_tcp_hdr, recv_ack);
	uint32_t old_seq = load32(seq_p), old_ack = load32(ack_p);
	uint32_t seq = rte_be_to_cpu_32(old_seq), ack = rte_be_to_cpu_32(old_ack);
	if ((int32_t)(seq - initial_seq) >= 0)
		seq += seq_delta;
	if ((m->tcp_flags & EP_TCP_ACK) && (int32_t)(ack - initial_ack) >= 0)
		ack += ack_delta;
	uint32_t new_seq = rte_cpu_to_be_32(seq), new_ack = rte_cpu_to_be_32(ack);
	store32(seq_p, new_seq);
	store32(ack_p, new_ack);
	uint8_t *csum_p = tcp + offsetof(struct rte_tcp_hdr, cksum);
	store16(csum_p, apply_delta(load16(csum_p), delta32(old_seq, new_seq) + delta32(old_ack, new_ack)));
}

void ep_nat4_addresses(uint8_t *frame, const struct ep_meta *m, uint32_t new_src, uint32_t new_dst)
{
	uint8_t *ip = frame + m->l3_off;
	uint8_t *src_p = ip + offsetof(struct rte_ipv4_hdr, src_addr);
	uint8_t *dst_p = ip + offsetof(struct rte_ipv4_hdr, dst_addr);
	uint32_t old_src = load32(src_p), old_dst = load32(dst_p);
	uint32_t src = new_src ? new_src : old_src, dst = new_dst ? new_dst : old_dst;
	store32(src_p, src);
	store32(dst_p, dst);
	uint8_t *csum_p = ip + offsetof(struct rte_ipv4_hdr, hdr_checksum);
	store16(csum_p, apply_delta(load16(csum_p), delta32(old_src, src) + delta32(old_dst, dst)));
}

static inline bool is_icmp4_error(uint8_t type)
{
	return type == 3 || type == 11 || type == 12; /* unreachable, time exceeded, parameter problem */
}

int ep_icmp4_quoted(const uint8_t *frame, const struct ep_meta *m, struct ep_flow_key *quoted)
{
	if (m->kind != EP_PKT_IPV4 || m->key.proto != IPPROTO_ICMP || m->l4_off == 0)
		return -1;
	const uint8_t *icmp = frame + m->l4_off;
	uint32_t end = (uint32_t)m->l3_off + m->l3_len;
	uint32_t q = (uint32_t)m->l4_off + 8;
	if (!is_icmp4_error(icmp[0]) || q + 20 > end || (frame[q] >> 4) != 4)
		return -1;
	uint32_t qihl = (uint32_t)(frame[q] & 0x0f) * 4;
	uint8_t proto = frame[q + 9];
	if (qihl < 20 || q + qihl + 8 > end || (proto != IPPROTO_TCP && proto != IPPROTO_UDP))
		return -1;
	ep_key_set4(quoted, proto, load32(frame + q + 12), load16(frame + q + qihl), load32(frame + q + 16),
		    load16(frame + q + qihl + 2));
	return 0;
}

void ep_icmp4_error_nat(uint8_t *frame, struct ep_meta *m, uint32_t new_dst, uint32_t new_qsrc, uint16_t new_qsport,
			uint32_t new_qdst, uint16_t new_qdport)
{
	uint8_t *ip = frame + m->l3_off;
	uint8_t *icmp = frame + m->l4_off;
	uint8_t *q = icmp + 8;
	uint32_t qihl = (uint32_t)(q[0] & 0x0f) * 4;
	uint8_t *ql4 = q + qihl;
	uint32_t icmp_delta = 0;

	/* quoted addresses and their header checksum */
	uint32_t old_qsrc = load32(q + 12), old_qdst = load32(q + 16);
	if (!new_qdst)
		new_qdst = old_qdst;
	uint16_t old_qcsum = load16(q + 10);
	uint32_t addr_delta = delta32(old_qsrc, new_qsrc) + delta32(old_qdst, new_qdst);
	store32(q + 12, new_qsrc);
	store32(q + 16, new_qdst);
	uint16_t new_qcsum = apply_delta(old_qcsum, addr_delta);
	store16(q + 10, new_qcsum);
	icmp_delta += addr_delta + delta16(old_qcsum, new_qcsum);

	/* quoted ports, and a quoted UDP checksum when it is there and in use */
	uint16_t old_qsport = load16(ql4), old_qdport = load16(ql4 + 2);
	if (!new_qdport)
		new_qdport = old_qdport;
	store16(ql4, new_qsport);
	store16(ql4 + 2, new_qdport);
	uint32_t port_delta = delta16(old_qsport, new_qsport) + delta16(old_qdport, new_qdport);
	icmp_delta += port_delta;
	if (q[9] == IPPROTO_UDP) {
		uint16_t old_ucsum = load16(ql4 + 6);
		if (old_ucsum != 0) {
			uint16_t new_ucsum = apply_delta(old_ucsum, addr_delta + port_delta);
			new_ucsum = new_ucsum == 0 ? 0xffff : new_ucsum;
			store16(ql4 + 6, new_ucsum);
			icmp_delta += delta16(old_ucsum, new_ucsum);
		}
	}
	uint8_t *icsum = icmp + 2;
	store16(icsum, apply_delta(load16(icsum), icmp_delta));

	/* outer destination */
	uint8_t *dst_p = ip + offsetof(struct rte_ipv4_hdr, dst_addr);
	uint32_t old_dst = load32(dst_p);
	store32(dst_p, new_dst);
	uint8_t *ipcsum = ip + offsetof(struct rte_ipv4_hdr, hdr_checksum);
	store16(ipcsum, apply_delta(load16(ipcsum), delta32(old_dst, new_dst)));
	memcpy(m->key.dst, &new_dst, 4);
}
