# init/local.mk: student initialisation, serial parts (layer map, teacher
# layer copies, the rank-r head factorisation). The ScaLAPACK-backed parts
# (PCA init, projection fit, the ablation) run over MPI in
# tests/mpi/linalg_tests.sh.
check_PROGRAMS += tests/init/t_student_init
TESTS += tests/init/t_student_init
tests_init_t_student_init_SOURCES = tests/init/t_student_init.c \
	tests/model/bert_testutil.c tests/model/bert_testutil.h
tests_init_t_student_init_CPPFLAGS = $(AM_CPPFLAGS) -DKD_TOP_SRCDIR='"$(abs_top_srcdir)"'
tests_init_t_student_init_LDADD = $(TEST_LIBS)
