# checkpoint tests
