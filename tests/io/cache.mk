# dataset cache tests: round trips (synthetic task, TSV fixtures), what
# rebuilds and what does not, corrupted / truncated / foreign files, SST-2
# timings (skipped without $KD_SHARED/data), and the golden h5dump of the
# schema. `t_dataset_cache --gen DIR` only writes the schema's sample file.
check_PROGRAMS += tests/io/t_dataset_cache
tests_io_t_dataset_cache_SOURCES = tests/io/t_dataset_cache.c
tests_io_t_dataset_cache_LDADD = $(TEST_LIBS)
TESTS += tests/io/t_dataset_cache tests/io/cache_schema.sh
EXTRA_DIST += tests/io/cache_schema.sh
