"""python -m matcalc: the command line."""
from .cli import main

main()
