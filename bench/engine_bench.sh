#!/bin/sh
# engine_bench.sh: the BERT engine (bench/engine_bench) against PyTorch 1.13
# (Debian, OpenBLAS), PyTorch 2.x (PyPI) and ONNX Runtime (inference only),
# interleaved in one invocation. Run from a build tree:
#   make bench/engine_bench && sh $srcdir/bench/engine_bench.sh [options]
# Options:
#   --quick        mini and tiny4, batch 8, 1 thread, 3 rounds (~3 minutes)
#   --rounds R     rounds over every configuration (default 2: the full
#                  run then takes ~40 minutes on 2 cores; 3 takes ~60)
#   --models LIST  e.g. "mini tiny4" (default: base small mini tiny4)
#   --threads LIST (default: 1 2)   --batches LIST (default: 8 32)
#   --out FILE     raw JSON lines (default ./engine-bench.PID.jsonl)
#   --table FILE   re-print the tables of an earlier run's JSON lines and exit
#   --quiet PCT    before each configuration, wait (up to 30 minutes) until
#                  the machine is at most PCT% busy over one second while
#                  nothing of ours runs (default 10; 100 disables)
#   --others PCT   repeat a process (3 times at most) when other processes
#                  used more than PCT% of one core while it ran (default 10)
# Environment: ENGINE_BENCH (default ./bench/engine_bench), TORCH1_PY
# (default /usr/bin/python3), TORCH2_PY (default /opt/torch2/bin/python).
#
# Method (docs/performance.md): for each round, model, thread count and
# batch, the four systems run back to back, each in its own process with
# OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = MKL_NUM_THREADS = threads (the
# engine's own OpenMP team and its BLAS follow them; on a busy machine it
# drops to one thread while it finds itself contended, which the notes
# under the tables report; OMP_WAIT_POLICY is left as the caller has it); odd
# rounds run them in the order engine, torch 1.13, torch 2.x, ONNX Runtime,
# even rounds in the reverse order. Each process reports the median of its
# timed passes; the table shows the median over rounds. BERT-base runs
# fewer passes per process (a training step at batch 32 takes tens of
# seconds); torch_bert.py always adds two warm-up passes of its own.
set -e
here=$(cd "$(dirname "$0")" && pwd)
engine=${ENGINE_BENCH:-./bench/engine_bench}
py1=${TORCH1_PY:-/usr/bin/python3}
py2=${TORCH2_PY:-/opt/torch2/bin/python}
peer=$here/torch_bert.py
rounds=2
models="base small mini tiny4"
threads_list="1 2"
batches="8 32"
out=./engine-bench.$$.jsonl
table_only=""
quiet=10
max_others=10
while [ $# -gt 0 ]; do
    case $1 in
    --quick) models="mini tiny4" threads_list=1 batches=8 rounds=3 ;;
    --rounds) rounds=$2; shift ;;
    --models) models=$2; shift ;;
    --threads) threads_list=$2; shift ;;
    --batches) batches=$2; shift ;;
    --out) out=$2; shift ;;
    --table) table_only=$2; shift ;;
    --quiet) quiet=$2; shift ;;
    --others) max_others=$2; shift ;;
    *) echo "engine_bench.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

# Markdown tables from the JSON lines in $1 (median over rounds).
tables() {
    "$py1" - "$1" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
med = statistics.median
def key(r): return (r["model"], r["threads"], r["batch"])
order = {"base": 0, "small": 1, "mini": 2, "tiny4": 3}
configs = sorted({key(r) for r in rows}, key=lambda k: (order.get(k[0], 9), k[1], k[2]))
def pick(k, mode, pred):
    return [r for r in rows if key(r) == k and r["mode"] == mode and pred(r["peer"])]
systems = [("kd_hpc", lambda p: p == "kd_hpc"),
           ("torch 1.13", lambda p: p.startswith("torch-1.")),
           ("torch 2.x", lambda p: p.startswith("torch-2.")),
           ("ONNX Runtime", lambda p: p.startswith("onnxruntime"))]
def fmt(x): return "–" if x is None else ("%.0f" % x if x >= 100 else "%.1f" % x)
notes = []
for mode, title in (("infer", "Inference"), ("train", "Training step")):
    syst = systems if mode == "infer" else systems[:3]
    print("\n### %s (tokens/s, seq 128, median over rounds)\n" % title)
    vs = " | kd_hpc / best torch | kd_hpc / best peer" if mode == "infer" else " | kd_hpc / best peer"
    print("| model | thr | batch | " + " | ".join(n for n, _ in syst) + vs +
          " | GFLOP/s | sgemm GFLOP/s | share | peak RSS / bound MiB |")
    print("|---|---|---|" + "---|" * (len(syst) + vs.count("|")) + "---|---|---|---|")
    for k in configs:
        tok, nr = {}, {}
        for n, pred in syst:
            v = [r["tok_s"] for r in pick(k, mode, pred)]
            tok[n] = med(v) if v else None
            nr[n] = len(v)
        if tok["kd_hpc"] is None:
            continue
        eng = pick(k, mode, systems[0][1])
        def versus(cands):
            c = [(tok[n], n) for n in cands if tok[n] is not None]
            if not c:
                return "–"
            b = max(c)
            return "%.2f× (%s)" % (tok["kd_hpc"] / b[0], b[1])
        ratio = versus([n for n, _ in syst[1:]])
        if mode == "infer":
            ratio = versus(["torch 1.13", "torch 2.x"]) + " | " + ratio
        gfs = med([r["gflop_s"] for r in eng])
        sg = [r["sgemm_gflop_s"] for r in eng if "sgemm_gflop_s" in r]
        sgm = med(sg) if sg else None
        share = "%.0f%%" % (100 * gfs / sgm) if sgm else "–"
        if sg and min(sg) < 0.9 * max(sg):
            notes.append("%s %s thr %d batch %d: sgemm rate varied %.0f–%.0f GFLOP/s over rounds"
                         % (title, k[0], k[1], k[2], min(sg), max(sg)))
        rss, bound = max(r["rss_mib"] for r in eng), eng[0]["bound_mib"]
        print("| %s | %d | %d | " % k + " | ".join(fmt(tok[n]) for n, _ in syst) +
              " | %s | %.1f | %s | %s | %.0f / %.0f (%.2f×) |"
              % (ratio, gfs, fmt(sgm), share, rss, bound, rss / bound))
        if min(nr.values()) != max(nr.values()):
            notes.append("%s %s thr %d batch %d: rounds per system %s"
                         % (title, k[0], k[1], k[2], nr))
print("\n### Where the engine's time goes (median seconds per pass)\n")
print("| model | thr | batch | mode | total | GEMM dense | GEMM attention | rest "
      "| forward | backward | clip | AdamW | zero grad |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for k in configs:
    for mode in ("infer", "train"):
        eng = pick(k, mode, systems[0][1])
        if not eng:
            continue
        m = lambda f: med([f(r) for r in eng])
        ph = (lambda n: "%.3f" % m(lambda r: r["phases"][n])) if mode == "train" else (lambda n: "")
        print("| %s | %d | %d | %s | %.3f | %.3f | %.3f | %.3f | %s | %s | %s | %s | %s |"
              % (k + (mode, m(lambda r: r["median_s"]), m(lambda r: r["gemm_dense_s"]),
                      m(lambda r: r["gemm_attn_s"]), m(lambda r: r["other_s"]),
                      ph("forward"), ph("backward"), ph("clip"), ph("adamw"), ph("zero_grad"))))
sg = [r for r in rows if r["mode"] == "sgemm"]
if sg:
    print("\nBLAS: %s" % sg[0].get("blas", "?"))
for r in rows:
    if r.get("contended_samples", 0) > 0 and r["mode"] == "train":
        notes.append("kd_hpc %s thr %d batch %d round %d: the engine found the machine contended "
                     "in %d of %d load samples and ran those stretches on one thread"
                     % (r["model"], r["threads"], r["batch"], r["round"],
                        r["contended_samples"], r["load_samples"]))
for r in rows:
    if r.get("others_pct", 0) > 10 and r["mode"] != "sgemm":
        notes.append("%s %s %s thr %d batch %d round %d: other processes took %d%% of a core"
                     % (r["peer"], r["mode"], r["model"], r["threads"], r["batch"], r["round"],
                        r["others_pct"]))
for n in notes:
    print("- note: " + n)
EOF
}

if [ -n "$table_only" ]; then
    tables "$table_only"
    exit 0
fi
[ -x "$engine" ] || { echo "engine_bench.sh: $engine not found (make bench/engine_bench)" >&2; exit 2; }
log=${out%.jsonl}.log
: > "$out"
: > "$log"

# ---- the machine and the software ----------------------------------------
flags=$(sed -n 's/^flags[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
has() { case " $flags " in *" $1 "*) echo yes ;; *) echo no ;; esac; }
echo "# cpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), $(nproc) cores," \
     "$(lscpu | sed -n 's/^L2 cache:[[:space:]]*//p') L2"
echo "# flags: avx2 $(has avx2), fma $(has fma), avx512f $(has avx512f)," \
     "avx512_bf16 $(has avx512_bf16), amx_tile $(has amx_tile)"
echo "# kernel: $(uname -sr); load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# peers: $("$py1" -c 'import torch; print("torch", torch.__version__)' 2>/dev/null)" \
     "($py1);" \
     "$("$py2" -c 'import torch, transformers, onnxruntime as o; print("torch", torch.__version__, "transformers", transformers.__version__, "onnxruntime", o.__version__)' 2>/dev/null)" \
     "($py2)"
echo "# engine: $engine ($("${CC:-cc}" --version 2>/dev/null | head -n 1))"
echo "# rounds $rounds; models $models; threads $threads_list; batches $batches"
echo "# raw JSON lines: $out; peer stderr: $log"

# Passes per process: engine "passes warmup train_passes train_warmup",
# peer "passes" (torch_bert.py warms up twice by itself).
passes_for() { # model batch
    case $1/$2 in
    base/32) echo "1 1 1 1|1" ;;
    base/*) echo "2 1 2 1|2" ;;
    */32) echo "3 1 3 1|3" ;;
    *) echo "5 2 5 2|5" ;;
    esac
}

# CPU busy percentage of the whole machine over one second (/proc/stat:
# user nice system idle iowait irq softirq steal).
busy() {
    set -- $(head -n 1 /proc/stat)
    _a=$(($2 + $3 + $4 + $7 + $8 + $9)) _i=$(($5 + $6))
    sleep 1
    set -- $(head -n 1 /proc/stat)
    _b=$(($2 + $3 + $4 + $7 + $8 + $9)) _j=$(($5 + $6))
    echo $((100 * (_b - _a) / (_b - _a + _j - _i + 1)))
}
wait_quiet() { # label
    [ "$quiet" -ge 100 ] && return 0
    _w=0
    while _u=$(busy) && [ "$_u" -gt "$quiet" ] && [ $_w -lt 1800 ]; do
        sleep 9
        _w=$((_w + 10))
    done
    if [ $_w -gt 0 ]; then
        echo "#   waited $_w s for a quiet machine before $1 (now $_u% busy)"
    fi
}


# Busy jiffies of the whole machine (user nice system irq softirq steal).
busy_ticks() {
    set -- $(head -n 1 /proc/stat)
    echo $(($2 + $3 + $4 + $7 + $8 + $9))
}
clk=$(getconf CLK_TCK 2>/dev/null || echo 100)
tmp=${out%.jsonl}.tmp

# One process of a system; sets _f, the CPU time other processes used
# meanwhile, in % of one core over the run (busy jiffies of the machine
# minus the process's own user + system time; needs GNU time).
run_once() { # system model threads batch
    _p=$(passes_for "$2" "$4")
    _pp=${_p#*|}
    _ep=${_p%|*}
    _b0=$(busy_ticks)
    _rc=0
    case $1 in
    engine) set -- "$engine" --model "$2" --threads "$3" --batch "$4" \
                $(echo "$_ep" | awk '{ print "--passes", $1, "--warmup", $2, "--train-passes", $3, "--train-warmup", $4 }') ;;
    torch1) set -- "$py1" "$peer" --model "$2" --threads "$3" --batch "$4" --passes "$_pp" ;;
    torch2) set -- "$py2" "$peer" --model "$2" --threads "$3" --batch "$4" --passes "$_pp" ;;
    ort) set -- "$py2" "$peer" --model "$2" --threads "$3" --batch "$4" --passes "$_pp" \
             --modes none --onnx ;;
    esac
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f "%e %U %S" -o "$tmp.time" "$@" > "$tmp.out" 2>> "$log" || _rc=$?
        set -- $(tail -n 1 "$tmp.time")
    else
        _s0=$(date +%s)
        "$@" > "$tmp.out" 2>> "$log" || _rc=$?
        set -- $(($(date +%s) - _s0)) 0 0
    fi
    _e=$1
    _f=$(awk -v d="$(($(busy_ticks) - _b0))" -v hz="$clk" -v u="$2" -v s="$3" -v e="$1" \
         -v known="$([ -x /usr/bin/time ] && echo 1 || echo 0)" \
         'BEGIN { f = known ? (d / hz - u - s) / (e > 0 ? e : 1) * 100 : 0;
                  printf "%d", f < 0 ? 0 : f }')
    grep -v '^{' "$tmp.out" >> "$log" || true
    return $_rc
}

# One measurement: run_once, repeated (up to 4 attempts, each after waiting
# for a quiet machine) while other processes took more than max_others %
# of a core (--others, default 10); the JSON lines of the least disturbed
# attempt are kept, tagged with the round and that percentage.
run() { # system model threads batch
    _try=1 _best=1000
    while :; do
        export OPENBLAS_NUM_THREADS=$3 OMP_NUM_THREADS=$3 MKL_NUM_THREADS=$3
        if ! run_once "$@"; then
            echo "# FAILED: $1 $2 threads $3 batch $4 (see $log)"
            return 0
        fi
        echo "#   $1 $2 t$3 b$4: ${_e} s, others ${_f}% of a core" >> "$log"
        if [ "$_f" -lt "$_best" ]; then
            _best=$_f
            mv "$tmp.out" "$tmp.best"
        fi
        [ "$_f" -le "$max_others" ] || [ $_try -ge 4 ] && break
        echo "#   $1 $2 threads $3 batch $4: other processes took ${_f}% of a core, again"
        wait_quiet "$1 $2 threads $3 batch $4"
        _try=$((_try + 1))
    done
    grep '^{' "$tmp.best" | sed "s/^{/{\"round\": $r, \"others_pct\": $_best, /" >> "$out"
}

start=$(date +%s)
r=1
while [ "$r" -le "$rounds" ]; do
    if [ $((r % 2)) -eq 1 ]; then order="engine torch1 torch2 ort"; else order="ort torch2 torch1 engine"; fi
    echo "# round $r/$rounds ($order) at +$(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg)"
    for m in $models; do
        for t in $threads_list; do
            for b in $batches; do
                wait_quiet "$m threads $t batch $b"
                for s in $order; do
                    run "$s" "$m" "$t" "$b"
                done
            done
        done
    done
    r=$((r + 1))
done
rm -f "$tmp.out" "$tmp.best" "$tmp.time"
echo "# done in $(( $(date +%s) - start )) s, load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
tables "$out"
