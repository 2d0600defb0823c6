# tap_mpi.sh: shared by the MPI test runners (sourced, not run). Sets up the
# launcher found by configure (oversubscribed, root-safe, each launch under
# `timeout`), a scratch directory $tmp removed on exit, and three helpers:
#   launch NP cmd...   runs cmd on NP ranks; sets rc, secs, cmd
#   point COND desc    one TAP point (COND 1 = ok); a failure prints the
#                      command to re-run and the end of its output
#   t EXPR...          prints 1 if the test(1) expression holds, else 0
# and finish, which prints the plan and sets the exit status.
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
n=0
fails=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

launch() {
    np=$1; shift
    cmd="$tmo $MPIEXEC $extra -n $np $*"
    start=$(date +%s)
    $cmd >"$tmp/out" 2>"$tmp/err"
    rc=$?
    secs=$(( $(date +%s) - start ))
}

point() {
    n=$((n + 1))
    if [ "$1" -eq 1 ]; then
        echo "ok $n - $2"
    else
        fails=$((fails + 1))
        echo "not ok $n - $2"
        echo "# re-run: $cmd"
        sed 's/^/#   /' "$tmp/out" "$tmp/err" | tail -15
    fi
}

t() { [ "$@" ] && echo 1 || echo 0; }

finish() {
    echo "1..$n"
    [ "$fails" -eq 0 ]
}
