# kernels: files are added as the layer grows
noinst_HEADERS += include/kd/kernels/dims.h
