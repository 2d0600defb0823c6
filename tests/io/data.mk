# data tests: the TSV reader with malformed fixtures (tests/io/tsv/) and SST-2,
# the synthetic task's properties, and tokenized datasets end to end (real
# files under $KD_SHARED/data are used when present, skipped otherwise).
check_PROGRAMS += tests/io/t_synthetic
tests_io_t_synthetic_SOURCES = tests/io/t_synthetic.c
tests_io_t_synthetic_LDADD = $(TEST_LIBS)
TESTS += tests/io/t_synthetic

check_PROGRAMS += tests/io/t_tsv
tests_io_t_tsv_SOURCES = tests/io/t_tsv.c
tests_io_t_tsv_LDADD = $(TEST_LIBS)
TESTS += tests/io/t_tsv

EXTRA_DIST += tests/io/tsv/good_single.tsv tests/io/tsv/bom_crlf.tsv \
	tests/io/tsv/pair.tsv tests/io/tsv/test_nolabel.tsv tests/io/tsv/regression.tsv \
	tests/io/tsv/names_train.tsv tests/io/tsv/names_dev_unknown.tsv \
	tests/io/tsv/int_range.tsv tests/io/tsv/missing_column.tsv \
	tests/io/tsv/duplicate_column.tsv tests/io/tsv/field_count.tsv \
	tests/io/tsv/bad_int_label.tsv tests/io/tsv/regression_bad.tsv \
	tests/io/tsv/invalid_utf8.tsv tests/io/tsv/nul_byte.tsv tests/io/tsv/empty.tsv \
	tests/io/tsv/header_only.tsv tests/io/tsv/mixed_bad.tsv

check_PROGRAMS += tests/io/t_dataset
tests_io_t_dataset_SOURCES = tests/io/t_dataset.c
tests_io_t_dataset_LDADD = $(TEST_LIBS)
TESTS += tests/io/t_dataset
