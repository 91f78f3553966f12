"""The tables: differentials, elementwise functions, adjoints, algebra."""
