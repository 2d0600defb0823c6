# export/local.mk: the exported student as transformers sees it. The
# helper prints kd_hpc's own prediction; the runner compares it with
# transformers' when a Python with transformers is available (optional).
check_PROGRAMS += tests/export/t_export_predict
tests_export_t_export_predict_SOURCES = tests/export/t_export_predict.c
tests_export_t_export_predict_LDADD = $(TEST_LIBS)
TESTS += tests/export/hf_load.sh
EXTRA_DIST += tests/export/hf_load.sh tests/export/hf_load.py
