noinst_HEADERS += include/kd/cli/exit_codes.h
