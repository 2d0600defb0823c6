# schema documents
