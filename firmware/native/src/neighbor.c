/* Routes (rte_lpm), neighbours (rte_hash, lock-free readers) and the unit's local addresses.
 * All writes happen on the control thread; workers only read, and report what they learn or miss
 * through the event ring, which ep_poll drains here. */
#include <string.h>

#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include "dp.h"
#include "packet.h"

int ep_route_lookup(uint32_t dst, uint16_t *port, uint32_t *next_hop)
{
	uint32_t idx;
	if (rte_lpm_lookup(ep_dp.lpm, rte_be_to_cpu_32(dst), &idx) != 0)
		return -1;
	const struct ep_route_nh *nh = &ep_dp.routes[idx];
	*port = nh->port;
	*next_hop = nh->gateway ? nh->gateway : dst;
	return 0;
}

int ep_neighbor_lookup(uint32_t ip, struct ep_neighbor *out)
{
	int32_t pos = rte_hash_lookup(ep_dp.neigh_hash, &ip);
	if (pos < 0)
		return -1;
	*out = ep_dp.neighbors[pos];
	return 0;
}

const struct ep_local_addr *ep_local_find(uint32_t ip, uint16_t port)
{
	for (uint32_t i = 0; i < EP_MAX_LOCAL_ADDRS; i++)
		if (ep_dp.local[i].ip == ip && ep_dp.local[i].port == port)
			return &ep_dp.local[i];
	return NULL;
}

int ep_local_lookup(uint32_t ip, uint16_t port)
{
	return ep_local_find(ip, port) != NULL;
}

static int check_port(uint16_t port, struct ep_error *err)
{
	if (port >= ep_dp.nports || !ep_dp.ports[port].used)
		return ep_fail(err, EP_ENOPORT, "port %u does not exist (%u ports)", port, ep_dp.nports);
	return 0;
}

int ep_local_addr_add(uint16_t port, uint32_t ip, struct ep_error *err)
{
	if (check_port(port, err))
		return -1;
	if (ip == 0)
		return ep_fail(err, EP_EINVAL, "local address 0.0.0.0");
	if (ep_local_lookup(ip, port))
		return 0;
	for (uint32_t i = 0; i < EP_MAX_LOCAL_ADDRS; i++)
		if (ep_dp.local[i].ip == 0) {
			ep_dp.local[i].port = port;
			ep_dp.local[i].arp_answer = EP_ARP_PORT_MAC;
			__atomic_store_n(&ep_dp.local[i].ip, ip, __ATOMIC_RELEASE);
			return 0;
		}
	return ep_fail(err, EP_EFULL, "more than %d local addresses", EP_MAX_LOCAL_ADDRS);
}

int ep_local_addr_arp(uint16_t port, uint32_t ip, enum ep_arp_answer answer, const uint8_t mac[6],
		      struct ep_error *err)
{
	if (check_port(port, err))
		return -1;
	if (answer > EP_ARP_SILENT)
		return ep_fail(err, EP_EINVAL, "ARP answer %d is not port MAC, shared MAC or silent", (int)answer);
	if (answer == EP_ARP_SHARED_MAC && !mac)
		return ep_fail(err, EP_EINVAL, "a shared-MAC ARP answer needs the MAC");
	struct ep_local_addr *a = (struct ep_local_addr *)ep_local_find(ip, port);
	if (!a)
		return ep_fail(err, EP_ENOENT, "local address not configured on port %u", port);
	if (answer == EP_ARP_SHARED_MAC)
		memcpy(a->arp_mac, mac, 6);
	__atomic_store_n(&a->arp_answer, (uint8_t)answer, __ATOMIC_RELEASE);
	return 0;
}

int ep_local_addr_del(uint16_t port, uint32_t ip, struct ep_error *err)
{
	for (uint32_t i = 0; i < EP_MAX_LOCAL_ADDRS; i++)
		if (ep_dp.local[i].ip == ip && ep_dp.local[i].port == port) {
			__atomic_store_n(&ep_dp.local[i].ip, 0, __ATOMIC_RELEASE);
			return 0;
		}
	return ep_fail(err, EP_ENOENT, "local address not configured on port %u", port);
}

int ep_route_add(uint32_t prefix, uint8_t len, uint16_t port, uint32_t gateway, struct ep_error *err)
{
	if (check_port(port, err))
		return -1;
	if (len > 32)
		return ep_fail(err, EP_EINVAL, "prefix length %u above 32", len);
	uint32_t idx = ep_dp.nroutes;
	for (uint32_t i = 0; i < ep_dp.nroutes; i++)
		if (ep_dp.routes[i].port == port && ep_dp.routes[i].gateway == gateway)
			idx = i;
	if (idx == EP_MAX_ROUTES)
		return ep_fail(err, EP_EFULL, "more than %d distinct next hops", EP_MAX_ROUTES);
	ep_dp.routes[idx].port = port;
	ep_dp.routes[idx].gateway = gateway;
	if (idx == ep_dp.nroutes)
		ep_dp.nroutes++;
	int rc = rte_lpm_add(ep_dp.lpm, rte_be_to_cpu_32(prefix), len, idx);
	if (rc)
		return ep_fail(err, EP_EFULL, "route table: %s", rte_strerror(-rc));
	/* flows cache their next hop under this generation: make them look again */
	__atomic_fetch_add(&ep_dp.neigh_gen, 1, __ATOMIC_RELEASE);
	return 0;
}

int ep_route_del(uint32_t prefix, uint8_t len, struct ep_error *err)
{
	if (rte_lpm_delete(ep_dp.lpm, rte_be_to_cpu_32(prefix), len) != 0)
		return ep_fail(err, EP_ENOENT, "no such route");
	__atomic_fetch_add(&ep_dp.neigh_gen, 1, __ATOMIC_RELEASE);
	return 0;
}

int ep_neighbor_set(uint32_t ip, uint16_t port, const uint8_t mac[6], struct ep_error *err)
{
	if (check_port(port, err))
		return -1;
	int32_t pos = rte_hash_add_key(ep_dp.neigh_hash, &ip);
	if (pos < 0)
		return ep_fail(err, EP_EFULL, "neighbour table full (%d)", EP_MAX_NEIGHBORS);
	struct ep_neighbor *n = &ep_dp.neighbors[pos];
	if (n->port == port && memcmp(n->mac, mac, 6) == 0)
		return 0;
	memcpy(n->mac, mac, 6);
	n->port = port;
	__atomic_fetch_add(&ep_dp.neigh_gen, 1, __ATOMIC_RELEASE);
	return 0;
}

void ep_send_arp_request(uint16_t port, uint32_t target)
{
	const struct ep_port_rt *p = &ep_dp.ports[port];
	if (!p->started || p->addr == 0)
		return;
	struct rte_mbuf *m = rte_pktmbuf_alloc(ep_dp.ctrl_pool);
	if (!m)
		return;
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	uint32_t len = ep_arp_request(frame, p->mac.addr_bytes, p->addr, target);
	m->data_len = m->pkt_len = len;
	ep_queue_tx(m, port);
}

int ep_resolve(uint32_t ip, struct ep_error *err)
{
	uint16_t port;
	uint32_t next_hop;
	if (ep_route_lookup(ip, &port, &next_hop))
		return ep_fail(err, EP_EINVAL, "no route to the address");
	if (!ep_dp.running)
		return ep_fail(err, EP_ESTATE, "data plane is not running");
	ep_send_arp_request(port, next_hop);
	return 0;
}

void ep_handle_events(void)
{
	struct ep_event ev[64];
	unsigned n;
	while ((n = rte_ring_sc_dequeue_burst_elem(ep_dp.event_ring, ev, sizeof(ev[0]), 64, NULL)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			struct ep_error err;
			if (ev[i].type == EP_EV_NEIGH_LEARN)
				ep_neighbor_set(ev[i].ip, ev[i].port, ev[i].mac, &err);
			else if (ev[i].type == EP_EV_NEIGH_MISS)
				ep_send_arp_request(ev[i].port, ev[i].ip);
			else
				ep_handle_event6(&ev[i]);
		}
	}
}
