#!/bin/sh
# sched_tests.sh: the PID/SID phase switches of distill stages happen on
# every rank at the same step (METHODS.md 2(e): the schedule is keyed on the
# global step and the global loss, so no rank may move on alone).
#
# A small synthetic job (teacher 4 layers of 32 finetuned for 4 steps,
# extract, student 2 layers of 16) runs four 12-step distill stages with a
# soft, a hidden ([CLS] cosine) and an attention loss, both mapped
# uniformly (student layers 1, 2), so each schedule has 3 phases:
#   pid-equal, sid-equal   equal split: phases start at steps 5 and 9
#   pid-threshold          switch_threshold 1e6: every finite loss is below,
#                          so a phase ends after its first step: steps 2, 3
#   sid-threshold          switch_threshold 0.87, inside the range of the
#                          first layer's loss: wherever the switch falls,
#                          every rank must agree, and no phase may outlast
#                          its equal share
# on 2 and 4 ranks with --verbose, where every rank prints the phase lines
# with a "[rank N]" prefix. The extract stage names no layers: the store
# gets what the losses map (also checked here, in the log).
# TAP output; each launch under a timeout; skips without a launcher.
. "$KD_SRCDIR/tests/mpi/tap_mpi.sh"

steps=12
phases=3
losses='losses = ( { kind = "soft"; }, { kind = "hidden"; metric = "cosine"; tokens = "cls"; },
                 { kind = "attention"; } );'
cat >"$tmp/sched.cfg" <<EOF
job = { name = "sched"; seed = 7; checkpoint_every = 0; };
data = { task = "synthetic"; synthetic_train = 256; synthetic_dev = 64; max_seq_len = 16; };
teacher = { layers = 4; hidden = 32; heads = 2; intermediate = 64; max_positions = 32;
            micro_batch = 16; };
student = { layers = 2; hidden = 16; heads = 2; intermediate = 32; };
stages = (
  { name = "teacher"; kind = "finetune"; max_steps = 4; batch = 32; lr = 1e-3; },
  { name = "extract"; kind = "extract"; },
  { name = "pid-equal"; kind = "distill"; method = "pid"; max_steps = $steps; batch = 16;
    lr = 1e-3; $losses },
  { name = "sid-equal"; kind = "distill"; method = "sid"; max_steps = $steps; batch = 16;
    lr = 1e-3; $losses },
  { name = "pid-threshold"; kind = "distill"; method = "pid"; max_steps = $steps; batch = 16;
    lr = 1e-3; switch_threshold = 1e6; $losses },
  { name = "sid-threshold"; kind = "distill"; method = "sid"; max_steps = $steps; batch = 16;
    lr = 1e-3; switch_threshold = 0.87; $losses }
);
EOF

# "STAGE PHASE STEP RANK" for every phase line of every rank
switches() {
    sed -n 's/.*\[rank \([0-9]*\)\] stage "\([^"]*\)": step \([0-9]*\)\/[0-9]*: [PS]ID phase \([0-9]*\) of [0-9]*.*/\2 \4 \3 \1/p' \
        "$tmp/out"
}

# The step at which every rank entered PHASE of STAGE, or a reason why
# there is none: "mixed a,b" (ranks disagree), "ranks k" (not every rank).
agreed_step() {
    switches | awk -v s="$1" -v p="$2" -v np="$3" '
        $1 == s && $2 == p { n++; if (!($3 in seen)) { seen[$3] = 1; list = list sep $3; sep = "," } }
        END { k = 0; for (x in seen) k++
              if (n != np) print "ranks " n + 0; else if (k != 1) print "mixed " list; else print list }'
}

for np in 2 4; do
    launch $np "$KD_BUILDDIR/src/kd_hpc" --verbose --set "job.output_dir=\"$tmp/run$np\"" \
        "$tmp/sched.cfg"
    point "$(t $rc -eq 0 -a $secs -le 60)" "sched job on $np ranks (exit $rc in ${secs}s)"
    grep -q 'stage "extract": also storing /hidden/layer_{02, 04} (\[CLS\]): stage "pid-equal" losses.\[1\] (hidden) maps them' "$tmp/out"
    point "$(t $? -eq 0)" "$np ranks: the extract stage stores the hidden layers the losses map"
    for stage in pid-equal sid-equal pid-threshold sid-threshold; do
        prev=1
        for p in $(seq 2 $phases); do
            got=$(agreed_step "$stage" "$p" "$np")
            case "$stage" in
            *-equal) want=$(( ((p - 1) * steps + phases - 1) / phases + 1 )) ;;
            pid-threshold) want=$p ;;
            *) want="" ;;
            esac
            # equal share: phase p has begun by step ceil((p-1) S / P) + 1
            bound=$(( ((p - 1) * steps + phases - 1) / phases + 1 ))
            if [ -n "$want" ]; then
                point "$(t "$got" = "$want")" \
                    "$np ranks, $stage: every rank enters phase $p at step $want (got $got)"
            else
                ok=0
                case "$got" in ''|*[!0-9]*) ;; *) [ "$got" -gt "$prev" ] && [ "$got" -le "$bound" ] && ok=1 ;; esac
                point "$ok" "$np ranks, $stage: every rank enters phase $p at the same step, after phase $((p - 1)) and by step $bound (got $got)"
                case "$got" in ''|*[!0-9]*) ;; *) prev=$got ;; esac
            fi
        done
    done
done
finish
