#!/bin/sh
# cache_schema.sh: `h5dump -H -p` of a small generated dataset cache (header,
# types, shapes, attributes, chunking and filters) against the golden
# hdf5-schemas/dataset_cache.v1.ddl, and a full h5dump of the data (HDF5's
# own Fletcher32 and inflate read every chunk back).
# Normalised before the diff: the file-name line, and each chunked
# dataset's SIZE line, whose byte count is deflate's output and so depends on
# the zlib build, not on the schema.
# Skips when configure found no h5dump. After an intended schema change,
# regenerate the golden with KD_UPDATE_GOLDEN=1 and review the diff.
: "${KD_BUILDDIR:?}" "${KD_SRCDIR:?}"
if [ -z "${H5DUMP:-}" ]; then
    echo "1..0 # SKIP no h5dump (install hdf5-tools and re-run configure)"
    exit 0
fi
golden="$KD_SRCDIR/hdf5-schemas/dataset_cache.v1.ddl"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
file="$tmp/cache/train.h5"
echo "1..3"
cmd="$KD_BUILDDIR/tests/io/t_dataset_cache --gen $tmp"
if $cmd >"$tmp/out" 2>&1 && [ -f "$file" ]; then
    echo "ok 1 - small dataset cache generated"
else
    echo "not ok 1 - small dataset cache generated"
    echo "# re-run: $cmd"
    sed 's/^/#   /' "$tmp/out"
    exit 1
fi
"$H5DUMP" -H -p "$file" |
    sed -e '1s|^HDF5 ".*" {$|HDF5 "train.h5" {|' \
        -e 's|^\( *\)SIZE [0-9][0-9]* ([0-9.]*:1 COMPRESSION)$|\1SIZE (deflated bytes)|' \
        >"$tmp/got.ddl"
if [ "${KD_UPDATE_GOLDEN:-0}" = 1 ]; then
    cp "$tmp/got.ddl" "$golden"
    echo "# golden rewritten: $golden"
fi
if diff -u "$golden" "$tmp/got.ddl" >"$tmp/diff"; then
    echo "ok 2 - h5dump -H -p matches hdf5-schemas/dataset_cache.v1.ddl"
else
    echo "not ok 2 - h5dump -H -p matches hdf5-schemas/dataset_cache.v1.ddl"
    echo "# re-run: $cmd && $H5DUMP -H -p $file | diff -u $golden -"
    sed 's/^/#   /' "$tmp/diff" | head -40
    exit 1
fi
cmd="$H5DUMP $file"
if $cmd >/dev/null 2>"$tmp/err"; then
    echo "ok 3 - h5dump reads every dataset back (HDF5's own Fletcher32 and inflate)"
else
    echo "not ok 3 - h5dump reads every dataset back (HDF5's own Fletcher32 and inflate)"
    echo "# re-run: $cmd"
    sed 's/^/#   /' "$tmp/err" | head -20
    exit 1
fi
