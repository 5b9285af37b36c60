"""Reading silo CSV extracts and importing them into the workspace."""
