# HDF5 helpers and teacher store: files added here
include src/io/data.mk
