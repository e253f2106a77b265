"""`flask --app app …` commands (CLI): thin wrappers over the rules."""
