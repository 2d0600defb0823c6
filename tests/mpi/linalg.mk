# mpi/linalg.mk: the ScaLAPACK drivers (PCA, least squares) at 1, 2 and 4
# ranks against serial references, and equal across rank counts.
check_PROGRAMS += tests/mpi/p_linalg
tests_mpi_p_linalg_SOURCES = tests/mpi/p_linalg.c
tests_mpi_p_linalg_LDADD = $(TEST_LIBS)
TESTS += tests/mpi/linalg_tests.sh
EXTRA_DIST += tests/mpi/linalg_tests.sh
check_PROGRAMS += tests/mpi/p_linalg_init
tests_mpi_p_linalg_init_SOURCES = tests/mpi/p_linalg_init.c \
	tests/model/bert_testutil.c tests/model/bert_testutil.h
tests_mpi_p_linalg_init_CPPFLAGS = $(AM_CPPFLAGS) -DKD_TOP_SRCDIR='"$(abs_top_srcdir)"'
tests_mpi_p_linalg_init_LDADD = $(TEST_LIBS)
