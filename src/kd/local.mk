# kd: distillation methods. Layer maps and the Aguilar et al. schedules here;
# the loss terms and their set in loss.mk.
src_libkd_a_SOURCES += src/kd/layer_map.c src/kd/schedule.c
noinst_HEADERS += include/kd/kd/layer_map.h include/kd/kd/schedule.h
