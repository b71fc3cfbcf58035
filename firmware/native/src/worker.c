/* The worker lcore: burst RX -> parse -> fixed lookups (manager, learned) -> wildcard -> act ->
 * burst TX, for each port's queue that belongs to this worker. Lookups run in bulk over the burst
 * so the tables' memory loads overlap; nothing here allocates (beyond mbufs), locks or makes syscalls except
 * the idle back-off sleep. */
#include <string.h>

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_ip.h> /* rte_raw_cksum_mbuf */
#include <rte_prefetch.h>

#include "dp.h"
#include "fast_path.h"
#include "interest.h"
#include "packet.h"
#include "packet6.h"
#include "qos.h"

struct ep_txq {
	uint16_t n;
	struct rte_mbuf *pkts[EP_BURST];
};

struct ep_ctx {
	struct ep_worker *w;
	struct ep_txq txq[EP_MAX_PORTS];
	uint64_t now;
	uint32_t gen;
	uint8_t from_control; /* the burst was injected for processing: never punt it back up */
	uint16_t in_port;     /* the burst's input port */
	/* the burst is a packet a cascading rule's manager returned: index + 1 of that rule in resume_set */
	uint32_t resume_rule;
	const struct ep_wildcard_set *resume_set;
};

static inline void drop(struct ep_ctx *c, struct rte_mbuf *m, enum ep_drop_reason reason)
{
	c->w->c.drops[reason]++;
	rte_pktmbuf_free(m);
}

static inline void emit(struct ep_ctx *c, uint16_t port, struct rte_mbuf *m)
{
	struct ep_txq *q = &c->txq[port];
	q->pkts[q->n++] = m;
}

static void flush(struct ep_ctx *c)
{
	for (uint16_t p = 0; p < ep_dp.nports; p++) {
		struct ep_txq *q = &c->txq[p];
		if (q->n == 0)
			continue;
		/* counted before the driver owns them; the unsent ones are taken back below */
		uint64_t bytes = 0;
		for (uint16_t i = 0; i < q->n; i++)
			bytes += q->pkts[i]->pkt_len;
		c->w->c.port_tx_bytes[p] += bytes;
		uint16_t sent = rte_eth_tx_burst(p, (uint16_t)c->w->index, q->pkts, q->n);
		c->w->c.port_tx_pkts[p] += sent;
		for (uint16_t i = sent; i < q->n; i++) {
			c->w->c.port_tx_bytes[p] -= q->pkts[i]->pkt_len;
			drop(c, q->pkts[i], EP_DROP_TX_FULL);
		}
		q->n = 0;
	}
}

/* What ep_poll reports with a punted packet, in the RSS/FDIR hash words (no longer needed):
 * reason, interest flags, and the work unit or the interest reasons; the wildcard id apart. */
static inline uint32_t punt_word(enum ep_punt_reason reason, uint8_t flags, uint16_t low)
{
	return (uint32_t)reason << 24 | (uint32_t)flags << 16 | low;
}

static inline int punt_enqueue(struct rte_mbuf *m, uint32_t word, uint32_t wildcard_id)
{
	m->hash.fdir.lo = word;
	m->hash.fdir.hi = wildcard_id;
	return rte_ring_mp_enqueue(ep_dp.punt_ring, m);
}

/* Returns 0 when the packet went up. */
static int punt(struct ep_ctx *c, struct rte_mbuf *m, uint32_t word, uint32_t wildcard_id)
{
	if (c->from_control) {
		drop(c, m, EP_DROP_PUNT_LOOP);
		return -1;
	}
	if (punt_enqueue(m, word, wildcard_id) != 0) {
		drop(c, m, EP_DROP_PUNT_QUEUE_FULL);
		return -1;
	}
	c->w->c.actions[EP_AC_PUNT]++;
	c->w->c.punted++;
	return 0;
}

static void post_event(struct ep_ctx *c, uint8_t type, uint16_t port, uint32_t ip, const uint8_t *mac)
{
	struct ep_event ev = { .type = type, .port = port, .ip = ip };
	if (mac)
		memcpy(ev.mac, mac, 6);
	/* a full ring only delays learning; the next ARP or miss retries */
	rte_ring_mp_enqueue_elem(ep_dp.event_ring, &ev, sizeof(ev));
	(void)c;
}

/* Asks the control thread to ARP for ip, at most every 100 ms per address per worker. */
static void note_neighbor_miss(struct ep_ctx *c, uint16_t port, uint32_t ip)
{
	struct ep_worker *w = c->w;
	uint32_t slot = (ip * 2654435761u) >> 29;
	if (w->miss_ip[slot] == ip && c->now - w->miss_tsc[slot] < ep_dp.tsc_hz / 10)
		return;
	w->miss_ip[slot] = ip;
	w->miss_tsc[slot] = c->now;
	post_event(c, EP_EV_NEIGH_MISS, port, ip, NULL);
}

/* Output port and destination MAC towards target, cached in the flow while neither routes nor
 * neighbours change. Returns a drop reason or EP_DROP_NONE. */
static enum ep_drop_reason next_hop(struct ep_ctx *c, struct ep_flow *f, uint32_t target, uint16_t *port,
				    uint8_t mac[6])
{
	if (f && f->neigh_gen == c->gen) {
		*port = f->tx_port;
		memcpy(mac, f->dst_mac, 6);
		return EP_DROP_NONE;
	}
	uint32_t nh;
	if (ep_route_lookup(target, port, &nh) != 0)
		return EP_DROP_NO_ROUTE;
	struct ep_neighbor n;
	if (ep_neighbor_lookup(nh, &n) != 0) {
		note_neighbor_miss(c, *port, nh);
		return EP_DROP_NO_NEIGHBOR;
	}
	memcpy(mac, n.mac, 6);
	if (f) {
		f->tx_port = *port;
		memcpy(f->dst_mac, mac, 6);
		f->neigh_gen = c->gen;
	}
	return EP_DROP_NONE;
}

/* Outer tunnel header in front of the IP datagram (the L2 header moves to the new front). */
static enum ep_drop_reason encapsulate(struct rte_mbuf *m, struct ep_meta *meta, const struct ep_action *a,
				       uint16_t port)
{
	uint16_t outer = a->dispatch == EP_DISPATCH_GUE ? EP_GUE_OVERHEAD : a->dispatch == EP_DISPATCH_GRE ? 24 : 20;
	if (unlikely(meta->l3_len > UINT16_MAX - outer))
		return EP_DROP_TUNNEL_TOO_BIG;
	uint8_t *start = (uint8_t *)rte_pktmbuf_prepend(m, outer);
	if (!start)
		return EP_DROP_NO_HEADROOM;
	memmove(start, start + outer, meta->l3_off);
	uint32_t src = ep_dp.ports[port].addr;
	if (a->dispatch == EP_DISPATCH_GUE) {
		/* the source port spreads tunnelled flows over the server's RX queues */
		uint16_t sport = rte_cpu_to_be_16((uint16_t)(0xc000 | (ep_key_hash(&meta->key) & 0x3fff)));
		ep_encap4_gue(start + meta->l3_off, src, a->forward_ip, sport, a->gue_port, meta->l3_len);
	} else {
		ep_encap4_header(start + meta->l3_off, a->dispatch == EP_DISPATCH_GRE ? EP_ENCAP_GRE : EP_ENCAP_IPIP, src,
				 a->forward_ip, meta->l3_len);
	}
	if (a->flags & EP_ACT_F_DSCP) /* the path to the server sees only the outer header */
		ep_ipv4_set_dscp(start, meta, a->qos_dscp);
	return EP_DROP_NONE;
}

/* encapsulate() for an IPv6 packet to its server over IPv6: the outer source is the port's IPv6
 * address, the flow label (and GUE's source port) carry the flow's hash for ECMP paths and the
 * server's RX queues. GUE's UDP checksum is mandatory over IPv6: the payload's sum comes from the
 * inner L4 checksum when it can (ep_ipv6_packet_sum), else from the bytes. */
static enum ep_drop_reason encapsulate6(struct rte_mbuf *m, struct ep_meta *meta, const struct ep_action *a,
					uint16_t port, const uint8_t server[16])
{
	const uint8_t *src = ep_dp.ports[port].addr6;
	if (unlikely(ep_addr6_is_zero(src)))
		return EP_DROP_NO_TUNNEL_SOURCE;
	uint16_t outer = a->dispatch == EP_DISPATCH_GUE   ? EP_GUE6_OVERHEAD
			 : a->dispatch == EP_DISPATCH_GRE ? EP_ENCAP6_GRE_OVERHEAD
							  : EP_ENCAP6_IPIP_OVERHEAD;
	/* the outer payload length: the inner packet and any GRE / UDP + GUE header */
	if (unlikely(meta->l3_len > UINT16_MAX - (outer - EP_ENCAP6_IPIP_OVERHEAD)))
		return EP_DROP_TUNNEL_TOO_BIG;
	uint32_t hash = ep_key_hash(&meta->key);
	uint32_t inner_sum = 0;
	if (a->dispatch == EP_DISPATCH_GUE &&
	    ep_ipv6_packet_sum(rte_pktmbuf_mtod(m, const uint8_t *), meta, &inner_sum) != 0) {
		uint16_t raw;
		if (rte_raw_cksum_mbuf(m, meta->l3_off, meta->l3_len, &raw) != 0)
			return EP_DROP_TRUNCATED_L3;
		inner_sum = raw;
	}
	uint8_t *start = (uint8_t *)rte_pktmbuf_prepend(m, outer);
	if (!start)
		return EP_DROP_NO_HEADROOM;
	memmove(start, start + outer, meta->l3_off);
	if (a->dispatch == EP_DISPATCH_GUE) {
		uint16_t sport = rte_cpu_to_be_16((uint16_t)(0xc000 | (hash & 0x3fff)));
		ep_encap6_gue(start + meta->l3_off, src, server, hash, sport, a->gue_port, meta->l3_len, inner_sum);
	} else {
		ep_encap6_header(start + meta->l3_off, a->dispatch == EP_DISPATCH_GRE ? EP_ENCAP_GRE : EP_ENCAP_IPV6, src,
				 server, hash, meta->l3_len);
	}
	if (a->flags & EP_ACT_F_DSCP) /* the path to the server sees only the outer header */
		ep_ipv6_set_dscp(start, meta, a->qos_dscp);
	return EP_DROP_NONE;
}

/* Asks the control thread to solicit ip's neighbour, rate-limited like note_neighbor_miss. */
static void note_neighbor6_miss(struct ep_ctx *c, uint16_t port, const uint8_t ip[16])
{
	struct ep_worker *w = c->w;
	uint32_t folded = ep_addr6_fold(ip);
	uint32_t slot = (folded * 2654435761u) >> 29;
	if (w->miss_ip[slot] == folded && c->now - w->miss_tsc[slot] < ep_dp.tsc_hz / 10)
		return;
	w->miss_ip[slot] = folded;
	w->miss_tsc[slot] = c->now;
	struct ep_event ev = { .type = EP_EV_NEIGH6_MISS, .port = port };
	memcpy(ev.ip6, ip, 16);
	rte_ring_mp_enqueue_elem(ep_dp.event_ring, &ev, sizeof(ev));
}

static enum ep_drop_reason next_hop6(struct ep_ctx *c, struct ep_flow *f, const uint8_t target[16], uint16_t *port,
				     uint8_t mac[6])
{
	if (f && f->neigh_gen == c->gen) {
		*port = f->tx_port;
		memcpy(mac, f->dst_mac, 6);
		return EP_DROP_NONE;
	}
	uint8_t nh[16];
	if (ep_route6_lookup(target, port, nh) != 0)
		return EP_DROP_NO_ROUTE;
	struct ep_neighbor n;
	if (ep_neighbor6_lookup(nh, &n) != 0) {
		note_neighbor6_miss(c, *port, nh);
		return EP_DROP_NO_NEIGHBOR;
	}
	memcpy(mac, n.mac, 6);
	if (f) {
		f->tx_port = *port;
		memcpy(f->dst_mac, mac, 6);
		f->neigh_gen = c->gen;
	}
	return EP_DROP_NONE;
}

/* IPv6: NAT66 from the flow's own addresses (service flows), routing by LPM6 and NDP-learned
 * neighbours, hop limit decremented except for DSR's MAC rewrite. Service flows in a direct-return
 * mode go to their server (nat6_dst): by MAC rewrite, or tunnelled over IPv6. */
static void forward6(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta, const struct ep_action *a,
		     struct ep_flow *f)
{
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	const int service_flow = f && f->has_server;
	/* learned service flows and manager affinities with IPv6 NAT carry nat6_* */
	const int flow_nat6 = service_flow || (f && (a->flags2 & EP_ACT_F2_NAT6));
	if (a->nat_src_ip | a->nat_dst_ip || (!flow_nat6 && (a->nat_src_port | a->nat_dst_port))) {
		drop(c, m, EP_DROP_NAT_UNSUPPORTED);
		return;
	}
	if (flow_nat6 && a->dispatch == EP_DISPATCH_NONE) {
		const uint8_t *src = ep_addr6_is_zero(f->nat6_src) ? NULL : f->nat6_src;
		const uint8_t *dst = ep_addr6_is_zero(f->nat6_dst) ? NULL : f->nat6_dst;
		if (unlikely(meta->l4_off == 0 && (meta->flags & EP_META_FRAGMENT))) {
			/* a later fragment: only the addresses are in it */
			ep_nat6_addresses(frame, meta, src, dst);
		} else if ((src || dst || a->nat_src_port || a->nat_dst_port) &&
			   ep_nat6(frame, meta, src, a->nat_src_port, dst, a->nat_dst_port) != 0) {
			drop(c, m, EP_DROP_NAT_UNSUPPORTED);
			return;
		}
	}
	if (unlikely(a->flags2 & EP_ACT_F2_SEQ_ADJUST) && f)
		ep_tcp_seq_adjust(frame, meta, f->seq.seq_delta, f->seq.initial_seq, f->seq.ack_delta, f->seq.initial_ack);
	if (a->dispatch >= EP_DISPATCH_IPIP && !service_flow) {
		/* a tunnel's outer destination is the service flow's server; affinities cannot ask for it */
		drop(c, m, EP_DROP_NAT_UNSUPPORTED);
		return;
	}
	uint16_t port;
	uint8_t mac[6];
	if (a->flags & EP_ACT_F_NEXT_HOP) {
		port = a->out_port;
		memcpy(mac, a->next_hop_mac, 6);
	} else {
		const uint8_t *target = a->dispatch != EP_DISPATCH_NONE && service_flow ? f->nat6_dst : meta->key.dst;
		enum ep_drop_reason why = next_hop6(c, f, target, &port, mac);
		if (why != EP_DROP_NONE) {
			drop(c, m, why);
			return;
		}
	}
	if (port >= ep_dp.nports || !ep_dp.ports[port].started) {
		drop(c, m, EP_DROP_BAD_PORT);
		return;
	}
	if (a->dispatch != EP_DISPATCH_MAC && ep_ipv6_dec_hop_limit(frame, meta) == 0) {
		drop(c, m, EP_DROP_TTL_EXCEEDED);
		return;
	}
	if (a->flags & EP_ACT_F_DSCP)
		ep_ipv6_set_dscp(frame, meta, a->qos_dscp);
	if (a->dispatch >= EP_DISPATCH_IPIP) {
		enum ep_drop_reason why = encapsulate6(m, meta, a, port, f->nat6_dst);
		if (why != EP_DROP_NONE) {
			drop(c, m, why);
			return;
		}
	}
	if (a->flags & (EP_ACT_F_VLAN_POP | EP_ACT_F_VLAN_PUSH | EP_ACT_F_PCP | EP_ACT_F_MPLS_PUSH | EP_ACT_F_MPLS_POP)) {
		enum ep_drop_reason why = ep_apply_l2_qos(m, a);
		if (why != EP_DROP_NONE) {
			drop(c, m, why);
			return;
		}
	}
	frame = rte_pktmbuf_mtod(m, uint8_t *);
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
	memcpy(&eth->dst_addr, mac, 6);
	rte_ether_addr_copy(&ep_dp.ports[port].mac, &eth->src_addr);
	c->w->c.actions[EP_AC_FORWARD]++;
	emit(c, port, m);
}

static void forward(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta, const struct ep_action *a,
		    struct ep_flow *f)
{
	if (unlikely(meta->kind == EP_PKT_IPV6)) {
		forward6(c, m, meta, a, f);
		return;
	}
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	int is_v4 = meta->kind == EP_PKT_IPV4;
	if (unlikely(is_v4 && meta->l4_off == 0 && (meta->flags & EP_META_FRAGMENT))) {
		/* a later fragment: only the addresses are in it */
		if (a->nat_src_ip | a->nat_dst_ip)
			ep_nat4_addresses(frame, meta, a->nat_src_ip, a->nat_dst_ip);
		if (a->nat_src_ip)
			memcpy(meta->key.src, &a->nat_src_ip, 4);
		if (a->nat_dst_ip)
			memcpy(meta->key.dst, &a->nat_dst_ip, 4);
	} else if (a->flags & EP_ACT_F_NAT_PREPARED) {
		ep_nat4_prepared(frame, meta, a->nat_src_ip, a->nat_src_port, a->nat_dst_ip, a->nat_dst_port,
				 a->nat_ip_delta, a->nat_l4_delta, 0);
		/* the route and a tunnel's entropy below follow the translated packet */
		ep_key_set4(&meta->key, meta->key.proto, a->nat_src_ip, a->nat_src_port, a->nat_dst_ip, a->nat_dst_port);
	} else if (a->nat_src_ip | a->nat_dst_ip | a->nat_src_port | a->nat_dst_port) {
		if (!is_v4 || ep_nat4(frame, meta, a->nat_src_ip, a->nat_src_port, a->nat_dst_ip, a->nat_dst_port)) {
			drop(c, m, EP_DROP_NAT_UNSUPPORTED);
			return;
		}
	}
	if (unlikely(a->flags2 & EP_ACT_F2_SEQ_ADJUST) && f)
		ep_tcp_seq_adjust(frame, meta, f->seq.seq_delta, f->seq.initial_seq, f->seq.ack_delta, f->seq.initial_ack);
	uint16_t port;
	uint8_t mac[6];
	if (a->flags & EP_ACT_F_NEXT_HOP) {
		port = a->out_port;
		memcpy(mac, a->next_hop_mac, 6);
	} else {
		if (!is_v4) {
			drop(c, m, EP_DROP_NO_ROUTE);
			return;
		}
		uint32_t target = a->dispatch ? a->forward_ip : ep_key_dst4(&meta->key);
		enum ep_drop_reason why = next_hop(c, f, target, &port, mac);
		if (why != EP_DROP_NONE) {
			drop(c, m, why);
			return;
		}
	}
	if (port >= ep_dp.nports || !ep_dp.ports[port].started) {
		drop(c, m, EP_DROP_BAD_PORT);
		return;
	}
	if (is_v4 && a->dispatch != EP_DISPATCH_MAC && ep_ipv4_dec_ttl(frame, meta) == 0) {
		drop(c, m, EP_DROP_TTL_EXCEEDED);
		return;
	}
	if (a->flags & EP_ACT_F_DSCP) {
		if (!is_v4) {
			drop(c, m, EP_DROP_QOS_UNSUPPORTED);
			return;
		}
		ep_ipv4_set_dscp(frame, meta, a->qos_dscp);
	}
	if (a->dispatch >= EP_DISPATCH_IPIP) {
		enum ep_drop_reason why = encapsulate(m, meta, a, port);
		if (why != EP_DROP_NONE) {
			drop(c, m, why);
			return;
		}
	}
	if (a->flags & (EP_ACT_F_VLAN_POP | EP_ACT_F_VLAN_PUSH | EP_ACT_F_PCP | EP_ACT_F_MPLS_PUSH | EP_ACT_F_MPLS_POP)) {
		enum ep_drop_reason why = ep_apply_l2_qos(m, a);
		if (why != EP_DROP_NONE) {
			drop(c, m, why);
			return;
		}
	}
	frame = rte_pktmbuf_mtod(m, uint8_t *);
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
	memcpy(&eth->dst_addr, mac, 6);
	rte_ether_addr_copy(&ep_dp.ports[port].mac, &eth->src_addr);
	c->w->c.actions[EP_AC_FORWARD]++;
	emit(c, port, m);
}

static void apply(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta, const struct ep_action *a,
		  struct ep_flow *f)
{
	switch (a->type) {
	case EP_ACT_FORWARD:
		forward(c, m, meta, a, f);
		return;
	case EP_ACT_PUNT:
		punt(c, m, punt_word(EP_PUNT_ACTION, 0, 0), 0);
		return;
	default:
		c->w->c.actions[EP_AC_DROP]++;
		drop(c, m, EP_DROP_ACTION_DROP);
		return;
	}
}

/* forward() for a plain action (EP_ACT_F2_PLAIN, IPv4 keys only) on a packet that is no fragment,
 * when the next hop is known without a lookup: the NAT, the TTL decrement and the MACs in one
 * pass. Returns 0, with the frame untouched, when it cannot finish (next hop to resolve, port down,
 * TTL expiring): forward() then does it all and names the reason of a drop. */
static inline int forward_plain(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta, const struct ep_action *a,
				const struct ep_flow *f)
{
	uint16_t port;
	const uint8_t *mac;
	if (a->flags & EP_ACT_F_NEXT_HOP) {
		port = a->out_port;
		mac = a->next_hop_mac;
	} else if (f->neigh_gen == c->gen) {
		port = f->tx_port;
		mac = f->dst_mac;
	} else {
		return 0;
	}
	if (unlikely(meta->kind != EP_PKT_IPV4 || port >= ep_dp.nports || !ep_dp.ports[port].started))
		return 0;
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	uint8_t *ip = frame + meta->l3_off;
	uint32_t ttl_delta = 0;
	if (a->dispatch != EP_DISPATCH_MAC) {
		if (unlikely(ip[8] <= 1))
			return 0;
		uint16_t before = ep_load16(ip + 8); /* TTL and protocol: one checksummed word */
		ip[8]--;
		ttl_delta = ep_csum_delta16(before, ep_load16(ip + 8));
	}
	if (a->flags & EP_ACT_F_NAT_PREPARED)
		ep_nat4_prepared(frame, meta, a->nat_src_ip, a->nat_src_port, a->nat_dst_ip, a->nat_dst_port,
				 a->nat_ip_delta, a->nat_l4_delta, ttl_delta);
	else if (ttl_delta)
		ep_store16(ip + 10, ep_csum_apply_delta(ep_load16(ip + 10), ttl_delta));
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
	memcpy(&eth->dst_addr, mac, 6);
	rte_ether_addr_copy(&ep_dp.ports[port].mac, &eth->src_addr);
	c->w->c.actions[EP_AC_FORWARD]++;
	emit(c, port, m);
	return 1;
}

/* apply() with the fast path of a plain forward first. */
static inline void act(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta, const struct ep_action *a,
		       struct ep_flow *f)
{
	if (likely(a->flags2 & EP_ACT_F2_PLAIN) && !(meta->flags & EP_META_FRAGMENT) && forward_plain(c, m, meta, a, f))
		return;
	apply(c, m, meta, a, f);
}

static inline void account_flow(struct ep_ctx *c, struct ep_flow *f, const struct ep_meta *meta, uint32_t len)
{
	if (meta->key.proto == IPPROTO_TCP)
		ep_flow_track_tcp(f, meta->tcp_flags);
	if (f->has_server) { /* both directions: a server's throughput is what it sends and receives */
		struct ep_counter_pair *s = &c->w->server_counters[f->service_id * EP_MAX_SERVERS + f->server_slot];
		s->packets++;
		s->bytes += len;
	}
}

/* ---- interest criteria (SMFA-R15, R25) ---- */

/* Tells the manager about m while m itself goes on or waits: a copy, whole when it asked for the
 * bytes, else the headers that name the flow. */
static void send_copy(struct ep_ctx *c, const struct rte_mbuf *m, const struct ep_meta *meta, uint8_t flags,
		      uint16_t reasons, uint32_t wildcard_id)
{
	uint32_t len = (flags & EP_INTEREST_F_PACKET) || meta->payload_off == 0 ? UINT32_MAX : meta->payload_off;
	struct rte_mbuf *up = rte_pktmbuf_copy(m, c->w->pool, 0, len);
	if (!up || punt_enqueue(up, punt_word(EP_PUNT_INTEREST, flags, reasons), wildcard_id) != 0) {
		rte_pktmbuf_free(up);
		c->w->c.interest_lost++;
		return;
	}
	c->w->c.interest_matches++;
	c->w->c.interest_copies += (flags & EP_INTEREST_F_COPY) != 0;
}

static void hold(struct ep_ctx *c, struct rte_mbuf *m, const struct ep_meta *meta, hash_sig_t sig, uint16_t in_port)
{
	ep_hold_put(&c->w->hold, m, &meta->key, sig, in_port, c->now);
	c->w->c.held++;
}

/* Carries out an interest verdict. Returns 1 when the packet left the pipeline (went up or waits). */
static int interest_act(struct ep_ctx *c, struct rte_mbuf *m, const struct ep_meta *meta, struct ep_interest_verdict v,
			uint32_t wildcard_id, hash_sig_t sig, uint16_t in_port)
{
	if (v.fate == EP_FATE_PASS)
		return 0;
	if (c->from_control) {
		/* it has been up already: never again (SMFA-R9); it still takes the affinity's action */
		if (v.fate == EP_FATE_COPY)
			return 0;
		drop(c, m, EP_DROP_PUNT_LOOP);
		return 1;
	}
	if (v.fate == EP_FATE_HOLD && ep_hold_full(&c->w->hold)) {
		/* it cannot be held: the original goes up instead (and the manager returns it) */
		c->w->c.hold_overflows++;
		v.fate = EP_FATE_UP;
		v.flags = EP_INTEREST_F_PACKET;
	}
	if (v.fate == EP_FATE_UP) {
		if (punt(c, m, punt_word(EP_PUNT_INTEREST, v.flags, v.reasons), wildcard_id) == 0)
			c->w->c.interest_matches++;
		return 1;
	}
	send_copy(c, m, meta, v.flags, v.reasons, wildcard_id);
	if (v.fate == EP_FATE_COPY)
		return 0;
	hold(c, m, meta, sig, in_port);
	return 1;
}

/* A wildcard with criteria matched. A packet of a flow whose earlier packets wait waits behind
 * them, so the flow keeps its order. */
static int interest_wildcard(struct ep_ctx *c, struct rte_mbuf *m, const struct ep_meta *meta,
			     const struct ep_wildcard_extra *x, hash_sig_t sig, uint16_t in_port)
{
	struct ep_interest_verdict v = ep_interest_decide(&x->interest, ep_interest_bits(meta, 1));
	struct ep_hold *h = &c->w->hold;
	if (unlikely(h->count) && !c->from_control && !ep_hold_full(h) && ep_hold_has_flow(h, &meta->key, sig)) {
		if (v.fate != EP_FATE_PASS)
			send_copy(c, m, meta, (uint8_t)(EP_INTEREST_F_HELD | ((v.reasons & x->interest.data) ? EP_INTEREST_F_PACKET : 0)),
				  v.reasons, x->id);
		hold(c, m, meta, sig, in_port);
		return 1;
	}
	return interest_act(c, m, meta, v, x->id, sig, in_port);
}

/* The rarer parts of a manager affinity: counters under its forward IP (information flag, SMFA-R11)
 * and interest criteria (e.g. FIN/RST notices, SMFA-R25). Returns 1 when the packet went up. */
static int manager_extras(struct ep_ctx *c, struct rte_mbuf *m, const struct ep_meta *meta, int32_t pos,
			  const struct ep_flow *f)
{
	struct ep_manager_extra *x = &ep_dp.manager_extra[pos];
	if (f->act.flags2 & EP_ACT_F2_STATS_IP) {
		struct ep_counter_pair *s = &c->w->stats_ip_counters[x->stats_slot];
		s->packets++;
		s->bytes += m->pkt_len;
	}
	if (!(f->act.flags2 & EP_ACT_F2_INTEREST))
		return 0;
	uint16_t bits = ep_interest_bits(meta, !x->data_seen);
	if ((bits & (1u << EP_INTEREST_DATA)) && !x->data_seen)
		x->data_seen = 1;
	struct ep_interest_verdict v = ep_interest_decide(&x->interest, bits);
	v.flags |= EP_INTEREST_F_FIXED;
	return interest_act(c, m, meta, v, 0, 0, 0);
}

/* A manager affinity's packet (the caller counts the hits per burst). */
static inline void hit_manager(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta, int32_t pos,
			       struct ep_flow *f)
{
	struct ep_counter_pair *cnt = &ep_affinity_flow_counters(f)[c->w->index];
	cnt->packets++;
	cnt->bytes += m->pkt_len;
	uint8_t before = f->tcp_state;
	account_flow(c, f, meta, m->pkt_len);
	if (f->tcp_state != before && (f->tcp_state == EP_TCPS_FIN || f->tcp_state == EP_TCPS_RST)) {
		/* a closing connection need not live out the manager's TTL */
		uint64_t closing = c->now + ep_flow_timeout_tsc(f, meta->key.proto);
		if (closing < f->expire_tsc)
			f->expire_tsc = closing;
	}
	if (unlikely(f->act.flags2 & (EP_ACT_F2_INTEREST | EP_ACT_F2_STATS_IP)) && manager_extras(c, m, meta, pos, f))
		return;
	act(c, m, meta, &f->act, f);
}

/* The server's SYN-ACK on the reverse flow closes the handshake the client's SYN opened: the
 * time between them is the server's responsiveness as this unit sees it. */
static void time_handshake(struct ep_ctx *c, struct ep_flow *f, const struct ep_meta *meta)
{
	if ((meta->tcp_flags & (EP_TCP_SYN | EP_TCP_ACK)) != (EP_TCP_SYN | EP_TCP_ACK))
		return;
	struct ep_counter_pair *h = &c->w->server_handshakes[f->service_id * EP_MAX_SERVERS + f->server_slot];
	h->packets++;
	h->bytes += (c->now - f->syn_tsc) * 1000000 / ep_dp.tsc_hz;
	f->syn_tsc = 0;
}

/* Deletes a learned flow of this worker, keeping the per-unit connection count. */
static int unlearn(struct ep_ctx *c, const struct ep_flow_key *key)
{
	struct ep_flow_table *t = &c->w->learned;
	int32_t pos = rte_hash_lookup(t->hash, key);
	if (pos < 0)
		return 0;
	uint16_t unit = t->flows[pos].unit;
	if (!ep_flow_table_del(t, key))
		return 0;
	c->w->unit_flows[unit]--;
	return 1;
}

/* Replication: one record per direction per change, while the cluster asks for them. */
static void flow_event(struct ep_ctx *c, struct ep_flow *f, enum ep_flow_event_kind kind)
{
	struct ep_flow_record r;
	r.key = f->key;
	r.action = f->act;
	ep_action_public(&r.action);
	r.ttl_ms = f->expire_tsc > c->now ? (uint32_t)((f->expire_tsc - c->now) * 1000 / ep_dp.tsc_hz) : 0;
	r.service_id = f->service_id;
	r.server_slot = f->server_slot;
	r.unit = f->unit;
	r.kind = (uint8_t)kind;
	r.tcp_state = f->tcp_state;
	r.reverse = f->reverse;
	r.has_server = f->has_server;
	r.pad[0] = r.pad[1] = 0;
	if (unlikely(f->key.family == 6) && f->has_server) {
		memcpy(r.nat6_src, f->nat6_src, 16);
		memcpy(r.nat6_dst, f->nat6_dst, 16);
	} else {
		memset(r.nat6_src, 0, 32);
	}
	if (rte_ring_mp_enqueue_elem(ep_dp.flow_events, &r, sizeof(r)) != 0)
		__atomic_fetch_add(&ep_dp.flow_events_lost, 1, __ATOMIC_RELAXED);
	else
		f->replicated_expire_tsc = f->expire_tsc;
}

static inline int replicating(void)
{
	return __atomic_load_n(&ep_dp.replicating, __ATOMIC_RELAXED);
}

/* Forwarding delivery (cluster.md CL-R2): the master passes a frame of another member's work unit
 * on to that member's data-port MAC on the segment it came from, unprocessed; the owner takes it
 * as if it had received it itself. */
static void forward_to_owner(struct ep_ctx *c, struct rte_mbuf *m, const struct ep_unit_table *t, uint16_t unit)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	uint16_t port = c->in_port;
	memcpy(&eth->dst_addr, t->fwd.mac[t->fwd.peer[unit]][port], RTE_ETHER_ADDR_LEN);
	rte_ether_addr_copy(&ep_dp.ports[port].mac, &eth->src_addr);
	c->w->c.unit_forwarded++;
	emit(c, port, m);
}

/* Whether this member processes the work unit now; otherwise the packet is dropped silently,
 * handed up to be held, or (forwarding delivery, at the master) passed on to its owner. */
static inline int unit_is_mine(struct ep_ctx *c, struct rte_mbuf *m, uint16_t unit)
{
	const struct ep_unit_table *t = __atomic_load_n(&ep_dp.units, __ATOMIC_ACQUIRE);
	uint8_t state = t->state[unit];
	if (likely(state == EP_UNIT_OWNED))
		return 1;
	if (state == EP_UNIT_HOLD)
		punt(c, m, punt_word(EP_PUNT_HELD, 0, unit), 0);
	else if (state == EP_UNIT_FORWARD)
		forward_to_owner(c, m, t, unit);
	else
		drop(c, m, EP_DROP_FOREIGN_UNIT);
	return 0;
}

static void hit_learned(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta, struct ep_flow *f)
{
	if (!unit_is_mine(c, m, f->unit))
		return;
	c->w->unit_packets[f->unit]++;
	if (unlikely(f->syn_tsc != 0))
		time_handshake(c, f, meta);
	f->packets++;
	f->bytes += m->pkt_len;
	c->w->c.learned_hits++;
	uint8_t state_before = f->tcp_state;
	account_flow(c, f, meta, m->pkt_len);
	f->expire_tsc = c->now + ep_flow_timeout_tsc(f, meta->key.proto);
	/* after the refresh: the record carries the new state's timeout (a peer's copy of an
	 * established connection must not expire on the handshake's short timer) */
	if (unlikely(f->tcp_state != state_before) && replicating())
		flow_event(c, f, EP_FLOW_UPDATED);
	act(c, m, meta, &f->act, f);
}

static struct ep_flow *learn(struct ep_ctx *c, const struct ep_flow_key *key, const struct ep_flow *model)
{
	struct ep_flow_table *t = &c->w->learned;
	int32_t pos = ep_flow_table_put(t, key);
	if (pos < 0)
		return NULL;
	struct ep_flow *f = &t->flows[pos];
	if (!f->in_use) {
		t->live++;
		c->w->unit_flows[model->unit]++;
	}
	*f = *model;
	f->key = *key;
	ep_action_prepare(&f->act, key);
	f->packets = f->bytes = 0;
	f->neigh_gen = 0;
	f->expire_tsc = c->now + ep_flow_timeout_tsc(f, key->proto);
	__atomic_store_n(&f->in_use, 1, __ATOMIC_RELEASE);
	return f;
}

/* A flow this worker has not seen may be known to another worker (the reply of a NAT flow can
 * arrive on another queue): copy it so later packets hit locally. */
static struct ep_flow *adopt_from_peer(struct ep_ctx *c, const struct ep_flow_key *key, hash_sig_t sig)
{
	for (uint32_t i = 0; i < ep_dp.nworkers; i++) {
		struct ep_worker *peer = ep_dp.workers[i];
		if (peer == c->w)
			continue;
		int32_t pos = rte_hash_lookup_with_hash(peer->learned.hash, key, sig);
		if (pos < 0)
			continue;
		struct ep_flow copy = peer->learned.flows[pos];
		if (!copy.in_use)
			continue;
		return learn(c, key, &copy);
	}
	return NULL;
}

/* The other direction's key of a learned NAT flow, derived from this direction's translation. */
static int pair_key(const struct ep_flow *f, struct ep_flow_key *out)
{
	const struct ep_action *a = &f->act;
	if (!f->has_server || a->dispatch != EP_DISPATCH_NONE)
		return -1; /* direct-return modes have no reverse flow here */
	const struct ep_flow_key *k = &f->key;
	if (k->family == 6) {
		const int src_kept = ep_addr6_is_zero(f->nat6_src), dst_kept = ep_addr6_is_zero(f->nat6_dst);
		if (!f->reverse)
			ep_key_set6(out, k->proto, f->nat6_dst, a->nat_dst_port, src_kept ? k->src : f->nat6_src,
				    src_kept ? k->sport : a->nat_src_port);
		else
			ep_key_set6(out, k->proto, dst_kept ? k->dst : f->nat6_dst, dst_kept ? k->dport : a->nat_dst_port,
				    f->nat6_src, a->nat_src_port);
		return 0;
	}
	if (!f->reverse)
		ep_key_set4(out, k->proto, a->nat_dst_ip, a->nat_dst_port, a->nat_src_ip ? a->nat_src_ip : ep_key_src4(k),
			    a->nat_src_ip ? a->nat_src_port : k->sport);
	else
		ep_key_set4(out, k->proto, a->nat_dst_ip ? a->nat_dst_ip : ep_key_dst4(k),
			    a->nat_dst_ip ? a->nat_dst_port : k->dport, a->nat_src_ip, a->nat_src_port);
	return 0;
}

/* Deletes a learned connection, both directions, from this worker's table. */
static void forget(struct ep_ctx *c, const struct ep_flow_key *key)
{
	struct ep_flow_table *t = &c->w->learned;
	int32_t pos = rte_hash_lookup(t->hash, key);
	if (pos < 0)
		return;
	struct ep_flow_key pair;
	int has_pair = pair_key(&t->flows[pos], &pair) == 0;
	if (replicating())
		flow_event(c, &t->flows[pos], EP_FLOW_DELETED);
	unlearn(c, key);
	if (has_pair) {
		int32_t ppos = rte_hash_lookup(t->hash, &pair);
		if (ppos >= 0 && replicating())
			flow_event(c, &t->flows[ppos], EP_FLOW_DELETED);
		unlearn(c, &pair);
	}
}

/* A pinned connection is over when its server was flushed, or when a client starts a new one
 * (SYN without ACK) on a port whose previous connection was closing: pick a server afresh. */
static inline int flow_is_stale(const struct ep_flow *f, const struct ep_meta *meta)
{
	if (f->server_epoch != __atomic_load_n(&ep_dp.server_epochs[f->service_id * EP_MAX_SERVERS + f->server_slot],
					       __ATOMIC_ACQUIRE))
		return 1;
	return !f->reverse && (meta->tcp_flags & (EP_TCP_SYN | EP_TCP_ACK)) == EP_TCP_SYN &&
	       (f->tcp_state == EP_TCPS_FIN || f->tcp_state == EP_TCPS_RST);
}

static void new_service_flow(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta, uint32_t service_id,
			     hash_sig_t sig);

static void restart_or_drop(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta, struct ep_flow *f,
			    hash_sig_t sig)
{
	uint16_t service_id = f->service_id;
	int reselect = !f->reverse && (meta->tcp_flags & (EP_TCP_SYN | EP_TCP_ACK)) == EP_TCP_SYN;
	forget(c, &meta->key);
	if (reselect)
		new_service_flow(c, m, meta, service_id, sig);
	else
		drop(c, m, EP_DROP_SERVER_FLUSHED);
}

/* A peer's replicated connection: installed as if this worker had learned it, with the time it
 * had left, so a takeover forwards it to the same server with the same translation. */
static void import_flow(struct ep_ctx *c, const struct ep_flow_record *r)
{
	struct ep_flow model;
	memset(&model, 0, sizeof(model));
	model.act = r->action;
	model.act.flags &= (uint8_t)~EP_ACT_F_NAT_PREPARED;
	model.service_id = r->service_id;
	model.server_slot = r->server_slot;
	model.unit = r->unit % EP_WORK_UNITS;
	model.reverse = r->reverse;
	model.has_server = r->has_server && r->service_id < EP_MAX_SERVICES && r->server_slot < EP_MAX_SERVERS;
	model.tcp_state = r->tcp_state <= EP_TCPS_RST ? r->tcp_state : EP_TCPS_NONE;
	if (r->key.family == 6 && model.has_server) {
		memcpy(model.nat6_src, r->nat6_src, 16);
		memcpy(model.nat6_dst, r->nat6_dst, 16);
	}
	if (model.has_server)
		model.server_epoch = __atomic_load_n(
			&ep_dp.server_epochs[model.service_id * EP_MAX_SERVERS + model.server_slot], __ATOMIC_ACQUIRE);
	struct ep_flow *f = learn(c, &r->key, &model);
	if (f) {
		f->expire_tsc = c->now + (uint64_t)r->ttl_ms * ep_dp.tsc_hz / 1000;
		f->replicated_expire_tsc = f->expire_tsc; /* the other members hold the same record */
	} else
		c->w->c.drops[EP_DROP_FLOW_TABLE_FULL]++;
}

static void run_commands(struct ep_ctx *c)
{
	struct ep_command cmd[8];
	unsigned n = rte_ring_sc_dequeue_burst_elem(c->w->commands, cmd, sizeof(cmd[0]), 8, NULL);
	for (unsigned i = 0; i < n; i++) {
		if (cmd[i].op == EP_CMD_FORGET_FLOW)
			forget(c, &cmd[i].record.key);
		else if (cmd[i].op == EP_CMD_IMPORT_FLOW)
			import_flow(c, &cmd[i].record);
	}
}

/* A source port for a full-NAT flow from this worker's share of the service's pool, not in use
 * towards this server. Workers own disjoint residues of the range, so they never collide. */
static int snat_port(struct ep_ctx *c, const struct ep_service_rt *svc, uint32_t server_ip, uint16_t server_port,
		     uint8_t proto, uint16_t *out)
{
	struct ep_worker *w = c->w;
	uint32_t span = (uint32_t)svc->conf.snat_port_max - svc->conf.snat_port_min + 1;
	uint32_t mine = (span + ep_dp.nworkers - 1 - w->index) / ep_dp.nworkers;
	if (mine == 0)
		return -1;
	for (uint32_t tries = 0; tries < 64 && tries < mine; tries++) {
		uint32_t k = w->snat_cursor[svc->conf.id]++ % mine;
		uint16_t port = (uint16_t)(svc->conf.snat_port_min + k * ep_dp.nworkers + w->index);
		struct ep_flow_key rkey;
		ep_key_set4(&rkey, proto, server_ip, server_port, svc->conf.snat_ip, rte_cpu_to_be_16(port));
		if (rte_hash_lookup(w->learned.hash, &rkey) < 0) {
			*out = rte_cpu_to_be_16(port);
			return 0;
		}
	}
	return -1;
}

static int snat_port6(struct ep_ctx *c, const struct ep_service_rt *svc, const uint8_t server_ip[16],
		      uint16_t server_port, uint8_t proto, uint16_t *out)
{
	struct ep_worker *w = c->w;
	uint32_t span = (uint32_t)svc->conf.snat_port_max - svc->conf.snat_port_min + 1;
	uint32_t mine = (span + ep_dp.nworkers - 1 - w->index) / ep_dp.nworkers;
	for (uint32_t tries = 0; tries < 64 && tries < mine; tries++) {
		uint32_t k = w->snat_cursor[svc->conf.id]++ % mine;
		uint16_t port = (uint16_t)(svc->conf.snat_port_min + k * ep_dp.nworkers + w->index);
		struct ep_flow_key rkey;
		ep_key_set6(&rkey, proto, server_ip, server_port, svc->conf.snat_ip6, rte_cpu_to_be_16(port));
		if (rte_hash_lookup(w->learned.hash, &rkey) < 0) {
			*out = rte_cpu_to_be_16(port);
			return 0;
		}
	}
	return -1;
}

/* A service's QoS marks (SR-R5) go into its flows' actions, applied by forward()/forward6() at TX. */
static inline void mark_qos(struct ep_action *a, const struct ep_qos *q)
{
	a->flags |= q->flags;
	a->qos_dscp = q->dscp;
	a->qos_pcp = q->pcp;
	a->qos_vlan_tci = q->vlan_tci;
	a->qos_mpls_label = q->mpls_label;
}

/* new_service_flow for an IPv6 service: the same two directions, with the translated addresses
 * in the flows' nat6_* fields (forward: server and full-NAT source; reverse: VIP and client). */
static void new_service_flow6(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta,
			      const struct ep_service_rt *svc, uint32_t service_id, hash_sig_t sig)
{
	if (!svc || svc->conf.family != 6) {
		drop(c, m, EP_DROP_NO_SERVER);
		return;
	}
	int slot = ep_service_pick(svc, sig ^ (sig >> 16) ^ (uint32_t)meta->key.sport * 40503u,
				   &c->w->wrr_cursor[service_id]);
	if (slot < 0) {
		drop(c, m, EP_DROP_NO_SERVER);
		return;
	}
	uint16_t unit = ep_unit_of(ep_addr6_fold(meta->key.src), meta->key.sport);
	if (!unit_is_mine(c, m, unit))
		return;
	const struct ep_server *srv = &svc->servers[slot].srv;
	uint16_t server_port = srv->port ? srv->port : meta->key.dport;
	uint8_t mode = svc->conf.mode;
	struct ep_flow model;
	memset(&model, 0, sizeof(model));
	model.act.type = EP_ACT_FORWARD;
	model.act.out_port = EP_PORT_ROUTE;
	model.service_id = (uint16_t)service_id;
	model.server_slot = (uint16_t)slot;
	model.has_server = 1;
	model.unit = unit;
	model.server_epoch = __atomic_load_n(&ep_dp.server_epochs[service_id * EP_MAX_SERVERS + (uint32_t)slot],
					     __ATOMIC_ACQUIRE);
	memcpy(model.nat6_dst, srv->ip6, 16);
	uint16_t lport = 0;
	if (mode == EP_MODE_DSR) {
		model.act.dispatch = EP_DISPATCH_MAC;
	} else if (mode >= EP_MODE_IPIP) {
		model.act.dispatch = mode == EP_MODE_IPIP ? EP_DISPATCH_IPIP
				   : mode == EP_MODE_GRE  ? EP_DISPATCH_GRE
							  : EP_DISPATCH_GUE;
		model.act.gue_port = rte_cpu_to_be_16(svc->conf.gue_port);
	} else {
		model.act.nat_dst_port = server_port;
		if (mode == EP_MODE_FULLNAT) {
			if (snat_port6(c, svc, srv->ip6, server_port, meta->key.proto, &lport) != 0) {
				drop(c, m, EP_DROP_SNAT_EXHAUSTED);
				return;
			}
			memcpy(model.nat6_src, svc->conf.snat_ip6, 16);
			model.act.nat_src_port = lport;
		}
	}
	mark_qos(&model.act, &svc->conf.qos_to_server);
	struct ep_flow *fwd = learn(c, &meta->key, &model);
	if (!fwd) {
		drop(c, m, EP_DROP_FLOW_TABLE_FULL);
		return;
	}
	if (mode == EP_MODE_NAT || mode == EP_MODE_FULLNAT) {
		struct ep_flow_key rkey;
		int full = mode == EP_MODE_FULLNAT;
		ep_key_set6(&rkey, meta->key.proto, srv->ip6, server_port, full ? svc->conf.snat_ip6 : meta->key.src,
			    full ? lport : meta->key.sport);
		memset(&model.act, 0, sizeof(model.act));
		model.act.type = EP_ACT_FORWARD;
		model.act.out_port = EP_PORT_ROUTE;
		memcpy(model.nat6_src, meta->key.dst, 16);
		model.act.nat_src_port = meta->key.dport;
		memset(model.nat6_dst, 0, 16);
		if (full) {
			memcpy(model.nat6_dst, meta->key.src, 16);
			model.act.nat_dst_port = meta->key.sport;
		}
		mark_qos(&model.act, &svc->conf.qos_to_client);
		model.reverse = 1;
		model.syn_tsc = meta->key.proto == IPPROTO_TCP && (meta->tcp_flags & EP_TCP_SYN) ? c->now : 0;
		struct ep_flow *rev = learn(c, &rkey, &model);
		if (!rev) {
			unlearn(c, &meta->key);
			drop(c, m, EP_DROP_FLOW_TABLE_FULL);
			return;
		}
		if (replicating())
			flow_event(c, rev, EP_FLOW_CREATED);
	}
	if (meta->key.proto == IPPROTO_TCP) {
		ep_flow_track_tcp(fwd, meta->tcp_flags);
		fwd->expire_tsc = c->now + ep_flow_timeout_tsc(fwd, IPPROTO_TCP);
	}
	if (replicating())
		flow_event(c, fwd, EP_FLOW_CREATED);
	c->w->c.flows_created++;
	c->w->server_flows[service_id * EP_MAX_SERVERS + (uint32_t)slot]++;
	hit_learned(c, m, meta, fwd);
}

static void new_service_flow(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta, uint32_t service_id,
			     hash_sig_t sig)
{
	/* an earlier packet of this burst may have created the flow after the bulk lookup */
	int32_t existing = rte_hash_lookup_with_hash(c->w->learned.hash, &meta->key, sig);
	if (existing >= 0) {
		hit_learned(c, m, meta, &c->w->learned.flows[existing]);
		return;
	}
	const struct ep_service_rt *svc = __atomic_load_n(&ep_dp.services[service_id], __ATOMIC_ACQUIRE);
	c->w->c.actions[EP_AC_SERVICE]++;
	if (unlikely(meta->kind == EP_PKT_IPV6)) {
		new_service_flow6(c, m, meta, svc, service_id, sig);
		return;
	}
	if (!svc || svc->conf.family == 6) {
		drop(c, m, EP_DROP_NO_SERVER);
		return;
	}
	int slot = ep_service_pick(svc, sig ^ (sig >> 16) ^ (uint32_t)meta->key.sport * 40503u,
				   &c->w->wrr_cursor[service_id]);
	if (slot < 0) {
		drop(c, m, EP_DROP_NO_SERVER);
		return;
	}
	uint16_t unit = ep_unit_of(ep_key_src4(&meta->key), meta->key.sport);
	if (!unit_is_mine(c, m, unit))
		return;
	const struct ep_server *srv = &svc->servers[slot].srv;
	uint16_t server_port = srv->port ? srv->port : meta->key.dport; /* 0: keep the client's port */
	uint8_t mode = svc->conf.mode;
	struct ep_flow model;
	memset(&model, 0, sizeof(model));
	model.act.type = EP_ACT_FORWARD;
	model.act.out_port = EP_PORT_ROUTE;
	model.service_id = (uint16_t)service_id;
	model.server_slot = (uint16_t)slot;
	model.has_server = 1;
	model.unit = unit;
	uint16_t lport = 0;
	switch (mode) {
	case EP_MODE_NAT:
	case EP_MODE_FULLNAT:
		model.act.nat_dst_ip = srv->ip;
		model.act.nat_dst_port = server_port;
		if (mode == EP_MODE_FULLNAT) {
			if (snat_port(c, svc, srv->ip, server_port, meta->key.proto, &lport) != 0) {
				drop(c, m, EP_DROP_SNAT_EXHAUSTED);
				return;
			}
			model.act.nat_src_ip = svc->conf.snat_ip;
			model.act.nat_src_port = lport;
		}
		break;
	case EP_MODE_DSR:
		model.act.dispatch = EP_DISPATCH_MAC;
		model.act.forward_ip = srv->ip;
		break;
	default:
		model.act.dispatch = mode == EP_MODE_IPIP ? EP_DISPATCH_IPIP
				   : mode == EP_MODE_GRE  ? EP_DISPATCH_GRE
							  : EP_DISPATCH_GUE;
		model.act.forward_ip = srv->ip;
		model.act.gue_port = rte_cpu_to_be_16(svc->conf.gue_port);
		break;
	}
	model.server_epoch = __atomic_load_n(&ep_dp.server_epochs[service_id * EP_MAX_SERVERS + (uint32_t)slot],
					     __ATOMIC_ACQUIRE);
	mark_qos(&model.act, &svc->conf.qos_to_server);
	struct ep_flow *fwd = learn(c, &meta->key, &model);
	if (!fwd) {
		drop(c, m, EP_DROP_FLOW_TABLE_FULL);
		return;
	}
	if (mode == EP_MODE_NAT || mode == EP_MODE_FULLNAT) {
		/* replies come back through the unit: translate them back to the VIP and the client */
		struct ep_flow_key rkey;
		uint32_t client_ip = ep_key_src4(&meta->key);
		ep_key_set4(&rkey, meta->key.proto, srv->ip, server_port, mode == EP_MODE_FULLNAT ? svc->conf.snat_ip : client_ip,
			    mode == EP_MODE_FULLNAT ? lport : meta->key.sport);
		memset(&model.act, 0, sizeof(model.act));
		model.act.type = EP_ACT_FORWARD;
		model.act.out_port = EP_PORT_ROUTE;
		model.act.nat_src_ip = ep_key_dst4(&meta->key);
		model.act.nat_src_port = meta->key.dport;
		if (mode == EP_MODE_FULLNAT) {
			model.act.nat_dst_ip = client_ip;
			model.act.nat_dst_port = meta->key.sport;
		}
		mark_qos(&model.act, &svc->conf.qos_to_client);
		model.reverse = 1;
		model.syn_tsc = meta->key.proto == IPPROTO_TCP && (meta->tcp_flags & EP_TCP_SYN) ? c->now : 0;
		struct ep_flow *rev = learn(c, &rkey, &model);
		if (!rev) {
			unlearn(c, &meta->key);
			drop(c, m, EP_DROP_FLOW_TABLE_FULL);
			return;
		}
		if (replicating())
			flow_event(c, rev, EP_FLOW_CREATED);
	}
	if (meta->key.proto == IPPROTO_TCP) {
		ep_flow_track_tcp(fwd, meta->tcp_flags); /* created in the state its first packet sets */
		fwd->expire_tsc = c->now + ep_flow_timeout_tsc(fwd, IPPROTO_TCP);
	}
	if (replicating())
		flow_event(c, fwd, EP_FLOW_CREATED);
	c->w->c.flows_created++;
	c->w->server_flows[service_id * EP_MAX_SERVERS + (uint32_t)slot]++;
	hit_learned(c, m, meta, fwd);
}

/* An ICMP error about a connection this unit balances (e.g. "fragmentation needed" for a reply
 * the server sent from the VIP) goes to that connection's server, so path MTU discovery and
 * unreachable reports work through the load balancer. Returns 1 when it took the packet. */
static int icmp_error_to_server(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta)
{
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	struct ep_flow_key quoted, conn;
	if (ep_icmp4_quoted(frame, meta, &quoted) != 0)
		return 0;
	ep_key_reverse(&quoted, &conn); /* the quoted packet went server/VIP -> client: the connection's other half */
	int32_t pos = rte_hash_lookup(c->w->learned.hash, &conn);
	if (pos < 0)
		return 0;
	struct ep_flow *f = &c->w->learned.flows[pos];
	if (!f->has_server || f->reverse || !unit_is_mine(c, m, f->unit))
		return !f->has_server || f->reverse ? 0 : 1;
	c->w->c.learned_hits++;
	if (f->act.dispatch != EP_DISPATCH_NONE) {
		/* direct-return modes: the server sent it from the VIP itself; deliver as the flow's packets */
		apply(c, m, meta, &f->act, NULL);
		return 1;
	}
	/* NAT modes: the server sent server:port -> client (full NAT: -> the unit's address); undo the
	 * translation in the quote and send the error to the server */
	int full_nat = (f->act.nat_keep & 1) == 0 && f->act.nat_src_ip != ep_key_src4(&f->key);
	ep_icmp4_error_nat(frame, meta, f->act.nat_dst_ip, f->act.nat_dst_ip, f->act.nat_dst_port,
			   full_nat ? f->act.nat_src_ip : 0, full_nat ? f->act.nat_src_port : 0);
	static const struct ep_action route = { .type = EP_ACT_FORWARD, .out_port = EP_PORT_ROUTE };
	forward(c, m, meta, &route, NULL);
	return 1;
}

/* icmp_error_to_server for ICMPv6 errors (packet too big, unreachable, ...) about an IPv6 flow. */
static int icmp6_error_to_server(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta)
{
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	struct ep_flow_key quoted, conn;
	if (ep_icmp6_quoted(frame, meta, &quoted) != 0)
		return 0;
	ep_key_reverse(&quoted, &conn);
	int32_t pos = rte_hash_lookup(c->w->learned.hash, &conn);
	if (pos < 0)
		return 0;
	struct ep_flow *f = &c->w->learned.flows[pos];
	if (!f->has_server || f->reverse || !unit_is_mine(c, m, f->unit))
		return !f->has_server || f->reverse ? 0 : 1;
	c->w->c.learned_hits++;
	if (f->act.dispatch != EP_DISPATCH_NONE) {
		apply(c, m, meta, &f->act, f);
		return 1;
	}
	/* NAT66: the server sent server:port -> client (full NAT: -> the unit's address:port) */
	const int full_nat = !ep_addr6_is_zero(f->nat6_src);
	ep_icmp6_error_nat(frame, meta, f->nat6_dst, f->nat6_dst, f->act.nat_dst_port, full_nat ? f->nat6_src : NULL,
			   full_nat ? f->act.nat_src_port : 0);
	static const struct ep_action route = { .type = EP_ACT_FORWARD, .out_port = EP_PORT_ROUTE };
	forward(c, m, meta, &route, NULL);
	return 1;
}

static void local_or_miss(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta, uint16_t in_port)
{
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	if (unlikely(meta->key.proto == IPPROTO_ICMP) && icmp_error_to_server(c, m, meta))
		return;
	if (unlikely(meta->key.proto == IPPROTO_ICMPV6) && icmp6_error_to_server(c, m, meta))
		return;
	if (meta->kind == EP_PKT_IPV4 && ep_local_lookup(ep_key_dst4(&meta->key), in_port)) {
		uint32_t len = ep_icmp_echo_reply(frame, m->data_len, meta, ep_dp.ports[in_port].mac.addr_bytes);
		if (len == 0) {
			drop(c, m, EP_DROP_LOCAL_UNHANDLED);
			return;
		}
		c->w->c.actions[EP_AC_LOCAL]++;
		emit(c, in_port, m);
		return;
	}
	if (meta->kind == EP_PKT_IPV6 && ep_local6_lookup(meta->key.dst, in_port)) {
		if (ep_icmp6_echo_reply(frame, m->data_len, meta, ep_dp.ports[in_port].mac.addr_bytes) == 0) {
			drop(c, m, EP_DROP_LOCAL_UNHANDLED);
			return;
		}
		c->w->c.actions[EP_AC_LOCAL]++;
		emit(c, in_port, m);
		return;
	}
	const struct ep_unit_table *units = __atomic_load_n(&ep_dp.units, __ATOMIC_ACQUIRE);
	if (unlikely(units->forwarding) && (meta->kind == EP_PKT_IPV4 || meta->key.dst[0] != 0xff)) {
		/* forwarding delivery, at the master: a packet no table here knows yet (a server's reply
		 * that overtook its connection's replicated records) goes by its destination's unit - in
		 * NAT modes that is the client, the connection's unit (IPv6: the folded address, as
		 * new_service_flow6 chose it; a multicast destination, e.g. MLD, is no connection's) */
		uint16_t unit = meta->kind == EP_PKT_IPV4 ? ep_unit_of(ep_key_dst4(&meta->key), meta->key.dport)
							  : ep_unit_of(ep_addr6_fold(meta->key.dst), meta->key.dport);
		if (units->state[unit] != EP_UNIT_OWNED) {
			unit_is_mine(c, m, unit);
			return;
		}
	}
	c->w->c.misses++;
	switch (ep_dp.cfg.miss_policy) {
	case EP_MISS_PUNT:
		punt(c, m, punt_word(EP_PUNT_MISS, 0, 0), 0);
		return;
	case EP_MISS_ROUTE: {
		static const struct ep_action route = { .type = EP_ACT_FORWARD, .out_port = EP_PORT_ROUTE };
		forward(c, m, meta, &route, NULL);
		return;
	}
	default:
		drop(c, m, EP_DROP_NO_MATCH);
	}
}

static void handle_arp(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta, uint16_t in_port)
{
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	uint32_t sender_ip;
	uint8_t sender_mac[6];
	if (ep_arp_sender(frame, meta, &sender_ip, sender_mac) == 0 && sender_ip != 0)
		post_event(c, EP_EV_NEIGH_LEARN, in_port, sender_ip, sender_mac);
	uint32_t target = ep_arp_target_ip(frame, meta);
	const struct ep_local_addr *local = ep_local_find(target, in_port);
	uint8_t answer = local ? __atomic_load_n(&local->arp_answer, __ATOMIC_ACQUIRE) : EP_ARP_SILENT;
	if (answer != EP_ARP_SILENT) {
		const uint8_t *own = ep_dp.ports[in_port].mac.addr_bytes;
		uint32_t len = ep_arp_reply_as(frame, m->data_len, meta, own, answer == EP_ARP_SHARED_MAC ? local->arp_mac : own,
					       target);
		if (len) {
			m->data_len = m->pkt_len = len;
			c->w->c.actions[EP_AC_LOCAL]++;
			emit(c, in_port, m);
			return;
		}
	}
	drop(c, m, EP_DROP_ARP_IGNORED);
}

/* Neighbour discovery: learn the sender (NS source option) or the advertised target (NA), and
 * advertise our own and virtual addresses when solicited, as handle_arp does for IPv4. */
static void handle_ndp(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta, uint16_t in_port)
{
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	struct ep_ndp nd;
	if (ep_ndp_parse(frame, meta, &nd) != 0) {
		drop(c, m, EP_DROP_NDP_IGNORED);
		return;
	}
	struct ep_event ev = { .port = in_port };
	if (nd.type == EP_ND_NEIGHBOR_SOLICIT && nd.has_lladdr) {
		ev.type = EP_EV_NEIGH6_LEARN;
		memcpy(ev.ip6, nd.src, 16);
		memcpy(ev.mac, nd.lladdr, 6);
	} else if (nd.type == EP_ND_NEIGHBOR_ADVERT) {
		ev.type = EP_EV_NEIGH6_LEARN;
		memcpy(ev.ip6, nd.target, 16);
		memcpy(ev.mac, nd.has_lladdr ? nd.lladdr : frame + 6, 6);
	}
	if (ev.type)
		rte_ring_mp_enqueue_elem(ep_dp.event_ring, &ev, sizeof(ev)); /* full: the next NS/NA retries */
	const struct ep_local_addr6 *local = nd.type == EP_ND_NEIGHBOR_SOLICIT ? ep_local6_find(nd.target, in_port) : NULL;
	uint8_t answer = local ? __atomic_load_n(&local->ndp_answer, __ATOMIC_ACQUIRE) : EP_ARP_SILENT;
	if (answer != EP_ARP_SILENT) {
		const uint8_t *own = ep_dp.ports[in_port].mac.addr_bytes;
		uint32_t len = ep_ndp_advert(frame, rte_pktmbuf_tailroom(m) + m->data_len, meta, &nd, own,
					     answer == EP_ARP_SHARED_MAC ? local->ndp_mac : own);
		if (len) {
			m->data_len = m->pkt_len = len;
			c->w->c.actions[EP_AC_LOCAL]++;
			emit(c, in_port, m);
			return;
		}
	}
	drop(c, m, EP_DROP_NDP_IGNORED);
}

static inline uint32_t frag_slot(uint32_t src, uint32_t dst, uint32_t id, uint8_t proto)
{
	return rte_hash_crc_4byte(id, rte_hash_crc_8byte((uint64_t)src << 32 | dst, proto)) % EP_FRAG_SLOTS;
}

/* Fragments of one datagram follow its first fragment's flow: the first leaves its 5-tuple, the
 * later ones take it as their key (this worker's cache, then its peers'). IPv4 and IPv6 alike (an
 * IPv6 datagram is named by its addresses and the fragment header's 32-bit Identification).
 * Returns 0 when a later fragment finds nothing. */
static int fragment_key(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta)
{
	const uint8_t *frame = rte_pktmbuf_mtod(m, const uint8_t *);
	uint32_t id, src, dst;
	if (meta->kind == EP_PKT_IPV4) {
		const uint8_t *ip = frame + meta->l3_off;
		id = (uint32_t)(ip[4] << 8 | ip[5]);
		src = ep_key_src4(&meta->key);
		dst = ep_key_dst4(&meta->key);
	} else {
		if (ep_ipv6_fragment_id(frame, meta, &id) != 0)
			return 0;
		src = ep_addr6_fold(meta->key.src);
		dst = ep_addr6_fold(meta->key.dst);
	}
	uint32_t at = frag_slot(src, dst, id, meta->key.proto);
	if (meta->l4_off != 0) {
		struct ep_frag_slot *s = &c->w->frags[at];
		s->id = id;
		s->proto = meta->key.proto;
		s->key = meta->key;
		s->expire_tsc = c->now + ep_dp.tsc_hz * EP_FRAG_LIFETIME_MS / 1000;
		__atomic_store_n(&s->used, 1, __ATOMIC_RELEASE);
		return 1;
	}
	for (uint32_t i = 0; i < ep_dp.nworkers; i++) {
		/* this worker's cache first, then each peer's */
		struct ep_worker *w = i == 0 ? c->w : ep_dp.workers[i == c->w->index ? 0 : i];
		const struct ep_frag_slot *s = &w->frags[at];
		/* addresses compared in full: src and dst are adjacent in the key, both zero-padded for IPv4 */
		if (__atomic_load_n(&s->used, __ATOMIC_ACQUIRE) && s->id == id && s->proto == meta->key.proto &&
		    s->key.family == meta->key.family && memcmp(s->key.src, meta->key.src, 32) == 0 &&
		    s->expire_tsc > c->now) {
			meta->key = s->key;
			return 1;
		}
	}
	return 0;
}

/* A wildcard's own action, after its interest criteria. */
static void wildcard_action(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta, const struct ep_wildcard_set *set,
			    uint32_t rule, hash_sig_t sig)
{
	const struct ep_action *a = &set->actions[rule];
	if (a->type == EP_ACT_SERVICE)
		new_service_flow(c, m, meta, a->service_id, sig);
	else if (a->type == EP_ACT_PUNT)
		punt(c, m, punt_word(EP_PUNT_ACTION, 0, 0), set->extra[rule].id);
	else
		apply(c, m, meta, a, NULL);
}

/* A rule that does not cascade decides: its interest criteria, then its action. */
static void wildcard_decide(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta, const struct ep_wildcard_set *set,
			    uint32_t rule, hash_sig_t sig, uint16_t in_port)
{
	if ((set->actions[rule].flags2 & EP_ACT_F2_INTEREST) &&
	    interest_wildcard(c, m, meta, &set->extra[rule], sig, in_port))
		return;
	wildcard_action(c, m, meta, set, rule, sig);
}

/* Cascading (SMFA-R18): the cascading rules from position `from` of the set's list on, best first,
 * that match apply their interest criteria while they rank above the deciding rule (the best match
 * without cascade below `limit`), which then takes the packet. One that sends the original up ends
 * the walk: its manager returns the packet, which resumes after it (ep_inject_process_after). With
 * no deciding rule, the action of the last cascading rule that matched, else of `fallback`. */
static void cascade(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta, const struct ep_wildcard_set *set,
		    uint32_t from, uint32_t limit, uint32_t fallback, hash_sig_t sig, uint16_t in_port,
		    const struct ep_acl_input *in)
{
	uint32_t final = ep_wildcard_classify_final(set, (const uint8_t *)in);
	if (final && set->extra[final - 1].precedence >= limit)
		final = 0; /* a returned packet that changed: nothing above its service applies again */
	uint32_t last = fallback;
	for (uint32_t i = from; i < set->ncascade; i++) {
		const struct ep_cascade_rule *r = &set->cascade[i];
		if (final && r->precedence <= set->extra[final - 1].precedence)
			break;
		if (r->precedence >= limit || !ep_cascade_rule_matches(r, in))
			continue;
		last = r->rule;
		if ((set->actions[r->rule].flags2 & EP_ACT_F2_INTEREST) &&
		    interest_wildcard(c, m, meta, &set->extra[r->rule], sig, in_port))
			return;
	}
	if (final)
		wildcard_decide(c, m, meta, set, final - 1, sig, in_port);
	else
		wildcard_action(c, m, meta, set, last, sig);
}

/* A wildcard matched: it decides, or (cascading) it begins the walk down the cascading rules.
 * acl_input: the packet's IPv4 ACL input. */
static void wildcard_hit(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta, const struct ep_wildcard_set *set,
			 uint32_t rule, hash_sig_t sig, uint16_t in_port, const uint8_t *acl_input)
{
	c->w->c.wildcard_hits++;
	if (unlikely(set->actions[rule].flags2 & EP_ACT_F2_CASCADE)) {
		cascade(c, m, meta, set, set->extra[rule].cascade_pos, UINT32_MAX, rule, sig, in_port,
			(const struct ep_acl_input *)acl_input);
		return;
	}
	if (unlikely(set->actions[rule].flags2 & EP_ACT_F2_INTEREST) &&
	    interest_wildcard(c, m, meta, &set->extra[rule], sig, in_port))
		return;
	wildcard_action(c, m, meta, set, rule, sig);
}

/* A packet a cascading rule's manager returned goes on after that rule (c->resume_rule). */
static void wildcard_resume(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta, hash_sig_t sig, uint16_t in_port,
			    const uint8_t *acl_input)
{
	const struct ep_wildcard_set *set = c->resume_set;
	uint32_t rule = c->resume_rule - 1;
	c->w->c.wildcard_hits++;
	cascade(c, m, meta, set, set->extra[rule].cascade_pos + 1, set->extra[rule].precedence, rule, sig, in_port,
		(const struct ep_acl_input *)acl_input);
}

/* The IPv6 wildcard step, one packet at a time (IPv4 classifies the burst in bulk). */
static void classify6(struct ep_ctx *c, struct rte_mbuf *m, struct ep_meta *meta, uint16_t in_port, hash_sig_t sig)
{
	const struct ep_wildcard_set *set = __atomic_load_n(&ep_dp.wildcards, __ATOMIC_ACQUIRE);
	struct ep_acl_input6 in = { .proto = meta->key.proto, .sport = meta->key.sport, .dport = meta->key.dport };
	memcpy(in.src, meta->key.src, 16);
	memcpy(in.dst, meta->key.dst, 16);
	uint32_t result = ep_wildcard6_classify(set, &in);
	if (result == 0) {
		local_or_miss(c, m, meta, in_port);
		return;
	}
	wildcard_hit(c, m, meta, set, result - 1, sig, in_port, NULL); /* IPv6 rules never cascade */
}

static void process_burst(struct ep_ctx *c, uint16_t in_port, struct rte_mbuf **pkts, uint16_t n)
{
	struct ep_meta meta[EP_BURST];
	const void *keys[EP_BURST];
	hash_sig_t sigs[EP_BURST];
	int32_t pos[EP_BURST];
	uint16_t idx[EP_BURST];
	uint16_t nlook = 0;
	/* the same keys as the manager's affinity table takes them (IPv4: the same hash too) */
	struct ep_key16 keys16[EP_BURST];
	hash_sig_t sigs16[EP_BURST];
	struct ep_worker *w = c->w;

	uint64_t rx_bytes = 0;
	const struct ep_port_rt *port_rt = &ep_dp.ports[in_port];
	const int own_mac_only = __atomic_load_n(&port_rt->own_mac_only, __ATOMIC_RELAXED);
	c->in_port = in_port;
	for (uint16_t i = 0; i < n; i++) {
		if (i + 3 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 3], void *));
		struct rte_mbuf *m = pkts[i];
		rx_bytes += m->pkt_len;
		if (unlikely(own_mac_only)) {
			const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
			if (m->data_len >= RTE_ETHER_HDR_LEN && !rte_is_multicast_ether_addr(&eth->dst_addr) &&
			    !rte_is_same_ether_addr(&eth->dst_addr, &port_rt->mac)) {
				pkts[i] = NULL;
				drop(c, m, EP_DROP_OTHER_HOST);
				continue;
			}
		}
		int kind = ep_parse_fast(rte_pktmbuf_mtod(m, const uint8_t *), m->data_len, &meta[i]);
		if (unlikely((kind == EP_PKT_IPV4 || kind == EP_PKT_IPV6) && (meta[i].flags & EP_META_FRAGMENT)) &&
		    !(meta[i].flags & EP_META_IP_OPTIONS) && !fragment_key(c, m, &meta[i]))
			kind = EP_PKT_DROP; /* a later fragment of a datagram whose first fragment was not seen */
		if (likely(kind == EP_PKT_IPV4 && !(meta[i].flags & EP_META_IP_OPTIONS))) {
			ep_key16_of4(&meta[i].key, &keys16[nlook]);
			sigs[nlook] = sigs16[nlook] = ep_key16_hash(&keys16[nlook]);
		} else if (kind == EP_PKT_IPV6 && !ep_is_ndp(rte_pktmbuf_mtod(m, const uint8_t *), &meta[i])) {
			ep_key16_of(&meta[i].key, &keys16[nlook]);
			sigs16[nlook] = ep_key16_hash(&keys16[nlook]);
			sigs[nlook] = ep_key_hash(&meta[i].key);
		} else {
			pkts[i] = NULL;
			switch (kind) {
			case EP_PKT_ARP:
				handle_arp(c, m, &meta[i], in_port);
				break;
			case EP_PKT_IPV6:
				handle_ndp(c, m, &meta[i], in_port);
				break;
			case EP_PKT_IPV4:
				drop(c, m, EP_DROP_IP_OPTIONS);
				break;
			case EP_PKT_OTHER:
				drop(c, m, EP_DROP_UNSUPPORTED_L2);
				break;
			default:
				drop(c, m, meta[i].kind == EP_PKT_DROP ? (enum ep_drop_reason)meta[i].drop : EP_DROP_FRAGMENT);
			}
			continue;
		}
		keys[nlook] = &meta[i].key;
		idx[nlook++] = i;
	}
	w->c.port_rx_pkts[in_port] += n;
	w->c.port_rx_bytes[in_port] += rx_bytes;
	if (nlook == 0)
		return;

	/* 1. manager-installed fixed affinities */
	uint16_t nmiss = 0;
	const void *mkeys[EP_BURST];
	hash_sig_t msigs[EP_BURST];
	uint16_t midx[EP_BURST];
	const struct ep_affinity_table *aff = &ep_dp.manager;
	if (__atomic_load_n(&aff->live, __ATOMIC_RELAXED) > 0) {
		ep_affinity_table_lookup_bulk(aff, keys16, sigs16, nlook, pos);
		/* start every hit's memory loads before touching any, so the misses overlap (each stage
		 * in a tight loop of its own: prefetching buckets while parsing, or flows while looking
		 * up, measured slower) */
		struct ep_flow *found[EP_BURST];
		for (uint16_t j = 0; j < nlook; j++)
			if (pos[j] >= 0) {
				found[j] = ep_affinity_flow(aff, (uint32_t)pos[j]);
				rte_prefetch0(found[j]);
				rte_prefetch0(&ep_affinity_flow_counters(found[j])[w->index]);
			}
		uint32_t hits = 0;
		for (uint16_t j = 0; j < nlook; j++) {
			if (pos[j] >= 0 && __atomic_load_n(&found[j]->in_use, __ATOMIC_ACQUIRE) &&
			    /* a key other than IPv4 was found by its digest: the flow holds the whole key */
			    (likely(meta[idx[j]].key.family == 4) ||
			     memcmp(&found[j]->key, keys[j], sizeof(struct ep_flow_key)) == 0)) {
				hit_manager(c, pkts[idx[j]], &meta[idx[j]], pos[j], found[j]);
				hits++;
				continue;
			}
			mkeys[nmiss] = keys[j];
			msigs[nmiss] = sigs[j];
			midx[nmiss++] = idx[j];
		}
		w->c.manager_hits += hits;
	} else {
		memcpy(mkeys, keys, sizeof(keys[0]) * nlook);
		memcpy(msigs, sigs, sizeof(sigs[0]) * nlook);
		memcpy(midx, idx, sizeof(idx[0]) * nlook);
		nmiss = nlook;
	}
	if (nmiss == 0)
		return;

	/* 2. flows this worker learned for virtual services (or a peer worker did) */
	uint16_t nwild = 0;
	const uint8_t *acl_data[EP_BURST];
	struct ep_acl_input acl_in[EP_BURST];
	uint16_t widx[EP_BURST];
	hash_sig_t wsigs[EP_BURST];
	if (w->learned.live > 0) {
		rte_hash_lookup_with_hash_bulk(w->learned.hash, mkeys, msigs, nmiss, pos);
		for (uint16_t j = 0; j < nmiss; j++)
			if (pos[j] >= 0) {
				rte_prefetch0(&w->learned.flows[pos[j]]);
				rte_prefetch0((const uint8_t *)&w->learned.flows[pos[j]] + RTE_CACHE_LINE_SIZE);
			}
	} else {
		for (uint16_t j = 0; j < nmiss; j++)
			pos[j] = -1;
	}
	for (uint16_t j = 0; j < nmiss; j++) {
		uint16_t i = midx[j];
		struct ep_flow *f = pos[j] >= 0 ? &w->learned.flows[pos[j]] : NULL;
		if (!f && ep_dp.nworkers > 1)
			f = adopt_from_peer(c, &meta[i].key, msigs[j]);
		if (f) {
			if (unlikely(f->has_server) && flow_is_stale(f, &meta[i]))
				restart_or_drop(c, pkts[i], &meta[i], f, msigs[j]);
			else
				hit_learned(c, pkts[i], &meta[i], f);
			continue;
		}
		if (meta[i].kind != EP_PKT_IPV4) {
			classify6(c, pkts[i], &meta[i], in_port, msigs[j]);
			continue;
		}
		struct ep_acl_input *in = &acl_in[nwild];
		in->proto = meta[i].key.proto;
		in->pad[0] = in->pad[1] = in->pad[2] = 0;
		in->src = ep_key_src4(&meta[i].key);
		in->dst = ep_key_dst4(&meta[i].key);
		in->sport = meta[i].key.sport;
		in->dport = meta[i].key.dport;
		acl_data[nwild] = (const uint8_t *)in;
		wsigs[nwild] = msigs[j];
		widx[nwild++] = i;
	}
	if (nwild == 0)
		return;

	/* 3. wildcard affinities by precedence */
	if (unlikely(c->resume_rule)) {
		for (uint16_t j = 0; j < nwild; j++)
			wildcard_resume(c, pkts[widx[j]], &meta[widx[j]], wsigs[j], in_port, acl_data[j]);
		return;
	}
	const struct ep_wildcard_set *set = __atomic_load_n(&ep_dp.wildcards, __ATOMIC_ACQUIRE);
	uint32_t results[EP_BURST];
	ep_wildcard_classify(set, acl_data, results, nwild);
	for (uint16_t j = 0; j < nwild; j++) {
		uint16_t i = widx[j];
		if (results[j] == 0) {
			local_or_miss(c, pkts[i], &meta[i], in_port);
			continue;
		}
		wildcard_hit(c, pkts[i], &meta[i], set, results[j] - 1, wsigs[j], in_port, acl_data[j]);
	}
}

/* Frames the control thread queued (ARP requests, injects) leave through worker 0's queues. */
static void drain_injected(struct ep_ctx *c)
{
	struct rte_mbuf *pkts[EP_BURST];
	unsigned n = rte_ring_sc_dequeue_burst(ep_dp.inject_ring, (void **)pkts, EP_BURST, NULL);
	for (unsigned i = 0; i < n; i++) {
		uint16_t port = pkts[i]->port;
		if (port >= ep_dp.nports || !ep_dp.ports[port].started || c->txq[port].n == EP_BURST) {
			drop(c, pkts[i], EP_DROP_BAD_PORT);
			continue;
		}
		emit(c, port, pkts[i]);
	}
}

/* A packet a cascading rule's manager returned (its wildcard id in hash.fdir.hi): it has not been
 * to the services below that rule, so they may still send it up. When the rule is gone, it is
 * processed as any returned packet. */
static void resume_injected(struct ep_ctx *c, struct rte_mbuf *m)
{
	const struct ep_wildcard_set *set = __atomic_load_n(&ep_dp.wildcards, __ATOMIC_ACQUIRE);
	uint32_t rule = ep_wildcard_cascading(set, m->hash.fdir.hi);
	if (rule) {
		c->resume_set = set;
		c->resume_rule = rule;
		c->from_control = 0;
	}
	process_burst(c, m->port, &m, 1);
	flush(c);
	c->resume_rule = 0;
	c->from_control = 1;
}

/* Frames the control application injected for processing, in arrival order, per input port. */
static void process_injected(struct ep_ctx *c)
{
	struct rte_mbuf *pkts[EP_BURST], *group[EP_BURST];
	unsigned n = rte_ring_sc_dequeue_burst(ep_dp.process_ring, (void **)pkts, EP_BURST, NULL);
	if (n == 0)
		return;
	c->from_control = 1;
	for (unsigned start = 0; start < n;) {
		uint16_t port = pkts[start]->port;
		if (unlikely(pkts[start]->hash.fdir.lo == EP_INJECT_RESUME)) {
			resume_injected(c, pkts[start++]);
			continue;
		}
		uint16_t k = 0;
		while (start < n && pkts[start]->port == port && pkts[start]->hash.fdir.lo != EP_INJECT_RESUME)
			group[k++] = pkts[start++];
		process_burst(c, port, group, k);
		flush(c);
	}
	c->from_control = 0;
}

/* Held packets whose flow got its fixed affinity go through the pipeline in arrival order; those
 * held longer than the hold timeout are dropped. Looks only when the manager table changed or the
 * oldest packet's time is up. */
static void release_held(struct ep_ctx *c)
{
	struct ep_hold *h = &c->w->hold;
	uint32_t gen = __atomic_load_n(&ep_dp.manager_gen, __ATOMIC_ACQUIRE);
	uint64_t expired_before = c->now > ep_dp.hold_timeout_tsc ? c->now - ep_dp.hold_timeout_tsc : 0;
	if (gen == h->seen_gen && h->slots[h->head & h->mask].since_tsc >= expired_before)
		return;
	struct ep_held ready[EP_BURST];
	uint64_t expired = 0;
	uint32_t n = ep_hold_sweep(h, expired_before, ready, EP_BURST, &expired);
	/* a full batch may have left ready packets behind: look again next loop */
	h->seen_gen = n == EP_BURST ? gen - 1 : gen;
	c->w->c.drops[EP_DROP_HOLD_TIMEOUT] += expired;
	c->w->c.hold_released += n;
	struct rte_mbuf *group[EP_BURST];
	for (uint32_t start = 0; start < n;) {
		uint16_t port = ready[start].port, k = 0;
		uint64_t bytes = 0;
		while (start < n && ready[start].port == port) {
			bytes += ready[start].m->pkt_len;
			group[k++] = ready[start++].m;
		}
		/* counted on arrival already */
		c->w->c.port_rx_pkts[port] -= k;
		c->w->c.port_rx_bytes[port] -= bytes;
		process_burst(c, port, group, k);
		flush(c);
	}
}

/* Replication (cluster.md "Flow refresh"): a connection's records go out on its changes, and a
 * packet only moves its expiry here, so a busy connection would outlive the peers' copies. It goes
 * out again once those have less than a third of its timeout left while it lasts longer here: a
 * silent connection costs nothing (the copies expire with it), a busy one a record per direction
 * every two thirds of its timeout, spread as the connections' own changes were. A connection never
 * sent (replication was off) has no copies to refresh. */
static inline int replica_is_stale(const struct ep_ctx *c, const struct ep_flow *f)
{
	return f->replicated_expire_tsc != 0 && f->expire_tsc > f->replicated_expire_tsc &&
	       f->replicated_expire_tsc < c->now + ep_flow_timeout_tsc(f, f->key.proto) / 3;
}

/* A refresh waits for a later sweep rather than take ring room a new connection's record needs. */
static inline int refresh_has_room(void)
{
	return rte_ring_free_count(ep_dp.flow_events) > rte_ring_get_capacity(ep_dp.flow_events) / 2;
}

/* Walks a slice of the learned table per loop so expiry costs a little every time; while
 * replicating it also refreshes the peers' copies of owned connections. */
static void expire_some(struct ep_ctx *c, uint32_t budget)
{
	struct ep_worker *w = c->w;
	struct ep_flow_table *t = &w->learned;
	if (t->live == 0)
		return;
	const struct ep_unit_table *units = replicating() ? __atomic_load_n(&ep_dp.units, __ATOMIC_ACQUIRE) : NULL;
	for (uint32_t k = 0; k < budget; k++) {
		uint32_t slot = w->sweep_cursor++;
		if (w->sweep_cursor >= t->capacity)
			w->sweep_cursor = 0;
		struct ep_flow *f = &t->flows[slot];
		if (!f->in_use)
			continue;
		uint16_t epoch = f->has_server ? ep_dp.server_epochs[f->service_id * EP_MAX_SERVERS + f->server_slot] : 0;
		if (f->expire_tsc < c->now || (f->has_server && f->server_epoch != epoch)) {
			if (replicating())
				flow_event(c, f, EP_FLOW_DELETED);
			struct ep_flow_key key = f->key;
			if (unlearn(c, &key))
				w->c.flows_expired++;
			else
				f->in_use = 0;
		} else if (units && units->state[f->unit] == EP_UNIT_OWNED && replica_is_stale(c, f) &&
			   refresh_has_room()) {
			flow_event(c, f, EP_FLOW_REFRESHED);
		}
	}
}

int ep_worker_main(void *arg)
{
	struct ep_worker *w = arg;
	struct ep_ctx c;
	memset(&c, 0, sizeof(c));
	c.w = w;
	struct rte_mbuf *pkts[EP_BURST];
	uint32_t idle_loops = 0;

	rte_rcu_qsbr_thread_online(ep_dp.qsbr, w->index);
	while (__atomic_load_n(&ep_dp.running, __ATOMIC_ACQUIRE)) {
		c.now = rte_rdtsc();
		c.gen = __atomic_load_n(&ep_dp.neigh_gen, __ATOMIC_ACQUIRE);
		if (unlikely(w->hold.count))
			release_held(&c);
		uint32_t got = 0;
		for (uint16_t p = 0; p < ep_dp.nports; p++) {
			if (!ep_dp.ports[p].started)
				continue;
			uint16_t n = rte_eth_rx_burst(p, (uint16_t)w->index, pkts, EP_BURST);
			if (n == 0)
				continue;
			got += n;
			w->c.rx_pkts += n;
			process_burst(&c, p, pkts, n);
			flush(&c);
		}
		if (w->index == 0) {
			drain_injected(&c);
			flush(&c);
			/* Commands queued before a frame was injected apply first: a cluster member imports a
			 * moved unit's flows, then injects the unit's held packets, which must find them. */
			if (rte_ring_empty(w->commands))
				process_injected(&c);
		}
		run_commands(&c);
		expire_some(&c, got ? 8 : 64);
		rte_rcu_qsbr_quiescent(ep_dp.qsbr, w->index);
		if (got) {
			w->c.busy_polls++;
			idle_loops = 0;
			continue;
		}
		w->c.idle_polls++;
		/* Back off only after a run of empty polls, growing to 200 us: an idle unit sleeps,
		 * a loaded one never reaches the sleep. */
		if (++idle_loops > 256) {
			uint32_t us = idle_loops > 4096 ? 200 : (idle_loops >> 4);
			rte_delay_us_sleep(us);
		} else {
			rte_pause();
		}
	}
	rte_rcu_qsbr_thread_offline(ep_dp.qsbr, w->index);
	return 0;
}
