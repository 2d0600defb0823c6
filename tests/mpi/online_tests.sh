#!/bin/sh
# online_tests.sh: online distillation (stages/online.h) under mpirun. One
# small job (tests/mpi/online_job.cfg) trains a teacher, writes its fp32
# store and distills the same student offline ("off", from the store) and
# online ("on", teacher ranks stream to student ranks). With the same
# number D of student ranks, the online student must equal the offline one:
# the teacher's outputs differ only by the rounding of different batch
# shapes (store rows vs the students' micro-batches), so parameters agree
# to 1e-5 relative; the attention key biases are left out of that bound
# (their exact gradient is zero, so they hold amplified rounding noise
# only) and checked to 1e-2. Layouts: D = 1 (1 teacher rank); D = 2 fed by
# 2 teacher replicas (S = 1) and by one 2-stage teacher pipeline, which
# must give the same student bit for bit. Then an interrupted online stage
# resumes to the same student bit for bit, a failing teacher rank ends the
# job quickly, the dry run shows the roles, and least-squares initial
# projections work offline (and are refused politely online).
. "$KD_SRCDIR/tests/mpi/tap_mpi.sh"
cd "$tmp" || exit 1
job="$KD_SRCDIR/tests/mpi/online_job.cfg"
kd="$KD_BUILDDIR/src/kd_hpc"
diff="$KD_BUILDDIR/tests/mpi/st_diff"
st() { echo "$1/students/$2/model.safetensors"; }
close_to() { # A B: the online/offline bounds above
    "$diff" "$1" "$2" 1e-5 key.bias >"$tmp/diff" && "$diff" "$1" "$2" 1e-2 >>"$tmp/diff"
}

launch 2 "$kd" --set 'job.output_dir="a"' "$job"
point "$(t $rc -eq 0)" "the job on 2 ranks: teacher, store, offline and online students (exit $rc)"
grep -q 'online: 1 teacher pipeline of 1 stage feed 1 student rank' "$tmp/out"
point "$(t $? -eq 0)" "2 ranks: the online stage runs 1 teacher rank for 1 student rank"
grep -q 'stage "on (online teacher ranks)" timers over 1 rank' "$tmp/out"
point "$(t $? -eq 0)" "2 ranks: the teacher ranks report their timers"

# D = 1 offline for the D = 1 online student of the first run
cp -r a b
launch 1 "$kd" --stage off --set 'job.output_dir="b"' --set 'stages.[3].mode="offline"' "$job"
point "$(t $rc -eq 0)" "offline student on 1 rank (exit $rc)"
close_to "$(st a on)" "$(st b off)"
point "$(t $? -eq 0)" "online (1 teacher + 1 student rank) equals offline on 1 rank: $(cat "$tmp/diff" | tr '\n' ' ')"

cp -r a c
launch 4 "$kd" --stage on --set 'job.output_dir="a"' --set 'stages.[3].teacher_ranks=2' "$job"
point "$(t $rc -eq 0)" "online on 4 ranks, 2 teacher replicas x 1 stage, 2 students (exit $rc)"
close_to "$(st a on)" "$(st a off)"
point "$(t $? -eq 0)" "online (2 teacher replicas) equals offline on 2 ranks: $(cat "$tmp/diff" | tr '\n' ' ')"

launch 4 "$kd" --stage on --set 'job.output_dir="c"' --set 'stages.[3].teacher_ranks=2' \
    --set 'teacher.pipeline_stages=2' "$job"
point "$(t $rc -eq 0)" "online on 4 ranks, 1 teacher pipeline of 2 stages, 2 students (exit $rc)"
grep -q 'online: 1 teacher pipeline of 2 stages feed 2 student ranks' "$tmp/out"
point "$(t $? -eq 0)" "the 2-stage teacher pipeline is used"
cmp -s "$(st a on)" "$(st c on)"
point "$(t $? -eq 0)" "a pipelined teacher gives the same online student bit for bit"

# interrupted after step 7 (test hook) and resumed
cp -r c d && rm -rf d/students/on
launch 4 env KD_INTERRUPT_AFTER_STEP=7 "$kd" --stage on --set 'job.output_dir="d"' \
    --set 'stages.[3].teacher_ranks=2' "$job"
point "$(t $rc -eq 4 -a -s d/checkpoints/on.state.h5)" \
    "online stage interrupted after step 7: exit 4 and a checkpoint (exit $rc)"
launch 4 "$kd" --stage on --resume --set 'job.output_dir="d"' --set 'stages.[3].teacher_ranks=2' \
    "$job"
point "$(t $rc -eq 0)" "--resume finishes the online stage (exit $rc)"
cmp -s "$(st a on)" "$(st d on)"
point "$(t $? -eq 0)" "the resumed online student equals the uninterrupted one bit for bit"

# a teacher that cannot be loaded on the teacher ranks ends every rank
cp -r c e && printf 'broken' > e/teacher/model.safetensors
launch 4 "$kd" --stage on --set 'job.output_dir="e"' --set 'stages.[3].teacher_ranks=2' "$job"
point "$(t $rc -ne 0 -a $rc -ne 124 -a $secs -le 30)" \
    "a teacher rank that fails ends the job (exit $rc in ${secs}s)"
grep -q "online teacher:.*e/teacher/model.safetensors" "$tmp/err"
point "$(t $? -eq 0)" "the failing teacher rank's message names the file"

launch 4 "$kd" --dry-run --set 'stages.[3].teacher_ranks=2' "$job"
point "$(t $rc -eq 0)" "--dry-run on 4 ranks (exit $rc)"
grep -q 'stage "on" (online): ranks 0-1 train the student, ranks 2-3 run 2 teacher pipelines' \
    "$tmp/out"
point "$(t $? -eq 0)" "--dry-run shows which ranks teach and which learn"

# least-squares initial projections (student.init_projections) end to end:
# offline they are fitted from the store; online they start random, with a
# warning
cp -r c f
launch 2 "$kd" --stage off --set 'job.output_dir="f"' --set 'student.init_projections="lstsq"' "$job"
point "$(t $rc -eq 0 -a "$(grep -c 'fitted by least squares on 600 \[CLS\] rows' "$tmp/out")" -eq 2)" \
    "offline with init_projections = lstsq: both mapped pairs fitted (exit $rc)"
launch 2 "$kd" --stage on --set 'job.output_dir="f"' --set 'student.init_projections="lstsq"' "$job"
point "$(t $rc -eq 0)" "online with init_projections = lstsq runs (exit $rc)"
grep -q 'needs the teacher store (offline mode); the projections start random' "$tmp/err"
point "$(t $? -eq 0)" "... and warns that the projections start random"

# a different student leaves the teacher alone (finetune depends on job.seed,
# data.* and teacher.* only) but redoes what depends on the student
launch 2 "$kd" --set 'job.output_dir="f"' --set 'student.intermediate=48' "$job"
grep -q 'stage 1/4 "teacher" (finetune): up to date' "$tmp/out"
point "$(t $rc -eq 0 -a $? -eq 0)" "student.* changed: the teacher is up to date (exit $rc)"
grep -q 'stage 3/4 "off" (distill): out of date: setting student.intermediate changed' "$tmp/out"
point "$(t $? -eq 0)" "... and the students are trained again"

launch 2 "$kd" --validate --set 'stages.[3].teacher_ranks=2' "$job"
point "$(t $rc -ne 0)" "teacher_ranks leaving no student rank is refused (exit $rc)"
grep -q 'teacher_ranks = 2, which leaves no student rank out of 2' "$tmp/err"
point "$(t $? -eq 0)" "the message names the numbers"
finish
