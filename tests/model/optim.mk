# optimizer tests: AdamW / Adam against PyTorch trajectories, clipping,
# resume, and the train20 fixture's first update (t_optim); schedules and
# the train20 learning rates (t_lr_schedule). Fixtures are written by
# tests/gen/make_optim_cases.py (not run by make check).
OPTIM_TEST_CPPFLAGS = $(AM_CPPFLAGS) -DKD_TOP_SRCDIR='"$(abs_top_srcdir)"'

check_PROGRAMS += tests/model/t_optim tests/model/t_lr_schedule
TESTS += tests/model/t_optim tests/model/t_lr_schedule

tests_model_t_optim_SOURCES = tests/model/t_optim.c
tests_model_t_optim_CPPFLAGS = $(OPTIM_TEST_CPPFLAGS)
tests_model_t_optim_LDADD = $(TEST_LIBS)

tests_model_t_lr_schedule_SOURCES = tests/model/t_lr_schedule.c
tests_model_t_lr_schedule_CPPFLAGS = $(OPTIM_TEST_CPPFLAGS)
tests_model_t_lr_schedule_LDADD = $(TEST_LIBS)

EXTRA_DIST += tests/gen/make_optim_cases.py \
	tests/fixtures/optim/adamw.safetensors \
	tests/fixtures/optim/adam.safetensors \
	tests/fixtures/optim/adamw_noclip.safetensors
