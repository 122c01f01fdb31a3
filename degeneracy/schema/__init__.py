"""Arrow schemas of every stored table, the catalog's DDL and views, and schema migrations.

Submodules are imported where needed: `arrays` and `tables` (Arrow schemas), `catalog` (DDL,
views, migrations), `kinds` (the array kind names).
"""
