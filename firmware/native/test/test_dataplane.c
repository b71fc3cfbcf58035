/* Tests of the data plane itself (dataplane.c, affinity_table.c, flow_table.c, wildcard.c,
 * service.c, neighbor.c, worker.c) through the C API of edgeplane.h and, where a property is only
 * visible inside, through the internals of dp.h (Maglev tables, rte_acl classification, TCP state
 * tracking, the affinity table's digest check).
 *
 * One process, one EAL: --no-huge, a net_ring0 loopback port (what port 0 transmits it receives
 * again), main lcore 0 for this thread and one worker on lcore 1. Table tests run before the
 * workers start; the worker tests then inject frames and look at what the worker did through
 * punted bytes and counters. Frames are checked with this file's own checksum code, not the
 * library's. Output is TAP; the exit status is non-zero when any test fails. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_acl.h>
#include <rte_cycles.h>

#include "dp.h"
#include "edgeplane.h"
#include "interest.h"


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

/* An API call that must succeed; the failure names the error it returned. */
#define EXPECT_OK(call)                                                                          \
	do {                                                                                     \
		struct ep_error expect_err_ = { 0 };                                             \
		struct ep_error *err = &expect_err_;                                             \
		if ((call) != 0) {                                                               \
			fail_at(__LINE__, #call, "%s: %s", ep_errcode_name(expect_err_.code),    \
				expect_err_.msg);                                                \
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

static void diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

static uint32_t ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	return htonl((uint32_t)a << 24 | (uint32_t)b << 16 | (uint32_t)c << 8 | d);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* The configuration every test runs under (timeouts in seconds). */
static const struct ep_config dp_config = {
	.affinity_capacity = 1u << 20,
	.flow_capacity_per_worker = 4096,
	.mbufs_per_worker = 4096,
	.miss_policy = EP_MISS_PUNT,
	.hold_capacity_per_worker = 4, /* small, so the overflow test fills it */
	.hold_timeout_ms = 300,
	.timeouts_s = { [EP_TO_SYN] = 10, [EP_TO_ESTABLISHED] = 300, [EP_TO_FIN] = 30,
			[EP_TO_RST] = 5, [EP_TO_UDP] = 60, [EP_TO_OTHER] = 20 },
};

static struct ep_flow_key tcp_key(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport)
{
	struct ep_flow_key k;
	ep_key_set4(&k, IPPROTO_TCP, src, htons(sport), dst, htons(dport));
	return k;
}

/* 2001:db8::<host>, port-numbered UDP: an IPv6 key, which the affinity table holds by digest. */
static struct ep_flow_key udp6_key(uint8_t src_host, uint16_t sport, uint8_t dst_host, uint16_t dport)
{
	struct ep_flow_key k;
	memset(&k, 0, sizeof(k));
	const uint8_t prefix[4] = { 0x20, 0x01, 0x0d, 0xb8 };
	memcpy(k.src, prefix, 4);
	memcpy(k.dst, prefix, 4);
	k.src[15] = src_host;
	k.dst[15] = dst_host;
	k.sport = htons(sport);
	k.dport = htons(dport);
	k.proto = IPPROTO_UDP;
	k.family = 6;
	return k;
}

static struct ep_action punt_action(void)
{
	return (struct ep_action){ .type = EP_ACT_PUNT, .out_port = EP_PORT_ROUTE };
}

/* Manager affinities really installed (slots in use), independently of ep_affinity_count. */
static uint32_t installed(void)
{
	uint32_t n = 0;
	for (uint32_t pos = 0; pos < ep_dp.manager.capacity; pos++)
		n += ep_affinity_flow(&ep_dp.manager, pos)->in_use;
	return n;
}

/* The installed manager affinity with this key, or NULL. */
static struct ep_affinity_info listed[64];
static const struct ep_affinity_info *find_listed(const struct ep_flow_key *k)
{
	uint32_t n = ep_affinity_list(listed, 64, 0);
	for (uint32_t i = 0; i < n; i++)
		if (memcmp(&listed[i].key, k, sizeof(*k)) == 0)
			return &listed[i];
	return NULL;
}

/* ---- reference checksums: a valid header or segment sums to 0xffff including its checksum ---- */

static uint32_t sum16(const uint8_t *p, uint32_t len, uint32_t sum)
{
	for (uint32_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static bool ip_header_valid(const uint8_t *ip)
{
	return fold(sum16(ip, (ip[0] & 0x0f) * 4u, 0)) == 0xffff;
}

/* TCP/UDP with the pseudo header, ICMP without. */
static bool l4_checksum_valid(const uint8_t *ip)
{
	uint32_t ihl = (ip[0] & 0x0f) * 4u, total = (uint32_t)(ip[2] << 8 | ip[3]);
	uint32_t sum = sum16(ip + ihl, total - ihl, 0);
	if (ip[9] != IPPROTO_ICMP)
		sum = sum16(ip + 12, 8, sum) + ip[9] + (total - ihl);
	return fold(sum) == 0xffff;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static const uint8_t client_mac[6] = { 0x02, 0xc1, 0, 0, 0, 0x01 };
static const uint8_t router_mac[6] = { 0x02, 0x77, 0, 0, 0, 0x01 };
static const uint8_t server_mac[6] = { 0x02, 0x5e, 0, 0, 0, 0x01 };

#define ETH_LEN 14
#define IP_OFF ETH_LEN
#define L4_OFF (ETH_LEN + 20)

/* Ethernet + IPv4 (no options) + TCP (no options) + payload, checksums computed here. */
static uint32_t build_tcp(uint8_t *f, const uint8_t dst_mac[6], const uint8_t src_mac[6], uint32_t src,
			  uint16_t sport, uint32_t dst, uint16_t dport, uint8_t flags, uint8_t ttl,
			  uint32_t payload_len)
{
	uint32_t total = 20 + 20 + payload_len;
	memset(f, 0, ETH_LEN + total);
	memcpy(f, dst_mac, 6);
	memcpy(f + 6, src_mac, 6);
	put16(f + 12, 0x0800);
	uint8_t *ip = f + IP_OFF, *tcp = f + L4_OFF;
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)total);
	put16(ip + 4, 0x1234);
	ip[8] = ttl;
	ip[9] = IPPROTO_TCP;
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	put16(ip + 10, (uint16_t)~fold(sum16(ip, 20, 0)));
	put16(tcp, sport);
	put16(tcp + 2, dport);
	put16(tcp + 4, 0x1000);
	tcp[7] = 0x42;
	tcp[12] = 5 << 4;
	tcp[13] = flags;
	put16(tcp + 14, 8192);
	for (uint32_t i = 0; i < payload_len; i++)
		tcp[20 + i] = (uint8_t)(i * 7 + 1);
	uint32_t sum = sum16(tcp, 20 + payload_len, 0);
	sum = sum16(ip + 12, 8, sum) + IPPROTO_TCP + 20 + payload_len;
	put16(tcp + 16, (uint16_t)~fold(sum));
	return ETH_LEN + total;
}

/* An Ethernet + IPv6 + UDP frame of key k (checksum left 0: nothing on the way checks it). */
static uint32_t build_udp6(uint8_t *f, const struct ep_flow_key *k, uint32_t payload_len)
{
	uint32_t udp_len = 8 + payload_len;
	memset(f, 0, ETH_LEN + 40 + udp_len);
	memcpy(f, router_mac, 6);
	memcpy(f + 6, client_mac, 6);
	put16(f + 12, 0x86dd);
	uint8_t *ip = f + ETH_LEN, *udp = ip + 40;
	ip[0] = 0x60;
	put16(ip + 4, (uint16_t)udp_len);
	ip[6] = IPPROTO_UDP;
	ip[7] = 64;
	memcpy(ip + 8, k->src, 16);
	memcpy(ip + 24, k->dst, 16);
	memcpy(udp, &k->sport, 2);
	memcpy(udp + 2, &k->dport, 2);
	put16(udp + 4, (uint16_t)udp_len);
	for (uint32_t i = 0; i < payload_len; i++)
		udp[8 + i] = (uint8_t)i;
	return ETH_LEN + 40 + udp_len;
}

/* ---- affinity table through the API ---- */

static void test_affinity_add_refresh_delete(void)
{
	struct ep_flow_key k = tcp_key(ip4(10, 0, 0, 1), 1000, ip4(10, 0, 0, 2), 80);
	struct ep_flow_key other = tcp_key(ip4(10, 0, 0, 1), 1001, ip4(10, 0, 0, 2), 80);
	struct ep_action drop_act = { .type = EP_ACT_DROP, .out_port = EP_PORT_ROUTE };
	struct ep_action fwd = { .type = EP_ACT_FORWARD, .out_port = 0, .nat_dst_ip = ip4(192, 168, 1, 1),
				 .nat_dst_port = htons(8080) };
	EXPECT(installed() == 0, "%u", installed());
	EXPECT_OK(ep_affinity_add(&k, &drop_act, 10, err));
	EXPECT(installed() == 1);
	const struct ep_affinity_info *a = find_listed(&k);
	EXPECT(a && a->action.type == EP_ACT_DROP && a->origin == EP_ORIGIN_MANAGER);
	EXPECT(a->ttl_s == 10, "ttl %u", a->ttl_s);
	EXPECT(a->packets == 0 && a->bytes == 0 && a->tcp_state == EP_TCPS_NONE);

	/* same key and action: a refresh moves only the expiry */
	EXPECT_OK(ep_affinity_add(&k, &drop_act, 100, err));
	EXPECT(installed() == 1);
	a = find_listed(&k);
	EXPECT(a && a->ttl_s == 100, "ttl %u", a ? a->ttl_s : 0);

	/* same key, new action: replaced, still one entry */
	EXPECT_OK(ep_affinity_add(&k, &fwd, 50, err));
	EXPECT(installed() == 1);
	a = find_listed(&k);
	EXPECT(a && a->action.type == EP_ACT_FORWARD && a->action.nat_dst_ip == ip4(192, 168, 1, 1) &&
	       a->action.nat_dst_port == htons(8080) && a->ttl_s == 50);

	EXPECT_OK(ep_affinity_add(&other, &drop_act, 10, err));
	EXPECT(installed() == 2);
	EXPECT(ep_affinity_list(listed, 64, 0) == 2);
	EXPECT(ep_affinity_list(listed, 1, 0) == 1, "list honours max");

	EXPECT(ep_affinity_del(&k) == 1);
	EXPECT(ep_affinity_del(&k) == 0, "second delete finds nothing");
	EXPECT(installed() == 1);
	EXPECT(find_listed(&k) == NULL && find_listed(&other) != NULL);
	EXPECT(ep_affinity_del(&other) == 1);
	EXPECT(installed() == 0 && ep_affinity_list(listed, 64, 0) == 0);
}

/* IPv6 keys sit in the affinity table under a digest: distinct keys stay distinct, and an IPv4
 * key whose bytes start alike is another key. */
static void test_affinity_ipv6(void)
{
	struct ep_flow_key a = udp6_key(1, 1000, 2, 53), b = udp6_key(1, 1000, 3, 53);
	struct ep_flow_key v4 = a;
	v4.family = 4;
	memset(v4.src + 4, 0, 12);
	memset(v4.dst + 4, 0, 12);
	struct ep_action drop_act = { .type = EP_ACT_DROP, .out_port = EP_PORT_ROUTE };
	struct ep_action punt = punt_action();
	EXPECT_OK(ep_affinity_add(&a, &punt, 10, err));
	EXPECT_OK(ep_affinity_add(&b, &drop_act, 10, err));
	EXPECT(installed() == 2 && ep_affinity_count() == 2);
	const struct ep_affinity_info *la = find_listed(&a), *lb = find_listed(&b);
	EXPECT(la && la->action.type == EP_ACT_PUNT && lb && lb->action.type == EP_ACT_DROP);
	int32_t pa = ep_affinity_table_find(&ep_dp.manager, &a), pb = ep_affinity_table_find(&ep_dp.manager, &b);
	EXPECT(pa >= 0 && pb >= 0 && pa != pb, "positions %d %d", pa, pb);
	EXPECT(ep_affinity_table_find(&ep_dp.manager, &v4) < 0 && ep_affinity_del(&v4) == 0);
	/* replacing the action keeps one entry */
	EXPECT_OK(ep_affinity_add(&a, &drop_act, 10, err));
	EXPECT(installed() == 2 && find_listed(&a)->action.type == EP_ACT_DROP);
	EXPECT(ep_affinity_del(&a) == 1 && ep_affinity_del(&a) == 0);
	EXPECT(find_listed(&a) == NULL && find_listed(&b) != NULL);
	EXPECT(ep_affinity_del(&b) == 1 && installed() == 0);
}

/* ep_affinity_count is what the control application exports: it must follow adds and deletes. */
static void test_affinity_count_follows_deletes(void)
{
	struct ep_action act = punt_action();
	uint32_t start = ep_affinity_count();
	EXPECT(start == installed(), "count %u with %u installed before the test", start, installed());
	struct ep_flow_key keys[3] = { tcp_key(ip4(10, 5, 0, 1), 1, ip4(10, 5, 0, 2), 80),
				       tcp_key(ip4(10, 5, 0, 1), 2, ip4(10, 5, 0, 2), 80),
				       tcp_key(ip4(10, 5, 0, 1), 3, ip4(10, 5, 0, 2), 80) };
	for (int i = 0; i < 3; i++)
		EXPECT_OK(ep_affinity_add(&keys[i], &act, 60, err));
	EXPECT(ep_affinity_count() == start + 3, "%u after 3 adds", ep_affinity_count());
	EXPECT(ep_affinity_del(&keys[1]) == 1);
	EXPECT(ep_affinity_count() == start + 2, "%u after 3 adds and 1 delete (%u installed)", ep_affinity_count(),
	       installed());
	EXPECT(ep_affinity_del(&keys[0]) == 1 && ep_affinity_del(&keys[2]) == 1);
	EXPECT(ep_affinity_count() == start, "%u after deleting all (%u installed)", ep_affinity_count(), installed());
}

static void test_affinity_invalid_input(void)
{
	struct ep_flow_key k = tcp_key(ip4(10, 0, 0, 1), 1000, ip4(10, 0, 0, 2), 80);
	struct ep_action ok = punt_action();
	struct ep_error err = { 0 };

	struct ep_flow_key bad_family = k;
	bad_family.family = 5;
	EXPECT(ep_affinity_add(&bad_family, &ok, 10, &err) != 0 && err.code == EP_EINVAL && err.msg[0]);
	EXPECT(strstr(err.msg, "family"), "%s", err.msg);

	struct ep_flow_key bad_pad = k;
	bad_pad.pad[1] = 1;
	EXPECT(ep_affinity_add(&bad_pad, &ok, 10, &err) != 0 && err.code == EP_EINVAL);

	err = (struct ep_error){ 0 };
	EXPECT(ep_affinity_add(&k, &ok, 0, &err) != 0 && err.code == EP_EINVAL && strstr(err.msg, "ttl"), "%s",
	       err.msg);

	struct ep_action unknown_port = { .type = EP_ACT_FORWARD, .out_port = 7 };
	err = (struct ep_error){ 0 };
	EXPECT(ep_affinity_add(&k, &unknown_port, 10, &err) != 0 && err.code == EP_ENOPORT && err.msg[0]);

	struct ep_action bad_type = { .type = 9, .out_port = EP_PORT_ROUTE };
	err = (struct ep_error){ 0 };
	EXPECT(ep_affinity_add(&k, &bad_type, 10, &err) != 0 && err.code == EP_EINVAL && err.msg[0]);

	struct ep_action service = { .type = EP_ACT_SERVICE, .out_port = EP_PORT_ROUTE, .service_id = 1 };
	EXPECT(ep_affinity_add(&k, &service, 10, &err) != 0 && err.code == EP_EINVAL, "services are wildcard-only");

	struct ep_action dispatch_without_ip = { .type = EP_ACT_FORWARD, .out_port = EP_PORT_ROUTE,
						 .dispatch = EP_DISPATCH_GRE };
	EXPECT(ep_affinity_add(&k, &dispatch_without_ip, 10, &err) != 0 && err.code == EP_EINVAL);

	struct ep_action bad_dispatch = { .type = EP_ACT_FORWARD, .out_port = EP_PORT_ROUTE, .dispatch = 9,
					  .forward_ip = ip4(1, 2, 3, 4) };
	EXPECT(ep_affinity_add(&k, &bad_dispatch, 10, &err) != 0 && err.code == EP_EINVAL);

	struct ep_action next_hop_without_port = { .type = EP_ACT_FORWARD, .out_port = EP_PORT_ROUTE,
						   .flags = EP_ACT_F_NEXT_HOP };
	EXPECT(ep_affinity_add(&k, &next_hop_without_port, 10, &err) != 0 && err.code == EP_EINVAL);

	EXPECT(installed() == 0, "nothing was installed by a refused call");
}

static struct ep_flow_key numbered_key(uint32_t i)
{
	return tcp_key(htonl(0x0a000000u | (i >> 8)), (uint16_t)(1024 + (i & 0xff)), ip4(172, 16, 0, 1), 443);
}

static void test_affinity_capacity(void)
{
	const uint32_t capacity = dp_config.affinity_capacity;
	struct ep_action act = punt_action();
	struct ep_error err = { 0 };
	uint64_t t0 = rte_rdtsc();
	for (uint32_t i = 0; i < 1000000; i++) {
		struct ep_flow_key k = numbered_key(i);
		if (ep_affinity_add(&k, &act, 600, &err) != 0) {
			fail_at(__LINE__, "add", "key %u: %s %s", i, ep_errcode_name(err.code), err.msg);
			return;
		}
	}
	EXPECT(installed() == 1000000, "%u", installed());
	diag("1,000,000 affinities added in %.2f s", (double)(rte_rdtsc() - t0) / (double)rte_get_tsc_hz());
	for (uint32_t i = 1000000; i < capacity; i++) {
		struct ep_flow_key k = numbered_key(i);
		if (ep_affinity_add(&k, &act, 600, &err) != 0) {
			fail_at(__LINE__, "fill", "key %u of %u: %s %s", i, capacity, ep_errcode_name(err.code),
				err.msg);
			return;
		}
	}
	EXPECT(installed() == capacity, "%u", installed());
	struct ep_flow_key one_more = numbered_key(capacity);
	err = (struct ep_error){ 0 };
	EXPECT(ep_affinity_add(&one_more, &act, 600, &err) != 0 && err.code == EP_EFULL, "%s",
	       ep_errcode_name(err.code));
	EXPECT(strstr(err.msg, "full"), "message: %s", err.msg);
	/* a refresh of an existing key still works on a full table */
	struct ep_flow_key first = numbered_key(0);
	EXPECT_OK(ep_affinity_add(&first, &act, 900, err));
	uint32_t removed = 0;
	for (uint32_t i = 0; i < capacity; i++) {
		struct ep_flow_key k = numbered_key(i);
		removed += (uint32_t)ep_affinity_del(&k);
	}
	EXPECT(removed == capacity, "%u", removed);
	EXPECT(installed() == 0, "%u", installed());
	/* freed positions are usable again */
	EXPECT_OK(ep_affinity_add(&one_more, &act, 600, err));
	EXPECT(ep_affinity_del(&one_more) == 1);
}

/* A small table whose keys all share one home bucket: they spill into the following buckets and
 * are all found; deleting some leaves the others found and the spill counts back at 0 once all are
 * gone; the table is full at its capacity, and deleted positions come back. */
static void test_affinity_table_spills(void)
{
	struct ep_affinity_table t;
	const uint32_t capacity = 8;
	EXPECT(ep_affinity_table_create(&t, capacity, 1) == 0);
	struct ep_flow_key keys[8];
	uint32_t n = 0, home = 0;
	for (uint32_t i = 0; n < capacity && i < 100000; i++) {
		struct ep_flow_key k = numbered_key(i);
		struct ep_key16 k16;
		ep_key16_of(&k, &k16);
		uint32_t b = ep_key16_hash(&k16) & t.bucket_mask;
		if (n == 0)
			home = b;
		if (b == home)
			keys[n++] = k;
	}
	EXPECT(n == capacity, "%u keys with one home bucket", n);
	int32_t pos[8];
	for (uint32_t i = 0; i < n; i++) {
		pos[i] = ep_affinity_table_put(&t, &keys[i]);
		EXPECT(pos[i] >= 0 && (uint32_t)pos[i] < capacity, "key %u: %d", i, pos[i]);
		ep_affinity_flow(&t, (uint32_t)pos[i])->in_use = 1;
		t.live++;
	}
	EXPECT(t.buckets[home].spill == n - EP_AFF_SLOTS, "spill %u", t.buckets[home].spill);
	struct ep_flow_key extra = numbered_key(200000);
	EXPECT(ep_affinity_table_put(&t, &extra) == -ENOSPC);
	for (uint32_t i = 0; i < n; i++)
		EXPECT(ep_affinity_table_find(&t, &keys[i]) == pos[i], "key %u", i);
	/* out of the home bucket and of the first spill bucket */
	EXPECT(ep_affinity_table_del(&t, &keys[1]) == 1 && ep_affinity_table_del(&t, &keys[4]) == 1);
	EXPECT(ep_affinity_table_find(&t, &keys[1]) < 0 && ep_affinity_table_find(&t, &keys[4]) < 0);
	for (uint32_t i = 0; i < n; i++)
		EXPECT(i == 1 || i == 4 || ep_affinity_table_find(&t, &keys[i]) == pos[i], "key %u", i);
	int32_t again = ep_affinity_table_put(&t, &extra); /* a deleted position, after a grace period */
	EXPECT(again == pos[1] || again == pos[4], "%d", again);
	EXPECT(ep_affinity_table_find(&t, &extra) == again);
	EXPECT(ep_affinity_table_del(&t, &extra) == 1);
	for (uint32_t i = 0; i < n; i++)
		ep_affinity_table_del(&t, &keys[i]);
	uint32_t spilled = 0;
	for (uint32_t b = 0; b <= t.bucket_mask; b++)
		spilled += t.buckets[b].spill;
	EXPECT(t.live == 0 && spilled == 0, "live %u, spill total %u", t.live, spilled);
	ep_affinity_table_free(&t);
}

static void test_affinity_ttl_expiry(void)
{
	struct ep_flow_key short_lived = tcp_key(ip4(10, 9, 0, 1), 5000, ip4(10, 9, 0, 2), 80);
	struct ep_flow_key long_lived = tcp_key(ip4(10, 9, 0, 1), 5001, ip4(10, 9, 0, 2), 80);
	struct ep_action act = punt_action();
	struct ep_lcore_counters before, after;
	ep_counters_total(&before);
	EXPECT_OK(ep_affinity_add(&short_lived, &act, 1, err));
	EXPECT_OK(ep_affinity_add(&long_lived, &act, 60, err));
	EXPECT(installed() == 2);
	ep_poll(NULL, 0);
	EXPECT(find_listed(&short_lived) != NULL, "not expired at once");
	uint64_t end = rte_rdtsc() + rte_get_tsc_hz() * 5 / 2;
	while (rte_rdtsc() < end) {
		ep_poll(NULL, 0);
		sleep_ms(2);
	}
	EXPECT(find_listed(&short_lived) == NULL, "1 s affinity still installed after 2.5 s");
	const struct ep_affinity_info *a = find_listed(&long_lived);
	EXPECT(a != NULL, "60 s affinity expired");
	EXPECT(a->ttl_s >= 57 && a->ttl_s <= 60, "ttl left %u", a->ttl_s);
	EXPECT(installed() == 1);
	ep_counters_total(&after);
	EXPECT(after.flows_expired - before.flows_expired == 1, "%lu",
	       (unsigned long)(after.flows_expired - before.flows_expired));
	EXPECT(ep_affinity_del(&long_lived) == 1);
}

/* ---- wildcards (rte_acl) ---- */

/* Classifies one IPv4 5-tuple as worker.c does; returns the index of the winning rule or -1. */
static int classify(const struct ep_wildcard_set *set, uint8_t proto, uint32_t src, uint16_t sport, uint32_t dst,
		    uint16_t dport)
{
	struct ep_acl_input in = { .proto = proto, .src = src, .dst = dst, .sport = htons(sport),
				   .dport = htons(dport) };
	const uint8_t *data[1] = { (const uint8_t *)&in };
	uint32_t result = 0;
	ep_wildcard_classify(set, data, &result, 1);
	return (int)result - 1;
}

static struct ep_wildcard wildcard(uint8_t proto, uint32_t src, uint32_t src_mask, uint32_t dst, uint32_t dst_mask,
				   uint16_t sport, uint16_t dport, uint32_t precedence)
{
	return (struct ep_wildcard){ .proto = proto, .src_ip = src, .src_mask = src_mask, .dst_ip = dst,
				     .dst_mask = dst_mask, .src_port = htons(sport), .dst_port = htons(dport),
				     .precedence = precedence, .action = punt_action() };
}

static void test_wildcard_match_and_precedence(void)
{
	struct ep_wildcard rules[] = {
		/* 0: anything, lowest */
		wildcard(0, 0, 0, 0, 0, 0, 0, 1),
		/* 1: TCP to 10.x.5.x (non-contiguous mask 255.0.255.0) */
		wildcard(IPPROTO_TCP, 0, 0, ip4(10, 99, 5, 0), ip4(255, 0, 255, 0), 0, 0, 20),
		/* 2: TCP to 10.1.0.0/16 port 80 */
		wildcard(IPPROTO_TCP, 0, 0, ip4(10, 1, 0, 0), ip4(255, 255, 0, 0), 0, 80, 30),
		/* 3: UDP from odd addresses (mask 0.0.0.1) with source port 53 */
		wildcard(IPPROTO_UDP, ip4(0, 0, 0, 1), ip4(0, 0, 0, 1), 0, 0, 53, 0, 40),
		/* 4: from 192.168.0.0/16, below rule 2 */
		wildcard(0, ip4(192, 168, 0, 0), ip4(255, 255, 0, 0), 0, 0, 0, 0, 25),
	};
	struct ep_error err = { 0 };
	struct ep_wildcard_set *set = ep_wildcard_build(rules, 5, &err);
	EXPECT(set != NULL, "%s", err.msg);
	uint32_t c = ip4(1, 2, 3, 4);
	EXPECT(classify(set, IPPROTO_ICMP, c, 0, ip4(8, 8, 8, 8), 0) == 0);
	/* non-contiguous: the masked-out octets may be anything, the kept ones must match */
	EXPECT(classify(set, IPPROTO_TCP, c, 999, ip4(10, 200, 5, 77), 443) == 1);
	EXPECT(classify(set, IPPROTO_TCP, c, 999, ip4(10, 0, 5, 0), 1) == 1);
	EXPECT(classify(set, IPPROTO_TCP, c, 999, ip4(10, 200, 6, 77), 443) == 0, "third octet differs");
	EXPECT(classify(set, IPPROTO_TCP, c, 999, ip4(11, 200, 5, 77), 443) == 0, "first octet differs");
	EXPECT(classify(set, IPPROTO_UDP, c, 999, ip4(10, 200, 5, 77), 443) == 0, "protocol differs");
	/* 10.1.5.x matches 1 and 2: the higher precedence wins */
	EXPECT(classify(set, IPPROTO_TCP, c, 999, ip4(10, 1, 5, 9), 80) == 2);
	EXPECT(classify(set, IPPROTO_TCP, c, 999, ip4(10, 1, 5, 9), 81) == 1, "port 80 only");
	EXPECT(classify(set, IPPROTO_TCP, c, 999, ip4(10, 1, 6, 9), 81) == 0);
	/* source port rule with an odd-address mask */
	EXPECT(classify(set, IPPROTO_UDP, ip4(7, 7, 7, 7), 53, ip4(8, 8, 8, 8), 5353) == 3);
	EXPECT(classify(set, IPPROTO_UDP, ip4(7, 7, 7, 8), 53, ip4(8, 8, 8, 8), 5353) == 0, "even source");
	EXPECT(classify(set, IPPROTO_UDP, ip4(7, 7, 7, 7), 54, ip4(8, 8, 8, 8), 5353) == 0, "source port 54");
	/* 192.168.x.x to 10.1.x.x:80 matches 0, 2 and 4: 2 (30) beats 4 (25) */
	EXPECT(classify(set, IPPROTO_TCP, ip4(192, 168, 3, 3), 999, ip4(10, 1, 7, 7), 80) == 2);
	EXPECT(classify(set, IPPROTO_TCP, ip4(192, 168, 3, 3), 999, ip4(10, 2, 7, 7), 80) == 4);
	ep_wildcard_free(set);

	/* the same rules in reverse order: precedence, not position, decides */
	struct ep_wildcard reversed[5];
	for (int i = 0; i < 5; i++)
		reversed[i] = rules[4 - i];
	set = ep_wildcard_build(reversed, 5, &err);
	EXPECT(set != NULL, "%s", err.msg);
	EXPECT(classify(set, IPPROTO_TCP, ip4(192, 168, 3, 3), 999, ip4(10, 1, 7, 7), 80) == 4 - 2);
	EXPECT(classify(set, IPPROTO_TCP, c, 999, ip4(10, 1, 5, 9), 81) == 4 - 1);
	ep_wildcard_free(set);

	/* an empty set matches nothing */
	set = ep_wildcard_build(NULL, 0, &err);
	EXPECT(set != NULL && classify(set, IPPROTO_TCP, c, 1, c, 1) == -1);
	ep_wildcard_free(set);
}

static void test_wildcard_invalid_rules(void)
{
	struct ep_wildcard w = wildcard(IPPROTO_TCP, 0, 0, 0, 0, 0, 80, 5);
	struct ep_error err = { 0 };
	w.action.type = 0;
	EXPECT(ep_wildcards_commit(&w, 1, &err) != 0 && err.code == EP_EINVAL && strstr(err.msg, "wildcard 0"),
	       "%s", err.msg);
	w.action = (struct ep_action){ .type = EP_ACT_FORWARD, .out_port = 5 };
	EXPECT(ep_wildcards_commit(&w, 1, &err) != 0 && err.code == EP_ENOPORT);
	w.action = (struct ep_action){ .type = EP_ACT_SERVICE, .service_id = EP_MAX_SERVICES };
	EXPECT(ep_wildcards_commit(&w, 1, &err) != 0 && err.code == EP_EINVAL);
	w.action = punt_action();
	w.precedence = RTE_ACL_MAX_PRIORITY;
	EXPECT(ep_wildcards_commit(&w, 1, &err) != 0 && err.code == EP_EINVAL && strstr(err.msg, "precedence"));
	w.precedence = 5;
	EXPECT_OK(ep_wildcards_commit(&w, 1, err));
	EXPECT(ep_dp.wildcards->n == 1 && ep_dp.wildcards->actions[0].type == EP_ACT_PUNT);
	EXPECT_OK(ep_wildcards_commit(NULL, 0, err));
	EXPECT(ep_dp.wildcards->n == 0);
}

/* ---- IPv6 ---- */

/* fd00:<net>::<host> */
static void addr6(uint8_t out[16], uint16_t net, uint16_t host)
{
	memset(out, 0, 16);
	out[0] = 0xfd;
	put16(out + 2, net);
	put16(out + 14, host);
}

#define L4_OFF6 (ETH_LEN + 40)

/* TCP/UDP/ICMPv6 over IPv6 (no extension headers) with the pseudo header, from scratch. */
static bool l4_checksum_valid6(const uint8_t *ip6)
{
	uint32_t len = get16(ip6 + 4);
	uint32_t sum = sum16(ip6 + 8, 32, 0) + ip6[6] + len;
	return fold(sum16(ip6 + 40, len, sum)) == 0xffff;
}

static uint32_t build_tcp6(uint8_t *f, const uint8_t dst_mac[6], const uint8_t src_mac[6], const uint8_t src[16],
			   uint16_t sport, const uint8_t dst[16], uint16_t dport, uint8_t flags, uint8_t hop_limit)
{
	memset(f, 0, L4_OFF6 + 20);
	memcpy(f, dst_mac, 6);
	memcpy(f + 6, src_mac, 6);
	put16(f + 12, 0x86dd);
	uint8_t *ip = f + IP_OFF, *tcp = f + L4_OFF6;
	ip[0] = 0x60;
	put16(ip + 4, 20);
	ip[6] = IPPROTO_TCP;
	ip[7] = hop_limit;
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
	put16(tcp, sport);
	put16(tcp + 2, dport);
	put16(tcp + 4, 0x2000);
	tcp[12] = 5 << 4;
	tcp[13] = flags;
	put16(tcp + 14, 8192);
	put16(tcp + 16, (uint16_t)~fold(sum16(tcp, 20, sum16(ip + 8, 32, 0) + IPPROTO_TCP + 20)));
	return L4_OFF6 + 20;
}

static uint32_t build_icmp6(uint8_t *f, const uint8_t dst_mac[6], const uint8_t src_mac[6], const uint8_t src[16],
			    const uint8_t dst[16], const uint8_t *icmp, uint32_t icmp_len, uint8_t hop_limit)
{
	memset(f, 0, L4_OFF6 + icmp_len);
	memcpy(f, dst_mac, 6);
	memcpy(f + 6, src_mac, 6);
	put16(f + 12, 0x86dd);
	uint8_t *ip = f + IP_OFF;
	ip[0] = 0x60;
	put16(ip + 4, (uint16_t)icmp_len);
	ip[6] = IPPROTO_ICMPV6;
	ip[7] = hop_limit;
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
	memcpy(ip + 40, icmp, icmp_len);
	put16(ip + 42, 0);
	put16(ip + 42, (uint16_t)~fold(sum16(ip + 40, icmp_len, sum16(ip + 8, 32, 0) + IPPROTO_ICMPV6 + icmp_len)));
	return L4_OFF6 + icmp_len;
}

static struct ep_wildcard wildcard6(uint8_t proto, const uint8_t dst[16], uint8_t dst_prefix, uint16_t dport,
				    uint32_t precedence)
{
	struct ep_wildcard w = { .proto = proto, .family = 6, .dst_port = htons(dport), .precedence = precedence,
				 .action = punt_action() };
	memcpy(w.dst_ip6, dst, 16);
	for (int i = 0; i < 16; i++)
		w.dst_mask6[i] = dst_prefix >= (i + 1) * 8 ? 0xff : dst_prefix > i * 8 ? (uint8_t)(0xff00 >> (dst_prefix - i * 8)) : 0;
	return w;
}

static int classify6(const struct ep_wildcard_set *set, uint8_t proto, const uint8_t src[16], uint16_t sport,
		     const uint8_t dst[16], uint16_t dport)
{
	struct ep_acl_input6 in = { .proto = proto, .sport = htons(sport), .dport = htons(dport) };
	memcpy(in.src, src, 16);
	memcpy(in.dst, dst, 16);
	return (int)ep_wildcard6_classify(set, &in) - 1;
}

static void test_wildcard6_match_and_precedence(void)
{
	uint8_t any[16] = { 0 }, net1[16], vip[16], client[16], other[16];
	addr6(net1, 1, 0);
	addr6(vip, 1, 0x100);
	addr6(client, 9, 2);
	addr6(other, 2, 0x100);
	struct ep_wildcard rules[] = {
		wildcard6(0, any, 0, 0, 1),                 /* 0: any IPv6 */
		wildcard6(IPPROTO_TCP, net1, 64, 0, 20),    /* 1: TCP to fd00:1::/64 */
		wildcard6(IPPROTO_TCP, vip, 128, 80, 30),   /* 2: TCP to the VIP port 80 */
		wildcard(IPPROTO_TCP, 0, 0, 0, 0, 0, 80, 99), /* 3: IPv4 TCP port 80, highest: not for IPv6 */
		wildcard6(IPPROTO_UDP, any, 0, 0, 40),      /* 4: any UDP, non-contiguous source mask below */
	};
	/* 4: from addresses whose last byte is odd (mask ::1) */
	rules[4].src_mask6[15] = 1;
	rules[4].src_ip6[15] = 1;
	struct ep_error err = { 0 };
	struct ep_wildcard_set *set = ep_wildcard_build(rules, 5, &err);
	EXPECT(set != NULL, "%s", err.msg);
	EXPECT(classify6(set, IPPROTO_ICMPV6, client, 0, other, 0) == 0);
	EXPECT(classify6(set, IPPROTO_TCP, client, 999, other, 80) == 0, "other /64");
	EXPECT(classify6(set, IPPROTO_TCP, client, 999, net1, 22) == 1);
	EXPECT(classify6(set, IPPROTO_TCP, client, 999, vip, 80) == 2, "most precedence of 0, 1, 2");
	EXPECT(classify6(set, IPPROTO_TCP, client, 999, vip, 81) == 1, "port 80 only");
	uint8_t odd[16], even[16];
	addr6(odd, 9, 3);
	addr6(even, 9, 4);
	EXPECT(classify6(set, IPPROTO_UDP, odd, 53, vip, 53) == 4);
	EXPECT(classify6(set, IPPROTO_UDP, even, 53, vip, 53) == 0, "even source");
	/* the IPv4 rule still matches IPv4, the IPv6 rules do not */
	EXPECT(classify(set, IPPROTO_TCP, ip4(1, 2, 3, 4), 9, ip4(10, 1, 0, 1), 80) == 3);
	EXPECT(classify(set, IPPROTO_UDP, ip4(1, 2, 3, 5), 9, ip4(10, 1, 0, 1), 80) == -1);
	ep_wildcard_free(set);
	/* only IPv6 rules: IPv4 matches nothing */
	set = ep_wildcard_build(rules, 3, &err);
	EXPECT(set != NULL && classify(set, IPPROTO_TCP, ip4(1, 2, 3, 4), 9, ip4(10, 1, 0, 1), 80) == -1);
	EXPECT(classify6(set, IPPROTO_TCP, client, 999, vip, 80) == 2);
	ep_wildcard_free(set);
	rules[0].family = 5;
	EXPECT(ep_wildcard_build(rules, 1, &err) == NULL && err.code == EP_EINVAL && strstr(err.msg, "family"), "%s",
	       err.msg);
}

static void test_service6_validation(void)
{
	struct ep_service_conf conf = { .id = 9, .family = 6, .port = htons(80), .proto = IPPROTO_TCP, .table_size = 251 };
	struct ep_server srv = { .port = htons(80), .weight = 1 };
	addr6(srv.ip6, 20, 1);
	struct ep_error err = { 0 };
	EXPECT(ep_service_set(&conf, &srv, 1, &err) != 0 && strstr(err.msg, "IPv6 VIP"), "%s", err.msg);
	addr6(conf.vip6, 1, 0x100);
	conf.mode = EP_MODE_FULLNAT;
	EXPECT(ep_service_set(&conf, &srv, 1, &err) != 0 && strstr(err.msg, "full NAT"), "%s", err.msg);
	conf.mode = EP_MODE_NAT;
	struct ep_server v4 = { .ip = ip4(10, 20, 0, 1), .port = htons(80), .weight = 1 };
	EXPECT(ep_service_set(&conf, &v4, 1, &err) != 0 && strstr(err.msg, "IPv6 address"), "%s", err.msg);
	EXPECT_OK(ep_service_set(&conf, &srv, 1, err));
	/* tunnels carry IPv6 in IPv6: never to an IPv4 server; GUE needs its port */
	conf.mode = EP_MODE_GUE;
	EXPECT(ep_service_set(&conf, &srv, 1, &err) != 0 && strstr(err.msg, "GUE needs a destination port"), "%s", err.msg);
	conf.gue_port = 6080;
	EXPECT(ep_service_set(&conf, &v4, 1, &err) != 0 && strstr(err.msg, "IPv6 address"), "%s", err.msg);
	for (uint8_t mode = EP_MODE_IPIP; mode <= EP_MODE_GUE; mode++) {
		conf.mode = mode;
		EXPECT_OK(ep_service_set(&conf, &srv, 1, err));
	}
	EXPECT_OK(ep_service_del(9, err));
}

/* ---- Maglev ---- */

#define MAGLEV_SIZE 65537u

static void maglev_shares(uint32_t id, uint32_t *count, uint32_t nslots)
{
	const struct ep_service_rt *svc = ep_dp.services[id];
	memset(count, 0, sizeof(*count) * nslots);
	for (uint32_t e = 0; e < svc->table_size; e++)
		if (svc->table[e] < nslots)
			count[svc->table[e]]++;
}

static struct ep_server server(uint32_t i, uint16_t weight)
{
	return (struct ep_server){ .ip = ip4(10, 20, (uint8_t)(i >> 8), (uint8_t)i), .port = htons(8080),
				   .weight = weight };
}

static void test_maglev_equal_weights(void)
{
	struct ep_service_conf conf = { .id = 10, .vip = ip4(10, 0, 0, 100), .port = htons(80),
					.proto = IPPROTO_TCP, .table_size = MAGLEV_SIZE };
	for (uint32_t n = 2; n <= 9; n += 7) {
		struct ep_server servers[9];
		for (uint32_t i = 0; i < n; i++)
			servers[i] = server(i, 1);
		EXPECT_OK(ep_service_set(&conf, servers, n, err));
		const struct ep_service_rt *svc = ep_dp.services[conf.id];
		EXPECT(svc && svc->table_size == MAGLEV_SIZE && svc->nslots == n);
		uint32_t count[9], total = 0;
		maglev_shares(conf.id, count, n);
		for (uint32_t i = 0; i < n; i++) {
			double share = (double)count[i] / MAGLEV_SIZE;
			diag("%u servers: server %u has %.4f of the table (1/N = %.4f)", n, i, share, 1.0 / n);
			EXPECT(share > 0.97 / n && share < 1.03 / n, "server %u share %.4f", i, share);
			total += count[i];
		}
		EXPECT(total == MAGLEV_SIZE, "every entry names a server (%u)", total);
	}
	EXPECT_OK(ep_service_del(conf.id, err));
	EXPECT(ep_dp.services[conf.id] == NULL);
}

static void test_maglev_weights(void)
{
	struct ep_service_conf conf = { .id = 11, .vip = ip4(10, 0, 0, 101), .port = htons(80),
					.proto = IPPROTO_TCP, .table_size = MAGLEV_SIZE };
	struct ep_server servers[4] = { server(0, 1), server(1, 2), server(2, 1), server(3, 2) };
	EXPECT_OK(ep_service_set(&conf, servers, 4, err));
	uint32_t count[4];
	maglev_shares(conf.id, count, 4);
	for (int i = 0; i < 4; i++) {
		double expected = servers[i].weight / 6.0, share = (double)count[i] / MAGLEV_SIZE;
		diag("weights 1:2:1:2: server %d has %.4f (expected %.4f)", i, share, expected);
		EXPECT(share > expected * 0.97 && share < expected * 1.03, "server %d share %.4f", i, share);
	}
	/* weight 0 drains: no entries */
	servers[1].weight = 0;
	EXPECT_OK(ep_service_set(&conf, servers, 4, err));
	maglev_shares(conf.id, count, 4);
	EXPECT(count[1] == 0 && count[0] + count[2] + count[3] == MAGLEV_SIZE, "%u", count[1]);
	/* no servers: every entry empty */
	EXPECT_OK(ep_service_set(&conf, NULL, 0, err));
	const struct ep_service_rt *svc = ep_dp.services[conf.id];
	uint32_t empty = 0;
	for (uint32_t e = 0; e < svc->table_size; e++)
		empty += svc->table[e] == UINT16_MAX;
	EXPECT(empty == MAGLEV_SIZE, "%u of %u entries empty", empty, MAGLEV_SIZE);
	EXPECT_OK(ep_service_del(conf.id, err));
}

/* With equal weights the table is exactly the one of the paper's Algorithm 1 (Eisenbud et al.,
 * NSDI 2016, section 3.4): backends take turns in order, each taking the next free entry of its own
 * permutation. So removal disruption above 1/N (scripts/bench-lb.sh) is Maglev's, not our build's. */
static void test_maglev_matches_paper_algorithm(void)
{
	enum { N = 200 };
	struct ep_service_conf conf = { .id = 13, .vip = ip4(10, 0, 0, 103), .port = htons(80),
					.proto = IPPROTO_TCP, .table_size = MAGLEV_SIZE };
	static struct ep_server servers[N];
	for (uint32_t i = 0; i < N; i++)
		servers[i] = server(i, 1);
	EXPECT_OK(ep_service_set(&conf, servers, N, err));
	static uint32_t offset[N], skip[N], next[N];
	static int32_t entry[MAGLEV_SIZE];
	for (uint32_t i = 0; i < N; i++) {
		ep_maglev_permutation(&servers[i], MAGLEV_SIZE, &offset[i], &skip[i]);
		next[i] = 0;
	}
	for (uint32_t e = 0; e < MAGLEV_SIZE; e++)
		entry[e] = -1;
	for (uint32_t filled = 0;;) {
		for (uint32_t i = 0; i < N; i++) {
			uint32_t c = (uint32_t)(((uint64_t)offset[i] + (uint64_t)next[i] * skip[i]) % MAGLEV_SIZE);
			while (entry[c] >= 0) {
				next[i]++;
				c = (uint32_t)(((uint64_t)offset[i] + (uint64_t)next[i] * skip[i]) % MAGLEV_SIZE);
			}
			entry[c] = (int32_t)i;
			next[i]++;
			if (++filled == MAGLEV_SIZE)
				goto done;
		}
	}
done:;
	const struct ep_service_rt *svc = ep_dp.services[conf.id];
	uint32_t differ = 0;
	for (uint32_t e = 0; e < MAGLEV_SIZE; e++)
		differ += svc->servers[svc->table[e]].srv.ip != servers[entry[e]].ip;
	EXPECT(differ == 0, "%u of %u entries differ from the paper's algorithm", differ, MAGLEV_SIZE);
	EXPECT_OK(ep_service_del(conf.id, err));
}

static void test_maglev_removal_disruption_and_slots(void)
{
	enum { N = 8 };
	struct ep_service_conf conf = { .id = 12, .vip = ip4(10, 0, 0, 102), .port = htons(80),
					.proto = IPPROTO_TCP, .table_size = MAGLEV_SIZE };
	struct ep_server servers[N];
	for (uint32_t i = 0; i < N; i++)
		servers[i] = server(i, 1);
	EXPECT_OK(ep_service_set(&conf, servers, N, err));
	static uint32_t before_ip[MAGLEV_SIZE];
	const struct ep_service_rt *svc = ep_dp.services[conf.id];
	uint32_t slot_of_5 = UINT32_MAX;
	for (uint32_t s = 0; s < svc->nslots; s++)
		if (svc->servers[s].srv.ip == servers[5].ip)
			slot_of_5 = s;
	EXPECT(slot_of_5 != UINT32_MAX);
	for (uint32_t e = 0; e < MAGLEV_SIZE; e++)
		before_ip[e] = svc->servers[svc->table[e]].srv.ip;
	uint32_t slot_before[N];
	for (uint32_t s = 0; s < N; s++)
		slot_before[s] = s;
	for (uint32_t s = 0; s < N; s++)
		EXPECT(svc->servers[s].srv.ip == servers[s].ip, "slots follow the first list");

	/* remove server 5, and list the others in a different order */
	struct ep_server rest[N - 1];
	uint32_t k = 0;
	for (int i = N - 1; i >= 0; i--)
		if (i != 5)
			rest[k++] = servers[i];
	EXPECT_OK(ep_service_set(&conf, rest, N - 1, err));
	svc = ep_dp.services[conf.id];
	EXPECT(svc->nslots == N && !svc->servers[slot_of_5].present, "the removed server's slot is vacant");
	for (uint32_t s = 0; s < N; s++)
		if (s != slot_of_5)
			EXPECT(svc->servers[s].present && svc->servers[s].srv.ip == servers[slot_before[s]].ip,
			       "server of slot %u moved", s);
	uint32_t moved_from_removed = 0, moved_other = 0, owned_by_removed = 0;
	for (uint32_t e = 0; e < MAGLEV_SIZE; e++) {
		uint32_t now_ip = svc->servers[svc->table[e]].srv.ip;
		EXPECT(now_ip != servers[5].ip);
		if (before_ip[e] == servers[5].ip) {
			owned_by_removed++;
			moved_from_removed++;
		} else if (now_ip != before_ip[e]) {
			moved_other++;
		}
	}
	double removed_share = (double)owned_by_removed / MAGLEV_SIZE;
	double extra = (double)moved_other / MAGLEV_SIZE;
	diag("removing 1 of %d servers: its share %.4f (1/N = %.4f) moved; other entries moved: %.4f", N,
	     removed_share, 1.0 / N, extra);
	EXPECT(moved_from_removed == owned_by_removed);
	EXPECT(extra < 0.03, "%.4f of the table moved between surviving servers", extra);

	/* a new server takes the vacant slot; the survivors stay where they were */
	struct ep_server grown[N];
	memcpy(grown, rest, sizeof(rest));
	grown[N - 1] = server(77, 1);
	EXPECT_OK(ep_service_set(&conf, grown, N, err));
	svc = ep_dp.services[conf.id];
	EXPECT(svc->nslots == N && svc->servers[slot_of_5].present &&
	       svc->servers[slot_of_5].srv.ip == server(77, 1).ip);
	for (uint32_t s = 0; s < N; s++)
		if (s != slot_of_5)
			EXPECT(svc->servers[s].srv.ip == servers[s].ip, "slot %u", s);

	/* listing a server twice is refused */
	struct ep_server twice[2] = { server(1, 1), server(1, 1) };
	struct ep_error err = { 0 };
	EXPECT(ep_service_set(&conf, twice, 2, &err) != 0 && err.code == EP_EINVAL && strstr(err.msg, "twice"));
	struct ep_service_conf not_prime = conf;
	not_prime.table_size = 65536;
	EXPECT(ep_service_set(&not_prime, grown, N, &err) != 0 && err.code == EP_EINVAL);
	EXPECT_OK(ep_service_del(conf.id, err));
	EXPECT(ep_service_del(conf.id, &err) != 0 && err.code == EP_ENOENT);
}

/* ---- TCP state ---- */

/* The worker hashes &meta->key with rte_hash_crc, which reads it as 8-byte words. */
static void test_meta_key_alignment(void)
{
	EXPECT(offsetof(struct ep_meta, key) % 8 == 0 && _Alignof(struct ep_meta) >= 8,
	       "struct ep_meta puts the flow key at offset %zu with alignment %zu", offsetof(struct ep_meta, key),
	       _Alignof(struct ep_meta));
}

static void test_tcp_state_tracking(void)
{
	struct ep_flow f;
	memset(&f, 0, sizeof(f));
	static const struct {
		uint8_t flags, expect;
	} steps[] = {
		{ EP_TCP_SYN, EP_TCPS_SYN },
		{ EP_TCP_SYN | EP_TCP_ACK, EP_TCPS_SYN },
		{ EP_TCP_ACK, EP_TCPS_ESTABLISHED },
		{ EP_TCP_ACK | EP_TCP_PSH, EP_TCPS_ESTABLISHED },
		{ EP_TCP_FIN | EP_TCP_ACK, EP_TCPS_FIN },
		{ EP_TCP_ACK, EP_TCPS_FIN },        /* FIN is sticky */
		{ EP_TCP_SYN, EP_TCPS_FIN },
		{ EP_TCP_RST, EP_TCPS_RST },
		{ EP_TCP_ACK, EP_TCPS_RST },        /* so is RST */
		{ EP_TCP_FIN, EP_TCPS_RST },
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		ep_flow_track_tcp(&f, steps[i].flags);
		EXPECT(f.tcp_state == steps[i].expect, "step %zu: state %u, expected %u", i, f.tcp_state,
		       steps[i].expect);
	}
	uint64_t hz = ep_dp.tsc_hz;
	static const struct {
		uint8_t state, proto;
		uint32_t seconds;
	} timeouts[] = {
		{ EP_TCPS_NONE, IPPROTO_TCP, 10 }, { EP_TCPS_SYN, IPPROTO_TCP, 10 },
		{ EP_TCPS_ESTABLISHED, IPPROTO_TCP, 300 }, { EP_TCPS_FIN, IPPROTO_TCP, 30 },
		{ EP_TCPS_RST, IPPROTO_TCP, 5 }, { EP_TCPS_NONE, IPPROTO_UDP, 60 },
		{ EP_TCPS_NONE, IPPROTO_ICMP, 20 },
	};
	for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
		f.tcp_state = timeouts[i].state;
		uint64_t got = ep_flow_timeout_tsc(&f, timeouts[i].proto);
		EXPECT(got == timeouts[i].seconds * hz, "state %u proto %u: %.0f s, expected %u s", timeouts[i].state,
		       timeouts[i].proto, (double)got / (double)hz, timeouts[i].seconds);
	}
}

/* ---- the worker, end to end over the net_ring0 loopback ---- */

static uint8_t punt_buf[16][2048];
static struct ep_punted punted[16];
static uint32_t npunted;

/* Polls (housekeeping + punted packets) until cond holds or a second passes. */
#define POLL_UNTIL(cond)                                                                         \
	do {                                                                                     \
		uint64_t until_ = rte_rdtsc() + rte_get_tsc_hz();                                \
		while (!(cond) && rte_rdtsc() < until_) {                                        \
			collect_punted();                                                        \
			sleep_ms(1);                                                             \
		}                                                                                \
	} while (0)

static void collect_punted(void)
{
	if (npunted == 16)
		return;
	for (uint32_t i = npunted; i < 16; i++)
		punted[i] = (struct ep_punted){ .data = punt_buf[i], .cap = sizeof(punt_buf[i]) };
	npunted += ep_poll(&punted[npunted], 16 - npunted);
}

static void reset_punted(void)
{
	collect_punted();
	npunted = 0;
}

static struct ep_lcore_counters totals(void)
{
	struct ep_lcore_counters c;
	ep_counters_total(&c);
	return c;
}

static void test_loopback_port(void)
{
	struct ep_port_info info;
	EXPECT_OK(ep_port_info(0, &info, err));
	EXPECT(ep_port_count() == 1 && strcmp(info.driver, "net_ring") == 0, "%s", info.driver);
	EXPECT(ep_worker_count() == 1 && ep_worker_lcore(0) == 1);
	/* a frame injected on port 0 comes back in: no affinity, miss policy punt */
	uint8_t f[128];
	uint32_t len = build_tcp(f, router_mac, client_mac, ip4(10, 1, 1, 1), 1111, ip4(10, 2, 2, 2), 22,
				 EP_TCP_SYN, 64, 10);
	reset_punted();
	struct ep_lcore_counters before = totals();
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 1);
	EXPECT(npunted == 1, "the injected frame did not come back");
	EXPECT(punted[0].port == 0 && punted[0].len == len && memcmp(punted[0].data, f, len) == 0,
	       "punted bytes differ (len %u)", punted[0].len);
	struct ep_lcore_counters after = totals();
	EXPECT(after.misses - before.misses == 1 && after.punted - before.punted == 1);
	EXPECT(after.port_tx_pkts[0] - before.port_tx_pkts[0] == 1 &&
	       after.port_rx_pkts[0] - before.port_rx_pkts[0] == 1);
	EXPECT(after.port_rx_bytes[0] - before.port_rx_bytes[0] == len);
	EXPECT(ep_injected_count() >= 1);
	struct ep_port_counters pc;
	EXPECT(ep_port_counters(0, &pc) == 0 && pc.tx_pkts >= 1 && pc.rx_pkts >= 1);
}

/* One lap: an affinity NATs and forwards out of port 0, the frame comes back in and a second
 * affinity keyed on the rewritten tuple punts it, so its bytes can be checked. */
static void test_worker_nat_forward(void)
{
	uint32_t client = ip4(10, 1, 1, 1), vip = ip4(10, 0, 0, 100), backend = ip4(10, 30, 0, 7);
	struct ep_flow_key in_key = tcp_key(client, 40000, vip, 80);
	struct ep_action nat = { .type = EP_ACT_FORWARD, .out_port = 0, .flags = EP_ACT_F_NEXT_HOP,
				 .nat_dst_ip = backend, .nat_dst_port = htons(8080) };
	memcpy(nat.next_hop_mac, server_mac, 6);
	struct ep_flow_key rewritten_key = tcp_key(client, 40000, backend, 8080);
	struct ep_action punt = punt_action();
	EXPECT_OK(ep_affinity_add(&in_key, &nat, 60, err));
	EXPECT_OK(ep_affinity_add(&rewritten_key, &punt, 60, err));
	uint8_t f[128];
	uint32_t len = build_tcp(f, router_mac, client_mac, client, 40000, vip, 80, EP_TCP_SYN, 64, 12);
	reset_punted();
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 1);
	EXPECT(npunted == 1);
	const uint8_t *o = punted[0].data;
	EXPECT(punted[0].len == len);
	EXPECT(memcmp(o, server_mac, 6) == 0, "destination MAC is the next hop");
	struct ep_port_info info;
	EXPECT_OK(ep_port_info(0, &info, err));
	EXPECT(memcmp(o + 6, info.mac, 6) == 0, "source MAC is the port's");
	EXPECT(o[IP_OFF + 8] == 63, "TTL %u", o[IP_OFF + 8]);
	EXPECT(memcmp(o + IP_OFF + 16, &backend, 4) == 0 && get16(o + L4_OFF + 2) == 8080);
	EXPECT(memcmp(o + IP_OFF + 12, &client, 4) == 0 && get16(o + L4_OFF) == 40000);
	EXPECT(ip_header_valid(o + IP_OFF), "IPv4 header checksum");
	EXPECT(l4_checksum_valid(o + IP_OFF), "TCP checksum");
	EXPECT(memcmp(o + L4_OFF + 20, f + L4_OFF + 20, 12) == 0, "payload intact");
	/* each affinity counted one packet of its size */
	const struct ep_affinity_info *a = find_listed(&in_key);
	EXPECT(a && a->packets == 1 && a->bytes == len);
	uint8_t state_after_syn = a->tcp_state;
	a = find_listed(&rewritten_key);
	EXPECT(a && a->packets == 1 && a->bytes == len);
	EXPECT(ep_affinity_del(&in_key) == 1 && ep_affinity_del(&rewritten_key) == 1);
	EXPECT(state_after_syn == EP_TCPS_SYN, "state %u after a SYN", state_after_syn);
}

/* An IPv6 frame hits its affinity (found by digest, checked against the whole key); when the flow
 * at that position holds another key, as after a digest collision, the frame is a miss. */
static void test_worker_ipv6_affinity(void)
{
	struct ep_flow_key k = udp6_key(7, 5353, 8, 53);
	struct ep_action punt = punt_action();
	EXPECT_OK(ep_affinity_add(&k, &punt, 60, err));
	uint8_t f[128];
	uint32_t len = build_udp6(f, &k, 10);
	reset_punted();
	struct ep_lcore_counters before = totals();
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 1);
	EXPECT(npunted == 1 && punted[0].reason == EP_PUNT_ACTION && punted[0].len == len, "%u punted", npunted);
	struct ep_lcore_counters after = totals();
	EXPECT(after.manager_hits - before.manager_hits == 1 && after.misses == before.misses);
	const struct ep_affinity_info *a = find_listed(&k);
	EXPECT(a && a->packets == 1 && a->bytes == len);

	int32_t pos = ep_affinity_table_find(&ep_dp.manager, &k);
	EXPECT(pos >= 0);
	ep_affinity_flow(&ep_dp.manager, (uint32_t)pos)->key.dst[15] ^= 0x80; /* the flow now holds another key */
	reset_punted();
	before = totals();
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 1);
	after = totals();
	ep_affinity_flow(&ep_dp.manager, (uint32_t)pos)->key.dst[15] ^= 0x80;
	EXPECT(npunted == 1 && punted[0].reason == EP_PUNT_MISS, "%u punted", npunted);
	EXPECT(after.misses - before.misses == 1 && after.manager_hits == before.manager_hits);
	EXPECT(ep_affinity_del(&k) == 1);
}

/* A FIN on a manager affinity cuts its remaining life to the FIN timeout. */
static void test_worker_fin_shortens_ttl(void)
{
	uint32_t a_ip = ip4(10, 1, 1, 2), b_ip = ip4(10, 2, 2, 3);
	struct ep_flow_key k = tcp_key(a_ip, 3333, b_ip, 443);
	struct ep_action punt = punt_action();
	EXPECT_OK(ep_affinity_add(&k, &punt, 600, err));
	uint8_t f[128];
	uint32_t len = build_tcp(f, router_mac, client_mac, a_ip, 3333, b_ip, 443, EP_TCP_ACK, 64, 0);
	reset_punted();
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 1);
	const struct ep_affinity_info *a = find_listed(&k);
	EXPECT(npunted == 1 && a && a->ttl_s > 590);
	EXPECT(a->tcp_state == EP_TCPS_ESTABLISHED, "state %u after an ACK", a->tcp_state);
	len = build_tcp(f, router_mac, client_mac, a_ip, 3333, b_ip, 443, EP_TCP_FIN | EP_TCP_ACK, 64, 0);
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 2);
	a = find_listed(&k);
	EXPECT(npunted == 2 && a && a->packets == 2);
	EXPECT(ep_affinity_del(&k) == 1);
	EXPECT(a->ttl_s <= dp_config.timeouts_s[EP_TO_FIN], "ttl %u after FIN", a->ttl_s);
	EXPECT(a->tcp_state == EP_TCPS_FIN, "state %u after a FIN", a->tcp_state);
}

/* A wildcard with a service action: the worker picks a server by Maglev, DNATs, and learns both
 * directions; the server's reply is SNATed back to the VIP. */
static void test_worker_virtual_service(void)
{
	uint32_t client = ip4(10, 1, 1, 9), vip = ip4(10, 0, 0, 50);
	struct ep_service_conf conf = { .id = 3, .vip = vip, .port = htons(80), .proto = IPPROTO_TCP,
					.table_size = 251 };
	struct ep_server servers[2] = { server(1, 1), server(2, 1) };
	EXPECT_OK(ep_service_set(&conf, servers, 2, err));
	struct ep_wildcard w = wildcard(IPPROTO_TCP, 0, 0, vip, 0xffffffffu, 0, 80, 10);
	w.action = (struct ep_action){ .type = EP_ACT_SERVICE, .service_id = 3 };
	EXPECT_OK(ep_wildcards_commit(&w, 1, err));
	/* servers and the client are on port 0 (so the rewritten packets come back in and miss) */
	EXPECT_OK(ep_route_add(ip4(10, 20, 0, 0), 16, 0, 0, err));
	EXPECT_OK(ep_route_add(ip4(10, 1, 1, 0), 24, 0, 0, err));
	EXPECT_OK(ep_neighbor_set(servers[0].ip, 0, server_mac, err));
	EXPECT_OK(ep_neighbor_set(servers[1].ip, 0, server_mac, err));
	EXPECT_OK(ep_neighbor_set(client, 0, client_mac, err));

	uint8_t f[128];
	uint32_t len = build_tcp(f, router_mac, client_mac, client, 50000, vip, 80, EP_TCP_SYN, 64, 0);
	reset_punted();
	struct ep_lcore_counters before = totals();
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 1);
	EXPECT(npunted == 1, "the DNATed SYN did not come back");
	const uint8_t *o = punted[0].data;
	uint32_t chosen;
	memcpy(&chosen, o + IP_OFF + 16, 4);
	EXPECT(chosen == servers[0].ip || chosen == servers[1].ip, "dst %08x", ntohl(chosen));
	EXPECT(get16(o + L4_OFF + 2) == 8080 && memcmp(o, server_mac, 6) == 0 && o[IP_OFF + 8] == 63);
	EXPECT(ip_header_valid(o + IP_OFF) && l4_checksum_valid(o + IP_OFF));
	struct ep_lcore_counters after = totals();
	EXPECT(after.flows_created - before.flows_created == 1 && ep_learned_count() == 2);
	EXPECT(after.actions[EP_AC_SERVICE] - before.actions[EP_AC_SERVICE] == 1);

	/* the reply from that server, as it would arrive */
	len = build_tcp(f, router_mac, server_mac, chosen, 8080, client, 50000, EP_TCP_SYN | EP_TCP_ACK, 64, 4);
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 2);
	EXPECT(npunted == 2, "the SNATed reply did not come back");
	o = punted[1].data;
	EXPECT(memcmp(o + IP_OFF + 12, &vip, 4) == 0 && get16(o + L4_OFF) == 80, "source is VIP:80");
	EXPECT(memcmp(o + IP_OFF + 16, &client, 4) == 0 && get16(o + L4_OFF + 2) == 50000);
	EXPECT(memcmp(o, client_mac, 6) == 0 && ip_header_valid(o + IP_OFF) && l4_checksum_valid(o + IP_OFF));

	/* server counters: one flow on the chosen server, two packets through the client->VIP side */
	struct ep_server_counters sc[4];
	uint32_t n = ep_server_counters(sc, 4), flows = 0, handshakes = 0;
	uint64_t handshake_us = 0;
	for (uint32_t i = 0; i < n; i++)
		if (sc[i].service_id == 3 && sc[i].ip == chosen) {
			flows += (uint32_t)sc[i].flows;
			handshakes += (uint32_t)sc[i].handshakes;
			handshake_us += sc[i].handshake_us_total;
		}
	EXPECT(flows == 1, "%u flows", flows);
	/* the SYN-ACK closed the handshake the SYN opened: one timing, under the second the test took */
	EXPECT(handshakes == 1 && handshake_us > 0 && handshake_us < 1000000, "%u handshakes, %lu us", handshakes,
	       (unsigned long)handshake_us);
	EXPECT_OK(ep_wildcards_commit(NULL, 0, err));
	EXPECT_OK(ep_service_del(3, err));
}

/* A service's QoS marks (SR-R5) on its flows: towards the server DSCP 46 and an 802.1Q tag (VLAN
 * 100, priority 5); the reply towards the client DSCP 10 under MPLS label 1000 (traffic class 3). The
 * IP checksum stays valid and the translated packet is otherwise what NAT alone makes. */
static void test_worker_service_qos(void)
{
	uint32_t client = ip4(10, 1, 1, 9), vip = ip4(10, 0, 0, 51);
	struct ep_service_conf conf = { .id = 4, .vip = vip, .port = htons(80), .proto = IPPROTO_TCP, .table_size = 251 };
	conf.qos_to_server = (struct ep_qos){ .flags = EP_ACT_F_DSCP | EP_ACT_F_VLAN_PUSH | EP_ACT_F_PCP, .dscp = 46,
					      .pcp = 5, .vlan_tci = 100 };
	conf.qos_to_client = (struct ep_qos){ .flags = EP_ACT_F_DSCP | EP_ACT_F_MPLS_PUSH | EP_ACT_F_PCP, .dscp = 10,
					      .pcp = 3, .mpls_label = 1000 };
	struct ep_server srv = server(1, 1);
	struct ep_error err = { 0 };

	/* refused: values out of range, flags that are no QoS mark, replies marked in a direct-return mode */
	struct ep_service_conf bad = conf;
	bad.qos_to_server.dscp = 64;
	EXPECT(ep_service_set(&bad, &srv, 1, &err) != 0 && strstr(err.msg, "DSCP 0-63"), "%s", err.msg);
	bad = conf;
	bad.qos_to_client.flags |= EP_ACT_F_NEXT_HOP;
	EXPECT(ep_service_set(&bad, &srv, 1, &err) != 0 && strstr(err.msg, "unknown flags"), "%s", err.msg);
	bad = conf;
	bad.mode = EP_MODE_DSR;
	srv.port = htons(80);
	EXPECT(ep_service_set(&bad, &srv, 1, &err) != 0 && strstr(err.msg, "towards clients needs mode nat"), "%s", err.msg);
	srv = server(1, 1);

	EXPECT_OK(ep_service_set(&conf, &srv, 1, err));
	struct ep_wildcard w = wildcard(IPPROTO_TCP, 0, 0, vip, 0xffffffffu, 0, 80, 10);
	w.action = (struct ep_action){ .type = EP_ACT_SERVICE, .service_id = 4 };
	EXPECT_OK(ep_wildcards_commit(&w, 1, err));
	EXPECT_OK(ep_route_add(ip4(10, 20, 0, 0), 16, 0, 0, err));
	EXPECT_OK(ep_route_add(ip4(10, 1, 1, 0), 24, 0, 0, err));
	EXPECT_OK(ep_neighbor_set(srv.ip, 0, server_mac, err));
	EXPECT_OK(ep_neighbor_set(client, 0, client_mac, err));

	uint8_t f[128];
	uint32_t len = build_tcp(f, router_mac, client_mac, client, 50001, vip, 80, EP_TCP_SYN, 64, 0);
	reset_punted();
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 1);
	EXPECT(npunted == 1, "the marked SYN did not come back");
	const uint8_t *o = punted[0].data;
	const uint32_t tagged_ip = IP_OFF + 4;
	EXPECT(memcmp(o, server_mac, 6) == 0 && get16(o + 12) == 0x8100, "802.1Q tag pushed (type %04x)", get16(o + 12));
	EXPECT(get16(o + 14) == (5 << 13 | 100) && get16(o + 16) == 0x0800, "TCI %04x", get16(o + 14));
	EXPECT(o[tagged_ip + 1] >> 2 == 46 && ip_header_valid(o + tagged_ip), "DSCP %u", o[tagged_ip + 1] >> 2);
	EXPECT(memcmp(o + tagged_ip + 16, &srv.ip, 4) == 0 && l4_checksum_valid(o + tagged_ip), "DNAT kept");

	len = build_tcp(f, router_mac, server_mac, srv.ip, 8080, client, 50001, EP_TCP_SYN | EP_TCP_ACK, 64, 4);
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 2);
	EXPECT(npunted == 2, "the marked reply did not come back");
	o = punted[1].data;
	EXPECT(memcmp(o, client_mac, 6) == 0 && get16(o + 12) == 0x8847, "MPLS pushed (type %04x)", get16(o + 12));
	uint32_t entry = (uint32_t)get16(o + 14) << 16 | get16(o + 16);
	EXPECT(entry >> 12 == 1000 && (entry >> 9 & 7) == 3 && (entry >> 8 & 1) == 1, "label entry %08x", entry);
	EXPECT(o[tagged_ip + 1] >> 2 == 10 && ip_header_valid(o + tagged_ip), "DSCP %u", o[tagged_ip + 1] >> 2);
	EXPECT(memcmp(o + tagged_ip + 12, &vip, 4) == 0 && l4_checksum_valid(o + tagged_ip), "SNAT to the VIP kept");
	EXPECT_OK(ep_wildcards_commit(NULL, 0, err));
	EXPECT_OK(ep_service_del(4, err));
}

/* An IPv6 service in NAT and full NAT: the client's SYN leaves DNATed (NAT66) to a server with a
 * from-scratch valid TCP checksum and the hop limit decremented, the server's SYN-ACK leaves
 * translated back to VIP:80 -> client. Everything goes out on net_ring0 and comes back as a miss. */
static void test_worker_service6(void)
{
	uint8_t client[16], vip[16], snat[16];
	addr6(client, 1, 2);
	addr6(vip, 1, 0x100);
	addr6(snat, 20, 0xfa);
	uint8_t zero[16] = { 0 }, server_net[16];
	addr6(server_net, 20, 0);
	EXPECT_OK(ep_route6_add(server_net, 64, 0, zero, err));
	EXPECT_OK(ep_route6_add(client, 64, 0, zero, err));
	EXPECT_OK(ep_neighbor6_set(client, 0, client_mac, err));
	struct ep_server servers[2] = { { .port = htons(8080), .weight = 1 }, { .port = htons(8080), .weight = 1 } };
	for (int i = 0; i < 2; i++) {
		addr6(servers[i].ip6, 20, (uint16_t)(i + 1));
		EXPECT_OK(ep_neighbor6_set(servers[i].ip6, 0, server_mac, err));
	}
	for (int full = 0; full <= 1; full++) {
		uint32_t id = 40 + (uint32_t)full;
		uint16_t sport = (uint16_t)(51000 + full);
		struct ep_service_conf conf = { .id = id, .family = 6, .port = htons(80), .proto = IPPROTO_TCP,
						.table_size = 251, .mode = full ? EP_MODE_FULLNAT : EP_MODE_NAT,
						.snat_port_min = 30000, .snat_port_max = 30099 };
		memcpy(conf.vip6, vip, 16);
		memcpy(conf.snat_ip6, snat, 16);
		EXPECT_OK(ep_service_set(&conf, servers, 2, err));
		struct ep_wildcard w = wildcard6(IPPROTO_TCP, vip, 128, 80, 10);
		w.action = (struct ep_action){ .type = EP_ACT_SERVICE, .service_id = id };
		EXPECT_OK(ep_wildcards_commit(&w, 1, err));
		uint32_t learned_before = ep_learned_count();

		uint8_t f[256];
		uint32_t len = build_tcp6(f, router_mac, client_mac, client, sport, vip, 80, EP_TCP_SYN, 64);
		reset_punted();
		EXPECT_OK(ep_inject(0, f, len, err));
		POLL_UNTIL(npunted == 1);
		EXPECT(npunted == 1, "the DNATed SYN did not come back (full NAT %d)", full);
		const uint8_t *o = punted[0].data, *ip = o + IP_OFF, *tcp = o + L4_OFF6;
		const uint8_t *chosen = memcmp(ip + 24, servers[0].ip6, 16) == 0 ? servers[0].ip6
				      : memcmp(ip + 24, servers[1].ip6, 16) == 0 ? servers[1].ip6
										 : NULL;
		EXPECT(chosen != NULL, "destination is no server");
		EXPECT(get16(tcp + 2) == 8080 && memcmp(o, server_mac, 6) == 0 && ip[7] == 63);
		EXPECT(memcmp(ip + 8, full ? snat : client, 16) == 0, "source");
		uint16_t lport = get16(tcp);
		EXPECT(full ? lport >= 30000 && lport <= 30099 : lport == sport, "source port %u", lport);
		EXPECT(l4_checksum_valid6(ip), "TCP checksum after NAT66");
		EXPECT(ep_learned_count() == learned_before + 2);

		/* the server's SYN-ACK, to the client (NAT) or to the unit's address (full NAT) */
		len = build_tcp6(f, router_mac, server_mac, chosen, 8080, full ? snat : client, lport,
				 EP_TCP_SYN | EP_TCP_ACK, 64);
		EXPECT_OK(ep_inject(0, f, len, err));
		POLL_UNTIL(npunted == 2);
		EXPECT(npunted == 2, "the reply did not come back (full NAT %d)", full);
		o = punted[1].data;
		ip = o + IP_OFF;
		tcp = o + L4_OFF6;
		EXPECT(memcmp(ip + 8, vip, 16) == 0 && get16(tcp) == 80, "source is VIP:80");
		EXPECT(memcmp(ip + 24, client, 16) == 0 && get16(tcp + 2) == sport, "destination is the client");
		EXPECT(memcmp(o, client_mac, 6) == 0 && ip[7] == 63 && l4_checksum_valid6(ip));

		struct ep_server_counters sc[8];
		uint32_t n = ep_server_counters(sc, 8), flows = 0;
		for (uint32_t i = 0; i < n; i++)
			if (sc[i].service_id == id && memcmp(sc[i].ip6, chosen, 16) == 0)
				flows += (uint32_t)sc[i].flows;
		EXPECT(flows == 1, "%u flows", flows);

		/* flushing the server forgets the connection: the client's next segment is dropped */
		struct ep_error e = { 0 };
		EXPECT(ep_service_flush_server6(id, client, htons(8080), &e) != 0 && e.code == EP_ENOENT, "not a server");
		EXPECT_OK(ep_service_flush_server6(id, chosen, htons(8080), err));
		struct ep_lcore_counters before = totals();
		len = build_tcp6(f, router_mac, client_mac, client, sport, vip, 80, EP_TCP_ACK, 64);
		EXPECT_OK(ep_inject(0, f, len, err));
		/* up to 5 s: an ASan worker on a loaded 2-core host once missed one second */
		for (int second = 0; second < 5 && totals().drops[EP_DROP_SERVER_FLUSHED] == before.drops[EP_DROP_SERVER_FLUSHED]; second++)
			POLL_UNTIL(totals().drops[EP_DROP_SERVER_FLUSHED] > before.drops[EP_DROP_SERVER_FLUSHED]);
		EXPECT(totals().drops[EP_DROP_SERVER_FLUSHED] - before.drops[EP_DROP_SERVER_FLUSHED] == 1);
		EXPECT(ep_learned_count() == learned_before, "both directions forgotten");
		EXPECT_OK(ep_wildcards_commit(NULL, 0, err));
		EXPECT_OK(ep_service_del(id, err));
	}
}

/* Puts an 8-byte destination options header (PadN) between the IPv6 header and the L4 header of
 * a frame built without extension headers; the L4 checksum stays valid. Returns the new length. */
static uint32_t add_destination_options(uint8_t *f, uint32_t len)
{
	uint8_t *ip = f + IP_OFF;
	memmove(ip + 48, ip + 40, len - L4_OFF6);
	const uint8_t opts[8] = { ip[6], 0, 1, 4, 0, 0, 0, 0 };
	memcpy(ip + 40, opts, sizeof(opts));
	ip[6] = 60;
	put16(ip + 4, (uint16_t)(get16(ip + 4) + 8));
	return len + 8;
}

/* IPv6 services in the tunnel modes: the client's packets leave in an outer IPv6 header from the
 * port's address6 to the chosen server (ipip: next header 41; gre: 47 + GRE 0x86DD; gue: UDP to
 * the service's port + GUE protocol 41, with a valid UDP checksum whether the payload's sum came
 * from the inner TCP checksum or from the bytes), the inner packet intact but for its hop limit,
 * one flow per connection and none for replies (they bypass the unit). Without an address6 on
 * the port there is no outer source: dropped as no_tunnel_source. */
static void test_worker_service6_tunnels(void)
{
	uint8_t client[16], vip[16], own[16], server_net[16], zero[16] = { 0 };
	addr6(client, 1, 2);
	addr6(own, 20, 1);
	addr6(server_net, 20, 0);
	EXPECT_OK(ep_route6_add(server_net, 64, 0, zero, err));
	struct ep_server servers[2] = { { .weight = 1 }, { .weight = 1 } };
	for (int i = 0; i < 2; i++) {
		addr6(servers[i].ip6, 20, (uint16_t)(0x11 + i));
		EXPECT_OK(ep_neighbor6_set(servers[i].ip6, 0, server_mac, err));
	}
	static const struct {
		uint8_t mode, next_header;
		uint32_t outer;
	} modes[] = { { EP_MODE_IPIP, 41, 40 }, { EP_MODE_GRE, 47, 44 }, { EP_MODE_GUE, 17, 52 } };
	for (uint32_t k = 0; k < 3; k++) {
		const uint8_t mode = modes[k].mode;
		const uint32_t id = 60 + k, outer = modes[k].outer;
		addr6(vip, 1, (uint16_t)(0x300 + k));
		struct ep_service_conf conf = { .id = id, .family = 6, .port = htons(80), .proto = IPPROTO_TCP,
						.table_size = 251, .mode = mode, .gue_port = 6080 };
		if (mode == EP_MODE_GRE) /* a QoS mark towards the server goes on both headers */
			conf.qos_to_server = (struct ep_qos){ .flags = EP_ACT_F_DSCP, .dscp = 46 };
		memcpy(conf.vip6, vip, 16);
		EXPECT_OK(ep_service_set(&conf, servers, 2, err));
		struct ep_wildcard w = wildcard6(IPPROTO_TCP, vip, 128, 80, 10);
		w.action = (struct ep_action){ .type = EP_ACT_SERVICE, .service_id = id };
		EXPECT_OK(ep_wildcards_commit(&w, 1, err));
		uint8_t f[256];
		uint16_t sport = (uint16_t)(52000 + k);
		uint32_t len;

		if (k == 0) {
			/* no address6 on the port yet: no source for the outer header */
			struct ep_lcore_counters before = totals();
			len = build_tcp6(f, router_mac, client_mac, client, 40000, vip, 80, EP_TCP_SYN, 64);
			EXPECT_OK(ep_inject(0, f, len, err));
			POLL_UNTIL(totals().drops[EP_DROP_NO_TUNNEL_SOURCE] > before.drops[EP_DROP_NO_TUNNEL_SOURCE]);
			EXPECT(totals().drops[EP_DROP_NO_TUNNEL_SOURCE] - before.drops[EP_DROP_NO_TUNNEL_SOURCE] == 1);
			EXPECT_OK(ep_port_configure6(0, own, 64, err));
		}
		uint32_t learned_before = ep_learned_count();
		uint64_t expired_before = totals().flows_expired;
		const uint8_t *chosen = NULL;
		/* the SYN (inner sum from its TCP checksum), then a segment behind a destination options
		 * header (GUE: summed from the bytes) */
		for (int segment = 0; segment < 2; segment++) {
			len = build_tcp6(f, router_mac, client_mac, client, sport, vip, 80, segment ? EP_TCP_ACK : EP_TCP_SYN, 64);
			if (segment)
				len = add_destination_options(f, len);
			const uint32_t inner_len = len - ETH_LEN;
			reset_punted();
			EXPECT_OK(ep_inject(0, f, len, err));
			POLL_UNTIL(npunted == 1);
			EXPECT(npunted == 1, "mode %u segment %d did not come back", mode, segment);
			const uint8_t *o = punted[0].data, *ip = o + IP_OFF, *inner = ip + outer;
			EXPECT(punted[0].len == len + outer, "mode %u: %u bytes for %u", mode, punted[0].len, len);
			EXPECT(memcmp(o, server_mac, 6) == 0 && get16(o + 12) == 0x86dd);
			const uint8_t tclass = (uint8_t)((ip[0] & 0x0f) << 4 | ip[1] >> 4);
			EXPECT(ip[0] >> 4 == 6 && tclass == (mode == EP_MODE_GRE ? 46 << 2 : 0), "traffic class %u", tclass);
			EXPECT(get16(ip + 4) == outer - 40 + inner_len && ip[6] == modes[k].next_header && ip[7] == 64,
			       "mode %u: payload length %u, next header %u", mode, get16(ip + 4), ip[6]);
			EXPECT(memcmp(ip + 8, own, 16) == 0, "outer source is the port's address6");
			const uint8_t *server = memcmp(ip + 24, servers[0].ip6, 16) == 0   ? servers[0].ip6
						: memcmp(ip + 24, servers[1].ip6, 16) == 0 ? servers[1].ip6
											   : NULL;
			EXPECT(server != NULL, "outer destination is no server");
			if (segment)
				EXPECT(server == chosen, "the connection moved");
			chosen = server;
			if (mode == EP_MODE_GRE)
				EXPECT(get16(ip + 40) == 0 && get16(ip + 42) == 0x86dd, "GRE header");
			if (mode == EP_MODE_GUE) {
				const uint8_t *udp = ip + 40;
				EXPECT(get16(udp) >= 0xc000 && get16(udp + 2) == 6080 && get16(udp + 4) == 12 + inner_len);
				EXPECT(udp[8] == 0 && udp[9] == 41 && get16(udp + 10) == 0, "GUE header");
				EXPECT(get16(udp + 6) != 0 && l4_checksum_valid6(ip), "segment %d: UDP checksum %04x", segment,
				       get16(udp + 6));
			}
			/* the client's packet, hop limit decremented (and marked), the rest as sent */
			EXPECT(memcmp(inner + 8, client, 16) == 0 && memcmp(inner + 24, vip, 16) == 0 && inner[7] == 63);
			EXPECT(memcmp(inner + 4, f + IP_OFF + 4, 3) == 0 && memcmp(inner + 40, f + IP_OFF + 40, inner_len - 40) == 0);
			if (!segment)
				EXPECT(l4_checksum_valid6(inner), "inner TCP checksum");
			if (mode == EP_MODE_GRE)
				EXPECT(((inner[0] & 0x0f) << 4 | inner[1] >> 4) == 46 << 2, "inner DSCP");
		}
		EXPECT(ep_learned_count() == learned_before + 1, "one flow: replies bypass the unit (%d, %lu expired meanwhile)", (int)(ep_learned_count() - learned_before), (unsigned long)(totals().flows_expired - expired_before));
		EXPECT_OK(ep_wildcards_commit(NULL, 0, err));
		EXPECT_OK(ep_service_del(id, err));
	}
	EXPECT_OK(ep_port_configure6(0, zero, 0, err));
	EXPECT_OK(ep_route6_del(server_net, 64, err));
}

/* An IPv6 UDP fragment (fragment header, Identification id) of client:sport -> dst:80: the first
 * (offset 0, more fragments) carries the UDP header of a datagram of 8 + 2 * 16 bytes and the first
 * 16 payload bytes; a later one (offset 24) the last 16 bytes and no UDP header. */
static uint32_t build_udp6_fragment(uint8_t *f, const uint8_t src[16], uint16_t sport, const uint8_t dst[16], uint32_t id,
				    bool first)
{
	uint32_t payload = first ? 8 + 16 : 16;
	memset(f, 0, ETH_LEN + 40 + 8 + payload);
	memcpy(f, router_mac, 6);
	memcpy(f + 6, client_mac, 6);
	put16(f + 12, 0x86dd);
	uint8_t *ip = f + IP_OFF, *frag = ip + 40, *data = frag + 8;
	ip[0] = 0x60;
	put16(ip + 4, (uint16_t)(8 + payload));
	ip[6] = IPPROTO_FRAGMENT;
	ip[7] = 64;
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
	frag[0] = IPPROTO_UDP;
	put16(frag + 2, first ? 1 /* M */ : 24 /* offset 24 bytes, last */);
	put16(frag + 4, (uint16_t)(id >> 16));
	put16(frag + 6, (uint16_t)id);
	if (first) {
		put16(data, sport);
		put16(data + 2, 80);
		put16(data + 4, 8 + 32);
		data += 8;
	}
	for (uint32_t i = 0; i < 16; i++)
		data[i] = (uint8_t)(first ? i : 16 + i);
	return ETH_LEN + 40 + 8 + payload;
}

/* Fragments and ICMPv6 errors of an IPv6 NAT66 service (issue 3): a later fragment (no UDP header)
 * follows its first fragment to the same server, its destination translated; a later fragment
 * whose first never came is dropped as "fragment"; a packet-too-big about the server's reply (the
 * quote says VIP:80 -> client) reaches that server with the quote translated back to what the
 * server sent and a valid ICMPv6 checksum. */
static void test_worker_service6_fragments_and_icmp6(void)
{
	uint8_t client[16], vip[16], router[16], zero[16] = { 0 }, server_net[16];
	addr6(client, 1, 3);
	addr6(vip, 1, 0x101);
	addr6(router, 1, 0xfe);
	addr6(server_net, 20, 0);
	EXPECT_OK(ep_route6_add(server_net, 64, 0, zero, err));
	EXPECT_OK(ep_route6_add(client, 64, 0, zero, err));
	EXPECT_OK(ep_neighbor6_set(client, 0, client_mac, err));
	enum { SERVERS = 4, FLOWS = 6 };
	struct ep_server servers[SERVERS];
	for (int i = 0; i < SERVERS; i++) {
		servers[i] = (struct ep_server){ .port = htons(8080), .weight = 1 };
		addr6(servers[i].ip6, 20, (uint16_t)(0x30 + i));
		EXPECT_OK(ep_neighbor6_set(servers[i].ip6, 0, server_mac, err));
	}
	struct ep_service_conf conf = { .id = 42, .family = 6, .port = htons(80), .proto = IPPROTO_UDP,
					.table_size = 251, .mode = EP_MODE_NAT };
	memcpy(conf.vip6, vip, 16);
	EXPECT_OK(ep_service_set(&conf, servers, SERVERS, err));
	struct ep_wildcard w = wildcard6(IPPROTO_UDP, vip, 128, 80, 10);
	w.action = (struct ep_action){ .type = EP_ACT_SERVICE, .service_id = 42 };
	EXPECT_OK(ep_wildcards_commit(&w, 1, err));

	uint8_t f[256], first_server[FLOWS][16];
	uint32_t distinct = 0;
	for (uint32_t flow = 0; flow < FLOWS; flow++) {
		uint16_t sport = (uint16_t)(52000 + flow * 7);
		uint32_t id = 0x1234560 + flow;
		reset_punted();
		uint32_t len = build_udp6_fragment(f, client, sport, vip, id, true);
		EXPECT_OK(ep_inject(0, f, len, err));
		POLL_UNTIL(npunted == 1);
		len = build_udp6_fragment(f, client, sport, vip, id, false);
		EXPECT_OK(ep_inject(0, f, len, err));
		POLL_UNTIL(npunted == 2);
		EXPECT(npunted == 2, "flow %u: %u of 2 fragments came back", flow, npunted);
		if (npunted != 2)
			continue;
		const uint8_t *ip1 = punted[0].data + IP_OFF, *ip2 = punted[1].data + IP_OFF;
		memcpy(first_server[flow], ip1 + 24, 16);
		bool is_server = false;
		for (int i = 0; i < SERVERS; i++)
			is_server |= memcmp(ip1 + 24, servers[i].ip6, 16) == 0;
		EXPECT(is_server && get16(ip1 + 50) == 8080, "first fragment DNATed to a server:8080");
		EXPECT(memcmp(ip2 + 24, ip1 + 24, 16) == 0, "flow %u: the later fragment went to another server", flow);
		EXPECT(memcmp(ip2 + 8, client, 16) == 0 && ip2[7] == 63 && get16(ip2 + 42) == 24,
		       "later fragment: source, hop limit, offset kept");
		EXPECT(punted[1].data[IP_OFF + 48] == 16 && punted[1].data[IP_OFF + 63] == 31, "payload intact");
		bool seen = false;
		for (uint32_t g = 0; g < flow; g++)
			seen |= memcmp(first_server[g], ip1 + 24, 16) == 0;
		distinct += !seen;
	}
	diag("%u fragmented flows went to %u distinct servers", FLOWS, distinct);
	EXPECT(distinct >= 2, "the flows should spread (%u servers)", distinct);

	/* a later fragment whose first never came */
	struct ep_lcore_counters before = totals();
	uint32_t len = build_udp6_fragment(f, client, 52999, vip, 0x7777, false);
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(totals().drops[EP_DROP_FRAGMENT] > before.drops[EP_DROP_FRAGMENT]);
	EXPECT(totals().drops[EP_DROP_FRAGMENT] - before.drops[EP_DROP_FRAGMENT] == 1, "orphan fragment dropped");

	/* packet too big from a router on the client's path, about flow 0's reply VIP:80 -> client */
	memset(f, 0, sizeof(f));
	memcpy(f, router_mac, 6);
	memcpy(f + 6, client_mac, 6);
	put16(f + 12, 0x86dd);
	uint8_t *ip = f + IP_OFF, *icmp = ip + 40, *q = icmp + 8, *qudp = q + 40;
	const uint32_t icmp_len = 8 + 40 + 8 + 8;
	ip[0] = 0x60;
	put16(ip + 4, icmp_len);
	ip[6] = IPPROTO_ICMPV6;
	ip[7] = 64;
	memcpy(ip + 8, router, 16);
	memcpy(ip + 24, vip, 16);
	icmp[0] = 2; /* packet too big */
	put16(icmp + 6, 1280);
	q[0] = 0x60;
	put16(q + 4, 8 + 1400);
	q[6] = IPPROTO_UDP;
	q[7] = 63;
	memcpy(q + 8, vip, 16);
	memcpy(q + 24, client, 16);
	put16(qudp, 80);
	put16(qudp + 2, 52000);
	put16(qudp + 4, 8 + 1400);
	put16(qudp + 6, 0x5a5a);
	put16(icmp + 2, (uint16_t)~fold(sum16(icmp, icmp_len, sum16(ip + 8, 32, 0) + IPPROTO_ICMPV6 + icmp_len)));
	len = IP_OFF + 40 + icmp_len;
	reset_punted();
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 1);
	EXPECT(npunted == 1, "the packet too big did not come back");
	if (npunted == 1) {
		const uint8_t *o = punted[0].data, *oip = o + IP_OFF, *oq = oip + 48;
		EXPECT(memcmp(oip + 24, first_server[0], 16) == 0, "ICMPv6 error to flow 0's server");
		EXPECT(memcmp(oip + 8, router, 16) == 0 && oip[7] == 63 && memcmp(o, server_mac, 6) == 0);
		EXPECT(memcmp(oq + 8, first_server[0], 16) == 0 && get16(oq + 40) == 8080, "quote: server:8080 as sent");
		EXPECT(memcmp(oq + 24, client, 16) == 0 && get16(oq + 42) == 52000, "quote: to the client");
		EXPECT(oip[40] == 2 && l4_checksum_valid6(oip), "ICMPv6 checksum after the rewrite");
		EXPECT(get16(oq + 46) != 0x5a5a, "quoted UDP checksum follows the translation");
	}
	EXPECT_OK(ep_wildcards_commit(NULL, 0, err));
	EXPECT_OK(ep_service_del(42, err));
}

/* Manager affinities for IPv6 flows (SMFA over IPv6): NAT66 of the addresses beside the action,
 * ports in it, a sequence adjustment in the same flow (the two share no space), listing shows the
 * addresses; an IPv4 NAT address on an IPv6 key, IPv6 NAT on an IPv4 key and dispatch on an IPv6
 * key are refused. */
static void test_worker_manager_nat66(void)
{
	uint8_t client[16], vip[16], server[16], zero[16] = { 0 };
	addr6(client, 31, 2);
	addr6(vip, 31, 0x100);
	addr6(server, 32, 11);
	EXPECT_OK(ep_route6_add(client, 64, 0, zero, err));
	EXPECT_OK(ep_route6_add(server, 64, 0, zero, err));
	EXPECT_OK(ep_neighbor6_set(client, 0, client_mac, err));
	EXPECT_OK(ep_neighbor6_set(server, 0, server_mac, err));
	struct ep_flow_key in, back;
	ep_key_set6(&in, IPPROTO_TCP, client, htons(41000), vip, htons(80));
	ep_key_set6(&back, IPPROTO_TCP, server, htons(8080), client, htons(41000));
	struct ep_action to_server = { .type = EP_ACT_FORWARD, .out_port = EP_PORT_ROUTE, .nat_dst_port = htons(8080) };
	struct ep_action to_client = { .type = EP_ACT_FORWARD, .out_port = EP_PORT_ROUTE, .nat_src_port = htons(80) };
	struct ep_seq_adjust seq = { .seq_delta = 1000, .initial_seq = 0, .ack_delta = 0, .initial_ack = 0 };
	struct ep_affinity_options in_opts = { .seq = &seq, .nat6_dst = server };
	struct ep_affinity_options back_opts = { .nat6_src = vip };
	EXPECT_OK(ep_affinity_add_opts(&in, &to_server, 60, &in_opts, err));
	EXPECT_OK(ep_affinity_add_opts(&back, &to_client, 60, &back_opts, err));

	uint8_t f[256];
	uint32_t len = build_tcp6(f, router_mac, client_mac, client, 41000, vip, 80, EP_TCP_SYN, 64);
	reset_punted();
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 1);
	EXPECT(npunted == 1, "the DNATed SYN did not come back");
	const uint8_t *o = punted[0].data, *ip = o + IP_OFF, *tcp = o + L4_OFF6;
	EXPECT(memcmp(ip + 8, client, 16) == 0 && memcmp(ip + 24, server, 16) == 0, "client -> server");
	EXPECT(get16(tcp) == 41000 && get16(tcp + 2) == 8080 && memcmp(o, server_mac, 6) == 0 && ip[7] == 63);
	uint32_t got_seq = (uint32_t)get16(tcp + 4) << 16 | get16(tcp + 6);
	uint32_t sent_seq = (uint32_t)get16(f + L4_OFF6 + 4) << 16 | get16(f + L4_OFF6 + 6);
	EXPECT(got_seq == sent_seq + 1000, "seq %08x, sent %08x", got_seq, sent_seq);
	EXPECT(l4_checksum_valid6(ip), "TCP checksum after NAT66 and sequence adjust");

	len = build_tcp6(f, router_mac, server_mac, server, 8080, client, 41000, EP_TCP_SYN | EP_TCP_ACK, 64);
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 2);
	EXPECT(npunted == 2, "the SNATed SYN-ACK did not come back");
	o = punted[1].data;
	ip = o + IP_OFF;
	tcp = o + L4_OFF6;
	EXPECT(memcmp(ip + 8, vip, 16) == 0 && get16(tcp) == 80, "source is VIP:80");
	EXPECT(memcmp(ip + 24, client, 16) == 0 && get16(tcp + 2) == 41000 && memcmp(o, client_mac, 6) == 0);
	EXPECT(l4_checksum_valid6(ip), "TCP checksum after NAT66");

	const struct ep_affinity_info *a = find_listed(&in);
	EXPECT(a && memcmp(a->nat6_dst, server, 16) == 0 && memcmp(a->nat6_src, zero, 16) == 0 &&
	       a->seq.seq_delta == 1000 && a->packets == 1 && a->action.nat_dst_port == htons(8080));
	a = find_listed(&back);
	EXPECT(a && memcmp(a->nat6_src, vip, 16) == 0 && a->packets == 1);
	/* the same again refreshes in place (the counters stay) */
	EXPECT_OK(ep_affinity_add_opts(&back, &to_client, 60, &back_opts, err));
	a = find_listed(&back);
	EXPECT(a && a->packets == 1, "refreshed in place");

	struct ep_error refused = { 0 };
	struct ep_action v4_nat = { .type = EP_ACT_FORWARD, .out_port = EP_PORT_ROUTE, .nat_dst_ip = htonl(0x0a000001) };
	EXPECT(ep_affinity_add_opts(&in, &v4_nat, 60, NULL, &refused) == -1 && refused.code == EP_EINVAL, "IPv4 NAT on IPv6");
	struct ep_flow_key v4 = tcp_key(ip4(10, 1, 1, 9), 1000, ip4(10, 1, 1, 10), 80);
	refused = (struct ep_error){ 0 };
	EXPECT(ep_affinity_add_opts(&v4, &to_server, 60, &back_opts, &refused) == -1 && refused.code == EP_EINVAL, "IPv6 NAT on IPv4");
	struct ep_action dispatch = { .type = EP_ACT_FORWARD, .out_port = EP_PORT_ROUTE, .dispatch = EP_DISPATCH_IPIP,
				      .forward_ip = htonl(0x0a000001) };
	refused = (struct ep_error){ 0 };
	EXPECT(ep_affinity_add_opts(&in, &dispatch, 60, NULL, &refused) == -1 && refused.code == EP_EINVAL, "dispatch on IPv6");
	EXPECT(ep_affinity_del(&in) == 1 && ep_affinity_del(&back) == 1);
	EXPECT_OK(ep_route6_del(client, 64, err));
	EXPECT_OK(ep_route6_del(server, 64, err));
}

/* The unit's own IPv6 address and a VIP answer ICMPv6 echo; a neighbour solicitation for them
 * is answered with an advertisement (which comes back on the ring and teaches its target: proof
 * it is valid), and the solicitor is learned from its source link-layer option. */
static void test_worker_ndp_and_echo6(void)
{
	uint8_t own[16], vip[16], client[16];
	addr6(own, 1, 1);
	addr6(vip, 1, 0x200);
	addr6(client, 1, 0x77);
	EXPECT_OK(ep_port_configure6(0, own, 64, err));
	EXPECT_OK(ep_local_addr6_add(0, vip, err));
	const uint8_t *port_mac = ep_dp.ports[0].mac.addr_bytes;
	static const uint8_t learner_mac[6] = { 0x02, 0x1e, 0xa7, 0, 0, 0x77 };

	for (int to_vip = 0; to_vip <= 1; to_vip++) {
		uint8_t echo[12] = { 128, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g' }, f[128];
		uint32_t len = build_icmp6(f, port_mac, client_mac, client, to_vip ? vip : own, echo, sizeof(echo), 64);
		reset_punted();
		EXPECT_OK(ep_inject(0, f, len, err));
		POLL_UNTIL(npunted == 1); /* the reply, back in on the ring, is to no local address: a miss */
		EXPECT(npunted == 1, "no echo reply");
		const uint8_t *o = punted[0].data, *ip = o + IP_OFF;
		EXPECT(punted[0].len == len && ip[40] == 129 && memcmp(ip + 44, echo + 4, 8) == 0);
		EXPECT(memcmp(ip + 8, to_vip ? vip : own, 16) == 0 && memcmp(ip + 24, client, 16) == 0);
		EXPECT(memcmp(o, client_mac, 6) == 0 && memcmp(o + 6, port_mac, 6) == 0 && l4_checksum_valid6(ip));
	}

	/* NS from the client for the VIP, with its link-layer address */
	uint8_t ns[32] = { 135, 0 }, f[128];
	memcpy(ns + 8, vip, 16);
	ns[24] = 1;
	ns[25] = 1;
	memcpy(ns + 26, learner_mac, 6);
	uint8_t solicited[16] = { 0xff, 0x02, [11] = 1, [12] = 0xff, [13] = vip[13], [14] = vip[14], [15] = vip[15] };
	uint8_t multicast_mac[6] = { 0x33, 0x33, 0xff, vip[13], vip[14], vip[15] };
	uint32_t len = build_icmp6(f, multicast_mac, learner_mac, client, solicited, ns, sizeof(ns), 255);
	struct ep_lcore_counters before = totals();
	EXPECT_OK(ep_inject(0, f, len, err));
	struct ep_neighbor n = { 0 };
	POLL_UNTIL(ep_neighbor6_lookup(vip, &n) == 0 && ep_neighbor6_lookup(client, &n) == 0);
	EXPECT(ep_neighbor6_lookup(client, &n) == 0 && memcmp(n.mac, learner_mac, 6) == 0, "solicitor not learned");
	/* the advertisement came back in and taught the VIP's MAC: our own */
	EXPECT(ep_neighbor6_lookup(vip, &n) == 0 && memcmp(n.mac, port_mac, 6) == 0, "advertisement not learned");
	struct ep_lcore_counters after = totals();
	EXPECT(after.actions[EP_AC_LOCAL] - before.actions[EP_AC_LOCAL] == 1);
	EXPECT(after.drops[EP_DROP_NDP_IGNORED] - before.drops[EP_DROP_NDP_IGNORED] == 1, "the advertisement is consumed");

	/* a solicitation with hop limit 64 (not from a neighbour) is ignored, and nothing is answered */
	len = build_icmp6(f, multicast_mac, learner_mac, client, solicited, ns, sizeof(ns), 64);
	before = totals();
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(totals().drops[EP_DROP_NDP_IGNORED] > before.drops[EP_DROP_NDP_IGNORED]);
	sleep_ms(20);
	after = totals();
	EXPECT(after.drops[EP_DROP_NDP_IGNORED] - before.drops[EP_DROP_NDP_IGNORED] == 1 &&
	       after.actions[EP_AC_LOCAL] == before.actions[EP_AC_LOCAL]);
	EXPECT_OK(ep_local_addr6_del(0, vip, err));
	uint8_t none[16] = { 0 };
	EXPECT_OK(ep_port_configure6(0, none, 0, err));
}

/* IPv6 connections replicate like IPv4 ones: their records carry the 16-byte translations, and a
 * member that imports them forwards the connection with the same translation (CL-R4 for IPv6). */
static void test_worker_replication6(void)
{
	uint8_t client[16], vip[16], snat[16], srv6[16], zero[16] = { 0 }, server_net[16];
	addr6(client, 1, 0x33);
	addr6(vip, 1, 0x300);
	addr6(snat, 20, 0xfb);
	addr6(srv6, 20, 7);
	addr6(server_net, 20, 0);
	EXPECT_OK(ep_route6_add(server_net, 64, 0, zero, err));
	EXPECT_OK(ep_route6_add(client, 64, 0, zero, err));
	EXPECT_OK(ep_neighbor6_set(client, 0, client_mac, err));
	EXPECT_OK(ep_neighbor6_set(srv6, 0, server_mac, err));
	struct ep_server server = { .port = htons(8080), .weight = 1 };
	memcpy(server.ip6, srv6, 16);
	struct ep_service_conf conf = { .id = 44, .family = 6, .port = htons(80), .proto = IPPROTO_TCP, .table_size = 251,
					.mode = EP_MODE_FULLNAT, .snat_port_min = 31000, .snat_port_max = 31099 };
	memcpy(conf.vip6, vip, 16);
	memcpy(conf.snat_ip6, snat, 16);
	EXPECT_OK(ep_service_set(&conf, &server, 1, err));
	struct ep_wildcard w = wildcard6(IPPROTO_TCP, vip, 128, 80, 10);
	w.action = (struct ep_action){ .type = EP_ACT_SERVICE, .service_id = 44 };
	EXPECT_OK(ep_wildcards_commit(&w, 1, err));
	static struct ep_flow_record recs[64];
	while (ep_flow_events(recs, 64) > 0)
		;
	ep_replication_enable(1);
	uint32_t learned_before = ep_learned_count();

	uint8_t f[256];
	uint32_t len = build_tcp6(f, router_mac, client_mac, client, 52000, vip, 80, EP_TCP_SYN, 64);
	reset_punted();
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 1);
	EXPECT(npunted == 1, "the SYN did not come back");
	uint16_t lport = get16(punted[0].data + L4_OFF6);
	uint32_t n = 0;
	uint64_t until = rte_rdtsc() + 5 * rte_get_tsc_hz();
	while (n < 2 && rte_rdtsc() < until)
		n += ep_flow_events(recs + n, 64 - n);
	EXPECT(n == 2, "%u records", n);
	const struct ep_flow_record *fwd = recs[0].reverse ? &recs[1] : &recs[0], *rev = recs[0].reverse ? &recs[0] : &recs[1];
	EXPECT(fwd->key.family == 6 && fwd->kind == EP_FLOW_CREATED && !fwd->reverse && rev->reverse);
	EXPECT(memcmp(fwd->nat6_dst, srv6, 16) == 0 && memcmp(fwd->nat6_src, snat, 16) == 0, "forward translation");
	EXPECT(memcmp(rev->nat6_src, vip, 16) == 0 && memcmp(rev->nat6_dst, client, 16) == 0, "reverse translation");
	EXPECT(fwd->unit == ep_work_unit6(client, htons(52000)) && rev->unit == fwd->unit);
	struct ep_flow_record imported[2] = { *fwd, *rev };

	/* forgotten here, then taken over from the records */
	EXPECT_OK(ep_flow_forget(&fwd->key, err));
	POLL_UNTIL(ep_learned_count() == learned_before);
	EXPECT(ep_learned_count() == learned_before);
	EXPECT(ep_flow_import(imported, 2) == 2);
	POLL_UNTIL(ep_learned_count() == learned_before + 2);
	EXPECT(ep_learned_count() == learned_before + 2, "imported flows not installed");
	len = build_tcp6(f, router_mac, server_mac, srv6, 8080, snat, lport, EP_TCP_SYN | EP_TCP_ACK, 64);
	reset_punted();
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 1);
	EXPECT(npunted == 1, "the reply did not come back through the imported flow");
	const uint8_t *ip = punted[0].data + IP_OFF, *tcp = punted[0].data + L4_OFF6;
	EXPECT(memcmp(ip + 8, vip, 16) == 0 && get16(tcp) == 80 && memcmp(ip + 24, client, 16) == 0 && get16(tcp + 2) == 52000);
	EXPECT(l4_checksum_valid6(ip));
	ep_replication_enable(0);
	while (ep_flow_events(recs, 64) > 0)
		;
	EXPECT_OK(ep_wildcards_commit(NULL, 0, err));
	EXPECT_OK(ep_service_del(44, err));
}

/* A frame handed back for processing runs through the affinities like received traffic, and is
 * never punted up again (SMFA-R9): a punt decision drops it as punt_loop. */
static void test_worker_inject_process(void)
{
	uint32_t client = ip4(10, 1, 1, 4), vip = ip4(10, 0, 0, 101), backend = ip4(10, 30, 0, 9);
	struct ep_flow_key in_key = tcp_key(client, 41000, vip, 80);
	struct ep_action nat = { .type = EP_ACT_FORWARD, .out_port = 0, .flags = EP_ACT_F_NEXT_HOP,
				 .nat_dst_ip = backend, .nat_dst_port = htons(8080) };
	memcpy(nat.next_hop_mac, server_mac, 6);
	EXPECT_OK(ep_affinity_add(&in_key, &nat, 60, err));
	uint8_t f[128];
	uint32_t len = build_tcp(f, router_mac, client_mac, client, 41000, vip, 80, EP_TCP_SYN, 64, 8);
	reset_punted();
	EXPECT_OK(ep_inject_process(0, f, len, err));
	/* processed: NATed out of port 0; back in on the ring it misses and is punted as usual */
	POLL_UNTIL(npunted == 1);
	EXPECT(npunted == 1, "the processed frame did not come back");
	const uint8_t *o = punted[0].data;
	EXPECT(memcmp(o + IP_OFF + 16, &backend, 4) == 0 && get16(o + L4_OFF + 2) == 8080);
	EXPECT(ip_header_valid(o + IP_OFF) && l4_checksum_valid(o + IP_OFF));
	EXPECT(ep_affinity_del(&in_key) == 1);

	/* a processed frame that matches nothing would be punted: dropped instead */
	struct ep_lcore_counters before = totals();
	len = build_tcp(f, router_mac, client_mac, client, 41001, ip4(10, 9, 9, 9), 22, EP_TCP_SYN, 64, 0);
	reset_punted();
	EXPECT_OK(ep_inject_process(0, f, len, err));
	POLL_UNTIL(totals().drops[EP_DROP_PUNT_LOOP] > before.drops[EP_DROP_PUNT_LOOP]);
	EXPECT(totals().drops[EP_DROP_PUNT_LOOP] - before.drops[EP_DROP_PUNT_LOOP] == 1);
	sleep_ms(20);
	collect_punted();
	EXPECT(npunted == 0, "a processed frame went back up");
	struct ep_error bad = { 0 };
	EXPECT(ep_inject_process(7, f, len, &bad) == -1 && bad.code == EP_ENOPORT, "%s", bad.msg);
}

/* Sends a client segment to the service and returns the server the data plane chose (0 if the
 * segment did not come back). */
/* The punted frame of a client's TCP segment (source port and flags as sent; a NAT mode leaves
 * both), or -1: a frame another test left in flight (a hold released late) is not it. */
static int punted_segment(uint16_t sport, uint8_t flags)
{
	for (uint32_t i = 0; i < npunted; i++)
		if (punted[i].len >= L4_OFF + 14 && get16(punted[i].data + L4_OFF) == sport &&
		    punted[i].data[L4_OFF + 13] == flags)
			return (int)i;
	return -1;
}

static uint32_t through_service(uint32_t client, uint16_t sport, uint32_t vip, uint8_t flags)
{
	uint8_t f[128];
	uint32_t len = build_tcp(f, router_mac, client_mac, client, sport, vip, 80, flags, 64, 0);
	reset_punted();
	struct ep_error e;
	if (ep_inject(0, f, len, &e) != 0)
		return 0;
	POLL_UNTIL(punted_segment(sport, flags) >= 0 || npunted == 16);
	int i = punted_segment(sport, flags);
	if (i < 0)
		return 0;
	uint32_t chosen;
	memcpy(&chosen, punted[i].data + IP_OFF + 16, 4);
	return chosen;
}

static void service_on_port0(uint32_t id, uint32_t vip, struct ep_server *servers, uint32_t n)
{
	struct ep_service_conf conf = { .id = id, .vip = vip, .port = htons(80), .proto = IPPROTO_TCP,
					.table_size = 251 };
	EXPECT_OK(ep_service_set(&conf, servers, n, err));
	struct ep_wildcard w = wildcard(IPPROTO_TCP, 0, 0, vip, 0xffffffffu, 0, 80, 10);
	w.action = (struct ep_action){ .type = EP_ACT_SERVICE, .service_id = id };
	EXPECT_OK(ep_wildcards_commit(&w, 1, err));
	EXPECT_OK(ep_route_add(ip4(10, 20, 0, 0), 16, 0, 0, err));
	for (uint32_t i = 0; i < n; i++)
		EXPECT_OK(ep_neighbor_set(servers[i].ip, 0, server_mac, err));
}

/* Draining means no new connection: a SYN reusing the port of a closing connection is a new one,
 * and a flushed server's connections are forgotten (their packets dropped, a SYN picks again). */
static void test_worker_reuse_flush_forget(void)
{
	uint32_t client = ip4(10, 1, 1, 7), vip = ip4(10, 0, 0, 60);
	struct ep_server servers[2] = { server(1, 1), server(2, 1) };
	service_on_port0(4, vip, servers, 2);
	uint32_t base = ep_learned_count(); /* flows earlier tests left to expire */

	uint32_t first = through_service(client, 52000, vip, EP_TCP_SYN);
	EXPECT(first == servers[0].ip || first == servers[1].ip, "no server chosen");
	EXPECT(ep_learned_count() == base + 2);
	/* drain the chosen server; the client closes and reuses its port at once */
	struct ep_server drained[2] = { servers[0], servers[1] };
	drained[first == servers[0].ip ? 0 : 1].weight = 0;
	struct ep_service_conf conf = { .id = 4, .vip = vip, .port = htons(80), .proto = IPPROTO_TCP,
					.table_size = 251 };
	EXPECT_OK(ep_service_set(&conf, drained, 2, err));
	EXPECT(through_service(client, 52000, vip, EP_TCP_ACK) == first, "established flow keeps its server");
	EXPECT(through_service(client, 52000, vip, EP_TCP_FIN | EP_TCP_ACK) == first);
	struct ep_lcore_counters before = totals();
	uint32_t again = through_service(client, 52000, vip, EP_TCP_SYN);
	EXPECT(again != 0 && again != first, "a new SYN on a closing flow went to the draining server");
	EXPECT(totals().flows_created - before.flows_created == 1);

	/* flush the server now carrying the connection: its next ACK is dropped, both directions go */
	EXPECT_OK(ep_service_flush_server(4, again, htons(8080), err));
	before = totals();
	EXPECT(through_service(client, 52000, vip, EP_TCP_ACK) == 0, "a flushed connection was forwarded");
	EXPECT(totals().drops[EP_DROP_SERVER_FLUSHED] - before.drops[EP_DROP_SERVER_FLUSHED] == 1);
	EXPECT(ep_learned_count() == base, "%u learned flows left", ep_learned_count() - base);
	struct ep_error unknown = { 0 };
	EXPECT(ep_service_flush_server(4, ip4(10, 99, 0, 1), htons(8080), &unknown) == -1 && unknown.code == EP_ENOENT);

	/* forget one connection by its key: both directions go within a worker loop */
	EXPECT_OK(ep_service_set(&conf, servers, 2, err));
	EXPECT(through_service(client, 52001, vip, EP_TCP_SYN) != 0);
	EXPECT(ep_learned_count() == base + 2);
	struct ep_flow_key key = tcp_key(client, 52001, vip, 80);
	EXPECT_OK(ep_flow_forget(&key, err));
	uint64_t until = rte_rdtsc() + 5 * rte_get_tsc_hz();
	while (ep_learned_count() != base && rte_rdtsc() < until)
		sleep_ms(1);
	EXPECT(ep_learned_count() == base, "%u learned flows after forget", ep_learned_count() - base);
	EXPECT_OK(ep_wildcards_commit(NULL, 0, err));
	EXPECT_OK(ep_service_del(4, err));
}

/* Forgets a test's connection and waits until the learned count is back to base: left to expire, it
 * would change the count in the middle of a later test that checks it. */
static void forget_connection(const struct ep_flow_key *fwd, uint32_t base)
{
	EXPECT_OK(ep_flow_forget(fwd, err));
	uint64_t until = rte_rdtsc() + 5 * rte_get_tsc_hz();
	while (ep_learned_count() != base && rte_rdtsc() < until)
		sleep_ms(1);
	EXPECT(ep_learned_count() == base, "%u flows left", ep_learned_count() - base);
}

/* Cluster hooks: a connection's work unit gates it (foreign: dropped silently, hold: handed up),
 * its state streams out as records while replication is on, and importing those records on a
 * unit without the connection makes it forward the connection the same way. */
static void test_worker_units_and_replication(void)
{
	uint32_t client = ip4(10, 1, 1, 8), vip = ip4(10, 0, 0, 70);
	struct ep_server servers[1] = { server(3, 1) };
	service_on_port0(5, vip, servers, 1);
	uint32_t base = ep_learned_count();
	struct ep_flow_record drained[64];
	while (ep_flow_events(drained, 64) > 0)
		;
	ep_replication_enable(1);
	EXPECT(through_service(client, 53000, vip, EP_TCP_SYN) == servers[0].ip);
	struct ep_flow_record rec[8];
	uint32_t n = 0;
	uint64_t until = rte_rdtsc() + 5 * rte_get_tsc_hz();
	while (n < 2 && rte_rdtsc() < until)
		n += ep_flow_events(rec + n, 8 - n);
	EXPECT(n == 2, "%u flow events for a new connection", n);
	uint16_t unit = ep_work_unit(client, htons(53000));
	struct ep_flow_key fwd = tcp_key(client, 53000, vip, 80);
	int seen_fwd = 0, seen_rev = 0;
	for (uint32_t i = 0; i < n; i++) {
		EXPECT(rec[i].kind == EP_FLOW_CREATED && rec[i].unit == unit && rec[i].has_server && rec[i].service_id == 5);
		if (memcmp(&rec[i].key, &fwd, sizeof(fwd)) == 0)
			seen_fwd = rec[i].action.nat_dst_ip == servers[0].ip && rec[i].action.nat_dst_port == htons(8080) &&
				   !rec[i].reverse;
		else
			seen_rev = rec[i].reverse && rec[i].action.nat_src_ip == vip && ep_key_src4(&rec[i].key) == servers[0].ip;
		EXPECT(rec[i].ttl_ms > 0 && rec[i].ttl_ms <= 10000, "ttl %u ms (SYN timeout 10 s)", rec[i].ttl_ms);
	}
	EXPECT(seen_fwd && seen_rev, "records describe both directions and the translation");
	/* the handshake completes: the update carries the established timeout, not what was left of the
	 * SYN timeout (a peer's copy would expire 10 s after the handshake however busy the connection) */
	EXPECT(through_service(client, 53000, vip, EP_TCP_ACK) == servers[0].ip);
	struct ep_flow_record upd[8];
	uint32_t nu = 0;
	until = rte_rdtsc() + 5 * rte_get_tsc_hz();
	while (nu < 1 && rte_rdtsc() < until)
		nu += ep_flow_events(upd + nu, 8 - nu);
	EXPECT(nu == 1 && upd[0].kind == EP_FLOW_UPDATED && upd[0].tcp_state == EP_TCPS_ESTABLISHED &&
		       memcmp(&upd[0].key, &fwd, sizeof(fwd)) == 0,
	       "%u records after the handshake", nu);
	EXPECT(upd[0].ttl_ms > 290000 && upd[0].ttl_ms <= 300000, "ttl %u ms (established timeout 300 s)", upd[0].ttl_ms);
	/* the unit's load: the connection's two directions and its first packet */
	static struct ep_unit_load loads[EP_WORK_UNITS];
	ep_unit_loads(loads);
	EXPECT(loads[unit].flows == 2 && loads[unit].packets >= 1, "unit %u: %lu flows, %lu packets", unit,
	       (unsigned long)loads[unit].flows, (unsigned long)loads[unit].packets);

	/* the unit moves to another member: this one drops the connection's packets silently */
	uint8_t states[EP_WORK_UNITS];
	memset(states, EP_UNIT_OWNED, sizeof(states));
	states[unit] = EP_UNIT_FOREIGN;
	EXPECT_OK(ep_work_units_set(states, NULL, err));
	struct ep_lcore_counters before = totals();
	EXPECT(through_service(client, 53000, vip, EP_TCP_ACK) == 0, "a foreign unit's packet was forwarded");
	EXPECT(totals().drops[EP_DROP_FOREIGN_UNIT] - before.drops[EP_DROP_FOREIGN_UNIT] == 1);
	/* held: handed up with its unit */
	states[unit] = EP_UNIT_HOLD;
	EXPECT_OK(ep_work_units_set(states, NULL, err));
	uint8_t f[128];
	uint32_t len = build_tcp(f, router_mac, client_mac, client, 53000, vip, 80, EP_TCP_ACK, 64, 0);
	reset_punted();
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 1);
	EXPECT(npunted == 1 && punted[0].reason == EP_PUNT_HELD && punted[0].unit == unit &&
	       memcmp(punted[0].data, f, len) == 0, "held packet handed up with its unit");
	states[unit] = 7;
	struct ep_error refused = { 0 };
	EXPECT(ep_work_units_set(states, NULL, &refused) == -1 && refused.code == EP_EINVAL, "%s", refused.msg);

	/* takeover: forget the connection, import the records, the next ACK goes to the same server */
	memset(states, EP_UNIT_OWNED, sizeof(states));
	EXPECT_OK(ep_work_units_set(states, NULL, err));
	EXPECT_OK(ep_flow_forget(&fwd, err));
	until = rte_rdtsc() + 5 * rte_get_tsc_hz();
	while (ep_learned_count() != base && rte_rdtsc() < until)
		sleep_ms(1);
	EXPECT(ep_learned_count() == base);
	/* pick another server set so a fresh choice could differ: the import must pin the old one */
	struct ep_server other[1] = { server(4, 1) };
	struct ep_service_conf conf = { .id = 5, .vip = vip, .port = htons(80), .proto = IPPROTO_TCP, .table_size = 251 };
	EXPECT_OK(ep_service_set(&conf, other, 1, err));
	EXPECT_OK(ep_neighbor_set(other[0].ip, 0, server_mac, err));
	EXPECT(ep_flow_import(rec, 2) == 2);
	until = rte_rdtsc() + 5 * rte_get_tsc_hz();
	while (ep_learned_count() != base + 2 && rte_rdtsc() < until)
		sleep_ms(1);
	EXPECT(ep_learned_count() == base + 2, "%u imported", ep_learned_count() - base);
	EXPECT(through_service(client, 53000, vip, EP_TCP_ACK) == servers[0].ip,
	       "the imported connection kept its server");

	/* a frame injected for processing right after an import, behind a queue of other commands,
	 * finds the imported flow (held packets of a unit moving here) */
	EXPECT_OK(ep_flow_forget(&fwd, err));
	until = rte_rdtsc() + 5 * rte_get_tsc_hz();
	while (ep_learned_count() != base && rte_rdtsc() < until)
		sleep_ms(1);
	for (uint16_t i = 0; i < 200; i++) {
		struct ep_flow_key absent = tcp_key(ip4(10, 99, 9, 9), (uint16_t)(1000 + i), vip, 80);
		EXPECT_OK(ep_flow_forget(&absent, err));
	}
	EXPECT(ep_flow_import(rec, 2) == 2);
	len = build_tcp(f, router_mac, client_mac, client, 53000, vip, 80, EP_TCP_ACK, 64, 0);
	reset_punted();
	EXPECT_OK(ep_inject_process(0, f, len, err));
	POLL_UNTIL(npunted == 1);
	uint32_t chosen = 0;
	if (npunted == 1)
		memcpy(&chosen, punted[0].data + IP_OFF + 16, 4);
	EXPECT(chosen == servers[0].ip, "an injected frame overtook the import queued before it");
	ep_replication_enable(0);
	EXPECT(ep_flow_events_lost() == 0);
	forget_connection(&fwd, base);
	EXPECT_OK(ep_wildcards_commit(NULL, 0, err));
	EXPECT_OK(ep_service_del(5, err));
}

/* Waits up to 1 s for max flow events about the connection whose directions are keys[0..1] (other
 * tests' connections may still be refreshed); returns how many came. */
static uint32_t flow_events_within_1s(const struct ep_flow_key *keys, struct ep_flow_record *out, uint32_t max)
{
	uint32_t n = 0;
	uint64_t until = rte_rdtsc() + rte_get_tsc_hz();
	while (n < max && rte_rdtsc() < until) {
		struct ep_flow_record r;
		if (ep_flow_events(&r, 1) == 1 && (memcmp(&r.key, &keys[0], sizeof(r.key)) == 0 ||
						  memcmp(&r.key, &keys[1], sizeof(r.key)) == 0))
			out[n++] = r;
	}
	return n;
}

/* Flow refresh (cluster.md): a peer's record imported again updates the copy in place (its time
 * left included); an owned connection silent since its last record sends nothing more, and one whose
 * expiry a packet moved past what the peers' copies have goes out again with its real time left. */
static void test_worker_flow_refresh(void)
{
	uint32_t client = ip4(10, 1, 1, 11), vip = ip4(10, 0, 0, 75);
	struct ep_server servers[1] = { server(6, 1) };
	service_on_port0(14, vip, servers, 1);
	uint8_t states[EP_WORK_UNITS];
	memset(states, EP_UNIT_OWNED, sizeof(states));
	EXPECT_OK(ep_work_units_set(states, NULL, err));
	uint32_t base = ep_learned_count();
	struct ep_flow_record drained[64];
	while (ep_flow_events(drained, 64) > 0)
		;
	ep_replication_enable(1);
	EXPECT(through_service(client, 55000, vip, EP_TCP_SYN) == servers[0].ip);
	EXPECT(through_service(client, 55000, vip, EP_TCP_ACK) == servers[0].ip);
	/* created (both directions), then the client's direction established */
	struct ep_flow_record ev[8];
	struct ep_flow_key fwd = tcp_key(client, 55000, vip, 80);
	/* the reverse direction, as the server sends it (NAT: to the client) */
	struct ep_flow_key keys[2] = { fwd, tcp_key(servers[0].ip, 8080, client, 55000) };
	uint32_t n = flow_events_within_1s(keys, ev, 3);
	EXPECT(n == 3, "%u events for a new connection", n);
	struct ep_flow_record rec[2];
	for (uint32_t i = 0; i < n; i++)
		rec[memcmp(&ev[i].key, &fwd, sizeof(fwd)) == 0 ? 0 : 1] = ev[i];
	EXPECT(rec[0].tcp_state == EP_TCPS_ESTABLISHED && rec[1].reverse);

	/* re-import: two records per direction, queued together; the second (300 s left) replaces the
	 * first (1 s) in place, so the copy outlives the first record's time */
	EXPECT_OK(ep_flow_forget(&fwd, err));
	uint64_t until = rte_rdtsc() + 5 * rte_get_tsc_hz();
	while (ep_learned_count() != base && rte_rdtsc() < until)
		sleep_ms(1);
	while (ep_flow_events(drained, 64) > 0)
		;
	struct ep_flow_record twice[4] = { rec[0], rec[1], rec[0], rec[1] };
	twice[0].ttl_ms = twice[1].ttl_ms = 1000;
	twice[2].ttl_ms = twice[3].ttl_ms = 300000;
	EXPECT(ep_flow_import(twice, 4) == 4);
	sleep_ms(1500);
	EXPECT(ep_learned_count() == base + 2, "%u flows after a re-import", ep_learned_count() - base);
	n = flow_events_within_1s(keys, ev, 1);
	EXPECT(n == 0, "%u events (kind %u) for copies the peers hold as they are", n, n ? ev[0].kind : 0);

	/* the peers' copies of the client's direction have 2 s left: silent, it would expire with them
	 * (nothing sent) */
	twice[0].ttl_ms = 2000;
	twice[1].ttl_ms = 300000;
	EXPECT(ep_flow_import(twice, 2) == 2);
	n = flow_events_within_1s(keys, ev, 1);
	EXPECT(n == 0, "a silent connection refreshed (%u events)", n);
	/* a packet moves its expiry 300 s ahead: the peers get that direction again, with 300 s left */
	EXPECT(through_service(client, 55000, vip, EP_TCP_ACK) == servers[0].ip);
	n = flow_events_within_1s(keys, ev, 2);
	EXPECT(n == 1 && ev[0].kind == EP_FLOW_REFRESHED && memcmp(&ev[0].key, &fwd, sizeof(fwd)) == 0 &&
		       ev[0].tcp_state == EP_TCPS_ESTABLISHED && ev[0].action.nat_dst_ip == servers[0].ip,
	       "%u events after a packet, kind %u", n, n ? ev[0].kind : 0);
	EXPECT(n == 0 || ev[0].ttl_ms > 290000, "refreshed with %u ms left", ev[0].ttl_ms);
	/* once: the copies now last as long as the connection does */
	n = flow_events_within_1s(keys, ev, 1);
	EXPECT(n == 0, "refreshed again (%u events)", n);

	/* a unit this member does not own is not refreshed (its copies are its owner's to refresh):
	 * the same stale copy, made while replication is off, goes out only once the unit is owned */
	ep_replication_enable(0);
	EXPECT(ep_flow_import(twice, 2) == 2);
	EXPECT(through_service(client, 55000, vip, EP_TCP_ACK) == servers[0].ip);
	states[ep_work_unit(client, htons(55000))] = EP_UNIT_FOREIGN;
	EXPECT_OK(ep_work_units_set(states, NULL, err));
	ep_replication_enable(1);
	n = flow_events_within_1s(keys, ev, 1);
	EXPECT(n == 0, "a foreign unit's connection refreshed (%u events)", n);
	memset(states, EP_UNIT_OWNED, sizeof(states));
	EXPECT_OK(ep_work_units_set(states, NULL, err));
	n = flow_events_within_1s(keys, ev, 1);
	EXPECT(n == 1 && ev[0].kind == EP_FLOW_REFRESHED, "%u events once owned", n);
	ep_replication_enable(0);
	EXPECT(ep_flow_events_lost() == 0);
	forget_connection(&fwd, base);
	EXPECT_OK(ep_wildcards_commit(NULL, 0, err));
	EXPECT_OK(ep_service_del(14, err));
}

/* Forwarding delivery (cluster.md CL-R2), at the master: a frame of a unit another member owns goes
 * on to that member's MAC without being processed here, and so does a server's reply no table here
 * knows yet (by its destination's unit); a port taking its own MAC only drops frames for others. */
static void test_worker_unit_forwarding(void)
{
	uint32_t client = ip4(10, 1, 1, 9), vip = ip4(10, 0, 0, 71);
	struct ep_server servers[1] = { server(5, 1) };
	service_on_port0(6, vip, servers, 1);
	struct ep_port_info info;
	EXPECT_OK(ep_port_info(0, &info, err));
	static const uint8_t owner_mac[6] = { 0x02, 0x0e, 0, 0, 0, 0x03 };
	uint16_t unit = ep_work_unit(client, htons(54000));
	uint8_t states[EP_WORK_UNITS];
	static struct ep_unit_forwarding fwd;
	memset(states, EP_UNIT_OWNED, sizeof(states));
	memset(&fwd, 0, sizeof(fwd));
	states[unit] = EP_UNIT_FORWARD;
	fwd.peer[unit] = 3;
	memcpy(fwd.mac[3][0], owner_mac, 6);
	struct ep_error refused = { 0 };
	EXPECT(ep_work_units_set(states, NULL, &refused) == -1 && refused.code == EP_EINVAL, "%s", refused.msg);
	fwd.peer[unit] = EP_MAX_UNIT_PEERS;
	EXPECT(ep_work_units_set(states, &fwd, &refused) == -1 && refused.code == EP_EINVAL, "%s", refused.msg);
	fwd.peer[unit] = 3;
	EXPECT_OK(ep_work_units_set(states, &fwd, err));
	/* the forwarded frame comes back in over the ring addressed to the owner: dropped as another host's */
	EXPECT_OK(ep_port_own_mac_only(0, 1, err));

	struct ep_lcore_counters before = totals();
	uint8_t f[128];
	uint32_t len = build_tcp(f, info.mac, client_mac, client, 54000, vip, 80, EP_TCP_SYN, 64, 0);
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(totals().drops[EP_DROP_OTHER_HOST] > before.drops[EP_DROP_OTHER_HOST]);
	struct ep_lcore_counters after = totals();
	EXPECT(after.unit_forwarded - before.unit_forwarded == 1, "%lu forwarded",
	       (unsigned long)(after.unit_forwarded - before.unit_forwarded));
	EXPECT(after.drops[EP_DROP_OTHER_HOST] - before.drops[EP_DROP_OTHER_HOST] == 1);
	EXPECT(after.flows_created == before.flows_created, "the master processed another member's packet");

	/* the server's SYN-ACK before the connection's records reached the master: the client's unit */
	before = after;
	len = build_tcp(f, info.mac, server_mac, servers[0].ip, 8080, client, 54000, EP_TCP_SYN | EP_TCP_ACK, 64, 0);
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(totals().drops[EP_DROP_OTHER_HOST] > before.drops[EP_DROP_OTHER_HOST]);
	after = totals();
	EXPECT(after.unit_forwarded - before.unit_forwarded == 1 && after.misses == before.misses);

	/* and an IPv6 reply no table knows: the unit of its destination's folded address, the one the
	 * client's connection was given (ep_work_unit6) */
	uint8_t client6[16], server6[16];
	addr6(client6, 1, 0x99);
	addr6(server6, 20, 5);
	uint16_t unit6 = ep_work_unit6(client6, htons(54001));
	states[unit6] = EP_UNIT_FORWARD;
	fwd.peer[unit6] = 3;
	EXPECT_OK(ep_work_units_set(states, &fwd, err));
	before = totals();
	len = build_tcp6(f, info.mac, server_mac, server6, 8080, client6, 54001, EP_TCP_SYN | EP_TCP_ACK, 64);
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(totals().drops[EP_DROP_OTHER_HOST] > before.drops[EP_DROP_OTHER_HOST]);
	after = totals();
	EXPECT(after.unit_forwarded - before.unit_forwarded == 1 && after.misses == before.misses,
	       "%lu forwarded, %lu misses", (unsigned long)(after.unit_forwarded - before.unit_forwarded),
	       (unsigned long)(after.misses - before.misses));
	/* one this member owns is its own miss, as before */
	before = after;
	len = build_tcp6(f, info.mac, server_mac, server6, 8080, client6, 54002, EP_TCP_SYN | EP_TCP_ACK, 64);
	EXPECT(ep_work_unit6(client6, htons(54002)) != unit6 && ep_work_unit6(client6, htons(54002)) != unit);
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(totals().misses > before.misses);
	after = totals();
	EXPECT(after.misses - before.misses == 1 && after.unit_forwarded == before.unit_forwarded);

	/* another host's frame is not looked at */
	before = after;
	len = build_tcp(f, router_mac, client_mac, client, 54000, vip, 80, EP_TCP_SYN, 64, 0);
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(totals().drops[EP_DROP_OTHER_HOST] > before.drops[EP_DROP_OTHER_HOST]);
	after = totals();
	EXPECT(after.drops[EP_DROP_OTHER_HOST] - before.drops[EP_DROP_OTHER_HOST] == 1 &&
	       after.unit_forwarded == before.unit_forwarded);

	EXPECT_OK(ep_port_own_mac_only(0, 0, err));
	memset(states, EP_UNIT_OWNED, sizeof(states));
	EXPECT_OK(ep_work_units_set(states, NULL, err));
	EXPECT_OK(ep_wildcards_commit(NULL, 0, err));
	EXPECT_OK(ep_service_del(6, err));
}

/* ARP for a cluster address: answered with the members' shared MAC (the reply, back in over the
 * ring, teaches the neighbour table that MAC), or not at all. */
static void test_worker_arp_answers(void)
{
	static const uint8_t shared_mac[6] = { 0x03, 0x65, 0x70, 0, 0x01, 0x64 };
	uint32_t shared = ip4(10, 0, 0, 72), silent = ip4(10, 0, 0, 73), asker = ip4(10, 0, 0, 9);
	EXPECT_OK(ep_local_addr_add(0, shared, err));
	EXPECT_OK(ep_local_addr_add(0, silent, err));
	struct ep_error refused = { 0 };
	EXPECT(ep_local_addr_arp(0, shared, EP_ARP_SHARED_MAC, NULL, &refused) == -1 && refused.code == EP_EINVAL,
	       "%s", refused.msg);
	EXPECT(ep_local_addr_arp(0, ip4(10, 0, 0, 74), EP_ARP_SILENT, NULL, &refused) == -1 &&
		       refused.code == EP_ENOENT,
	       "%s", refused.msg);
	EXPECT_OK(ep_local_addr_arp(0, shared, EP_ARP_SHARED_MAC, shared_mac, err));
	EXPECT_OK(ep_local_addr_arp(0, silent, EP_ARP_SILENT, NULL, err));

	uint8_t f[64];
	uint32_t len = ep_arp_request(f, client_mac, asker, shared);
	EXPECT_OK(ep_inject(0, f, len, err));
	struct ep_neighbor n = { 0 };
	POLL_UNTIL(ep_neighbor_lookup(shared, &n) == 0);
	EXPECT(memcmp(n.mac, shared_mac, 6) == 0, "the reply says %02x:%02x:...:%02x", n.mac[0], n.mac[1], n.mac[5]);

	struct ep_lcore_counters before = totals();
	len = ep_arp_request(f, client_mac, asker, silent);
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(totals().drops[EP_DROP_ARP_IGNORED] > before.drops[EP_DROP_ARP_IGNORED]);
	sleep_ms(20);
	collect_punted();
	EXPECT(totals().drops[EP_DROP_ARP_IGNORED] - before.drops[EP_DROP_ARP_IGNORED] == 1 &&
		       ep_neighbor_lookup(silent, &n) != 0,
	       "a silent address was answered");
	/* re-added, an address answers with the port's MAC again */
	EXPECT_OK(ep_local_addr_del(0, silent, err));
	EXPECT_OK(ep_local_addr_add(0, silent, err));
	EXPECT(ep_local_find(silent, 0)->arp_answer == EP_ARP_PORT_MAC);
	EXPECT_OK(ep_local_addr_del(0, silent, err));
	EXPECT_OK(ep_local_addr_del(0, shared, err));
}

/* Neighbour solicitations for a cluster IPv6 address: answered with the members' shared MAC as the
 * target link-layer address (the advertisement, back in over the ring, teaches the neighbour table
 * that MAC), or not at all (forwarding delivery at a member that is not master). */
static void test_worker_ndp_answers(void)
{
	static const uint8_t shared_mac[6] = { 0x03, 0x65, 0x70, 0, 0x01, 0x65 };
	static const uint8_t asker_mac[6] = { 0x02, 0x1e, 0xa7, 0, 0, 0x79 };
	uint8_t shared[16], silent[16], asker[16], absent[16];
	addr6(shared, 1, 0x272);
	addr6(silent, 1, 0x273);
	addr6(absent, 1, 0x274);
	addr6(asker, 1, 0x79);
	EXPECT_OK(ep_local_addr6_add(0, shared, err));
	EXPECT_OK(ep_local_addr6_add(0, silent, err));
	struct ep_error refused = { 0 };
	EXPECT(ep_local_addr6_ndp(0, shared, EP_ARP_SHARED_MAC, NULL, &refused) == -1 && refused.code == EP_EINVAL,
	       "%s", refused.msg);
	EXPECT(ep_local_addr6_ndp(0, shared, (enum ep_arp_answer)3, NULL, &refused) == -1 && refused.code == EP_EINVAL,
	       "%s", refused.msg);
	EXPECT(ep_local_addr6_ndp(0, absent, EP_ARP_SILENT, NULL, &refused) == -1 && refused.code == EP_ENOENT, "%s",
	       refused.msg);
	EXPECT_OK(ep_local_addr6_ndp(0, shared, EP_ARP_SHARED_MAC, shared_mac, err));
	EXPECT_OK(ep_local_addr6_ndp(0, silent, EP_ARP_SILENT, NULL, err));

	for (int quiet = 0; quiet <= 1; quiet++) {
		const uint8_t *target = quiet ? silent : shared;
		uint8_t ns[32] = { 135, 0 }, f[128];
		memcpy(ns + 8, target, 16);
		ns[24] = 1;
		ns[25] = 1;
		memcpy(ns + 26, asker_mac, 6);
		uint8_t solicited[16] = { 0xff, 0x02, [11] = 1, [12] = 0xff, [13] = target[13], [14] = target[14], [15] = target[15] };
		uint8_t multicast_mac[6] = { 0x33, 0x33, 0xff, target[13], target[14], target[15] };
		uint32_t len = build_icmp6(f, multicast_mac, asker_mac, asker, solicited, ns, sizeof(ns), 255);
		struct ep_lcore_counters before = totals();
		EXPECT_OK(ep_inject(0, f, len, err));
		struct ep_neighbor n = { 0 };
		if (!quiet) {
			POLL_UNTIL(ep_neighbor6_lookup(shared, &n) == 0);
			EXPECT(ep_neighbor6_lookup(shared, &n) == 0 && memcmp(n.mac, shared_mac, 6) == 0,
			       "the advertisement says %02x:%02x:...:%02x", n.mac[0], n.mac[1], n.mac[5]);
			EXPECT(totals().actions[EP_AC_LOCAL] - before.actions[EP_AC_LOCAL] == 1);
			continue;
		}
		POLL_UNTIL(totals().drops[EP_DROP_NDP_IGNORED] > before.drops[EP_DROP_NDP_IGNORED]);
		sleep_ms(20);
		struct ep_lcore_counters after = totals();
		EXPECT(after.drops[EP_DROP_NDP_IGNORED] - before.drops[EP_DROP_NDP_IGNORED] == 1 &&
			       after.actions[EP_AC_LOCAL] == before.actions[EP_AC_LOCAL] &&
			       ep_neighbor6_lookup(silent, &n) != 0,
		       "a silent address was answered");
	}
	/* re-added, an address answers with the port's MAC again */
	EXPECT_OK(ep_local_addr6_del(0, silent, err));
	EXPECT_OK(ep_local_addr6_add(0, silent, err));
	EXPECT(ep_local6_find(silent, 0)->ndp_answer == EP_ARP_PORT_MAC);
	EXPECT_OK(ep_local_addr6_del(0, silent, err));
	EXPECT_OK(ep_local_addr6_del(0, shared, err));
}

/* A manager affinity with a sequence adjustment shifts seq and ack from their initial values on
 * (SMFA-R13) and keeps the TCP checksum right; numbers before the initial values stay. */
static void test_worker_seq_adjust(void)
{
	uint32_t a_ip = ip4(10, 1, 1, 3), b_ip = ip4(10, 40, 0, 3);
	struct ep_flow_key k = tcp_key(a_ip, 3000, b_ip, 80);
	struct ep_flow_key back = tcp_key(a_ip, 3000, b_ip, 81);
	struct ep_action out = { .type = EP_ACT_FORWARD, .out_port = 0, .flags = EP_ACT_F_NEXT_HOP,
				 .nat_dst_port = htons(81) };
	memcpy(out.next_hop_mac, server_mac, 6);
	struct ep_action punt = punt_action();
	struct ep_seq_adjust seq = { .seq_delta = 1000, .initial_seq = 0x10000000u, .ack_delta = 5, .initial_ack = 0 };
	EXPECT_OK(ep_affinity_add_seq(&k, &out, 60, &seq, err));
	EXPECT_OK(ep_affinity_add(&back, &punt, 60, err));
	uint8_t f[128];
	uint32_t len = build_tcp(f, router_mac, client_mac, a_ip, 3000, b_ip, 80, EP_TCP_ACK, 64, 6);
	reset_punted();
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 1);
	EXPECT(npunted == 1);
	const uint8_t *o = punted[0].data;
	uint32_t got_seq = (uint32_t)get16(o + L4_OFF + 4) << 16 | get16(o + L4_OFF + 6);
	uint32_t got_ack = (uint32_t)get16(o + L4_OFF + 8) << 16 | get16(o + L4_OFF + 10);
	EXPECT(got_seq == 0x10000042u + 1000 && got_ack == 5, "seq %08x ack %08x", got_seq, got_ack);
	EXPECT(l4_checksum_valid(o + IP_OFF) && ip_header_valid(o + IP_OFF));
	const struct ep_affinity_info *a = find_listed(&k);
	EXPECT(a && a->seq.seq_delta == 1000 && a->seq.initial_seq == 0x10000000u && a->action.flags2 == 0);

	/* a sequence number before the initial one is left alone */
	seq.initial_seq = 0x20000000u;
	EXPECT_OK(ep_affinity_add_seq(&k, &out, 60, &seq, err));
	reset_punted();
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 1);
	EXPECT(npunted == 1);
	o = punted[0].data;
	got_seq = (uint32_t)get16(o + L4_OFF + 4) << 16 | get16(o + L4_OFF + 6);
	EXPECT(got_seq == 0x10000042u && l4_checksum_valid(o + IP_OFF), "seq %08x", got_seq);
	struct ep_flow_key udp = k;
	udp.proto = IPPROTO_UDP;
	struct ep_error refused = { 0 };
	EXPECT(ep_affinity_add_seq(&udp, &out, 60, &seq, &refused) == -1 && refused.code == EP_EINVAL);
	EXPECT(ep_affinity_del(&k) == 1 && ep_affinity_del(&back) == 1);
}

/* Malformed frames are dropped with the reason that names what is wrong with them. */
static void test_worker_drop_reasons(void)
{
	uint8_t good[128];
	uint32_t len = build_tcp(good, router_mac, client_mac, ip4(10, 1, 1, 1), 1, ip4(10, 2, 2, 2), 2,
				 EP_TCP_SYN, 64, 0);
	uint8_t f[128];
	struct ep_lcore_counters before = totals();
	reset_punted();
	/* truncations at several lengths (ep_inject needs at least the Ethernet header) */
	uint32_t cuts[] = { 14, 20, 33, 34, 40, 53 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		memcpy(f, good, len);
		put16(f + IP_OFF + 2, (uint16_t)(cuts[i] >= IP_OFF + 20 ? cuts[i] - IP_OFF : 40));
		EXPECT_OK(ep_inject(0, f, cuts[i], err));
	}
	/* bad IHL, bad total length, options, fragment, bad data offset, ARP-less other ethertype */
	memcpy(f, good, len);
	f[IP_OFF] = 0x44;
	EXPECT_OK(ep_inject(0, f, len, err));
	memcpy(f, good, len);
	put16(f + IP_OFF + 2, (uint16_t)(len - IP_OFF + 1));
	EXPECT_OK(ep_inject(0, f, len, err));
	/* four NOP option bytes between the IPv4 and TCP headers */
	memcpy(f, good, L4_OFF);
	memset(f + L4_OFF, 1, 4);
	memcpy(f + L4_OFF + 4, good + L4_OFF, len - L4_OFF);
	f[IP_OFF] = 0x46;
	put16(f + IP_OFF + 2, (uint16_t)(len + 4 - IP_OFF));
	EXPECT_OK(ep_inject(0, f, len + 4, err));
	/* a later fragment (offset 8) whose first fragment never came */
	memcpy(f, good, len);
	put16(f + IP_OFF + 6, 0x0001);
	EXPECT_OK(ep_inject(0, f, len, err));
	memcpy(f, good, len);
	f[L4_OFF + 12] = 4 << 4;
	EXPECT_OK(ep_inject(0, f, len, err));
	memcpy(f, good, len);
	put16(f + 12, 0x88cc);
	EXPECT_OK(ep_inject(0, f, len, err));
	memcpy(f, good, len);
	f[IP_OFF] = 0x65;
	EXPECT_OK(ep_inject(0, f, len, err));

	struct ep_lcore_counters after;
	uint64_t until = rte_rdtsc() + 5 * rte_get_tsc_hz();
	do {
		sleep_ms(2);
		after = totals();
	} while (after.port_rx_pkts[0] - before.port_rx_pkts[0] < 13 && rte_rdtsc() < until);
	EXPECT(after.port_rx_pkts[0] - before.port_rx_pkts[0] == 13);
#define DELTA(r) (after.drops[EP_DROP_##r] - before.drops[EP_DROP_##r])
	EXPECT(DELTA(TRUNCATED_L3) == 3, "cut at 14, 20, 33: %lu", (unsigned long)DELTA(TRUNCATED_L3));
	EXPECT(DELTA(TRUNCATED_L4) == 3, "cut at 34, 40, 53: %lu", (unsigned long)DELTA(TRUNCATED_L4));
	EXPECT(DELTA(BAD_L4_HEADER) == 1 && DELTA(BAD_IP_HEADER_LEN) == 1 && DELTA(BAD_IP_TOTAL_LEN) == 1);
	EXPECT(DELTA(IP_OPTIONS) == 1 && DELTA(FRAGMENT) == 1 && DELTA(UNSUPPORTED_L2) == 1);
	EXPECT(DELTA(BAD_IP_VERSION) == 1);
#undef DELTA
	collect_punted();
	EXPECT(npunted == 0, "a malformed frame was punted");
}


/* ---- interest criteria (SMFA-R15, R25) ---- */

#define BIT(b) (uint16_t)(1u << (b))

static void test_interest_bits_and_verdicts(void)
{
	uint8_t f[160];
	struct ep_meta m;
	uint32_t len = build_tcp(f, router_mac, client_mac, ip4(10, 1, 1, 1), 1000, ip4(10, 2, 2, 2), 80, EP_TCP_SYN, 64, 0);
	EXPECT(ep_parse(f, len, &m) == EP_PKT_IPV4);
	uint16_t bits = ep_interest_bits(&m, 1);
	EXPECT(bits == (BIT(EP_INTEREST_SYN) | BIT(EP_INTEREST_ALL)), "SYN bits %04x", bits);
	len = build_tcp(f, router_mac, client_mac, ip4(10, 1, 1, 1), 1000, ip4(10, 2, 2, 2), 80,
			EP_TCP_PSH | EP_TCP_ACK | EP_TCP_FIN, 64, 30);
	EXPECT(ep_parse(f, len, &m) == EP_PKT_IPV4);
	bits = ep_interest_bits(&m, 1);
	EXPECT(bits == (BIT(EP_INTEREST_FIN) | BIT(EP_INTEREST_PSH) | BIT(EP_INTEREST_ACK) | BIT(EP_INTEREST_DATA) |
			BIT(EP_INTEREST_FIRST_DATA) | BIT(EP_INTEREST_ALL)), "data bits %04x", bits);
	EXPECT(!(ep_interest_bits(&m, 0) & BIT(EP_INTEREST_FIRST_DATA)), "first data only when asked");
	/* a first fragment (MF set) shows the fragment bit */
	f[IP_OFF + 6] = 0x20;
	EXPECT(ep_parse(f, len, &m) == EP_PKT_IPV4 && (ep_interest_bits(&m, 0) & BIT(EP_INTEREST_FRAGMENT)));

	/* the verdicts: not in the mask passes; hold beats copy beats "the original goes up" */
	struct ep_interest crit = { .mask = BIT(EP_INTEREST_SYN) | BIT(EP_INTEREST_FIN) | BIT(EP_INTEREST_RST),
				    .data = BIT(EP_INTEREST_RST), .copy = BIT(EP_INTEREST_FIN), .hold = BIT(EP_INTEREST_SYN) };
	struct ep_interest_verdict v = ep_interest_decide(&crit, BIT(EP_INTEREST_ACK) | BIT(EP_INTEREST_ALL));
	EXPECT(v.fate == EP_FATE_PASS && v.reasons == 0 && v.flags == 0);
	v = ep_interest_decide(&crit, BIT(EP_INTEREST_SYN) | BIT(EP_INTEREST_ALL));
	EXPECT(v.fate == EP_FATE_HOLD && v.reasons == BIT(EP_INTEREST_SYN) && v.flags == EP_INTEREST_F_HELD);
	v = ep_interest_decide(&crit, BIT(EP_INTEREST_FIN) | BIT(EP_INTEREST_ACK));
	EXPECT(v.fate == EP_FATE_COPY && v.reasons == BIT(EP_INTEREST_FIN) && v.flags == EP_INTEREST_F_COPY,
	       "a FIN notice carries no packet: flags %x", v.flags);
	v = ep_interest_decide(&crit, BIT(EP_INTEREST_RST));
	EXPECT(v.fate == EP_FATE_UP && v.flags == EP_INTEREST_F_PACKET);
	crit.data = crit.mask;
	v = ep_interest_decide(&crit, BIT(EP_INTEREST_SYN) | BIT(EP_INTEREST_FIN));
	EXPECT(v.fate == EP_FATE_HOLD && v.flags == (EP_INTEREST_F_HELD | EP_INTEREST_F_PACKET) &&
	       v.reasons == (BIT(EP_INTEREST_SYN) | BIT(EP_INTEREST_FIN)));
	v = ep_interest_decide(&crit, BIT(EP_INTEREST_FIN));
	EXPECT(v.fate == EP_FATE_COPY && v.flags == (EP_INTEREST_F_COPY | EP_INTEREST_F_PACKET));
	struct ep_interest none = { 0 };
	EXPECT(ep_interest_decide(&none, 0xffff).fate == EP_FATE_PASS);
}

/* A wildcard for the VIP that NATs to the backend and keeps SYNs (hold) and notices FINs (copy);
 * a second wildcard on the backend address punts what comes back round the loop, so the
 * forwarded bytes can be looked at. */
static const uint32_t hold_vip_host = 0x0a0000c8;  /* 10.0.0.200 */
static const uint32_t hold_backend_host = 0x0a1e0063; /* 10.30.0.99 */

static void commit_hold_wildcards(void)
{
	uint32_t vip = htonl(hold_vip_host), backend = htonl(hold_backend_host);
	struct ep_wildcard rules[2] = {
		{ .proto = IPPROTO_TCP, .dst_ip = vip, .dst_mask = 0xffffffff, .dst_port = htons(80), .precedence = 10, .id = 77,
		  .action = { .type = EP_ACT_FORWARD, .out_port = 0, .flags = EP_ACT_F_NEXT_HOP, .nat_dst_ip = backend,
			      .nat_dst_port = htons(8080) },
		  .interest = { .mask = BIT(EP_INTEREST_SYN) | BIT(EP_INTEREST_FIN), .hold = BIT(EP_INTEREST_SYN),
				.copy = BIT(EP_INTEREST_FIN) } },
		{ .proto = IPPROTO_TCP, .dst_ip = backend, .dst_mask = 0xffffffff, .precedence = 5, .id = 99,
		  .action = punt_action() },
	};
	memcpy(rules[0].action.next_hop_mac, server_mac, 6);
	struct ep_error err = { 0 };
	if (ep_wildcards_commit(rules, 2, &err) != 0)
		fail_at(__LINE__, "ep_wildcards_commit", "%s", err.msg);
}

static uint32_t send_to_vip(uint16_t sport, uint8_t flags, uint32_t payload)
{
	uint8_t f[160];
	uint32_t len = build_tcp(f, router_mac, client_mac, ip4(10, 1, 1, 7), sport, htonl(hold_vip_host), 80, flags, 64,
				 payload);
	struct ep_error err = { 0 };
	if (ep_inject(0, f, len, &err) != 0)
		fail_at(__LINE__, "ep_inject", "%s", err.msg);
	return len;
}

static const struct ep_punted *punted_with(uint8_t reason, uint32_t wildcard_id, uint16_t sport)
{
	for (uint32_t i = 0; i < npunted; i++)
		if (punted[i].reason == reason && punted[i].wildcard_id == wildcard_id && get16(punted[i].data + L4_OFF) == sport)
			return &punted[i];
	return NULL;
}

static void test_worker_wildcard_interest_and_hold(void)
{
	commit_hold_wildcards();
	EXPECT(!failure[0]);
	uint32_t backend = htonl(hold_backend_host);
	struct ep_lcore_counters before = totals();

	/* not interesting: the wildcard's own NAT, nothing goes up from it */
	reset_punted();
	send_to_vip(50001, EP_TCP_ACK, 10);
	POLL_UNTIL(npunted == 1);
	const struct ep_punted *p = punted_with(EP_PUNT_ACTION, 99, 50001);
	EXPECT(npunted == 1 && p, "the forwarded packet came back punted by wildcard 99");
	EXPECT(memcmp(p->data + IP_OFF + 16, &backend, 4) == 0 && get16(p->data + L4_OFF + 2) == 8080);
	EXPECT(totals().interest_matches == before.interest_matches);

	/* FIN: a notice (copy, no payload asked) and the packet itself goes on */
	reset_punted();
	uint32_t fin_len = send_to_vip(50001, EP_TCP_FIN | EP_TCP_ACK, 20);
	POLL_UNTIL(npunted == 2);
	EXPECT(npunted == 2);
	const struct ep_punted *notice = punted_with(EP_PUNT_INTEREST, 77, 50001);
	EXPECT(notice && notice->interest_flags == EP_INTEREST_F_COPY && notice->interest_reasons == BIT(EP_INTEREST_FIN),
	       "flags %x reasons %x", notice ? notice->interest_flags : 0, notice ? notice->interest_reasons : 0);
	EXPECT(notice->len == fin_len - 20, "the notice has the headers only: %u of %u bytes", notice->len, fin_len);
	EXPECT(punted_with(EP_PUNT_ACTION, 99, 50001), "the FIN itself was forwarded");

	/* SYN: held, the manager hears of it; a later packet of the same flow waits behind it */
	reset_punted();
	send_to_vip(50002, EP_TCP_SYN, 0);
	POLL_UNTIL(npunted == 1);
	notice = punted_with(EP_PUNT_INTEREST, 77, 50002);
	EXPECT(npunted == 1 && notice && notice->interest_flags == EP_INTEREST_F_HELD &&
	       notice->interest_reasons == BIT(EP_INTEREST_SYN));
	send_to_vip(50002, EP_TCP_ACK, 5);
	POLL_UNTIL(totals().held - before.held == 2);
	sleep_ms(20);
	collect_punted();
	struct ep_lcore_counters mid = totals();
	EXPECT(npunted == 1 && mid.held - before.held == 2, "held %lu, punted %u", (unsigned long)(mid.held - before.held),
	       npunted);

	/* the fixed affinity arrives: both go through it, in order, without another trip up */
	struct ep_flow_key k = tcp_key(ip4(10, 1, 1, 7), 50002, htonl(hold_vip_host), 80);
	struct ep_action fixed = { .type = EP_ACT_FORWARD, .out_port = 0, .flags = EP_ACT_F_NEXT_HOP, .nat_dst_ip = backend,
				   .nat_dst_port = htons(8081) };
	memcpy(fixed.next_hop_mac, server_mac, 6);
	reset_punted();
	EXPECT_OK(ep_affinity_add(&k, &fixed, 60, err));
	POLL_UNTIL(npunted == 2);
	EXPECT(npunted == 2, "released %u", npunted);
	EXPECT(punted[0].data[L4_OFF + 13] == EP_TCP_SYN && punted[1].data[L4_OFF + 13] == EP_TCP_ACK, "in order");
	EXPECT(get16(punted[0].data + L4_OFF + 2) == 8081 && l4_checksum_valid(punted[0].data + IP_OFF), "by the fixed affinity");
	struct ep_lcore_counters after = totals();
	EXPECT(after.hold_released - before.hold_released == 2 && ep_dp.workers[0]->hold.count == 0);
	EXPECT(ep_affinity_del(&k) == 1);

	/* no affinity comes: dropped after the hold timeout, counted */
	reset_punted();
	send_to_vip(50003, EP_TCP_SYN, 0);
	POLL_UNTIL(totals().drops[EP_DROP_HOLD_TIMEOUT] > after.drops[EP_DROP_HOLD_TIMEOUT]);
	EXPECT(totals().drops[EP_DROP_HOLD_TIMEOUT] - after.drops[EP_DROP_HOLD_TIMEOUT] == 1 && ep_dp.workers[0]->hold.count == 0);

	/* full (4 held): the fifth SYN goes up itself, whole, and is counted */
	struct ep_lcore_counters full_before = totals();
	reset_punted();
	for (uint16_t sport = 50010; sport < 50015; sport++)
		send_to_vip(sport, EP_TCP_SYN, 0);
	POLL_UNTIL(npunted == 5);
	EXPECT(npunted == 5);
	p = punted_with(EP_PUNT_INTEREST, 77, 50014);
	EXPECT(p && p->interest_flags == EP_INTEREST_F_PACKET, "the overflow went up as the original");
	struct ep_lcore_counters full_after = totals();
	EXPECT(full_after.held - full_before.held == 4 && full_after.hold_overflows - full_before.hold_overflows == 1);
	POLL_UNTIL(ep_dp.workers[0]->hold.count == 0);
	EXPECT(totals().drops[EP_DROP_HOLD_TIMEOUT] - full_before.drops[EP_DROP_HOLD_TIMEOUT] == 4);

	/* a frame the agent hands back is never held or sent up again */
	uint8_t f[160];
	uint32_t len = build_tcp(f, router_mac, client_mac, ip4(10, 1, 1, 7), 50020, htonl(hold_vip_host), 80, EP_TCP_SYN, 64, 0);
	struct ep_lcore_counters loop_before = totals();
	EXPECT_OK(ep_inject_process(0, f, len, err));
	POLL_UNTIL(totals().drops[EP_DROP_PUNT_LOOP] > loop_before.drops[EP_DROP_PUNT_LOOP]);
	EXPECT(totals().held == loop_before.held && totals().drops[EP_DROP_PUNT_LOOP] - loop_before.drops[EP_DROP_PUNT_LOOP] == 1);
	EXPECT_OK(ep_wildcards_commit(NULL, 0, err));
}

/* A fixed affinity that notices FIN and RST (SMFA-R25) and counts under its forward IP (SMFA-R11). */
static void test_worker_fixed_interest_and_stats(void)
{
	commit_hold_wildcards();
	EXPECT(!failure[0]);
	uint32_t backend = htonl(hold_backend_host), forward_ip = ip4(10, 30, 0, 250);
	struct ep_flow_key k = tcp_key(ip4(10, 1, 1, 7), 50100, htonl(hold_vip_host), 80);
	struct ep_action fixed = { .type = EP_ACT_FORWARD, .out_port = 0, .flags = EP_ACT_F_NEXT_HOP, .nat_dst_ip = backend,
				   .nat_dst_port = htons(8080) };
	memcpy(fixed.next_hop_mac, server_mac, 6);
	struct ep_interest notice = { .mask = BIT(EP_INTEREST_FIN) | BIT(EP_INTEREST_RST),
				      .copy = BIT(EP_INTEREST_FIN) | BIT(EP_INTEREST_RST) };
	struct ep_affinity_options opts = { .interest = &notice, .stats_ip = forward_ip };
	EXPECT_OK(ep_affinity_add_opts(&k, &fixed, 60, &opts, err));
	struct ep_interest holding = { .mask = BIT(EP_INTEREST_SYN), .hold = BIT(EP_INTEREST_SYN) };
	struct ep_affinity_options bad = { .interest = &holding };
	struct ep_error refused = { 0 };
	EXPECT(ep_affinity_add_opts(&k, &fixed, 60, &bad, &refused) == -1 && refused.code == EP_EINVAL, "%s", refused.msg);
	const struct ep_affinity_info *a = find_listed(&k);
	EXPECT(a && a->interest.mask == notice.mask && a->interest.copy == notice.copy && a->stats_ip == forward_ip);

	struct ep_forward_ip_counters fic[8];
	uint64_t base_packets = 0, base_bytes = 0;
	uint32_t n = ep_forward_ip_counters(fic, 8);
	for (uint32_t i = 0; i < n; i++)
		if (fic[i].ip == forward_ip)
			base_packets = fic[i].packets, base_bytes = fic[i].bytes;
	reset_punted();
	uint32_t bytes = send_to_vip(50100, EP_TCP_ACK, 100);
	POLL_UNTIL(npunted == 1);
	EXPECT(npunted == 1 && punted_with(EP_PUNT_ACTION, 99, 50100), "data goes on, no notice");
	bytes += send_to_vip(50100, EP_TCP_FIN | EP_TCP_ACK, 0);
	POLL_UNTIL(npunted == 3);
	const struct ep_punted *p = NULL;
	for (uint32_t i = 0; i < npunted; i++)
		if (punted[i].reason == EP_PUNT_INTEREST)
			p = &punted[i];
	EXPECT(npunted == 3 && p, "a FIN notice and the FIN itself");
	EXPECT(p->interest_flags == (EP_INTEREST_F_COPY | EP_INTEREST_F_FIXED) && p->interest_reasons == BIT(EP_INTEREST_FIN) &&
	       p->wildcard_id == 0);
	n = ep_forward_ip_counters(fic, 8);
	const struct ep_forward_ip_counters *c = NULL;
	for (uint32_t i = 0; i < n; i++)
		if (fic[i].ip == forward_ip)
			c = &fic[i];
	EXPECT(c && c->packets - base_packets == 2 && c->bytes - base_bytes == bytes, "%lu packets %lu bytes",
	       c ? (unsigned long)(c->packets - base_packets) : 0, c ? (unsigned long)(c->bytes - base_bytes) : 0);
	EXPECT(ep_affinity_del(&k) == 1);
	/* the counters outlive the affinity */
	EXPECT(ep_forward_ip_counters(fic, 8) == n);
	EXPECT_OK(ep_wildcards_commit(NULL, 0, err));
}

/* Cascading (SMFA-R18): a watching service's wildcard (SYN notices by copy, cascade) above a
 * dispatching one: the packet gives the first its notice and takes the second's NAT. Without a
 * lower match the cascading rule's own action applies. */
static void test_worker_wildcard_cascade(void)
{
	uint32_t watched = ip4(10, 0, 0, 210), backend = htonl(hold_backend_host);
	struct ep_wildcard rules[3] = {
		{ .proto = IPPROTO_TCP, .dst_ip = watched, .dst_mask = 0xffffffff, .precedence = 20, .id = 5, .cascade = 1,
		  .action = { .type = EP_ACT_DROP, .out_port = EP_PORT_ROUTE },
		  .interest = { .mask = BIT(EP_INTEREST_SYN), .copy = BIT(EP_INTEREST_SYN) } },
		{ .proto = IPPROTO_TCP, .dst_ip = ip4(10, 0, 0, 0), .dst_mask = htonl(0xffffff00), .precedence = 10, .id = 6,
		  .action = { .type = EP_ACT_FORWARD, .out_port = 0, .flags = EP_ACT_F_NEXT_HOP, .nat_dst_ip = backend,
			      .nat_dst_port = htons(8080) } },
		{ .proto = IPPROTO_TCP, .dst_ip = backend, .dst_mask = 0xffffffff, .precedence = 5, .id = 99,
		  .action = punt_action() },
	};
	memcpy(rules[1].action.next_hop_mac, server_mac, 6);
	EXPECT_OK(ep_wildcards_commit(rules, 3, err));
	uint8_t f[160];
	uint32_t len = build_tcp(f, router_mac, client_mac, ip4(10, 1, 1, 7), 50200, watched, 80, EP_TCP_SYN, 64, 0);
	reset_punted();
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 2);
	EXPECT(npunted == 2, "%u punts", npunted);
	const struct ep_punted *notice = punted_with(EP_PUNT_INTEREST, 5, 50200);
	EXPECT(notice && notice->interest_flags == EP_INTEREST_F_COPY && notice->interest_reasons == BIT(EP_INTEREST_SYN));
	const struct ep_punted *onward = punted_with(EP_PUNT_ACTION, 99, 50200);
	EXPECT(onward && memcmp(onward->data + IP_OFF + 16, &backend, 4) == 0 && get16(onward->data + L4_OFF + 2) == 8080,
	       "the lower-precedence rule dispatched it");

	/* alone, the cascading rule's own action (drop) applies after its notice */
	struct ep_wildcard alone[2] = { rules[0], rules[2] };
	EXPECT_OK(ep_wildcards_commit(alone, 2, err));
	struct ep_lcore_counters before = totals();
	reset_punted();
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 1 && totals().drops[EP_DROP_ACTION_DROP] > before.drops[EP_DROP_ACTION_DROP]);
	EXPECT(npunted == 1 && punted_with(EP_PUNT_INTEREST, 5, 50200));
	EXPECT(totals().drops[EP_DROP_ACTION_DROP] - before.drops[EP_DROP_ACTION_DROP] == 1);

	struct ep_wildcard six = rules[0];
	six.family = 6;
	struct ep_error refused = { 0 };
	EXPECT(ep_wildcards_commit(&six, 1, &refused) == -1 && refused.code == EP_EINVAL, "%s", refused.msg);
	EXPECT_OK(ep_wildcards_commit(NULL, 0, err));
}

/* A chain of cascading services (SMFA-R18): every cascading rule that matches applies its criteria
 * in precedence order - a notice, or the original up, which ends the walk until the packet comes
 * back and resumes after that rule - down to the rule that decides; cascading rules ranked below
 * the deciding one, or not matching, see nothing. */
static void test_worker_cascade_chain(void)
{
	uint32_t watched = ip4(10, 0, 0, 211), backend = htonl(hold_backend_host);
	const uint16_t syn = BIT(EP_INTEREST_SYN);
	const struct ep_action drop = { .type = EP_ACT_DROP, .out_port = EP_PORT_ROUTE };
	struct ep_wildcard rules[6] = {
		/* notices by copy */
		{ .proto = IPPROTO_TCP, .dst_ip = watched, .dst_mask = 0xffffffff, .precedence = 40, .id = 40, .cascade = 1,
		  .action = drop, .interest = { .mask = syn, .copy = syn } },
		/* takes the original (its manager returns it) */
		{ .proto = IPPROTO_TCP, .dst_ip = watched, .dst_mask = 0xffffffff, .precedence = 30, .id = 30, .cascade = 1,
		  .action = drop, .interest = { .mask = syn, .data = syn } },
		/* another port: does not match */
		{ .proto = IPPROTO_TCP, .dst_ip = watched, .dst_mask = 0xffffffff, .dst_port = htons(443), .precedence = 25,
		  .id = 25, .cascade = 1, .action = drop, .interest = { .mask = syn, .copy = syn } },
		{ .proto = IPPROTO_TCP, .dst_ip = watched, .dst_mask = 0xffffffff, .precedence = 20, .id = 20, .cascade = 1,
		  .action = drop, .interest = { .mask = syn, .copy = syn } },
		/* decides: NAT to the backend */
		{ .proto = IPPROTO_TCP, .dst_ip = ip4(10, 0, 0, 0), .dst_mask = htonl(0xffffff00), .precedence = 10, .id = 10,
		  .action = { .type = EP_ACT_FORWARD, .out_port = 0, .flags = EP_ACT_F_NEXT_HOP, .nat_dst_ip = backend,
			      .nat_dst_port = htons(8080) } },
		/* ranked below the deciding rule: never applies */
		{ .proto = IPPROTO_TCP, .dst_ip = watched, .dst_mask = 0xffffffff, .precedence = 8, .id = 8, .cascade = 1,
		  .action = drop, .interest = { .mask = syn, .copy = syn } },
	};
	memcpy(rules[4].action.next_hop_mac, server_mac, 6);
	struct ep_wildcard all[7];
	memcpy(all, rules, sizeof(rules));
	/* the translated packet loops back through net_ring0 and comes up by this rule */
	all[6] = (struct ep_wildcard){ .proto = IPPROTO_TCP, .dst_ip = backend, .dst_mask = 0xffffffff, .precedence = 5,
				       .id = 99, .action = punt_action() };
	/* given out of precedence order: the set orders its cascading rules itself */
	struct ep_wildcard shuffled[7] = { all[3], all[6], all[0], all[5], all[2], all[4], all[1] };
	EXPECT_OK(ep_wildcards_commit(shuffled, 7, err));
	uint8_t f[160];
	uint32_t len = build_tcp(f, router_mac, client_mac, ip4(10, 1, 1, 7), 50300, watched, 80, EP_TCP_SYN, 64, 0);
	reset_punted();
	EXPECT_OK(ep_inject(0, f, len, err));
	POLL_UNTIL(npunted == 2);
	sleep_ms(20);
	collect_punted();
	EXPECT(npunted == 2, "%u punts", npunted);
	const struct ep_punted *notice = punted_with(EP_PUNT_INTEREST, 40, 50300);
	EXPECT(notice && notice->interest_flags == EP_INTEREST_F_COPY && notice->interest_reasons == syn);
	const struct ep_punted *up = punted_with(EP_PUNT_INTEREST, 30, 50300);
	EXPECT(up && up->interest_flags == EP_INTEREST_F_PACKET && up->interest_reasons == syn, "the original goes up");

	/* its manager returns it: it goes on after rule 30 */
	reset_punted();
	EXPECT_OK(ep_inject_process_after(0, up->data, up->len, 30, err));
	POLL_UNTIL(npunted == 2);
	sleep_ms(20);
	collect_punted();
	EXPECT(npunted == 2, "%u punts", npunted);
	notice = punted_with(EP_PUNT_INTEREST, 20, 50300);
	EXPECT(notice && notice->interest_flags == EP_INTEREST_F_COPY && notice->interest_reasons == syn);
	const struct ep_punted *onward = punted_with(EP_PUNT_ACTION, 99, 50300);
	EXPECT(onward && memcmp(onward->data + IP_OFF + 16, &backend, 4) == 0 && get16(onward->data + L4_OFF + 2) == 8080,
	       "the deciding rule translated it");

	/* a rule that is no longer there: processed as any returned packet, from the top, never up again */
	struct ep_lcore_counters before = totals();
	reset_punted();
	EXPECT_OK(ep_inject_process_after(0, f, len, 777, err));
	POLL_UNTIL(totals().drops[EP_DROP_PUNT_LOOP] > before.drops[EP_DROP_PUNT_LOOP]);
	EXPECT(totals().drops[EP_DROP_PUNT_LOOP] - before.drops[EP_DROP_PUNT_LOOP] == 1 && npunted == 0);

	/* the returning rule was the last that matches: its own action */
	struct ep_wildcard two[2] = { all[0], all[1] };
	EXPECT_OK(ep_wildcards_commit(two, 2, err));
	before = totals();
	EXPECT_OK(ep_inject_process_after(0, f, len, 30, err));
	POLL_UNTIL(totals().drops[EP_DROP_ACTION_DROP] > before.drops[EP_DROP_ACTION_DROP]);
	EXPECT(totals().drops[EP_DROP_ACTION_DROP] - before.drops[EP_DROP_ACTION_DROP] == 1);

	struct ep_wildcard holding = rules[0];
	holding.interest.hold = syn;
	struct ep_error refused = { 0 };
	EXPECT(ep_wildcards_commit(&holding, 1, &refused) == -1 && refused.code == EP_EINVAL, "%s", refused.msg);
	uint8_t f6[160];
	memcpy(f6, f, len);
	f6[12] = 0x86, f6[13] = 0xdd;
	refused = (struct ep_error){ 0 };
	EXPECT(ep_inject_process_after(0, f6, len, 30, &refused) == -1 && refused.code == EP_EINVAL, "%s", refused.msg);
	EXPECT_OK(ep_wildcards_commit(NULL, 0, err));
}

struct test {
	const char *name;
	void (*run)(void);
};

static const struct test table_tests[] = {
	{ "affinities: add, refresh, replace, list, delete", test_affinity_add_refresh_delete },
	{ "affinities: ep_affinity_count follows deletes", test_affinity_count_follows_deletes },
	{ "affinities: IPv6 keys by digest stay distinct from each other and from IPv4", test_affinity_ipv6 },
	{ "affinities: invalid input is refused with a reason", test_affinity_invalid_input },
	{ "affinities: a 1<<20 table takes 1,000,000 keys, then EP_EFULL", test_affinity_capacity },
	{ "affinities: keys of one home bucket spill into the next ones and are found, deleted, reused", test_affinity_table_spills },
	{ "affinities: ttl 1 s expires through ep_poll, ttl 60 s stays", test_affinity_ttl_expiry },
	{ "wildcards: non-contiguous masks, port 0 = any, higher precedence wins", test_wildcard_match_and_precedence },
	{ "wildcards: invalid rules refused, commit swaps sets", test_wildcard_invalid_rules },
	{ "wildcards: IPv6 prefixes, non-contiguous masks, ports and precedence beside IPv4 rules", test_wildcard6_match_and_precedence },
	{ "services: IPv6 services need an IPv6 VIP and IPv6 servers in every mode", test_service6_validation },
	{ "maglev: equal weights give ~1/N each", test_maglev_equal_weights },
	{ "maglev: weights 1:2 give ~1:2, weight 0 drains", test_maglev_weights },
	{ "maglev: equal weights build the paper's Algorithm 1 table", test_maglev_matches_paper_algorithm },
	{ "maglev: removing a server moves ~only its entries, slots stay", test_maglev_removal_disruption_and_slots },
	{ "tcp: state transitions and timeouts", test_tcp_state_tracking },
	{ "worker input: the flow key in struct ep_meta is 8-byte aligned for rte_hash_crc", test_meta_key_alignment },
	{ "interest: the bits a packet shows, and hold / copy / data verdicts", test_interest_bits_and_verdicts },
};

static const struct test worker_tests[] = {
	{ "worker: net_ring0 loops injected frames back, miss punts them intact", test_loopback_port },
	{ "worker: fixed affinity NAT + forward, checksums, TTL, MACs, counters", test_worker_nat_forward },
	{ "worker: FIN shortens a manager affinity to the FIN timeout", test_worker_fin_shortens_ttl },
	{ "worker: an IPv6 frame hits its affinity; another key at its position is a miss", test_worker_ipv6_affinity },
	{ "worker: virtual service DNAT to a server, reply SNAT to the VIP", test_worker_virtual_service },
	{ "worker: service QoS marks, DSCP + 802.1Q to the server, DSCP + MPLS to the client", test_worker_service_qos },
	{ "worker: malformed frames dropped by reason", test_worker_drop_reasons },
	{ "worker: frames injected for processing follow affinities, never punt back up", test_worker_inject_process },
	{ "worker: port reuse re-picks a server, flush and forget drop connections", test_worker_reuse_flush_forget },
	{ "worker: work units gate connections; replicated records re-create them", test_worker_units_and_replication },
	{ "worker: re-imported records update copies in place; owned connections refresh the peers' copies", test_worker_flow_refresh },
	{ "worker: forwarding delivery passes other members' units to their owner; own-MAC-only port", test_worker_unit_forwarding },
	{ "worker: ARP for cluster addresses answered with the shared MAC, or not at all", test_worker_arp_answers },
	{ "worker: neighbour solicitations for cluster IPv6 addresses answered with the shared MAC, or not at all", test_worker_ndp_answers },
	{ "worker: sequence-number adjustment on a manager affinity", test_worker_seq_adjust },
	{ "worker: manager affinities NAT66 both directions with a sequence adjustment", test_worker_manager_nat66 },
	{ "worker: IPv6 service, NAT66 and full NAT66 both directions, checksums, hop limit, flush", test_worker_service6 },
	{ "worker: IPv6 service fragments follow the first; packet too big reaches the flow's server", test_worker_service6_fragments_and_icmp6 },
	{ "worker: IPv6 service over IPv6 tunnels: ipip, gre, gue bytes, UDP checksum, no source refused", test_worker_service6_tunnels },
	{ "worker: ICMPv6 echo and neighbour solicitations answered for own and virtual addresses", test_worker_ndp_and_echo6 },
	{ "worker: wildcard interest criteria: pass, copy, hold + release in order, timeout, overflow", test_worker_wildcard_interest_and_hold },
	{ "worker: fixed affinity FIN notice and per-forward-IP counters", test_worker_fixed_interest_and_stats },
	{ "worker: IPv6 flows replicate with their translations; imported records forward the connection", test_worker_replication6 },
	{ "worker: cascading wildcards: a watching rule's notice, then the lower rule's dispatch", test_worker_wildcard_cascade },
	{ "worker: a chain of cascading rules, the original up and resumed after its rule", test_worker_cascade_chain },
};

static int run(const struct test *tests, size_t n, size_t *number)
{
	int failed = 0;
	for (size_t i = 0; i < n; i++) {
		failure[0] = 0;
		tests[i].run();
		++*number;
		if (failure[0]) {
			failed++;
			printf("not ok %zu - %s # %s\n", *number, tests[i].name, failure);
		} else {
			printf("ok %zu - %s\n", *number, tests[i].name);
		}
		fflush(stdout);
	}
	return failed;
}

int main(void)
{
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "--file-prefix=test-dp-%d", (int)getpid());
	char *eal_argv[] = { "test_dataplane", "--no-huge", "-m", "512", "--no-pci", prefix, "--vdev=net_ring0",
			     "-l", "0,1", "--log-level=warning", NULL };
	size_t ntable = sizeof(table_tests) / sizeof(table_tests[0]);
	size_t nworker = sizeof(worker_tests) / sizeof(worker_tests[0]);
	printf("1..%zu\n", ntable + nworker);
	struct ep_error err = { 0 };
	if (ep_eal_init((int)(sizeof(eal_argv) / sizeof(eal_argv[0])) - 1, eal_argv, &err) != 0 ||
	    ep_create(&dp_config, &err) != 0) {
		printf("Bail out! %s: %s\n", ep_errcode_name(err.code), err.msg);
		return 1;
	}
	size_t number = 0;
	int failed = run(table_tests, ntable, &number);
	if (ep_start(&err) != 0) {
		printf("Bail out! ep_start: %s: %s\n", ep_errcode_name(err.code), err.msg);
		ep_shutdown();
		return 1;
	}
	failed += run(worker_tests, nworker, &number);
	ep_shutdown();
	return failed ? 1 : 0;
}
