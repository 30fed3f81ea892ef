from ordergate.model.reasons import FAMILY_ORDER, REGISTRY, all_reasons


def test_reason_ids_and_names_are_unique_and_well_formed() -> None:
    codes = all_reasons()
    assert len({code.id for code in codes}) == len(codes)
    assert len({code.name for code in codes}) == len(codes)
    for code in codes:
        prefix, number = code.id.split("-")
        assert len(prefix) == 3 and prefix.isupper() and len(number) == 3 and number.isdigit()
        assert code.meaning.endswith(".")


def test_precedence_follows_family_order() -> None:
    ranks = [FAMILY_ORDER.index(code.family) for code in all_reasons()]
    assert ranks == sorted(ranks)
    assert [code.precedence for code in all_reasons()] == list(range(len(REGISTRY)))
    assert REGISTRY["KIL-001"].precedence < REGISTRY["MOD-001"].precedence
    assert REGISTRY["MOD-002"].precedence < REGISTRY["SYS-001"].precedence
    assert REGISTRY["LOS-003"].precedence < REGISTRY["DUP-001"].precedence
    assert REGISTRY["THR-001"].precedence < REGISTRY["EXP-001"].precedence
    assert REGISTRY["LIQ-001"].precedence < REGISTRY["MKT-001"].precedence
