src_libkd_a_SOURCES += src/core/error.c src/core/log.c
noinst_HEADERS += include/kd/core/error.h include/kd/core/log.h
