# BERT model: size tables and arenas, forward, backward, heads, checkpoints.
src_libkd_a_SOURCES += src/core/arena.c src/model/bert_params.c \
	src/model/bert_forward.c src/model/bert_backward.c src/model/bert_heads.c \
	src/model/bert_checkpoint.c src/model/bert_optim.c src/model/bert_internal.h
noinst_HEADERS += include/kd/core/arena.h include/kd/model/bert.h \
	include/kd/model/bert_params.h
