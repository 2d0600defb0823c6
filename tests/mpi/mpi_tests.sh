#!/bin/sh
# mpi_tests.sh: MPI programs and kd_hpc itself under the launcher found by
# configure, at 1, 2 and 4 ranks (oversubscribed, root-safe), each launch
# under a timeout. TAP output; a failing point prints the command to re-run.
# Skips (exit 77) when configure found no launcher.
. "$KD_SRCDIR/tests/mpi/tap_mpi.sh"
for np in 1 2 4; do
    launch $np "$KD_BUILDDIR/tests/mpi/p_comm"
    point "$(t $rc -eq 0)" "p_comm on $np rank(s): agreement, broadcast, shards"

    launch $np "$KD_BUILDDIR/tests/mpi/p_abort"
    point "$(t $rc -ne 0 -a $rc -ne 124 -a $secs -le 30)" \
        "p_abort on $np rank(s): a failing rank ends the job (exit $rc in ${secs}s)"
    grep -q "deliberate failure on rank $((np - 1))" "$tmp/err"
    point "$(t $? -eq 0)" "p_abort on $np rank(s): the failing rank's message is printed"
done

# kd_hpc itself: the demo job plans 2 pipeline stages, so 1 rank is refused
# with a clear message and 2 or 4 ranks run it.
cd "$tmp" || exit 1
launch 1 "$KD_BUILDDIR/src/kd_hpc" "$KD_SRCDIR/jobs/demo.cfg"
point "$(t $rc -eq 3)" "kd_hpc demo on 1 rank: invalid layout, exit 3 (got $rc)"
grep -q "1 rank cannot be split into pipelines of teacher.pipeline_stages = 2" "$tmp/err"
point "$(t $? -eq 0)" "kd_hpc demo on 1 rank: the message names the numbers"
for np in 2 4; do
    launch $np "$KD_BUILDDIR/src/kd_hpc" --set "job.output_dir=\"$tmp/run$np\"" \
        "$KD_SRCDIR/jobs/demo.cfg"
    point "$(t $rc -eq 0)" "kd_hpc demo on $np ranks (exit $rc)"
    point "$(t -s "$tmp/run$np/job.resolved.cfg")" \
        "kd_hpc demo on $np ranks writes the resolved configuration"
    launch $np "$KD_BUILDDIR/src/kd_hpc" --validate "$tmp/run$np/job.resolved.cfg"
    point "$(t $rc -eq 0)" "the resolved configuration validates on $np ranks"
done
# a failure on rank 0 only (output directory cannot be created) ends every rank
: > "$tmp/blocker"
launch 4 "$KD_BUILDDIR/src/kd_hpc" --set "job.output_dir=\"$tmp/blocker/sub\"" \
    "$KD_SRCDIR/jobs/demo.cfg"
point "$(t $rc -eq 1 -a $secs -le 30)" "an output directory that cannot be made: exit 1 on 4 ranks (got $rc in ${secs}s)"
grep -q "blocker/sub: cannot create directory" "$tmp/err"
point "$(t $? -eq 0)" "the message names the directory"

finish
