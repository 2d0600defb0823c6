# teacher store tests: HDF5 helpers and round trips of every dataset in
# every precision (single process), refusals (provenance, corruption,
# interrupted writes), writes by 1, 2 and 4 ranks compared, and the golden
# h5dump of the schema. t_store_gen only generates the schema's sample file.
STORE_FIXTURE = tests/io/t_store_fixture.c tests/io/t_store_fixture.h
STORE_TESTS = tests/io/t_store_h5 tests/io/t_store tests/io/t_store_checks
check_PROGRAMS += $(STORE_TESTS) tests/io/t_store_gen tests/io/p_store \
	tests/io/p_store_abort
TESTS += $(STORE_TESTS) tests/io/store_mpi.sh tests/io/schema.sh
EXTRA_DIST += tests/io/store_mpi.sh tests/io/schema.sh

tests_io_t_store_h5_SOURCES = tests/io/t_store_h5.c
tests_io_t_store_h5_LDADD = $(TEST_LIBS)
tests_io_t_store_SOURCES = tests/io/t_store.c $(STORE_FIXTURE)
tests_io_t_store_LDADD = $(TEST_LIBS)
tests_io_t_store_checks_SOURCES = tests/io/t_store_checks.c $(STORE_FIXTURE)
tests_io_t_store_checks_LDADD = $(TEST_LIBS)
tests_io_t_store_gen_SOURCES = tests/io/t_store_gen.c $(STORE_FIXTURE)
tests_io_t_store_gen_LDADD = $(TEST_LIBS)
tests_io_p_store_SOURCES = tests/io/p_store.c $(STORE_FIXTURE)
tests_io_p_store_LDADD = $(TEST_LIBS)
tests_io_p_store_abort_SOURCES = tests/io/p_store_abort.c $(STORE_FIXTURE)
tests_io_p_store_abort_LDADD = $(TEST_LIBS)

# Store throughput benchmark (not a test): built only on request with
# `make bench/store_bench`; bench/store_bench.sh runs it.
EXTRA_PROGRAMS += bench/store_bench
bench_store_bench_SOURCES = bench/store_bench.c
bench_store_bench_LDADD = $(KD_LIBS)
EXTRA_DIST += bench/store_bench.sh
