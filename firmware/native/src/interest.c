/* Interest criteria evaluation (see interest.h and struct ep_interest in edgeplane.h). */
#include <netinet/in.h>

#include "interest.h"

#define TCP_FLAG_BITS 0x3f /* FIN..URG are interest bits 0..5, as in the TCP header */

uint16_t ep_interest_bits(const struct ep_meta *m, int first_data)
{
	uint16_t bits = 1u << EP_INTEREST_ALL;
	if (m->flags & EP_META_FRAGMENT)
		bits |= 1u << EP_INTEREST_FRAGMENT;
	uint8_t proto = m->key.proto;
	if (proto == IPPROTO_TCP)
		bits |= m->tcp_flags & TCP_FLAG_BITS;
	if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP) && m->payload_off != 0 &&
	    (uint32_t)m->l3_off + m->l3_len > m->payload_off)
		bits |= (uint16_t)(1u << EP_INTEREST_DATA | (first_data ? 1u << EP_INTEREST_FIRST_DATA : 0));
	return bits;
}

struct ep_interest_verdict ep_interest_decide(const struct ep_interest *c, uint16_t bits)
{
	struct ep_interest_verdict v = { .reasons = bits & c->mask, .fate = EP_FATE_PASS, .flags = 0 };
	if (v.reasons == 0)
		return v;
	uint8_t with_data = (v.reasons & c->data) ? EP_INTEREST_F_PACKET : 0;
	if (v.reasons & c->hold) {
		v.fate = EP_FATE_HOLD;
		v.flags = EP_INTEREST_F_HELD | with_data;
	} else if (v.reasons & c->copy) {
		v.fate = EP_FATE_COPY;
		v.flags = EP_INTEREST_F_COPY | with_data;
	} else {
		v.fate = EP_FATE_UP; /* the original itself: the manager must get its bytes to return it */
		v.flags = EP_INTEREST_F_PACKET;
	}
	return v;
}
