# tap_mpi.sh: shared by the MPI test runners (sourced, not run). Sets up the
# launcher found by configure (oversubscribed, root-safe, each launch under
# `timeout`) and the TAP helpers of tests/tap.sh ($tmp, point, t, finish;
# a failing point re-runs the last launch's $cmd), plus:
#   launch NP cmd...   runs cmd on NP ranks; sets rc, secs, cmd
# Skips the whole runner (TAP "1..0 # SKIP") when no launcher was found.
: "${KD_BUILDDIR:?}" "${KD_SRCDIR:?}"
if [ -z "${MPIEXEC:-}" ]; then
    echo "1..0 # SKIP no MPI launcher (configure MPIEXEC=...)"
    exit 0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
extra=""
"$MPIEXEC" --version 2>&1 | grep -q "Open MPI" && extra="--oversubscribe"
limit=120
tmo=""
[ -n "${TIMEOUT:-}" ] && tmo="$TIMEOUT $limit"
. "$KD_SRCDIR/tests/tap.sh"

launch() {
    np=$1; shift
    cmd="$tmo $MPIEXEC $extra -n $np $*"
    start=$(date +%s)
    $cmd >"$tmp/out" 2>"$tmp/err"
    rc=$?
    secs=$(( $(date +%s) - start ))
}
