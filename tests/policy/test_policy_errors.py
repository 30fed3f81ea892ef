"""Every way a policy can be wrong is an error that names the file, line, column and field."""

from __future__ import annotations

import textwrap

import pytest

from ordergate.policy import PolicyError, load_policy, parse_policy

HEADER = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: test
"""


def policy_text(body: str) -> str:
    return HEADER + textwrap.dedent(body)


def error_of(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "policy.yaml")
    return caught.value


# (body after the header, line, column, path, words the message must contain)
CASES = [
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
          max_order_value: -5
        """, 7, 20, ("defaults", "max_order_value"), ["positive decimal", "'-5'"],
        id="negative-decimal"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
          max_order_qty: .nan
        """, 7, 18, ("defaults", "max_order_qty"), ["positive decimal", "'.nan'"], id="nan"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
          max_order_value: .inf
        """, 7, 20, ("defaults", "max_order_value"), ["positive decimal"], id="infinity"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
          max_order_value: "NaN"
        """, 7, 20, ("defaults", "max_order_value"), ["positive decimal"], id="nan-string"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
          max_order_value: lots
        """, 7, 20, ("defaults", "max_order_value"), ["decimal", "'lots'"], id="not-a-number"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
          max_order_value: 0
        """, 7, 20, ("defaults", "max_order_value"), ["positive decimal", "'0'"], id="zero"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
          price_collar_pct: 150
        """, 7, 21, ("defaults", "price_collar_pct"), ["percentage", "'150'"],
        id="percent-over-100"),
    pytest.param("""\
        defaults:
          max_market_data_age: 0s
        """, 6, 24, ("defaults", "max_market_data_age"), ["positive duration", "'0s'"],
        id="zero-duration"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
          rate_symbol: {max: 5, window: 0ms}
        """, 7, 33, ("defaults", "rate_symbol", "window"), ["positive duration", "'0ms'"],
        id="zero-window"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
          rate_symbol: {max: 0, window: 1s}
        """, 7, 22, ("defaults", "rate_symbol", "max"), ["at least 1", "'0'"],
        id="zero-throttle-count"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2 seconds
        """, 6, 24, ("defaults", "max_market_data_age"), ["duration", "'2 seconds'"],
        id="bad-duration-unit"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
          rate_symbol: {max: "5", window: 1s}
        """, 7, 22, ("defaults", "rate_symbol", "max"), ["whole number", "'5'"],
        id="wrong-type-string-for-int"),
    pytest.param("""\
        monitor: yes
        defaults:
          max_market_data_age: 2s
        """, 5, 10, ("monitor",), ["true or false", "'yes'"], id="yaml-1.1-boolean"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
          max_ordr_value: 5
        """, 7, 3, ("defaults", "max_ordr_value"), ["unknown field", "max_order_value"],
        id="unknown-key-with-suggestion"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
        accounts:
          ACC1:
            surprise: 1
        """, 9, 5, ("accounts", "ACC1", "surprise"), ["unknown field"],
        id="unknown-key-in-override"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
          monitor: true
        """, 7, 3, ("defaults", "monitor"), ["unknown field", "this section"],
        id="field-in-the-wrong-section"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
        strategies:
          trend:
            self_match: sometimes
        """, 9, 17, ("strategies", "trend", "self_match"), ["'sometimes'", "'cancel_resting'"],
        id="bad-enum"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
          allowed_order_types: [limit, iceberg]
        """, 7, 32, ("defaults", "allowed_order_types", 1), ["'iceberg'", "'stop_limit'"],
        id="bad-enum-in-list"),
    pytest.param("""\
        defaults:
          max_order_value: 5
        """, 5, 1, ("defaults",), ["max_market_data_age", "missing"],
        id="missing-critical-key"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
        restricted_symbols: [GME, AMC, GME]
        """, 7, 32, ("restricted_symbols", 2), ["duplicate entry 'GME'"],
        id="duplicate-list-entry"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
          max_order_qty: 5
          max_order_qty: 6
        """, 8, 3, ("defaults", "max_order_qty"), ["duplicate key", "line 7"],
        id="duplicate-key"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
        accounts:
          "ACC 1": {max_order_qty: 5}
        """, 8, 3, ("accounts", "ACC 1"), ["name"], id="bad-account-name"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
        market_hours: {calendar: XNYZ, symbols: [AAPL], years: [2025, 2026]}
        """, 7, 26, ("market_hours", "calendar"), ["unknown exchange calendar", "XNYS"],
        id="unknown-calendar"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
        market_hours: {calendar: XNYS, symbols: [AAPL], years: [2027, 2025]}
        """, 7, 56, ("market_hours", "years"), ["first <= last"], id="years-reversed"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
        engine: {on_drawdown: PANIC}
        """, 7, 23, ("engine", "on_drawdown"), ["'PANIC'", "'HALTED'"], id="bad-engine-mode"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
        instruments:
          AAPL: {tick_size: -0.01}
        """, 8, 21, ("instruments", "AAPL", "tick_size"), ["positive decimal", "'-0.01'"],
        id="negative-tick-size"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
          max_order_qty: null
        """, 7, 18, ("defaults", "max_order_qty"), ["decimal", "'null'"], id="null-limit"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
          max_order_qty: &big 5
          max_order_value: *big
        """, 7, 18, ("defaults", "max_order_qty"), ["anchors"], id="anchor"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
          max_order_qty: !money 5
        """, 7, 18, ("defaults", "max_order_qty"), ["tag"], id="custom-tag"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
        accounts: [ACC1]
        """, 7, 11, ("accounts",), ["mapping", "got a list"], id="list-for-mapping"),
    pytest.param("""\
        defaults:
          max_market_data_age: 2s
        market_hours: {calendar: XNYS, symbols: [AAPL], years: [2025]}
        """, 7, 56, ("market_hours", "years"), ["exactly 2"], id="years-not-a-pair"),
]


@pytest.mark.parametrize(("body", "line", "column", "path", "words"), CASES)
def test_error_names_file_line_column_and_field(
    body: str, line: int, column: int, path: tuple[str | int, ...], words: list[str],
) -> None:
    error = error_of(policy_text(body))
    assert (error.source, error.line, error.column, error.path) == (
        "policy.yaml", line, column, path)
    assert str(error).startswith(f"policy.yaml:{line}:{column}: ")
    for word in words:
        assert word in str(error)


def test_error_message_reads_file_line_column_path_then_problem() -> None:
    error = error_of(policy_text("""\
        defaults:
          max_market_data_age: 2s
          max_order_value: -5
        """))
    assert str(error) == ("policy.yaml:7:20: defaults.max_order_value: "
                          "expected a positive decimal, got '-5'")


def test_non_utc_timestamp_is_rejected_with_its_line() -> None:
    text = HEADER + "  effective_from: 2026-01-05T00:00:00+01:00\n" + \
        "defaults: {max_market_data_age: 2s}\n"
    error = error_of(text)
    assert (error.line, error.path) == (5, ("metadata", "effective_from"))
    assert "UTC" in str(error)


def test_naive_timestamp_is_rejected() -> None:
    text = HEADER + "  effective_from: '2026-01-05T00:00:00'\n" + \
        "defaults: {max_market_data_age: 2s}\n"
    error = error_of(text)
    assert error.path == ("metadata", "effective_from")
    assert "UTC" in str(error)


def test_missing_api_version_is_named() -> None:
    error = error_of("kind: Policy\nmetadata: {name: x}\ndefaults: {max_market_data_age: 2s}\n")
    assert "apiVersion" in str(error) and error.line == 1


def test_wrong_api_version_is_named_with_the_supported_one() -> None:
    error = error_of("apiVersion: ordergate/v2\nkind: Policy\n")
    assert (error.line, error.column, error.path) == (1, 13, ("apiVersion",))
    assert "'ordergate/v2'" in str(error) and "'ordergate/v1'" in str(error)


def test_wrong_kind_is_named() -> None:
    error = error_of("apiVersion: ordergate/v1\nkind: Limits\n")
    assert error.path == ("kind",) and "'Limits'" in str(error)


def test_malformed_yaml_names_the_line() -> None:
    error = error_of(HEADER + "defaults: {max_market_data_age: 2s\nmonitor: false\n")
    assert str(error).startswith("policy.yaml:")
    assert error.line is not None and error.line >= 5
    assert "malformed YAML" in str(error)


def test_empty_and_multi_document_files_are_errors() -> None:
    assert "empty" in str(error_of(""))
    text = HEADER + "defaults: {max_market_data_age: 2s}\n---\nkind: Policy\n"
    assert "one YAML document" in str(error_of(text))


def test_top_level_must_be_a_mapping() -> None:
    assert "mapping" in str(error_of("- apiVersion\n- kind\n"))


def test_unreadable_file_is_a_policy_error_naming_it(tmp_path: object) -> None:
    missing = f"{tmp_path}/absent.yaml"
    with pytest.raises(PolicyError) as caught:
        load_policy(missing)
    assert str(caught.value).startswith(missing)


def test_from_document_errors_name_the_field_without_a_line() -> None:
    from ordergate.policy import Policy

    with pytest.raises(PolicyError) as caught:
        Policy.from_document({"apiVersion": "ordergate/v1", "kind": "Policy",
                              "metadata": {"name": "x"},
                              "defaults": {"max_market_data_age": "2s",
                                           "max_order_qty": "-1"}})
    assert str(caught.value) == ("<document>: defaults.max_order_qty: "
                                 "expected a positive decimal, got '-1'")


def test_from_document_rejects_floats_because_they_are_not_exact() -> None:
    from ordergate.policy import Policy

    with pytest.raises(PolicyError) as caught:
        Policy.from_document({"apiVersion": "ordergate/v1", "kind": "Policy",
                              "metadata": {"name": "x"},
                              "defaults": {"max_market_data_age": "2s",
                                           "max_order_value": 0.1}})
    assert caught.value.path == ("defaults", "max_order_value")
    assert "float" in str(caught.value)
