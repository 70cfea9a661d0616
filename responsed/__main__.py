"""`python -m responsed`: the same as the `responsed` command."""

from responsed import main

main()
