"""The workspace database: schema, migrations, case states and the append-only audit journal."""
