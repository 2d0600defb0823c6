#!/bin/sh
# cli.sh: the kd_hpc command line as a user meets it: exit codes, --validate
# on every malformed file (every expected FILE:LINE message on stderr, exit 3)
# and on every shipped job (exit 0), --dry-run of the 64-rank job, --help.
# TAP output; each failing point prints the command to re-run.
: "${KD_HPC:?}" "${KD_SRCDIR:?}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
. "$KD_SRCDIR/tests/tap.sh"

run() { # run EXPECTED_RC description args...
    want=$1; desc=$2; shift 2
    "$KD_HPC" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then point OK "$desc (exit $rc)"
    else point FAIL "$desc (exit $rc, expected $want)" "$KD_HPC $*"; fi
}

cd "$KD_SRCDIR" || exit 1

for f in tests/job/bad/*.cfg; do
    run 3 "--validate $f" --validate "$f"
    missing=0
    grep '^# expect: ' "$f" | sed "s|^# expect: FILE|$f|" > "$tmp/want"
    while IFS= read -r line; do
        grep -qxF "$line" "$tmp/err" || missing=$((missing + 1))
    done < "$tmp/want"
    if [ "$missing" -eq 0 ] && [ -s "$tmp/want" ]; then
        point OK "$f: every expected message on stderr"
    else
        point FAIL "$f: $missing expected message(s) missing on stderr" "$KD_HPC --validate $f"
    fi
done

for f in jobs/*.cfg; do
    run 0 "--validate $f" --validate "$f"
done

run 0 "--dry-run jobs/bert-large.cfg" --dry-run jobs/bert-large.cfg
rows=$(grep -cE '^\[ *[0-9.]+s\] +[0-9]+ \| ' "$tmp/out")
[ "$rows" -eq 64 ] && point OK "dry run lists 64 ranks" || point FAIL "dry run lists 64 ranks (got $rows)" "$KD_HPC --dry-run jobs/bert-large.cfg"
grep -q "4 pipeline stages x 16 replicas" "$tmp/out" && point OK "dry run shows 4 x 16 pipelines" || point FAIL "dry run shows 4 x 16 pipelines"
grep -q "missing input: teacher.checkpoint" "$tmp/err" && point OK "dry run warns about the missing teacher" || point FAIL "dry run warns about the missing teacher"
grep -q "4. export (export)" "$tmp/out" && point OK "dry run prints the stage plan" || point FAIL "dry run prints the stage plan"

run 3 "--dry-run on 6 ranks with 4 pipeline stages" --dry-run --ranks 6 jobs/bert-large.cfg
grep -q "6 ranks cannot be split into pipelines of teacher.pipeline_stages = 4" "$tmp/err" && point OK "layout error names the numbers" || point FAIL "layout error names the numbers"

run 0 "--dry-run with a real checkpoint directory" --dry-run --ranks 3 \
    --set 'teacher.checkpoint="tests/fixtures/models/cls_pair"' --set teacher.pipeline_stages=3 \
    jobs/bert-base-sst2.cfg
grep -q "teacher: 3 layers, hidden 24, 2 heads, FFN 40" "$tmp/out" && point OK "the teacher shape comes from the checkpoint's config.json" || point FAIL "the teacher shape comes from the checkpoint's config.json"
mkdir -p "$tmp/badck" && echo '{"model_type": "bert", "hidden_size": "big"}' > "$tmp/badck/config.json"
run 3 "--dry-run with a malformed checkpoint config.json" --dry-run --set "teacher.checkpoint=\"$tmp/badck\"" jobs/bert-base-sst2.cfg
grep -q "badck/config.json: key 'vocab_size'" "$tmp/err" && point OK "the malformed config.json is named" || point FAIL "the malformed config.json is named"

run 0 "--dry-run of the demo plans the teacher store" --dry-run jobs/demo.cfg
grep -qE "/hidden +0\.020 GB" "$tmp/out" && point OK "store size per component (demo [CLS] hidden states, fp16: 0.020 GB)" || point FAIL "store size per component (demo [CLS] hidden states, fp16: 0.020 GB)" "$KD_HPC --dry-run jobs/demo.cfg"
run 0 "--dry-run over the store budget" --dry-run --set job.store_budget_gb=0.1 jobs/demo.cfg
grep -q 'is planned at 0.6 GB, over job.store_budget_gb = 0.1 GB' "$tmp/err" && point OK "a store over budget is warned about" || point FAIL "a store over budget is warned about"

run 0 "--dry-run with --set" --dry-run --set stages.distill.lr=1e-4 --set 'job.name="other"' jobs/demo.cfg
grep -q "lr = 0.0001;" "$tmp/out" && point OK "--set shows in the echo" || point FAIL "--set shows in the echo"
run 3 "--set with a bad value" --validate --set stages.distill.lr=fast jobs/demo.cfg
grep -q "^--set stages.distill.lr=fast: setting stages.\[3\].lr: expected number" "$tmp/err" && point OK "--set error names the override" || point FAIL "--set error names the override"
run 3 "--stage with an unknown name" --stage nosuch jobs/demo.cfg

run 2 "no job file" 
run 2 "two job files" jobs/demo.cfg jobs/demo.cfg
run 2 "unknown option" --frobnicate jobs/demo.cfg
run 2 "--ranks not a number" --ranks many jobs/demo.cfg
run 2 "--quiet with --verbose" -q -v jobs/demo.cfg
run 3 "job file that does not exist" --validate /nonexistent/job.cfg
grep -q "/nonexistent/job.cfg: cannot open job file: No such file or directory" "$tmp/err" && point OK "missing file named" || point FAIL "missing file named"
run 0 "--help" --help
grep -q "exit codes:" "$tmp/out" && point OK "--help lists exit codes" || point FAIL "--help lists exit codes"
run 0 "--version" --version
grep -q "^kd_hpc [0-9]" "$tmp/out" && point OK "--version prints the version" || point FAIL "--version prints the version"
run 0 "--help-keys=markdown" --help-keys=markdown
if grep -qF -f "$tmp/out" docs/job-config.md 2>/dev/null && \
   [ "$(grep -c '^| `' "$tmp/out")" -eq "$(grep -c '^| `' docs/job-config.md)" ]; then
    point OK "docs/job-config.md holds the current key table"
else
    point FAIL "docs/job-config.md holds the current key table (regenerate: kd_hpc --help-keys=markdown)"
fi

finish
