src_libkd_a_SOURCES += src/parallel/comm.c src/parallel/layout.c
noinst_HEADERS += include/kd/parallel/comm.h include/kd/parallel/layout.h
src_libkd_a_SOURCES += src/parallel/timer_report.c
noinst_HEADERS += include/kd/parallel/timer_report.h
