# kd/loss.mk: distillation loss terms, one file each, registered by name in
# loss_registry.c; the loss set combines a stage's terms.
src_libkd_a_SOURCES += src/kd/loss_registry.c src/kd/views.c src/kd/loss_set.c \
	src/kd/loss_hard.c src/kd/loss_soft.c src/kd/loss_hidden.c src/kd/loss_attention.c
noinst_HEADERS += include/kd/kd/loss_term.h include/kd/kd/loss_set.h
