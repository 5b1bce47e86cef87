"""The Markdown table of bench_versions.py's results (two JSON lines on stdin:
the newest pair first), for BENCHMARKS.md."""

import json
import sys

rows = [json.loads(line) for line in sys.stdin if line.strip()]
new, old = rows[:2]
specific = rows[2] if len(rows) > 2 else None
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
if specific is not None:
    print(
        f"abi3 against a version-specific build (`maturin build --no-default-features`, "
        f"`{specific['module']}`), Django {specific['django']}/Python {specific['python']}, same run: "
        f"`get_session` {new['sync']:.2f} µs (abi3) vs {specific['sync']:.2f} µs "
        f"({new['sync'] / specific['sync']:.2f}×); `await aget_session` {new['async']:.2f} µs vs "
        f"{specific['async']:.2f} µs ({new['async'] / specific['async']:.2f}×).\n"
    )
for row in rows[:2]:
    print(
        f"Django {row['django']}/Python {row['python']}: async API / sync API = "
        f"{row['async'] / row['sync']:.2f}; async view / sync view = "
        f"{row['handler_async'] / row['handler_sync']:.2f}.\n"
    )
