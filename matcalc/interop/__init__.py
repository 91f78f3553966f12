"""Bridges to other systems.  Nothing here is imported by `import matcalc`:
the API loads a bridge (and the library behind it) only when it is used.

- `sympy_bridge` converts SymPy matrix expressions to Programs and results back;
- `sympy_numeric` evaluates SymPy matrix expressions on NumPy arrays (the oracle
  of the round-trip tests and of bench/sympy_cookbook.py), without importing SymPy.
"""
