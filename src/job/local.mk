src_libkd_a_SOURCES += src/job/keys.c src/job/key_values.c src/job/job_load.c \
	src/job/job_errors.c src/job/overrides.c src/job/job_check.c src/job/job_echo.c src/job/plan.c src/job/stage.c
noinst_HEADERS += include/kd/job/job.h include/kd/job/keys.h include/kd/job/job_read.h include/kd/job/plan.h include/kd/job/stage.h
