# parallel/dp.mk: data-parallel student training: bucketed, overlapped
# gradient all-reduce (dp.c), its bucket table (dp_buckets.c), the
# row-sparse sum of the word embeddings (dp_sparse.c) and the split
# of a global batch over the ranks (dp_shard.c).
src_libkd_a_SOURCES += src/parallel/dp.c src/parallel/dp_buckets.c src/parallel/dp_shard.c \
	src/parallel/dp_sparse.c
noinst_HEADERS += include/kd/parallel/dp.h include/kd/parallel/dp_internal.h
