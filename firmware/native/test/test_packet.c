/* Unit tests for the packet library (parse.c, checksum.c, nat.c, encap.c, local_reply.c, and the
 * worker's inline fast path in fast_path.h).
 *
 * Frames are written out byte by byte below; their checksums and the expected rewritten frames
 * were produced by scapy, so they do not depend on this library's checksum code. The property
 * tests check incremental checksum fixes against sums recomputed from scratch, both with the
 * library and with the independent byte-wise reference in this file.
 * Output is TAP; the exit status is non-zero when any test fails. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fast_path.h"
#include "packet.h"

/* ---- harness ---- */

static char failure[512];

/* Records the first failure of the running test and makes it return. */
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
		snprintf(failure + n, sizeof(failure) - (size_t)n, " (");
		n += 2;
		vsnprintf(failure + n, sizeof(failure) - (size_t)n, fmt, ap);
		va_end(ap);
		strncat(failure, ")", sizeof(failure) - strlen(failure) - 1);
	}
}

/* Deterministic pseudo-random numbers (xorshift64*) so a failure can be replayed. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

static uint32_t rnd_below(uint32_t n)
{
	return rnd() % n;
}

/* ---- byte helpers and the reference checksum ---- */

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The checksum as stored in the packet (network order), as the library returns it. */
static uint16_t stored16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

static uint32_t ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	return htonl((uint32_t)a << 24 | (uint32_t)b << 16 | (uint32_t)c << 8 | d);
}

#define NO_SKIP UINT32_MAX

/* RFC 1071, one big-endian word at a time; skip_off names a checksum field counted as zero. */
static uint32_t ref_sum(const uint8_t *p, uint32_t len, uint32_t skip_off, uint32_t sum)
{
	for (uint32_t i = 0; i < len; i += 2) {
		if (i == skip_off)
			continue;
		sum += (uint32_t)p[i] << 8 | (i + 1 < len ? p[i + 1] : 0);
	}
	return sum;
}

static uint16_t ref_finish(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

static uint16_t ref_ip_csum(const uint8_t *ip)
{
	return ref_finish(ref_sum(ip, (ip[0] & 0x0f) * 4u, 10, 0));
}

/* TCP/UDP/ICMP checksum of the IPv4 datagram at ip, whose length is its total length field. */
static uint16_t ref_l4_csum(const uint8_t *ip)
{
	uint32_t hl = (ip[0] & 0x0f) * 4u, l4_len = get_be16(ip + 2) - hl;
	uint8_t proto = ip[9];
	uint32_t csum_off = proto == IPPROTO_TCP ? 16 : proto == IPPROTO_UDP ? 6 : 2;
	uint32_t sum = ref_sum(ip + hl, l4_len, csum_off, 0);
	if (proto == IPPROTO_ICMP)
		return ref_finish(sum);
	sum = ref_sum(ip + 12, 8, NO_SKIP, sum) + proto + l4_len;
	uint16_t csum = ref_finish(sum);
	return proto == IPPROTO_UDP && csum == 0 ? 0xffff : csum;
}

/* Parses a copy of exactly len bytes on the heap, so AddressSanitizer sees any read past it. */
static int parse_exact(const uint8_t *frame, uint32_t len, struct ep_meta *m)
{
	uint8_t *copy = malloc(len ? len : 1);
	memcpy(copy, frame, len);
	int kind = ep_parse(copy, len, m);
	free(copy);
	return kind;
}

static const uint8_t mac_a[6] = {0x02, 0, 0, 0, 0, 0x01};
static const uint8_t mac_b[6] = {0x02, 0, 0, 0, 0, 0x02};

/* ---- frames (scapy-made checksums) ---- */

static const uint8_t tcp_syn[58] = {
	/* Ethernet */
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x08, 0x00,
	/* IPv4 */
	0x45, 0x00, 0x00, 0x2c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x14, 0x96,
	0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02,
	/* TCP, MSS option */
	0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00,
	0x60, 0x02, 0xff, 0xff, 0xe3, 0x8d, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
};
static const uint8_t tcp_syn_dnat[58] = {
	/* Ethernet */
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x08, 0x00,
	/* IPv4: dst 192.168.1.10 */
	0x45, 0x00, 0x00, 0x2c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x5c, 0xe5,
	0x0a, 0x00, 0x00, 0x01, 0xc0, 0xa8, 0x01, 0x0a,
	/* TCP: dport 8080 */
	0x9c, 0x40, 0x1f, 0x90, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00,
	0x60, 0x02, 0xff, 0xff, 0x0c, 0x9d, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
};
static const uint8_t udp_abc[45] = {
	/* Ethernet */
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x08, 0x00,
	/* IPv4 */
	0x45, 0x00, 0x00, 0x1f, 0x00, 0x07, 0x00, 0x00, 0x40, 0x11, 0x66, 0xc5,
	0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02,
	/* UDP */
	0x14, 0xe9, 0x00, 0x35, 0x00, 0x0b, 0x12, 0x55,
	/* payload, odd length */
	0x61, 0x62, 0x63,
};
static const uint8_t icmp_echo_request[50] = {
	/* Ethernet */
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x08, 0x00,
	/* IPv4, TTL 63 */
	0x45, 0x00, 0x00, 0x24, 0x00, 0x09, 0x00, 0x00, 0x3f, 0x01, 0x67, 0xce,
	0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02,
	/* ICMP echo request, id 0x4d2 seq 1 */
	0x08, 0x00, 0x3b, 0x99, 0x04, 0xd2, 0x00, 0x01,
	/* payload */
	0x70, 0x69, 0x6e, 0x67, 0x64, 0x61, 0x74, 0x61,
};
static const uint8_t icmp_echo_reply_expected[50] = {
	/* Ethernet: back to the sender */
	0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
	0x08, 0x00,
	/* IPv4: addresses swapped, TTL 64 */
	0x45, 0x00, 0x00, 0x24, 0x00, 0x09, 0x00, 0x00, 0x40, 0x01, 0x66, 0xce,
	0x0a, 0x00, 0x00, 0x02, 0x0a, 0x00, 0x00, 0x01,
	/* ICMP echo reply */
	0x00, 0x00, 0x43, 0x99, 0x04, 0xd2, 0x00, 0x01,
	/* payload */
	0x70, 0x69, 0x6e, 0x67, 0x64, 0x61, 0x74, 0x61,
};
static const uint8_t arp_request[60] = {
	/* Ethernet broadcast */
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x08, 0x06,
	/* ARP who-has 10.0.0.2 tell 10.0.0.1 */
	0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00,
	0x00, 0x01, 0x0a, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x0a, 0x00, 0x00, 0x02,
	/* padding */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};
static const uint8_t arp_reply_expected[60] = {
	/* Ethernet */
	0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
	0x08, 0x06,
	/* ARP 10.0.0.2 is-at 02:00:00:00:00:02 */
	0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00,
	0x00, 0x02, 0x0a, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x0a, 0x00, 0x00, 0x01,
	/* padding */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};
static const uint8_t ipv6_ext_tcp[100] = {
	/* Ethernet */
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x86, 0xdd,
	/* IPv6 */
	0x60, 0x00, 0x00, 0x00, 0x00, 0x2e, 0x00, 0x40, 0x20, 0x01, 0x0d, 0xb8,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x02,
	/* hop-by-hop options */
	0x3c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
	/* destination options */
	0x2b, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
	/* routing */
	0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	/* TCP PSH|ACK */
	0x04, 0xd2, 0x01, 0xbb, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x50, 0x18, 0x20, 0x00, 0xc5, 0x5f, 0x00, 0x00,
	/* payload */
	0x68, 0x69,
};
static const uint8_t ipv6_fragment_later[78] = {
	/* Ethernet */
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x86, 0xdd,
	/* IPv6 */
	0x60, 0x00, 0x00, 0x00, 0x00, 0x18, 0x2c, 0x40, 0x20, 0x01, 0x0d, 0xb8,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x02,
	/* fragment: offset 185*8, next UDP */
	0x11, 0x00, 0x05, 0xc8, 0x00, 0x00, 0xab, 0xcd,
	/* data */
	0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78,
	0x78, 0x78, 0x78, 0x78,
};

/* ---- parse ---- */

static void check_key4(const struct ep_meta *m, uint8_t proto, uint32_t src, uint16_t sport,
		       uint32_t dst, uint16_t dport, int *ok)
{
	struct ep_flow_key want;
	ep_key_set4(&want, proto, src, htons(sport), dst, htons(dport));
	*ok = memcmp(&want, &m->key, sizeof(want)) == 0;
}

static void test_parse_ipv4_tcp(void)
{
	struct ep_meta m;
	int ok;
	EXPECT(parse_exact(tcp_syn, sizeof(tcp_syn), &m) == EP_PKT_IPV4);
	EXPECT(m.drop == EP_DROP_NONE && m.flags == 0 && m.vlan_tci == 0);
	EXPECT(m.l3_off == 14 && m.l4_off == 34 && m.l3_len == 44);
	EXPECT(m.payload_off == 58, "MSS option makes the TCP header 24 bytes: %u", m.payload_off);
	EXPECT(m.tcp_flags == EP_TCP_SYN);
	check_key4(&m, IPPROTO_TCP, ip4(10, 0, 0, 1), 40000, ip4(10, 0, 0, 2), 80, &ok);
	EXPECT(ok);
	EXPECT(ep_ipv4_header_csum(tcp_syn + 14, 20) == stored16(tcp_syn + 24));
	EXPECT(ep_ipv4_l4_csum(tcp_syn + 14, 44) == stored16(tcp_syn + 50));

	uint8_t ecn[sizeof(tcp_syn)];
	memcpy(ecn, tcp_syn, sizeof(ecn));
	ecn[47] |= 0xc0; /* ECE and CWR are not among the EP_TCP_* flags */
	EXPECT(parse_exact(ecn, sizeof(ecn), &m) == EP_PKT_IPV4 && m.tcp_flags == EP_TCP_SYN);
}

static void test_parse_ipv4_udp_padded(void)
{
	uint8_t frame[60] = {0};
	struct ep_meta m;
	int ok;
	memcpy(frame, udp_abc, sizeof(udp_abc));
	/* Ethernet padding after the datagram is not part of it. */
	memset(frame + sizeof(udp_abc), 0xee, sizeof(frame) - sizeof(udp_abc));
	EXPECT(parse_exact(frame, sizeof(frame), &m) == EP_PKT_IPV4);
	EXPECT(m.l3_len == 31 && m.l4_off == 34 && m.payload_off == 42 && m.tcp_flags == 0);
	check_key4(&m, IPPROTO_UDP, ip4(10, 0, 0, 1), 5353, ip4(10, 0, 0, 2), 53, &ok);
	EXPECT(ok);
	EXPECT(ep_ipv4_l4_csum(frame + 14, m.l3_len) == stored16(frame + 40), "odd payload length");
}

static void test_parse_icmp_keys(void)
{
	uint8_t frame[sizeof(icmp_echo_request)];
	struct ep_meta req, rep, other;
	struct ep_flow_key reversed;
	int ok;
	EXPECT(parse_exact(icmp_echo_request, sizeof(frame), &req) == EP_PKT_IPV4);
	check_key4(&req, IPPROTO_ICMP, ip4(10, 0, 0, 1), 0x4d2, ip4(10, 0, 0, 2), 0, &ok);
	EXPECT(ok, "echo request: identifier is the source port");
	EXPECT(req.l4_off == 34 && req.payload_off == 42);
	EXPECT(parse_exact(icmp_echo_reply_expected, sizeof(frame), &rep) == EP_PKT_IPV4);
	ep_key_reverse(&req.key, &reversed);
	EXPECT(memcmp(&reversed, &rep.key, sizeof(reversed)) == 0, "reply key reverses request key");

	memcpy(frame, icmp_echo_request, sizeof(frame));
	frame[34] = 3; /* destination unreachable: no identifier */
	EXPECT(parse_exact(frame, sizeof(frame), &other) == EP_PKT_IPV4);
	EXPECT(other.key.sport == 0 && other.key.dport == 0 && other.l4_off == 34);
}

/* Inserts an 802.1Q tag (TCI 0xa064: priority 5, VLAN 100) after the MAC addresses. */
static uint32_t add_vlan(uint8_t *out, const uint8_t *frame, uint32_t len)
{
	memcpy(out, frame, 12);
	const uint8_t tag[4] = {0x81, 0x00, 0xa0, 0x64};
	memcpy(out + 12, tag, 4);
	memcpy(out + 16, frame + 12, len - 12);
	return len + 4;
}

static void test_parse_vlan(void)
{
	uint8_t frame[sizeof(tcp_syn) + 4];
	struct ep_meta m;
	int ok;
	uint32_t len = add_vlan(frame, tcp_syn, sizeof(tcp_syn));
	EXPECT(parse_exact(frame, len, &m) == EP_PKT_IPV4);
	EXPECT(m.flags == EP_META_VLAN && m.vlan_tci == 0xa064);
	EXPECT(m.l3_off == 18 && m.l4_off == 38 && m.payload_off == 62);
	check_key4(&m, IPPROTO_TCP, ip4(10, 0, 0, 1), 40000, ip4(10, 0, 0, 2), 80, &ok);
	EXPECT(ok);
	for (uint32_t cut = 14; cut < 18; cut++) {
		EXPECT(parse_exact(frame, cut, &m) == EP_PKT_DROP && m.drop == EP_DROP_TRUNCATED_L2,
		       "tag cut at %u", cut);
	}
}

/* Every proper prefix of a valid frame is dropped with the reason for where it was cut. */
static void test_parse_every_truncation(void)
{
	uint8_t tagged[sizeof(tcp_syn) + 4];
	struct {
		const uint8_t *frame;
		uint32_t len, l3, l3_hdr;
	} cases[] = {
		{tcp_syn, sizeof(tcp_syn), 14, 20},
		{tagged, add_vlan(tagged, tcp_syn, sizeof(tcp_syn)), 18, 20},
		{udp_abc, sizeof(udp_abc), 14, 20},
		{icmp_echo_request, sizeof(icmp_echo_request), 14, 20},
		{ipv6_ext_tcp, sizeof(ipv6_ext_tcp), 14, 40},
		{ipv6_fragment_later, sizeof(ipv6_fragment_later), 14, 40},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		for (uint32_t len = 0; len < cases[c].len; len++) {
			struct ep_meta m;
			uint8_t want = len < cases[c].l3			     ? EP_DROP_TRUNCATED_L2
				       : len < cases[c].l3 + cases[c].l3_hdr ? EP_DROP_TRUNCATED_L3
									     : EP_DROP_BAD_IP_TOTAL_LEN;
			EXPECT(parse_exact(cases[c].frame, len, &m) == EP_PKT_DROP,
			       "case %zu len %u", c, len);
			EXPECT(m.drop == want, "case %zu len %u: %s, want %s", c, len,
			       ep_drop_reason_names[m.drop], ep_drop_reason_names[want]);
		}
	}
	uint8_t arp_cut[42];
	memcpy(arp_cut, arp_request, sizeof(arp_cut));
	for (uint32_t len = 14; len < 42; len++) {
		struct ep_meta m;
		EXPECT(parse_exact(arp_cut, len, &m) == EP_PKT_DROP && m.drop == EP_DROP_TRUNCATED_L3);
	}
}

struct malformed {
	const char *what;
	const uint8_t *base;
	uint32_t len;
	uint32_t off;  /* byte to overwrite... */
	uint8_t value; /* ...with this */
	uint8_t want;
};

static void test_parse_malformations(void)
{
	const struct malformed cases[] = {
		{"IPv4 version 6", tcp_syn, 58, 14, 0x65, EP_DROP_BAD_IP_VERSION},
		{"IPv4 IHL 4", tcp_syn, 58, 14, 0x44, EP_DROP_BAD_IP_HEADER_LEN},
		{"IPv4 IHL 15 beyond total length 44", tcp_syn, 58, 14, 0x4f,
		 EP_DROP_BAD_IP_HEADER_LEN},
		{"total length 19 < IHL", tcp_syn, 58, 17, 19, EP_DROP_BAD_IP_HEADER_LEN},
		{"total length 45 > bytes", tcp_syn, 58, 17, 45, EP_DROP_BAD_IP_TOTAL_LEN},
		{"total length 0x102c > bytes", tcp_syn, 58, 16, 0x10, EP_DROP_BAD_IP_TOTAL_LEN},
		{"TCP header cut by total length", tcp_syn, 58, 17, 20 + 19,
		 EP_DROP_TRUNCATED_L4},
		{"TCP data offset 4", tcp_syn, 58, 46, 0x40, EP_DROP_BAD_L4_HEADER},
		{"TCP data offset 7 beyond datagram", tcp_syn, 58, 46, 0x70,
		 EP_DROP_BAD_L4_HEADER},
		{"UDP length 7", udp_abc, 45, 39, 7, EP_DROP_BAD_L4_HEADER},
		{"UDP length 12 beyond datagram", udp_abc, 45, 39, 12, EP_DROP_BAD_L4_HEADER},
		{"UDP header cut by total length", udp_abc, 45, 17, 27, EP_DROP_TRUNCATED_L4},
		{"ICMP header cut by total length", icmp_echo_request, 50, 17, 27,
		 EP_DROP_TRUNCATED_L4},
		{"IPv6 version 4", ipv6_ext_tcp, 100, 14, 0x40, EP_DROP_BAD_IP_VERSION},
		{"IPv6 payload length 47 > bytes", ipv6_ext_tcp, 100, 19, 47,
		 EP_DROP_BAD_IP_TOTAL_LEN},
		{"IPv6 hop-by-hop length beyond payload", ipv6_ext_tcp, 100, 55, 9,
		 EP_DROP_BAD_IP_HEADER_LEN},
		{"IPv6 ext header cut by payload length", ipv6_ext_tcp, 100, 19, 17,
		 EP_DROP_BAD_IP_HEADER_LEN},
		{"IPv6 TCP cut by payload length", ipv6_ext_tcp, 100, 19, 24 + 19,
		 EP_DROP_TRUNCATED_L4},
		{"IPv6 TCP data offset 15", ipv6_ext_tcp, 100, 90, 0xf0, EP_DROP_BAD_L4_HEADER},
		{"IPv6 fragment header cut", ipv6_fragment_later, 78, 19, 7,
		 EP_DROP_BAD_IP_HEADER_LEN},
	};
	uint8_t frame[128];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ep_meta m;
		memcpy(frame, cases[i].base, cases[i].len);
		frame[cases[i].off] = cases[i].value;
		EXPECT(parse_exact(frame, cases[i].len, &m) == EP_PKT_DROP, "%s", cases[i].what);
		EXPECT(m.drop == cases[i].want, "%s: got %s", cases[i].what,
		       ep_drop_reason_names[m.drop]);
	}
}

static void test_parse_ipv4_options(void)
{
	/* tcp_syn with one 4-byte option word (NOPs) between IPv4 and TCP. */
	uint8_t frame[sizeof(tcp_syn) + 4];
	struct ep_meta m;
	int ok;
	memcpy(frame, tcp_syn, 34);
	memset(frame + 34, 0x01, 4);
	memcpy(frame + 38, tcp_syn + 34, sizeof(tcp_syn) - 34);
	frame[14] = 0x46;
	frame[17] = 48;
	EXPECT(parse_exact(frame, sizeof(frame), &m) == EP_PKT_IPV4, "%s",
	       ep_drop_reason_names[m.drop]);
	EXPECT(m.flags == EP_META_IP_OPTIONS && m.l4_off == 38 && m.payload_off == 62);
	check_key4(&m, IPPROTO_TCP, ip4(10, 0, 0, 1), 40000, ip4(10, 0, 0, 2), 80, &ok);
	EXPECT(ok);
}

static void test_parse_ipv4_fragments(void)
{
	uint8_t frame[sizeof(udp_abc)];
	struct ep_meta m;
	int ok;
	/* First fragment: MF set, its UDP length describes the whole datagram (more than here). */
	memcpy(frame, udp_abc, sizeof(frame));
	frame[20] = 0x20;
	put_be16(frame + 38, 1400);
	EXPECT(parse_exact(frame, sizeof(frame), &m) == EP_PKT_IPV4, "%s",
	       ep_drop_reason_names[m.drop]);
	EXPECT(m.flags == EP_META_FRAGMENT && m.l4_off == 34);
	check_key4(&m, IPPROTO_UDP, ip4(10, 0, 0, 1), 5353, ip4(10, 0, 0, 2), 53, &ok);
	EXPECT(ok);
	/* A later fragment has no L4 header, whatever its bytes look like. */
	memcpy(frame, udp_abc, sizeof(frame));
	put_be16(frame + 20, 185);
	frame[38] = frame[39] = 0;
	EXPECT(parse_exact(frame, sizeof(frame), &m) == EP_PKT_IPV4);
	EXPECT(m.flags == EP_META_FRAGMENT && m.l4_off == 0 && m.payload_off == 0);
	check_key4(&m, IPPROTO_UDP, ip4(10, 0, 0, 1), 0, ip4(10, 0, 0, 2), 0, &ok);
	EXPECT(ok);
}

static void test_parse_ipv6(void)
{
	static const uint8_t src[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
	static const uint8_t dst[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 2};
	uint8_t frame[sizeof(ipv6_ext_tcp)];
	struct ep_meta m;
	EXPECT(parse_exact(ipv6_ext_tcp, sizeof(ipv6_ext_tcp), &m) == EP_PKT_IPV6);
	EXPECT(m.l3_off == 14 && m.l3_len == 86 && m.flags == 0);
	EXPECT(m.l4_off == 14 + 40 + 24 && m.payload_off == 98, "after three extension headers");
	EXPECT(m.key.family == 6 && m.key.proto == IPPROTO_TCP);
	EXPECT(m.key.sport == htons(1234) && m.key.dport == htons(443));
	EXPECT(memcmp(m.key.src, src, 16) == 0 && memcmp(m.key.dst, dst, 16) == 0);
	EXPECT(m.key.pad[0] == 0 && m.key.pad[1] == 0);
	EXPECT(m.tcp_flags == (EP_TCP_PSH | EP_TCP_ACK));

	EXPECT(parse_exact(ipv6_fragment_later, sizeof(ipv6_fragment_later), &m) == EP_PKT_IPV6);
	EXPECT(m.flags == EP_META_FRAGMENT && m.l4_off == 0 && m.key.proto == IPPROTO_UDP);
	EXPECT(m.key.sport == 0 && m.key.dport == 0);

	/* The same fragment header at offset 0 (first fragment, M set) is followed by UDP. */
	uint8_t first[sizeof(ipv6_fragment_later)];
	memcpy(first, ipv6_fragment_later, sizeof(first));
	first[56] = 0x00;
	first[57] = 0x01;
	put_be16(first + 62, 0x1111);
	put_be16(first + 64, 0x2222);
	put_be16(first + 66, 1000); /* UDP length of the reassembled datagram */
	EXPECT(parse_exact(first, sizeof(first), &m) == EP_PKT_IPV6, "%s",
	       ep_drop_reason_names[m.drop]);
	EXPECT(m.flags == EP_META_FRAGMENT && m.l4_off == 62);
	EXPECT(m.key.sport == htons(0x1111) && m.key.dport == htons(0x2222));

	/* ICMPv6 echo request / reply keys; no next header. */
	memcpy(frame, ipv6_ext_tcp, sizeof(frame));
	frame[78 - 8] = IPPROTO_ICMPV6; /* routing header's next header */
	frame[78] = 128;
	put_be16(frame + 82, 0x4242);
	EXPECT(parse_exact(frame, sizeof(frame), &m) == EP_PKT_IPV6);
	EXPECT(m.key.proto == IPPROTO_ICMPV6 && m.key.sport == htons(0x4242) && m.key.dport == 0);
	frame[78] = 129;
	EXPECT(parse_exact(frame, sizeof(frame), &m) == EP_PKT_IPV6);
	EXPECT(m.key.sport == 0 && m.key.dport == htons(0x4242));
	frame[78 - 8] = IPPROTO_NONE;
	EXPECT(parse_exact(frame, sizeof(frame), &m) == EP_PKT_IPV6);
	EXPECT(m.key.proto == IPPROTO_NONE && m.l4_off == 0 && m.key.sport == 0);
}

static void test_parse_ipv6_ext_chain_limit(void)
{
	/* IPv6 + n destination options headers (8 bytes each) + 8 bytes of UDP. */
	uint8_t frame[14 + 40 + 16 * 8 + 8];
	for (uint32_t n = 0; n <= 16; n++) {
		struct ep_meta m;
		uint32_t len = 14 + 40 + n * 8 + 8;
		memset(frame, 0, sizeof(frame));
		memcpy(frame, ipv6_ext_tcp, 54);
		put_be16(frame + 18, (uint16_t)(n * 8 + 8));
		frame[20] = n ? IPPROTO_DSTOPTS : IPPROTO_UDP;
		for (uint32_t i = 0; i < n; i++)
			frame[54 + i * 8] = i + 1 < n ? IPPROTO_DSTOPTS : IPPROTO_UDP;
		put_be16(frame + 54 + n * 8 + 4, 8);
		int kind = parse_exact(frame, len, &m);
		if (n <= 8)
			EXPECT(kind == EP_PKT_IPV6 && m.l4_off == 54 + n * 8, "%u headers", n);
		else
			EXPECT(kind == EP_PKT_DROP && m.drop == EP_DROP_BAD_IP_HEADER_LEN,
			       "%u headers", n);
	}
}

static void test_parse_arp_and_other(void)
{
	struct ep_meta m;
	uint32_t ip;
	uint8_t mac[6], frame[64];
	EXPECT(parse_exact(arp_request, sizeof(arp_request), &m) == EP_PKT_ARP);
	EXPECT(m.l3_off == 14 && m.l3_len == 28 && m.l4_off == 0);
	EXPECT(ep_arp_op(arp_request, &m) == 1);
	EXPECT(ep_arp_target_ip(arp_request, &m) == ip4(10, 0, 0, 2));
	EXPECT(ep_arp_sender(arp_request, &m, &ip, mac) == 0);
	EXPECT(ip == ip4(10, 0, 0, 1) && memcmp(mac, mac_a, 6) == 0);
	memcpy(frame, arp_request, 60);
	frame[19] = 0x10; /* 16-byte protocol addresses: not IPv4 over Ethernet */
	EXPECT(parse_exact(frame, 60, &m) == EP_PKT_ARP);
	EXPECT(ep_arp_sender(frame, &m, &ip, mac) == -1 && ep_arp_target_ip(frame, &m) == 0);
	EXPECT(parse_exact(tcp_syn, sizeof(tcp_syn), &m) == EP_PKT_IPV4);
	EXPECT(ep_arp_op(tcp_syn, &m) == 0 && ep_arp_sender(tcp_syn, &m, &ip, mac) == -1);

	memcpy(frame, tcp_syn, sizeof(tcp_syn));
	put_be16(frame + 12, 0x88cc); /* LLDP */
	EXPECT(parse_exact(frame, sizeof(tcp_syn), &m) == EP_PKT_OTHER && m.l3_off == 14);
	put_be16(frame + 12, 0x88a8); /* 802.1ad outer tag: only one 802.1Q tag is understood */
	EXPECT(parse_exact(frame, sizeof(tcp_syn), &m) == EP_PKT_OTHER);
	uint32_t len = add_vlan(frame, tcp_syn, sizeof(tcp_syn));
	put_be16(frame + 16, 0x8100); /* a second 802.1Q tag */
	EXPECT(parse_exact(frame, len, &m) == EP_PKT_OTHER && m.flags == EP_META_VLAN);
	EXPECT(m.l3_off == 18);
}

static void test_drop_reason_names(void)
{
	EXPECT(strcmp(ep_drop_reason_names[EP_DROP_NONE], "none") == 0);
	EXPECT(strcmp(ep_drop_reason_names[EP_DROP_TRUNCATED_L4], "truncated_l4") == 0);
	EXPECT(strcmp(ep_drop_reason_names[EP_DROP_BAD_PORT], "bad_port") == 0);
	for (int i = 0; i < EP_DROP__COUNT; i++) {
		EXPECT(ep_drop_reason_names[i] != NULL && ep_drop_reason_names[i][0], "%d", i);
		for (int j = 0; j < i; j++)
			EXPECT(strcmp(ep_drop_reason_names[i], ep_drop_reason_names[j]) != 0);
	}
}

/* ---- checksums, NAT, TTL ---- */

static void test_checksum_vectors(void)
{
	/* The classic example header (checksum 0xb861). */
	uint8_t ip[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
			  0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
	EXPECT(ep_ipv4_header_csum(ip, 20) == htons(0xb861));
	uint16_t old_word = stored16(ip + 8);
	ip[8] = 0x3f;
	uint16_t fixed = ep_csum_update16(stored16(ip + 10), old_word, stored16(ip + 8));
	EXPECT(fixed == ep_ipv4_header_csum(ip, 20) && fixed == ref_ip_csum(ip));
	uint32_t old_src;
	memcpy(&old_src, ip + 12, 4);
	uint32_t new_src = ip4(203, 0, 113, 77);
	memcpy(ip + 12, &new_src, 4);
	fixed = ep_csum_update32(fixed, old_src, new_src);
	EXPECT(fixed == ep_ipv4_header_csum(ip, 20) && fixed == ref_ip_csum(ip));
	/* The stored checksum does not take part in the sum. */
	memcpy(ip + 10, &fixed, 2);
	EXPECT(ep_ipv4_header_csum(ip, 20) == fixed);
	EXPECT(ep_ipv4_l4_csum(tcp_syn + 14, 44) == htons(0xe38d));
	EXPECT(ep_ipv4_l4_csum(icmp_echo_request + 14, 36) == htons(0x3b99));
	EXPECT(ep_ipv4_l4_csum(udp_abc + 14, 31) == htons(0x1255));
}

static void test_nat_tcp_bytes(void)
{
	uint8_t frame[sizeof(tcp_syn)];
	struct ep_meta m;
	int ok;
	memcpy(frame, tcp_syn, sizeof(frame));
	EXPECT(ep_parse(frame, sizeof(frame), &m) == EP_PKT_IPV4);
	EXPECT(ep_nat4(frame, &m, 0, 0, ip4(192, 168, 1, 10), htons(8080)) == 0);
	EXPECT(memcmp(frame, tcp_syn_dnat, sizeof(frame)) == 0, "matches scapy's rewrite");
	check_key4(&m, IPPROTO_TCP, ip4(10, 0, 0, 1), 40000, ip4(192, 168, 1, 10), 8080, &ok);
	EXPECT(ok, "key follows the rewrite");
}

struct built {
	uint8_t frame[160];
	uint32_t len, l3;
	uint8_t proto, icmp_type;
};

/* A random well-formed IPv4 TCP, UDP or ICMP echo frame with correct (reference) checksums. */
static void build_random_ipv4(struct built *b)
{
	static const uint8_t protos[4] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMP};
	uint32_t pick = rnd_below(4);
	uint32_t hl = 20 + (rnd_below(4) == 0 ? 4 * (1 + rnd_below(3)) : 0);
	uint32_t payload = rnd_below(41);
	memset(b->frame, 0, sizeof(b->frame));
	b->proto = protos[pick];
	b->l3 = rnd_below(4) == 0 ? 18 : 14;
	for (int i = 0; i < 12; i++)
		b->frame[i] = (uint8_t)rnd();
	if (b->l3 == 18) {
		put_be16(b->frame + 12, 0x8100);
		put_be16(b->frame + 14, (uint16_t)rnd());
	}
	put_be16(b->frame + b->l3 - 2, 0x0800);

	uint8_t *ip = b->frame + b->l3, *l4 = ip + hl;
	uint32_t l4_hdr = b->proto == IPPROTO_TCP ? 20 : 8;
	uint32_t total = hl + l4_hdr + payload;
	ip[0] = (uint8_t)(0x40 | hl / 4);
	ip[1] = (uint8_t)rnd();
	put_be16(ip + 2, (uint16_t)total);
	put_be16(ip + 4, (uint16_t)rnd());
	ip[6] = rnd_below(2) ? 0x40 : 0; /* DF, never a fragment */
	ip[8] = (uint8_t)(1 + rnd_below(255));
	ip[9] = b->proto;
	for (int i = 12; i < 20; i++)
		ip[i] = (uint8_t)rnd();
	memset(ip + 20, 0x01, hl - 20); /* NOP options */
	for (uint32_t i = 0; i < l4_hdr + payload; i++)
		l4[i] = (uint8_t)rnd();
	if (b->proto == IPPROTO_TCP) {
		l4[12] = 0x50;
	} else if (b->proto == IPPROTO_UDP) {
		put_be16(l4 + 4, (uint16_t)(8 + payload));
	} else {
		b->icmp_type = pick == 2 ? 8 : 0;
		l4[0] = b->icmp_type;
		l4[1] = 0;
	}
	memcpy(ip + 10, (uint16_t[1]){ref_ip_csum(ip)}, 2);
	uint32_t csum_off = b->proto == IPPROTO_TCP ? 16 : b->proto == IPPROTO_UDP ? 6 : 2;
	uint16_t l4_csum = ref_l4_csum(ip);
	/* Sometimes a UDP datagram without checksum. */
	if (b->proto == IPPROTO_UDP && rnd_below(5) == 0)
		l4_csum = 0;
	memcpy(l4 + csum_off, &l4_csum, 2);
	b->len = b->l3 + total + rnd_below(8); /* some trailing padding */
}

static uint16_t rnd_port_or_keep(void)
{
	return rnd_below(2) ? 0 : (uint16_t)(1 + rnd_below(65535));
}

static uint32_t rnd_addr_or_keep(void)
{
	return rnd_below(2) ? 0 : rnd() | 1;
}

static void test_nat_property(void)
{
	enum { ROUNDS = 50000 };
	for (int round = 0; round < ROUNDS; round++) {
		struct built b;
		struct ep_meta m, again;
		build_random_ipv4(&b);
		EXPECT(ep_parse(b.frame, b.len, &m) == EP_PKT_IPV4, "round %d: %s", round,
		       ep_drop_reason_names[m.drop]);
		uint8_t *ip = b.frame + b.l3, *l4 = b.frame + m.l4_off;
		uint32_t csum_off = b.proto == IPPROTO_TCP ? 16 : b.proto == IPPROTO_UDP ? 6 : 2;
		uint16_t udp_csum_before = stored16(l4 + csum_off);
		uint32_t old_src, old_dst;
		memcpy(&old_src, ip + 12, 4);
		memcpy(&old_dst, ip + 16, 4);
		uint16_t old_sport = stored16(l4), old_dport = stored16(l4 + 2);
		uint16_t old_id = stored16(l4 + 4);

		uint32_t nsrc = rnd_addr_or_keep(), ndst = rnd_addr_or_keep();
		uint16_t nsport = rnd_port_or_keep(), ndport = rnd_port_or_keep();
		EXPECT(ep_nat4(b.frame, &m, nsrc, nsport, ndst, ndport) == 0, "round %d", round);

		uint32_t src, dst;
		memcpy(&src, ip + 12, 4);
		memcpy(&dst, ip + 16, 4);
		EXPECT(src == (nsrc ? nsrc : old_src) && dst == (ndst ? ndst : old_dst));
		if (b.proto == IPPROTO_ICMP) {
			uint16_t id_rewrite = b.icmp_type == 8 ? nsport : ndport;
			EXPECT(stored16(l4 + 4) == (id_rewrite ? id_rewrite : old_id), "round %d",
			       round);
		} else {
			EXPECT(stored16(l4) == (nsport ? nsport : old_sport));
			EXPECT(stored16(l4 + 2) == (ndport ? ndport : old_dport));
		}

		uint16_t ip_csum = stored16(ip + 10);
		EXPECT(ip_csum == ep_ipv4_header_csum(ip, l4 - ip) && ip_csum == ref_ip_csum(ip),
		       "round %d: IPv4 header checksum", round);
		uint16_t l4_csum = stored16(l4 + csum_off);
		if (b.proto == IPPROTO_UDP && udp_csum_before == 0) {
			EXPECT(l4_csum == 0, "round %d: UDP without checksum stays without", round);
		} else {
			EXPECT(l4_csum == ep_ipv4_l4_csum(ip, m.l3_len) && l4_csum == ref_l4_csum(ip),
			       "round %d: proto %u L4 checksum %04x, from scratch %04x", round,
			       b.proto, ntohs(l4_csum), ntohs(ref_l4_csum(ip)));
		}
		EXPECT(ep_parse(b.frame, b.len, &again) == EP_PKT_IPV4);
		EXPECT(memcmp(&again.key, &m.key, sizeof(m.key)) == 0, "round %d: key updated", round);
	}
}

/* Parses a copy of exactly len bytes with both parsers: the fast path must fill the same meta as
 * ep_parse for every frame, the ones it takes and the ones it hands on. */
static int parsers_agree(const uint8_t *frame, uint32_t len)
{
	struct ep_meta general, fast;
	uint8_t *copy = malloc(len ? len : 1);
	memcpy(copy, frame, len);
	int kind_general = ep_parse(copy, len, &general);
	int kind_fast = ep_parse_fast(copy, len, &fast);
	free(copy);
	return kind_general == kind_fast && memcmp(&general, &fast, sizeof(general)) == 0;
}

static void test_parse_fast_matches(void)
{
	const struct {
		const uint8_t *frame;
		uint32_t len;
	} bases[] = {
		{tcp_syn, sizeof(tcp_syn)}, {udp_abc, sizeof(udp_abc)}, {icmp_echo_request, sizeof(icmp_echo_request)},
		{arp_request, sizeof(arp_request)}, {ipv6_ext_tcp, sizeof(ipv6_ext_tcp)},
	};
	for (size_t c = 0; c < sizeof(bases) / sizeof(bases[0]); c++)
		for (uint32_t len = 0; len <= bases[c].len; len++)
			EXPECT(parsers_agree(bases[c].frame, len), "base %zu cut to %u bytes", c, len);
	enum { ROUNDS = 200000 };
	for (int round = 0; round < ROUNDS; round++) {
		struct built b;
		build_random_ipv4(&b);
		/* the fields the fast path checks (ethertype, IPv4 and L4 headers), damaged now and then */
		uint32_t damage = rnd_below(4);
		for (uint32_t d = 0; d < damage; d++)
			b.frame[12 + rnd_below(48)] = (uint8_t)(rnd_below(2) ? rnd() : rnd_below(2) ? 0 : 0x45);
		uint32_t len = rnd_below(8) == 0 ? rnd_below(b.len + 1) : b.len;
		EXPECT(parsers_agree(b.frame, len), "round %d (len %u)", round, len);
	}
}

/* The prepared NAT (deltas folded once per flow, a TTL decrement folded in) writes the same bytes
 * as ep_nat4 followed by ep_ipv4_dec_ttl. */
static void test_nat_prepared_matches(void)
{
	enum { ROUNDS = 50000 };
	for (int round = 0; round < ROUNDS; round++) {
		struct built b;
		struct ep_meta m, general_meta;
		do
			build_random_ipv4(&b);
		while (b.proto == IPPROTO_ICMP);
		EXPECT(ep_parse(b.frame, b.len, &m) == EP_PKT_IPV4);
		uint8_t general[sizeof(b.frame)];
		memcpy(general, b.frame, sizeof(general));
		general_meta = m;
		uint32_t nsrc = rnd() | 1, ndst = rnd() | 1;
		uint16_t nsport = (uint16_t)(1 + rnd_below(65535)), ndport = (uint16_t)(1 + rnd_below(65535));
		int dec_ttl = rnd_below(2) && b.frame[b.l3 + 8] > 1;

		EXPECT(ep_nat4(general, &general_meta, nsrc, nsport, ndst, ndport) == 0);
		if (dec_ttl)
			ep_ipv4_dec_ttl(general, &general_meta);

		uint16_t ip_delta, l4_delta;
		ep_nat4_prepare(&m.key, nsrc, nsport, ndst, ndport, &ip_delta, &l4_delta);
		uint32_t ttl_delta = 0;
		if (dec_ttl) {
			uint8_t *ttl = b.frame + b.l3 + 8;
			uint16_t before = ep_load16(ttl);
			ttl[0]--;
			ttl_delta = ep_csum_delta16(before, ep_load16(ttl));
		}
		ep_nat4_prepared(b.frame, &m, nsrc, nsport, ndst, ndport, ip_delta, l4_delta, ttl_delta);
		EXPECT(memcmp(general, b.frame, b.len) == 0, "round %d: proto %u, TTL %s", round, b.proto,
		       dec_ttl ? "decremented" : "kept");
	}
}

/* A UDP checksum that becomes 0 must be sent as 0xffff (0 would mean "no checksum"). */
static void test_nat_udp_checksum_becoming_zero(void)
{
	uint8_t frame[sizeof(udp_abc)];
	struct ep_meta m;
	uint32_t port;
	memcpy(frame, udp_abc, sizeof(frame));
	for (port = 1; port <= 0xffff; port++) {
		put_be16(frame + 36, (uint16_t)port);
		if (ref_l4_csum(frame + 14) == 0xffff) /* the sum computes to 0 */
			break;
	}
	EXPECT(port <= 0xffff);
	memcpy(frame, udp_abc, sizeof(frame));
	EXPECT(ep_parse(frame, sizeof(frame), &m) == EP_PKT_IPV4);
	EXPECT(ep_nat4(frame, &m, 0, 0, 0, htons((uint16_t)port)) == 0);
	EXPECT(get_be16(frame + 36) == port && stored16(frame + 40) == 0xffff);
	EXPECT(ep_ipv4_l4_csum(frame + 14, 31) == 0xffff);
}

/* An all-zero ICMP echo reply sums to +0: its checksum is 0xffff and stays so under NAT. */
static void test_nat_icmp_all_zero(void)
{
	uint8_t frame[42];
	struct ep_meta m;
	memcpy(frame, icmp_echo_request, 42);
	put_be16(frame + 16, 28);
	memset(frame + 34, 0, 8);
	memcpy(frame + 24, (uint16_t[1]){ref_ip_csum(frame + 14)}, 2);
	put_be16(frame + 36, 0xffff);
	EXPECT(ref_l4_csum(frame + 14) == 0xffff);
	EXPECT(ep_parse(frame, sizeof(frame), &m) == EP_PKT_IPV4);
	EXPECT(ep_nat4(frame, &m, 0, 0, ip4(10, 9, 9, 9), 0) == 0);
	EXPECT(stored16(frame + 36) == 0xffff && ep_ipv4_l4_csum(frame + 14, 28) == 0xffff);
	EXPECT(stored16(frame + 24) == ref_ip_csum(frame + 14));
}

static void test_nat_icmp_identifier(void)
{
	uint8_t frame[sizeof(icmp_echo_request)];
	struct ep_meta m;
	memcpy(frame, icmp_echo_request, sizeof(frame));
	EXPECT(ep_parse(frame, sizeof(frame), &m) == EP_PKT_IPV4);
	EXPECT(ep_nat4(frame, &m, 0, htons(0x1111), 0, htons(0x2222)) == 0);
	EXPECT(get_be16(frame + 38) == 0x1111, "a request's identifier follows the source port");
	EXPECT(m.key.sport == htons(0x1111) && m.key.dport == 0);
	EXPECT(stored16(frame + 36) == ref_l4_csum(frame + 14));

	memcpy(frame, icmp_echo_reply_expected, sizeof(frame));
	EXPECT(ep_parse(frame, sizeof(frame), &m) == EP_PKT_IPV4);
	EXPECT(ep_nat4(frame, &m, 0, htons(0x1111), 0, 0) == 0);
	EXPECT(get_be16(frame + 38) == 0x4d2, "a reply ignores the source port");
	EXPECT(ep_nat4(frame, &m, 0, 0, 0, htons(0x3333)) == 0);
	EXPECT(get_be16(frame + 38) == 0x3333, "a reply's identifier follows the destination port");
	EXPECT(m.key.sport == 0 && m.key.dport == htons(0x3333));
	EXPECT(stored16(frame + 36) == ref_l4_csum(frame + 14));
}

static void test_nat_refuses(void)
{
	uint8_t frame[128], before[128];
	struct ep_meta m;
	const struct {
		const char *what;
		const uint8_t *base;
		uint32_t len, off;
		uint8_t value;
	} cases[] = {
		{"first fragment", tcp_syn, sizeof(tcp_syn), 20, 0x20},
		{"later fragment", tcp_syn, sizeof(tcp_syn), 21, 0x10},
		{"ICMP destination unreachable", icmp_echo_request, sizeof(icmp_echo_request), 34, 3},
		{"GRE", tcp_syn, sizeof(tcp_syn), 23, 47},
		{"IPv6", ipv6_ext_tcp, sizeof(ipv6_ext_tcp), 0, 0x02},
		{"ARP", arp_request, sizeof(arp_request), 0, 0xff},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(frame, cases[i].base, cases[i].len);
		frame[cases[i].off] = cases[i].value;
		memcpy(before, frame, cases[i].len);
		EXPECT(ep_parse(frame, cases[i].len, &m) != EP_PKT_DROP, "%s", cases[i].what);
		EXPECT(ep_nat4(frame, &m, ip4(1, 2, 3, 4), 1, ip4(5, 6, 7, 8), 2) == -1, "%s",
		       cases[i].what);
		EXPECT(memcmp(frame, before, cases[i].len) == 0, "%s: untouched", cases[i].what);
	}
}

static void test_ttl(void)
{
	uint8_t frame[sizeof(tcp_syn)];
	struct ep_meta m;
	memcpy(frame, tcp_syn, sizeof(frame));
	EXPECT(ep_parse(frame, sizeof(frame), &m) == EP_PKT_IPV4);
	EXPECT(ep_ipv4_dec_ttl(frame, &m) == 63 && frame[22] == 63);
	EXPECT(stored16(frame + 24) == ref_ip_csum(frame + 14));
	for (int round = 0; round < 2000; round++) {
		struct built b;
		build_random_ipv4(&b);
		uint8_t *ip = b.frame + b.l3;
		ip[8] = (uint8_t)round;
		memcpy(ip + 10, (uint16_t[1]){ref_ip_csum(ip)}, 2);
		EXPECT(ep_parse(b.frame, b.len, &m) == EP_PKT_IPV4);
		uint8_t ttl = ep_ipv4_dec_ttl(b.frame, &m);
		uint8_t want = (uint8_t)round ? (uint8_t)(round - 1) : 0;
		EXPECT(ttl == want && ip[8] == want, "TTL %u -> %u", (uint8_t)round, ttl);
		EXPECT(stored16(ip + 10) == ref_ip_csum(ip), "TTL %u", (uint8_t)round);
	}
	memcpy(frame, arp_request, sizeof(frame));
	EXPECT(ep_parse(frame, sizeof(frame), &m) == EP_PKT_ARP);
	EXPECT(ep_ipv4_dec_ttl(frame, &m) == 0 && memcmp(frame, arp_request, sizeof(frame)) == 0);
}

/* ---- encapsulation ---- */

static void test_encap(void)
{
	uint8_t frame[14 + 24 + 44];
	struct ep_meta m;
	const uint8_t ipip[20] = {0x45, 0x00, 0x00, 64, 0, 0, 0x00, 0x00, 64, 4, 0, 0,
				  192, 0, 2, 1, 198, 51, 100, 7};
	memcpy(frame, tcp_syn, 14);
	EXPECT(ep_encap4_header(frame + 14, EP_ENCAP_IPIP, ip4(192, 0, 2, 1), ip4(198, 51, 100, 7),
				44) == 20);
	EXPECT(memcmp(frame + 14, ipip, 10) == 0 && memcmp(frame + 26, ipip + 12, 8) == 0);
	EXPECT(stored16(frame + 24) == ref_ip_csum(frame + 14));
	memcpy(frame + 34, tcp_syn + 14, 44);
	EXPECT(ep_parse(frame, 14 + 20 + 44, &m) == EP_PKT_IPV4);
	EXPECT(m.key.proto == 4 && m.l3_len == 64 && m.l4_off == 0 && m.flags == 0);

	EXPECT(ep_encap4_header(frame + 14, EP_ENCAP_GRE, ip4(192, 0, 2, 1), ip4(198, 51, 100, 7),
				44) == 24);
	EXPECT(get_be16(frame + 16) == 68 && frame[22] == 64 && frame[23] == 47);
	EXPECT(stored16(frame + 24) == ref_ip_csum(frame + 14));
	EXPECT(frame[34] == 0 && frame[35] == 0 && get_be16(frame + 36) == 0x0800, "GRE header");
	memcpy(frame + 38, tcp_syn + 14, 44);
	EXPECT(ep_parse(frame, sizeof(frame), &m) == EP_PKT_IPV4 && m.l3_len == 68);

	EXPECT(ep_encap4_header(frame + 14, 6, 1, 2, 44) == 0, "unknown tunnel kind");
	EXPECT(ep_encap4_header(frame + 14, EP_ENCAP_IPIP, 1, 2, 65536 - 20) == 0, "too long");
	EXPECT(ep_encap4_header(frame + 14, EP_ENCAP_IPIP, 1, 2, 65535 - 20) == 20);
	EXPECT(get_be16(frame + 16) == 65535);
	EXPECT(ep_encap4_header(frame + 14, EP_ENCAP_GRE, 1, 2, 65535 - 20) == 0, "too long");
}

/* ---- local responders ---- */

static void test_arp_reply(void)
{
	uint8_t frame[64];
	struct ep_meta m;
	memcpy(frame, arp_request, 60);
	EXPECT(ep_parse(frame, 60, &m) == EP_PKT_ARP);
	EXPECT(ep_arp_reply(frame, 60, &m, mac_b, ip4(10, 0, 0, 3)) == 0, "not our address");
	EXPECT(memcmp(frame, arp_request, 60) == 0);
	EXPECT(ep_arp_reply(frame, 60, &m, mac_b, ip4(10, 0, 0, 2)) == 60);
	EXPECT(memcmp(frame, arp_reply_expected, 60) == 0);
	EXPECT(ep_parse(frame, 60, &m) == EP_PKT_ARP);
	EXPECT(ep_arp_reply(frame, 60, &m, mac_b, ip4(10, 0, 0, 1)) == 0, "a reply is not answered");

	/* Without padding the reply is as short as the request. */
	memcpy(frame, arp_request, 42);
	EXPECT(ep_parse(frame, 42, &m) == EP_PKT_ARP);
	EXPECT(ep_arp_reply(frame, 42, &m, mac_b, ip4(10, 0, 0, 2)) == 42);
	EXPECT(memcmp(frame, arp_reply_expected, 42) == 0);

	/* Tagged: the tag stays, padding starts after the ARP header. */
	uint8_t want[64];
	uint32_t len = add_vlan(frame, arp_request, 60);
	add_vlan(want, arp_reply_expected, 60);
	EXPECT(ep_parse(frame, len, &m) == EP_PKT_ARP && m.l3_off == 18);
	EXPECT(ep_arp_reply(frame, len, &m, mac_b, ip4(10, 0, 0, 2)) == 60);
	EXPECT(memcmp(frame, want, 60) == 0);
}

static void test_arp_request(void)
{
	uint8_t out[64];
	memset(out, 0xcc, sizeof(out));
	EXPECT(ep_arp_request(out, mac_a, ip4(10, 0, 0, 1), ip4(10, 0, 0, 2)) == 60);
	EXPECT(memcmp(out, arp_request, 60) == 0);
	EXPECT(out[60] == 0xcc, "writes 60 bytes only");
}

static void test_icmp_echo_reply(void)
{
	uint8_t frame[60];
	struct ep_meta m;
	memcpy(frame, icmp_echo_request, 50);
	EXPECT(ep_parse(frame, 50, &m) == EP_PKT_IPV4);
	EXPECT(ep_icmp_echo_reply(frame, 50, &m, mac_b) == 50);
	EXPECT(memcmp(frame, icmp_echo_reply_expected, 50) == 0);
	EXPECT(ep_parse(frame, 50, &m) == EP_PKT_IPV4);
	EXPECT(ep_icmp_echo_reply(frame, 50, &m, mac_b) == 0, "a reply is not answered");

	/* Padding after a short request is cleared in the reply. */
	memcpy(frame, icmp_echo_request, 50);
	memset(frame + 50, 0xee, 10);
	EXPECT(ep_parse(frame, 60, &m) == EP_PKT_IPV4);
	EXPECT(ep_icmp_echo_reply(frame, 60, &m, mac_b) == 60);
	EXPECT(memcmp(frame, icmp_echo_reply_expected, 50) == 0);
	for (int i = 50; i < 60; i++)
		EXPECT(frame[i] == 0, "byte %d", i);

	memcpy(frame, icmp_echo_request, 50);
	frame[49] ^= 1;
	EXPECT(ep_parse(frame, 50, &m) == EP_PKT_IPV4);
	EXPECT(ep_icmp_echo_reply(frame, 50, &m, mac_b) == 0, "bad checksum");
	memcpy(frame, icmp_echo_request, 50);
	frame[20] = 0x20;
	EXPECT(ep_parse(frame, 50, &m) == EP_PKT_IPV4);
	EXPECT(ep_icmp_echo_reply(frame, 50, &m, mac_b) == 0, "fragment");
	EXPECT(ep_parse(tcp_syn, sizeof(tcp_syn), &m) == EP_PKT_IPV4);
	memcpy(frame, tcp_syn, sizeof(tcp_syn));
	EXPECT(ep_icmp_echo_reply(frame, sizeof(tcp_syn), &m, mac_b) == 0, "TCP");
}

/* ---- cross-check against scapy ---- */

/* Writes one line per frame: kind, frame hex, L4 offset, protocol, key ports, NAT arguments
 * (host order, 0 = keep) and the frame as scapy rewrites it ("-" when not NATed). */
static const char scapy_script[] =
	"import random, sys\n"
	"try:\n"
	"    from scapy.all import Ether, Dot1Q, IP, IPOption_NOP, TCP, UDP, ICMP, Raw, IPv6,\\\n"
	"        IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, IPv6ExtHdrRouting, IPv6ExtHdrFragment\n"
	"except ImportError:\n"
	"    sys.exit(0)\n"
	"random.seed(20240601)\n"
	"r = random.randint\n"
	"def addr(): return '%d.%d.%d.%d' % (r(1, 223), r(0, 255), r(0, 255), r(1, 254))\n"
	"for i in range(300):\n"
	"    kind = random.choice(['tcp', 'udp', 'udp0', 'echo', 'echoreply', 'v6'])\n"
	"    l2 = Ether(src='02:00:00:00:00:01', dst='02:00:00:00:00:02')\n"
	"    if r(0, 3) == 0: l2 = l2 / Dot1Q(vlan=r(1, 4094), prio=r(0, 7))\n"
	"    data = Raw(bytes(r(0, 255) for _ in range(r(0, 40))))\n"
	"    sp, dp = r(1, 65535), r(1, 65535)\n"
	"    if kind == 'v6':\n"
	"        l3 = IPv6(src='2001:db8::%x' % r(1, 65535), dst='2001:db8::%x' % r(1, 65535))\n"
	"        for _ in range(r(0, 3)):\n"
	"            l3 = l3 / random.choice([IPv6ExtHdrHopByHop(), IPv6ExtHdrDestOpt(),\n"
	"                IPv6ExtHdrRouting(), IPv6ExtHdrFragment(m=1, id=r(0, 99999))])\n"
	"    else:\n"
	"        l3 = IP(src=addr(), dst=addr(), ttl=r(1, 255), id=r(0, 65535))\n"
	"        if r(0, 4) == 0: l3.options = [IPOption_NOP()] * (4 * r(1, 3))\n"
	"    if kind in ('tcp', 'v6') and r(0, 1): l4 = TCP(sport=sp, dport=dp, seq=r(0, 2**32 - 1),\n"
	"        flags=random.choice(['S', 'SA', 'A', 'PA', 'FA', 'R']))\n"
	"    elif kind in ('tcp', 'v6'): l4 = UDP(sport=sp, dport=dp)\n"
	"    elif kind.startswith('udp'): l4 = UDP(sport=sp, dport=dp)\n"
	"    else: l4 = ICMP(type=8 if kind == 'echo' else 0, id=sp, seq=r(0, 65535))\n"
	"    if kind == 'udp0': l4.chksum = 0\n"
	"    pkt = Ether(bytes(l2 / l3 / l4 / data))\n"
	"    raw = bytes(pkt)\n"
	"    l4cls = type(l4)\n"
	"    l4off = len(raw) - len(bytes(pkt[l4cls]))\n"
	"    proto = {TCP: 6, UDP: 17, ICMP: 1}[l4cls]\n"
	"    ksp, kdp = (sp, 0) if kind == 'echo' else (0, sp) if kind == 'echoreply' else (sp, dp)\n"
	"    if kind == 'v6':\n"
	"        print(kind, raw.hex(), l4off, proto, ksp, kdp, 0, 0, 0, 0, '-')\n"
	"        continue\n"
	"    ns, nd = random.choice([0, r(1, 2**32 - 1)]), random.choice([0, r(1, 2**32 - 1)])\n"
	"    nsp, ndp = random.choice([0, r(1, 65535)]), random.choice([0, r(1, 65535)])\n"
	"    out = pkt.copy()\n"
	"    def dotted(v): return '%d.%d.%d.%d' % (v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255)\n"
	"    if ns: out[IP].src = dotted(ns)\n"
	"    if nd: out[IP].dst = dotted(nd)\n"
	"    if kind == 'echo' and nsp: out[ICMP].id = nsp\n"
	"    elif kind == 'echoreply' and ndp: out[ICMP].id = ndp\n"
	"    elif proto != 1:\n"
	"        if nsp: out[l4cls].sport = nsp\n"
	"        if ndp: out[l4cls].dport = ndp\n"
	"    del out[IP].chksum\n"
	"    if kind != 'udp0': del out[l4cls].chksum\n"
	"    print(kind, raw.hex(), l4off, proto, ksp, kdp, ns, nsp, nd, ndp, bytes(out).hex())\n";

static uint32_t from_hex(const char *hex, uint8_t *out, uint32_t max)
{
	uint32_t n = 0;
	for (; hex[0] && hex[1] && n < max; hex += 2) {
		unsigned byte;
		if (sscanf(hex, "%2x", &byte) != 1)
			break;
		out[n++] = (uint8_t)byte;
	}
	return n;
}

static int scapy_lines;

static void test_scapy_cross_check(void)
{
	const char *python = getenv("EP_PYTHON") ? getenv("EP_PYTHON") : "python3";
	char path[] = "/tmp/ep_scapy_XXXXXX";
	int fd = mkstemp(path);
	EXPECT(fd >= 0);
	EXPECT(write(fd, scapy_script, sizeof(scapy_script) - 1) == (ssize_t)sizeof(scapy_script) - 1);
	close(fd);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "%s %s", python, path);
	FILE *lines = popen(cmd, "r");
	EXPECT(lines != NULL);
	static char line[4096], kind[16], raw_hex[1024], want_hex[1024];
	int bad = 0;
	while (!bad && fgets(line, sizeof(line), lines)) {
		unsigned l4off, proto, ksp, kdp, nsp, ndp;
		unsigned long ns, nd;
		uint8_t frame[512], want[512];
		struct ep_meta m;
		if (sscanf(line, "%15s %1023s %u %u %u %u %lu %u %lu %u %1023s", kind, raw_hex, &l4off,
			   &proto, &ksp, &kdp, &ns, &nsp, &nd, &ndp, want_hex) != 11) {
			bad = 1;
			break;
		}
		scapy_lines++;
		uint32_t len = from_hex(raw_hex, frame, sizeof(frame));
		int kind_got = ep_parse(frame, len, &m);
		bool v6 = strcmp(kind, "v6") == 0;
		if (kind_got != (v6 ? EP_PKT_IPV6 : EP_PKT_IPV4) || m.l4_off != l4off ||
		    m.key.proto != proto || m.key.sport != htons((uint16_t)ksp) ||
		    m.key.dport != htons((uint16_t)kdp)) {
			fail_at(__LINE__, "parse agrees with scapy", "line %d %s: kind %d l4_off %u",
				scapy_lines, kind, kind_got, m.l4_off);
			bad = 1;
			break;
		}
		if (v6)
			continue;
		uint32_t want_len = from_hex(want_hex, want, sizeof(want));
		if (ep_nat4(frame, &m, htonl((uint32_t)ns), htons((uint16_t)nsp), htonl((uint32_t)nd),
			    htons((uint16_t)ndp)) != 0 ||
		    want_len != len || memcmp(frame, want, len) != 0) {
			fail_at(__LINE__, "NAT output equals scapy's", "line %d %s", scapy_lines, kind);
			bad = 1;
		}
	}
	int status = pclose(lines);
	unlink(path);
	if (bad)
		return;
	EXPECT(status == 0, "%s exited with %d", python, status);
}

/* ---- main ---- */

static const struct {
	const char *name;
	void (*run)(void);
} tests[] = {
	{"drop reason names", test_drop_reason_names},
	{"parse IPv4 TCP", test_parse_ipv4_tcp},
	{"parse IPv4 UDP with Ethernet padding", test_parse_ipv4_udp_padded},
	{"parse ICMP echo keys", test_parse_icmp_keys},
	{"parse 802.1Q tag", test_parse_vlan},
	{"every truncation is dropped with its reason", test_parse_every_truncation},
	{"each malformation has its drop reason", test_parse_malformations},
	{"parse IPv4 options", test_parse_ipv4_options},
	{"parse IPv4 fragments", test_parse_ipv4_fragments},
	{"parse IPv6 extension headers, fragments, ICMPv6", test_parse_ipv6},
	{"IPv6 extension header chain limit", test_parse_ipv6_ext_chain_limit},
	{"parse ARP and other ethertypes", test_parse_arp_and_other},
	{"checksum vectors and incremental updates", test_checksum_vectors},
	{"NAT TCP matches scapy bytes", test_nat_tcp_bytes},
	{"NAT property: incremental == from scratch", test_nat_property},
	{"fast-path parse fills the same meta as ep_parse", test_parse_fast_matches},
	{"prepared NAT with TTL writes the same bytes as ep_nat4", test_nat_prepared_matches},
	{"NAT UDP checksum becoming 0 is sent as 0xffff", test_nat_udp_checksum_becoming_zero},
	{"NAT all-zero ICMP keeps checksum 0xffff", test_nat_icmp_all_zero},
	{"NAT ICMP echo identifier", test_nat_icmp_identifier},
	{"NAT refuses what it cannot rewrite", test_nat_refuses},
	{"TTL decrement", test_ttl},
	{"IPIP and GRE outer headers", test_encap},
	{"ARP reply bytes", test_arp_reply},
	{"ARP request bytes", test_arp_request},
	{"ICMP echo reply bytes", test_icmp_echo_reply},
	{"scapy cross-check", test_scapy_cross_check},
};

/* The hand-made frames as a starting corpus for fuzz_parse: random bytes rarely spell an
 * ethertype, a version nibble and consistent lengths all at once. */
static int write_seeds(const char *dir)
{
	uint8_t tagged[128];
	const struct {
		const char *name;
		const uint8_t *frame;
		uint32_t len;
	} seeds[] = {
		{"tcp_syn", tcp_syn, sizeof(tcp_syn)},
		{"udp_abc", udp_abc, sizeof(udp_abc)},
		{"icmp_echo_request", icmp_echo_request, sizeof(icmp_echo_request)},
		{"icmp_echo_reply", icmp_echo_reply_expected, sizeof(icmp_echo_reply_expected)},
		{"arp_request", arp_request, sizeof(arp_request)},
		{"arp_reply", arp_reply_expected, sizeof(arp_reply_expected)},
		{"ipv6_ext_tcp", ipv6_ext_tcp, sizeof(ipv6_ext_tcp)},
		{"ipv6_fragment_later", ipv6_fragment_later, sizeof(ipv6_fragment_later)},
		{"vlan_arp_request", tagged, add_vlan(tagged, arp_request, sizeof(arp_request))},
	};
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", dir, seeds[i].name);
		FILE *f = fopen(path, "wb");
		if (!f || fwrite(seeds[i].frame, 1, seeds[i].len, f) != seeds[i].len || fclose(f)) {
			perror(path);
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
		return write_seeds(argv[2]);
	size_t n = sizeof(tests) / sizeof(tests[0]);
	int failed = 0;
	printf("1..%zu\n", n);
	for (size_t i = 0; i < n; i++) {
		failure[0] = 0;
		tests[i].run();
		if (failure[0]) {
			failed++;
			printf("not ok %zu - %s # %s\n", i + 1, tests[i].name, failure);
		} else if (tests[i].run == test_scapy_cross_check && scapy_lines == 0) {
			printf("ok %zu - %s # SKIP scapy not available\n", i + 1, tests[i].name);
		} else if (tests[i].run == test_scapy_cross_check) {
			printf("ok %zu - %s (%d frames)\n", i + 1, tests[i].name, scapy_lines);
		} else {
			printf("ok %zu - %s\n", i + 1, tests[i].name);
		}
	}
	return failed ? 1 : 0;
}
