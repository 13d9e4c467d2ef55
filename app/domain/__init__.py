"""Pure rules of ClientConnect Flow: no Flask, SQLAlchemy or SpiffWorkflow imports."""
