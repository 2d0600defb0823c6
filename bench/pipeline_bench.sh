#!/bin/sh
# pipeline_bench.sh: pipeline throughput against its ideal (DESIGN §7), run
# from a build tree:
#   make bench/pipeline_bench && sh $srcdir/bench/pipeline_bench.sh [args]
# Runs bench/pipeline_bench at S = 2 and S = 4 ranks (one replica; S = 4 is
# oversubscribed on a 2-core machine and reported as such), one BLAS thread
# per rank, and prints the machine, then each run's per-rank timers, the
# min/avg/max timer tables and one SUMMARY line per schedule and m
# (bench/pipeline_bench.c explains the method). Extra args go to the
# program (e.g. --micro "4 8" --reps 3). Environment: MPIEXEC (default
# mpirun), PIPELINE_BENCH (default ./bench/pipeline_bench).
set -e
bin=${PIPELINE_BENCH:-./bench/pipeline_bench}
mpiexec=${MPIEXEC:-mpirun}
# before OMP_NUM_THREADS is set: nproc honours it
echo "# cpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), $(nproc) cores;" \
     "load average $(cut -d' ' -f1-3 /proc/loadavg) (other processes skew the ratios)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
extra=""
"$mpiexec" --version 2>&1 | grep -q "Open MPI" && extra="--oversubscribe --bind-to none"
for S in 2 4; do
    echo "# ---- S = $S ----"
    $mpiexec $extra -n $S "$bin" "$@"
done
