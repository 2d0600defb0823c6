# Evaluation: metrics on gathered predictions, the training-curve CSV,
# gnuplot PNGs of it, and the teacher-vs-student report (include/kd/eval/).
src_libkd_a_SOURCES += src/eval/metrics.c src/eval/curves.c src/eval/curves_read.c \
	src/eval/plot.c src/eval/report.c
noinst_HEADERS += include/kd/eval/metrics.h include/kd/eval/curves.h \
	include/kd/eval/plot.h include/kd/eval/report.h
