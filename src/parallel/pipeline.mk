# Pipeline-parallel teacher: partition, GPipe forward, 1F1B training and the
# optimizer's reduction hooks of a stage (include/kd/parallel/pipeline.h).
src_libkd_a_SOURCES += src/parallel/pipeline.c src/parallel/pipeline_forward.c \
	src/parallel/pipeline_train.c src/parallel/pipeline_sync.c \
	src/parallel/pipeline_internal.h
noinst_HEADERS += include/kd/parallel/pipeline.h
