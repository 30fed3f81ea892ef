from ordergate.gate.table import ELSEWHERE_CODES, EXTERNAL_CODES, RULES
from ordergate.model.reasons import REGISTRY


def test_table_order_equals_registry_precedence() -> None:
    ranks = [REGISTRY[rule.code].precedence for rule in RULES]
    assert ranks == sorted(ranks)


def test_every_registry_code_has_exactly_one_home() -> None:
    in_table = {rule.code for rule in RULES}
    assert not in_table & EXTERNAL_CODES
    assert not in_table & ELSEWHERE_CODES
    assert not EXTERNAL_CODES & ELSEWHERE_CODES
    assert in_table | EXTERNAL_CODES | ELSEWHERE_CODES == set(REGISTRY)


def test_every_table_row_has_a_check() -> None:
    assert all(rule.check is not None for rule in RULES)
