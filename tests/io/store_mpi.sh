#!/bin/sh
# store_mpi.sh: the teacher store written and read by 1, 2 and 4 ranks
# (oversubscribed, root-safe, each launch under a timeout), modelled on
# tests/mpi/mpi_tests.sh. Checks that every rank count and both writer
# paths (one writer, parallel HDF5) give identical dataset contents
# (digests of everything read back, and h5diff of the files when h5diff is
# installed), and that writers which never finish
# (a rank killed, ranks exiting, store_abort, an incomplete store) leave no
# file at the final path. TAP output; a failing point prints the command to
# re-run. Skips when configure found no launcher.
. "$KD_SRCDIR/tests/mpi/tap_mpi.sh"
h5diff=""
[ -n "${H5DUMP:-}" ] && [ -x "${H5DUMP%/*}/h5diff" ] && h5diff="${H5DUMP%/*}/h5diff"
[ -z "$h5diff" ] && h5diff=$(command -v h5diff 2>/dev/null)
bin="$KD_BUILDDIR/tests/io"

for np in 1 2 4; do
    mkdir -p "$tmp/np$np"
    launch $np "$bin/p_store" "$tmp/np$np"
    point "$(t $rc -eq 0)" "p_store on $np rank(s): write, parallel and serial read back (exit $rc in ${secs}s)"
done

# the two writer paths, same rank count: one writer (or a serial file) and
# parallel HDF5 store the same contents
for np in 1 2 4; do
    if [ -z "$h5diff" ]; then
        n=$((n + 1)); echo "ok $n # SKIP h5diff not installed"
        continue
    fi
    cmd="$h5diff -r $tmp/np$np/store_fp32.h5 $tmp/np$np/store_fp32_mpiio.h5"
    $cmd >"$tmp/out" 2>"$tmp/err"
    point "$(t $? -eq 0)" "h5diff on $np rank(s): store_fp32.h5 (one writer) = store_fp32_mpiio.h5 (parallel HDF5)"
done

for np in 2 4; do
    cmd="diff $tmp/np1/digests.txt $tmp/np$np/digests.txt"
    $cmd >"$tmp/out" 2>"$tmp/err"
    point "$(t $? -eq 0)" "digests of every dataset and of the epoch order: $np ranks = 1 rank"
    for s in fp32 fp16 bf16_cls fp32_mpiio fp16_deflate; do
        if [ -z "$h5diff" ]; then
            n=$((n + 1)); echo "ok $n # SKIP h5diff not installed"
            continue
        fi
        cmd="$h5diff -r $tmp/np1/store_$s.h5 $tmp/np$np/store_$s.h5"
        $cmd >"$tmp/out" 2>"$tmp/err"
        point "$(t $? -eq 0)" "h5diff: store_$s.h5 written by $np ranks = by 1 rank (datasets and attributes)"
    done
done

# Writers that never finish: nothing may appear at the final path.
for np in 1 2 4; do
    for mode in kill exit abort incomplete; do
        path="$tmp/np$np/$mode.h5"
        launch $np "$bin/p_store_abort" $mode "$path"
        case $mode in
        kill) point "$(t $rc -ne 0 -a $rc -ne 124 -a $secs -le 60)" \
                  "$mode on $np rank(s): the job ends (exit $rc in ${secs}s)" ;;
        exit|abort) point "$(t $rc -eq 0)" "$mode on $np rank(s): the writers return (exit $rc)" ;;
        incomplete)
            point "$(t $rc -eq 1)" "$mode on $np rank(s): store_finish fails on every rank (exit $rc)"
            grep -q "examples were never written" "$tmp/err"
            point "$(t $? -eq 0)" "$mode on $np rank(s): the message says what is missing" ;;
        esac
        point "$(t ! -e "$path")" "$mode on $np rank(s): no file at the final path"
        case $mode in
        abort|incomplete)
            left=$(ls "$path".tmp.* 2>/dev/null | wc -l)
            point "$(t "$left" -eq 0)" "$mode on $np rank(s): the temporary file is removed" ;;
        esac
    done
done

finish
