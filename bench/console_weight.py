"""What a browser downloads for the console's pages, beside the API's JSON for the same data.

The console is meant for a phone at 3 a.m. on a poor connection: this prints the bytes of
the incidents list and of one incident (HTML, CSS, JavaScript; raw and gzip), and the
live-update fragments, next to the JSON the REST API answers for the same incidents
(the baseline: what any client needs at least). The scene is the captured Alertmanager
posts of tests/fixtures/alertmanager, N copies each, in a throw-away SQLite database.

    .venv/bin/python bench/console_weight.py [--copies 10]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from support.console import ADMIN, TOKENS, sign_in  # noqa: E402
from support.receiver import WEBHOOK_TOKEN, tenant_payload  # noqa: E402

from receiver.app import create_app  # noqa: E402
from receiver.payload import parse  # noqa: E402
from receiver.settings import ReceiverSettings  # noqa: E402
from receiver.store import migrate  # noqa: E402

POSTS = ("group-3-firing", "two-groups-payments", "two-groups-inventory")


def sizes(body: bytes) -> tuple[int, int]:
    return len(body), len(gzip.compress(body, 6))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10, choices=range(1, 1000),
                        metavar="1-999",
                        help="copies of each captured post (incidents in the list)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/weight.db"
        migrate.upgrade(url)
        app = create_app(ReceiverSettings(database_url=url, webhook_token=WEBHOOK_TOKEN,
                                          api_tokens=TOKENS,
                                          console={"grafana_url": "http://127.0.0.1:3000"}))
        store = app.extensions["ticketmon_receiver"].store
        for copy in range(args.copies):
            for name in POSTS:
                store.ingest(parse(json.dumps(tenant_payload(f"t{copy:03d}", name)).encode()))
        # one tenant per copy keeps the group keys apart; the admin sees them all
        client = app.test_client()
        sign_in(client, ADMIN)
        api = {"Authorization": f"Bearer {ADMIN}"}
        assets = (client.get("/ui/static/console.css").data
                  + client.get("/ui/static/console.js").data)
        rows = []
        for label, page, json_path in (("incidents list", "/ui/", "/api/v1/incidents"),
                                       ("one incident", "/ui/incidents/1",
                                        "/api/v1/incidents/1")):
            html = client.get(page).data
            fragment = client.get(page, headers={"X-Ticketmon-Fragment": "1"}).data
            body = client.get(json_path, headers=api).data
            rows.append((label, sizes(html), sizes(assets), sizes(fragment), sizes(body)))
        store.dispose()
    print(f"{args.copies * len(POSTS)} incidents; bytes raw / gzip")
    print(f"{'page':16} {'HTML':>13} {'CSS+JS':>13} {'page total':>13} {'live fragment':>14}"
          f" {'API JSON':>13}")
    result = {}
    for label, html, assets, fragment, body in rows:
        total = (html[0] + assets[0], html[1] + assets[1])
        print(f"{label:16} {html[0]:>6} / {html[1]:<5} {assets[0]:>6} / {assets[1]:<5} "
              f"{total[0]:>6} / {total[1]:<5} {fragment[0]:>7} / {fragment[1]:<5} "
              f"{body[0]:>6} / {body[1]:<5}")
        result[label] = {"html": html[0], "assets": assets[0], "total": total[0],
                         "total_gzip": total[1], "fragment": fragment[0], "api_json": body[0]}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
