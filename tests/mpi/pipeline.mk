# Pipeline-parallel teacher: model slices against the whole model (single
# process, t_bert_slice), and the pipeline runtime against one rank at 1, 2
# and 4 ranks (tests/mpi/pipeline_tests.sh runs p_pipeline).
check_PROGRAMS += tests/model/t_bert_slice
TESTS += tests/model/t_bert_slice
tests_model_t_bert_slice_SOURCES = tests/model/t_bert_slice.c tests/model/bert_testutil.c \
	tests/model/bert_testutil.h
tests_model_t_bert_slice_CPPFLAGS = $(AM_CPPFLAGS) -DKD_TOP_SRCDIR='"$(abs_top_srcdir)"'
tests_model_t_bert_slice_LDADD = $(TEST_LIBS)

check_PROGRAMS += tests/mpi/p_pipeline
tests_mpi_p_pipeline_SOURCES = tests/mpi/p_pipeline.c
tests_mpi_p_pipeline_LDADD = $(TEST_LIBS)
TESTS += tests/mpi/pipeline_tests.sh
EXTRA_DIST += tests/mpi/pipeline_tests.sh
