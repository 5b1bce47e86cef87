"""The Markdown table of bench_versions.py's results (two JSON lines on stdin:
the newest pair first), for BENCHMARKS.md."""

import json
import sys

rows = [json.loads(line) for line in sys.stdin if line.strip()]
new, old = rows
print("\n#### get_session across Django versions, sync and async\n")
print(
    f"The same abi3 wheel (cp310-abi3) in two environments, one after the other in this run; "
    f"{new['rounds']} rounds, median per call of {new['calls']} API calls or {new['requests']} "
    "requests through Django's handler (sync view: `django.test.Client`; async view: "
    "`AsyncClient`, Django's ASGI handler). No blacklisting: get_session touches no database.\n"
)
print(f"| path | Django {new['django']}, Python {new['python']} | Django {old['django']}, Python {old['python']} | ratio |")
print("|---|---|---|---|")
for key, label in (
    ("sync", "`get_session` (API call)"),
    ("async", "`await aget_session` (API call)"),
    ("handler_sync", "sync view through Django"),
    ("handler_async", "async view through Django (ASGI)"),
):
    print(f"| {label} | {new[key]:.2f} µs | {old[key]:.2f} µs | {new[key] / old[key]:.2f} |")
print()
for row in rows:
    print(
        f"Django {row['django']}/Python {row['python']}: async API / sync API = "
        f"{row['async'] / row['sync']:.2f}; async view / sync view = "
        f"{row['handler_async'] / row['handler_sync']:.2f}.\n"
    )
