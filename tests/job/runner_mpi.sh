#!/bin/sh
# runner_mpi.sh: the stage runner on 2 ranks: t_runner's scenarios with rank
# 0 deciding and every rank checking the decisions it received (results,
# exit codes, messages); a rank that disagrees fails its exit status. TAP
# through tests/mpi/tap_mpi.sh (skipped without an MPI launcher).
. "$KD_SRCDIR/tests/mpi/tap_mpi.sh"

launch 2 "$KD_BUILDDIR/tests/job/t_runner"
point "$(t "$rc" -eq 0)" "t_runner on 2 ranks: every rank agrees (exit $rc, ${secs} s)"
bad=$(grep -c '^not ok' "$tmp/out")
oks=$(grep -c '^ok' "$tmp/out")
point "$(t "$bad" -eq 0 -a "$oks" -gt 50)" "rank 0: $oks points passed, $bad failed"
finish
