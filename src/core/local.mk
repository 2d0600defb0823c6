src_libkd_a_SOURCES += src/core/error.c src/core/log.c src/core/atomic_file.c src/core/signals.c
noinst_HEADERS += include/kd/core/error.h include/kd/core/log.h include/kd/core/atomic_file.h include/kd/core/signals.h
src_libkd_a_SOURCES += src/core/rng.c
noinst_HEADERS += include/kd/core/rng.h
src_libkd_a_SOURCES += src/core/timers.c
noinst_HEADERS += include/kd/core/timers.h
src_libkd_a_SOURCES += src/core/text.c
noinst_HEADERS += include/kd/core/text.h
