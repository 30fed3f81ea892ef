"""The gate's rules: one module per family, each rule a plain function
`(RuleContext) -> Violation | None`. `gate.table` registers them with their codes and order."""
