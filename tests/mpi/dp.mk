# mpi/dp.mk: data-parallel student training (parallel/dp.h) at 1, 2 and 4
# ranks against one process holding the whole batch, run by dp_tests.sh.
check_PROGRAMS += tests/mpi/p_dp
tests_mpi_p_dp_SOURCES = tests/mpi/p_dp.c
tests_mpi_p_dp_LDADD = $(TEST_LIBS)
TESTS += tests/mpi/dp_tests.sh
EXTRA_DIST += tests/mpi/dp_tests.sh
