# Tokenized dataset cache (include/kd/io/dataset_cache.h) and its schema
# (hdf5-schemas/dataset_cache.v1.{md,ddl}).
src_libkd_a_SOURCES += src/io/dataset_cache.c
noinst_HEADERS += include/kd/io/dataset_cache.h
dist_schemas_DATA += hdf5-schemas/dataset_cache.v1.md hdf5-schemas/dataset_cache.v1.ddl
