#!/bin/sh
# projection_fit.sh: least-squares initialisation of hidden-loss projections
# (p_kd_projection_fit) on 1, 2 and 4 ranks under the configured launcher,
# each launch under a timeout: the held-out hidden loss at step 0 is lower
# than with random projections, and every rank count fits the same
# projections (the fit is collective over the ranks). TAP output; a failing
# point prints the command to re-run. Skips without a launcher.
. "$KD_SRCDIR/tests/mpi/tap_mpi.sh"
prog="$KD_BUILDDIR/tests/kd/p_kd_projection_fit"
for np in 1 2 4; do
    launch $np "$prog" "$tmp/fit$np.txt"
    point "$(t $rc -eq 0)" "p_kd_projection_fit on $np rank(s) (exit $rc)"
    grep '^ok\|^not ok' "$tmp/out" | sed "s/^\(not \)\{0,1\}ok [0-9]* - /# $np rank(s): /"
    grep -q '^not ok' "$tmp/out"
    point "$(t $? -ne 0)" "every check of p_kd_projection_fit holds on $np rank(s)"
done
for np in 2 4; do
    cmd="$prog --compare $tmp/fit1.txt $tmp/fit$np.txt"
    $cmd >"$tmp/out" 2>"$tmp/err"
    rc=$?
    point "$(t $rc -eq 0)" "1 and $np ranks fit the same projections (rel 1e-4)"
done
finish
