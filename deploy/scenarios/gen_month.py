#!/usr/bin/env python3
"""Writes a large `casebus simulate` scenario on the sample city (JSON Lines, see README "Simulate").

Default: 30 days from Sunday 2026-09-20 (a make-up working day) across the National Day week,
21,000 cases: report -> register -> dispatch -> accept -> resolve -> verify -> close, with delays
that are sometimes past the accept limit and past the handle limit; about 4 % of the cases stop at
each stage and stay open. Category and grid cycle so that no two reports within a day are
duplicates. Deterministic for a given --seed.

    python3 deploy/scenarios/gen_month.py --out /tmp/month.jsonl
    build/bin/casebus simulate --scenario /tmp/month.jsonl --until 2026-10-20T00:00:00+08:00 --json /tmp/month.json
"""
import argparse
import datetime as dt
import json
import os
import random
import re

HERE = os.path.dirname(os.path.abspath(__file__))
CITY = os.path.join(HERE, "..", "config", "sample-city.yaml")
TZ = dt.timezone(dt.timedelta(hours=8))


def city_codes():
    """Subcategory codes with limits, and grid codes, read from the sample city without a YAML library."""
    text = open(CITY, encoding="utf-8").read()
    grids = re.findall(r'\{code: "(\d{15})"', text)
    cats = [m.group(1) for m in re.finditer(r'- code: "(\d{6})"\n(?:    .*\n)*?    limits:', text)]
    return cats, grids


def line(at, rid, actor, body):
    cmd = {"request_id": rid, "actor": actor}
    cmd.update(body)
    return {"at": at.isoformat(), "command": cmd}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--cases", type=int, default=21000)
    p.add_argument("--start", default="2026-09-20")
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--seed", type=int, default=20260920)
    a = p.parse_args()
    rnd = random.Random(a.seed)
    cats, grids = city_codes()
    start = dt.datetime.fromisoformat(a.start).replace(tzinfo=TZ)
    end = start + dt.timedelta(days=a.days)
    reports = sorted(start + dt.timedelta(days=rnd.randrange(a.days),
                                          minutes=rnd.randrange(480, 1080) if rnd.random() < 0.75
                                          else rnd.randrange(1440), seconds=rnd.randrange(60))
                     for _ in range(a.cases))
    lines = []
    for i, t in enumerate(reports):
        case_id = i + 1  # ids follow report order in a fresh engine (no duplicates merge)
        cat, grid = cats[i % len(cats)], grids[(i // len(cats)) % len(grids)]
        lines.append((t, len(lines), line(t, f"rep-{i}", "inspector-07", {"report": {
            "category": cat, "place": {"grid": grid}, "source": "INSPECTOR"}})))
        stall = rnd.randrange(100)
        steps = [("reg", rnd.uniform(1, 30) * 60, {"register": {"case_id": case_id}}),
                 ("dis", rnd.uniform(1, 20) * 60, {"dispatch": {"case_id": case_id}}),
                 ("acc", rnd.expovariate(1 / 3600), {"accept": {"case_id": case_id}}),
                 ("res", rnd.expovariate(1 / (20 * 3600)), {"resolve": {"case_id": case_id,
                                                                         "evidence": [f"photo://after/{case_id}"]}}),
                 ("ver", rnd.expovariate(1 / (3 * 3600)), {"verify": {"case_id": case_id, "passed": True}}),
                 ("clo", rnd.uniform(1, 60) * 60, {"close": {"case_id": case_id}})]
        # ~4 % stop after dispatch, ~4 % after accept, ~4 % after resolve.
        for kind, delay, body in steps[:2 if stall < 4 else 3 if stall < 8 else 4 if stall < 12 else 6]:
            t = t + dt.timedelta(seconds=max(1, int(delay)))
            if t >= end:
                break
            lines.append((t, len(lines), line(t, f"{kind}-{i}", "op-sim", body)))
    lines.sort(key=lambda x: (x[0], x[1]))
    with open(a.out, "w", encoding="utf-8") as f:
        for _, _, obj in lines:
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
    print(f"{a.out}: {len(lines)} steps, {a.cases} cases, {a.start} + {a.days} days")


if __name__ == "__main__":
    main()
