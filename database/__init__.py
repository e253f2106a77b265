"""Database mechanics below the rules: schema features the models alone cannot express."""
