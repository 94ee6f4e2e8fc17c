"""The fixtures themselves start real servers that answer."""

import psycopg2
import requests


def test_postgres_cluster_answers(postgres_cluster, postgres_url):
    conn = psycopg2.connect(postgres_cluster.dsn(postgres_url.rsplit("/", 1)[1]))
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    conn.close()


def test_prometheus_evaluates_queries(start_prometheus):
    prom = start_prometheus("global: {scrape_interval: 1s, evaluation_interval: 1s}\n")
    assert prom.query("vector(1)")[0]["value"][1] == "1"


def test_alertmanager_answers(start_alertmanager):
    am = start_alertmanager("route: {receiver: sink}\nreceivers: [{name: sink}]\n")
    assert requests.get(f"{am.url}/api/v2/status", timeout=5).status_code == 200
