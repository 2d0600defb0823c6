#!/bin/sh
# schema.sh: `h5dump -H -p` of a small generated teacher store (header,
# types, shapes, attributes, chunking and filters) against the golden
# hdf5-schemas/teacher_store.v1.ddl, with the file-name line normalised;
# and a full h5dump of the data, so that HDF5's own Fletcher32 code checks
# the checksums our faster one wrote (src/io/h5_fletcher.c).
# Skips when configure found no h5dump. After an intended schema change,
# regenerate the golden with KD_UPDATE_GOLDEN=1 and review the diff.
: "${KD_BUILDDIR:?}" "${KD_SRCDIR:?}"
if [ -z "${H5DUMP:-}" ]; then
    echo "1..0 # SKIP no h5dump (install hdf5-tools and re-run configure)"
    exit 0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
golden="$KD_SRCDIR/hdf5-schemas/teacher_store.v1.ddl"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "1..3"
cmd="$KD_BUILDDIR/tests/io/t_store_gen $tmp/teacher_store.h5"
if $cmd >"$tmp/out" 2>&1; then
    echo "ok 1 - small store generated"
else
    echo "not ok 1 - small store generated"
    echo "# re-run: $cmd"
    sed 's/^/#   /' "$tmp/out"
    exit 1
fi
"$H5DUMP" -H -p "$tmp/teacher_store.h5" |
    sed '1s|^HDF5 ".*" {$|HDF5 "teacher_store.h5" {|' >"$tmp/got.ddl"
if [ "${KD_UPDATE_GOLDEN:-0}" = 1 ]; then
    cp "$tmp/got.ddl" "$golden"
    echo "# golden rewritten: $golden"
fi
if diff -u "$golden" "$tmp/got.ddl" >"$tmp/diff"; then
    echo "ok 2 - h5dump -H -p matches hdf5-schemas/teacher_store.v1.ddl"
else
    echo "not ok 2 - h5dump -H -p matches hdf5-schemas/teacher_store.v1.ddl"
    echo "# re-run: $cmd && $H5DUMP -H -p $tmp/teacher_store.h5 | diff -u $golden -"
    sed 's/^/#   /' "$tmp/diff" | head -40
    exit 1
fi
cmd="$H5DUMP $tmp/teacher_store.h5"
if $cmd >/dev/null 2>"$tmp/err"; then
    echo "ok 3 - h5dump reads every dataset back (HDF5's own Fletcher32 check)"
else
    echo "not ok 3 - h5dump reads every dataset back (HDF5's own Fletcher32 check)"
    echo "# re-run: $cmd"
    sed 's/^/#   /' "$tmp/err" | head -20
    exit 1
fi
