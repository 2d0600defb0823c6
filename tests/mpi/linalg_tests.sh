#!/bin/sh
# linalg_tests.sh: parallel/scalapack.h at 1, 2 and 4 ranks (oversubscribed,
# root-safe, each launch under a timeout). p_linalg checks PCA and least
# squares against serial double references on every launch, with rows
# shared unevenly ("uneven": a rank with no rows at 4 ranks) or with rank 0
# empty ("first-empty", where rank 0 still carries the ridge rows), and
# block sizes 8 (a real block-cyclic spread of d = 48) and 32; then every
# launch's results are compared with the 1-rank run (1e-9). Then
# p_linalg_init: PCA-initialised student vs random student (hidden-state
# MSE), equal across rank counts (1e-4). TAP output; the programs' own TAP
# lines and numbers are echoed as comments.
. "$KD_SRCDIR/tests/mpi/tap_mpi.sh"
bin="$KD_BUILDDIR/tests/mpi/p_linalg"
for np in 1 2 4; do
    for case in "uneven 8" "first-empty 32"; do
        set -- $case
        launch $np "$bin" $1 $2 "$tmp/r_$1_$2_np$np.bin"
        point "$(t $rc -eq 0)" "p_linalg on $np rank(s), $1 rows, nb $2 (exit $rc in ${secs}s)"
        grep '^\(not \)\?ok' "$tmp/out" | sed 's/^/#   /'
    done
done
for np in 2 4; do
    for case in "uneven 8" "first-empty 32"; do
        set -- $case
        cmd="$bin --compare $tmp/r_uneven_8_np1.bin $tmp/r_$1_$2_np$np.bin"
        $cmd >"$tmp/out" 2>"$tmp/err"
        point "$(t $? -eq 0)" "$np ranks ($1, nb $2) = 1 rank: $(grep 'max diff' "$tmp/out" | sed 's/.*max diff/max diff/')"
    done
done
# student initialisation by PCA and the PDGELS-fitted projection: the
# ablation against random students, then the MSEs across rank counts (1e-4)
bin="$KD_BUILDDIR/tests/mpi/p_linalg_init"
for np in 1 2 4; do
    launch $np "$bin" "$tmp/init_np$np.bin"
    point "$(t $rc -eq 0)" "p_linalg_init on $np rank(s): PCA student starts below random (exit $rc in ${secs}s)"
    grep '^\(#\|\(not \)\?ok\)' "$tmp/out" | sed 's/^/#   /'
done
for np in 2 4; do
    cmd="$bin --compare $tmp/init_np1.bin $tmp/init_np$np.bin"
    $cmd >"$tmp/out" 2>"$tmp/err"
    point "$(t $? -eq 0)" "initialisation MSEs, $np ranks = 1 rank: $(grep 'max rel diff' "$tmp/out" | sed 's/.*max rel diff/max rel diff/')"
done
finish
