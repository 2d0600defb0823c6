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
# with a clear message; 2 and 4 ranks run the whole job (finetune ->
# extract -> distill x2 -> evaluate -> export) on a shrunk data set.
cd "$tmp" || exit 1
launch 1 "$KD_BUILDDIR/src/kd_hpc" "$KD_SRCDIR/jobs/demo.cfg"
point "$(t $rc -eq 3)" "kd_hpc demo on 1 rank: invalid layout, exit 3 (got $rc)"
grep -q "1 rank cannot be split into pipelines of teacher.pipeline_stages = 2" "$tmp/err"
point "$(t $? -eq 0)" "kd_hpc demo on 1 rank: the message names the numbers"
small="--set data.synthetic_train=600 --set data.synthetic_dev=200 --set stages.[0].epochs=1 \
 --set stages.[2].epochs=1 --set stages.[3].epochs=1"
for np in 2 4; do
    out="$tmp/run$np"
    launch $np "$KD_BUILDDIR/src/kd_hpc" --set "job.output_dir=\"$out\"" $small \
        "$KD_SRCDIR/jobs/demo.cfg"
    point "$(t $rc -eq 0)" "kd_hpc demo on $np ranks (exit $rc)"
    point "$(t -s "$out/job.resolved.cfg")" \
        "kd_hpc demo on $np ranks writes the resolved configuration"
    point "$(t -s "$out/teacher/model.safetensors" -a -s "$out/teacher.h5")" \
        "demo on $np ranks: the finetuned teacher and its store"
    point "$(t -s "$out/students/no-kd/model.safetensors" -a \
        -s "$out/students/distill/model.safetensors")" "demo on $np ranks: both students"
    grep -q '^| student "distill" (hard+soft+hidden+attention) ' "$out/report.md"
    point "$(t $? -eq 0)" "demo on $np ranks: report.md compares teacher and students"
    point "$(t -s "$out/student/config.json" -a -s "$out/student/vocab.txt")" \
        "demo on $np ranks: the distilled student exported"
    grep -q '"status":[[:space:]]*"finished"' "$out/manifest.json"
    point "$(t $? -eq 0)" "demo on $np ranks: the manifest records finished stages"
    launch $np "$KD_BUILDDIR/src/kd_hpc" --set "job.output_dir=\"$out\"" $small \
        "$KD_SRCDIR/jobs/demo.cfg"
    point "$(t $rc -eq 0 -a "$(grep -c 'up to date' "$tmp/out")" -ge 6)" \
        "demo on $np ranks again: every stage up to date (exit $rc)"
    launch $np "$KD_BUILDDIR/src/kd_hpc" --validate "$out/job.resolved.cfg"
    point "$(t $rc -eq 0)" "the resolved configuration validates on $np ranks"
done
# interrupted at an exact step and resumed: the same student, bit for bit
out="$tmp/run2"
launch 2 env KD_INTERRUPT_AFTER_STEP=7 "$KD_BUILDDIR/src/kd_hpc" --stage distill \
    --set "job.output_dir=\"$tmp/int2\"" $small "$KD_SRCDIR/jobs/demo.cfg"
point "$(t $rc -eq 3)" "--stage distill on a fresh directory is refused: its inputs are missing (exit $rc)"
rm -rf "$tmp/int2" && cp -r "$out" "$tmp/int2" && rm -rf "$tmp/int2/students/distill"
launch 2 env KD_INTERRUPT_AFTER_STEP=7 "$KD_BUILDDIR/src/kd_hpc" --stage distill \
    --set "job.output_dir=\"$tmp/int2\"" $small "$KD_SRCDIR/jobs/demo.cfg"
point "$(t $rc -eq 4 -a -s "$tmp/int2/checkpoints/distill.state.h5")" \
    "distill interrupted after step 7: exit 4 and a checkpoint (exit $rc)"
launch 2 "$KD_BUILDDIR/src/kd_hpc" --stage distill --resume \
    --set "job.output_dir=\"$tmp/int2\"" $small "$KD_SRCDIR/jobs/demo.cfg"
point "$(t $rc -eq 0)" "--resume finishes the interrupted distill stage (exit $rc)"
grep -q "resumed from .*distill.state.h5 after step 7" "$tmp/out"
point "$(t $? -eq 0)" "the resume starts after step 7"
cmp -s "$out/students/distill/model.safetensors" "$tmp/int2/students/distill/model.safetensors"
point "$(t $? -eq 0)" "resumed student equals the uninterrupted one bit for bit (2 ranks)"

# a failure on rank 0 only (output directory cannot be created) ends every rank
: > "$tmp/blocker"
launch 4 "$KD_BUILDDIR/src/kd_hpc" --set "job.output_dir=\"$tmp/blocker/sub\"" \
    "$KD_SRCDIR/jobs/demo.cfg"
point "$(t $rc -eq 1 -a $secs -le 30)" "an output directory that cannot be made: exit 1 on 4 ranks (got $rc in ${secs}s)"
grep -q "blocker/sub: cannot create directory" "$tmp/err"
point "$(t $? -eq 0)" "the message names the directory"

finish
