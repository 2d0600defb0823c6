# init/local.mk: student initialisation from a teacher (random, teacher
# layers, PCA subspace, least-squares projection fit).
src_libkd_a_SOURCES += src/init/student_init.c src/init/student_pca.c src/init/lowrank.c
noinst_HEADERS += include/kd/init/student_init.h include/kd/init/lowrank.h
