/* Interest criteria evaluation (SMFA-R15): the interest bits a packet shows and what the criteria
 * make of them. Pure functions on the parsed packet, so they are unit-tested without an EAL. */
#ifndef EP_INTEREST_H
#define EP_INTEREST_H

#include <stdint.h>

#include "edgeplane.h"
#include "packet.h"

enum ep_interest_fate {
	EP_FATE_PASS = 0, /* not interesting: the affinity's own action */
	EP_FATE_UP,       /* the original goes up to the manager */
	EP_FATE_COPY,     /* a copy (or a notice) goes up, the original follows the affinity's action */
	EP_FATE_HOLD,     /* a copy (or a notice) goes up, the original waits for the fixed affinity */
};

struct ep_interest_verdict {
	uint16_t reasons; /* the criteria's bits the packet showed */
	uint8_t fate;     /* enum ep_interest_fate */
	uint8_t flags;    /* EP_INTEREST_F_PACKET / COPY / HELD as the punt will say */
};

/* first_data: whether a payload here would be the first the affinity sees. */
uint16_t ep_interest_bits(const struct ep_meta *m, int first_data);
struct ep_interest_verdict ep_interest_decide(const struct ep_interest *criteria, uint16_t bits);

#endif
