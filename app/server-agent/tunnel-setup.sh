#!/usr/bin/env bash
# Server-side setup for the appliance's direct-return forwarding modes (SR-R7, docs/modes.md).
#
#   tunnel-setup.sh --mode dsr|ipip|gre|gue --vip A.B.C.D [--gue-port 6080] [--dev IFACE] [--decap auto|kernel|bpf]
#   tunnel-setup.sh --undo --vip A.B.C.D [--dev IFACE]
#   (an IPv6 VIP works with --mode dsr only: there are no IPv6 tunnels yet)
#
# Every mode: the VIP on lo (/32), so the server accepts packets for it and answers from it straight
# to the client; arp_ignore=1 / arp_announce=2 so the server never answers ARP for the VIP nor uses
# it as an ARP source (the appliance owns the VIP on the network).
# Tunnel modes also decapsulate what the appliance sends (outer source = the appliance port's
# address, outer destination = this server):
#   ipip  IPv4 protocol 4            kernel: an "ipip external" device (receives from any source)
#   gre   IPv4 protocol 47, 4-byte GRE header, no key/checksum/sequence
#                                    kernel: a "gre external" device
#   gue   UDP to --gue-port, 4-byte GUE header {0x00, 0x04, 0x00, 0x00}, inner IPv4
#                                    kernel: "ip fou add port P gue" hands the payload to the IP-in-IP
#                                    handler, which needs an ipip device (the "ipip external" one)
# and rp_filter=0: the decapsulated packet arrives on the tunnel device while the route back to the
# client leaves through another one.
# --decap bpf (and auto on a kernel built without IPIP/GRE/FOU) strips the outer headers with a tc
# ingress BPF program on --dev instead (compiled here with clang; the inner packet then continues up
# the stack on --dev as if it had arrived unencapsulated).
# --dev defaults to the interface of the default route. Idempotent: running it twice changes
# nothing. Prints one line per action.
set -euo pipefail

MODE=
VIP=
GUE_PORT=6080
DEV=
DECAP=auto
UNDO=0
# Names of what this script creates, so --undo finds them again.
IPIP_DEV=eptun-ipip
GRE_DEV=eptun-gre
BPF_PREF=4900

usage() {
	sed -n '4,5p' "$0" | sed 's/^# */usage: /' >&2
	exit 2
}

say() { echo "tunnel-setup: $*"; }

while (($#)); do
	case $1 in
	--mode) MODE=${2:-}; shift 2 ;;
	--vip) VIP=${2:-}; shift 2 ;;
	--gue-port) GUE_PORT=${2:-}; shift 2 ;;
	--dev) DEV=${2:-}; shift 2 ;;
	--decap) DECAP=${2:-}; shift 2 ;;
	--undo) UNDO=1; shift ;;
	*) usage ;;
	esac
done
FAMILY=4
[[ $VIP == *:* ]] && FAMILY=6
[[ $VIP =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ || ($FAMILY == 6 && $VIP =~ ^[0-9A-Fa-f:.]+$) ]] || usage
((UNDO)) || [[ $MODE =~ ^(dsr|ipip|gre|gue)$ ]] || usage
if ((FAMILY == 6 && !UNDO)) && [[ $MODE != dsr ]]; then
	echo "tunnel-setup: an IPv6 VIP works with --mode dsr only (the appliance has no IPv6 tunnels)" >&2
	exit 2
fi
[[ $DECAP =~ ^(auto|kernel|bpf)$ ]] || usage
[[ $GUE_PORT =~ ^[0-9]+$ ]] && ((GUE_PORT > 0 && GUE_PORT < 65536)) || usage
if [[ -z $DEV ]]; then
	DEV=$(ip "-$FAMILY" -o route show default | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
	[[ -n $DEV ]] || { echo "tunnel-setup: no default route; name the interface with --dev" >&2; exit 1; }
fi

set_sysctl() {
	local key=$1 value=$2
	if [[ $(sysctl -n "$key") != "$value" ]]; then
		sysctl -q -w "$key=$value"
		say "set $key=$value"
	fi
}

has_link() { ip link show dev "$1" >/dev/null 2>&1; }

# The BPF decapsulator's object name says what it strips: decap-<mode>-<gue port>.o.
bpf_filter_name() {
	tc filter show dev "$DEV" ingress 2>/dev/null | sed -n "s/.* pref $BPF_PREF bpf .* \(decap-[a-z]*-[0-9]*\.o\):\[tc\].*/\1/p"
}

# Removes the decapsulators this script may have set up, except the one named by $1 (ipip-device,
# gre-device, fou-<port>, bpf-<object name>): one tunnel kind at a time, a leftover from another mode
# would take its packets.
remove_decap_except() {
	local keep=${1:-} port
	if has_link "$IPIP_DEV" && [[ $keep != ipip-device && $keep != fou-* ]]; then ip link del "$IPIP_DEV"; say "deleted $IPIP_DEV"; fi
	if has_link "$GRE_DEV" && [[ $keep != gre-device ]]; then ip link del "$GRE_DEV"; say "deleted $GRE_DEV"; fi
	for port in $(ip fou show 2>/dev/null | awk '$1 == "port" && /gue/ { print $2 }'); do
		[[ $keep == "fou-$port" ]] && continue
		ip fou del port "$port"
		say "removed fou port $port (gue)"
	done
	local name
	name=$(bpf_filter_name)
	if [[ -n $name && $keep != "bpf-$name" ]]; then
		tc filter del dev "$DEV" ingress pref "$BPF_PREF"
		say "removed the BPF decapsulator $name from $DEV ingress"
	fi
}

# IPv6 (dsr): the VIP on lo is all. Neighbour discovery only answers for addresses of the interface
# a solicitation arrives on, so there is no arp_ignore / arp_announce counterpart to set.
if ((FAMILY == 6)); then
	if ((UNDO)); then
		if [[ -n $(ip -6 -o address show dev lo to "$VIP/128") ]]; then
			ip -6 address del "$VIP/128" dev lo
			say "removed $VIP/128 from lo"
		fi
		say "undone"
		exit 0
	fi
	set_sysctl net.ipv6.conf.lo.disable_ipv6 0
	if [[ -z $(ip -6 -o address show dev lo to "$VIP/128") ]]; then
		ip -6 address add "$VIP/128" dev lo
		say "added $VIP/128 to lo"
	fi
	ip link set dev lo up
	say "dsr ready: $VIP on lo, frames for it arrive on $DEV with this server's MAC"
	exit 0
fi

if ((UNDO)); then
	if [[ $(ip -o address show dev lo) == *" $VIP/32 "* ]]; then
		ip address del "$VIP/32" dev lo
		say "removed $VIP/32 from lo"
	fi
	remove_decap_except none
	set_sysctl net.ipv4.conf.all.arp_ignore 0
	set_sysctl net.ipv4.conf.all.arp_announce 0
	say "undone (rp_filter settings are left as they are)"
	exit 0
fi

set_sysctl net.ipv4.conf.all.arp_ignore 1
set_sysctl net.ipv4.conf.all.arp_announce 2
if [[ $(ip -o address show dev lo) != *" $VIP/32 "* ]]; then
	ip address add "$VIP/32" dev lo
	say "added $VIP/32 to lo"
fi
ip link set dev lo up
if [[ $MODE == dsr ]]; then
	say "dsr ready: $VIP on lo, frames for it arrive on $DEV with this server's MAC"
	exit 0
fi

# A kernel device of this type can be created here (the kernel has IPIP / GRE / FOU).
kernel_can() {
	local probe=eptun-probe$$ ok=0
	case $1 in
	ipip | gre) ip link add "$probe" type "$1" external 2>/dev/null && ok=1 ;;
	gue) ip link add "$probe" type ipip external 2>/dev/null && ip fou show >/dev/null 2>&1 && ok=1 ;;
	esac
	ip link del "$probe" 2>/dev/null || true
	((ok))
}

kernel_decap() {
	local dev=$IPIP_DEV type=ipip
	[[ $MODE == gre ]] && dev=$GRE_DEV type=gre
	case $MODE in ipip) remove_decap_except ipip-device ;; gre) remove_decap_except gre-device ;; gue) remove_decap_except "fou-$GUE_PORT" ;; esac
	if ! has_link "$dev"; then
		ip link add "$dev" type "$type" external
		say "created $dev ($type external: accepts tunnels from any source)"
	fi
	ip link set dev "$dev" up
	if [[ $MODE == gue && $'\n'$(ip fou show) != *$'\n'"port $GUE_PORT gue"* ]]; then
		ip fou add port "$GUE_PORT" gue
		say "added fou port $GUE_PORT gue (payload protocol 4 goes to $dev)"
	fi
	set_sysctl "net.ipv4.conf.$dev.rp_filter" 0
}

bpf_decap() {
	command -v clang >/dev/null || { echo "tunnel-setup: --decap bpf needs clang (apt-get install clang libbpf-dev)" >&2; exit 1; }
	local proto object=decap-$MODE-$GUE_PORT.o
	case $MODE in ipip) proto=4 ;; gre) proto=47 ;; gue) proto=17 ;; esac
	remove_decap_except "bpf-$object"
	[[ $(bpf_filter_name) == "$object" ]] && return
	local work
	work=$(mktemp -d)
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" EXIT
	cat >"$work/decap.c" <<'EOF'
/* tc ingress: strip the appliance's outer IPv4 (+ GRE, or + UDP + GUE) header; the inner IPv4
 * packet continues up the stack on the same device. Anything else passes untouched. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define IP_FRAGMENT_BITS 0x3fff /* more-fragments flag and offset */
/* Numbers, not IPPROTO_*: those are enum constants, which #if would read as 0. */
#define PROTO_GRE 47
#define PROTO_UDP 17

#if DECAP_PROTO == PROTO_GRE
#define OUTER_LEN (20 + 4)
#elif DECAP_PROTO == PROTO_UDP
#define OUTER_LEN (20 + 8 + 4)
#else
#define OUTER_LEN 20
#endif

SEC("tc")
int decap(struct __sk_buff *skb)
{
	/* Senders such as AF_PACKET rings (the appliance's net_af_packet) leave all but the first bytes
	 * of a frame in page fragments, beyond data_end: bring the outer headers into the linear area. */
	if (skb->len < ETH_HLEN + OUTER_LEN || bpf_skb_pull_data(skb, ETH_HLEN + OUTER_LEN) != 0)
		return TC_ACT_OK;
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 ||
	    ip->protocol != DECAP_PROTO || (ip->frag_off & bpf_htons(IP_FRAGMENT_BITS)))
		return TC_ACT_OK;
	__s32 outer = sizeof(*ip);
#if DECAP_PROTO == PROTO_GRE
	__u8 *gre = (void *)(ip + 1);
	if ((void *)(gre + 4) > end || gre[0] || gre[1] || gre[2] != 0x08 || gre[3] != 0x00)
		return TC_ACT_OK;
	outer += 4;
#elif DECAP_PROTO == PROTO_UDP
	struct udphdr *udp = (void *)(ip + 1);
	__u8 *gue = (void *)(udp + 1);
	if ((void *)(gue + 4) > end || udp->dest != bpf_htons(GUE_PORT) || gue[0] || gue[1] != IPPROTO_IPIP)
		return TC_ACT_OK;
	outer += sizeof(*udp) + 4;
#endif
	return bpf_skb_adjust_room(skb, -outer, BPF_ADJ_ROOM_MAC, 0) ? TC_ACT_SHOT : TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
EOF
	clang -O2 -g -target bpf -I"/usr/include/$(uname -m)-linux-gnu" -DDECAP_PROTO="$proto" -DGUE_PORT="$GUE_PORT" \
		-c "$work/decap.c" -o "$work/$object"
	if [[ $(tc qdisc show dev "$DEV") != *clsact* ]]; then
		tc qdisc add dev "$DEV" clsact
		say "added a clsact qdisc to $DEV"
	fi
	tc filter replace dev "$DEV" ingress pref "$BPF_PREF" handle 1 bpf direct-action obj "$work/$object" sec tc
	say "attached the BPF $MODE decapsulator (IPv4 protocol $proto$([[ $MODE == gue ]] && echo ", UDP port $GUE_PORT")) to $DEV ingress"
}

if [[ $DECAP == auto ]]; then
	if kernel_can "$MODE"; then DECAP=kernel; else DECAP=bpf; say "this kernel has no $MODE device support; using the BPF decapsulator"; fi
fi
# The decapsulated packet's source (the client) routes back through another interface.
set_sysctl net.ipv4.conf.all.rp_filter 0
set_sysctl "net.ipv4.conf.$DEV.rp_filter" 0
if [[ $DECAP == kernel ]]; then kernel_decap; else bpf_decap; fi
say "$MODE ready: $VIP on lo, tunnelled packets decapsulated ($DECAP)"
