#!/bin/sh
# hf_load.sh: the exported student loads in transformers and predicts what
# kd_hpc predicts. A tiny synthetic job (teacher finetuned 4 steps, extract,
# distill 6 steps with a soft and a hidden loss, export) runs on one
# process and writes <output_dir>/student/ (config.json,
# model.safetensors, vocab.txt). t_export_predict gives kd_hpc's token ids
# and logits for a sentence (mixed case, punctuation, an unknown word);
# hf_load.py loads the directory with BertForSequenceClassification and
# BertTokenizer, runs the same sentence and compares (ids exactly, logits to
# 1e-4 relative).
#
# The Python side is optional: KD_HF_PYTHON, else /opt/hfvenv/bin/python if
# it exists; without a Python that imports transformers and torch those
# points are skipped with the reason, and the rest still runs.
# TAP output; a failing point prints the command to re-run.
: "${KD_HPC:?}" "${KD_SRCDIR:?}" "${KD_BUILDDIR:?}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
. "$KD_SRCDIR/tests/tap.sh"

cat >"$tmp/job.cfg" <<EOF
job = { name = "export"; output_dir = "$tmp/run"; seed = 5; checkpoint_every = 0; };
data = { task = "synthetic"; synthetic_train = 64; synthetic_dev = 32; max_seq_len = 16; };
teacher = { layers = 2; hidden = 32; heads = 2; intermediate = 64; max_positions = 32;
            micro_batch = 16; };
student = { layers = 2; hidden = 16; heads = 2; intermediate = 32; };
stages = (
  { name = "teacher"; kind = "finetune"; max_steps = 4; batch = 16; lr = 1e-3; },
  { name = "extract"; kind = "extract"; },
  { name = "distill"; kind = "distill"; max_steps = 6; batch = 16; lr = 1e-3;
    losses = ( { kind = "soft"; }, { kind = "hidden"; } ); },
  { name = "export"; kind = "export"; }
);
EOF
cmd="$KD_HPC $tmp/job.cfg"
$cmd >"$tmp/out" 2>"$tmp/err"
rc=$?
dir="$tmp/run/student"
ok=0
[ $rc -eq 0 ] && [ -s "$dir/config.json" ] && [ -s "$dir/model.safetensors" ] &&
    [ -s "$dir/vocab.txt" ] && ok=1
point $ok "the job exports the student as a Hugging Face directory (exit $rc)" "$cmd"

sentence="The new Movie was never long, the zebra's acting felt French."
cmd="$KD_BUILDDIR/tests/export/t_export_predict $dir \"$sentence\""
"$KD_BUILDDIR/tests/export/t_export_predict" "$dir" "$sentence" >"$tmp/out" 2>"$tmp/err"
rc=$?
ids=$(sed -n 's/^ids: //p' "$tmp/out")
logits=$(sed -n 's/^logits: //p' "$tmp/out")
ok=0
[ $rc -eq 0 ] && [ -n "$ids" ] && [ "$(echo "$logits" | wc -w)" -eq 2 ] && ok=1
point $ok "kd_hpc predicts the sentence from the exported directory: logits $logits" "$cmd"

py="${KD_HF_PYTHON:-}"
[ -z "$py" ] && [ -x /opt/hfvenv/bin/python ] && py=/opt/hfvenv/bin/python
why=""
if [ -z "$py" ]; then
    why="no Python with transformers (set KD_HF_PYTHON, or provide /opt/hfvenv/bin/python)"
elif ! "$py" -c 'import transformers, torch' >/dev/null 2>&1; then
    why="$py cannot import transformers and torch"
fi
if [ -n "$why" ]; then
    for what in "transformers loads the directory" "BertTokenizer gives kd_hpc's ids" \
        "logits agree to 1e-4"; do
        n=$((n + 1))
        echo "ok $n - $what # SKIP $why"
    done
else
    cmd="$py $KD_SRCDIR/tests/export/hf_load.py $dir \"$ids\" \"$logits\" \"$sentence\""
    "$py" "$KD_SRCDIR/tests/export/hf_load.py" "$dir" "$ids" "$logits" "$sentence" \
        >"$tmp/out" 2>"$tmp/err"
    rc=$?
    # renumber the helper's points into this plan
    while IFS= read -r line; do
        case "$line" in
        "ok "*|"not ok "*)
            n=$((n + 1))
            case "$line" in "not ok "*) fails=$((fails + 1)) ;; esac
            echo "$line" | sed "s/^\(not \)\{0,1\}ok [0-9]*/\1ok $n/"
            ;;
        *) echo "$line" ;;
        esac
    done <"$tmp/out"
    [ $rc -eq 0 ] && grep -q '^ok 3 ' "$tmp/out" ||
        point 0 "hf_load.py ran every check (exit $rc)" "$cmd"
fi
finish
