#!/usr/bin/python3
"""Every code block of README.md marked <!-- example: PATH --> is PATH verbatim (so it compiles:
examples/ is built and run by the test suite)."""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
readme = (root / "README.md").read_text()
blocks = re.findall(r"<!-- example: (\S+) -->\n```\w*\n(.*?)```\n<!-- /example -->", readme, re.S)
if not blocks:
    sys.exit("README.md has no <!-- example: ... --> blocks")
failed = False
for path, code in blocks:
    if (root / path).read_text() != code:
        print(f"README.md's block for {path} differs from the file", file=sys.stderr)
        failed = True
print(f"{len(blocks)} README example(s) checked")
sys.exit(1 if failed else 0)
