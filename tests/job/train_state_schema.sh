#!/bin/sh
# train_state_schema.sh: a real training-state checkpoint against its
# schema (hdf5-schemas/train_state.v1.md). A small job on a generated
# 72-sentence TSV task (54 training, 18 dev) with its own 16-token
# vocabulary (teacher finetuned for 2 steps, extract, a PID distill stage
# whose hidden loss projects the student's 16 wide states to the
# teacher's 32) runs on one process with KD_INTERRUPT_AFTER_STEP=3, so the
# distill stage stops after step 3 and leaves checkpoints/distill.state.h5
# (projections as extra blocks, the PID phase as scalars). Checked:
#   - `h5dump -H -p` equals the golden hdf5-schemas/train_state.v1.ddl
#     (file-name line normalised);
#   - the attributes a reader relies on hold the documented values;
#   - h5dump reads every dataset back (HDF5's own Fletcher32 check);
#   - no temporary file is left next to the checkpoint (atomic write).
# Skips without h5dump. After an intended change of the format, regenerate
# the golden with KD_UPDATE_GOLDEN=1 and review the diff.
: "${KD_HPC:?}" "${KD_SRCDIR:?}"
if [ -z "${H5DUMP:-}" ]; then
    echo "1..0 # SKIP no h5dump (install hdf5-tools and re-run configure)"
    exit 0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
golden="$KD_SRCDIR/hdf5-schemas/train_state.v1.ddl"
. "$KD_SRCDIR/tests/tap.sh"

# fixed data and vocabulary (not the synthetic task's), so the shapes in
# the golden change only when the format does
printf '%s\n' "[PAD]" "[UNK]" "[CLS]" "[SEP]" "[MASK]" the film plot was is good bad \
    very not dull fun >"$tmp/vocab.txt"
printf 'sentence\tlabel\n' >"$tmp/train.tsv"
printf 'sentence\tlabel\n' >"$tmp/dev.tsv"
i=0
for a in good bad; do for b in film plot; do for c in was is; do for d in "" very not; do
    for e in "" fun dull; do
        label=0
        [ "$a" = good ] && label=1
        [ "$d" = not ] && label=$((1 - label))
        i=$((i + 1))
        f="$tmp/train.tsv"
        [ $((i % 4)) -eq 0 ] && f="$tmp/dev.tsv"
        printf 'the %s %s %s %s %s\t%d\n' "$b" "$c" "$d" "$a" "$e" $label >>"$f"
    done
done; done; done; done
cat >"$tmp/job.cfg" <<EOF
job = { name = "ckpt"; output_dir = "$tmp/run"; seed = 11; checkpoint_every = 0; };
data = { train = "$tmp/train.tsv"; dev = "$tmp/dev.tsv"; vocab = "$tmp/vocab.txt";
         max_seq_len = 8; };
teacher = { layers = 2; hidden = 32; heads = 2; intermediate = 64; max_positions = 16;
            micro_batch = 16; };
student = { layers = 2; hidden = 16; heads = 2; intermediate = 32; };
stages = (
  { name = "teacher"; kind = "finetune"; max_steps = 2; batch = 16; },
  { name = "extract"; kind = "extract"; },
  { name = "distill"; kind = "distill"; method = "pid"; max_steps = 8; batch = 16;
    losses = ( { kind = "soft"; }, { kind = "hidden"; } ); }
);
EOF
cmd="env KD_INTERRUPT_AFTER_STEP=3 $KD_HPC $tmp/job.cfg"
$cmd >"$tmp/out" 2>"$tmp/err"
rc=$?
ckpt="$tmp/run/checkpoints/distill.state.h5"
point "$(test $rc -eq 4 -a -s "$ckpt" && echo 1 || echo 0)" \
    "distill interrupted after step 3: exit 4 and a checkpoint (exit $rc)" "$cmd"

"$H5DUMP" -H -p "$ckpt" | sed '1s|^HDF5 ".*" {$|HDF5 "distill.state.h5" {|' >"$tmp/got.ddl"
if [ "${KD_UPDATE_GOLDEN:-0}" = 1 ]; then
    cp "$tmp/got.ddl" "$golden"
    echo "# golden rewritten: $golden"
fi
diff -u "$golden" "$tmp/got.ddl" >"$tmp/err"
point "$(test $? -eq 0 && echo 1 || echo 0)" \
    "h5dump -H -p matches hdf5-schemas/train_state.v1.ddl" "$cmd && $H5DUMP -H -p $ckpt"

# attribute values: "NAME VALUE" from h5dump -a (strings unquoted)
value() {
    "$H5DUMP" -a "$1" "$ckpt" 2>/dev/null |
        sed -n 's/^ *(0): "\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' | head -1
}
for want in "schema kd_hpc.train_state" "schema_version 1.0" "stage distill" \
    "global_step 3" "epoch 0" "epoch_pos 48" "opt_step 3" "scalars/sched_phase 0" \
    "scalars/sched_phase_start 0"; do
    name=${want%% *}
    got=$(value "$name")
    point "$(test "$got" = "${want#* }" && echo 1 || echo 0)" \
        "attribute /$name = ${want#* } (got $got)" "$H5DUMP -a $name $ckpt"
done
fp=$(value fingerprint)
point "$(printf '%s' "$fp" | grep -Eq '^[0-9a-f]{64}$' && echo 1 || echo 0)" \
    "attribute /fingerprint is 64 hex digits"
grep -q "\"fingerprint\":[[:space:]]*\"$fp\"" "$tmp/run/manifest.json"
point "$(test $? -eq 0 && echo 1 || echo 0)" \
    "the fingerprint is the manifest's for the interrupted stage"

"$H5DUMP" "$ckpt" >/dev/null 2>"$tmp/err"
point "$(test $? -eq 0 && echo 1 || echo 0)" \
    "h5dump reads every dataset back (Fletcher32 verified)" "$H5DUMP $ckpt"
left=$(ls "$tmp/run/checkpoints" | grep -c '\.tmp\.')
point "$(test "$left" -eq 0 && echo 1 || echo 0)" "no temporary file next to the checkpoint"

finish
