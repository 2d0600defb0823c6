# Stage runner and manifest (fake stage implementations in a test registry:
# order, up to date, invalidation, --stage, --force, --resume, interruption,
# deleted outputs, atomic manifest) and training-state checkpoints.
check_PROGRAMS += tests/job/t_runner tests/io/t_train_state
tests_job_t_runner_SOURCES = tests/job/t_runner.c
tests_job_t_runner_LDADD = $(TEST_LIBS)
tests_io_t_train_state_SOURCES = tests/io/t_train_state.c
tests_io_t_train_state_LDADD = $(TEST_LIBS)
TESTS += tests/job/t_runner tests/io/t_train_state tests/job/runner_mpi.sh
EXTRA_DIST += tests/job/runner_mpi.sh
