check_PROGRAMS += tests/mpi/p_comm tests/mpi/p_abort
tests_mpi_p_comm_SOURCES = tests/mpi/p_comm.c
tests_mpi_p_comm_LDADD = $(TEST_LIBS)
tests_mpi_p_abort_SOURCES = tests/mpi/p_abort.c
tests_mpi_p_abort_LDADD = $(TEST_LIBS)
TESTS += tests/mpi/mpi_tests.sh
EXTRA_DIST += tests/mpi/mpi_tests.sh tests/mpi/tap_mpi.sh tests/tap.sh

# online distillation: the same student as offline (tests/mpi/online_tests.sh)
check_PROGRAMS += tests/mpi/st_diff
tests_mpi_st_diff_SOURCES = tests/mpi/st_diff.c
tests_mpi_st_diff_LDADD = $(TEST_LIBS)
TESTS += tests/mpi/online_tests.sh
EXTRA_DIST += tests/mpi/online_tests.sh
# PID/SID phase switches agree across ranks (kd_hpc on a small synthetic job)
TESTS += tests/mpi/sched_tests.sh
EXTRA_DIST += tests/mpi/sched_tests.sh
