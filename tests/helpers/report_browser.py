"""Open an HTML run report in headless Chromium and list what went wrong: console messages
(the report has no script of its own, so any is the browser complaining), figures that do not
decode, a page that never finished loading.

A copy of the report gets one checking script before </body> (the shipped file stays
script-free); Chromium's console goes to stderr with --enable-logging. Usable by hand on a
real run's report:
    .venv/bin/python tests/helpers/report_browser.py warehouse-ibm-telco/reports/run_date=2026-11-23/report.html
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
MARKER = "telcorec-report-check"
PROBE = ("<script>window.addEventListener('load',()=>{const bad=[...document.images].filter("
         "i=>!(i.complete&&i.naturalWidth>0));bad.forEach((i,n)=>console.error('figure '+n+"
         "' did not decode'));console.log('" + MARKER + " images='+document.images.length+"
         "' broken='+bad.length);});</script>")
CONSOLE = re.compile(r":CONSOLE(?:\(\d+\))?:?\d*\] \"(?P<message>.*)\", source: ")


def available() -> bool:
    return CHROMIUM.exists()


def check(report: Path, timeout: float = 180) -> tuple[list[str], str]:
    """(problems, the rendered DOM) of `report` in headless Chromium."""
    text = Path(report).read_text(encoding="utf-8")
    if "</body>" not in text:
        return ["no </body>: the report is cut short"], ""
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(text.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
        done = subprocess.run(
            [str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu",
             "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
             f"--user-data-dir={Path(tmp) / 'profile'}", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=timeout)
    messages = [m.group("message") for m in CONSOLE.finditer(done.stderr)]
    problems = [m for m in messages if not m.startswith(MARKER)]
    loaded = [m for m in messages if m.startswith(MARKER)]
    if done.returncode:
        problems.append(f"chromium exited {done.returncode}")
    if not loaded:
        problems.append("the page's load event never came (or the console was not captured)")
    elif not loaded[0].endswith(" broken=0"):
        problems.append(loaded[0])
    return problems, done.stdout


if __name__ == "__main__":
    if not available() or shutil.which(str(CHROMIUM)) is None:
        sys.exit(f"{CHROMIUM} not found: apt-get install -y chromium")
    found, dom = check(Path(sys.argv[1]))
    print("\n".join(found) or f"renders without console errors ({dom.count('<img')} figures)")
    sys.exit(1 if found else 0)
