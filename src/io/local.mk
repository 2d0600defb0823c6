# HDF5 helpers (h5*.c) and the teacher store (schema, provenance, writer,
# reader, epoch shuffling).
src_libkd_a_SOURCES += src/io/h5.c src/io/h5_float.c src/io/h5_fletcher.c \
	src/io/teacher_store_schema.c \
	src/io/teacher_store_prov.c src/io/teacher_store_write.c src/io/teacher_store_batch.c \
	src/io/teacher_store_read.c src/io/teacher_store_shuffle.c
noinst_HEADERS += include/kd/io/h5.h include/kd/io/teacher_store.h \
	src/io/teacher_store_int.h
include src/io/data.mk
include src/io/cache.mk
