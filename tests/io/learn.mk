# Learnability of the synthetic task (docs/synthetic-task.md): trains a
# teacher and a student without KD with the engine (~85 s on one core;
# `--check pair` runs the pair task's check, ~4 min).
# Built on request (`make tests/io/t_synthetic_learn`), not yet part of
# make check: its gap threshold has ~1.5 points of headroom in the worst
# seed and has not been checked on other CPUs.
EXTRA_PROGRAMS += tests/io/t_synthetic_learn
tests_io_t_synthetic_learn_SOURCES = tests/io/t_synthetic_learn.c
tests_io_t_synthetic_learn_LDADD = $(TEST_LIBS)
