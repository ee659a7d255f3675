"""Cold-start cost of each function: importing its module in a fresh interpreter, plus the
first request (settings, auth, Mangum construction) answered without Redis.

Baseline measured in the same run: a bare interpreter (`python -c pass`) and the heaviest
third-party import we rely on (`import pydantic`). Prints medians and ratios, writes
bench/results/cold_start.json.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 15
FUNCTIONS = ["enqueue", "status", "stats", "ratelimit_check"]
FIRST_EVENT = """
import json, os
os.environ.update(UPSTASH_REDIS_REST_URL="http://127.0.0.1:9", UPSTASH_REDIS_REST_TOKEN="t",
                  AUTH_API_KEYS="0" * 64)
import functions.{name} as module
event = {{"version": "2.0", "routeKey": "$default", "rawPath": "/api/x", "rawQueryString": "",
          "headers": {{}}, "requestContext": {{"http": {{"method": "PATCH", "path": "/api/x",
          "sourceIp": "203.0.113.1", "protocol": "HTTP/1.1", "userAgent": "bench"}},
          "requestId": "r", "routeKey": "$default", "stage": "$default", "accountId": "1",
          "apiId": "a", "domainName": "d", "domainPrefix": "d", "time": "t", "timeEpoch": 0}},
          "isBase64Encoded": False}}
assert module.handler(event, None)["statusCode"] == 405
"""


def median_ms(code: str) -> float:
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    bare = median_ms("pass")
    pydantic = median_ms("import pydantic")
    rows = []
    for name in FUNCTIONS:
        if not (ROOT / "functions" / f"{name}.py").exists():
            continue
        imported = median_ms(f"import functions.{name}")
        first_event = median_ms(FIRST_EVENT.format(name=name))
        rows.append(
            {
                "function": name,
                "import_ms": round(imported - bare, 1),
                "import_plus_first_event_ms": round(first_event - bare, 1),
                "vs_pydantic_import": round((imported - bare) / (pydantic - bare), 2),
            }
        )
    print(f"bare interpreter: {bare:.1f} ms (median of {RUNS})")
    print(f"import pydantic:  +{pydantic - bare:.1f} ms")
    print(f"{'function':<18}{'import ms':>12}{'+1st event ms':>16}{'x pydantic':>12}")
    for row in rows:
        print(
            f"{row['function']:<18}{row['import_ms']:>12}{row['import_plus_first_event_ms']:>16}"
            f"{row['vs_pydantic_import']:>12}"
        )
    result = {
        "runs": RUNS,
        "bare_ms": round(bare, 1),
        "pydantic_ms": round(pydantic - bare, 1),
        "rows": rows,
    }
    (ROOT / "bench" / "results" / "cold_start.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
