#!/bin/sh
# pipeline_tests.sh: the pipeline-parallel teacher against one process
# holding the whole model (tests/mpi/p_pipeline.c says what is compared and
# to which tolerance), at 1, 2 and 4 ranks: S = 1, 2, 4 stages, and
# replicas (S = 1 x R = 2, S = 2 x R = 2). Then a rank dying inside the 1F1B
# schedule (the last stage in its loss, stage 0 in its input-gradient
# callback) while the others wait in the pipeline: the job must end
# non-zero, with the message, within 15 seconds. TAP output (the measured
# errors appear as comments); a failing point prints the command to re-run.
. "$KD_SRCDIR/tests/mpi/tap_mpi.sh"
bin="$KD_BUILDDIR/tests/mpi/p_pipeline"

for layout in "1 1" "2 2" "2 1" "4 4" "4 2"; do
    set -- $layout
    np=$1 S=$2
    launch $np "$bin" $S check
    point "$(t $rc -eq 0)" "pipeline S = $S on $np rank(s) equals one process: forward taps, 1F1B gradients, loss, d h_0, norm (exit $rc in ${secs}s)"
    grep "^ok\|^not ok" "$tmp/out" | sed 's/^/#   /'
done

for layout in "1 1" "2 2" "4 4"; do
    set -- $layout
    np=$1 S=$2
    for mode in fail-loss fail-input; do
        launch $np "$bin" $S $mode
        point "$(t $rc -ne 0 -a $rc -ne 124 -a $secs -le 15)" \
            "$mode on $np rank(s), S = $S: a failing rank ends the job (exit $rc in ${secs}s)"
        grep -q "deliberate failure in the" "$tmp/err"
        point "$(t $? -eq 0)" "$mode on $np rank(s): the failing rank's message is printed"
    done
done

finish
