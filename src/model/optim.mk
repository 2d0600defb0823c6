# Training pieces of the model layer: AdamW / Adam over a flat parameter
# block, learning-rate schedules, gradient clipping and accumulation helpers.
src_libkd_a_SOURCES += src/model/optim.c src/model/grad_util.c src/model/lr_schedule.c
noinst_HEADERS += include/kd/model/optim.h include/kd/model/lr_schedule.h
