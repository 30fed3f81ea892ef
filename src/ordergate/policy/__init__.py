"""The policy DSL: strict YAML in, resolved limits and a canonical hash out."""
