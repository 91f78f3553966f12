"""The engine: drives the rule tables (differentials, adjoints, algebra)."""
