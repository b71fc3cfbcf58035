#!/usr/bin/env bash
# npm run bench: per-core rate of the data plane's full pipeline with 1M affinities installed,
# against dpdk-testpmd in macswap mode on the same vdev (net_ring) and the same single worker core,
# measured in the same run; plus affinity inserts per second. Method: docs/benchmarks.md.
#
# Environment: BENCH_ROUNDS (default 3; medians are reported), BENCH_SECONDS (measured seconds per
# run, default 5), BENCH_WARMUP (seconds before measuring, default 1), BENCH_MEMORY (the EAL memory
# modes to measure, default "no-huge huge": no-huge = 4 KiB pages, huge = 2 MiB hugepages, reserved
# for the run and given back after; huge is skipped, saying so, where none can be reserved), BENCH_PARTS
# (default "dataplane lb smfa cluster": which benchmarks to run; e.g. "dataplane" for this script's own
# comparison alone). Both sides of a comparison always run in the same mode.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${BENCH_ROUNDS:-3}
MEASURE_S=${BENCH_SECONDS:-5}
WARMUP_S=${BENCH_WARMUP:-1}
# Frames in flight on the loop, the same for both sides: testpmd sends TX_FIRST_BURSTS bursts of
# BURST frames before forwarding; the pipeline's worker also moves bursts of 32 (EP_BURST).
BURST=32
TX_FIRST_BURSTS=16
IN_FLIGHT=$((BURST * TX_FIRST_BURSTS))
BENCH_BIN=firmware/native/bench/build/bench_pipeline

missing=()
command -v pkg-config >/dev/null && pkg-config --exists libdpdk || missing+=("dpdk-dev (libdpdk-dev, pkg-config)")
command -v dpdk-testpmd >/dev/null || missing+=("dpdk (dpdk-testpmd)")
command -v make >/dev/null && command -v cc >/dev/null || missing+=("build-essential")
if ((${#missing[@]})); then
	echo "bench: missing: ${missing[*]}; install with: apt-get install dpdk dpdk-dev pkg-config build-essential" >&2
	exit 1
fi

make -s -C firmware/native/bench

# EAL memory: 4 KiB pages (--no-huge, as the tests run) and 2 MiB hugepages (as the appliance runs:
# image/rootfs reserves them). net_ring does no I/O, so TLB misses on mbufs weigh heavily in the
# baseline's ~11 ns a packet on 4 KiB pages; both modes are shown. The pipeline takes ~600 MB with
# 1M affinities, testpmd less; they run one after the other. Pages this script adds are given back.
HUGEPAGES_WANTED=1024
HUGEPAGES_NR=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
HUGEPAGES_FREE=/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages
hugepages_before=
give_back_hugepages() {
	[[ -n "$hugepages_before" ]] && echo "$hugepages_before" >"$HUGEPAGES_NR" 2>/dev/null || true
	hugepages_before=
}
# Makes HUGEPAGES_WANTED 2 MiB pages free (idempotent: adds only the missing ones); 1 if it cannot.
reserve_hugepages() {
	[[ -r "$HUGEPAGES_FREE" ]] || return 1
	local free missing
	free=$(cat "$HUGEPAGES_FREE")
	((free >= HUGEPAGES_WANTED)) && return 0
	[[ -w "$HUGEPAGES_NR" ]] || return 1
	hugepages_before=$(cat "$HUGEPAGES_NR")
	trap give_back_hugepages EXIT
	missing=$((HUGEPAGES_WANTED - free))
	echo $((hugepages_before + missing)) >"$HUGEPAGES_NR" 2>/dev/null || true
	(($(cat "$HUGEPAGES_FREE") >= HUGEPAGES_WANTED))
}
# BENCH_MEMORY: the modes to measure, each with both sides in it
MODES=${BENCH_MEMORY:-no-huge huge}
for mode in $MODES; do
	[[ "$mode" == huge || "$mode" == no-huge ]] || { echo "bench: BENCH_MEMORY takes no-huge and/or huge" >&2; exit 2; }
done

LOG_DIR=$(mktemp -d /tmp/edgeplane-bench.XXXXXX)
echo "bench: logs in $LOG_DIR"

# Prints the value of key from the "result: k=v ..." lines of a pipeline log.
result() {
	grep '^result:' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | tail -n 1
}

median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Nanoseconds on CPU of the forwarding thread (lcore 1) of process PID. Other work shares the cores,
# so Mpps per CPU-second of that thread is the comparable figure; wall-clock Mpps is shown too.
worker_cpu_ns() {
	local task
	for task in /proc/"$1"/task/*; do
		if [[ "$(cat "$task/comm" 2>/dev/null)" == rte-worker-1 ]]; then
			cut -d ' ' -f 1 "$task/schedstat"
			return
		fi
	done
}

# run_pipeline WALK LOG MODE: prints Mpps, Mpps per worker CPU-second, the worker's CPU share and
# affinity inserts/s.
run_pipeline() {
	local walk=$1 log=$2 mode=$3
	if ! "$BENCH_BIN" --walk "$walk" --in-flight "$IN_FLIGHT" --seconds "$MEASURE_S" --warmup "$WARMUP_S" \
		--memory "$mode" --file-prefix "bench-pipeline-$$" >"$log" 2>&1; then
		echo "bench: bench_pipeline --walk $walk failed:" >&2
		tail -n 20 "$log" >&2
		return 1
	fi
	echo "$(result "$log" pipeline_mpps) $(result "$log" pipeline_mpps_per_cpu) $(result "$log" worker_cpu_share)" \
		"$(result "$log" affinity_inserts_per_s)"
}

# run_testpmd LOG MODE: prints macswap Mpps, Mpps per worker CPU-second and the worker's CPU share.
# Interactive mode lets the loop be primed with as many
# frames as the pipeline has in flight ("start tx_first N"); testpmd's own "Throughput (since last
# show)" over the measured interval is the figure.
run_testpmd() {
	local log=$1 mode=$2 fifo memory=(--no-huge -m 1024)
	[[ "$mode" == huge ]] && memory=(--in-memory) # hugepages from memfd, no hugetlbfs mount needed
	fifo=$(mktemp -u "$LOG_DIR/testpmd-stdin.XXXXXX")
	mkfifo "$fifo"
	dpdk-testpmd -l 0,1 "${memory[@]}" --no-pci --file-prefix="bench-testpmd-$$" --vdev=net_ring0 -- \
		-i --forward-mode=macswap --port-topology=loop --nb-cores=1 --burst="$BURST" --txpkts=64 \
		<"$fifo" >"$log" 2>&1 &
	local pid=$!
	exec 3>"$fifo"
	local waited=0
	until grep -q 'testpmd> ' "$log"; do
		if ! kill -0 "$pid" 2>/dev/null || ((waited >= 600)); then
			exec 3>&-
			kill "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
			echo "bench: dpdk-testpmd did not reach its prompt:" >&2
			tail -n 20 "$log" >&2
			return 1
		fi
		sleep 0.1
		waited=$((waited + 1))
	done
	echo "start tx_first $TX_FIRST_BURSTS" >&3
	sleep "$WARMUP_S"
	local cpu_before cpu_after
	cpu_before=$(worker_cpu_ns "$pid")
	echo "show port stats all" >&3
	sleep "$MEASURE_S"
	echo "show port stats all" >&3
	cpu_after=$(worker_cpu_ns "$pid")
	echo "stop" >&3
	echo "quit" >&3
	exec 3>&-
	if ! wait "$pid"; then
		echo "bench: dpdk-testpmd failed:" >&2
		tail -n 20 "$log" >&2
		return 1
	fi
	rm -f "$fifo"
	local pps packets
	pps=$(awk '/Tx-pps:/ { v = $2 } END { print v }' "$log")
	# TX-packets of the two "show port stats" = frames sent while the worker's CPU time was taken
	packets=$(awk '/^ *TX-packets:/ && !/TX-dropped/ { n++; v[n] = $2 } END { print v[n] - v[n - 1] }' "$log")
	if [[ -z "$pps" || "$pps" == 0 || -z "$cpu_before" || -z "$cpu_after" ]]; then
		echo "bench: no Tx-pps or worker CPU time for testpmd ($log)" >&2
		return 1
	fi
	awk -v pps="$pps" -v n="$packets" -v cpu="$((cpu_after - cpu_before))" \
		'BEGIN { printf "%.3f %.3f %.3f\n", pps / 1e6, n / cpu * 1e3, cpu / 1e9 / '"$MEASURE_S"' }'
}

# measure MODE: the rounds and their medians with both sides in memory mode MODE. The ratios are
# medians of each round's ratio (its runs follow each other within seconds, so they share the
# load of the moment), next to the ratio of the medians.
measure() {
	local mode=$1 round t tc tshare c cc cshare ci p pc pshare pi
	local testpmd=() testpmd_cpu=() cycle=() cycle_cpu=() pairs=() pairs_cpu=() inserts=() cycle_ratio=() pairs_ratio=()
	for ((round = 1; round <= ROUNDS; round++)); do
		read -r t tc tshare < <(run_testpmd "$LOG_DIR/testpmd-$mode-$round.log" "$mode")
		read -r c cc cshare ci < <(run_pipeline cycle "$LOG_DIR/pipeline-cycle-$mode-$round.log" "$mode")
		read -r p pc pshare pi < <(run_pipeline pairs "$LOG_DIR/pipeline-pairs-$mode-$round.log" "$mode")
		[[ -n "${t:-}" && -n "${c:-}" && -n "${p:-}" ]] || exit 1
		cycle_ratio+=("$(awk -v a="$cc" -v b="$tc" 'BEGIN { printf "%.3f", a / b }')")
		pairs_ratio+=("$(awk -v a="$pc" -v b="$tc" 'BEGIN { printf "%.3f", a / b }')")
		echo "bench: $mode round $round/$ROUNDS (Mpps wall / per worker CPU-s / worker CPU share):" \
			"testpmd $t / $tc / $tshare, cycle $c / $cc / $cshare, pairs $p / $pc / $pshare;" \
			"per CPU-s ratios cycle ${cycle_ratio[-1]}, pairs ${pairs_ratio[-1]}; inserts/s $ci $pi"
		testpmd+=("$t") testpmd_cpu+=("$tc") cycle+=("$c") cycle_cpu+=("$cc") pairs+=("$p") pairs_cpu+=("$pc")
		inserts+=("$ci" "$pi")
	done
	echo
	echo "Medians of $ROUNDS rounds, ${MEASURE_S} s each, 64-byte frames, $IN_FLIGHT in flight, one worker core," \
		"memory $mode on both sides:"
	awk -v t="$(median "${testpmd[@]}")" -v tc="$(median "${testpmd_cpu[@]}")" \
		-v c="$(median "${cycle[@]}")" -v cc="$(median "${cycle_cpu[@]}")" -v cr="$(median "${cycle_ratio[@]}")" \
		-v p="$(median "${pairs[@]}")" -v pc="$(median "${pairs_cpu[@]}")" -v pr="$(median "${pairs_ratio[@]}")" \
		-v i="$(median "${inserts[@]}")" -v crs="${cycle_ratio[*]}" -v prs="${pairs_ratio[*]}" 'BEGIN {
		f = "%-50s %10s %7s %14s %7s %s\n"
		g = "%-50s %10.3f %7.3f %14.3f %7.3f %s\n"
		printf f, "figure", "Mpps", "ratio", "Mpps/CPU-s", "ratio", "median of round ratios (rounds)"
		printf g, "testpmd macswap (baseline)", t, 1, tc, 1, ""
		printf g, "pipeline, 1M flows, every packet another flow", c, c / t, cc, cc / tc, sprintf("%.3f (%s)", cr, crs)
		printf g, "pipeline, 1M flows installed, 1024 active", p, p / t, pc, pc / tc, sprintf("%.3f (%s)", pr, prs)
		printf "%-50s %10.0f\n", "affinity inserts/s (table of 1M)", i
	}'
	[[ "$mode" == no-huge ]] && TESTPMD_NO_HUGE_MPPS_PER_CPU=$(median "${testpmd_cpu[@]}")
	return 0
}

PARTS=${BENCH_PARTS:-dataplane lb smfa cluster}
for part in $PARTS; do
	[[ "$part" =~ ^(dataplane|lb|smfa|cluster)$ ]] || { echo "bench: BENCH_PARTS takes dataplane, lb, smfa and/or cluster" >&2; exit 2; }
done
part() { [[ " $PARTS " == *" $1 "* ]]; }

TESTPMD_NO_HUGE_MPPS_PER_CPU=
part dataplane || MODES=
for mode in $MODES; do
	if [[ "$mode" == huge ]] && ! reserve_hugepages; then
		give_back_hugepages
		echo "bench: no $HUGEPAGES_WANTED free 2 MiB hugepages to be had here: memory mode huge skipped"
		continue
	fi
	measure "$mode"
	give_back_hugepages
	echo
done

if part lb; then
	echo
	# bench-lb's programs run on 4 KiB pages: their baseline is testpmd's in that mode
	TESTPMD_MPPS_PER_CPU="$TESTPMD_NO_HUGE_MPPS_PER_CPU" bash scripts/bench-lb.sh
fi
if part smfa; then
	echo
	bash scripts/bench-smfa.sh
fi
if part cluster; then
	echo
	bash scripts/bench-cluster.sh
fi
