#!/bin/sh
# dp_tests.sh: data-parallel student training (tests/mpi/p_dp.c) at 1, 2
# and 4 ranks (oversubscribed, root-safe, each launch under a timeout):
# every check of p_dp, the same digest of the final parameters from two
# launches at the same rank count (bitwise reproducible across processes),
# and a rank that dies before the gradient all-reduce ending the whole job
# with its message instead of leaving the others waiting. TAP output; a
# failing point prints the command to re-run. Skips without a launcher.
. "$KD_SRCDIR/tests/mpi/tap_mpi.sh"
bin="$KD_BUILDDIR/tests/mpi/p_dp"

for np in 1 2 4; do
    launch $np "$bin"
    point "$(t $rc -eq 0)" "p_dp on $np rank(s): every check passed (exit $rc in ${secs}s)"
    sed -n 's/^/# np='"$np"': /p' "$tmp/out" | grep -v "^# np=$np: ok" | grep -v "^# np=$np: 1\.\."
    first=$(sed -n 's/^# digest //p' "$tmp/out")
    launch $np "$bin"
    second=$(sed -n 's/^# digest //p' "$tmp/out")
    point "$(t $rc -eq 0 -a -n "$first" -a "$first" = "$second")" \
        "p_dp on $np rank(s): two launches give the same parameters bitwise ($first, $second)"

    launch $np "$bin" fail
    point "$(t $rc -ne 0 -a $rc -ne 124 -a $secs -le 10)" \
        "p_dp fail on $np rank(s): a rank dying before the all-reduce ends the job (exit $rc in ${secs}s)"
    grep -q "deliberate failure on rank $((np - 1)) before the gradient all-reduce" "$tmp/err"
    point "$(t $? -eq 0)" "p_dp fail on $np rank(s): the failing rank's message is printed"
done

finish
