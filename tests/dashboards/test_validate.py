"""The dashboard checks catch what Grafana would reject or show wrongly."""

import copy

import pytest

from ticketmon.dashboards import build
from ticketmon.dashboards.validate import provisioned_datasources, validate, validate_all


@pytest.fixture(scope="module")
def boards():
    return build.evaluate()


@pytest.fixture
def board(boards):
    return copy.deepcopy(boards["ticketmon-business.json"])


def _panel(board, index=1):
    return board["panels"][index]


def test_all_dashboards_are_valid(boards):
    assert validate_all(boards) == []


def test_datasources_are_provisioned():
    assert provisioned_datasources() == {
        "ticketmon-prometheus": "prometheus",
        "ticketmon-receiver": "yesoreyeram-infinity-datasource",
        "ticketmon-fraud": "yesoreyeram-infinity-datasource",
    }


def test_misspelt_key_is_caught_by_the_schema_round_trip(board):
    _panel(board)["descripton"] = "typo"
    board["refersh"] = "5s"
    problems = validate(board)
    assert "unknown key .panels[1].descripton (dropped by the Grafana schema)" in problems
    assert "unknown key .refersh (dropped by the Grafana schema)" in problems


def test_overlap_and_grid(board):
    _panel(board, 2)["gridPos"] = dict(_panel(board, 1)["gridPos"])
    _panel(board, 3)["gridPos"]["x"] = 22
    problems = validate(board)
    assert any("overlaps panel 2" in p for p in problems), problems
    assert any("is off the 24-column grid" in p for p in problems), problems


def test_duplicate_ids_and_uids(boards, board):
    _panel(board, 2)["id"] = _panel(board, 1)["id"]
    assert any("panel ids must be unique" in p for p in validate(board))
    twin = copy.deepcopy(boards)
    twin["copy.json"] = copy.deepcopy(twin["ticketmon-fraud.json"])
    problems = validate_all(twin)
    assert "ticketmon-fraud.json: uid 'ticketmon-fraud' is also used by copy.json" in problems


def test_targets_need_datasource_and_expression(board):
    panel = _panel(board)
    panel["targets"][0]["expr"] = " "
    panel["targets"].append({"refId": "B", "expr": "up",
                             "datasource": {"type": "prometheus", "uid": "some-uid"}})
    _panel(board, 2)["targets"][0]["datasource"] = {"type": "loki", "uid": "logs"}
    _panel(board, 3)["targets"] = []
    problems = validate(board)
    assert any("has no expr" in p for p in problems)
    assert any("use the $datasource variable, not 'some-uid'" in p for p in problems)
    assert any("'uid': 'logs'} is not provisioned" in p for p in problems)
    assert any(p.endswith(": no targets") for p in problems)


def test_units_descriptions_thresholds(board):
    panel = _panel(board)
    panel["fieldConfig"]["defaults"]["unit"] = "furlongs"
    panel["description"] = ""
    panel["fieldConfig"]["defaults"]["thresholds"]["steps"] = [
        {"color": "green", "value": None}, {"color": "red", "value": 5},
        {"color": "orange", "value": 1}]
    problems = validate(board)
    assert any("unit 'furlongs'" in p for p in problems)
    assert any(p.endswith(": no description") for p in problems)
    assert any("threshold values must rise: [5, 1]" in p for p in problems)


def test_datasource_variable_required(board):
    board["templating"]["list"] = [v for v in board["templating"]["list"]
                                   if v["name"] != "datasource"]
    assert "the Prometheus datasource must be a template variable named datasource" \
        in validate(board)


def test_not_a_dashboard_is_reported_not_raised():
    problems = validate({"panels": "nope"})
    assert problems and all(isinstance(p, str) for p in problems)
