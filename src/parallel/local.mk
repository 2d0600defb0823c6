src_libkd_a_SOURCES += src/parallel/comm.c
noinst_HEADERS += include/kd/parallel/comm.h
