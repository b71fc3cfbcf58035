/* The hold buffer (interest criteria hold flag, SMFA-R15): packets a worker keeps until their
 * flow's fixed affinity is installed, one bounded FIFO per worker in arrival order. Only its worker
 * touches it; the control thread only frees it after the workers stopped. */
#ifndef EP_HOLD_H
#define EP_HOLD_H

#include <stdint.h>
#include <rte_hash.h>
#include <rte_mbuf.h>

#include "flow_key.h"

struct ep_held {
	struct rte_mbuf *m;
	uint64_t since_tsc;
	hash_sig_t sig;
	uint16_t port;
	struct ep_flow_key key;
};

#define EP_HOLD_BUCKETS 256

struct ep_hold {
	struct ep_held *slots;
	uint32_t mask; /* capacity - 1 (a power of two) */
	uint32_t head, count;
	uint32_t seen_gen; /* ep_dp.manager_gen when the held flows were last looked up */
	/* held packets per bucket of the flow hash: "is this flow waiting?" mostly ends here */
	uint16_t per_bucket[EP_HOLD_BUCKETS];
};

int ep_hold_init(struct ep_hold *h, uint32_t capacity, int socket);
/* Frees the slots and any packets still held; returns how many there were. */
uint32_t ep_hold_free(struct ep_hold *h);

static inline int ep_hold_full(const struct ep_hold *h)
{
	return h->count > h->mask;
}

/* Appends m (the caller checked ep_hold_full). */
void ep_hold_put(struct ep_hold *h, struct rte_mbuf *m, const struct ep_flow_key *k, hash_sig_t sig, uint16_t port,
		 uint64_t now);
/* Whether packets of this flow are waiting (a later one must wait behind them). */
int ep_hold_has_flow(const struct ep_hold *h, const struct ep_flow_key *k, hash_sig_t sig);
/* Takes out, in arrival order, up to max packets whose flow now has a fixed affinity (into
 * ready[]); frees those held since before expired_before and counts them in *expired; keeps the
 * rest in order. Returns the number of ready packets. */
uint32_t ep_hold_sweep(struct ep_hold *h, uint64_t expired_before, struct ep_held *ready, uint32_t max,
		       uint64_t *expired);

#endif
