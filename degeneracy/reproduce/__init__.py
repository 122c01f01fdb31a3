"""The paper's table, cell by cell: preset sweep specs per scale (`specs/`), and the run that
trains, analyzes and reports them (`degeneracy reproduce`)."""
