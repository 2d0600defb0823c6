# kernels: files are added as the layer grows
noinst_HEADERS += include/kd/kernels/dims.h
src_libkd_a_SOURCES += src/kernels/gemm.c src/kernels/linear.c \
	src/kernels/gelu.c src/kernels/layernorm.c src/kernels/softmax.c \
	src/kernels/attention.c src/kernels/embedding.c src/kernels/dropout.c \
	src/kernels/losses.c src/kernels/elementwise.c src/kernels/threads.c
noinst_HEADERS += include/kd/kernels/gemm.h include/kd/kernels/linear.h \
	include/kd/kernels/gelu.h include/kd/kernels/layernorm.h \
	include/kd/kernels/softmax.h include/kd/kernels/attention.h \
	include/kd/kernels/embedding.h include/kd/kernels/dropout.h \
	include/kd/kernels/losses.h include/kd/kernels/elementwise.h \
	include/kd/kernels/vecmath.h include/kd/kernels/threads.h
