/* Per-core cost of virtual-service connections (issue 3): new connections per second through the
 * service path, then the forwarding rate over the established connections, for one forwarding mode
 * (--mode nat|ipip|gre|gue), on one worker core.
 *
 * The port is made from two rings (rte_eth_from_rings): the main lcore feeds TCP frames into the
 * port's RX ring and takes what the worker transmitted out of its TX ring, so the worker sees an
 * unbroken stream while the main lcore does all the frame building. Phases:
 *   new          one SYN per connection, each a new 5-tuple to the VIP: wildcard (rte_acl) -> Maglev
 *                pick -> learned flows created (two in NAT modes, one in tunnel modes) -> NAT or
 *                encapsulation -> route + static neighbour -> TX. Timed until the worker has taken all
 *                of them.
 *   established  ACKs of the installed connections in a random order (cache-cold lookups among all of
 *                them) for --seconds after --warmup.
 * The figure that compares across runs on a shared machine is packets per CPU-second of the worker
 * thread (as in bench_pipeline.c); a feeder that fell behind shows as idle polls.
 *
 * Prints "result: key=value" lines for scripts/bench-lb.sh; everything else is DPDK's log. */
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_tcp.h>

#include "bench_clock.h"
#include "edgeplane.h"
#include "packet.h"

#define FRAME_LEN 64 /* Ethernet + IPv4 + TCP (20) + 6 bytes of padding, like testpmd's 64-byte frames */
#define VIP RTE_IPV4(192, 0, 2, 10)
#define VIP_PORT 80
#define UNIT_ADDR RTE_IPV4(198, 51, 100, 1)
#define SERVER_NET RTE_IPV4(198, 51, 100, 0)
#define SERVERS 16
#define SERVICE_ID 1
#define RING_SIZE 2048
#define BURST 32
#define NEW_PHASE_TIMEOUT_S 120.0

struct options {
	uint8_t mode; /* enum ep_service_mode */
	uint32_t connections;
	uint32_t in_flight;
	double seconds, warmup_seconds;
	const char *file_prefix;
};

static const char *const mode_names[] = { [EP_MODE_NAT] = "nat", [EP_MODE_FULLNAT] = "fullnat", [EP_MODE_DSR] = "dsr",
					  [EP_MODE_IPIP] = "ipip",  [EP_MODE_GRE] = "gre",         [EP_MODE_GUE] = "gue" };

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--mode nat|ipip|gre|gue] [--connections N] [--in-flight N] [--seconds S] [--warmup S]\n"
		"          [--file-prefix NAME]\n",
		prog);
	exit(2);
}

static void parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "mode", required_argument, NULL, 'm' },    { "connections", required_argument, NULL, 'c' },
		{ "in-flight", required_argument, NULL, 'i' }, { "seconds", required_argument, NULL, 's' },
		{ "warmup", required_argument, NULL, 'w' },  { "file-prefix", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	*o = (struct options){ .mode = EP_MODE_NAT, .connections = 1000000, .in_flight = 512, .seconds = 5,
			       .warmup_seconds = 1, .file_prefix = "bench-newflows" };
	int opt;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			if (strcmp(optarg, "nat") == 0)
				o->mode = EP_MODE_NAT;
			else if (strcmp(optarg, "ipip") == 0)
				o->mode = EP_MODE_IPIP;
			else if (strcmp(optarg, "gre") == 0)
				o->mode = EP_MODE_GRE;
			else if (strcmp(optarg, "gue") == 0)
				o->mode = EP_MODE_GUE;
			else
				usage(argv[0]);
			break;
		case 'c': o->connections = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'i': o->in_flight = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 's': o->seconds = strtod(optarg, NULL); break;
		case 'w': o->warmup_seconds = strtod(optarg, NULL); break;
		case 'p': o->file_prefix = optarg; break;
		default: usage(argv[0]);
		}
	}
	if (o->connections < o->in_flight || o->in_flight < BURST || o->in_flight > RING_SIZE / 2 || o->seconds <= 0)
		usage(argv[0]);
}



static void die(const char *what, const struct ep_error *err)
{
	fprintf(stderr, "bench_newflows: %s: %s: %s\n", what, ep_errcode_name(err->code), err->msg);
	exit(1);
}

static uint32_t server_ip(uint32_t i)
{
	return SERVER_NET + 10 + i;
}

/* Connection i: a distinct client address and port towards VIP:80. */
static void build_frame(uint8_t *f, uint32_t i, uint8_t tcp_flags)
{
	memset(f, 0, FRAME_LEN);
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)f;
	eth->dst_addr = (struct rte_ether_addr){ { 0x02, 0, 0, 0, 0, 0x02 } };
	eth->src_addr = (struct rte_ether_addr){ { 0x02, 0, 0, 0, 0, 0x03 } };
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16(sizeof(*ip) + sizeof(struct rte_tcp_hdr));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_TCP;
	ip->src_addr = rte_cpu_to_be_32(RTE_IPV4(10, 0, 0, 0) + i / 16);
	ip->dst_addr = rte_cpu_to_be_32(VIP);
	struct rte_tcp_hdr *tcp = (struct rte_tcp_hdr *)(ip + 1);
	tcp->src_port = rte_cpu_to_be_16((uint16_t)(1024 + i % 16));
	tcp->dst_port = rte_cpu_to_be_16(VIP_PORT);
	tcp->sent_seq = rte_cpu_to_be_32(i);
	tcp->data_off = 5 << 4;
	tcp->tcp_flags = tcp_flags;
	tcp->rx_win = rte_cpu_to_be_16(65535);
	ip->hdr_checksum = ep_ipv4_header_csum((const uint8_t *)ip, sizeof(*ip));
	tcp->cksum = ep_ipv4_l4_csum((const uint8_t *)ip, sizeof(*ip) + sizeof(*tcp));
}

static void install_service(uint8_t mode)
{
	struct ep_error err;
	if (ep_port_configure(0, rte_cpu_to_be_32(UNIT_ADDR), 24, 1, &err))
		die("ep_port_configure", &err);
	struct ep_server servers[SERVERS];
	for (uint32_t i = 0; i < SERVERS; i++) {
		servers[i] = (struct ep_server){ .ip = rte_cpu_to_be_32(server_ip(i)), .port = rte_cpu_to_be_16(VIP_PORT),
						 .weight = 1 };
		const uint8_t mac[6] = { 0x02, 0, 0, 0, 1, (uint8_t)i };
		if (ep_neighbor_set(servers[i].ip, 0, mac, &err))
			die("ep_neighbor_set", &err);
	}
	struct ep_service_conf conf = { .id = SERVICE_ID, .vip = rte_cpu_to_be_32(VIP), .port = rte_cpu_to_be_16(VIP_PORT),
					.proto = IPPROTO_TCP, .mode = mode, .algorithm = EP_ALG_MAGLEV,
					.table_size = 65537, .gue_port = 6080 };
	if (ep_service_set(&conf, servers, SERVERS, &err))
		die("ep_service_set", &err);
	struct ep_wildcard rule = { .proto = IPPROTO_TCP, .dst_ip = rte_cpu_to_be_32(VIP), .dst_mask = UINT32_MAX,
				    .dst_port = rte_cpu_to_be_16(VIP_PORT), .precedence = 100,
				    .action = { .type = EP_ACT_SERVICE, .service_id = SERVICE_ID } };
	if (ep_wildcards_commit(&rule, 1, &err))
		die("ep_wildcards_commit", &err);
}

/* What the worker sent must be what the mode promises: to a server, rewritten or encapsulated. */
static int output_ok(const struct rte_mbuf *m, uint8_t mode)
{
	const struct rte_ipv4_hdr *ip =
		(const struct rte_ipv4_hdr *)(rte_pktmbuf_mtod(m, const uint8_t *) + sizeof(struct rte_ether_hdr));
	uint32_t dst = rte_be_to_cpu_32(ip->dst_addr);
	if ((dst & 0xffffff00u) != SERVER_NET || ip->hdr_checksum != ep_ipv4_header_csum((const uint8_t *)ip, sizeof(*ip)))
		return 0;
	switch (mode) {
	case EP_MODE_NAT: return ip->next_proto_id == IPPROTO_TCP;
	case EP_MODE_IPIP: return ip->next_proto_id == IPPROTO_IPIP;
	case EP_MODE_GRE: return ip->next_proto_id == IPPROTO_GRE;
	default: return ip->next_proto_id == IPPROTO_UDP;
	}
}

struct feeder {
	struct rte_ring *rx, *tx;
	struct rte_mempool *pool;
	const uint8_t *frames; /* FRAME_LEN bytes per connection */
	uint8_t mode;
	uint64_t fed, bad_outputs;
};

/* One round: returns what the worker transmitted to the pool (checking it), then tops the RX ring up
 * to in_flight frames of the connections next_connection() names; 0 from it ends the feed. */
static void feed_round(struct feeder *fd, uint32_t in_flight, uint32_t (*next_connection)(void *), void *state,
		       int *exhausted)
{
	struct rte_mbuf *burst[BURST];
	unsigned n = rte_ring_dequeue_burst(fd->tx, (void **)burst, BURST, NULL);
	for (unsigned k = 0; k < n; k++)
		fd->bad_outputs += !output_ok(burst[k], fd->mode);
	if (n)
		rte_pktmbuf_free_bulk(burst, n);
	/* frames on their way back count too: the TX ring must never fill (tx_full drops) */
	while (!*exhausted && rte_ring_count(fd->rx) + rte_ring_count(fd->tx) + BURST <= in_flight) {
		if (rte_pktmbuf_alloc_bulk(fd->pool, burst, BURST) != 0)
			return;
		unsigned filled = 0;
		for (; filled < BURST; filled++) {
			uint32_t c = next_connection(state);
			if (c == UINT32_MAX) {
				*exhausted = 1;
				break;
			}
			rte_memcpy(rte_pktmbuf_mtod(burst[filled], uint8_t *), fd->frames + (size_t)c * FRAME_LEN, FRAME_LEN);
			burst[filled]->data_len = burst[filled]->pkt_len = FRAME_LEN;
		}
		if (filled < BURST)
			rte_pktmbuf_free_bulk(burst + filled, BURST - filled);
		fd->fed += rte_ring_enqueue_burst(fd->rx, (void **)burst, filled, NULL);
	}
}

struct in_order {
	uint32_t next, end;
};
static uint32_t next_in_order(void *s)
{
	struct in_order *o = s;
	return o->next < o->end ? o->next++ : UINT32_MAX;
}

struct at_random {
	uint64_t x;
	uint32_t n;
};
static uint32_t next_at_random(void *s)
{
	struct at_random *r = s;
	r->x ^= r->x << 13, r->x ^= r->x >> 7, r->x ^= r->x << 17;
	return (uint32_t)(r->x % r->n);
}

static uint64_t drops_of(const struct ep_lcore_counters *c)
{
	uint64_t d = 0;
	for (int r = 0; r < EP_DROP__COUNT; r++)
		d += c->drops[r];
	return d;
}

int main(int argc, char **argv)
{
	struct options o;
	parse_options(argc, argv, &o);
	setvbuf(stdout, NULL, _IOLBF, 0);
	int nat = o.mode == EP_MODE_NAT;

	char prefix_arg[128];
	snprintf(prefix_arg, sizeof(prefix_arg), "--file-prefix=%s", o.file_prefix);
	char *eal_argv[] = { argv[0], "-l", "0,1", "--no-huge", "-m", "2048", "--no-pci", prefix_arg };
	struct ep_error err;
	if (ep_eal_init((int)RTE_DIM(eal_argv), eal_argv, &err))
		die("ep_eal_init", &err);
	struct rte_ring *rx = rte_ring_create("bnf_rx", RING_SIZE, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	struct rte_ring *tx = rte_ring_create("bnf_tx", RING_SIZE, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (!rx || !tx || rte_eth_from_rings("bench_rings", &rx, 1, &tx, 1, SOCKET_ID_ANY) < 0) {
		fprintf(stderr, "bench_newflows: ring port: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	uint32_t flows = nat ? 2 * o.connections : o.connections;
	struct ep_config cfg = {
		.affinity_capacity = 1024,
		.flow_capacity_per_worker = flows + flows / 8 + 1024,
		.mbufs_per_worker = 8192,
		.miss_policy = EP_MISS_DROP,
		.timeouts_s = { 3600, 3600, 3600, 3600, 3600, 3600 }, /* nothing expires during the run */
	};
	if (ep_create(&cfg, &err))
		die("ep_create", &err);
	if (ep_worker_count() != 1 || ep_port_count() != 1) {
		fprintf(stderr, "bench_newflows: expected one worker and one port, got %u and %u\n", ep_worker_count(),
			ep_port_count());
		return 1;
	}
	install_service(o.mode);

	uint8_t *frames = malloc((size_t)o.connections * FRAME_LEN);
	if (!frames)
		return 1;
	for (uint32_t i = 0; i < o.connections; i++)
		build_frame(frames + (size_t)i * FRAME_LEN, i, RTE_TCP_SYN_FLAG);
	struct rte_mempool *pool = rte_pktmbuf_pool_create("bnf_pool", 4095, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (!pool) {
		fprintf(stderr, "bench_newflows: pool: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	if (ep_start(&err))
		die("ep_start", &err);
	struct feeder fd = { .rx = rx, .tx = tx, .pool = pool, .frames = frames, .mode = o.mode };

	/* new connections */
	struct ep_lcore_counters before, after;
	ep_worker_counters(0, &before);
	uint64_t cpu_before = worker_cpu_ns();
	double start = now_s();
	struct in_order order = { 0, o.connections };
	int exhausted = 0;
	for (;;) {
		feed_round(&fd, o.in_flight, next_in_order, &order, &exhausted);
		ep_worker_counters(0, &after);
		uint64_t taken = after.flows_created - before.flows_created + drops_of(&after) - drops_of(&before);
		if (taken >= o.connections || now_s() - start > NEW_PHASE_TIMEOUT_S)
			break;
	}
	double new_s = now_s() - start;
	double new_cpu_s = (double)(worker_cpu_ns() - cpu_before) / 1e9;
	uint64_t created = after.flows_created - before.flows_created, new_drops = drops_of(&after) - drops_of(&before);
	uint64_t new_idle = after.idle_polls - before.idle_polls;
	printf("result: mode=%s connections=%u learned_flows=%u created=%" PRIu64 " drops=%" PRIu64 " idle_polls=%" PRIu64
	       "\n",
	       mode_names[o.mode], o.connections, ep_learned_count(), created, new_drops, new_idle);
	printf("result: new_conn_per_s=%.0f new_conn_per_cpu_s=%.0f worker_cpu_share=%.3f\n", created / new_s,
	       new_cpu_s > 0 ? created / new_cpu_s : 0.0, new_cpu_s / new_s);

	/* established connections: the same 5-tuples as ACKs */
	for (uint32_t i = 0; i < o.connections; i++)
		build_frame(frames + (size_t)i * FRAME_LEN, i, RTE_TCP_ACK_FLAG);
	struct at_random pick = { 0x9e3779b97f4a7c15ull, o.connections };
	exhausted = 0;
	double warm_until = now_s() + o.warmup_seconds;
	while (now_s() < warm_until)
		feed_round(&fd, o.in_flight, next_at_random, &pick, &exhausted);
	ep_worker_counters(0, &before);
	cpu_before = worker_cpu_ns();
	uint64_t tsc_before = rte_rdtsc();
	double until = now_s() + o.seconds;
	while (now_s() < until)
		feed_round(&fd, o.in_flight, next_at_random, &pick, &exhausted);
	ep_worker_counters(0, &after);
	double elapsed = (double)(rte_rdtsc() - tsc_before) / (double)rte_get_tsc_hz();
	double cpu_s = (double)(worker_cpu_ns() - cpu_before) / 1e9;
	uint64_t tx_pkts = after.tx_pkts - before.tx_pkts, rx_pkts = after.rx_pkts - before.rx_pkts;
	uint64_t hits = after.learned_hits - before.learned_hits, est_created = after.flows_created - before.flows_created;
	uint64_t est_drops = drops_of(&after) - drops_of(&before), idle = after.idle_polls - before.idle_polls;
	uint64_t busy = after.busy_polls - before.busy_polls;
	printf("result: established_rx=%" PRIu64 " learned_hits=%" PRIu64 " created=%" PRIu64 " drops=%" PRIu64
	       " idle_polls=%" PRIu64 " pkts_per_busy_poll=%.1f bad_outputs=%" PRIu64 "\n",
	       rx_pkts, hits, est_created, est_drops, idle, busy ? (double)rx_pkts / busy : 0.0, fd.bad_outputs);
	printf("result: established_mpps=%.3f established_mpps_per_cpu=%.3f established_worker_cpu_share=%.3f\n",
	       tx_pkts / elapsed / 1e6, cpu_s > 0 ? tx_pkts / cpu_s / 1e6 : 0.0, cpu_s / elapsed);

	if (ep_stop(&err))
		die("ep_stop", &err);
	/* the worker has stopped: its final counters must balance exactly (every packet of both phases
	 * was a learned-flow hit, the first one of each connection right after creating it) */
	struct ep_lcore_counters total;
	ep_worker_counters(0, &total);
	int ok = total.flows_created == o.connections && drops_of(&total) == 0 && ep_learned_count() == flows &&
		 total.learned_hits == total.rx_pkts && total.tx_pkts == total.rx_pkts && tx_pkts > 0 &&
		 fd.bad_outputs == 0;
	if (!ok)
		fprintf(stderr, "bench_newflows: correctness check failed (see the result lines)\n");
	ep_shutdown();
	free(frames);
	return ok ? 0 : 1;
}
