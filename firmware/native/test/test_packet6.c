/* Tests of the IPv6 packet functions (packet6.c, encap6.c): NAT66 checksums against a from-scratch
 * reference on random packets, neighbour discovery and ICMPv6 echo byte for byte against frames
 * scapy 2.5 built (the vectors below), and NDP validation. No EAL. TAP output. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "packet6.h"

static char failure[512];

#define EXPECT(cond, ...)                                                                        \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fail_at(__LINE__, #cond, "" __VA_ARGS__);                                \
			return;                                                                  \
		}                                                                                \
	} while (0)

static void fail_at(int line, const char *cond, const char *fmt, ...)
{
	int n = snprintf(failure, sizeof(failure), "line %d: %s", line, cond);
	if (fmt[0] && n > 0 && (size_t)n < sizeof(failure)) {
		va_list ap;
		va_start(ap, fmt);
		snprintf(failure + n, sizeof(failure) - (size_t)n, ": ");
		vsnprintf(failure + n + 2, sizeof(failure) - (size_t)n - 2, fmt, ap);
		va_end(ap);
	}
}

/* Vectors written by scapy 2.5 (Ether()/IPv6()/ICMPv6ND_NS() ... bytes()). */
static const uint8_t ns_request[86] = {
	0x33, 0x33, 0xff, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x86, 0xdd, 0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0xfd, 0x00,
	0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x02, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x01, 0xff, 0x00, 0x01, 0x00, 0x87, 0x00, 0x7b, 0x98, 0x00, 0x00,
	0x00, 0x00, 0xfd, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00,
	0x00, 0x01,
};
static const uint8_t na_expected[86] = {
	0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
	0x86, 0xdd, 0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0xfd, 0x00,
	0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x00, 0xfd, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x88, 0x00, 0x1a, 0x9a, 0x60, 0x00,
	0x00, 0x00, 0xfd, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02, 0x01, 0x02, 0x00, 0x00, 0x00,
	0x00, 0x02,
};
static const uint8_t ns_dad[78] = {
	0x33, 0x33, 0xff, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x86, 0xdd, 0x60, 0x00, 0x00, 0x00, 0x00, 0x18, 0x3a, 0xff, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x01, 0xff, 0x00, 0x01, 0x00, 0x87, 0x00, 0x7b, 0xa6, 0x00, 0x00,
	0x00, 0x00, 0xfd, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
};
static const uint8_t na_dad_expected[86] = {
	0x33, 0x33, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
	0x86, 0xdd, 0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0xfd, 0x00,
	0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x00, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0x00, 0x58, 0x9a, 0x20, 0x00,
	0x00, 0x00, 0xfd, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02, 0x01, 0x02, 0x00, 0x00, 0x00,
	0x00, 0x02,
};
static const uint8_t na_from_server[86] = {
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x10,
	0x86, 0xdd, 0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0xfd, 0x00,
	0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x10, 0xfd, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0x00, 0x1c, 0x6a, 0x60, 0x00,
	0x00, 0x00, 0xfd, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x02, 0x01, 0x02, 0x00, 0x00, 0x00,
	0x00, 0x10,
};
static const uint8_t ns_expected[86] = {
	0x33, 0x33, 0xff, 0x00, 0x00, 0x10, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
	0x86, 0xdd, 0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0xfd, 0x00,
	0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x01, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x01, 0xff, 0x00, 0x00, 0x10, 0x87, 0x00, 0x7d, 0x76, 0x00, 0x00,
	0x00, 0x00, 0xfd, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00,
	0x00, 0x02,
};
static const uint8_t echo6_request[67] = {
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x86, 0xdd, 0x60, 0x00, 0x00, 0x00, 0x00, 0x0d, 0x3a, 0x40, 0xfd, 0x00,
	0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x02, 0xfd, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x80, 0x00, 0x5d, 0xac, 0x12, 0x34,
	0x00, 0x01, 0x70, 0x69, 0x6e, 0x67, 0x36,
};
static const uint8_t echo6_reply_expected[67] = {
	0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
	0x86, 0xdd, 0x60, 0x00, 0x00, 0x00, 0x00, 0x0d, 0x3a, 0x40, 0xfd, 0x00,
	0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x00, 0xfd, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x81, 0x00, 0x5c, 0xac, 0x12, 0x34,
	0x00, 0x01, 0x70, 0x69, 0x6e, 0x67, 0x36,
};

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* RFC 1071 one big-endian word at a time, pseudo header per RFC 8200 8.1; returns the checksum the
 * segment at ip6 + 40 + ext should carry (big-endian value). */
static uint16_t ref_l4_csum6(const uint8_t *ip6, uint32_t l4_off_in_ip, uint8_t proto, uint32_t csum_off)
{
	uint32_t l4_len = 40u + get_be16(ip6 + 4) - l4_off_in_ip;
	const uint8_t *l4 = ip6 + l4_off_in_ip;
	uint32_t sum = 0;
	for (uint32_t i = 8; i < 40; i += 2)
		sum += get_be16(ip6 + i);
	sum += (l4_len >> 16) + (l4_len & 0xffff) + proto;
	for (uint32_t i = 0; i < l4_len; i += 2) {
		if (i == csum_off)
			continue;
		sum += (uint32_t)l4[i] << 8 | (i + 1 < l4_len ? l4[i + 1] : 0);
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	uint16_t csum = (uint16_t)~sum;
	return proto == IPPROTO_UDP && csum == 0 ? 0xffff : csum;
}

struct built6 {
	uint8_t frame[256];
	uint32_t len;
	uint32_t l4_in_ip; /* 40, or 48 behind a destination options header */
	uint8_t proto;
	uint32_t csum_off;
};

/* A random TCP, UDP or ICMPv6 echo packet, maybe behind a destination options header, with a
 * correct checksum. */
static void build_random6(struct built6 *b)
{
	memset(b, 0, sizeof(*b));
	uint8_t *f = b->frame;
	for (int i = 0; i < 12; i++)
		f[i] = (uint8_t)rnd();
	put_be16(f + 12, 0x86dd);
	uint8_t *ip = f + 14;
	ip[0] = 0x60;
	ip[7] = (uint8_t)(1 + rnd() % 255);
	for (int i = 8; i < 40; i++)
		ip[i] = (uint8_t)rnd();
	ip[8] = 0xfd; /* not multicast */
	ip[24] = 0xfd;
	int ext = rnd() % 2;
	uint32_t kind = rnd() % 3;
	b->proto = kind == 0 ? IPPROTO_TCP : kind == 1 ? IPPROTO_UDP : IPPROTO_ICMPV6;
	b->l4_in_ip = ext ? 48 : 40;
	if (ext) {
		ip[6] = 60; /* destination options */
		ip[40] = b->proto;
		ip[41] = 0;
		ip[42] = 1; /* PadN */
		ip[43] = 4;
	} else {
		ip[6] = b->proto;
	}
	uint8_t *l4 = ip + b->l4_in_ip;
	uint32_t payload = rnd() % 64, hdr;
	if (b->proto == IPPROTO_TCP) {
		hdr = 20;
		for (int i = 0; i < 12; i++)
			l4[i] = (uint8_t)rnd();
		l4[12] = 5 << 4;
		l4[13] = EP_TCP_ACK;
		b->csum_off = 16;
	} else if (b->proto == IPPROTO_UDP) {
		hdr = 8;
		put_be16(l4, (uint16_t)rnd());
		put_be16(l4 + 2, (uint16_t)rnd());
		put_be16(l4 + 4, (uint16_t)(hdr + payload));
		b->csum_off = 6;
	} else {
		hdr = 8;
		l4[0] = rnd() % 2 ? EP_ICMP6_ECHO_REQUEST : EP_ICMP6_ECHO_REPLY;
		put_be16(l4 + 4, (uint16_t)rnd());
		put_be16(l4 + 6, (uint16_t)rnd());
		b->csum_off = 2;
	}
	for (uint32_t i = 0; i < payload; i++)
		l4[hdr + i] = (uint8_t)rnd();
	put_be16(ip + 4, (uint16_t)(b->l4_in_ip - 40 + hdr + payload));
	put_be16(l4 + b->csum_off, ref_l4_csum6(ip, b->l4_in_ip, b->proto, b->csum_off));
	b->len = 14 + b->l4_in_ip + hdr + payload;
}

static void test_nat66_property(void)
{
	for (int round = 0; round < 20000; round++) {
		struct built6 b;
		build_random6(&b);
		struct ep_meta m;
		EXPECT(ep_parse(b.frame, b.len, &m) == EP_PKT_IPV6 && m.l4_off == 14 + b.l4_in_ip, "round %d", round);
		uint8_t src[16], dst[16];
		for (int i = 0; i < 16; i++) {
			src[i] = (uint8_t)rnd();
			dst[i] = (uint8_t)rnd();
		}
		int change = (int)(rnd() % 16);
		uint16_t sport = change & 4 ? (uint16_t)(rnd() | 1) : 0, dport = change & 8 ? (uint16_t)(rnd() | 1) : 0;
		uint8_t *ip = b.frame + 14, *l4 = ip + b.l4_in_ip;
		uint16_t old_sport, old_dport;
		memcpy(&old_sport, l4 + (b.proto == IPPROTO_ICMPV6 ? 4 : 0), 2);
		memcpy(&old_dport, l4 + (b.proto == IPPROTO_ICMPV6 ? 4 : 2), 2);
		EXPECT(ep_nat6(b.frame, &m, change & 1 ? src : NULL, sport, change & 2 ? dst : NULL, dport) == 0);
		if (change & 1)
			EXPECT(memcmp(ip + 8, src, 16) == 0 && memcmp(m.key.src, src, 16) == 0);
		if (change & 2)
			EXPECT(memcmp(ip + 24, dst, 16) == 0 && memcmp(m.key.dst, dst, 16) == 0);
		if (b.proto == IPPROTO_ICMPV6) {
			/* the identifier follows the port of the side the key keeps it on */
			uint16_t want = l4[0] == EP_ICMP6_ECHO_REQUEST ? (sport ? sport : old_sport) : (dport ? dport : old_dport);
			uint16_t id;
			memcpy(&id, l4 + 4, 2);
			EXPECT(id == want, "round %d", round);
		} else {
			uint16_t s, d;
			memcpy(&s, l4, 2);
			memcpy(&d, l4 + 2, 2);
			EXPECT(s == (sport ? sport : old_sport) && d == (dport ? dport : old_dport));
			EXPECT(m.key.sport == s && m.key.dport == d);
		}
		uint16_t want = ref_l4_csum6(ip, b.l4_in_ip, b.proto, b.csum_off);
		EXPECT(get_be16(l4 + b.csum_off) == want, "round %d proto %u: checksum %04x, from scratch %04x", round, b.proto,
		       get_be16(l4 + b.csum_off), want);
		EXPECT(ip[7] == b.frame[14 + 7]); /* NAT leaves the hop limit */
	}
}

static void test_nat66_refuses_and_udp_zero(void)
{
	struct built6 b;
	do
		build_random6(&b);
	while (b.proto != IPPROTO_UDP);
	uint8_t *l4 = b.frame + 14 + b.l4_in_ip;
	put_be16(l4 + 6, 0); /* no checksum: invalid over IPv6, left alone rather than invented */
	struct ep_meta m;
	EXPECT(ep_parse(b.frame, b.len, &m) == EP_PKT_IPV6);
	uint8_t dst[16] = { 0xfd, 9, [15] = 9 };
	EXPECT(ep_nat6(b.frame, &m, NULL, 0, dst, htons(99)) == 0 && get_be16(l4 + 6) == 0);
	/* a neighbour solicitation is no echo: nothing to rewrite */
	EXPECT(ep_parse(ns_request, sizeof(ns_request), &m) == EP_PKT_IPV6);
	uint8_t copy[sizeof(ns_request)];
	memcpy(copy, ns_request, sizeof(copy));
	EXPECT(ep_nat6(copy, &m, NULL, 0, dst, 0) == -1 && memcmp(copy, ns_request, sizeof(copy)) == 0);
}

static void test_hop_limit(void)
{
	uint8_t f[sizeof(echo6_request)];
	memcpy(f, echo6_request, sizeof(f));
	struct ep_meta m;
	EXPECT(ep_parse(f, sizeof(f), &m) == EP_PKT_IPV6);
	EXPECT(ep_ipv6_dec_hop_limit(f, &m) == 63 && f[14 + 7] == 63);
	f[14 + 7] = 1;
	EXPECT(ep_ipv6_dec_hop_limit(f, &m) == 0 && f[14 + 7] == 1);
}

static void test_ndp_advert_bytes(void)
{
	static const uint8_t own_mac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	uint8_t f[128];
	struct ep_meta m;
	struct ep_ndp nd;
	memcpy(f, ns_request, sizeof(ns_request));
	EXPECT(ep_parse(f, sizeof(ns_request), &m) == EP_PKT_IPV6 && ep_is_ndp(f, &m));
	EXPECT(ep_ndp_parse(f, &m, &nd) == 0 && nd.type == EP_ND_NEIGHBOR_SOLICIT && nd.has_lladdr);
	EXPECT(memcmp(nd.lladdr, ns_request + 6, 6) == 0 && memcmp(nd.target, na_expected + 14 + 8, 16) == 0);
	uint32_t len = ep_ndp_advert(f, sizeof(f), &m, &nd, own_mac, own_mac);
	EXPECT(len == sizeof(na_expected), "%u bytes", len);
	for (uint32_t i = 0; i < len; i++)
		EXPECT(f[i] == na_expected[i], "byte %u: %02x, scapy %02x", i, f[i], na_expected[i]);
	EXPECT(ep_ndp_advert(f, len - 1, &m, &nd, own_mac, own_mac) == 0, "no room, no reply");

	/* duplicate address detection: answered to all nodes, not solicited */
	memcpy(f, ns_dad, sizeof(ns_dad));
	EXPECT(ep_parse(f, sizeof(ns_dad), &m) == EP_PKT_IPV6 && ep_ndp_parse(f, &m, &nd) == 0 && !nd.has_lladdr);
	len = ep_ndp_advert(f, sizeof(f), &m, &nd, own_mac, own_mac);
	EXPECT(len == sizeof(na_dad_expected) && memcmp(f, na_dad_expected, len) == 0);

	/* an advertisement teaches its target's MAC */
	EXPECT(ep_parse(na_from_server, sizeof(na_from_server), &m) == EP_PKT_IPV6);
	EXPECT(ep_ndp_parse(na_from_server, &m, &nd) == 0 && nd.type == EP_ND_NEIGHBOR_ADVERT && nd.has_lladdr);
	EXPECT(memcmp(nd.lladdr, na_from_server + 6, 6) == 0 && memcmp(nd.target, na_from_server + 14 + 8, 16) == 0);
}

static void test_ndp_solicit_bytes(void)
{
	static const uint8_t own_mac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	uint8_t f[EP_NDP_FRAME_LEN];
	EXPECT(ep_ndp_solicit(f, own_mac, ns_expected + 14 + 8, ns_expected + 14 + 40 + 8) == sizeof(ns_expected));
	for (uint32_t i = 0; i < sizeof(ns_expected); i++)
		EXPECT(f[i] == ns_expected[i], "byte %u: %02x, scapy %02x", i, f[i], ns_expected[i]);
}

/* RFC 4861 7.1.1: what a node must silently discard. */
static void test_ndp_validation(void)
{
	struct ep_meta m;
	struct ep_ndp nd = { .type = 99 };
	uint8_t f[sizeof(ns_request)];
	struct {
		const char *what;
		uint32_t at;
		uint8_t value;
	} cases[] = {
		{ "hop limit 254", 14 + 7, 254 },
		{ "code 1", 14 + 40 + 1, 1 },
		{ "bad checksum", 14 + 40 + 3, 0 },
		{ "zero-length option", 14 + 40 + 25, 0 },
		{ "multicast target", 14 + 40 + 8, 0xff },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(f, ns_request, sizeof(f));
		f[cases[i].at] = cases[i].value;
		if (cases[i].at != 14 + 40 + 3 && cases[i].at != 14 + 7) {
			/* keep the checksum right so only the named fault is there */
			uint16_t c = ref_l4_csum6(f + 14, 40, IPPROTO_ICMPV6, 2);
			put_be16(f + 14 + 40 + 2, c);
		} else if (cases[i].at == 14 + 40 + 3) {
			f[cases[i].at] = (uint8_t)(ns_request[cases[i].at] ^ 0x5a);
		}
		EXPECT(ep_parse(f, sizeof(f), &m) == EP_PKT_IPV6, "%s", cases[i].what);
		EXPECT(ep_ndp_parse(f, &m, &nd) == -1 && nd.type == 99, "%s accepted", cases[i].what);
	}
	/* a truncated message: 23 bytes of ICMPv6 */
	memcpy(f, ns_request, sizeof(f));
	put_be16(f + 14 + 4, 23);
	EXPECT(ep_parse(f, 14 + 40 + 23, &m) == EP_PKT_IPV6 && ep_ndp_parse(f, &m, &nd) == -1);
	/* DAD (source ::) carrying a source link-layer option */
	memcpy(f, ns_request, sizeof(f));
	memset(f + 14 + 8, 0, 16);
	put_be16(f + 14 + 40 + 2, ref_l4_csum6(f + 14, 40, IPPROTO_ICMPV6, 2));
	EXPECT(ep_parse(f, sizeof(f), &m) == EP_PKT_IPV6 && ep_ndp_parse(f, &m, &nd) == -1);
	/* echo is not neighbour discovery */
	EXPECT(ep_parse(echo6_request, sizeof(echo6_request), &m) == EP_PKT_IPV6 && !ep_is_ndp(echo6_request, &m));
}

static void test_icmp6_echo_reply_bytes(void)
{
	static const uint8_t own_mac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	uint8_t f[sizeof(echo6_request)];
	memcpy(f, echo6_request, sizeof(f));
	struct ep_meta m;
	EXPECT(ep_parse(f, sizeof(f), &m) == EP_PKT_IPV6);
	EXPECT(ep_icmp6_echo_reply(f, sizeof(f), &m, own_mac) == sizeof(f));
	for (uint32_t i = 0; i < sizeof(f); i++)
		EXPECT(f[i] == echo6_reply_expected[i], "byte %u: %02x, scapy %02x", i, f[i], echo6_reply_expected[i]);
	/* a reply is not answered */
	EXPECT(ep_parse(f, sizeof(f), &m) == EP_PKT_IPV6 && ep_icmp6_echo_reply(f, sizeof(f), &m, own_mac) == 0);
}

/* ---- tunnels over IPv6 (encap6.c) ---- */

/* The RFC 1071 sum of len bytes, one big-endian word at a time, folded (the reference). */
static uint16_t ref_sum(const uint8_t *p, uint32_t len)
{
	uint32_t sum = 0;
	for (uint32_t i = 0; i < len; i += 2)
		sum += (uint32_t)p[i] << 8 | (i + 1 < len ? p[i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static const uint8_t tun_src[16] = { 0xfd, 0, 0, 2, [15] = 1 };
static const uint8_t tun_dst[16] = { 0xfd, 0, 0, 2, [15] = 0x11 };

static void test_encap6_ipip_gre_bytes(void)
{
	struct built6 b;
	do
		build_random6(&b);
	while (b.l4_in_ip != 40);
	const uint32_t inner_len = b.len - 14;
	for (int gre = 0; gre <= 1; gre++) {
		uint8_t f[14 + 44 + 256];
		memcpy(f, b.frame, 14);
		uint32_t outer = ep_encap6_header(f + 14, gre ? EP_ENCAP_GRE : EP_ENCAP_IPV6, tun_src, tun_dst, 0xabcdef12u,
						  inner_len);
		EXPECT(outer == (gre ? 44u : 40u), "%u bytes", outer);
		const uint8_t *o = f + 14;
		/* version 6, traffic class 0, the low 20 bits of the flow label */
		EXPECT(o[0] == 0x60 && o[1] == 0x0d && o[2] == 0xef && o[3] == 0x12, "%02x %02x %02x %02x", o[0], o[1], o[2],
		       o[3]);
		EXPECT(get_be16(o + 4) == inner_len + (gre ? 4 : 0), "payload length %u", get_be16(o + 4));
		EXPECT(o[6] == (gre ? 47 : 41) && o[7] == 64, "next header %u, hop limit %u", o[6], o[7]);
		EXPECT(memcmp(o + 8, tun_src, 16) == 0 && memcmp(o + 24, tun_dst, 16) == 0);
		if (gre)
			EXPECT(o[40] == 0 && o[41] == 0 && o[42] == 0x86 && o[43] == 0xdd, "GRE header");
		memcpy(f + 14 + outer, b.frame + 14, inner_len);
		/* what the server's stack sees: an IPv6 packet whose payload is the inner one, unchanged */
		struct ep_meta m;
		EXPECT(ep_parse(f, 14 + outer + inner_len, &m) == EP_PKT_IPV6);
		EXPECT(m.l3_len == outer + inner_len && m.key.proto == (gre ? 47 : 41) && m.l4_off == 0, "l3_len %u proto %u",
		       m.l3_len, m.key.proto);
		EXPECT(memcmp(f + 14 + outer, b.frame + 14, inner_len) == 0);
	}
	uint8_t out[64];
	EXPECT(ep_encap6_header(out, 4, tun_src, tun_dst, 0, 60) == 0, "IPv4 in IPv6 is not built");
	EXPECT(ep_encap6_header(out, EP_ENCAP_IPV6, tun_src, tun_dst, 0, 65536) == 0, "too long");
	EXPECT(ep_encap6_header(out, EP_ENCAP_IPV6, tun_src, tun_dst, 0, 65535) == 40 && get_be16(out + 4) == 65535);
	EXPECT(ep_encap6_header(out, EP_ENCAP_GRE, tun_src, tun_dst, 0, 65532) == 0, "too long");
	EXPECT(ep_encap6_header(out, EP_ENCAP_GRE, tun_src, tun_dst, 0, 65531) == 44 && get_be16(out + 4) == 65535);
	EXPECT(ep_encap6_gue(out, tun_src, tun_dst, 0, htons(1), htons(6080), 65524, 0) == 0, "too long");
	EXPECT(ep_encap6_gue(out, tun_src, tun_dst, 0, htons(1), htons(6080), 65523, 0) == EP_GUE6_OVERHEAD &&
	       get_be16(out + 4) == 65535 && get_be16(out + 44) == 65535);
}

/* GUE over IPv6 on random TCP/UDP/ICMPv6 packets (with and without an extension header): the
 * payload sum read off the inner checksum equals the sum of the bytes, and the UDP checksum of the
 * outer packet equals one computed from scratch over pseudo header, UDP, GUE and inner packet. */
static void test_encap6_gue_checksum(void)
{
	int derived = 0, summed = 0;
	for (int round = 0; round < 20000; round++) {
		struct built6 b;
		build_random6(&b);
		if (b.proto == IPPROTO_UDP && rnd() % 8 == 0)
			put_be16(b.frame + 14 + b.l4_in_ip + 6, 0); /* no checksum: nothing to derive from */
		struct ep_meta m;
		EXPECT(ep_parse(b.frame, b.len, &m) == EP_PKT_IPV6, "round %d", round);
		const uint32_t inner_len = b.len - 14;
		const uint16_t bytes_sum = ref_sum(b.frame + 14, inner_len);
		uint32_t sum;
		if (ep_ipv6_packet_sum(b.frame, &m, &sum) == 0) {
			derived++;
			while (sum >> 16)
				sum = (sum & 0xffff) + (sum >> 16);
			EXPECT(b.l4_in_ip == 40 && (b.proto != IPPROTO_UDP || get_be16(b.frame + 14 + 40 + 6) != 0),
			       "round %d: derived where it must not", round);
			/* byte order: the library sums words as stored, the reference big-endian */
			EXPECT(ntohs((uint16_t)sum) == bytes_sum, "round %d: derived %04x, bytes %04x", round, ntohs((uint16_t)sum),
			       bytes_sum);
		} else {
			summed++;
			EXPECT(b.l4_in_ip != 40 || (b.proto == IPPROTO_UDP && get_be16(b.frame + 14 + 40 + 6) == 0),
			       "round %d: not derived although it could be", round);
			sum = htons(bytes_sum);
		}
		uint8_t f[14 + EP_GUE6_OVERHEAD + 256];
		memcpy(f, b.frame, 14);
		uint16_t sport = (uint16_t)(0xc000 | (rnd() & 0x3fff));
		EXPECT(ep_encap6_gue(f + 14, tun_src, tun_dst, rnd(), htons(sport), htons(6080), inner_len, sum) ==
		       EP_GUE6_OVERHEAD);
		memcpy(f + 14 + EP_GUE6_OVERHEAD, b.frame + 14, inner_len);
		const uint8_t *o = f + 14, *udp = o + 40;
		EXPECT(get_be16(o + 4) == 12 + inner_len && o[6] == IPPROTO_UDP && o[7] == 64);
		EXPECT(get_be16(udp) == sport && get_be16(udp + 2) == 6080 && get_be16(udp + 4) == 12 + inner_len);
		EXPECT(udp[8] == 0 && udp[9] == 41 && udp[10] == 0 && udp[11] == 0, "GUE header");
		uint16_t want = ref_l4_csum6(o, 40, IPPROTO_UDP, 6);
		EXPECT(get_be16(udp + 6) == want, "round %d: UDP checksum %04x, from scratch %04x", round, get_be16(udp + 6),
		       want);
		EXPECT(memcmp(f + 14 + EP_GUE6_OVERHEAD, b.frame + 14, inner_len) == 0);
		struct ep_meta om;
		EXPECT(ep_parse(f, 14 + EP_GUE6_OVERHEAD + inner_len, &om) == EP_PKT_IPV6 && om.key.proto == IPPROTO_UDP &&
		       om.payload_off == 14 + 48);
	}
	EXPECT(derived > 1000 && summed > 1000, "derived %d, summed %d", derived, summed);

	/* a fragment carries no whole L4 segment to derive from */
	struct built6 b;
	do
		build_random6(&b);
	while (b.l4_in_ip != 40);
	struct ep_meta m;
	EXPECT(ep_parse(b.frame, b.len, &m) == EP_PKT_IPV6);
	m.flags |= EP_META_FRAGMENT;
	uint32_t sum;
	EXPECT(ep_ipv6_packet_sum(b.frame, &m, &sum) == -1);
}

static const struct {
	const char *name;
	void (*run)(void);
} tests[] = {
	{ "nat66: 20000 random TCP/UDP/ICMPv6-echo rewrites, L4 checksum equals a from-scratch one", test_nat66_property },
	{ "nat66: UDP checksum 0 stays 0, non-echo ICMPv6 refused untouched", test_nat66_refuses_and_udp_zero },
	{ "ipv6 hop limit decrement, 1 dies", test_hop_limit },
	{ "ndp: NS -> NA byte for byte as scapy (solicited and DAD), NA target learned", test_ndp_advert_bytes },
	{ "ndp: our NS byte for byte as scapy", test_ndp_solicit_bytes },
	{ "ndp: invalid NS discarded (hop limit, code, checksum, options, target, length, DAD)", test_ndp_validation },
	{ "icmpv6 echo reply byte for byte as scapy", test_icmp6_echo_reply_bytes },
	{ "tunnels over IPv6: IPv6-in-IPv6 and GRE outer headers, lengths, next headers, limits", test_encap6_ipip_gre_bytes },
	{ "tunnels over IPv6: GUE UDP checksum equals a from-scratch one on 20000 random packets", test_encap6_gue_checksum },
};

int main(void)
{
	size_t n = sizeof(tests) / sizeof(tests[0]);
	int failed = 0;
	printf("1..%zu\n", n);
	for (size_t i = 0; i < n; i++) {
		failure[0] = 0;
		tests[i].run();
		if (failure[0]) {
			failed++;
			printf("not ok %zu - %s # %s\n", i + 1, tests[i].name, failure);
		} else {
			printf("ok %zu - %s\n", i + 1, tests[i].name);
		}
	}
	return failed ? 1 : 0;
}
