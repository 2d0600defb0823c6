#!/bin/sh
# store_bench.sh: teacher store throughput at 1 and 2 ranks against the raw
# disk in the same run (see bench/store_bench.c), then fp32 at 2 ranks
# through parallel HDF5 for comparison. Run from a build tree:
#   make bench/store_bench && sh $srcdir/bench/store_bench.sh [DIR] [extra options]
# DIR (default: a new directory under the current one) must be on the disk
# to be measured. Results go to stdout; docs/store-performance.md records
# a run with this command.
set -e
bench=${STORE_BENCH:-./bench/store_bench}
mpiexec=${MPIEXEC:-mpiexec}
dir=${1:-./store-bench.$$}
[ $# -gt 0 ] && shift
mkdir -p "$dir"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# On a 2-core machine 2 ranks fill every core, and Open MPI's busy polling in
# collectives then starves the kernel threads that copy into the page cache
# and write back; yielding when idle is the setting for such nodes. The raw
# disk peer runs in the same processes, under the same setting.
export OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-1}
extra=""
"$mpiexec" --version 2>&1 | grep -q "Open MPI" && extra="--oversubscribe"
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm)"
echo "# cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p') ($(nproc) cores)"
echo "# disk: $(df -h "$dir" | awk 'NR==2 {print $1, $2 " total,", $4 " free"}')"
echo "# command: $0 $dir $*"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other jobs on the machine skew the numbers)"
# touch most free memory once (see store_bench.c: lazily backed VM memory)
avail=$(awk '/MemAvailable/ {print int($2 / 1024 * 0.7)}' /proc/meminfo)
for np in 1 2; do
    "$mpiexec" $extra -n $np "$bench" --dir "$dir" --prefault-mb "${avail:-0}" "$@"
done
# for comparison, the path ranks on several nodes take (parallel HDF5,
# every chunk written as zeros first), fp32 only
"$mpiexec" $extra -n 2 "$bench" --dir "$dir" --prefault-mb "${avail:-0}" --writer mpiio \
    --precisions fp32 "$@"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
rmdir "$dir" 2>/dev/null || true
