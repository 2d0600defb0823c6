# schema documents: for each HDF5 product, prose (.md) and the golden
# `h5dump -H -p` of a small generated file (.ddl); README.md has the
# versioning rule.
dist_schemas_DATA += hdf5-schemas/README.md hdf5-schemas/teacher_store.v1.md \
	hdf5-schemas/teacher_store.v1.ddl hdf5-schemas/train_state.v1.md \
	hdf5-schemas/train_state.v1.ddl
