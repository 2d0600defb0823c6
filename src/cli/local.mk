src_libkd_a_SOURCES += src/cli/options.c
noinst_HEADERS += include/kd/cli/exit_codes.h include/kd/cli/options.h
