"""Metric names are told apart from functions, keywords, label lists and variables."""

from ticketmon.rules.promql import metric_names, regex_alternatives, selectors


def test_names_functions_keywords_and_label_lists():
    expr = ('sum by (event) (rate(ticketmon_tickets_sold_total{event="a"}[5m] offset 1w))'
            ' / on (event) group_left (venue) ticketmon_event_on_sale == bool 1')
    assert metric_names(expr) == {"ticketmon_tickets_sold_total", "ticketmon_event_on_sale"}


def test_strings_numbers_and_recorded_names():
    expr = ('label_replace(up{job=~"ticketmon-.*"} == 0, "service", "$1", "job", "(.+)")'
            ' and histogram_quantile(0.95, slo:sli_error:ratio_rate5m) > 1e3')
    assert metric_names(expr) == {"up", "slo:sli_error:ratio_rate5m"}


def test_grafana_variables_are_neutralised():
    sel = selectors('rate(ticketmon_payments_total{provider=~"$provider"}[$__rate_interval])')
    assert [s.metric for s in sel] == ["ticketmon_payments_total"]
    assert sel[0].matchers == [("provider", "=~", "__var__")]


def test_name_only_selector():
    assert metric_names('{__name__="ticketmon_active_users"}') == {"ticketmon_active_users"}


def test_regex_alternatives():
    assert regex_alternatives("failed|succeeded") == ["failed", "succeeded"]
    assert regex_alternatives("5..") is None
